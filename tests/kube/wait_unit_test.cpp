// wait_for_pod against a scripted pod_feed on a simulated clock: the watch is used from the
// GET's resourceVersion, a 410 or a dropped watch lists again, a forbidden watch falls back to
// polling, the deadline and the stop end the wait. (Against a real kubesim: client_test.cpp.)
#include "kube/wait.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <string>
#include <vector>

namespace podpipe::kube {
namespace {

using namespace std::chrono_literals;

pod pod_in(std::string phase, std::string rv) {
    pod p;
    p.metadata.name = "p1";
    p.metadata.resource_version = std::move(rv);
    p.status.phase = std::move(phase);
    return p;
}

watch_event event(watch_event::kind k, std::string phase, std::string rv) {
    watch_event ev;
    ev.type = k;
    ev.object = pod_in(std::move(phase), std::move(rv));
    return ev;
}

api_error test_error(errc e) { return api_error(e, "test"); }

/// One scripted watch request: the events it delivers, the time it takes, how it ends.
struct watch_script {
    std::vector<watch_event> events;
    std::chrono::milliseconds takes{0};
    std::optional<api_error> ends_with; ///< nullopt: the server ended the stream
};

class fake_feed final : public pod_feed {
public:
    explicit fake_feed(simulated_time& clock)
        : clock_(clock) {}

    std::deque<result<pod, api_error>> gets;
    std::deque<watch_script> watches;
    int get_calls = 0;
    std::vector<std::string> watched_from; ///< the resourceVersion of each watch
    std::vector<std::chrono::seconds> watch_timeouts;
    std::vector<bool> watch_stoppable; ///< each watch got a stop token it can be ended with

    result<pod, api_error> get(std::string_view, std::string_view) override {
        ++get_calls;
        if (gets.empty())
            return fail(test_error(errc::server_error));
        auto r = std::move(gets.front());
        gets.pop_front();
        return r;
    }

    result<void, api_error> watch(std::string_view, std::string_view, const std::string& rv,
                                   std::chrono::seconds timeout, std::stop_token stop,
                                   const event_callback& on_event) override {
        watched_from.push_back(rv);
        watch_stoppable.push_back(stop.stop_possible());
        watch_timeouts.push_back(timeout);
        if (watches.empty()) { // nothing more happens: the server ends the stream at timeout
            clock_.advance(timeout);
            return {};
        }
        watch_script w = std::move(watches.front());
        watches.pop_front();
        clock_.advance(w.takes);
        for (const auto& ev : w.events)
            if (!on_event(ev))
                return {};
        if (w.ends_with)
            return fail(*w.ends_with);
        return {};
    }

private:
    simulated_time& clock_;
};

pod_check running(const pod& p) {
    if (p.status.phase == "Running")
        return pod_check::done;
    if (p.status.phase == "Failed")
        return pod_check::fail;
    return pod_check::wait;
}

class wait_unit_test : public ::testing::Test {
protected:
    simulated_time clock_;
    fake_feed feed_{clock_};

    pod_wait_options options(std::chrono::seconds timeout = 60s) {
        pod_wait_options o;
        o.clock = &clock_;
        o.deadline = clock_.steady_now() + timeout;
        o.watch_slice = 10s;
        return o;
    }
};

TEST_F(wait_unit_test, a_pod_already_there_needs_no_watch) {
    feed_.gets.push_back(pod_in("Running", "5"));
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->metadata.resource_version, "5");
    EXPECT_TRUE(feed_.watched_from.empty());
    EXPECT_EQ(clock_.sleeps(), 0);
}

TEST_F(wait_unit_test, watches_from_the_get_and_sees_each_state_without_sleeping) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.watches.push_back({{event(watch_event::kind::modified, "Pending", "6"),
                              event(watch_event::kind::modified, "Running", "7")},
                             1500ms,
                             {}});
    std::vector<std::string> seen;
    auto r = wait_for_pod(
        feed_, "ns", "p1",
        [&](const pod& p) {
            seen.push_back(p.status.phase + "@" + p.metadata.resource_version);
            return running(p);
        },
        options());
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->metadata.resource_version, "7");
    EXPECT_EQ(seen, (std::vector<std::string>{"Pending@5", "Pending@6", "Running@7"}));
    EXPECT_EQ(feed_.watched_from, (std::vector<std::string>{"5"}));
    EXPECT_EQ(feed_.get_calls, 1);
    EXPECT_EQ(clock_.sleeps(), 0);
}

TEST_F(wait_unit_test, a_watch_the_server_ends_continues_from_the_last_version) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    watch_event mark = event(watch_event::kind::bookmark, "", "9");
    feed_.watches.push_back({{event(watch_event::kind::modified, "Pending", "8"), mark}, 10s, {}});
    feed_.watches.push_back({{event(watch_event::kind::modified, "Running", "12")}, 1s, {}});
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(feed_.watched_from, (std::vector<std::string>{"5", "9"}));
    EXPECT_EQ(feed_.get_calls, 1); // no re-list
    EXPECT_EQ(feed_.watch_timeouts.at(0), 10s);
}

