#include "engine/transport/channel_socket.hpp"

#include "engine/transport/channel_message.hpp"
#include "engine/transport/detail/net.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace podpipe::transport {

namespace websocket = boost::beast::websocket;
namespace asio = detail::asio;
namespace beast = detail::beast;
using detail::phase;
using clock = std::chrono::steady_clock;

struct channel_socket::impl {
    impl(tls_context& t, const channel_socket_options& o)
        : options(o)
        , ws(ioc, t.native().ssl)
        , timer(ioc) {}

    ~impl() {
        abort_now(errc::closed);
        work.reset();
        if (io_thread.joinable()) {
            asio::post(ioc, [this] { ioc.stop(); });
            io_thread.join();
        }
    }

    channel_socket_options options;
    asio::io_context ioc; // declared before everything that holds handlers on it
    websocket::stream<detail::tls_stream, false> ws;
    asio::steady_timer timer;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::jthread io_thread;
    std::string protocol;

    // Shared state, guarded by mu.
    mutable std::mutex mu;
    std::condition_variable cv;
    std::error_code failure;
    std::string detail_text;
    bool peer_closed = false;   // the peer's close frame arrived (read loop)
    bool close_started = false; // close() or abort() was called
    bool close_done = false;
    std::optional<close_status> peer_status;
    std::deque<channel_message> received;
    std::size_t received_bytes = 0;
    bool reader_paused = false;
    bool pings_enabled = true;
    channel_socket_stats counters;

    // I/O-thread state.
    std::deque<std::vector<std::byte>> send_queue;
    bool write_pending = false;
    bool ping_pending = false;
    bool close_pending = false;
    bool close_wanted = false;
    clock::time_point write_started;
    clock::time_point last_progress = clock::now();
    clock::time_point last_ping = clock::now();
    beast::flat_buffer read_buffer;

    // --- any thread -----------------------------------------------------------------------

    // Records the first failure, wakes every waiter and tears the connection down.
    void fail_with(std::error_code ec, const beast::error_code* cause = nullptr) {
        {
            std::lock_guard lk(mu);
            if (cause != nullptr) {
                std::string d;
                (void)detail::map_error(*cause, phase::websocket, d);
                if (!detail_text.empty())
                    detail_text += "; ";
                detail_text += d;
            }
            if (!failure && !close_done && !peer_closed)
                failure = ec;
        }
        cv.notify_all();
        asio::post(ioc, [this] { teardown(); });
    }

    void abort_now(errc why) {
        {
            std::lock_guard lk(mu);
            close_started = true;
            if (!failure && !close_done)
                failure = why;
        }
        cv.notify_all();
        asio::post(ioc, [this] { teardown(); });
    }

    // --- I/O thread -----------------------------------------------------------------------

    void teardown() {
        beast::error_code ec;
        timer.cancel();
        beast::get_lowest_layer(ws).socket().close(ec);
    }

    bool stopped() {
        std::lock_guard lk(mu);
        return static_cast<bool>(failure) || close_done || peer_closed;
    }

    void start() {
        start_read();
        arm_timer();
    }

    void start_read() {
        if (detail::inject(options.faults)) {
            fail_with(errc::injected_fault);
            return;
        }
        ws.async_read(read_buffer,
                      [this](const beast::error_code& ec, std::size_t) { on_read(ec); });
    }

    void on_read(const beast::error_code& ec) {
        if (ec == websocket::error::closed) {
            {
                std::lock_guard lk(mu);
                peer_closed = true;
                peer_status = close_status{static_cast<std::uint16_t>(ws.reason().code),
                                           std::string(ws.reason().reason.c_str())};
                if (close_wanted)
                    close_done = true;
            }
            cv.notify_all();
            timer.cancel();
            return;
        }
        if (ec) {
            std::string d;
            fail_with(detail::map_error(ec, phase::websocket, d), &ec);
            return;
        }
        last_progress = clock::now();
        const auto bytes = read_buffer.cdata();
        const std::span<const std::byte> message(static_cast<const std::byte*>(bytes.data()),
                                                 bytes.size());
        auto parsed = parse_channel_message(message, ws.got_text());
        if (!parsed) {
            fail_with(parsed.error());
            return;
        }
        bool pause = false;
        {
            std::lock_guard lk(mu);
            received.push_back(channel_message{
                parsed->channel, std::vector<std::byte>(parsed->data.begin(), parsed->data.end())});
            received_bytes += message.size();
            counters.bytes_received += message.size();
            ++counters.messages_received;
            counters.peak_receive_queue_bytes =
                std::max(counters.peak_receive_queue_bytes, received_bytes);
            pause = received_bytes >= options.receive_queue_bytes;
            reader_paused = pause;
        }
        cv.notify_all();
        read_buffer.clear();
        if (!pause)
            start_read();
    }

