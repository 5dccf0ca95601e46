// Copies that are tried again after a failure that can pass: a dropped or refused connection
// (an API-server restart, a load balancer's cut), a killed in-pod podpipe. Exponential backoff
// with jitter, bounded by a time from the first failure; then the error names the first failure
// and the last. A retry of a copy between podpipe ends continues where the receiver stopped
// (pod_copier keeps the transfer's id between attempts; engine/pipeline/ledger.hpp); with a
// pod's tar it starts over, the receiver overwriting what it has.
#pragma once

#include "remote/pod_copy.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

namespace podpipe::remote {

struct retry_policy {
    /// How long after the first failure attempts may still start; 0: one attempt only.
    std::chrono::milliseconds retry_for{120'000};
    std::chrono::milliseconds first_backoff{500};
    std::chrono::milliseconds max_backoff{8'000};
};

/// Whether another attempt can succeed: a failure (not a usage or unsafe-stream refusal), not
/// permanent (the API refused, the runtime cannot run the command), and not a sender that could
/// not read some of its files (a second read would not either).
bool worth_retrying(const copy_error& e);

/// The kind of a failure to write that no repeat mends, found in a copy's error text: "no space
/// left on device" (ENOSPC), "disk quota exceeded" (EDQUOT) or "read-only file system" (EROFS);
/// nullopt for anything else. Text, because it is all an in-pod receiver's failure carries (its
/// stderr, its failure line: the engine's "write 'PATH' failed: <strerror>"): the wording of
/// glibc (this binary's and the static in-pod one's) and of musl.
std::optional<std::string_view> disk_refusal(std::string_view message);

/// What `on_retry` is told before each wait.
struct retry_notice {
    int attempt = 0;                 ///< the attempt that failed, from 1
    std::chrono::milliseconds wait{0}; ///< until the next one
    std::chrono::milliseconds left{0}; ///< of retry_for after that wait
    const copy_error* error = nullptr;
};

/// The waits and the bound of with_retries(), one per operation.
class retry_schedule {
public:
    retry_schedule(const retry_policy& policy, std::stop_token stop);
    /// After failed attempt `e`: whether another is worth making and fits in the policy; if so,
    /// tells `on_retry` and waits (false when `stop` came meanwhile).
    bool again(const copy_error& e, const std::function<void(const retry_notice&)>& on_retry);
    /// `last` as the final error: after more than one attempt it says how many, over how long,
    /// and the first failure when it differs.
    copy_error final_error(copy_error last) const;

private:
    retry_policy policy_;
    std::stop_token stop_;
    std::chrono::steady_clock::time_point first_failure_{};
    std::string first_;
    std::chrono::milliseconds backoff_{0};
    int attempts_ = 0;
    std::uint_fast32_t jitter_state_ = 0;
};

/// Runs `attempt` (returning result<T, copy_error>: a probe, a copy, both) until it succeeds,
/// fails in a way worth_retrying() refuses, `stop` is requested, or the next attempt would
/// start later than `policy.retry_for` after the first failure. The waits double from
/// first_backoff up to max_backoff, each drawn from its upper half at random (so many clients
/// cut at once do not come back at once).
template <class Attempt>
auto with_retries(Attempt&& attempt, const retry_policy& policy, std::stop_token stop,
                  const std::function<void(const retry_notice&)>& on_retry = {})
    -> decltype(attempt()) {
    retry_schedule schedule(policy, stop);
    for (;;) {
        auto r = attempt();
        if (r)
            return r;
        if (!schedule.again(r.error(), on_retry))
            return fail(schedule.final_error(std::move(r.error())));
    }
}

/// "failed (attempt N): <error>; trying again in 1.4 s (for up to 97 s more)".
std::string retry_text(const retry_notice& n);

} // namespace podpipe::remote
