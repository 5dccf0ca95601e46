// pods/exec over WebSocket (spec §2). One session per connection, driven asynchronously on the
// connection thread's own io_context:
//   ws read loop ──ch0──▶ stdin pipe (async_write; the next ws read starts only after it
//                          completed → blocking backpressure, nothing buffered beyond one message)
//   stdout/stderr pipes ──32 KiB reads──▶ write queue (≤ 1 message per pipe) ──▶ ws binary frames
//   pidfd readable ──▶ exit code; once both pipes hit EOF: status on ch3, close 1000, then the read
//   loop keeps answering pings/discarding data until the client's close frame.
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <functional>
#include <memory>

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "tools/kubesim/beast_detail.hpp"
#include "tools/kubesim/sandbox.hpp"
#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = boost::beast::websocket;
namespace http = boost::beast::http;
using error_code = boost::system::error_code;

namespace {

constexpr std::size_t output_chunk_bytes = 32 * 1024; // what kubelet/apiserver use (spec §2.3)
constexpr std::size_t max_frame_bytes = 32 * 1024 * 1024;
/// Throttled sessions: bytes one direction may hold in its delay line (the "hop buffer").
constexpr std::size_t throttle_window_bytes = 1024 * 1024;

/// Picks the subprotocol: v5 whenever offered (apiserver ≥ 1.30 translator), else v4.
std::string select_protocol(std::string_view offered) {
    if (offers_protocol(offered, "v5.channel.k8s.io"))
        return "v5.channel.k8s.io";
    return offers_protocol(offered, "v4.channel.k8s.io") ? "v4.channel.k8s.io" : "";
}

std::string status_message(int exit_code) {
    json::object o;
    o["metadata"] = json::object{};
    if (exit_code == 0) {
        o["status"] = "Success";
    } else {
        std::string code = std::to_string(exit_code);
        o["status"] = "Failure";
        o["message"] = "command terminated with non-zero exit code: command terminated with exit code " + code;
        o["reason"] = "NonZeroExitCode";
        o["details"] = json::object{
            {"causes", json::array{json::object{{"reason", "ExitCode"}, {"message", code}}}}};
    }
    return json::serialize(o);
}

/// An InternalError status. The kubelet's exec server says "error executing command in
/// container: " before a runtime error; the API server's translator adds no such words.
std::string internal_error_message(const std::string& detail, bool from_kubelet = true) {
    json::object o;
    o["metadata"] = json::object{};
    o["status"] = "Failure";
    o["message"] = "Internal error occurred: " +
                   std::string(from_kubelet ? "error executing command in container: " : "") +
                   detail;
    o["reason"] = "InternalError";
    o["details"] = json::object{{"causes", json::array{json::object{{"message", detail}}}}};
    o["code"] = 500;
    return json::serialize(o);
}

class session : public std::enable_shared_from_this<session> {
public:
    session(tls_stream& stream, net::io_context& ioc, http_request req, exec_plan plan, kubelet& k,
            bool v5)
        : ws_(stream), ioc_(ioc), req_(std::move(req)), plan_(std::move(plan)), kubelet_(k), v5_(v5),
          out_(ioc), err_(ioc), in_(ioc), pidfd_(ioc) {}

    // Drops queued callbacks (they hold shared_from_this()); call once the io_context stopped.
    void drop_pending() {
        queue_.clear();
        out_line_.items.clear();
        in_line_.items.clear();
    }

    void start(std::string protocol) {
        ws_.set_option(websocket::stream_base::decorator([protocol](websocket::response_type& res) {
            res.set(http::field::sec_websocket_protocol, protocol);
        }));
        websocket::stream_base::timeout t{};
        t.handshake_timeout = std::chrono::seconds(30); // also bounds the closing handshake
        t.idle_timeout = websocket::stream_base::none();
        t.keep_alive_pings = false;
        ws_.set_option(t);
        ws_.read_message_max(max_frame_bytes);
        ws_.auto_fragment(false);
        ws_.binary(true);
        ws_.async_accept(req_, [self = shared_from_this()](error_code ec) { self->on_accept(ec); });
    }

    ~session() {
        if (exec_error_fd_ >= 0)
            ::close(exec_error_fd_);
        if (pid_ > 0)
            kubelet_.unregister_exec(plan_.pod_uid, pid_);
    }

private:
    struct outgoing {
        std::string data;
        std::function<void()> after;
    };