    void resume_read() {
        last_progress = clock::now();
        if (!stopped())
            start_read();
    }

    void enqueue(std::vector<std::byte> message) {
        send_queue.push_back(std::move(message));
        if (!write_pending)
            start_write();
    }

    void start_write() {
        if (stopped()) {
            // The peer closed (or we failed) after these were accepted: they can never go.
            discard_queue();
            if (close_wanted)
                start_close();
            return;
        }
        if (detail::inject(options.faults)) {
            fail_with(errc::injected_fault);
            return;
        }
        write_pending = true;
        write_started = clock::now();
        ws.async_write(asio::buffer(send_queue.front().data(), send_queue.front().size()),
                       [this](const beast::error_code& ec, std::size_t) { on_write(ec); });
    }

    void on_write(const beast::error_code& ec) {
        write_pending = false;
        const std::size_t size = send_queue.front().size();
        send_queue.pop_front();
        {
            std::lock_guard lk(mu);
            counters.in_flight_bytes -= size;
            if (!ec) {
                counters.bytes_sent += size;
                ++counters.messages_sent;
            }
        }
        cv.notify_all();
        if (ec) {
            std::string d;
            fail_with(detail::map_error(ec, phase::websocket, d), &ec);
            return;
        }
        last_progress = clock::now();
        write_next();
    }

    // With no write in flight: the next queued message, or the close once the queue is empty
    // (start_write drops what the peer's close or a failure left unsendable).
    void write_next() {
        if (!send_queue.empty())
            start_write();
        else if (close_wanted)
            start_close();
    }

    void request_close() {
        close_wanted = true;
        if (!write_pending)
            write_next(); // else on_write goes on from there
    }

    void discard_queue() {
        std::size_t bytes = 0;
        for (const auto& m : send_queue)
            bytes += m.size();
        send_queue.clear();
        {
            std::lock_guard lk(mu);
            counters.in_flight_bytes -= bytes;
        }
        cv.notify_all();
    }

    void start_close() {
        if (close_pending)
            return;
        {
            std::lock_guard lk(mu);
            if (peer_closed) {
                close_done = true;
                cv.notify_all();
                return;
            }
            if (failure)
                return;
        }
        if (detail::inject(options.faults)) {
            fail_with(errc::injected_fault);
            return;
        }
        close_pending = true;
        ws.async_close(websocket::close_code::normal, [this](const beast::error_code& ec) {
            close_pending = false;
            if (!ec || ec == websocket::error::closed) {
                {
                    std::lock_guard lk(mu);
                    close_done = true;
                    if (!peer_status)
                        peer_status = close_status{static_cast<std::uint16_t>(ws.reason().code),
                                                   std::string(ws.reason().reason.c_str())};
                }
                cv.notify_all();
                timer.cancel();
                return;
            }
            std::string d;
            fail_with(detail::map_error(ec, phase::websocket, d), &ec);
        });
    }

    std::chrono::milliseconds tick() const {
        std::chrono::milliseconds t{1000};
        if (options.ping_interval.count() > 0)
            t = std::min({t, options.ping_interval, options.pong_timeout / 4});
        t = std::min(t, options.write_timeout / 4);
        return std::max(t, std::chrono::milliseconds(5));
    }

    void arm_timer() {
        timer.expires_after(tick());
        timer.async_wait([this](const beast::error_code& ec) {
            if (!ec)
                on_tick();
        });
    }

    void on_tick() {
        if (stopped())
            return;
        const auto now = clock::now();
        if (write_pending && now - write_started > options.write_timeout) {
            fail_with(errc::timeout);
            return;
        }
        bool paused = false;
        bool pings = false;
        {
            std::lock_guard lk(mu);
            paused = reader_paused;
            pings = pings_enabled && !close_started;
        }
        // Blocked by our own flow control, or pings switched off (a healthy peer may then
        // stay silent for any time): no verdict on the peer; TCP keepalive remains.
        if (paused || write_pending || !pings)
            last_progress = now;
        if (options.ping_interval.count() > 0) {
            if (now - last_progress > options.pong_timeout) {
                fail_with(errc::heartbeat_timeout);
                return;
            }
            if (pings && !ping_pending && now - last_ping >= options.ping_interval) {
                ping_pending = true;
                last_ping = now;
                ws.async_ping({}, [this](const beast::error_code& ec) {
                    ping_pending = false;
                    if (ec && ec != websocket::error::closed) {
                        std::string d;
                        fail_with(detail::map_error(ec, phase::websocket, d), &ec);
                    }
                });
            }
        }
        arm_timer();
    }
};

