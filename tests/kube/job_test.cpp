// batch/v1 Jobs through api_client against kubesim (its Jobs support came on another branch:
// where kubesim answers 404 for the batch/v1 group the test skips and says so).
#include "cluster_fixture.hpp"
#include "kube/client.hpp"
#include "tests/support/eventually.hpp"

#include <algorithm>
#include <thread>

namespace podpipe::kube::testing {
namespace {

class job_test : public cluster_test {
protected:
    void SetUp() override {
        cluster_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        auto probe = client_->list_jobs("");
        if (!probe && probe.error().is(errc::not_found))
            GTEST_SKIP() << "this kubesim does not serve batch/v1 Jobs: " << probe.error().what();
        ASSERT_TRUE(probe) << probe.error().what();
    }

    static job echo_job(const std::string& name, const std::string& restart = "Never") {
        job j;
        j.metadata.name = name;
        j.metadata.labels = {{"suite", "k8s-client"}};
        j.spec.backoff_limit = 0;
        j.spec.pod.metadata.labels = {{"step", name}};
        j.spec.pod.spec.restart_policy = restart;
        container c;
        c.name = "step";
        c.image = "busybox";
        c.command = {"sh", "-c", "echo job-ran"};
        j.spec.pod.spec.containers.push_back(std::move(c));
        return j;
    }
};

TEST_F(job_test, create_runs_to_completion_list_and_delete) {
    auto created = client_->create_job(echo_job("j1"));
    ASSERT_TRUE(created) << created.error().what();
    EXPECT_EQ(created->metadata.name, "j1");
    EXPECT_FALSE(created->metadata.uid.empty());
    EXPECT_EQ(created->spec.backoff_limit, 0);
    EXPECT_EQ(created->spec.pod.spec.restart_policy, "Never");

    auto dup = client_->create_job(echo_job("j1"));
    ASSERT_FALSE(dup);
    EXPECT_TRUE(dup.error().is(errc::already_exists)) << dup.error().what();

    // Poll until the job controller reports completion (deadline 30 s).
    job last;
    podpipe::testing::eventually(
        [&] {
            auto g = client_->get_job("", "j1");
            EXPECT_TRUE(g) << g.error().what();
            if (!g)
                return true;
            last = std::move(*g);
            return std::any_of(
                last.status.conditions.begin(), last.status.conditions.end(),
                [](const job_condition& c) { return c.type == "Complete" && c.status == "True"; });
        },
        std::chrono::seconds(30), std::chrono::milliseconds(100));
    EXPECT_EQ(last.status.succeeded, 1);
    EXPECT_FALSE(last.status.start_time.empty());
    EXPECT_FALSE(last.status.completion_time.empty());

    list_options sel;
    sel.label_selector = "suite=k8s-client";
    auto l = client_->list_jobs("", sel);
    ASSERT_TRUE(l) << l.error().what();
    ASSERT_EQ(l->items.size(), 1u);
    EXPECT_EQ(l->items[0].metadata.name, "j1");

    list_options pods_of_job;
    pods_of_job.label_selector = "step=j1";
    auto pods = client_->list_pods("", pods_of_job);
    ASSERT_TRUE(pods) << pods.error().what();
    ASSERT_EQ(pods->items.size(), 1u);
    auto log = client_->get_pod_log("", pods->items[0].metadata.name);
    ASSERT_TRUE(log) << log.error().what();
    EXPECT_EQ(*log, "job-ran\n");

    auto del = client_->delete_job("", "j1"); // Background by default: the pods go too
    ASSERT_TRUE(del) << del.error().what();
    EXPECT_EQ(del->status, "Success");
    auto gone = client_->get_job("", "j1");
    ASSERT_FALSE(gone);
    EXPECT_TRUE(gone.error().is(errc::not_found)) << gone.error().what();
}

TEST_F(job_test, invalid_restart_policy_is_rejected) {
    auto r = client_->create_job(echo_job("bad", "Always"));
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::invalid)) << r.error().what();
    EXPECT_EQ(r.error().http_status, 422);
}

} // namespace
} // namespace podpipe::kube::testing
