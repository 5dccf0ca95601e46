// http_client: HTTP/1.1 over TLS to one host:port, reusing one keep-alive connection.
// Headers, targets and bodies are opaque to it; it never sends Accept-Encoding (it does not
// inflate), and strips one if the caller passes it.
// Not thread-safe: one caller thread at a time per http_client (use one client per thread).
#pragma once

#include "engine/common/result.hpp"
#include "engine/transport/fault_injection.hpp"
#include "engine/transport/tls.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::transport {

struct http_header {
    std::string name;
    std::string value;
};

/// Finds a header by case-insensitive name; null if absent. Points into `headers`.
const std::string* find_header(const std::vector<http_header>& headers, std::string_view name);

struct http_request {
    std::string method = "GET"; ///< any token; standard verbs and extensions alike
    std::string target = "/";   ///< origin-form: path and query, already encoded
    std::vector<http_header> headers; ///< sent as given (Host is set by the client)
    std::string body; ///< sent with Content-Length when non-empty or for POST/PUT/PATCH
};

struct http_response {
    unsigned status = 0;
    std::string reason;
    std::vector<http_header> headers;
    std::string body; ///< the whole body (request()), or only for non-2xx (request_streaming())
};

struct http_options {
    /// Deadline for resolve + TCP connect + TLS handshake of a new connection.
    std::chrono::milliseconds connect_timeout{10'000};
    /// Largest body request() buffers; above it the request fails with errc::bad_response.
    std::size_t max_body_bytes = 64u << 20;
    /// Test knob: fail the Nth socket operation (see fault_injection.hpp). Not owned.
    fault_injection* faults = nullptr;
};

/// Receives body pieces of a streaming response in order; returns false to stop reading.
/// The span is valid only during the call.
using body_callback = std::function<bool(std::span<const std::byte>)>;

class http_client {
public:
    /// Does not connect yet. `tls` must outlive the client. `host` is a DNS name or an IP
    /// literal (IPv6 with or without brackets).
    http_client(tls_context& tls, std::string host, std::uint16_t port, http_options options = {});
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    /// Sends `req` and reads the whole response within `timeout` (connect included). Reuses
    /// the open connection if any; when a reused connection turns out to have been closed by
    /// the server before any response byte arrived, reconnects and sends once more.
    /// Any HTTP status is a success here: the caller interprets status and body.
    /// Errors (transport::errc): resolve_failed, connect_failed, timeout, tls_failed,
    /// certificate_rejected, connection_reset, bad_response, injected_fault, and cancelled
    /// when `stop` was requested before the response was complete (at once, in any step:
    /// connect, TLS, writing, waiting for the answer; the connection is dropped).
    result<http_response> request(const http_request& req, std::chrono::milliseconds timeout,
                                  std::stop_token stop = {});

    /// For long responses (chunked or not: watch streams, followed logs). Waits up to
    /// `head_timeout` for the status line and headers. For a 2xx status each body piece goes
    /// to `on_body` as it arrives, with at most `idle_timeout` between pieces, until the server
    /// ends the body (result: the head, body empty) or `on_body` returns false (result: the
    /// head; the connection is dropped, not reused). A non-2xx response is read whole into
    /// http_response::body instead (bounded by max_body_bytes) and on_body is not called.
    /// `stop` as for request(): errc::cancelled, also between body pieces.
    result<http_response> request_streaming(const http_request& req,
                                            std::chrono::milliseconds head_timeout,
                                            std::chrono::milliseconds idle_timeout,
                                            const body_callback& on_body,
                                            std::stop_token stop = {});

    /// Drops the open connection, if any.
    void disconnect() noexcept;

    /// How many TCP connections this client opened so far (reuse shows as 1 for many requests).
    std::size_t connections_opened() const noexcept;

    /// Text of the underlying library errors of the last failure (no request data in it).
    const std::string& last_error_detail() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::transport