    void on_accept(error_code ec) {
        if (ec)
            return;
        if (!plan_.target) {
            send(std::string(1, '\x03') + internal_error_message(plan_.not_running_message, false),
                 [self = shared_from_this()] { self->start_close(); });
            read_loop();
            return;
        }
        int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
        int error_pipe[2] = {-1, -1};
        bool ok = ::pipe2(error_pipe, O_CLOEXEC) == 0;
        if (plan_.in)
            ok = ok && ::pipe2(in_pipe, O_CLOEXEC) == 0;
        if (plan_.out || plan_.tty)
            ok = ok && ::pipe2(out_pipe, O_CLOEXEC) == 0;
        if (plan_.err)
            ok = ok && ::pipe2(err_pipe, O_CLOEXEC) == 0;
        sandbox_spec spec;
        spec.enter = true;
        spec.enter_pid = plan_.target->pid;
        spec.root = plan_.target->root;
        spec.argv = plan_.command;
        spec.env = plan_.target->env;
        spec.working_dir = plan_.target->working_dir;
        spec.uid = plan_.target->uid;
        spec.gid = plan_.target->gid;
        spec.supplementary_groups = plan_.target->groups;
        spec.cgroup_procs = plan_.target->cgroup_procs;
        result<pid_t> pid = fail(std::error_code(EPIPE, std::system_category()));
        if (ok) {
            int child_err = plan_.err ? err_pipe[1] : (plan_.tty ? out_pipe[1] : -1);
            pid = spawn_sandbox(spec,
                                spawn_stdio{in_pipe[0], out_pipe[1], child_err, -1, error_pipe[1]});
        }
        exec_error_fd_ = error_pipe[0];
        for (int fd : {in_pipe[0], out_pipe[1], err_pipe[1], error_pipe[1]})
            if (fd >= 0)
                ::close(fd);
        if (!pid) {
            for (int fd : {in_pipe[1], out_pipe[0], err_pipe[0]})
                if (fd >= 0)
                    ::close(fd);
            send(std::string(1, '\x03') + internal_error_message(pid.error().message()),
                 [self = shared_from_this()] { self->start_close(); });
            read_loop();
            return;
        }
        pid_ = *pid;
        kubelet_.register_exec(plan_.pod_uid, pid_);
        int pfd = static_cast<int>(::syscall(SYS_pidfd_open, pid_, 0));
        if (in_pipe[1] >= 0)
            in_.assign(in_pipe[1]);
        if (out_pipe[0] >= 0) {
            out_.assign(out_pipe[0]);
            ++open_outputs_;
        }
        if (err_pipe[0] >= 0) {
            err_.assign(err_pipe[0]);
            ++open_outputs_;
        }
        // Ready message: empty payload on the lowest requested output channel (spec §2.3).
        char ready = plan_.out ? '\x01' : plan_.err ? '\x02' : '\x03';
        send(std::string(1, ready), nullptr);
        if (out_.is_open())
            read_output(out_, out_buf_, '\x01');
        if (err_.is_open())
            read_output(err_, err_buf_, '\x02');
        read_loop();
        if (pfd >= 0) {
            pidfd_.assign(pfd);
            pidfd_.async_wait(net::posix::descriptor_base::wait_read,
                              [self = shared_from_this()](error_code) { self->on_exit(); });
        } else {
            on_exit(); // cannot happen on Linux ≥ 5.3; reap synchronously
        }
    }

    void read_output(net::posix::stream_descriptor& d, std::array<char, output_chunk_bytes>& buf, char channel) {
        d.async_read_some(net::buffer(buf), [self = shared_from_this(), &d, &buf, channel](error_code ec, std::size_t n) {
            if (ec || n == 0) {
                error_code ignored;
                d.close(ignored);
                --self->open_outputs_;
                self->maybe_finish();
                return;
            }
            self->output_bytes_ += n;
            if (self->plan_.drop_after_bytes > 0 && self->output_bytes_ >= self->plan_.drop_after_bytes) {
                self->abort(); // fault: the connection drops mid-stream (no status, no close frame)
                return;
            }
            std::string msg;
            msg.reserve(n + 1);
            msg.push_back(channel);
            msg.append(buf.data(), n);
            if (!self->throttled()) {
                // Read the next chunk only after this one went out: at most one message per pipe.
                self->send(std::move(msg), [self, &d, &buf, channel] { self->read_output(d, buf, channel); });
                return;
            }
            // Throttled: the message enters the delay line and the pipe is read on while less
            // than throttle_window_bytes of this pipe is in the line (latency is pipelined, as on
            // a real link; memory stays bounded).
            std::size_t& in_line = channel == '\x01' ? self->out_line_bytes_ : self->err_line_bytes_;
            bool& paused = channel == '\x01' ? self->out_paused_ : self->err_paused_;
            in_line += n;
            ++self->output_in_line_;
            self->schedule(self->out_line_, self->pace(self->out_pacer_, n),
                           [self, &d, &buf, channel, n, &in_line, &paused, msg = std::move(msg)]() mutable {
                               self->send(std::move(msg), [self, &d, &buf, channel, n, &in_line, &paused] {
                                   in_line -= n;
                                   --self->output_in_line_;
                                   if (paused && in_line < throttle_window_bytes) {
                                       paused = false;
                                       self->read_output(d, buf, channel);
                                   }
                                   self->maybe_finish();
                               });
                           });
            if (in_line < throttle_window_bytes)
                self->read_output(d, buf, channel);
            else
                paused = true;
        });
    }

