#include "hooks/commands/exec_step.hpp"

#include "engine/pipeline/byte_stream.hpp"
#include "hooks/k8s/client.hpp"

#include <unistd.h>

#include <cerrno>

namespace podpipe::hook {

result<int, k8s::hook_error> exec_step(k8s::api_client& client, const step_target& target,
                                       const std::vector<std::string>& argv, int out_fd,
                                       int err_fd, std::stop_token stop, heartbeat hb) {
    k8s::exec_options o;
    o.ns = target.ns;
    o.pod = target.pod;
    o.container = target.container;
    o.command = argv;
    o.use_stdin = false;
    k8s::exec_session_options so;
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
    auto session = client.exec(o, so);
    if (!session)
        return fail(session.error());
    k8s::exec_session& s = **session;
    std::stop_callback on_stop(stop, [&s] { s.abort(); });
    pipeline::fd_sink out(out_fd);
    auto code = s.wait(&out);
    if (stop.stop_requested()) {
        k8s::hook_error e(std::make_error_code(std::errc::operation_canceled), "");
        e.message = "the step was cancelled; its command in pod " + target.pod + " was stopped";
        return fail(std::move(e));
    }
    return code;
}

} // namespace podpipe::hook
