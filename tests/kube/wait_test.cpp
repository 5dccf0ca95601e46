// kube::wait_for_pod against a real kubesim: the states come through the watch (a poll interval
// longer than the test allows proves it), a 410 in either form lists again, a role without
// `watch` on pods falls back to polling, a stop ends a watch in flight at once, a deleted pod
// is not_found, an API-server restart (a watch from before it is 410 Gone) lists again. (The
// edge cases on a simulated clock: wait_unit_test.cpp.)
#include "cluster_fixture.hpp"
#include "kube/client.hpp"
#include "kube/credentials.hpp"
#include "kube/wait.hpp"
#include "tests/support/eventually.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace podpipe::kube::testing {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

class wait_test : public cluster_test {
protected:
    /// Polling would first look again after 10 s: a wait that ends sooner used the watch.
    pod_wait_options slow_polls(std::chrono::seconds timeout = 60s) {
        pod_wait_options o;
        o.deadline = steady::now() + timeout;
        o.first_poll = 10s;
        o.max_poll = 10s;
        return o;
    }

    /// Records every phase the predicate sees; done at `phase`.
    pod_predicate until_phase(std::string phase) {
        return [this, phase](const pod& p) {
            std::lock_guard lk(mu_);
            if (phases_.empty() || phases_.back() != p.status.phase)
                phases_.push_back(p.status.phase);
            return p.status.phase == phase ? pod_check::done : pod_check::wait;
        };
    }

    bool saw(const std::string& phase) {
        std::lock_guard lk(mu_);
        return std::find(phases_.begin(), phases_.end(), phase) != phases_.end();
    }

    std::mutex mu_;
    std::vector<std::string> phases_;
};

TEST_F(wait_test, each_state_arrives_through_the_watch) {
    ASSERT_TRUE(client_->create_pod(busybox_pod("brief", {"sh", "-c", "sleep 1"})));
    const auto t0 = steady::now();
    auto p = wait_for_pod(*client_, "", "brief", until_phase("Succeeded"), slow_polls());
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->status.phase, "Succeeded");
    EXPECT_TRUE(saw("Running")); // the state between, seen as it happened
    EXPECT_LT(steady::now() - t0, 8s) << "the wait polled instead of watching";
}

TEST_F(wait_test, gone_as_an_event_or_as_http_lists_again_at_once) {
    for (const char* mode : {"event", "http"}) {
        SCOPED_TRACE(mode);
        const std::string name = std::string("gone-") + mode;
        ASSERT_TRUE(client_->create_pod(busybox_pod(name, {"sh", "-c", "sleep 1"})));
        arm(std::string(R"({"gone": {"count": 1, "mode": ")") + mode + "\"}}");
        const auto t0 = steady::now();
        auto p = wait_for_pod(*client_, "", name, until_phase("Succeeded"), slow_polls());
        ASSERT_TRUE(p) << p.error().what();
        EXPECT_EQ(p->status.phase, "Succeeded");
        EXPECT_LT(steady::now() - t0, 8s);
    }
}

TEST_F(wait_test, a_stop_ends_a_watch_in_flight_at_once) {
    pod never = busybox_pod("never");
    never.spec.containers.at(0).image = "registry.example/does-not-exist:1"; // stays Pending
    ASSERT_TRUE(client_->create_pod(never));
    std::stop_source stop;
    std::atomic<bool> looked{false};
    std::jthread stopper([&] {
        podpipe::testing::eventually([&] { return looked.load(); });
        std::this_thread::sleep_for(200ms); // the watch is open (not measured: any time works)
        stop.request_stop();
    });
    auto o = slow_polls(600s);
    o.stop = stop.get_token();
    o.watch_slice = 60s;
    const auto t0 = steady::now();
    auto p = wait_for_pod(
        *client_, "", "never",
        [&](const pod&) {
            looked = true;
            return pod_check::wait;
        },
        o);
    ASSERT_FALSE(p);
    EXPECT_TRUE(p.error().is(errc::cancelled)) << p.error().what();
    EXPECT_LT(steady::now() - t0, 10s);
}

TEST_F(wait_test, a_pod_deleted_during_the_wait_is_not_found) {
    ASSERT_TRUE(client_->create_pod(busybox_pod("doomed")));
    std::jthread deleter([&] {
        podpipe::testing::eventually([&] { return saw("Running"); });
        delete_options now;
        now.grace_period_seconds = 0;
        EXPECT_TRUE(client_->delete_pod("", "doomed", now));
    });
    auto p = wait_for_pod(*client_, "", "doomed", until_phase("Succeeded"), slow_polls());
    ASSERT_FALSE(p);
    EXPECT_TRUE(p.error().is(errc::not_found)) << p.error().what();
}

/// GET /version until it answers 200 (the restart fault is over).
bool serving_again(int port, const std::string& ca) {
    return podpipe::testing::eventually(
        [&] {
            try {
                return kubesim::testing::https_request(port, ca, "", "GET", "/version").status ==
                       200;
            } catch (const std::exception&) {
                return false;
            }
        },
        30s);
}