    void send(std::string data, std::function<void()> after) {
        if (broken_)
            return;
        queue_.push_back({std::move(data), std::move(after)});
        pump();
    }

    void pump() {
        if (writing_ || queue_.empty() || broken_)
            return;
        writing_ = true;
        ws_.async_write(net::buffer(queue_.front().data), [self = shared_from_this()](error_code ec, std::size_t) {
            self->writing_ = false;
            if (ec) {
                self->abort();
                return;
            }
            auto after = std::move(self->queue_.front().after);
            self->queue_.pop_front();
            if (after)
                after();
            self->pump();
        });
    }

    void read_loop() {
        ws_.async_read(rbuf_, [self = shared_from_this()](error_code ec, std::size_t) { self->on_read(ec); });
    }

    void on_read(error_code ec) {
        if (ec) {
            if (!closing_)
                abort(); // client went away (or closed) before the status
            return;
        }
        std::string msg = beast::buffers_to_string(rbuf_.data());
        rbuf_.consume(rbuf_.size());
        if (msg.empty() || closing_) {
            read_loop();
            return;
        }
        unsigned char channel = static_cast<unsigned char>(msg[0]);
        if (channel == 0) {
            if (in_.is_open() && msg.size() > 1) {
                stdin_buf_ = msg.substr(1);
                if (throttled()) {
                    // Delay line toward the pipe; the WebSocket is read on while less than
                    // throttle_window_bytes waits, so backpressure still reaches the client.
                    std::size_t n = stdin_buf_.size();
                    stdin_line_bytes_ += n;
                    schedule(in_line_, pace(in_pacer_, n), [self = shared_from_this(), data = std::move(stdin_buf_)]() mutable {
                        self->stdin_fifo_.push_back(std::move(data));
                        self->pump_stdin();
                    });
                    if (stdin_line_bytes_ < throttle_window_bytes)
                        read_loop();
                    else
                        read_paused_ = true;
                    return;
                }
                // The WebSocket is read again only once this message is in the pipe: blocking
                // backpressure end to end.
                net::async_write(in_, net::buffer(stdin_buf_), [self = shared_from_this()](error_code wec, std::size_t) {
                    if (wec) {
                        error_code ignored;
                        self->in_.close(ignored); // process closed its stdin; drop further input
                    }
                    self->read_loop();
                });
                return;
            }
        } else if (channel == 255 && v5_) {
            if (msg.size() != 2 || static_cast<unsigned char>(msg[1]) > 4) {
                abort(); // malformed CLOSE tears the session down, as the apiserver does
                return;
            }
            if (msg[1] == 0) {
                if (stdin_line_bytes_ > 0) {
                    stdin_close_pending_ = true; // after the delayed data reached the pipe
                } else {
                    error_code ignored;
                    in_.close(ignored);
                }
            }
        }
        // Resize (4), unknown channels and stdin without a pipe are dropped.
        read_loop();
    }

    /// Token-bucket pacing per direction: a message of n bytes is due once the link would have
    /// carried it (n / bandwidth after the previous one), plus the one-way latency.
    struct pacer {
        std::chrono::steady_clock::time_point next{};
    };
    struct delay_line {
        std::deque<std::pair<std::chrono::steady_clock::time_point, std::function<void()>>> items;
        bool running = false;
    };

    bool throttled() const { return plan_.bandwidth_bytes_per_s > 0 || plan_.latency.count() > 0; }

