// A TCP listener on 127.0.0.1 (port 0) that never accepts: the kernel completes clients'
// handshakes into its backlog, so a connect succeeds and then nothing ever answers (no TLS,
// no HTTP). The API server of a cluster that hangs, for tests of interrupts and timeouts.
// Test-only code.
#pragma once

#include <cstdint>

namespace podpipe::testing {

class silent_listener {
public:
    /// Binds and listens; port() is 0 when that failed.
    silent_listener();
    /// Closes the listener (pending clients see a reset).
    ~silent_listener();
    silent_listener(const silent_listener&) = delete;
    silent_listener& operator=(const silent_listener&) = delete;

    std::uint16_t port() const noexcept { return port_; }
    /// Clients waiting in the backlog (connected, never answered): a test's condition that a
    /// client reached the server. Linux TCP_INFO of a listening socket.
    unsigned queued() const noexcept;

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

} // namespace podpipe::testing
