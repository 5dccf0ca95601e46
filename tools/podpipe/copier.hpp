// The engine behind `podpipe cp` and `podpipe bench`: probes pods (in-pod podpipe or tar, exec
// protocol) and runs one copy in a given direction, returning the process exit code and
// keeping the last transfer's counters and the pod side's JSON report.
#pragma once

#include "engine/common/result.hpp"
#include "engine/pipeline/stats.hpp"
#include "tools/podpipe/cp.hpp"
#include "tools/podpipe/location.hpp"

#include <cstddef>
#include <memory>
#include <stop_token>
#include <string>

namespace podpipe::k8s {
class api_client;
}

namespace podpipe::cli {

/// One pod end of a copy, after probing it.
struct pod_end {
    location loc;
    std::string ns;
    bool has_binary = false; ///< the in-pod podpipe answered --version
    bool half_close = true;  ///< the exec protocol can deliver EOF to stdin (v5)
    std::string protocol;

    std::string name() const {
        return ns + "/" + loc.pod + (loc.container.empty() ? "" : ":" + loc.container);
    }
};

/// Numeric settings parsed from cp_flags.
struct copy_settings {
    int level = 1; ///< 0..12 or pipeline::auto_level
    std::size_t chunk_bytes = 1 << 20;
    unsigned threads = 0;
    std::size_t memory_bytes = 256u << 20;
    bool quiet = false; ///< no summary line (the caller reports)
};

class pod_copier {
public:
    static std::unique_ptr<pod_copier> create(const cp_flags& flags, const copy_settings& settings,
                                              k8s::api_client& client, std::stop_token stop);
    virtual ~pod_copier() = default;

    virtual result<pod_end, std::string> probe(const location& loc) = 0;
    virtual int local_to_pod(const location& src, const pod_end& dst) = 0;
    virtual int pod_to_local(const pod_end& src, const location& dst) = 0;
    virtual int pod_to_pod(const pod_end& src, const pod_end& dst) = 0;

    /// Counters of the last successful copy (seconds: until the receiver confirmed).
    virtual const pipeline::transfer_stats& last_stats() const = 0;
    /// The in-pod `podpipe recv --report` JSON of the last copy into a pod, if any.
    virtual const std::string& last_report() const = 0;
};

/// The configured cluster (kubeconfig/context/namespace overrides may be empty).
result<std::unique_ptr<k8s::api_client>, std::string> connect_cluster(const cp_flags& flags);

} // namespace podpipe::cli