    std::chrono::steady_clock::time_point pace(pacer& p, std::size_t n) {
        auto start = std::max(std::chrono::steady_clock::now(), p.next);
        p.next = start;
        if (plan_.bandwidth_bytes_per_s > 0)
            p.next += std::chrono::nanoseconds(static_cast<std::int64_t>(
                static_cast<double>(n) * 1e9 / static_cast<double>(plan_.bandwidth_bytes_per_s)));
        return p.next + plan_.latency;
    }

    /// FIFO: items fire in order, each not before its due time.
    void schedule(delay_line& l, std::chrono::steady_clock::time_point due, std::function<void()> fire) {
        l.items.emplace_back(due, std::move(fire));
        if (!l.running)
            run_line(l);
    }

    void run_line(delay_line& l) {
        if (l.items.empty() || broken_) {
            l.running = false;
            l.items.clear(); // the closures hold the session: never keep them past an abort
            return;
        }
        l.running = true;
        timer_for(l).expires_at(l.items.front().first);
        timer_for(l).async_wait([self = shared_from_this(), &l](error_code) {
            if (self->broken_) {
                l.running = false;
                l.items.clear();
                return;
            }
            auto fire = std::move(l.items.front().second);
            l.items.pop_front();
            fire();
            self->run_line(l);
        });
    }

    net::steady_timer& timer_for(delay_line& l) { return &l == &out_line_ ? out_timer_ : in_timer_; }

    void pump_stdin() {
        if (stdin_writing_ || broken_)
            return;
        if (stdin_fifo_.empty()) {
            if (stdin_close_pending_ && stdin_line_bytes_ == 0) {
                error_code ignored;
                in_.close(ignored);
            }
            return;
        }
        if (!in_.is_open()) { // the process closed its stdin: drop what is left
            for (const auto& d : stdin_fifo_)
                stdin_line_bytes_ -= d.size();
            stdin_fifo_.clear();
            resume_read();
            return;
        }
        stdin_writing_ = true;
        net::async_write(in_, net::buffer(stdin_fifo_.front()), [self = shared_from_this()](error_code wec, std::size_t) {
            self->stdin_writing_ = false;
            if (wec) {
                error_code ignored;
                self->in_.close(ignored);
            }
            self->stdin_line_bytes_ -= self->stdin_fifo_.front().size();
            self->stdin_fifo_.pop_front();
            self->resume_read();
            self->pump_stdin();
        });
    }

    void resume_read() {
        if (read_paused_ && stdin_line_bytes_ < throttle_window_bytes) {
            read_paused_ = false;
            read_loop();
        }
    }

    void on_exit() {
        if (pid_ > 0) {
            int status = 0;
            if (::waitpid(pid_, &status, 0) == pid_) {
                if (WIFEXITED(status))
                    exit_code_ = WEXITSTATUS(status);
                else if (WIFSIGNALED(status))
                    exit_code_ = 128 + WTERMSIG(status);
            }
        }
        error_code ignored;
        pidfd_.close(ignored);
        exited_ = true;
        shutdown_timer_.cancel();
        maybe_finish();
    }

    // What the sandbox helper wrote when the exec failed ("" when the command ran): the pipe's
    // write ends are closed once the process is gone, so this read does not block.
    std::string read_exec_error() {
        std::string text;
        if (exec_error_fd_ < 0)
            return text;
        char buf[512];
        ssize_t n;
        while ((n = ::read(exec_error_fd_, buf, sizeof buf)) > 0 && text.size() < 4096)
            text.append(buf, static_cast<std::size_t>(n));
        ::close(exec_error_fd_);
        exec_error_fd_ = -1;
        return text;
    }

    // A container runtime's exec id: 64 hex digits.
    static std::string exec_id() { return random_hex(64); }

    void maybe_finish() {
        if (!exited_ || open_outputs_ > 0 || output_in_line_ > 0 || status_sent_ || broken_)
            return;
        status_sent_ = true;
        error_code ignored;
        in_.close(ignored);
        if (plan_.no_status) {
            start_close(); // fault: close 1000 without a status message
            return;
        }
        // A command the runtime could not start: containerd's failure, not an exit code.
        const std::string exec_error = read_exec_error();
        const std::string status =
            exec_error.empty() ? status_message(exit_code_)
            : exec_error.starts_with(runtime_refusal_mark)
                ? internal_error_message("failed to exec in container: " +
                                         exec_error.substr(runtime_refusal_mark.size()))
                : internal_error_message("failed to exec in container: failed to start exec \"" +
                                         exec_id() + "\": OCI runtime exec failed: exec failed: "
                                         "unable to start container process: " + exec_error);
        send(std::string(1, '\x03') + status, [self = shared_from_this()] {
            if (self->plan_.legacy_close) {
                // fault: old kubelet/proxy behaviour, TCP closed right after the status.
                self->closing_ = true;
                error_code ec;
                if (self->plan_.reset_on_close) // SO_LINGER 0: the close sends RST, not FIN
                    beast::get_lowest_layer(self->ws_).set_option(net::socket_base::linger(true, 0), ec);
                beast::get_lowest_layer(self->ws_).close(ec);
                return;
            }
            self->start_close();
        });
    }

