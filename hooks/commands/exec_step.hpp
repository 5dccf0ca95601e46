// Running a step's command in a pod (spec/hook-behavior.md §3.7): stdout and stderr forwarded
// to the hook's own as bytes arrive, the remote exit code returned as a value. Unlike the
// reference, a non-zero exit is not an exception, a session that ends without a status is an
// error (never a green step), and cancellation ends the session (not the command: see
// step_stopper).
#pragma once

#include "engine/common/result.hpp"
#include "kube/errors.hpp"
#include "remote/retry.hpp"

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::kube {
class api_client;
class exec_session;
struct exec_options;
struct exec_session_options;
}

namespace podpipe::hook {

struct step_target {
    std::string ns;
    std::string pod;
    std::string container = "job";
};

/// Runs `argv` (no stdin, no tty); stdout goes to `out_fd`, stderr to `err_fd`. Returns the
/// command's exit code (0..255). Errors: the exec could not start (pod gone, container not
/// running), the connection dropped or ended without an exit status ("the outcome is unknown"),
/// or `stop` was requested (the session is torn down; errc::timeout is not used for that).
/// Heartbeat (§3.8): a WebSocket ping every `period`; no answer (or any data) within
/// `deadline` ends the step as failed ("the connection ... went silent").
struct heartbeat {
    std::chrono::milliseconds period{5'000};
    std::chrono::milliseconds deadline{61'000};
};

result<int, kube::api_error> exec_step(kube::api_client& client, const step_target& target,
                                       const std::vector<std::string>& argv, int out_fd,
                                       int err_fd, std::stop_token stop = {},
                                       heartbeat hb = {});

/// Whether an exec that never opened (the upgrade failed) may open on another try: 429, a 5xx
/// (not the kubelet's "container not found", kube::errc::exec_failed), a refused, reset or
/// timed-out connection, a TLS handshake or a connection dropped while the upgrade was under
/// way (an API server that restarts). Not a 4xx (403, 404, 400: no permission, no pod, a
/// container not running), a rejected certificate, or a cancellation. The hook's pods run
/// under restartPolicy Never, so a container that is not found stays so.
bool exec_open_may_pass(const kube::api_error& e);

/// How a one-shot exec of the hook (not a step, not a copy: the /github set-up, the alpine
/// check, the removals) is tried again: the copies' backoff (remote/retry.hpp), bounded by
/// `policy.retry_for` (PODPIPE_COPY_RETRY_SECONDS: hook_env::copy_retry_policy()), on top of
/// the kube client's own few retries. An exec that never opened ran nothing, so opening again
/// is always safe. One that opened and then broke (no status, a dropped connection) may have
/// run: it is run again only when `idempotent` (the caller says why in a comment).
struct exec_retry {
    remote::retry_policy policy{std::chrono::milliseconds(0)}; ///< 0: the client's retries only
    bool idempotent = false;
    std::string what; ///< "preparing /github in pod P": starts each retry warning
    std::function<void(const std::string&)> on_warning;
};

/// exec_step, tried again under `retry`. The error of the last attempt, with how many there
/// were and the first failure when it differed (remote::retry_schedule::final_error).
result<int, kube::api_error> exec_step_retried(kube::api_client& client,
                                               const step_target& target,
                                               const std::vector<std::string>& argv,
                                               int out_fd, int err_fd, std::stop_token stop,
                                               const exec_retry& retry);

/// Opens an exec of `o` and hands the session to `use` (which writes stdin, waits, returns the
/// exit code), tried again under `retry`: an open that failed for a reason
/// exec_open_may_pass() accepts, and when `retry.idempotent` a session that broke in `use`
/// (step_session_broke()). For the one-shot execs that write their stdin or read stderr.
result<int, kube::api_error>
exec_retried(kube::api_client& client, const kube::exec_options& o,
             const kube::exec_session_options& so, const exec_retry& retry,
             const std::function<result<int, kube::api_error>(kube::exec_session&)>& use);

/// A step run under the in-pod `podpipe run` (remote/step_spool.hpp; the pod's podpipe lists
/// the step-run capability). The step runs detached from the session, its output spooled in the
/// pod, so a session that breaks (a dropped connection, an API-server restart, no status) does
/// not end it: exec_step_resumable counts the bytes it printed of each stream, and attaches a
/// new session (`podpipe run --attach --stdout-from N --stderr-from M`) with backoff until
/// `reattach_for` has passed since the break, printing each byte exactly once and returning
/// the step's own exit code.
struct resumable_step {
    std::string podpipe; ///< the in-pod podpipe, e.g. /__e/podpipe/podpipe
    std::string spool;   ///< the step's spool directory in the pod (must not exist yet)
    std::chrono::milliseconds reattach_for{300'000};
    std::chrono::milliseconds first_backoff{250};
    std::function<void(const std::string&)> on_warning; ///< "re-attaching ..." lines
};

/// The step's spool stays after it: the next step's `podpipe run` removes the ended ones beside
/// its own (no exec of its own; remote/step_spool.hpp), the last one goes with the pod.
/// Errors: as exec_step's, and `podpipe run`'s own failures (exit 125 with a "podpipe run: "
/// line: the spool could not be made, or is gone) as errc::exec_failed; a break that outlasts
/// `reattach_for` with the last error.
result<int, kube::api_error> exec_step_resumable(kube::api_client& client,
                                                 const step_target& target,
                                                 const resumable_step& how,
                                                 const std::vector<std::string>& argv,
                                                 int out_fd, int err_fd,
                                                 std::stop_token stop = {}, heartbeat hb = {});

/// Whether `e` is a session that opened and then broke (the step may go on in the pod), or
/// one that could not open for a reason that can pass (connection refused, 5xx, 429).
bool step_session_broke(const kube::api_error& e);
bool step_session_may_open_later(const kube::api_error& e);

/// The error text of a step whose exec failed (not cancelled): "failed to run script step:
/// <e>", and when the session broke before the exit status (an API-server restart, a dropped
/// link, a connection gone silent, a session closed without status) that the step's exit code
/// is unknown and that the step may still be running in its pod: a kubelet does not stop an
/// exec's command when its connection goes.
std::string step_failure_message(const kube::api_error& e, const step_target& target);

/// Stops a cancelled step script in its pod. Closing the exec does not stop the command on a
/// kubelet (spec/hook-behavior.md §3.7, PR #375), so the script records its shell's pid first
/// (record_line(), the script's first line), and after a cancellation stop() TERMs the step's
/// process group in the pod (an exec'd process leads a session of its own), waits up to 2 s
/// for it to go, then KILLs; with a session of its own (the hook's stop token is spent),
/// bounded by 5 s.
class step_stopper {
public:
    /// `script_name`: the step's fresh script file name (names the pid file in the pod's /tmp).
    explicit step_stopper(const std::string& script_name);
    /// "echo $$ > /tmp/podpipe-step-NAME.pid" (a failure ignored) and a newline.
    std::string record_line() const;
    /// The step's error: "the step was cancelled; its process in pod P was stopped" (or "may
    /// still be running" when the stop failed).
    kube::api_error stop(kube::api_client& client, const step_target& target, int out_fd,
                         int err_fd) const;

private:
    std::string pid_file_;
};

} // namespace podpipe::hook
