#include "hooks/commands/exec_step.hpp"

#include "engine/pipeline/byte_stream.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/transport/error.hpp"
#include "hooks/commands/errors.hpp"
#include "kube/client.hpp"
#include "remote/step_spool.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <optional>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace podpipe::hook {

namespace {

/// Writes everything to `fd` (EINTR retried); false when the fd refuses. Counts what went.
bool write_fd(int fd, const char* p, std::size_t left, std::uint64_t* written) {
    while (left > 0) {
        const ssize_t n = ::write(fd, p, left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        left -= static_cast<std::size_t>(n);
        if (written != nullptr)
            *written += static_cast<std::uint64_t>(n);
    }
    return true;
}

/// stdout of a step: to its fd, counted.
class counting_fd_sink final : public pipeline::byte_sink {
public:
    counting_fd_sink(int fd, std::uint64_t* count) : inner_(fd), count_(count) {}
    result<void> write(std::span<const std::byte> bytes) override {
        auto r = inner_.write(bytes);
        if (r && count_ != nullptr)
            *count_ += bytes.size();
        return r;
    }
    void interrupt() noexcept override { inner_.interrupt(); }

private:
    pipeline::fd_sink inner_;
    std::uint64_t* count_;
};

struct step_counts {
    std::uint64_t out = 0, err = 0;
    std::string last_err_line; ///< the last complete stderr line (podpipe run's own failures)
    std::string err_partial;
};

/// One exec of `argv`; stdout and stderr to the fds, counted in `counts` when given.
result<int, kube::api_error> exec_once(kube::api_client& client, const step_target& target,
                                       const std::vector<std::string>& argv, int out_fd,
                                       int err_fd, std::stop_token stop, heartbeat hb,
                                       step_counts* counts, bool* opened = nullptr) {
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
    so.on_stderr = [err_fd, counts](std::span<const std::byte> bytes) {
        // Best effort, like a terminal: a closed stderr must not fail the step.
        const auto* p = reinterpret_cast<const char*>(bytes.data());
        write_fd(err_fd, p, bytes.size(), nullptr);
        if (counts == nullptr)
            return;
        counts->err += bytes.size(); // what the pod sent: the spool's offset
        counts->err_partial.append(p, bytes.size());
        if (const auto nl = counts->err_partial.rfind('\n'); nl != std::string::npos) {
            const auto start = counts->err_partial.rfind('\n', nl == 0 ? 0 : nl - 1);
            counts->last_err_line = counts->err_partial.substr(
                start == std::string::npos || nl == 0 ? 0 : start + 1,
                nl - (start == std::string::npos || nl == 0 ? 0 : start + 1));
            counts->err_partial.erase(0, nl + 1);
        }
        if (counts->err_partial.size() > 4096)
            counts->err_partial.erase(0, counts->err_partial.size() - 4096);
    };
    auto cancelled = [&]() -> result<int, kube::api_error> {
        kube::api_error e(std::make_error_code(std::errc::operation_canceled), "");
        e.message = "the step was cancelled; its session with pod " + target.pod + " was closed";
        return fail(std::move(e));
    };
    auto session = client.exec(o, so);
    if (!session)
        return stop.stop_requested() ? cancelled() : fail(session.error());
    if (opened != nullptr)
        *opened = true;
    kube::exec_session& s = **session;
    std::stop_callback on_stop(stop, [&s] { s.abort(); });
    counting_fd_sink out(out_fd, counts != nullptr ? &counts->out : nullptr);
    auto code = s.wait(&out);
    if (stop.stop_requested())
        return cancelled();
    return code;
}

/// `e` for a retry_schedule: permanent unless `worth_another` (remote::worth_retrying()).
remote::copy_error as_copy_error(const kube::api_error& e, bool worth_another) {
    return remote::copy_error{pipeline::exit_failure, e.what(), {}, !worth_another};
}

/// `last` with what the schedule adds to its final error ("(after 4 attempts over 9.1 s);
/// the first failure: ...").
kube::api_error with_attempts(kube::api_error last, const remote::retry_schedule& schedule) {
    const std::string was = last.what();
    const std::string told = schedule.final_error(as_copy_error(last, false)).message;
    if (told.size() > was.size() && told.starts_with(was))
        last.message = (last.message.empty() ? last.code.message() : last.message) +
                       told.substr(was.size());
    return last;
}

/// "<what> failed (attempt N): ...; trying again in ..." through `retry.on_warning`.
std::function<void(const remote::retry_notice&)> warn_of(const exec_retry& retry) {
    if (!retry.on_warning)
        return {};
    return [&retry](const remote::retry_notice& n) {
        retry.on_warning(retry.what + " " + remote::retry_text(n));
    };
}

} // namespace

bool exec_open_may_pass(const kube::api_error& e) {
    if (e.code == transport::errc::cancelled || e.is(kube::errc::cancelled) ||
        e.is(kube::errc::exec_failed))
        return false;
    // retryable: 429, 500, 502/503, 504, refused/reset/timed-out connections; peer_closed: a
    // connection that closed during the upgrade; tls_failed: a handshake the server dropped.
    return e.retryable() || e.code == condition::peer_closed ||
           e.code == transport::errc::tls_failed;
}

result<int, kube::api_error> exec_step_retried(kube::api_client& client,
                                               const step_target& target,
                                               const std::vector<std::string>& argv,
                                               int out_fd, int err_fd, std::stop_token stop,
                                               const exec_retry& retry) {
    remote::retry_schedule schedule(retry.policy, stop);
    const auto warn = warn_of(retry);
    for (;;) {
        bool opened = false;
        auto code = exec_once(client, target, argv, out_fd, err_fd, stop, {}, nullptr, &opened);
        if (code || stop.stop_requested())
            return code;
        const bool again = opened ? retry.idempotent && step_session_broke(code.error())
                                  : exec_open_may_pass(code.error());
        if (!schedule.again(as_copy_error(code.error(), again), warn))
            return fail(with_attempts(std::move(code.error()), schedule));
    }
}

result<int, kube::api_error>
exec_retried(kube::api_client& client, const kube::exec_options& o,
             const kube::exec_session_options& so, const exec_retry& retry,
             const std::function<result<int, kube::api_error>(kube::exec_session&)>& use) {
    remote::retry_schedule schedule(retry.policy, so.stop);
    const auto warn = warn_of(retry);
    for (;;) {
        auto session = client.exec(o, so);
        bool again = false;
        result<int, kube::api_error> code = 0;
        if (!session) {
            code = fail(session.error());
            again = exec_open_may_pass(session.error());
        } else {
            kube::exec_session& x = **session;
            std::stop_callback on_stop(so.stop, [&x] { x.abort(); });
            code = use(x);
            again = !code && retry.idempotent && step_session_broke(code.error());
        }
        if (code || so.stop.stop_requested())
            return code;
        if (!schedule.again(as_copy_error(code.error(), again), warn))
            return fail(with_attempts(std::move(code.error()), schedule));
    }
}

result<int, kube::api_error> exec_step(kube::api_client& client, const step_target& target,
                                       const std::vector<std::string>& argv, int out_fd,
                                       int err_fd, std::stop_token stop, heartbeat hb) {
    return exec_once(client, target, argv, out_fd, err_fd, stop, hb, nullptr);
}

bool step_session_broke(const kube::api_error& e) {
    return e.code == condition::peer_closed || e.code == transport::errc::connection_reset ||
           e.code == transport::errc::heartbeat_timeout || e.is(kube::errc::missing_status);
}

bool step_session_may_open_later(const kube::api_error& e) {
    // The exec client already retried these a few times; the step goes on meanwhile.
    return e.retryable() || e.code == transport::errc::connect_failed ||
           e.code == condition::peer_closed;
}

result<int, kube::api_error> exec_step_resumable(kube::api_client& client,
                                                 const step_target& target,
                                                 const resumable_step& how,
                                                 const std::vector<std::string>& argv,
                                                 int out_fd, int err_fd, std::stop_token stop,
                                                 heartbeat hb) {
    std::vector<std::string> start{how.podpipe, "run", "--spool", how.spool, "--"};
    start.insert(start.end(), argv.begin(), argv.end());
    step_counts counts;
    auto code = exec_once(client, target, start, out_fd, err_fd, stop, hb, &counts);
    std::optional<std::chrono::steady_clock::time_point> broke_at;
    auto backoff = how.first_backoff;
    int attempt = 0;
    const std::string not_started = "podpipe run: " + std::string(remote::step::not_started);
    if (code && *code == remote::step::exit_run_failed &&
        counts.last_err_line.starts_with(not_started) && counts.out == 0) {
        // Nothing of the step ran (no spool: a read-only /tmp): it runs in its session.
        if (how.on_warning)
            how.on_warning("the step runs in its exec session, so a broken session will fail "
                           "it: " + counts.last_err_line);
        return exec_once(client, target, argv, out_fd, err_fd, stop, hb, nullptr);
    }
    for (;;) {
        if (code && *code == remote::step::exit_run_failed &&
            counts.last_err_line.starts_with("podpipe run: ")) {
            kube::api_error e(kube::errc::exec_failed, "podpipe run in pod " + target.pod);
            e.message = counts.last_err_line;
            return fail(std::move(e));
        }
        // The spool stays: the next step's `podpipe run` removes it (remote/step_spool.hpp).
        if (code || stop.stop_requested())
            return code;
        const bool broke = step_session_broke(code.error());
        if (!broke && !(attempt > 0 && step_session_may_open_later(code.error())))
            return code; // the step never started (first exec), or a refusal that stays
        const auto now = std::chrono::steady_clock::now();
        if (!broke_at)
            broke_at = now;
        if (now - *broke_at >= how.reattach_for) {
            kube::api_error e = code.error();
            e.message = (e.message.empty() ? e.what() : e.message) +
                        " (re-attaching gave up after " +
                        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                           how.reattach_for)
                                           .count()) +
                        " s)";
            return fail(std::move(e));
        }
        ++attempt;
        if (how.on_warning)
            how.on_warning("the session with pod " + target.ns + "/" + target.pod +
                           " broke during the step (" + code.error().what() +
                           "); the step goes on there: re-attaching from byte " +
                           std::to_string(counts.out) + " of its stdout and " +
                           std::to_string(counts.err) + " of its stderr (attempt " +
                           std::to_string(attempt) + ")");
        {
            std::mutex m;
            std::condition_variable_any cv;
            std::unique_lock lock(m);
            cv.wait_for(lock, stop, backoff, [] { return false; });
        }
        if (stop.stop_requested())
            return code;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5'000));
        const std::vector<std::string> attach{how.podpipe, "run", "--spool", how.spool,
                                              "--attach", "--stdout-from",
                                              std::to_string(counts.out), "--stderr-from",
                                              std::to_string(counts.err)};
        code = exec_once(client, target, attach, out_fd, err_fd, stop, hb, &counts);
    }
}

std::string step_failure_message(const kube::api_error& e, const step_target& target) {
    std::string msg = "failed to run script step: " + e.what();
    // A session that opened and then broke; not one that never opened (the step never ran).
    if (step_session_broke(e))
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