    void start_close() {
        if (closing_)
            return;
        closing_ = true;
        // Close 1000, then the pending read loop sees the client's close frame (spec §2.6).
        ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](error_code) {});
    }

    // The connection goes (or is torn down) before the status: like a kubelet, the process keeps
    // running (spec hook-behavior.md §3.7: closing an exec does not stop it; PR #375), its stdin
    // at EOF and its output read and dropped; it is reaped when it exits (the pidfd wait holds
    // the session), and stopped with its pod or at shutdown.
    void abort() {
        if (broken_)
            return;
        broken_ = true;
        error_code ignored;
        in_.close(ignored);
        beast::get_lowest_layer(ws_).close(ignored);
        watch_shutdown();
    }

    // A process left running by a broken session holds this session's thread (the pidfd wait);
    // the pod's stop kills it, and this makes sure kubesim's own shutdown does too.
    void watch_shutdown() {
        if (exited_ || pid_ <= 0)
            return;
        if (kubelet_.shutting_down()) {
            ::kill(-pid_, SIGKILL);
            return;
        }
        shutdown_timer_.expires_after(std::chrono::milliseconds(100));
        shutdown_timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec)
                self->watch_shutdown();
        });
    }

    websocket::stream<tls_stream&> ws_;
    net::io_context& ioc_;
    http_request req_;
    exec_plan plan_;
    kubelet& kubelet_;
    bool v5_;
    net::posix::stream_descriptor out_, err_, in_, pidfd_;
    std::array<char, output_chunk_bytes> out_buf_{}, err_buf_{};
    beast::flat_buffer rbuf_;
    std::string stdin_buf_;
    std::deque<outgoing> queue_;
    bool writing_ = false;
    int open_outputs_ = 0;
    bool exited_ = false;
    int exit_code_ = 0;
    int exec_error_fd_ = -1; ///< read end of the sandbox's exec-error pipe
    bool status_sent_ = false;
    bool closing_ = false;
    bool broken_ = false;
    pid_t pid_ = -1;
    std::uint64_t output_bytes_ = 0;
    pacer out_pacer_, in_pacer_;
    delay_line out_line_, in_line_;
    net::steady_timer out_timer_{ioc_}, in_timer_{ioc_};
    net::steady_timer shutdown_timer_{ioc_};
    std::size_t out_line_bytes_ = 0, err_line_bytes_ = 0, stdin_line_bytes_ = 0;
    int output_in_line_ = 0;
    bool out_paused_ = false, err_paused_ = false, read_paused_ = false;
    std::deque<std::string> stdin_fifo_;
    bool stdin_writing_ = false, stdin_close_pending_ = false;
};

} // namespace

void run_exec_session(tls_stream& stream, net::io_context& ioc, http_request req, exec_plan plan,
                      kubelet& kubelet) {
    std::string protocol = select_protocol(req[http::field::sec_websocket_protocol]);
    if (protocol.empty()) {
        // x/net/websocket answers an unmatched subprotocol with 403 and an empty body.
        http::response<http::empty_body> res{http::status::forbidden, req.version()};
        res.keep_alive(false);
        res.prepare_payload();
        error_code ec;
        http::write(stream, res, ec);
        beast::get_lowest_layer(stream).close(ec);
        return;
    }
    bool v5 = protocol == "v5.channel.k8s.io";
    std::weak_ptr<session> left;
    {
        auto s = std::make_shared<session>(stream, ioc, std::move(req), std::move(plan), kubelet, v5);
        s->start(protocol);
        left = s;
    }
    ioc.run();
    ioc.restart();
    // Callbacks still queued in the session (a write that failed, a delay line cut short) hold
    // shared_from_this(); nothing runs them any more, so drop them or the session keeps itself
    // alive (LeakSanitizer saw it after a dropped connection).
    if (auto s = left.lock())
        s->drop_pending();
    error_code ec;
    beast::get_lowest_layer(stream).close(ec);
}

} // namespace podpipe::kubesim::detail
