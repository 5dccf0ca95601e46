#include "remote/retry.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <random>

namespace podpipe::remote {

bool worth_retrying(const copy_error& e) {
    return e.status == pipeline::exit_failure && !e.permanent && e.problems.count == 0;
}

std::optional<std::string_view> disk_refusal(std::string_view message) {
    struct kind {
        std::string_view text; ///< as strerror says it
        std::string_view name; ///< as we say it
    };
    static constexpr kind kinds[] = {
        {"No space left on device", "no space left on device"},
        {"Disk quota exceeded", "disk quota exceeded"}, // glibc
        {"Quota exceeded", "disk quota exceeded"},      // musl
        {"Read-only file system", "read-only file system"},
    };
    for (const auto& k : kinds)
        if (message.find(k.text) != std::string_view::npos)
            return k.name;
    return std::nullopt;
}

namespace {

// Sleeps `d` unless `stop` is requested first; false when it was.
bool wait_for(std::chrono::milliseconds d, std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    std::unique_lock lock(m);
    cv.wait_for(lock, stop, d, [] { return false; });
    return !stop.stop_requested();
}

std::string seconds(std::chrono::milliseconds d) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(d.count()) / 1000.0);
    return buf;
}

} // namespace

std::string retry_text(const retry_notice& n) {
    return "failed (attempt " + std::to_string(n.attempt) + "): " + n.error->message +
           "; trying again in " + seconds(n.wait) + " (for up to " +
           seconds(n.left) + " more)";
}

retry_schedule::retry_schedule(const retry_policy& policy, std::stop_token stop)
    : policy_(policy), stop_(std::move(stop)),
      backoff_(std::max(policy.first_backoff, std::chrono::milliseconds(1))),
      jitter_state_(std::random_device{}()) {}

bool retry_schedule::again(const copy_error& e,
                           const std::function<void(const retry_notice&)>& on_retry) {
    using clock = std::chrono::steady_clock;
    ++attempts_;
    if (attempts_ == 1) {
        first_failure_ = clock::now();
        first_ = e.message;
    }
    if (policy_.retry_for.count() <= 0 || !worth_retrying(e) || stop_.stop_requested())
        return false;
    std::minstd_rand jitter(jitter_state_);
    std::uniform_int_distribution<long long> draw(backoff_.count() / 2, backoff_.count());
    const std::chrono::milliseconds wait(draw(jitter));
    jitter_state_ = jitter();
    const auto next = clock::now() + wait;
    if (next - first_failure_ > policy_.retry_for)
        return false;
    retry_notice n;
    n.attempt = attempts_;
    n.wait = wait;
    n.left = std::chrono::duration_cast<std::chrono::milliseconds>(policy_.retry_for -
                                                                   (next - first_failure_));
    n.error = &e;
    if (on_retry)
        on_retry(n);
    if (!wait_for(wait, stop_))
        return false;
    backoff_ = std::min(backoff_ * 2, policy_.max_backoff);
    return true;
}

copy_error retry_schedule::final_error(copy_error last) const {
    if (attempts_ <= 1)
        return last;
    const std::string was = last.message;
    last.message += " (after " + std::to_string(attempts_) + " attempts over " +
                    seconds(std::chrono::duration_cast<std::chrono::milliseconds>(
                        std::chrono::steady_clock::now() - first_failure_)) +
                    ")";
    if (first_ != was)
        last.message += "; the first failure: " + first_;
    return last;
}

} // namespace podpipe::remote
