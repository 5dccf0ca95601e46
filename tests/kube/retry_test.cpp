#include "kube/retry.hpp"

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

using namespace std::chrono_literals;

result<int, api_error> fail_with(int http, std::string_view retry_after = {}) {
    return fail(error_from_http(http, "", "get pod", retry_after));
}

TEST(Retry, RetriesRetryableUntilSuccess) {
    simulated_time clock;
    retry_policy policy({.max_attempts = 5, .base_delay = 100ms, .max_delay = 1s}, clock,
                        [] { return std::uint64_t{~0ull}; });
    int calls = 0;
    auto r = policy.run([&]() -> result<int, api_error> {
        if (++calls < 3)
            return fail_with(503);
        return 42;
    });
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 42);
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(clock.sleeps(), 2);
}

// A stop during a backoff wait (here a 60 s Retry-After, on the real clock) ends it at once
// and nothing is tried again: a signal must not wait out the server's Retry-After.
TEST(Retry, StopEndsTheBackoffWaitAndTheRetries) {
    std::stop_source stop;
    retry_policy policy({.max_attempts = 5}, real_time());
    policy.interrupt_on(stop.get_token());
    std::atomic<int> calls = 0;
    std::jthread stopper([&] {
        while (calls.load() == 0)
            std::this_thread::yield();
        stop.request_stop();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto r = policy.run([&]() -> result<int, api_error> {
        ++calls;
        return fail_with(429, "60");
    });
    ASSERT_FALSE(r);
    EXPECT_EQ(calls.load(), 1);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);

    simulated_time clock; // a stop requested before: no wait at all
    retry_policy stopped({.max_attempts = 5}, clock);
    stopped.interrupt_on(stop.get_token());
    calls = 0;
    r = stopped.run([&]() -> result<int, api_error> {
        ++calls;
        return fail_with(503);
    });
    EXPECT_EQ(calls.load(), 1);
    EXPECT_EQ(clock.sleeps(), 0);
}

TEST(Retry, NonRetryableReturnsImmediately) {
    simulated_time clock;
    retry_policy policy({}, clock);
    for (int http : {400, 401, 403, 404, 409, 422}) {
        int calls = 0;
        auto r = policy.run([&] {
            ++calls;
            return fail_with(http);
        });
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().http_status, http);
        EXPECT_EQ(calls, 1) << http;
    }
    EXPECT_EQ(clock.sleeps(), 0);
}

TEST(Retry, GivesUpAfterMaxAttempts) {
    simulated_time clock;
    retry_policy policy({.max_attempts = 4}, clock);
    int calls = 0;
    auto r = policy.run([&] {
        ++calls;
        return fail_with(500);
    });
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::server_error));
    EXPECT_EQ(calls, 4);
    EXPECT_EQ(clock.sleeps(), 3);
}

TEST(Retry, HonoursRetryAfterCapped) {
    simulated_time clock;
    retry_policy policy({.max_attempts = 3, .max_retry_after = 10s}, clock);
    int calls = 0;
    auto r = policy.run([&] {
        ++calls;
        return fail_with(429, calls == 1 ? "2" : "3600");
    });
    ASSERT_FALSE(r);
    EXPECT_EQ(calls, 3);
    EXPECT_EQ(clock.slept(), 12s);
}

TEST(Retry, FullJitterBounds) {
    simulated_time clock;
    std::uint64_t next = 0;
    retry_policy policy({.base_delay = 100ms, .max_delay = 1s}, clock, [&] { return next; });
    const api_error e = error_from_http(503, "", "x");
    // Ceilings 100, 200, 400, 800, then capped at 1000; rng() % (ceiling + 1).
    for (int i = 0; i < 6; ++i) {
        next = 0;
        EXPECT_EQ(policy.delay_for(i, e), 0ms);
    }
    next = 100;
    EXPECT_EQ(policy.delay_for(0, e), 100ms);
    next = 101;
    EXPECT_EQ(policy.delay_for(0, e), 0ms); // 101 % 101
    next = 400;
    EXPECT_EQ(policy.delay_for(2, e), 400ms);
    next = 1000;
    EXPECT_EQ(policy.delay_for(10, e), 1000ms);
    EXPECT_EQ(policy.delay_for(1000, e), 1000ms);
    // Default RNG stays inside [0, ceiling].
    retry_policy real({.base_delay = 100ms, .max_delay = 1s}, clock);
    for (int i = 0; i < 200; ++i) {
        auto d = real.delay_for(i % 8, e);
        EXPECT_GE(d, 0ms);
        EXPECT_LE(d, 1s);
    }
}

TEST(Retry, TimeoutConditionIsRetried) {
    simulated_time clock;
    retry_policy policy({.max_attempts = 2}, clock);
    int calls = 0;
    auto r = policy.run([&]() -> result<void, api_error> {
        ++calls;
        return fail(api_error(errc::timeout, "watch"));
    });
    EXPECT_FALSE(r);
    EXPECT_EQ(calls, 2);
}

} // namespace
} // namespace podpipe::kube
