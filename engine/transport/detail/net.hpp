// Internal to engine/transport (never included by other components): the Beast/Asio types
// shared by http_client and channel_socket, the TLS connect sequence and error mapping.
#pragma once

#include "engine/common/result.hpp"
#include "engine/transport/error.hpp"
#include "engine/transport/fault_injection.hpp"
#include "engine/transport/tls.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
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

/// Resolves `host`, connects TCP and performs the TLS client handshake (SNI and host name
/// verification from ctx), all within `timeout`, running `ioc` on the calling thread.
/// `stream` must be freshly constructed on `ioc`.
result<void> connect_tls(asio::io_context& ioc, tls_stream& stream, tls_context& ctx,
                         std::string_view host, std::uint16_t port,
                         std::chrono::milliseconds timeout, fault_injection* faults,
                         std::string& detail);

/// "host" or "host:port" for the Host header (IPv6 literals bracketed).
std::string host_header(std::string_view host, std::uint16_t port, std::uint16_t default_port);

} // namespace detail
} // namespace podpipe::transport
