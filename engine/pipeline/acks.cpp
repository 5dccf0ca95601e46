#include "engine/pipeline/acks.hpp"

#include <algorithm>
#include <cerrno>
#include <utility>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

namespace podpipe::pipeline {

void ack_counter::advance_to(std::uint64_t bytes) {
    {
        std::lock_guard lock(mutex_);
        if (bytes <= value_)
            return;
        value_ = bytes;
    }
    changed_.notify_all();
}

void ack_counter::close() {
    {
        std::lock_guard lock(mutex_);
        closed_ = true;
    }
    changed_.notify_all();
}

std::uint64_t ack_counter::value() const {
    std::lock_guard lock(mutex_);
    return value_;
}

bool ack_counter::closed() const {
    std::lock_guard lock(mutex_);
    return closed_;
}

std::uint64_t ack_counter::wait_for(std::uint64_t at_least, std::chrono::nanoseconds timeout,
                                    std::stop_token stop) {
    std::unique_lock lock(mutex_);
    changed_.wait_for(lock, stop, timeout, [&] { return value_ >= at_least || closed_; });
    return value_;
}

std::string ack_line(std::uint64_t bytes) {
    return std::string(ack_prefix) + std::to_string(bytes) + "\n";
}

result<std::size_t> acking_source::read(std::span<std::byte> into) {
    auto n = inner_.read(into);
    if (!n || *n == 0)
        return n;
    total_ += *n;
    if (total_ >= next_ && acks_ != nullptr) {
        const std::string line = ack_line(total_);
        if (!acks_->write(std::as_bytes(std::span(line))))
            acks_ = nullptr; // advisory: stop acknowledging, keep receiving
        next_ = total_ + (total_ < fine_until_ ? first_every_ : every_);
    }
    return n;
}

namespace {
// "podpipe-ack " + at most 20 digits: anything longer is not an acknowledgement.
constexpr std::size_t longest_ack = ack_prefix.size() + 20;
} // namespace

result<void> ack_splitter::flush_pending() {
    if (pending_.empty())
        return {};
    auto w = rest_.write(std::as_bytes(std::span(pending_)));
    pending_.clear();
    return w;
}

result<void> ack_splitter::write(std::span<const std::byte> bytes) {
    const char* p = reinterpret_cast<const char*>(bytes.data());
    const char* const end = p + bytes.size();
    while (p < end) {
        if (passing_) {
            const char* nl = std::find(p, end, '\n');
            const char* stop = nl == end ? end : nl + 1;
            if (auto w = rest_.write(std::as_bytes(std::span(p, stop))); !w)
                return w;
            passing_ = nl == end;
            p = stop;
            continue;
        }
        const char c = *p++;
        if (c != '\n') {
            pending_.push_back(c);
            const std::size_t k = pending_.size();
            const bool may_be_ack = k <= ack_prefix.size()
                                        ? pending_.back() == ack_prefix[k - 1]
                                        : k <= longest_ack && c >= '0' && c <= '9';
            if (!may_be_ack) {
                if (auto w = flush_pending(); !w)
                    return w;
                passing_ = true;
            }
            continue;
        }
        // End of a line that looked like an acknowledgement all along.
        if (pending_.size() > ack_prefix.size()) {
            std::uint64_t v = 0;
            bool ok = true;
            for (std::size_t i = ack_prefix.size(); i < pending_.size(); ++i) {
                const auto d = static_cast<std::uint64_t>(pending_[i] - '0');
                if (v > (UINT64_MAX - d) / 10) {
                    ok = false;
                    break;
                }
                v = v * 10 + d;
            }
            if (ok) {
                acks_.advance_to(v);
                pending_.clear();
                continue;
            }
        }
        pending_.push_back('\n');
        if (auto w = flush_pending(); !w)
            return w;
    }
    return {};
}

result<void> ack_splitter::finish() {
    if (auto w = flush_pending(); !w)
        return w;
    passing_ = false;
    return rest_.finish();
}

namespace {
class discard_sink final : public byte_sink {
public:
    result<void> write(std::span<const std::byte>) override { return {}; }
};
} // namespace

ack_listener::ack_listener(int fd, ack_counter& acks, std::function<void()> on_end)
    : acks_(acks)
    , on_end_(std::move(on_end)) {
    if (::pipe2(wake_, O_CLOEXEC) != 0) {
        acks_.close(); // no way to stop a reader: go without acknowledgements
        return;
    }
    thread_ = std::thread([this, fd] { run(fd); });
}

ack_listener::~ack_listener() {
    if (thread_.joinable()) {
        const char c = 0;
        while (::write(wake_[1], &c, 1) < 0 && errno == EINTR) {
        }
        thread_.join();
    }
    for (int f : wake_)
        if (f >= 0)
            ::close(f);
}

void ack_listener::run(int fd) {
    discard_sink others;
    ack_splitter splitter(acks_, others);
    char buf[4096];
    for (;;) {
        pollfd p[2] = {{fd, POLLIN, 0}, {wake_[0], POLLIN, 0}};
        if (::poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents != 0)
            break;
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            if (on_end_)
                on_end_();
            break;
        }
        (void)splitter.write(std::as_bytes(std::span(buf, static_cast<std::size_t>(n))));
    }
    acks_.close();
}

} // namespace podpipe::pipeline
