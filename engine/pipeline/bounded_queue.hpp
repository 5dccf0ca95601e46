// bounded_queue<T>: a multi-producer, multi-consumer FIFO with a fixed capacity in items.
// push() blocks while full and pop() while empty: the capacity is the backpressure between
// two stages. close() ends the stream: pushes fail, pops drain what is left then return
// nullopt. Both waits also end when the caller's stop_token is triggered.
//
// Thread safety: every member may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <stop_token>

namespace podpipe::pipeline {

template <class T>
class bounded_queue {
public:
    explicit bounded_queue(std::size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

    /// Waits for room. Returns false (and drops nothing: `item` is left untouched only on a
    /// closed queue or stop) when the queue was closed or stop was requested.
    bool push(T&& item, std::stop_token stop = {}) {
        std::unique_lock lock(mu_);
        if (items_.size() >= capacity_ && !closed_) {
            const auto t0 = std::chrono::steady_clock::now();
            not_full_.wait(lock, stop, [&] { return items_.size() < capacity_ || closed_; });
            push_blocked_ns_ += elapsed_ns(t0);
        }
        if (closed_ || items_.size() >= capacity_)
            return false;
        items_.push_back(std::move(item));
        lock.unlock();
        not_empty_.notify_one();
        return true;
    }

    /// Waits for an item. nullopt when the queue is closed and drained, or on stop.
    std::optional<T> pop(std::stop_token stop = {}) {
        std::unique_lock lock(mu_);
        if (items_.empty() && !closed_) {
            const auto t0 = std::chrono::steady_clock::now();
            not_empty_.wait(lock, stop, [&] { return !items_.empty() || closed_; });
            pop_blocked_ns_ += elapsed_ns(t0);
        }
        if (items_.empty())
            return std::nullopt;
        T item = std::move(items_.front());
        items_.pop_front();
        lock.unlock();
        not_full_.notify_one();
        return item;
    }

    /// Ends the stream; wakes every waiter.
    void close() {
        {
            std::lock_guard lock(mu_);
            closed_ = true;
        }
        not_full_.notify_all();
        not_empty_.notify_all();
    }

    bool closed() const {
        std::lock_guard lock(mu_);
        return closed_;
    }

    std::size_t size() const {
        std::lock_guard lock(mu_);
        return items_.size();
    }

    std::size_t capacity() const noexcept { return capacity_; }

    /// Time producers waited for room (downstream too slow) and consumers waited for items
    /// (upstream too slow).
    std::uint64_t push_blocked_ns() const {
        std::lock_guard lock(mu_);
        return push_blocked_ns_;
    }

    std::uint64_t pop_blocked_ns() const {
        std::lock_guard lock(mu_);
        return pop_blocked_ns_;
    }

private:
    static std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point t0) {
        return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                              std::chrono::steady_clock::now() - t0)
                                              .count());
    }

    const std::size_t capacity_;
    mutable std::mutex mu_;
    std::condition_variable_any not_full_;
    std::condition_variable_any not_empty_;
    std::deque<T> items_;
    bool closed_ = false;
    std::uint64_t push_blocked_ns_ = 0;
    std::uint64_t pop_blocked_ns_ = 0;
};

} // namespace podpipe::pipeline