channel_socket::channel_socket(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

channel_socket::~channel_socket() = default;

result<std::unique_ptr<channel_socket>> channel_socket::connect(
    tls_context& tls, std::string_view host, std::uint16_t port, std::string_view target,
    const channel_socket_options& options, upgrade_failure* failure) {
    if (options.max_message_bytes < 2 || options.max_in_flight_bytes == 0 ||
        options.receive_queue_bytes == 0 || options.max_receive_message_bytes == 0)
        return fail(errc::bad_argument);
    auto i = std::make_unique<impl>(tls, options);
    const auto deadline = clock::now() + options.connect_timeout;
    std::string detail_text;
    auto fail_connect = [&](std::error_code ec) -> result<std::unique_ptr<channel_socket>> {
        beast::error_code ignored;
        beast::get_lowest_layer(i->ws).socket().close(ignored);
        if (failure != nullptr)
            failure->detail = detail_text;
        return fail(ec);
    };
    auto tls_ok = detail::connect_tls(i->ioc, i->ws.next_layer(), tls, host, port,
                                      options.connect_timeout, options.faults, detail_text,
                                      options.stop);
    if (!tls_ok)
        return fail_connect(tls_ok.error());

    std::string offered;
    for (const auto& p : options.subprotocols) {
        if (!offered.empty())
            offered += ", ";
        offered += p;
    }
    i->ws.set_option(websocket::stream_base::decorator(
        [headers = options.headers, offered](websocket::request_type& req) {
            for (const auto& h : headers) {
                const auto f = boost::beast::http::string_to_field(h.name);
                if (f == boost::beast::http::field::host ||
                    f == boost::beast::http::field::sec_websocket_protocol ||
                    f == boost::beast::http::field::sec_websocket_key ||
                    f == boost::beast::http::field::sec_websocket_version ||
                    f == boost::beast::http::field::sec_websocket_extensions)
                    continue;
                req.insert(h.name, h.value);
            }
            if (!offered.empty())
                req.set(boost::beast::http::field::sec_websocket_protocol, offered);
        }));
    i->ws.read_message_max(options.max_receive_message_bytes);
    i->ws.auto_fragment(false);
    // A client masks every frame, and Beast masks through a buffer of this size, one TLS record
    // and one socket write per buffer: its default (4 KiB) cost ~20% more sender CPU at level 0
    // (253 MB tree, unlimited simulated link) than 64 KiB, which fills TLS's 16 KiB records.
    i->ws.write_buffer_bytes(64u << 10);
    i->ws.binary(true);

    if (detail::inject(options.faults))
        return fail_connect(errc::injected_fault);
    websocket::response_type response;
    beast::error_code ec;
    const auto left = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   deadline - clock::now()),
                               std::chrono::milliseconds(1));
    {
        // Destroyed before the I/O thread starts: a stop that comes later does not touch the
        // open socket (the caller aborts the session instead).
        detail::stop_guard guard(i->ioc, beast::get_lowest_layer(i->ws).socket(), options.stop);
        if (guard.stopped())
            return fail_connect(errc::cancelled);
        beast::get_lowest_layer(i->ws).expires_after(left);
        i->ws.async_handshake(response, detail::host_header(host, port, 443),
                              std::string(target), [&](const beast::error_code& e) { ec = e; });
        detail::run_all(i->ioc);
        if (guard.stopped())
            return fail_connect(errc::cancelled);
    }
    beast::get_lowest_layer(i->ws).expires_never();
    if (ec) {
        if (response.result_int() != 0 && response.result_int() != 101) {
            if (failure != nullptr) {
                failure->status = response.result_int();
                failure->headers.clear();
                for (const auto& f : response)
                    failure->headers.push_back(
                        {std::string(f.name_string()), std::string(f.value())});
                failure->body = response.body().substr(0, 1u << 20);
            }
            return fail_connect(errc::upgrade_rejected);
        }
        return fail_connect(detail::map_error(ec, phase::http, detail_text));
    }
    const auto echoed = response[boost::beast::http::field::sec_websocket_protocol];
    i->protocol = std::string(echoed);
    if (!options.subprotocols.empty() &&
        std::find(options.subprotocols.begin(), options.subprotocols.end(), i->protocol) ==
            options.subprotocols.end())
        return fail_connect(errc::subprotocol_mismatch);
    if (options.subprotocols.empty() && !i->protocol.empty())
        return fail_connect(errc::subprotocol_mismatch);

    websocket::stream_base::timeout t{};
    t.handshake_timeout = options.close_timeout;
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    i->ws.set_option(t);
    i->ws.control_callback(
        [raw = i.get()](websocket::frame_type kind, boost::beast::string_view) {
            raw->last_progress = clock::now();
            if (kind == websocket::frame_type::pong) {
                std::lock_guard lk(raw->mu);
                ++raw->counters.pongs_received;
            }
        });

    impl* raw = i.get();
    asio::post(raw->ioc, [raw] { raw->start(); });
    raw->ioc.restart();
    raw->work.emplace(asio::make_work_guard(raw->ioc));
    raw->io_thread = std::jthread([raw] { raw->ioc.run(); });
    return std::unique_ptr<channel_socket>(new channel_socket(std::move(i))); // NOLINT
}

