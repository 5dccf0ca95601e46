// Waiting for a pod to run: the verdicts on constructed statuses, then real pods on kubesim that
// run, cannot pull their image, cannot be scheduled, fail an init container, or end at once.
#include "hooks/commands/pod_wait.hpp"

#include "kube/client.hpp"
#include "kube/config.hpp"
#include "tests/kube/cluster_fixture.hpp"
#include "tests/support/eventually.hpp"

#include <atomic>
#include <chrono>
#include <stop_token>
#include <thread>

namespace podpipe::hook {
namespace {

using verdict = pod_outlook::verdict;

kube::pod pending_with_waiting(const std::string& reason, const std::string& message) {
    kube::pod p;
    p.status.phase = "Pending";
    kube::container_status c;
    c.name = "job";
    c.state.waiting = kube::container_state_waiting{reason, message};
    p.status.container_statuses.push_back(c);
    return p;
}

TEST(assess_pod, running_pending_and_terminal_states) {
    kube::pod running;
    running.status.phase = "Running";
    EXPECT_EQ(assess_pod(running).state, verdict::running);

    auto pull = assess_pod(pending_with_waiting("ImagePullBackOff", "Back-off pulling image \"x:1\""));
    EXPECT_EQ(pull.state, verdict::waiting);
    EXPECT_NE(pull.why.find("ImagePullBackOff"), std::string::npos) << pull.why;
    EXPECT_NE(pull.why.find("x:1"), std::string::npos) << pull.why;

    auto config = assess_pod(pending_with_waiting("CreateContainerConfigError", "secret \"s\" not found"));
    EXPECT_EQ(config.state, verdict::failed);
    EXPECT_NE(config.why.find("secret \"s\" not found"), std::string::npos) << config.why;

    kube::pod unschedulable;
    unschedulable.status.phase = "Pending";
    unschedulable.status.conditions.push_back({"PodScheduled", "False", "Unschedulable", "0/3 nodes are available"});
    auto u = assess_pod(unschedulable);
    EXPECT_EQ(u.state, verdict::waiting);
    EXPECT_NE(u.why.find("0/3 nodes are available"), std::string::npos) << u.why;

    kube::pod init_failed;
    init_failed.status.phase = "Pending";
    kube::container_status fs_init;
    fs_init.name = "fs-init";
    fs_init.state.terminated = kube::container_state_terminated{3, 0, "Error", ""};
    init_failed.status.init_container_statuses.push_back(fs_init);
    auto i = assess_pod(init_failed);
    EXPECT_EQ(i.state, verdict::failed);
    EXPECT_NE(i.why.find("init container fs-init exited with code 3"), std::string::npos) << i.why;

    kube::pod done;
    done.status.phase = "Succeeded";
    EXPECT_EQ(assess_pod(done).state, verdict::failed);
}

class pod_wait_test : public kube::testing::cluster_test {
protected:
    result<kube::pod, kube::api_error> wait(const std::string& name, std::chrono::seconds timeout) {
        wait_options o;
        o.timeout = timeout;
        o.on_change = [&](const std::string& why) { changes_.push_back(why); };
        return wait_for_running(*client_, "default", name, o);
    }

    std::vector<std::string> changes_;
};

TEST_F(pod_wait_test, running_pod_is_returned) {
    create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: ok}\nspec:\n  containers: [{name: job, image: busybox:1.36, command: [sleep, '100000']}]\n");
    auto p = wait("ok", std::chrono::seconds(20));
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->status.phase, "Running");
}

TEST_F(pod_wait_test, unpullable_image_times_out_with_the_pull_error) {
    create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: nopull}\nspec:\n  containers: [{name: job, image: 'registry.example/does-not-exist:1', command: [sleep, '1']}]\n");
    const auto t0 = std::chrono::steady_clock::now();
    auto p = wait("nopull", std::chrono::seconds(3));
    ASSERT_FALSE(p);
    const std::string what = p.error().what();
    EXPECT_NE(what.find("did not reach Running within 3 s"), std::string::npos) << what;
    EXPECT_NE(what.find("does-not-exist"), std::string::npos) << what;
    EXPECT_TRUE(what.find("ErrImagePull") != std::string::npos ||
                what.find("ImagePullBackOff") != std::string::npos) << what;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
}

TEST_F(pod_wait_test, unschedulable_pod_says_why) {
    create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: nowhere}\nspec:\n  nodeSelector: {disk: none}\n  containers: [{name: job, image: busybox:1.36, command: [sleep, '1']}]\n");
    auto p = wait("nowhere", std::chrono::seconds(2));
    ASSERT_FALSE(p);
    const std::string what = p.error().what();
    EXPECT_NE(what.find("not scheduled"), std::string::npos) << what;
    EXPECT_NE(what.find("nodes are available"), std::string::npos) << what;
    EXPECT_FALSE(changes_.empty());
}

// SIGINT/SIGTERM of the hook (its stop token) ends a wait for a pod that will never run at
// once, not after the pod-start timeout.
TEST_F(pod_wait_test, a_stop_ends_the_wait_at_once) {
    create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: never}\nspec:\n  nodeSelector: {disk: none}\n  containers: [{name: job, image: busybox:1.36, command: [sleep, '1']}]\n");
    std::stop_source stop;
    wait_options o;
    o.timeout = std::chrono::seconds(600);
    o.stop = stop.get_token();
    std::atomic<bool> waiting{false};
    o.on_change = [&](const std::string&) { waiting = true; }; // it saw the pod not scheduled
    std::jthread stopper([&] {
        EXPECT_TRUE(podpipe::testing::eventually([&] { return waiting.load(); }));
        stop.request_stop();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto p = wait_for_running(*client_, "default", "never", o);
    ASSERT_FALSE(p);
    EXPECT_TRUE(p.error().is(kube::errc::cancelled)) << p.error().what();
    EXPECT_NE(p.error().what().find("interrupted"), std::string::npos) << p.error().what();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

TEST_F(pod_wait_test, failing_init_container_fails_fast) {
    create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: badinit}\nspec:\n  restartPolicy: Never\n"
               "  initContainers: [{name: fs-init, image: busybox:1.36, command: [sh, -c, 'exit 3']}]\n"
               "  containers: [{name: job, image: busybox:1.36, command: [sleep, '100000']}]\n");
    const auto t0 = std::chrono::steady_clock::now();
    auto p = wait("badinit", std::chrono::seconds(60));
    ASSERT_FALSE(p);
    const std::string what = p.error().what();
    EXPECT_NE(what.find("failed to come online"), std::string::npos) << what;
    EXPECT_NE(what.find("fs-init"), std::string::npos) << what;
    EXPECT_NE(what.find("3"), std::string::npos) << what;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(30)); // not the timeout
}

TEST_F(pod_wait_test, missing_pod_is_an_error) {
    auto p = wait("ghost", std::chrono::seconds(5));
    ASSERT_FALSE(p);
    EXPECT_TRUE(p.error().is(kube::errc::not_found)) << p.error().what();
    EXPECT_NE(p.error().what().find("ghost"), std::string::npos) << p.error().what();
}

} // namespace
} // namespace podpipe::hook
