// channel_socket: a client WebSocket (RFC 6455) over TLS whose messages are multiplexed
// channels: every message is one binary frame, first payload byte = channel id (see
// channel_message.hpp). Target, headers and subprotocol names are opaque caller values.
//
// Threads: connect() runs on the caller's thread; afterwards one internal I/O thread reads
// continuously into a bounded receive queue, writes queued messages in order, sends heartbeat
// pings and watches deadlines. One thread may call write()/close_channel()/flush() while
// another calls read(); close() and abort() may be called from any thread.
//
// Memory: bytes accepted by write() and not yet on the socket are bounded by
// max_in_flight_bytes (plus at most one message when the budget is exceeded by a single
// message), so a slow peer slows the writer instead of growing memory. Received messages are
// bounded by receive_queue_bytes (+ one message): above it the socket is not read (TCP
// backpressure to the peer) until read() drains the queue below half of it.
#pragma once

#include "engine/common/result.hpp"
#include "engine/transport/fault_injection.hpp"
#include "engine/transport/http_client.hpp"
#include "engine/transport/tls.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::transport {

struct channel_socket_options {
    /// Extra request headers of the upgrade GET (authorization and the like). Host and the
    /// Sec-WebSocket-* headers are set by the socket and skipped here.
    std::vector<http_header> headers;
    /// Offered subprotocols, preferred first (sent as one comma-separated header). When
    /// non-empty, the server must echo exactly one of them or connect() fails.
    std::vector<std::string> subprotocols;
    /// Deadline for resolve + TCP connect + TLS + the upgrade request and response.
    std::chrono::milliseconds connect_timeout{10'000};
    /// A stop requested here ends connect() at once, whichever step it is in, with
    /// errc::cancelled (a signal must not wait out connect_timeout). Not used after connect().
    std::stop_token stop;
    /// Largest message write() sends, channel byte included; longer writes are split. Each
    /// message is one unfragmented frame (some servers treat every frame as a message).
    std::size_t max_message_bytes = 256u << 10;
    /// Bound on bytes accepted by write() and not yet written to the socket.
    std::size_t max_in_flight_bytes = 1u << 20;
    /// Largest message accepted from the peer; a larger one fails with message_too_large.
    std::size_t max_receive_message_bytes = 32u << 20;
    /// Bound on received, not yet read() bytes before the socket stops being read.
    std::size_t receive_queue_bytes = 4u << 20;
    /// Ping interval (empty payload); 0 disables pings and the liveness check.
    std::chrono::milliseconds ping_interval{5'000};
    /// With pings on: the peer is dead (errc::heartbeat_timeout) when for this long nothing
    /// was received (no frame, no pong) and no write completed. Time during which the socket
    /// is not being read (receive queue full) or a write is blocked does not count.
    std::chrono::milliseconds pong_timeout{60'000};
    /// A single message write that does not complete within this fails with errc::timeout.
    std::chrono::milliseconds write_timeout{60'000};
    /// Deadline for the closing handshake (ours or the peer's) including TLS shutdown.
    std::chrono::milliseconds close_timeout{10'000};
    /// Test knob: fail the Nth socket operation (see fault_injection.hpp). Not owned.
    fault_injection* faults = nullptr;
};

/// Why connect() failed. status/headers/body are filled when the server answered the upgrade
/// with anything but 101 (errc::upgrade_rejected); detail for every failure.
struct upgrade_failure {
    unsigned status = 0;
    std::vector<http_header> headers;
    std::string body;   ///< as received, at most 1 MiB; the caller interprets it
    std::string detail; ///< text of the underlying library errors (no request data in it)
};

/// One received message: the channel and its data (possibly empty: zero bytes, not EOF).
struct channel_message {
    std::uint8_t channel = 0;
    std::vector<std::byte> data;
};

/// The close frame the peer sent (RFC 6455 §5.5.1, §7.4); code 1005 when it carried none.
struct close_status {
    std::uint16_t code = 0;
    std::string reason;
};

struct channel_socket_stats {
    std::uint64_t bytes_sent = 0;         ///< message bytes written to the socket
    std::uint64_t bytes_received = 0;     ///< message bytes received
    std::uint64_t messages_sent = 0;
    std::uint64_t messages_received = 0;
    std::size_t in_flight_bytes = 0;      ///< accepted by write(), not yet on the socket
    std::size_t peak_in_flight_bytes = 0; ///< the maximum of in_flight_bytes so far
    std::size_t peak_receive_queue_bytes = 0;
    std::uint64_t write_blocked_ns = 0;   ///< time write() waited for the in-flight budget
    std::uint64_t pongs_received = 0;
};

class channel_socket {
public:
    /// Connects to host:port, upgrades `target` (GET) and starts the I/O thread.
    /// Errors: those of http_client::request, plus upgrade_rejected (non-101; `failure`, when
    /// given, receives status, headers and body), subprotocol_mismatch, bad_response, and
    /// cancelled when options.stop was requested before the socket was ready.
    static result<std::unique_ptr<channel_socket>> connect(tls_context& tls,
                                                           std::string_view host,
                                                           std::uint16_t port,
                                                           std::string_view target,
                                                           const channel_socket_options& options,
                                                           upgrade_failure* failure = nullptr);

    /// Aborts if still open (no close frame; the peer sees 1006) and joins the I/O thread.
    ~channel_socket();
    channel_socket(const channel_socket&) = delete;
    channel_socket& operator=(const channel_socket&) = delete;

    /// The subprotocol the server chose ("" when none was offered and none echoed).
    const std::string& subprotocol() const noexcept;

    /// Queues `data` on `channel` as messages of at most max_message_bytes, blocking while the
    /// in-flight budget is used up. Returns once queued: a write failure surfaces on a later
    /// call (write, flush, read, close). Empty `data` sends one message with only the channel
    /// byte. Errors: the socket's failure, errc::closed after close() or the peer's close.
    result<void> write(std::uint8_t channel, std::span<const std::byte> data);

    /// Sends {0xFF, channel}: asks the peer to half-close `channel`. Whether the negotiated
    /// protocol understands it is the caller's decision. Ordered after earlier writes.
    result<void> close_channel(std::uint8_t channel);

    /// Blocks until everything written so far is on the socket (in_flight_bytes == 0).
    /// Errors: the socket's failure; errc::closed when a close (ours or the peer's) means the
    /// queued bytes will never be written.
    result<void> flush();

    /// Next received message, in order. std::nullopt: the peer sent a close frame (see
    /// peer_close()); messages received before a failure are still delivered first.
    /// Errors: abrupt_close (TCP ended without a close frame: "no status seen"),
    /// heartbeat_timeout, timeout, bad_message (text frame or empty message),
    /// message_too_large, bad_response, connection errors. One reader thread at a time.
    result<std::optional<channel_message>> read();

    /// Sends close 1000 after the queued writes and waits up to `timeout` for the peer's close
    /// frame (the closing handshake, RFC 6455 §7.1.2). Success as well when the peer closed
    /// first. Errors: the socket's earlier failure, errc::timeout.
    result<void> close(std::chrono::milliseconds timeout);

    /// Ends the connection now without a close frame and wakes every blocked call
    /// (they fail with errc::closed). Safe from any thread, idempotent.
    void abort() noexcept;

    /// Pings stop while disabled (e.g. once the remote side is known to be finishing, so no
    /// bytes reach a server that closes without reading them). The liveness check is
    /// suspended meanwhile (a healthy peer need not send anything); TCP keepalive remains.
    void set_pings_enabled(bool enabled) noexcept;

    /// The peer's close frame, once read() returned std::nullopt or close() succeeded.
    std::optional<close_status> peer_close() const;

    channel_socket_stats stats() const;

    /// Text of the underlying library errors behind the failure, if any.
    std::string error_detail() const;

    struct impl;

private:
    explicit channel_socket(std::unique_ptr<impl> i);
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::transport
