// Helpers shared by the transport tests: a watchdog that turns a hang into a loud failure,
// and waiting for a condition with a deadline (never sleeping as an assertion).
#pragma once

#include "tests/support/eventually.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

namespace podpipe::transport::testing {

/// Aborts the test process if still alive after `limit` (a hang is a bug, never a pass).
class watchdog {
public:
    explicit watchdog(std::chrono::seconds limit, std::string what)
        : thread_([this, limit, what = std::move(what)] {
            std::unique_lock lk(mu_);
            if (!cv_.wait_for(lk, limit, [this] { return done_; })) {
                std::fprintf(stderr, "watchdog: %s did not finish in time\n", what.c_str());
                std::abort();
            }
        }) {}

    ~watchdog() {
        {
            std::lock_guard lk(mu_);
            done_ = true;
        }
        cv_.notify_all();
        thread_.join();
    }

private:
    std::mutex mu_;
    std::condition_variable cv_;
    bool done_ = false;
    std::thread thread_;
};

/// Polls `pred` until it holds or `limit` passes; returns its last value.
inline bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds limit) {
    return podpipe::testing::eventually(pred, limit, std::chrono::milliseconds(2));
}

/// Runs `call` on this thread while another requests a stop on `stop` once `ready` holds
/// (polled for up to 10 s); returns how long `call` went on after the stop was requested.
inline std::chrono::steady_clock::duration run_stopped(std::stop_source& stop,
                                                       const std::function<bool()>& ready,
                                                       const std::function<void()>& call) {
    std::chrono::steady_clock::time_point stopped_at;
    std::thread stopper([&] {
        wait_until(ready, std::chrono::seconds(10));
        stopped_at = std::chrono::steady_clock::now();
        stop.request_stop();
    });
    call();
    const auto returned = std::chrono::steady_clock::now();
    stopper.join(); // orders stopped_at before the read below
    return returned - stopped_at;
}

/// A condition for run_stopped when the peer shows nothing: true `d` after its creation.
inline std::function<bool()> after(std::chrono::milliseconds d) {
    return [end = std::chrono::steady_clock::now() + d] {
        return std::chrono::steady_clock::now() >= end;
    };
}

} // namespace podpipe::transport::testing
