// Errors of engine/transport. Each code maps onto a podpipe::condition so callers branch on
// "retryable", "peer_closed", "bad_input" or "fatal" instead of specific codes; a few codes
// match two conditions (a reset connection is both retryable and peer_closed).
#pragma once

#include <system_error>

namespace podpipe::transport {

enum class errc {
    resolve_failed = 1,   ///< the host name did not resolve (retryable)
    connect_failed,       ///< TCP connect refused or unreachable (retryable)
    timeout,              ///< an operation exceeded its deadline (retryable)
    tls_failed,           ///< TLS handshake failed for a reason other than verification (fatal)
    certificate_rejected, ///< the peer's certificate failed CA or host name verification (fatal)
    connection_reset,     ///< the peer reset or closed the connection mid-operation (retryable)
    bad_response,         ///< the peer sent bytes that are not valid HTTP/WebSocket (bad_input)
    upgrade_rejected,     ///< the WebSocket upgrade got a non-101 answer (see upgrade_failure)
    subprotocol_mismatch, ///< the server echoed no subprotocol or one we did not offer (fatal)
    bad_message,          ///< a WebSocket message without channel byte, or a text frame (bad_input)
    message_too_large,    ///< a message above the configured receive cap (bad_input)
    heartbeat_timeout,    ///< no frame and no pong from the peer within the pong deadline (retryable)
    abrupt_close,         ///< TCP closed without a WebSocket close frame, i.e. 1006 (peer_closed)
    closed,               ///< the socket was closed locally, or used after a close (peer_closed)
    stopped,              ///< a streaming callback asked to stop (not an error of the peer)
    bad_argument,         ///< invalid options or arguments from the caller (fatal)
    injected_fault,       ///< a test's fault_injection knob failed this operation (retryable)
    cancelled,            ///< the caller's stop token ended the operation (fatal: never retried)
};

const std::error_category& transport_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), transport_category()};
}

} // namespace podpipe::transport

template <>
struct std::is_error_code_enum<podpipe::transport::errc> : std::true_type {};
