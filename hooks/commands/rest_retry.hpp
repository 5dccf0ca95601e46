// The hook's REST calls past the kube client's own few attempts (issue 21): a burst of 503s or
// an API server that restarts for longer than those would fail a job at its permission check,
// its pod or secret create, or its cleanup. Calls that may be made again (gets, lists, access
// reviews, deletes whose 404 counts as done, creates whose 409 the caller checks) are tried
// again with the copies' backoff (remote/retry.hpp) for PODPIPE_COPY_RETRY_SECONDS, when their
// error can pass (kube::api_error::retryable: 429, 5xx, refused or reset connections).
#pragma once

#include "engine/pipeline/errors.hpp"
#include "kube/errors.hpp"
#include "remote/retry.hpp"

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>

namespace podpipe::hook {

struct rest_retry {
    remote::retry_policy policy{std::chrono::milliseconds(0)}; ///< 0: the client's tries only
    std::stop_token stop;
    /// "<what> failed (attempt N): ...; trying again in ..." before each wait
    std::function<void(const std::string&)> on_warning;
};

/// `call()` (a result<T, kube::api_error>) until it succeeds, fails in a way that cannot pass,
/// or `r.policy` is spent; the last result.
template <class Call>
auto rest_retried(const rest_retry& r, const std::string& what, Call&& call) -> decltype(call()) {
    remote::retry_schedule schedule(r.policy, r.stop);
    for (;;) {
        auto got = call();
        if (got)
            return got;
        const remote::copy_error e{pipeline::exit_failure, got.error().what(), {},
                                   !got.error().retryable()};
        const auto warn = [&](const remote::retry_notice& n) {
            if (r.on_warning)
                r.on_warning(what + " " + remote::retry_text(n));
        };
        if (!schedule.again(e, warn))
            return got;
    }
}

} // namespace podpipe::hook
