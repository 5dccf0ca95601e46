#include "kube/time_source.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace podpipe::kube {

namespace {
class real_time_source final : public time_source {
public:
    std::chrono::steady_clock::time_point steady_now() override {
        return std::chrono::steady_clock::now();
    }

    std::chrono::system_clock::time_point system_now() override {
        return std::chrono::system_clock::now();
    }

    void sleep_for(std::chrono::nanoseconds d) override { std::this_thread::sleep_for(d); }

    void sleep_unless_stopped(std::chrono::nanoseconds d, std::stop_token stop) override {
        std::mutex mu;
        std::condition_variable_any cv;
        std::unique_lock lk(mu);
        cv.wait_for(lk, stop, d, [] { return false; }); // returns at the stop or after d
    }
};
} // namespace

time_source& real_time() {
    static real_time_source instance;
    return instance;
}

} // namespace podpipe::kube
