#include "kube/wait.hpp"

#include "kube/client.hpp"

#include <algorithm>
#include <optional>

namespace podpipe::kube {

result<pod, api_error> api_pod_feed::get(std::string_view ns, std::string_view name) {
    return client_.get_pod(ns, name);
}

result<void, api_error> api_pod_feed::watch(std::string_view ns, std::string_view name,
                                             const std::string& resource_version,
                                             std::chrono::seconds timeout, std::stop_token stop,
                                             const event_callback& on_event) {
    list_options o;
    o.field_selector = "metadata.name=" + std::string(name);
    o.resource_version = resource_version;
    o.allow_watch_bookmarks = true;
    o.timeout_seconds = static_cast<int>(std::max<std::int64_t>(1, timeout.count()));
    return client_.watch_pods(ns, std::move(o), on_event, std::move(stop));
}

namespace {

using steady = std::chrono::steady_clock;

api_error wait_error(errc e, std::string_view ns, std::string_view name) {
    return api_error(e, "wait for pod " + std::string(ns) + "/" + std::string(name));
}

/// The pause before the next GET, bounded by what is left of the deadline.
std::chrono::nanoseconds pause(std::chrono::milliseconds delay, steady::time_point now,
                               steady::time_point deadline) {
    if (now >= deadline)
        return {};
    return std::min<std::chrono::nanoseconds>(delay, deadline - now);
}

/// Whole seconds (at least one) of the next watch: the slice or what is left of the deadline.
std::chrono::seconds watch_length(std::chrono::seconds slice, steady::time_point now,
                                  steady::time_point deadline) {
    if (deadline - now >= slice)
        return slice;
    const auto left = std::chrono::ceil<std::chrono::seconds>(deadline - now);
    return std::max(left, std::chrono::seconds(1));
}

} // namespace

result<pod, api_error> wait_for_pod(pod_feed& feed, std::string_view ns, std::string_view name,
                                     const pod_predicate& pred, const pod_wait_options& opt) {
    time_source& clock = opt.clock != nullptr ? *opt.clock : real_time();
    auto delay = opt.first_poll;
    bool can_watch = true;
    const auto grow = [&] { delay = std::min(opt.max_poll, delay * 3 / 2); };
    for (;;) { // one GET, then watch from its resourceVersion for as long as the watch holds
        if (opt.stop.stop_requested())
            return fail(wait_error(errc::cancelled, ns, name));
        auto got = feed.get(ns, name);
        if (!got) {
            if (opt.stop.stop_requested())
                return fail(wait_error(errc::cancelled, ns, name));
            return fail(got.error());
        }
        switch (pred(*got)) {
        case pod_check::done:
            return std::move(*got);
        case pod_check::fail:
            return fail(wait_error(errc::bad_request, ns, name));
        case pod_check::wait:
            break;
        }
        std::string rv = got->metadata.resource_version;
        while (can_watch) {
            const auto now = clock.steady_now();
            if (now >= opt.deadline)
                return fail(wait_error(errc::timeout, ns, name));
            if (opt.stop.stop_requested())
                return fail(wait_error(errc::cancelled, ns, name));
            std::optional<result<pod, api_error>> outcome;
            bool any_event = false;
            const auto on_event = [&](const watch_event& ev) {
                any_event = true;
                if (!ev.object.metadata.resource_version.empty())
                    rv = ev.object.metadata.resource_version;
                if (ev.type == watch_event::kind::deleted) {
                    outcome = fail(wait_error(errc::not_found, ns, name));
                    return false;
                }
                if (ev.type == watch_event::kind::bookmark)
                    return true;
                switch (pred(ev.object)) {
                case pod_check::done:
                    outcome = ev.object;
                    return false;
                case pod_check::fail:
                    outcome = fail(wait_error(errc::bad_request, ns, name));
                    return false;
                case pod_check::wait:
                    break;
                }
                return clock.steady_now() < opt.deadline && !opt.stop.stop_requested();
            };
            const auto length = watch_length(opt.watch_slice, now, opt.deadline);
            auto w = feed.watch(ns, name, rv, length, opt.stop, on_event);
            if (outcome)
                return std::move(*outcome);
            // The server ended the stream: continue from rv. One that ends at once without a
            // word (a proxy cutting watches) counts as dropped, or this would spin.
            if (w && (any_event || clock.steady_now() - now >= std::chrono::seconds(1))) {
                delay = opt.first_poll;
                continue;
            }
            if (opt.stop.stop_requested())
                return fail(wait_error(errc::cancelled, ns, name));
            if (!w) {
                if (w.error().is(errc::forbidden) || w.error().is(errc::method_not_allowed)) {
                    can_watch = false; // no watch permission: poll the GET instead
                    break;
                }
                if (w.error().is(errc::gone))
                    break; // the resourceVersion expired: list again, at once
            }
            // A dropped or refused watch: pause (growing), then list again.
            clock.sleep_unless_stopped(pause(delay, clock.steady_now(), opt.deadline), opt.stop);
            grow();
            break;
        }
        if (can_watch)
            continue;
        const auto now = clock.steady_now();
        if (now >= opt.deadline)
            return fail(wait_error(errc::timeout, ns, name));
        clock.sleep_unless_stopped(pause(delay, now, opt.deadline), opt.stop);
        grow();
    }
}

result<pod, api_error> wait_for_pod(api_client& client, std::string_view ns,
                                     std::string_view name, const pod_predicate& pred,
                                     const pod_wait_options& opt) {
    api_pod_feed feed(client);
    return wait_for_pod(feed, ns, name, pred, opt);
}

} // namespace podpipe::kube
