// run_script_step in stream mode (spec/hook-behavior.md §4.2), and the two _temp transfers it
// shares with run_container_step:
//   1. the runner's _temp (the new step script, fresh file-command files, event.json, the
//      home directory) reaches the job pod's /__w/_temp;
//   2. the step runs with `sh -e /__w/_temp/<script>` (env, PATH prepend, working directory),
//      output live, heartbeat on; its exit code is the result;
//   3. /__w/_temp/_runner_file_commands comes back to the runner, also when the step failed
//      (the reference skips it then, losing outputs and summaries of failing steps).
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/input.hpp"
#include "hooks/commands/session.hpp"
#include "hooks/commands/temp_sync.hpp"

#include <string>

namespace podpipe::hook {

/// The step's exit code (0..255), or an error when the step could not run or its outcome is
/// unknown (the connection dropped before the exit status arrived).
result<int, hook_error> run_script_step(hook_session& s, const job_state& state,
                                        const run_script_step_args& args);

/// The incremental sync of the runner's _temp into the job pod's /__w/_temp: only what
/// changed since the pod last saw it is sent. The record of what the pod holds is a manifest
/// file under W/.podpipe-hook/<job pod>/ (an io::tree_snapshot saved), written after every
/// transfer;
/// without a usable one everything is sent. Files deleted on the runner are deleted in the pod.
struct temp_plan {
    std::string work;               ///< W
    io::tree_snapshot now;          ///< the runner's _temp as scanned
    io::tree_delta delta;           ///< against what the pod holds
    std::vector<std::string> gone;  ///< delta.replaced + delta.removed: deleted in the pod first
};
result<temp_plan, hook_error> plan_temp_sync(hook_session& s, const std::string& job_pod);
/// Sends the changes (the engine's selection) with the deletions in the same stream (a pod
/// without podpipe gets them first through `sh` on stdin), records the result. `transient`
/// (relative, may be empty) is left out of the record: the step script deletes itself in the
/// pod.
/// `probed` (when given) receives the job pod's end when this probed it (a non-empty delta).
result<void, hook_error> apply_temp_sync(hook_session& s, const std::string& job_pod,
                                         temp_plan& plan, const std::string& transient,
                                         std::optional<remote::pod_end>* probed = nullptr);
/// plan + apply (container steps).
result<void, hook_error> sync_temp_to_pod(hook_session& s, const std::string& job_pod);

/// Records the runner's _temp as what the job pod holds (after prepare_job's full copy and
/// after the file commands came back).
result<void, hook_error> record_temp(hook_session& s, const std::string& job_pod);

/// Copies the job pod's /__w/_temp/_runner_file_commands into the runner's: regular files only,
/// through a stage; anything else the step left there is refused with a warning naming the
/// file, and the runner keeps its own file of that name (file_commands.hpp).
result<void, hook_error> copy_file_commands_back(hook_session& s, const std::string& job_pod);

} // namespace podpipe::hook
