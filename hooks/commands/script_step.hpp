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

#include <string>

namespace podpipe::hook {

/// The step's exit code (0..255), or an error when the step could not run or its outcome is
/// unknown (the connection dropped before the exit status arrived).
result<int, hook_error> run_script_step(hook_session& s, const job_state& state,
                                        const run_script_step_args& args);

/// Brings the job pod's /__w/_temp up to date with the runner's _temp. `first_lines` receives
/// shell lines the step script must run before anything else (deletions the pod has not seen).
result<void, hook_error> sync_temp_to_pod(hook_session& s, const std::string& job_pod,
                                          std::string* first_lines);

/// Copies the job pod's /__w/_temp/_runner_file_commands into the runner's.
result<void, hook_error> copy_file_commands_back(hook_session& s, const std::string& job_pod);

} // namespace podpipe::hook
