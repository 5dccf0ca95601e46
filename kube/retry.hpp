// The one retry policy of the control plane (STYLE anti-pattern 3): capped exponential
// backoff with full jitter, Retry-After honoured, only errors with condition::retryable
// retried (429, 500, 502/503, 504, timeouts). Time and randomness are injected.
//
//   retry_policy policy(opts, clock);
//   auto pod = policy.run([&] { return client.get_pod(ns, name); });
//
// Not thread-safe (holds the RNG); use one per thread or per call.
#pragma once

#include "engine/common/result.hpp"
#include "kube/errors.hpp"
#include "kube/time_source.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <stop_token>
#include <type_traits>

namespace podpipe::kube {

struct retry_options {
    int max_attempts = 5; ///< total calls, first included; 1 disables retries
    std::chrono::milliseconds base_delay{250};
    std::chrono::milliseconds max_delay{8000}; ///< cap of the exponential term
    /// A server asking for longer than this is obeyed only up to this long.
    std::chrono::seconds max_retry_after{60};
};

class retry_policy {
public:
    /// Uniform 64-bit random numbers; the default is a std::mt19937_64 seeded from
    /// std::random_device.
    using rng_fn = std::function<std::uint64_t()>;

    explicit retry_policy(retry_options opts = {}, time_source& clock = real_time(),
                          rng_fn rng = {});

    /// The wait before retry number `retry` (0 for the first retry) after `err`:
    /// Retry-After if the error carries one (capped), else uniform in
    /// [0, min(max_delay, base_delay * 2^retry)].
    std::chrono::milliseconds delay_for(int retry, const api_error& err);

    /// Once `stop` is requested nothing is tried again and a backoff wait ends at once (the
    /// last result is returned): a signal must not wait out a Retry-After.
    void interrupt_on(std::stop_token stop) { stop_ = std::move(stop); }

    /// Calls `call` (returning result<T, api_error>) until it succeeds, fails with a
    /// non-retryable error, or max_attempts are used; returns the last result.
    template <class Call>
    auto run(Call&& call) -> std::invoke_result_t<Call&> {
        return run_if(std::forward<Call>(call), [](const api_error&) { return true; });
    }

    /// As run(), but retries only errors for which `retryable(error)` is true (and which are
    /// retryable by condition): for requests that must not be repeated after the server may
    /// have acted on them.
    template <class Call, class Pred>
    auto run_if(Call&& call, Pred&& retryable) -> std::invoke_result_t<Call&> {
        for (int attempt = 1;; ++attempt) {
            auto r = call();
            if (r || attempt >= opts_.max_attempts || !r.error().retryable() ||
                !retryable(r.error()) || stop_.stop_requested())
                return r;
            clock_.sleep_unless_stopped(delay_for(attempt - 1, r.error()), stop_);
            if (stop_.stop_requested())
                return r;
        }
    }

    const retry_options& options() const { return opts_; }

private:
    retry_options opts_;
    time_source& clock_;
    rng_fn rng_;
    std::stop_token stop_;
};

} // namespace podpipe::kube
