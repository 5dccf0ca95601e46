// remote::with_retries over attempts that are functions (no cluster): which failures are
// repeated, the backoff and its bound, the final error, and a stop during a wait.
#include "remote/retry.hpp"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::remote {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

copy_error dropped(std::string msg = "exec dropped") {
    return copy_error{pipeline::exit_failure, std::move(msg), {}, false};
}

retry_policy quick(std::chrono::milliseconds retry_for) {
    retry_policy p;
    p.retry_for = retry_for;
    p.first_backoff = 20ms;
    p.max_backoff = 80ms;
    return p;
}

TEST(retry, success_at_the_first_attempt_is_one_call) {
    int calls = 0;
    auto r = with_retries([&]() -> copy_result { ++calls; return copy_report{}; }, quick(1s), {});
    EXPECT_TRUE(r);
    EXPECT_EQ(calls, 1);
}

TEST(retry, failures_that_can_pass_are_repeated_with_growing_jittered_waits) {
    int calls = 0;
    std::vector<retry_notice> seen; // error: valid only in the callback, so kept as text
    std::vector<std::string> texts;
    auto r = with_retries(
        [&]() -> copy_result {
            if (++calls < 5)
                return fail(dropped());
            return copy_report{};
        },
        quick(10s), {}, [&](const retry_notice& n) {
            seen.push_back(n);
            texts.push_back(retry_text(n));
        });
    ASSERT_TRUE(r);
    EXPECT_EQ(calls, 5);
    ASSERT_EQ(seen.size(), 4u);
    const long long caps[] = {20, 40, 80, 80}; // doubling from 20 ms, at most 80 ms
    for (std::size_t i = 0; i < seen.size(); ++i) {
        EXPECT_EQ(seen[i].attempt, static_cast<int>(i) + 1);
        EXPECT_GE(seen[i].wait.count(), caps[i] / 2) << i;
        EXPECT_LE(seen[i].wait.count(), caps[i]) << i;
        EXPECT_GT(seen[i].left.count(), 9'000) << i;
        EXPECT_EQ(texts[i].rfind("failed (attempt " + std::to_string(i + 1) +
                                     "): exec dropped; trying again in 0.",
                                 0),
                  0u)
            << texts[i];
    }
}

TEST(retry, what_cannot_pass_is_not_repeated) {
    copy_error permanent = dropped("pod p: cannot run commands");
    permanent.permanent = true;
    copy_error unsafe{pipeline::exit_unsafe, "entry escapes the target", {}, false};
    copy_error usage{pipeline::exit_usage, "bad flag", {}, false};
    copy_error problems = dropped("1 entry was not sent");
    problems.problems.count = 1;
    for (const copy_error& e : {permanent, unsafe, usage, problems}) {
        int calls = 0;
        auto r = with_retries([&]() -> copy_result { ++calls; return fail(e); }, quick(10s), {});
        ASSERT_FALSE(r);
        EXPECT_EQ(calls, 1) << e.message;
        EXPECT_EQ(r.error().message, e.message) << "one attempt: the error as it was";
        EXPECT_EQ(r.error().status, e.status);
    }
}

TEST(retry, the_bound_ends_it_and_the_error_keeps_the_first_failure) {
    int calls = 0;
    const auto t0 = clock_type::now();
    auto r = with_retries(
        [&]() -> copy_result {
            ++calls;
            return fail(dropped(calls == 1 ? "exec dropped" : "connection refused"));
        },
        quick(300ms), {});
    const auto took = clock_type::now() - t0;
    ASSERT_FALSE(r);
    EXPECT_GE(calls, 4); // waits of at most 20, 40, 80, 80... ms fit 300 ms several times
    EXPECT_LT(took, 1s);
    const std::string& m = r.error().message;
    EXPECT_EQ(m.rfind("connection refused (after " + std::to_string(calls) + " attempts over 0.",
                      0),
              0u)
        << m;
    EXPECT_NE(m.find("; the first failure: exec dropped"), std::string::npos) << m;
}

TEST(retry, no_retry_time_is_one_attempt) {
    int calls = 0;
    auto r = with_retries([&]() -> copy_result { ++calls; return fail(dropped()); },
                          quick(0ms), {});
    ASSERT_FALSE(r);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(r.error().message, "exec dropped");
}

TEST(retry, a_stop_during_the_wait_ends_it_at_once) {
    std::stop_source stop;
    retry_policy slow;
    slow.retry_for = 60s;
    slow.first_backoff = 20s;
    int calls = 0;
    std::jthread stopper([&] {
        std::this_thread::sleep_for(100ms);
        stop.request_stop();
    });
    const auto t0 = clock_type::now();
    auto r = with_retries([&]() -> copy_result { ++calls; return fail(dropped()); }, slow,
                          stop.get_token());
    EXPECT_FALSE(r);
    EXPECT_EQ(calls, 1);
    EXPECT_LT(clock_type::now() - t0, 5s);
}

// A receiver that cannot write (a full, over-quota or read-only target) is told by its error
// text: what the in-pod recv prints (and its failure line carries), in glibc's and musl's words,
// and this libc's own strerror. pod_copier makes such a failure permanent.
TEST(retry, disk_refusals_are_recognised_in_the_receivers_words) {
    const std::string pod_said = "pod default/bb: podpipe recv into /data/x failed (exit 1): "
                                 "podpipe: recv failed: I/O error: write 'f3' failed: ";
    EXPECT_EQ(disk_refusal(pod_said + "No space left on device"), "no space left on device");
    EXPECT_EQ(disk_refusal(pod_said + "Disk quota exceeded"), "disk quota exceeded");
    EXPECT_EQ(disk_refusal(pod_said + "Quota exceeded"), "disk quota exceeded"); // musl
    EXPECT_EQ(disk_refusal("mkdir 'a' failed: Read-only file system"), "read-only file system");
    for (int e : {ENOSPC, EDQUOT, EROFS})
        EXPECT_TRUE(disk_refusal(std::string("x: ") + std::strerror(e)).has_value()) << e;
    EXPECT_FALSE(disk_refusal(pod_said + "Broken pipe").has_value());
    EXPECT_FALSE(disk_refusal("exec dropped").has_value());
    EXPECT_FALSE(disk_refusal("").has_value());
}

TEST(retry, other_result_types_too) {
    int calls = 0;
    auto r = with_retries(
        [&]() -> result<int, copy_error> {
            if (++calls == 1)
                return fail(dropped());
            return 7;
        },
        quick(1s), {});
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 7);
}

} // namespace
} // namespace podpipe::remote
