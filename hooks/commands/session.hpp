// What every command of one hook invocation shares: the cluster client and namespace, the
// environment, the log, the cancellation token, and the transfer helpers built on
// remote::pod_copier (engine settings from PODPIPE_*, the one-line summary the issue asks for,
// the permission preflight of spec/hook-behavior.md §2.7).
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/env.hpp"
#include "hooks/commands/errors.hpp"
#include "hooks/commands/exec_step.hpp"
#include "hooks/commands/log.hpp"
#include "hooks/commands/rest_retry.hpp"
#include "remote/pod_copy.hpp"

#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::kube {
class api_client;
}

namespace podpipe::hook {

struct hook_session {
    kube::api_client& client;
    std::string ns;
    const hook_env& env;
    hook_log& log;
    std::stop_token stop;
    int out_fd = 1; ///< step stdout (the runner's log)
    int err_fd = 2; ///< step stderr
    /// What probing the job pod found (binary, protocol), reused for every copy of this
    /// invocation: one exec less per transfer.
    std::optional<remote::pod_end> job_end;
};

/// `copier.probe(where)`, answered from `s.job_end` when that is the same pod and container.
result<remote::pod_end, remote::copy_error> probe_job_pod(hook_session& s,
                                                          remote::pod_copier& copier,
                                                          const remote::pod_dir& where);

/// Whether the job pod's podpipe has `podpipe run` (remote/step_spool.hpp), from `s.job_end`
/// or one probe of the job container; false without re-attaching (PODPIPE_STEP_REATTACH_SECONDS
/// = 0: no probe) or when the probe fails (logged at debug: the step then runs as before).
bool job_pod_runs_steps(hook_session& s, const std::string& job_pod);

/// How a one-shot exec of this invocation (the /github set-up, the alpine check, removals) is
/// tried again: as copies are (PODPIPE_COPY_RETRY_SECONDS), each retry a warning starting with
/// `what`. `idempotent`: the command may run twice (say why where it is used).
exec_retry one_shot_retry(hook_session& s, std::string what, bool idempotent);

/// How this invocation's REST calls are tried again past the kube client's own attempts
/// (rest_retry.hpp): as copies are (PODPIPE_COPY_RETRY_SECONDS), each retry a warning.
rest_retry rest_retry_of(hook_session& s);

/// How a step runs under the pod's `podpipe run` (exec_step_resumable): the in-pod `podpipe`,
/// the step's `spool` directory in the pod, PODPIPE_STEP_REATTACH_SECONDS, and where the
/// "re-attaching ..." warnings go. One builder for script steps and container steps.
resumable_step step_under_run(const hook_env& env, std::string podpipe, std::string spool,
                              std::function<void(const std::string&)> on_warning);

/// A script step's command in its job pod (`name`: the script's file name). When `runs_steps`
/// (the pod's podpipe has `run`) and re-attaching is on, under `podpipe run` with the spool in
/// /tmp/podpipe-steps/<name>: a broken session is re-attached (exec_step_resumable, each
/// re-attach a warning). Otherwise in its exec session, and the debug log says why
/// (`why_not`, when the pod's podpipe was not asked).
result<int, kube::api_error> exec_script_step(hook_session& s, const step_target& job,
                                              const std::vector<std::string>& argv,
                                              const std::string& name, bool runs_steps,
                                              const std::string& why_not);

/// Engine settings from the environment: level (or auto), threads, memory budget, the in-pod
/// binary at PODPIPE_RECV_PATH/podpipe; verification on. `info` lines go to the debug log.
remote::copy_options copy_options_for(const hook_session& s);

/// "1234 files, 250.0 MB, 80.1 MB on the wire, 3.2 s, 78.1 MB/s" for a finished copy.
std::string transfer_summary(const remote::copy_report& o);

/// The one way a failed copy or probe becomes the hook's error: `code` (errc::transfer, or a
/// container step's copy_in/copy_back), and what() = `before` + the copy's message + `after`.
hook_error copy_failed(std::error_code code, const std::string& before,
                       const remote::copy_error& e, const std::string& after = {});

/// Runs one copy inside `::group::TITLE` … `::endgroup::`, printing the summary line (or the
/// error) inside the group. Retries once when the first attempt failed on the connection (a
/// receiver overwrites what it already has, so a repeat is safe), never a copy_error that is
/// `permanent` or carries the sender's problems. Error text:
/// "<what> failed: <copy_error::message>" (errc::transfer). A copy that fails for good is
/// given to `give_up` first: giving_up(copier) for the copier `run` uses (pod_copier::give_up:
/// its resume ledger removed, the message says the target holds a partial copy).
using give_up_fn = std::function<remote::copy_error(remote::copy_error)>;
result<remote::copy_report, hook_error>
grouped_copy(hook_session& s, const std::string& title, const std::string& what,
             const std::function<remote::copy_result()>& run, const give_up_fn& give_up = {});
/// grouped_copy's `give_up` through `copier` (which must outlive the call).
give_up_fn giving_up(remote::pod_copier& copier);

/// The access reviews the reference runs (§2.7): pods get/list/create/delete, pods/exec
/// get/create, pods/log get/list/watch, secrets create/delete/get/list; plus batch jobs
/// get/list/create/delete in volume mode. All are sent (one batch); when any is denied the
/// error carries the reference message listing the missing ones as JSON.
result<void, hook_error> check_permissions(hook_session& s, bool volume_mode);

} // namespace podpipe::hook
