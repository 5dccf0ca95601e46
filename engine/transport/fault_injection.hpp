// fault_injection: the socket layer's "fail operation N" knob for tests (Beast's fail_count).
// Every socket-layer step counts once (resolve, TCP connect, TLS handshake, HTTP write and
// read, WebSocket handshake, each message write and read, close); the step whose 0-based
// number equals fail_at completes with errc::injected_fault instead of running. A test raises
// fail_at from 0 until the scenario succeeds without the fault firing, which runs every error
// path. Heartbeat pings are not counted (their timing is not deterministic).
// Thread-safe: counted from the I/O thread and the caller's threads.
#pragma once

#include <atomic>
#include <cstddef>
#include <limits>

namespace podpipe::transport {

class fault_injection {
public:
    /// fail_at = SIZE_MAX never fails (only counts).
    explicit fault_injection(std::size_t fail_at = std::numeric_limits<std::size_t>::max()) noexcept
        : fail_at_(fail_at) {}

    /// Counts one operation; true if this one must fail.
    bool should_fail() noexcept {
        const bool hit = count_.fetch_add(1, std::memory_order_relaxed) == fail_at_;
        if (hit)
            fired_.store(true, std::memory_order_relaxed);
        return hit;
    }

    bool fired() const noexcept { return fired_.load(std::memory_order_relaxed); }
    std::size_t operations() const noexcept { return count_.load(std::memory_order_relaxed); }

private:
    std::size_t fail_at_;
    std::atomic<std::size_t> count_{0};
    std::atomic<bool> fired_{false};
};

} // namespace podpipe::transport
