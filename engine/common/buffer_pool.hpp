// buffer_pool: a fixed set of equally sized, 64-byte aligned blocks. The pool's total size is
// the hard memory ceiling of a pipeline: acquire() blocks while every block is out. A `block`
// is a move-only handle that returns its memory to the pool when destroyed, so blocks can
// travel downstream through queues and come back by themselves.
//
// Thread safety: acquire/try_acquire and block destruction may run on any thread. The pool
// must outlive every block it handed out (checked on destruction).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <stop_token>
#include <vector>

namespace podpipe {

class buffer_pool;

class block {
public:
    block() noexcept = default;
    block(block&& o) noexcept;
    block& operator=(block&& o) noexcept;
    block(const block&) = delete;
    block& operator=(const block&) = delete;
    ~block();

    bool valid() const noexcept { return data_ != nullptr; }

    /// The whole block (capacity bytes).
    std::span<std::byte> space() noexcept { return {data_, capacity_}; }
    std::size_t capacity() const noexcept { return capacity_; }

    /// The filled prefix, [0, size()).
    std::span<std::byte> data() noexcept { return {data_, size_}; }
    std::span<const std::byte> data() const noexcept { return {data_, size_}; }
    std::size_t size() const noexcept { return size_; }
    /// Sets the filled length; must be <= capacity().
    void set_size(std::size_t n) noexcept;

    /// Returns the memory to the pool now.
    void reset() noexcept;

private:
    friend class buffer_pool;
    block(buffer_pool* pool, std::byte* data, std::size_t capacity) noexcept
        : pool_(pool), data_(data), capacity_(capacity) {}

    buffer_pool* pool_ = nullptr;
    std::byte* data_ = nullptr;
    std::size_t capacity_ = 0;
    std::size_t size_ = 0;
};

class buffer_pool {
public:
    /// Allocates block_count blocks of block_bytes each, up front.
    buffer_pool(std::size_t block_bytes, std::size_t block_count);
    buffer_pool(const buffer_pool&) = delete;
    buffer_pool& operator=(const buffer_pool&) = delete;
    ~buffer_pool();

    /// Waits for a free block; returns nullopt only if stop was requested while waiting.
    std::optional<block> acquire(std::stop_token stop = {});
    /// A free block, or nullopt at once when none is free.
    std::optional<block> try_acquire();

    std::size_t block_bytes() const noexcept { return block_bytes_; }
    std::size_t block_count() const noexcept { return block_count_; }
    std::size_t free_count() const;
    /// Nanoseconds callers spent waiting in acquire() (backpressure made visible).
    std::uint64_t blocked_ns() const;

private:
    friend class block;
    void give_back(std::byte* data) noexcept;

    struct aligned_free {
        void operator()(std::byte* p) const noexcept;
    };

    std::size_t block_bytes_;
    std::size_t block_count_;
    std::unique_ptr<std::byte, aligned_free> memory_;
    mutable std::mutex mu_;
    std::condition_variable_any cv_;
    std::vector<std::byte*> free_;
    std::uint64_t blocked_ns_ = 0;
};

} // namespace podpipe
