// exec_session: one `pods/exec` WebSocket session (spec/kube-api.md §2): stdin as a byte
// sink with backpressure, stdout as a byte source, stderr to a callback, and the exit code
// from the status channel. Opened by api_client::exec() (client.hpp).
//
//   auto s = client->exec({.ns = "ci", .pod = "p1", .command = {"tar", "xzf", "-", "-C", "/w"}});
//   std::jthread sender([&] { send_tree(..., (*s)->stdin_sink()); (*s)->stdin_sink().finish(); });
//   auto code = (*s)->wait();   // stdout discarded; code = remote exit code
//
// Threads: one thread may write stdin (stdin_sink) while another reads (stdout_source or
// wait()); the I/O underneath reads the socket continuously, so a pod writing much output
// while we are still writing its stdin does not deadlock as long as some thread reads
// stdout. Writing all of stdin and only then reading stdout on the *same* thread deadlocks
// once the pod's output exceeds the buffers (~receive_queue_bytes plus the socket buffers):
// that is the pod blocking on its stdout, not a bug here. abort() and stats() are safe from
// any thread.
//
// End of stdin: on v5 (`v5.channel.k8s.io`) stdin_sink().finish() sends the half-close
// message FF 00 and the remote process sees EOF. On v4 nothing can signal EOF without closing
// the whole connection (which loses the output and the exit status, §2.5), so finish() only
// flushes: the remote command must end by itself (a length-bounded reader such as
// `head -c N | tar x`, or `podpipe recv`, which knows where its stream ends).
//
// Outcome: wait() returns the exit code from the status message (channel 3). A session that
// ends without one is never a success: a clean close without status is errc::missing_status;
// a connection dropped before the status (TCP closed without close frame, reset, heartbeat
// timeout) is the transport's error code (condition peer_closed / retryable) with a message
// naming the exec. A Failure status other than NonZeroExitCode is errc::exec_failed.
#pragma once

#include "engine/common/result.hpp"
#include "engine/pipeline/byte_stream.hpp"
#include "engine/transport/channel_socket.hpp"
#include "kube/errors.hpp"
#include "kube/exec_request.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <string>

namespace podpipe::kube {

struct exec_session_options {
    /// false: offer only v4.channel.k8s.io (tests; emulates a cluster older than 1.30).
    bool offer_v5 = true;
    /// Receives every stderr message as it arrives, on the thread that reads (stdout_source or
    /// wait()). Must not block for long: stdout is not read meanwhile.
    std::function<void(std::span<const std::byte>)> on_stderr;
    /// How much of the end of stderr stderr_tail() keeps for error messages.
    std::size_t stderr_keep_bytes = 64u << 10;
    /// Resolve + connect + TLS + upgrade, per attempt.
    std::chrono::milliseconds connect_timeout{30'000};
    /// A stop requested here ends the opening at once (whichever step it is in) with
    /// transport::errc::cancelled, and no further attempt is made. Once the session exists,
    /// stopping it is the caller's abort().
    std::stop_token stop;
    /// WebSocket ping interval (§2.7; 0 disables pings and the liveness check) and the silence
    /// after which the peer counts as dead.
    std::chrono::milliseconds ping_interval{5'000};
    std::chrono::milliseconds pong_timeout{60'000};
    /// Pings stop once stdin is half-closed on v5: the remote command is finishing, and a
    /// ping the server has not read when it closes turns into a TCP RST that can destroy the
    /// tail of the output (§2.6 mitigation b). While pings are off the liveness check is
    /// suspended (TCP keepalive remains). true keeps pinging until the status arrives.
    bool pings_after_stdin_close = false;
    /// Stdin message size (spec §2.3: 64 KiB..1 MiB; the apiserver accepts up to 32 MiB).
    std::size_t stdin_message_bytes = 256u << 10;
    /// Bound on stdin bytes accepted but not yet on the socket (the memory a slow pod costs).
    std::size_t max_in_flight_bytes = 1u << 20;
    /// Bound on received, not yet consumed output before the socket stops being read.
    std::size_t receive_queue_bytes = 4u << 20;
    /// Largest single message accepted from the server.
    std::size_t max_receive_message_bytes = 32u << 20;
    /// Closing handshake after the status.
    std::chrono::milliseconds close_timeout{10'000};
};

class exec_session {
public:
    /// Used by api_client::exec(); `socket` is connected and upgraded. `keep_alive` holds
    /// whatever the socket borrows (the TLS context) for the session's lifetime.
    exec_session(std::unique_ptr<transport::channel_socket> socket,
                 std::shared_ptr<void> keep_alive, std::string call, const exec_options& exec,
                 exec_session_options options);
    /// Aborts the connection if the session did not end (the remote process gets killed by the
    /// server when its connection goes away).
    ~exec_session();
    exec_session(const exec_session&) = delete;
    exec_session& operator=(const exec_session&) = delete;

    /// The negotiated subprotocol: "v5.channel.k8s.io" or "v4.channel.k8s.io".
    const std::string& protocol() const noexcept;
    /// True on v5: stdin_sink().finish() delivers EOF to the remote process.
    bool can_half_close_stdin() const noexcept;

    /// The remote process's stdin. write() blocks while max_in_flight_bytes are unsent (a slow
    /// pod slows the writer); after the status arrived (the process ended) writes fail with
    /// transport::errc::closed instead of sending bytes the server will not read. finish():
    /// flush, then on v5 the FF 00 half-close (see the file comment for v4). Only valid when
    /// the exec requested stdin (otherwise writes fail with bad_argument).
    pipeline::byte_sink& stdin_sink();

    /// The remote process's stdout. read() returns 0 at the end: the status message arrived
    /// (it is always the last data message) or the server closed the session. stderr goes to
    /// on_stderr and stderr_tail(); the status is captured for wait(). Errors: the transport's
    /// (abrupt_close when the connection dropped, heartbeat_timeout, ...).
    pipeline::byte_source& stdout_source();

    /// Reads to the end (stdout into `stdout_sink`, or discarded when null; the sink is not
    /// finish()ed), completes the closing handshake and returns the exit code (0..255). Errors
    /// are described in the file comment; a failing stdout_sink aborts the session and returns
    /// its error. Call it once, on the reading thread. Stdin must have been finished (v5) or the
    /// remote command must end by itself, else this waits for it.
    result<int, api_error> wait(pipeline::byte_sink* stdout_sink = nullptr);

    /// The last stderr_keep_bytes of stderr. Read it after wait() (or from the reading thread).
    const std::string& stderr_tail() const noexcept;

    /// The raw status message, once it arrived.
    const std::optional<std::string>& status_message() const noexcept;

    /// Ends the connection at once (no close frame) and wakes every blocked call on any
    /// thread; they fail with transport::errc::closed.
    void abort() noexcept;

    transport::channel_socket_stats stats() const;

    struct impl;

private:
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::kube
