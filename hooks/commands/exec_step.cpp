#include "hooks/commands/exec_step.hpp"

#include "engine/pipeline/byte_stream.hpp"
#include "engine/transport/error.hpp"
#include "hooks/commands/errors.hpp"
#include "kube/client.hpp"

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace podpipe::hook {

result<int, kube::api_error> exec_step(kube::api_client& client, const step_target& target,
                                       const std::vector<std::string>& argv, int out_fd,
                                       int err_fd, std::stop_token stop, heartbeat hb) {
    kube::exec_options o;
    o.ns = target.ns;
    o.pod = target.pod;
    o.container = target.container;
    o.command = argv;
    o.use_stdin = false;
    kube::exec_session_options so;
    so.stop = stop; // a cancel while the session opens ends the opening too
    so.ping_interval = hb.period;
    so.pong_timeout = hb.deadline;
    so.on_stderr = [err_fd](std::span<const std::byte> bytes) {
        // Best effort, like a terminal: a closed stderr must not fail the step.
        const auto* p = reinterpret_cast<const char*>(bytes.data());
        std::size_t left = bytes.size();
        while (left > 0) {
            const ssize_t n = ::write(err_fd, p, left);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;
            p += n;
            left -= static_cast<std::size_t>(n);
        }
    };
    auto cancelled = [&]() -> result<int, kube::api_error> {
        kube::api_error e(std::make_error_code(std::errc::operation_canceled), "");
        e.message = "the step was cancelled; its session with pod " + target.pod + " was closed";
        return fail(std::move(e));
    };
    auto session = client.exec(o, so);
    if (!session)
        return stop.stop_requested() ? cancelled() : fail(session.error());
    kube::exec_session& s = **session;
    std::stop_callback on_stop(stop, [&s] { s.abort(); });
    pipeline::fd_sink out(out_fd);
    auto code = s.wait(&out);
    if (stop.stop_requested())
        return cancelled();
    return code;
}

std::string step_failure_message(const kube::api_error& e, const step_target& target) {
    std::string msg = "failed to run script step: " + e.what();
    // A session that opened and then broke; not one that never opened (the step never ran).
    const bool broke = e.code == condition::peer_closed ||
                       e.code == transport::errc::connection_reset ||
                       e.code == transport::errc::heartbeat_timeout ||
                       e.is(kube::errc::missing_status);
    if (broke)
        msg += "; the step's exit code is unknown, and it may still be running in pod " +
               target.ns + "/" + target.pod;
    return msg;
}

step_stopper::step_stopper(const std::string& script_name)
    : pid_file_("/tmp/podpipe-step-" + script_name + ".pid") {}

// Never fails the step (it runs under sh -e): a read-only /tmp only loses the stop.
std::string step_stopper::record_line() const {
    return "{ echo $$ > " + pid_file_ + "; } 2>/dev/null || :\n";
}

kube::api_error step_stopper::stop(kube::api_client& client, const step_target& target, int out_fd,
                                   int err_fd) const {
    // TERM to the group, then up to 2 s for it to go (polled: most steps go at once, and the
    // exec's set-up on a loaded node keeps the rest of the 5 s), then KILL. No `--` before a
    // negative pid: dash's kill refuses it. A sleep without fractions (an old busybox) counts
    // as ten polls.
    const std::string alive = "{ kill -0 -\"$p\" 2>/dev/null || kill -0 \"$p\" 2>/dev/null; }";
    const std::string kill =
        "p=$(cat " + pid_file_ + " 2>/dev/null) && [ -n \"$p\" ] && "
        "{ kill -TERM -\"$p\" 2>/dev/null; kill -TERM \"$p\" 2>/dev/null; i=0; "
        "while [ $i -lt 20 ] && " + alive + "; do "
        "if sleep 0.1 2>/dev/null; then i=$((i+1)); else sleep 1; i=$((i+10)); fi; done; "
        "kill -KILL -\"$p\" 2>/dev/null; kill -KILL \"$p\" 2>/dev/null; }; rm -f " + pid_file_;
    std::stop_source limit;
    std::jthread timer([&limit](std::stop_token t) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        cv.wait_for(lock, t, std::chrono::seconds(5), [] { return false; });
        limit.request_stop();
    });
    auto killed = exec_step(client, target, {"sh", "-c", kill}, out_fd, err_fd, limit.get_token());
    return make_error(errc::step, "the step was cancelled; its process in pod " + target.pod +
                                      (killed && *killed == 0 ? " was stopped" : " may still be running"));
}

} // namespace podpipe::hook
