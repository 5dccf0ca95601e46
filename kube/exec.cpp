#include "kube/exec.hpp"

#include "engine/transport/error.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <vector>

namespace podpipe::kube {

namespace {

constexpr std::uint8_t stdin_channel = 0;
constexpr std::uint8_t stdout_channel = 1;
constexpr std::uint8_t stderr_channel = 2;
constexpr std::uint8_t status_channel = 3;

} // namespace

struct exec_session::impl {
    class stdin_writer final : public pipeline::byte_sink {
    public:
        explicit stdin_writer(impl& s) noexcept
            : s_(s) {}

        result<void> write(std::span<const std::byte> bytes) override {
            if (!s_.exec.use_stdin)
                return fail(transport::errc::bad_argument);
            if (s_.stdin_finished.load() || s_.status_seen.load())
                return fail(transport::errc::closed); // never send after the status (§2.6)
            if (bytes.empty())
                return {};
            return s_.socket->write(stdin_channel, bytes);
        }

        result<void> finish() override {
            if (!s_.exec.use_stdin)
                return fail(transport::errc::bad_argument);
            if (s_.stdin_finished.exchange(true) || s_.status_seen.load())
                return {}; // the process already ended: nothing left to signal
            // A session the server already closed (errc::closed) ended with its process: a
            // receiver that found the stream's end exits before it sees stdin close, and its
            // status, read by wait(), says how it ended. Only other failures are errors here.
            auto peer_gone = [](const std::error_code& ec) {
                return ec == make_error_code(transport::errc::closed);
            };
            if (auto f = s_.socket->flush(); !f)
                return peer_gone(f.error()) ? result<void>{} : result<void>{fail(f.error())};
            if (!s_.v5)
                return {}; // v4: no half-close exists; the remote command ends by itself
            if (auto c = s_.socket->close_channel(stdin_channel); !c)
                return peer_gone(c.error()) ? result<void>{} : result<void>{fail(c.error())};
            if (!s_.opts.pings_after_stdin_close)
                s_.socket->set_pings_enabled(false);
            return {};
        }

    private:
        impl& s_;
    };

    class stdout_reader final : public pipeline::byte_source {
    public:
        explicit stdout_reader(impl& s) noexcept
            : s_(s) {}

        result<std::size_t> read(std::span<std::byte> into) override {
            return s_.read_stdout(into);
        }

    private:
        impl& s_;
    };

    impl(std::unique_ptr<transport::channel_socket> sock, std::shared_ptr<void> keep, std::string c,
         exec_options e, exec_session_options o)
        : keep_alive(std::move(keep))
        , socket(std::move(sock))
        , call(std::move(c))
        , exec(std::move(e))
        , opts(std::move(o))
        , v5(socket->subprotocol() == "v5.channel.k8s.io")
        , sink(*this)
        , source(*this) {}

    std::shared_ptr<void> keep_alive; // the TLS context: must outlive the socket
    std::unique_ptr<transport::channel_socket> socket;
    std::string call;
    exec_options exec;
    exec_session_options opts;
    bool v5;
    std::atomic<bool> stdin_finished{false};
    std::atomic<bool> status_seen{false};

    // Reading thread only.
    std::optional<std::string> status;
    std::string stderr_tail;
    std::vector<std::byte> pending;
    std::size_t pending_pos = 0;
    bool eof = false;
    std::error_code read_error;
    std::uint64_t stdout_bytes = 0;
    bool waited = false;

    stdin_writer sink;
    stdout_reader source;

    void keep_stderr(std::span<const std::byte> data) {
        if (opts.on_stderr)
            opts.on_stderr(data);
        if (opts.stderr_keep_bytes == 0)
            return;
        const auto* p = reinterpret_cast<const char*>(data.data());
        if (data.size() >= opts.stderr_keep_bytes) {
            stderr_tail.assign(p + data.size() - opts.stderr_keep_bytes, opts.stderr_keep_bytes);
            return;
        }
        const std::size_t total = stderr_tail.size() + data.size();
        if (total > opts.stderr_keep_bytes)
            stderr_tail.erase(0, total - opts.stderr_keep_bytes);
        stderr_tail.append(p, data.size());
    }

