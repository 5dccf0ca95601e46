// `podpipe cp SRC DST`: a directory from the local disk into a pod, out of a pod, or from one
// pod into another, through the pods' exec channels (engine stream, in-pod `podpipe recv/send`
// when present, the pod's own tar otherwise).
#pragma once

#include "tools/podpipe/cli_util.hpp"

#include <string>
#include <vector>

namespace podpipe::cli {

struct cp_flags {
    std::string src;
    std::string dst;
    std::string level = "auto"; ///< 0..12 or auto
    std::string chunk = "1M";
    std::string threads = "0";
    std::string pod_threads = "0"; ///< given to the in-pod podpipe as --threads when not 0
    std::string memory; ///< "": default_memory_budget() (engine/common/limits.hpp)
    std::vector<std::string> excludes;
    bool progress = false;
    bool no_verify = false;
    bool allow_incomplete = false; ///< a sender's problems are warnings, not a failure
    std::string stats_json;
    /// Where the in-pod podpipe is looked for; "none" = always use the pod's tar.
    std::string pod_binary = "/__e/podpipe/podpipe";
    std::string kubeconfig; ///< overrides KUBECONFIG
    std::string context;    ///< overrides current-context
    std::string ns;         ///< namespace for pods given without one
    /// Offer only v4.channel.k8s.io (what clusters before 1.30 speak); for tests and old clusters.
    bool exec_v4 = false;
    bool verbose = false; ///< say which pod-side method and protocol each pod gets
    std::string stall_timeout = default_stall_timeout; ///< fail when no byte moves this long
    /// How long after the first failure that can pass the copy is tried again ("" = the
    /// PODPIPE_COPY_RETRY_SECONDS variable, else 2m; 0 = one attempt). remote/retry.hpp.
    std::string retry_for;
    /// Retries start over instead of continuing (no ledger in the target; remote/pod_copy.hpp).
    bool no_resume = false;
};

/// Runs the copy; returns the process exit code (cli::exit_code) and prints errors to stderr.
int run_cp(const cp_flags& flags);

} // namespace podpipe::cli
