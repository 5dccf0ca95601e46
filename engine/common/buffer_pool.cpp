#include "engine/common/buffer_pool.hpp"

#include "engine/common/assert.hpp"

#include <chrono>
#include <cstdlib>
#include <new>
#include <utility>

namespace podpipe {

block::block(block&& o) noexcept
    : pool_(std::exchange(o.pool_, nullptr))
    , data_(std::exchange(o.data_, nullptr))
    , capacity_(std::exchange(o.capacity_, 0))
    , size_(std::exchange(o.size_, 0)) {}

block& block::operator=(block&& o) noexcept {
    if (this != &o) {
        reset();
        pool_ = std::exchange(o.pool_, nullptr);
        data_ = std::exchange(o.data_, nullptr);
        capacity_ = std::exchange(o.capacity_, 0);
        size_ = std::exchange(o.size_, 0);
    }
    return *this;
}

block::~block() { reset(); }

void block::set_size(std::size_t n) noexcept {
    PODPIPE_CHECK(n <= capacity_, "block::set_size beyond capacity");
    size_ = n;
}

void block::reset() noexcept {
    if (pool_ != nullptr && data_ != nullptr)
        pool_->give_back(data_);
    pool_ = nullptr;
    data_ = nullptr;
    capacity_ = 0;
    size_ = 0;
}

void buffer_pool::aligned_free::operator()(std::byte* p) const noexcept { std::free(p); }

buffer_pool::buffer_pool(std::size_t block_bytes, std::size_t block_count)
    : block_bytes_((block_bytes + 63) / 64 * 64), block_count_(block_count) {
    PODPIPE_CHECK(block_bytes > 0 && block_count > 0, "empty buffer pool");
    void* mem = std::aligned_alloc(64, block_bytes_ * block_count_);
    if (mem == nullptr)
        throw std::bad_alloc();
    memory_.reset(static_cast<std::byte*>(mem));
    free_.reserve(block_count_);
    for (std::size_t i = block_count_; i-- > 0;)
        free_.push_back(memory_.get() + i * block_bytes_);
}

buffer_pool::~buffer_pool() {
    std::lock_guard lock(mu_);
    PODPIPE_CHECK(free_.size() == block_count_, "buffer_pool destroyed while blocks are out");
}

std::optional<block> buffer_pool::acquire(std::stop_token stop) {
    std::unique_lock lock(mu_);
    if (free_.empty()) {
        const auto t0 = std::chrono::steady_clock::now();
        cv_.wait(lock, stop, [&] { return !free_.empty(); });
        blocked_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(
                           std::chrono::steady_clock::now() - t0)
                           .count();
        if (free_.empty())
            return std::nullopt;
    }
    std::byte* p = free_.back();
    free_.pop_back();
    return block(this, p, block_bytes_);
}

std::optional<block> buffer_pool::try_acquire() {
    std::lock_guard lock(mu_);
    if (free_.empty())
        return std::nullopt;
    std::byte* p = free_.back();
    free_.pop_back();
    return block(this, p, block_bytes_);
}

std::size_t buffer_pool::free_count() const {
    std::lock_guard lock(mu_);
    return free_.size();
}

std::uint64_t buffer_pool::blocked_ns() const {
    std::lock_guard lock(mu_);
    return blocked_ns_;
}

void buffer_pool::give_back(std::byte* data) noexcept {
    {
        std::lock_guard lock(mu_);
        free_.push_back(data);
    }
    cv_.notify_one();
}

} // namespace podpipe