    result<std::size_t> read_stdout(std::span<std::byte> into) {
        if (into.empty())
            return std::size_t{0};
        while (pending_pos == pending.size()) {
            if (read_error)
                return fail(read_error);
            if (eof)
                return std::size_t{0};
            auto next = socket->read();
            if (!next) {
                read_error = next.error();
                continue;
            }
            if (!next->has_value()) { // the peer's close frame
                eof = true;
                continue;
            }
            transport::channel_message& m = **next;
            switch (m.channel) {
            case stdout_channel:
                // An empty message is the ready marker (or zero bytes): never the end (§2.3).
                pending = std::move(m.data);
                pending_pos = 0;
                break;
            case stderr_channel:
                if (!m.data.empty())
                    keep_stderr(m.data);
                break;
            case status_channel:
                if (m.data.empty())
                    break; // ready marker when only the status channel was requested
                if (!status)
                    status.emplace();
                status->append(reinterpret_cast<const char*>(m.data.data()), m.data.size());
                // The status is the last data message (§2.4): the stream ends here. Stop
                // pinging so nothing reaches a server that closes without reading (§2.6).
                status_seen.store(true);
                socket->set_pings_enabled(false);
                eof = true;
                break;
            default:
                break; // unknown channels and server-sent close-channel messages: ignored
            }
        }
        const std::size_t n = std::min(into.size(), pending.size() - pending_pos);
        std::copy_n(pending.data() + pending_pos, n, into.data());
        pending_pos += n;
        stdout_bytes += n;
        return n;
    }

    api_error session_error(std::error_code ec, std::string message) const {
        api_error e(ec, call);
        e.message = std::move(message);
        const auto detail = socket->error_detail();
        if (!detail.empty())
            e.message += " [" + sanitize_for_message(detail, 256) + "]";
        return e;
    }

    result<int, api_error> wait(pipeline::byte_sink* out) {
        std::vector<std::byte> buf(64u << 10);
        for (;;) {
            auto n = read_stdout(buf);
            if (!n) {
                socket->abort();
                std::string msg = "connection dropped before the exit status arrived (" +
                                  n.error().message() + ", after " + std::to_string(stdout_bytes) +
                                  " stdout bytes)";
                return fail(session_error(n.error(), std::move(msg)));
            }
            if (*n == 0)
                break;
            if (out != nullptr) {
                if (auto w = out->write(std::span<const std::byte>(buf.data(), *n)); !w) {
                    socket->abort();
                    api_error e(w.error(), call);
                    e.message = "writing the command's stdout: " + w.error().message();
                    return fail(std::move(e));
                }
            }
        }
        if (!status) {
            const auto peer = socket->peer_close();
            std::string msg = "the server closed the session";
            if (peer)
                msg += " (close code " + std::to_string(peer->code) + ")";
            msg += " without an exit status: the outcome is unknown";
            api_error e(errc::missing_status, call);
            e.message = std::move(msg);
            return fail(std::move(e));
        }
        // Complete the closing handshake (reply to the server's close, or start it); the
        // status already decided the outcome, so a failing close is not an error here (a
        // server closing TCP right after the status is the legacy behaviour of §2.6).
        (void)socket->close(opts.close_timeout);
        return exec_exit_code(std::string_view(*status), call);
    }
};

exec_session::exec_session(std::unique_ptr<transport::channel_socket> socket,
                           std::shared_ptr<void> keep_alive, std::string call,
                           const exec_options& exec, exec_session_options options)
    : impl_(std::make_unique<impl>(std::move(socket), std::move(keep_alive), std::move(call), exec,
                                   std::move(options))) {}

exec_session::~exec_session() {
    if (impl_ && impl_->socket)
        impl_->socket->abort(); // no-op after a completed close
}

const std::string& exec_session::protocol() const noexcept { return impl_->socket->subprotocol(); }

bool exec_session::can_half_close_stdin() const noexcept { return impl_->v5; }

pipeline::byte_sink& exec_session::stdin_sink() { return impl_->sink; }

pipeline::byte_source& exec_session::stdout_source() { return impl_->source; }

result<int, api_error> exec_session::wait(pipeline::byte_sink* stdout_sink) {
    return impl_->wait(stdout_sink);
}

const std::string& exec_session::stderr_tail() const noexcept { return impl_->stderr_tail; }

const std::optional<std::string>& exec_session::status_message() const noexcept {
    return impl_->status;
}

void exec_session::abort() noexcept { impl_->socket->abort(); }

transport::channel_socket_stats exec_session::stats() const { return impl_->socket->stats(); }

} // namespace podpipe::kube