TEST_F(wait_unit_test, gone_lists_again_at_once_and_watches_from_the_new_version) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.gets.push_back(pod_in("Pending", "40"));
    feed_.watches.push_back({{}, 0ms, test_error(errc::gone)});
    feed_.watches.push_back({{event(watch_event::kind::modified, "Running", "41")}, 0ms, {}});
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(feed_.watched_from, (std::vector<std::string>{"5", "40"}));
    EXPECT_EQ(feed_.get_calls, 2);
    EXPECT_EQ(clock_.sleeps(), 0);
}

TEST_F(wait_unit_test, a_dropped_watch_pauses_then_lists_again) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.gets.push_back(pod_in("Running", "20"));
    feed_.watches.push_back({{}, 0ms, api_error(std::make_error_code(std::errc::connection_reset),
                                                 "watch")});
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(feed_.get_calls, 2);
    EXPECT_EQ(clock_.sleeps(), 1);
    EXPECT_EQ(clock_.slept(), 200ms);
}

TEST_F(wait_unit_test, a_watch_that_ends_at_once_without_events_counts_as_dropped) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.gets.push_back(pod_in("Running", "6"));
    feed_.watches.push_back({{}, 0ms, {}}); // e.g. a proxy that cuts every watch
    feed_.watches.push_back({{}, 0ms, {}});
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(feed_.get_calls, 3); // listed again each time, after a growing pause
    EXPECT_EQ(clock_.slept(), 200ms + 300ms);
}

TEST_F(wait_unit_test, a_forbidden_watch_falls_back_to_polling_with_a_back_off) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.gets.push_back(pod_in("Running", "6"));
    feed_.watches.push_back({{}, 0ms, test_error(errc::forbidden)});
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(feed_.watched_from.size(), 1u); // never asked again
    EXPECT_EQ(feed_.get_calls, 4);
    EXPECT_EQ(clock_.sleeps(), 3);
    EXPECT_EQ(clock_.slept(), 200ms + 300ms + 450ms);
}

TEST_F(wait_unit_test, the_predicate_failing_ends_the_wait) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.watches.push_back({{event(watch_event::kind::modified, "Failed", "6")}, 0ms, {}});
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::bad_request)) << r.error().what();
}

TEST_F(wait_unit_test, a_deleted_pod_is_not_found) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.watches.push_back({{event(watch_event::kind::deleted, "Pending", "6")}, 0ms, {}});
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::not_found)) << r.error().what();
}

TEST_F(wait_unit_test, the_get_error_is_returned) {
    feed_.gets.push_back(fail(test_error(errc::not_found)));
    auto r = wait_for_pod(feed_, "ns", "p1", running, options());
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::not_found));
}

TEST_F(wait_unit_test, the_deadline_ends_a_quiet_wait_with_watches_cut_to_what_is_left) {
    feed_.gets.push_back(pod_in("Pending", "5"));
    const auto start = clock_.steady_now();
    auto r = wait_for_pod(feed_, "ns", "p1", running, options(25s));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::timeout)) << r.error().what();
    EXPECT_EQ(feed_.watch_timeouts, (std::vector<std::chrono::seconds>{10s, 10s, 5s}));
    EXPECT_EQ(clock_.steady_now() - start, 25s);
    EXPECT_EQ(feed_.get_calls, 1);
}

TEST_F(wait_unit_test, a_stop_ends_the_wait_between_events) {
    std::stop_source stop;
    feed_.gets.push_back(pod_in("Pending", "5"));
    feed_.watches.push_back({{event(watch_event::kind::modified, "Pending", "6"),
                              event(watch_event::kind::modified, "Running", "7")},
                             0ms,
                             {}});
    auto o = options();
    o.stop = stop.get_token();
    auto r = wait_for_pod(
        feed_, "ns", "p1",
        [&](const pod& p) {
            if (p.metadata.resource_version == "6")
                stop.request_stop(); // as SIGTERM arriving mid-watch
            return running(p);
        },
        o);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::cancelled)) << r.error().what();
    EXPECT_EQ(feed_.watch_stoppable, std::vector<bool>{true}); // a watch in flight ends too
}

TEST_F(wait_unit_test, a_stop_before_the_wait_makes_no_call) {
    std::stop_source stop;
    stop.request_stop();
    auto o = options();
    o.stop = stop.get_token();
    auto r = wait_for_pod(feed_, "ns", "p1", running, o);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::cancelled));
    EXPECT_EQ(feed_.get_calls, 0);
}

} // namespace
} // namespace podpipe::kube
