// io::ring: one io_uring instance (pimpl; no liburing types leak), or, where io_uring is not
// usable, a synchronous stand-in with the same interface so callers have a single code path.
//
// Model (liburing's io_uring-cp): the caller owns a request table and passes a slot index as
// `user_data`; it queues at most capacity() operations in flight, calls submit_and_wait() to
// reap at least one completion, and requeues short I/O itself. Results follow the kernel
// convention: res >= 0 on success, -errno on failure.
//
// Lifetimes: every pointer handed to a queue function (path, buffer, statx/open_how output)
// must stay valid until that operation's completion has been returned. An fd passed to
// `close` belongs to the ring from then on.
//
// Thread safety: none; one ring per thread. The destructor waits for every operation in flight
// (their completions are dropped), so request memory may be freed after the ring is gone.
#pragma once

#include "engine/common/result.hpp"

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <vector>

struct open_how;

namespace podpipe::io {

/// True when this kernel lets us set up an io_uring and probe finds every opcode engine/io uses
/// (OPENAT, OPENAT2, STATX, READ, WRITE, CLOSE). Computed once; thread-safe. The environment
/// variable PODPIPE_NO_IO_URING=1 forces false (for comparisons and fallback testing).
bool io_uring_available();

struct completion {
    std::uint64_t user_data = 0;
    int res = 0;
};

class ring {
public:
    /// A ring with room for `entries` operations in flight (at least 1). With prefer_io_uring
    /// false, or when io_uring_available() is false, the synchronous fallback is used: each
    /// queued operation runs as a plain syscall inside submit_and_wait(). Never fails for lack
    /// of io_uring; fails (io_failed) only when io_uring setup fails for another reason
    /// (e.g. ENOMEM from locked-memory limits) after the probe succeeded.
    static result<ring> create(unsigned entries, bool prefer_io_uring = true);

    ring(ring&&) noexcept;
    ring& operator=(ring&&) noexcept;
    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring();

    bool uses_io_uring() const noexcept;
    unsigned capacity() const noexcept;
    /// Operations queued or submitted whose completion has not been returned yet.
    unsigned in_flight() const noexcept;
    bool full() const noexcept { return in_flight() >= capacity(); }

    // Queue functions: precondition !full() (checked). Nothing is submitted until
    // submit_and_wait().
    void openat(std::uint64_t user_data, int dirfd, const char* path, int flags, mode_t mode);
    /// openat2(2) with `how` (flags/mode/resolve).
    void openat2(std::uint64_t user_data, int dirfd, const char* path, const ::open_how* how);
    void statx(std::uint64_t user_data, int dirfd, const char* path, int flags, unsigned mask,
               struct ::statx* out);
    void read(std::uint64_t user_data, int fd, void* buf, unsigned len, std::uint64_t offset);
    void write(std::uint64_t user_data, int fd, const void* buf, unsigned len,
               std::uint64_t offset);
    void close(std::uint64_t user_data, int fd);

    /// Submits everything queued and waits until at least `min_complete` completions are
    /// available (clamped to in_flight()); appends all available completions to `out`.
    /// Errors only when io_uring_enter itself fails (io_failed).
    result<void> submit_and_wait(unsigned min_complete, std::vector<completion>& out);

    /// Fault injection (Beast's fail_count): the n-th operation queued from now on (0-based)
    /// is not performed and completes with -EIO (a close still closes its fd). ~0 disables.
    void fail_op_for_test(std::uint64_t n) noexcept;

private:
    struct impl;
    explicit ring(std::unique_ptr<impl> p) noexcept;
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::io
