#include "engine/common/buffer_pool.hpp"

#include "engine/pipeline/bounded_queue.hpp"

#include <thread>

#include <gtest/gtest.h>

namespace podpipe {
namespace {

TEST(buffer_pool, blocks_return_on_destruction) {
    buffer_pool pool(1000, 2);
    EXPECT_EQ(pool.block_bytes() % 64, 0u);
    {
        auto a = pool.try_acquire();
        auto b = pool.try_acquire();
        ASSERT_TRUE(a && b);
        EXPECT_FALSE(pool.try_acquire());
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a->space().data()) % 64, 0u);
        a->set_size(10);
        block moved = std::move(*a);
        EXPECT_FALSE(a->valid());
        EXPECT_EQ(moved.size(), 10u);
    }
    EXPECT_EQ(pool.free_count(), 2u);
}

TEST(buffer_pool, acquire_waits_for_a_release) {
    buffer_pool pool(64, 1);
    auto held = pool.acquire();
    ASSERT_TRUE(held);
    std::jthread releaser([b = std::move(*held)]() mutable { b.reset(); });
    auto next = pool.acquire();
    EXPECT_TRUE(next);
}

TEST(buffer_pool, acquire_ends_on_stop) {
    buffer_pool pool(64, 1);
    auto held = pool.acquire();
    std::stop_source stop;
    std::jthread stopper([&] { stop.request_stop(); });
    auto next = pool.acquire(stop.get_token());
    stopper.join();
    EXPECT_FALSE(next);
}

TEST(bounded_queue, push_blocks_when_full_and_close_drains) {
    pipeline::bounded_queue<int> q(2);
    ASSERT_TRUE(q.push(1));
    ASSERT_TRUE(q.push(2));
    std::jthread producer([&] { EXPECT_TRUE(q.push(3)); });
    EXPECT_EQ(q.pop(), 1);
    producer.join();
    q.close();
    EXPECT_FALSE(q.push(4));
    EXPECT_EQ(q.pop(), 2);
    EXPECT_EQ(q.pop(), 3);
    EXPECT_EQ(q.pop(), std::nullopt);
}

TEST(bounded_queue, pop_ends_on_stop) {
    pipeline::bounded_queue<int> q(1);
    std::stop_source stop;
    std::jthread stopper([&] { stop.request_stop(); });
    EXPECT_EQ(q.pop(stop.get_token()), std::nullopt);
}

} // namespace
} // namespace podpipe