TEST_F(wait_test, a_watch_from_before_an_api_server_restart_is_gone) {
    auto before = client_->list_pods("");
    ASSERT_TRUE(before) << before.error().what();
    ASSERT_TRUE(client_->create_pod(busybox_pod("i20-restart-rv")));
    arm(R"({"restart": {"downSeconds": 0.5, "mode": "503"}})");
    podpipe::testing::eventually([&] {
        try { // the cut itself may end a request that was under way
            return kubesim::testing::https_request(port(), ca_file(), "", "GET", "/version")
                       .status == 503;
        } catch (const std::exception&) {
            return false;
        }
    });
    ASSERT_TRUE(serving_again(port(), ca_file()));
    list_options o;
    o.resource_version = before->resource_version;
    o.timeout_seconds = 2;
    int events = 0;
    auto w = client_->watch_pods("", o, [&](const watch_event&) {
        ++events;
        return true;
    });
    ASSERT_FALSE(w) << "a restarted API server has no history before its restart";
    EXPECT_TRUE(w.error().is(errc::gone)) << w.error().what();
    EXPECT_EQ(events, 0);
}

TEST_F(wait_test, an_api_server_restart_during_the_wait_lists_again) {
    // Real time here, and retries that outlast the down time (about 7 s of back-off in all):
    // the wait's GETs go through them. With the default options (5 attempts, about 2 s) a
    // longer restart fails the wait with the GET's error (a clear, bounded failure; surviving
    // any restart is issue 20's follow-up).
    client_options co;
    co.retry.max_attempts = 30;
    co.retry.base_delay = 200ms;
    co.retry.max_delay = 500ms;
    auto c = api_client::connect(config_, co);
    ASSERT_TRUE(c) << c.error().what();
    for (const char* mode : {"503", "refused"}) {
        SCOPED_TRACE(mode);
        // The pod finishes while the server is down: the wait sees it only by listing again.
        const std::string name = std::string("i20-restart-") + mode;
        ASSERT_TRUE((*c)->create_pod(busybox_pod(name, {"sh", "-c", "sleep 1"})));
        {
            std::lock_guard lk(mu_);
            phases_.clear();
        }
        std::jthread restarter([&] {
            podpipe::testing::eventually([&] { return saw("Running"); });
            std::this_thread::sleep_for(300ms); // the wait is in its watch
            arm(std::string(R"({"restart": {"downSeconds": 1.5, "mode": ")") + mode + "\"}}");
        });
        pod_wait_options o;
        o.deadline = steady::now() + 40s;
        const auto t0 = steady::now();
        auto p = wait_for_pod(**c, "", name, until_phase("Succeeded"), o);
        restarter.join();
        ASSERT_TRUE(p) << p.error().what();
        EXPECT_EQ(p->status.phase, "Succeeded");
        EXPECT_LT(steady::now() - t0, 20s);
        ASSERT_TRUE(serving_again(port(), ca_file()));
    }
}

class wait_rbac_test : public wait_test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/k8s-wait-rbac-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        ::close(fd);
        policy_ = tmpl;
        // The reference hook's documented role: pods get/list/create/delete, no watch.
        std::ofstream(policy_) << R"({"users": [
  {"token": "runner-token", "user": "system:serviceaccount:default:runner",
   "rules": [{"verbs": ["get", "list", "create", "delete"], "resources": ["pods"],
              "namespaces": ["default"]}]}]})";
        extra_args_ = {"--rbac", policy_};
        wait_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        cluster_config cfg = config_;
        cfg.credentials = std::make_shared<static_credentials>(credentials{"runner-token", {}, {}});
        runner_ = make_client(cfg);
        ASSERT_NE(runner_, nullptr);
    }

    void TearDown() override {
        wait_test::TearDown();
        if (!policy_.empty())
            std::filesystem::remove(policy_);
    }

    std::string policy_;
    std::unique_ptr<api_client> runner_;
};

TEST_F(wait_rbac_test, without_watch_permission_the_wait_polls) {
    ASSERT_TRUE(runner_->create_pod(busybox_pod("polled", {"sh", "-c", "sleep 1"})));
    pod_wait_options o;
    o.deadline = steady::now() + 60s;
    o.first_poll = 100ms;
    o.max_poll = 300ms;
    auto p = wait_for_pod(*runner_, "", "polled", until_phase("Succeeded"), o);
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->status.phase, "Succeeded");
    list_options watch;
    watch.timeout_seconds = 1;
    auto denied = runner_->watch_pods("", watch, [](const watch_event&) { return true; });
    ASSERT_FALSE(denied); // the fallback was needed
    EXPECT_TRUE(denied.error().is(errc::forbidden)) << denied.error().what();
}

} // namespace
} // namespace podpipe::kube::testing
