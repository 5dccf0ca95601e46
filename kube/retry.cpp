#include "kube/retry.hpp"

#include <algorithm>
#include <memory>
#include <random>

namespace podpipe::kube {

retry_policy::retry_policy(retry_options opts, time_source& clock, rng_fn rng)
    : opts_(opts)
    , clock_(clock)
    , rng_(std::move(rng)) {
    if (opts_.max_attempts < 1)
        opts_.max_attempts = 1;
    if (!rng_) {
        auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
        rng_ = [engine] { return (*engine)(); };
    }
}

std::chrono::milliseconds retry_policy::delay_for(int retry, const api_error& err) {
    using std::chrono::milliseconds;
    if (err.retry_after)
        return std::min<milliseconds>(*err.retry_after, opts_.max_retry_after);
    const auto base = std::max<std::int64_t>(opts_.base_delay.count(), 0);
    const auto cap = std::max<std::int64_t>(opts_.max_delay.count(), 0);
    std::int64_t ceiling = base;
    for (int i = 0; i < retry && ceiling < cap; ++i)
        ceiling *= 2;
    ceiling = std::min(ceiling, cap);
    if (ceiling <= 0)
        return milliseconds(0);
    return milliseconds(
        static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(ceiling + 1)));
}

} // namespace podpipe::kube
