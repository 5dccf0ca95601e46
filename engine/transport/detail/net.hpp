// Internal to engine/transport (never included by other components): the Beast/Asio types
// shared by http_client and channel_socket, the TLS connect sequence and error mapping.
#pragma once

#include "engine/common/result.hpp"
#include "engine/transport/error.hpp"
#include "engine/transport/fault_injection.hpp"
#include "engine/transport/tls.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>

namespace podpipe::transport {

struct tls_context::impl {
    explicit impl(tls_config c)
        : config(std::move(c))
        , ssl(boost::asio::ssl::context::tls_client) {}
    tls_config config;
    boost::asio::ssl::context ssl;
};

namespace detail {

namespace asio = boost::asio;
namespace beast = boost::beast;

using tls_stream = beast::ssl_stream<beast::tcp_stream>;

/// Which step failed; errors are mapped per phase (an EOF during connect is not a 1006).
enum class phase { resolve, connect, handshake, http, websocket };

/// Maps a Boost/OpenSSL error to a transport code and appends its text to `detail`.
std::error_code map_error(const beast::error_code& ec, phase p, std::string& detail);

/// Counts one operation on `faults` (may be null); true if it must fail.
inline bool inject(fault_injection* faults) { return faults != nullptr && faults->should_fail(); }

/// Runs `ioc` on the calling thread until it has no more work (after restart()).
inline void run_all(asio::io_context& ioc) {
    ioc.restart();
    ioc.run();
}

/// Makes the blocking operations that the calling thread runs on `ioc` interruptible by
/// `stop`. The stop callback may run on any thread, and Asio objects are not thread-safe, so
/// it only posts a handler onto `ioc`; that handler, run by the thread that runs `ioc`, closes
/// `socket` and cancels the resolver set with watch_resolver(), and the pending operation
/// completes with operation_aborted. The caller checks stopped() after each run of `ioc` (and
/// before starting an operation) and reports errc::cancelled. Destroy the guard on the thread
/// that runs `ioc`, before anyone else runs it: handlers still queued then do nothing.
class stop_guard {
public:
    stop_guard(asio::io_context& ioc, asio::ip::tcp::socket& socket, std::stop_token stop);
    ~stop_guard();
    stop_guard(const stop_guard&) = delete;
    stop_guard& operator=(const stop_guard&) = delete;

    bool stopped() const noexcept { return stop_.stop_requested(); }

    /// The resolver to cancel on a stop (null: none). Only on the thread that runs `ioc`.
    void watch_resolver(asio::ip::tcp::resolver* r) noexcept { state_->resolver = r; }

private:
    struct state {
        asio::ip::tcp::socket* socket = nullptr; // null once the guard is gone
        asio::ip::tcp::resolver* resolver = nullptr;
    };
    std::stop_token stop_;
    std::shared_ptr<state> state_;
    std::optional<std::stop_callback<std::function<void()>>> on_stop_;
};

/// Resolves `host`, connects TCP and performs the TLS client handshake (SNI and host name
/// verification from ctx), all within `timeout`, running `ioc` on the calling thread.
/// `stream` must be freshly constructed on `ioc`. A stop requested on `stop` ends it within
/// one handler run with errc::cancelled.
result<void> connect_tls(asio::io_context& ioc, tls_stream& stream, tls_context& ctx,
                         std::string_view host, std::uint16_t port,
                         std::chrono::milliseconds timeout, fault_injection* faults,
                         std::string& detail, std::stop_token stop = {});

/// "host" or "host:port" for the Host header (IPv6 literals bracketed).
std::string host_header(std::string_view host, std::uint16_t port, std::uint16_t default_port);

} // namespace detail
} // namespace podpipe::transport
