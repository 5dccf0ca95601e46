#include "engine/pipeline/byte_stream.hpp"

#include "engine/common/error.hpp"
#include "engine/pipeline/errors.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstdint>

namespace podpipe::pipeline {
namespace {

std::error_code canceled() { return std::make_error_code(std::errc::operation_canceled); }

// Regular files and block devices are always ready: nothing to wait for, nothing that stalls.
bool always_ready(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) != 0 || S_ISREG(st.st_mode) || S_ISBLK(st.st_mode);
}

bool is_fifo(int fd) {
    struct stat st {};
    return ::fstat(fd, &st) == 0 && S_ISFIFO(st.st_mode);
}

} // namespace

namespace detail {

fd_waiter::fd_waiter(int fd, std::chrono::milliseconds stall_timeout) noexcept
    : fd_(fd)
    , stall_timeout_(stall_timeout)
    , last_progress_(std::chrono::steady_clock::now())
    , wake_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

void fd_waiter::interrupt() noexcept {
    interrupted_.store(true, std::memory_order_release);
    const std::uint64_t one = 1;
    if (wake_.valid())
        (void)!::write(wake_.get(), &one, sizeof one);
}

result<void> fd_waiter::wait(short events) {
    using std::chrono::milliseconds;
    for (;;) {
        if (interrupted())
            return fail(canceled());
        int timeout_ms = -1;
        if (stall_timeout_.count() > 0) {
            const auto left = std::chrono::duration_cast<milliseconds>(
                last_progress_ + stall_timeout_ - std::chrono::steady_clock::now());
            if (left.count() <= 0) {
                stalled_ = true;
                return fail(errc::stalled);
            }
            timeout_ms = static_cast<int>(std::min<std::int64_t>(left.count() + 1, INT_MAX));
        }
        if (!wake_.valid()) // no eventfd: look at the flag ten times a second
            timeout_ms = timeout_ms < 0 ? 100 : std::min(timeout_ms, 100);
        pollfd p[2] = {{fd_, events, 0}, {wake_.get(), POLLIN, 0}};
        const int n = ::poll(p, wake_.valid() ? 2 : 1, timeout_ms);
        if (n < 0 && errno != EINTR)
            return fail(last_errno());
        if (n > 0 && p[0].revents != 0 && !interrupted())
            return {}; // ready, or hung up / failed: the read or write says which
    }
}

} // namespace detail

fd_sink::fd_sink(int fd, std::chrono::milliseconds stall_timeout) noexcept
    : fd_(fd)
    , mode_(always_ready(fd) ? mode::plain : mode::nowait)
    , waiter_(fd, stall_timeout) {}

// Bytes written; 0 when the descriptor would block.
result<std::size_t> fd_sink::write_some(std::span<const std::byte> bytes) {
    for (;;) {
        ssize_t n = 0;
        if (mode_ == mode::nowait) {
            iovec v{const_cast<std::byte*>(bytes.data()), bytes.size()};
            n = ::pwritev2(fd_, &v, 1, -1, RWF_NOWAIT);
            if (n < 0 && errno == EOPNOTSUPP) {
                // An older kernel (or a device without it): a pipe still gets PIPE_BUF bytes
                // per write after POLLOUT, which never block; anything else is written plainly.
                mode_ = is_fifo(fd_) ? mode::poll_first : mode::plain;
                continue;
            }
        } else if (mode_ == mode::poll_first) {
            PODPIPE_TRY(waiter_.wait(POLLOUT));
            n = ::write(fd_, bytes.data(), std::min<std::size_t>(bytes.size(), PIPE_BUF));
        } else {
            n = ::write(fd_, bytes.data(), bytes.size());
        }
        if (n >= 0)
            return static_cast<std::size_t>(n);
        if (errno == EAGAIN)
            return std::size_t{0};
        if (errno != EINTR)
            return fail(last_errno());
    }
}

result<void> fd_sink::write(std::span<const std::byte> bytes) {
    waiter_.progressed(); // the stall clock starts when we are asked to write
    while (!bytes.empty()) {
        if (waiter_.interrupted())
            return fail(canceled());
        auto n = write_some(bytes);
        if (!n)
            return fail(n.error());
        if (*n == 0) {
            PODPIPE_TRY(waiter_.wait(POLLOUT));
            continue;
        }
        bytes = bytes.subspan(*n);
        waiter_.progressed();
    }
    return {};
}

fd_source::fd_source(int fd, std::chrono::milliseconds stall_timeout) noexcept
    : fd_(fd)
    , poll_first_(!always_ready(fd))
    , waiter_(fd, stall_timeout) {}

result<std::size_t> fd_source::read(std::span<std::byte> into) {
    waiter_.progressed(); // the stall clock starts when we are asked to read
    for (;;) {
        if (waiter_.interrupted())
            return fail(canceled());
        if (poll_first_)
            PODPIPE_TRY(waiter_.wait(POLLIN));
        const ssize_t n = ::read(fd_, into.data(), into.size());
        if (n >= 0)
            return static_cast<std::size_t>(n);
        if (errno != EINTR && !(errno == EAGAIN && poll_first_))
            return fail(last_errno());
    }
}

} // namespace podpipe::pipeline
