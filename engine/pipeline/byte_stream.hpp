// byte_sink / byte_source: where a pipeline's compressed stream goes to and comes from. The
// pipelines call them from one thread at a time; an implementation need not be thread-safe,
// except for interrupt(), which any thread may call at any time.
// fd_sink / fd_source wrap a file descriptor (file, pipe, socket); later transports (the exec
// WebSocket's stdin/stdout channels) implement the same two interfaces.
#pragma once

#include "engine/common/result.hpp"
#include "engine/common/unique_fd.hpp"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <span>

namespace podpipe::pipeline {

class byte_sink {
public:
    virtual ~byte_sink() = default;
    /// Writes all of `bytes` (blocking: a slow sink is the pipeline's backpressure).
    virtual result<void> write(std::span<const std::byte> bytes) = 0;
    /// No more bytes follow (flush, half-close).
    virtual result<void> finish() { return {}; }
    /// Wakes a write() blocked on another thread; it and every later call fail with
    /// std::errc::operation_canceled. Any thread, idempotent. The pipelines call it when they
    /// stop, so no stage stays blocked on a peer that went quiet. Default: nothing (sinks
    /// whose writes end by themselves).
    virtual void interrupt() noexcept {}
};

class byte_source {
public:
    virtual ~byte_source() = default;
    /// Reads up to into.size() bytes; 0 means end of stream.
    virtual result<std::size_t> read(std::span<std::byte> into) = 0;
    /// As byte_sink::interrupt(), for a blocked read().
    virtual void interrupt() noexcept {}
};

namespace detail {

/// The wait of fd_sink and fd_source: until the descriptor is ready, interrupt() (an eventfd
/// wakes the poll), or `stall_timeout` passed since the last progress (0: no limit).
class fd_waiter {
public:
    fd_waiter(int fd, std::chrono::milliseconds stall_timeout) noexcept;
    /// Ready for `events` (POLLIN/POLLOUT); errors: operation_canceled, errc::stalled.
    result<void> wait(short events);
    void progressed() noexcept { last_progress_ = std::chrono::steady_clock::now(); }
    void interrupt() noexcept;
    bool interrupted() const noexcept { return interrupted_.load(std::memory_order_acquire); }
    bool stalled() const noexcept { return stalled_; }

private:
    int fd_;
    std::chrono::milliseconds stall_timeout_;
    std::chrono::steady_clock::time_point last_progress_;
    unique_fd wake_;
    std::atomic<bool> interrupted_{false};
    bool stalled_ = false;
};

} // namespace detail

/// Writes to a file descriptor it does not own; retries EINTR and short writes. On a pipe or
/// socket a write never blocks in the kernel (RWF_NOWAIT, else poll first), so interrupt()
/// and the stall timeout end it; a regular file is written plainly.
class fd_sink final : public byte_sink {
public:
    /// `stall_timeout`: a write that moves no byte for this long fails with errc::stalled
    /// (0: wait as long as it takes).
    explicit fd_sink(int fd, std::chrono::milliseconds stall_timeout = {}) noexcept;
    result<void> write(std::span<const std::byte> bytes) override;
    void interrupt() noexcept override { waiter_.interrupt(); }
    /// The last failure was the stall timeout.
    bool stalled() const noexcept { return waiter_.stalled(); }

private:
    result<std::size_t> write_some(std::span<const std::byte> bytes);
    int fd_;
    enum class mode { plain, nowait, poll_first } mode_;
    detail::fd_waiter waiter_;
};

/// Reads from a file descriptor it does not own; retries EINTR. Waits in poll (not in read) on
/// a pipe, socket or terminal, so interrupt() and the stall timeout end a read that waits.
class fd_source final : public byte_source {
public:
    /// `stall_timeout`: a read that gets no byte for this long fails with errc::stalled (0:
    /// wait as long as it takes).
    explicit fd_source(int fd, std::chrono::milliseconds stall_timeout = {}) noexcept;
    result<std::size_t> read(std::span<std::byte> into) override;
    void interrupt() noexcept override { waiter_.interrupt(); }
    /// The last failure was the stall timeout.
    bool stalled() const noexcept { return waiter_.stalled(); }

private:
    int fd_;
    bool poll_first_;
    detail::fd_waiter waiter_;
};

} // namespace podpipe::pipeline
