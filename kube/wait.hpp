// wait_for_pod: the one way podpipe waits for a pod to reach a state (spec/kube-api.md §3.6).
// A GET gives the pod and its resourceVersion; a watch on that one pod (fieldSelector
// metadata.name) from there delivers every change as it happens, so a state is seen at once
// instead of at the next poll. A 410 Gone or a dropped watch re-lists (GET, then watch again);
// a watch the server ends (its timeoutSeconds) continues from the last resourceVersion. Where
// watching is not allowed (RBAC without `watch` on pods: the reference hook's documented role
// grants only get/list/create/delete) the wait falls back to polling the GET with a back-off.
//
//   auto p = kube::wait_for_pod(feed, ns, name, [](const kube::pod& p) {
//       return p.status.phase == "Running" ? kube::pod_check::done : kube::pod_check::wait;
//   }, {.deadline = clock.steady_now() + 60s, .stop = stop});
//
// Time (deadline, back-off sleeps) goes through a time_source, so the unit tests run on a
// simulated clock against a fake pod_feed; production passes api_pod_feed over api_client.
#pragma once

#include "engine/common/result.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"
#include "kube/time_source.hpp"

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>

namespace podpipe::kube {

class api_client;

/// Where wait_for_pod reads a pod: api_pod_feed in production, a fake in unit tests.
class pod_feed {
public:
    /// Receives each event; false ends the watch (not an error).
    using event_callback = std::function<bool(const watch_event&)>;

    virtual ~pod_feed() = default;
    virtual result<pod, api_error> get(std::string_view ns, std::string_view name) = 0;
    /// Watches the one pod from `resource_version` until the server ends the stream (after
    /// about `timeout`: not an error), `on_event` returns false, or `stop` is requested (an
    /// error). An ERROR event is the error it carries (errc::gone for 410 Expired).
    virtual result<void, api_error> watch(std::string_view ns, std::string_view name,
                                           const std::string& resource_version,
                                           std::chrono::seconds timeout, std::stop_token stop,
                                           const event_callback& on_event) = 0;
};

/// pod_feed over api_client: get_pod, and watch_pods with fieldSelector metadata.name=NAME.
class api_pod_feed final : public pod_feed {
public:
    explicit api_pod_feed(api_client& client) noexcept
        : client_(client) {}

    result<pod, api_error> get(std::string_view ns, std::string_view name) override;
    result<void, api_error> watch(std::string_view ns, std::string_view name,
                                   const std::string& resource_version,
                                   std::chrono::seconds timeout, std::stop_token stop,
                                   const event_callback& on_event) override;

private:
    api_client& client_;
};

/// A predicate's verdict on one state of the pod.
enum class pod_check {
    wait, ///< not yet
    done, ///< the state waited for: wait_for_pod returns this pod
    fail, ///< a state that cannot lead there: wait_for_pod fails (errc::bad_request)
};

using pod_predicate = std::function<pod_check(const pod&)>;

struct pod_wait_options {
    /// steady_now() of `clock` past which the wait fails with errc::timeout (the predicate
    /// has seen every state until then). time_point::max(): no deadline.
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    /// Ends the wait at once with errc::cancelled (a watch in flight too). The client's own
    /// stop (client_options::stop) ends its calls as well, with their error.
    std::stop_token stop;
    /// Null: real_time(). Not owned.
    time_source* clock = nullptr;
    /// Longest single watch request (timeoutSeconds); the next one continues where it ended.
    std::chrono::seconds watch_slice{60};
    /// Polling (watch not allowed) and the pause after a dropped watch: from first_poll,
    /// growing by half up to max_poll.
    std::chrono::milliseconds first_poll{200};
    std::chrono::milliseconds max_poll{2'000};
};

/// Calls `pred` on the pod's current state and on every later one until it says done (the pod
/// is returned) or fail, or the deadline passes. Errors: errc::bad_request (the predicate said
/// fail), errc::timeout (deadline), errc::cancelled (stop), errc::not_found (the pod does not
/// exist or was deleted), or the GET's error after the client's own retries. The messages are
/// the caller's to write: the predicate has seen the states.
result<pod, api_error> wait_for_pod(pod_feed& feed, std::string_view ns, std::string_view name,
                                     const pod_predicate& pred, const pod_wait_options& opt);

/// As above over `client` (api_pod_feed).
result<pod, api_error> wait_for_pod(api_client& client, std::string_view ns,
                                     std::string_view name, const pod_predicate& pred,
                                     const pod_wait_options& opt);

} // namespace podpipe::kube
