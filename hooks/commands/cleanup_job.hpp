// cleanup_job (spec/hook-behavior.md §4.4, §3.5): delete every pod and secret carrying this
// runner's `runner-pod` label, without waiting for termination; objects already gone are fine.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/rest_retry.hpp"
#include "kube/errors.hpp"

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

namespace podpipe::kube {
class api_client;
}

namespace podpipe::hook {

struct cleanup_counts {
    std::size_t pods = 0;    ///< deletions issued (or already gone)
    std::size_t secrets = 0;
};

/// Lists by `runner-pod=<runner_pod_name>` in `ns`, deletes pods with grace period 0 and the
/// secrets. A 404 on delete counts as done; any other failure is returned after trying the rest.
/// Each list and delete is tried again under `retry` (all of them may be made again: a delete
/// that went through answers 404 the second time).
result<cleanup_counts, kube::api_error> cleanup_job(kube::api_client& client, std::string_view ns,
                                                    std::string_view runner_pod_name,
                                                    const rest_retry& retry = {});

/// Deletes like cleanup_job, then waits (up to `timeout`) until no pod with the label is left:
/// the next job pod has the same name, and creating it while the old one terminates fails with
/// AlreadyExists. Returns false when pods were still there at the timeout.
bool prune_and_wait(kube::api_client& client, std::string_view ns, std::string_view runner_pod_name,
                    std::chrono::milliseconds timeout, std::string* warning,
                    const rest_retry& retry = {});

} // namespace podpipe::hook