const std::string& channel_socket::subprotocol() const noexcept { return impl_->protocol; }

result<void> channel_socket::write(std::uint8_t channel, std::span<const std::byte> data) {
    auto& i = *impl_;
    const std::size_t max_payload = i.options.max_message_bytes - 1;
    do {
        const std::size_t n = std::min(data.size(), max_payload);
        std::vector<std::byte> message(1 + n);
        message[0] = std::byte{channel};
        if (n != 0)
            std::memcpy(message.data() + 1, data.data(), n);
        data = data.subspan(n);
        {
            std::unique_lock lk(i.mu);
            const auto t0 = clock::now();
            i.cv.wait(lk, [&] {
                return i.failure || i.close_started || i.peer_closed ||
                       i.counters.in_flight_bytes == 0 ||
                       i.counters.in_flight_bytes + message.size() <= i.options.max_in_flight_bytes;
            });
            i.counters.write_blocked_ns += static_cast<std::uint64_t>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
            if (i.failure)
                return fail(i.failure);
            if (i.close_started || i.peer_closed)
                return fail(errc::closed);
            i.counters.in_flight_bytes += message.size();
            i.counters.peak_in_flight_bytes =
                std::max(i.counters.peak_in_flight_bytes, i.counters.in_flight_bytes);
        }
        asio::post(i.ioc, [&i, m = std::move(message)]() mutable { i.enqueue(std::move(m)); });
    } while (!data.empty());
    return {};
}

result<void> channel_socket::close_channel(std::uint8_t channel) {
    const auto message = make_close_channel_message(channel);
    // Same queue and budget as data, so it follows every byte written before it. The channel
    // byte of this message is the close id, the data byte is the channel being closed.
    return write(close_channel_id, std::span<const std::byte>(message).subspan(1));
}

result<void> channel_socket::flush() {
    auto& i = *impl_;
    std::unique_lock lk(i.mu);
    // After a close (ours or the peer's) queued bytes are never written: fail instead of
    // waiting for an in-flight count that cannot drain.
    i.cv.wait(lk, [&] {
        return i.failure || i.counters.in_flight_bytes == 0 || i.close_started || i.peer_closed;
    });
    if (i.failure)
        return fail(i.failure);
    if (i.counters.in_flight_bytes != 0)
        return fail(errc::closed);
    return {};
}

result<std::optional<channel_message>> channel_socket::read() {
    auto& i = *impl_;
    std::unique_lock lk(i.mu);
    i.cv.wait(lk, [&] { return !i.received.empty() || i.failure || i.peer_closed; });
    if (!i.received.empty()) {
        channel_message m = std::move(i.received.front());
        i.received.pop_front();
        i.received_bytes -= m.data.size() + 1;
        if (i.reader_paused && i.received_bytes <= i.options.receive_queue_bytes / 2) {
            i.reader_paused = false;
            asio::post(i.ioc, [&i] { i.resume_read(); });
        }
        return std::optional<channel_message>(std::move(m));
    }
    if (i.failure)
        return fail(i.failure);
    return std::optional<channel_message>();
}

result<void> channel_socket::close(std::chrono::milliseconds timeout) {
    auto& i = *impl_;
    {
        std::lock_guard lk(i.mu);
        if (i.failure)
            return fail(i.failure);
        if (i.close_done)
            return {};
        i.close_started = true;
    }
    i.cv.notify_all();
    asio::post(i.ioc, [&i] { i.request_close(); });
    std::unique_lock lk(i.mu);
    if (!i.cv.wait_for(lk, timeout, [&] { return i.failure || i.close_done; })) {
        lk.unlock();
        i.abort_now(errc::timeout);
        return fail(errc::timeout);
    }
    if (i.close_done)
        return {};
    return fail(i.failure);
}

void channel_socket::abort() noexcept { impl_->abort_now(errc::closed); }

void channel_socket::set_pings_enabled(bool enabled) noexcept {
    std::lock_guard lk(impl_->mu);
    impl_->pings_enabled = enabled;
}

std::optional<close_status> channel_socket::peer_close() const {
    std::lock_guard lk(impl_->mu);
    return impl_->peer_status;
}

channel_socket_stats channel_socket::stats() const {
    std::lock_guard lk(impl_->mu);
    return impl_->counters;
}

std::string channel_socket::error_detail() const {
    std::lock_guard lk(impl_->mu);
    return impl_->detail_text;
}

} // namespace podpipe::transport
