// cleanup_job (spec/hook-behavior.md §4.4, §3.5): delete every pod and secret carrying this
// runner's `runner-pod` label, without waiting for termination; objects already gone are fine.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/k8s/errors.hpp"

#include <cstddef>
#include <string_view>

namespace podpipe::k8s {
class api_client;
}

namespace podpipe::hook {

struct cleanup_counts {
    std::size_t pods = 0;    ///< deletions issued (or already gone)
    std::size_t secrets = 0;
};

/// Lists by `runner-pod=<runner_pod_name>` in `ns`, deletes pods with grace period 0 and the
/// secrets. A 404 on delete counts as done; any other failure is returned after trying the rest.
result<cleanup_counts, k8s::hook_error> cleanup_job(k8s::api_client& client, std::string_view ns,
                                                    std::string_view runner_pod_name);

} // namespace podpipe::hook
