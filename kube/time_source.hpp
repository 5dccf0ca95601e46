// Injected time (Envoy's TimeSource): retries sleep and credential caches expire through
// this interface, so tests run on simulated time without sleeping.
#pragma once

#include <chrono>
#include <stop_token>

namespace podpipe::kube {

class time_source {
public:
    virtual ~time_source() = default;
    /// For intervals (token file age, backoff).
    virtual std::chrono::steady_clock::time_point steady_now() = 0;
    /// For wall-clock expiry stamps (ExecCredential expirationTimestamp).
    virtual std::chrono::system_clock::time_point system_now() = 0;
    /// Blocks the calling thread for `d` (simulated clocks just advance).
    virtual void sleep_for(std::chrono::nanoseconds d) = 0;
    /// As sleep_for, but not past a stop requested on `stop` (before or during the wait).
    /// The default checks `stop` only before sleeping; real_time() wakes at the stop.
    virtual void sleep_unless_stopped(std::chrono::nanoseconds d, std::stop_token stop) {
        if (!stop.stop_requested())
            sleep_for(d);
    }
};

/// The process clocks and std::this_thread::sleep_for. Thread-safe; lives forever.
time_source& real_time();

/// A manual clock for tests: sleep_for advances both clocks and records the total slept.
class simulated_time final : public time_source {
public:
    std::chrono::steady_clock::time_point steady_now() override { return steady_; }

    std::chrono::system_clock::time_point system_now() override { return system_; }

    void sleep_for(std::chrono::nanoseconds d) override {
        advance(d);
        slept_ += d;
        ++sleeps_;
    }

    void advance(std::chrono::nanoseconds d) {
        steady_ += std::chrono::duration_cast<std::chrono::steady_clock::duration>(d);
        system_ += std::chrono::duration_cast<std::chrono::system_clock::duration>(d);
    }

    void set_system_now(std::chrono::system_clock::time_point t) { system_ = t; }

    std::chrono::nanoseconds slept() const { return slept_; }

    int sleeps() const { return sleeps_; }

private:
    std::chrono::steady_clock::time_point steady_{std::chrono::hours(1000)};
    std::chrono::system_clock::time_point system_{std::chrono::seconds(1'700'000'000)};
    std::chrono::nanoseconds slept_{0};
    int sleeps_ = 0;
};

} // namespace podpipe::kube
