// Volume mode (PODPIPE_WORKSPACE_MODE=volume; spec/hook-behavior.md §5, issue 6): the runner's
// work claim (ACTIONS_RUNNER_CLAIM_NAME, default <pod>-work) is mounted at /__w in the job pod and
// in container-step pods, so nothing is copied over the network:
//
// prepare_job_volume: preflight (batch jobs included) → `Job Container is required.` → the
//   template → the runner's node from its pod (waiting for spec.nodeName within the prepare
//   timeout) → the claim's access modes when readable (an RWO claim without
//   ACTIONS_RUNNER_HOOK_RWO=true gets a warning) → externals onto the claim only when their
//   content marker changed → the job pod (claim volume, sub-path mounts, node affinity required
//   with ACTIONS_RUNNER_HOOK_RWO=true, else preferred; a template affinity replaces ours) →
//   created and awaited; a pod that can never start (Multi-Attach with the claim held by a
//   running pod on another node, FailedScheduling at the timeout) fails with what to change →
//   alpine detection → the response.
// run_script_step_volume: the run script is written into W/_temp, which the pod sees as
//   /__w/_temp; exec'd with the heartbeat; its exit code is the result. File commands are
//   already on the shared volume; after the step (also a container step) whatever the pod left
//   there that is not a regular file is removed before the runner reads (file_commands.hpp).
// run_container_step_volume: a pod (not a batch Job, see the .cpp) with the claim, the env in a
//   Secret, followed logs with reconnect, the action's own exit code; pod and Secret deleted.
// cleanup_job (volume mode): hand_the_claim_back first, so that what root steps left on the
//   claim (read-only directories, 0400 files) is the runner user's to remove; then the pods go.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/input.hpp"
#include "hooks/commands/response.hpp"
#include "hooks/commands/session.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <stop_token>
#include <string>

namespace podpipe::hook {

/// The name of the marker file in W/externals: the content marker of the externals copied there.
inline constexpr const char* externals_marker_name = ".podpipe-externals";

result<prepare_job_response, hook_error> prepare_job_volume(hook_session& s,
                                                            const prepare_job_args& args,
                                                            const std::string& response_file);

result<int, hook_error> run_script_step_volume(hook_session& s, const job_state& state,
                                               const run_script_step_args& args);

result<int, hook_error> run_container_step_volume(hook_session& s, const job_state& state,
                                                  const container_request& req);

/// The runner pod's spec.nodeName, polled until set or `timeout`. Errors: the pod is missing
/// (ACTIONS_RUNNER_POD_NAME / namespace wrong), or still unscheduled at the timeout.
/// cleanup_job, before the pods go: what the job's pods left on the claim becomes the runner's
/// again (the hook's own uid:gid; `chown -hR` when the job container runs as root, and
/// `chmod -R u+rwX` in any case), so the next job's runner can remove read-only directories
/// and files that steps made. A pod that cannot run it gets a warning, nothing more.
void hand_the_claim_back(hook_session& s, const job_state& state);

result<std::string, hook_error> runner_node_name(hook_session& s, std::chrono::milliseconds timeout);

/// What a sync of the externals did.
struct externals_sync {
    bool copied = false;       ///< false: the marker matched, nothing was copied
    std::string marker;        ///< the source's content marker
    std::uint64_t files = 0;   ///< entries copied
    std::uint64_t bytes = 0;   ///< content bytes copied
    double marker_seconds = 0; ///< time to compute the marker (a stat walk of the source)
    double copy_seconds = 0;
};

/// A content marker of the tree at `dir`: a hash over every entry's relative path, type, mode,
/// size and mtime (a stat walk, no reads). Empty when `dir` is not a directory.
std::string tree_marker(const std::string& dir);

/// Copies `source` into `dest` (the claim's W/externals) unless dest's marker file equals the
/// source's marker. The marker is removed before copying and written after the copy verified, so
/// an interrupted copy is redone next time. The copy runs through the engine (parallel read and
/// write, stored, manifest-checked): pipeline::copy_tree.
/// `threads` and `memory_bytes` as PODPIPE_THREADS / PODPIPE_MEMORY_BUDGET.
result<externals_sync, hook_error> sync_externals(const std::string& source, const std::string& dest,
                                                  unsigned threads, std::size_t memory_bytes,
                                                  std::stop_token stop = {});

} // namespace podpipe::hook
