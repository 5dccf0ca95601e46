// A step's command in a kubesim pod: output forwarded byte for byte, the real exit code, and
// every abnormal end an error (no status, dropped connection, cancellation, pod gone).
#include "hooks/commands/exec_step.hpp"

#include "kube/client.hpp"
#include "kube/config.hpp"
#include "tests/kube/cluster_fixture.hpp"
#include "tests/support/eventually.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace podpipe::hook {
namespace {

class exec_step_test : public kube::testing::cluster_test {
protected:
    void SetUp() override {
        cluster_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: jobpod}\nspec:\n  containers: "
                   "[{name: job, image: busybox:1.36, command: [sleep, '100000']}]\n");
        ASSERT_EQ(wait_phase("jobpod", "Running"), "Running");
        out_path_ = dir_ + "/out";
        err_path_ = dir_ + "/err";
    }

    result<int, kube::api_error> run(const std::string& script, std::stop_token stop = {}) {
        const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        auto r = exec_step(*client_, {"default", "jobpod", "job"}, {"sh", "-c", script}, out, err, stop);
        ::close(out);
        ::close(err);
        return r;
    }

    static std::string slurp(const std::string& p) {
        std::ifstream f(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(f), {}};
    }

    std::string out_path_, err_path_;
};

TEST_F(exec_step_test, output_forwarded_and_exit_code_returned) {
    auto r = run("echo '::group::build'; echo to-stderr >&2; printf 'no newline'; exit 7");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(*r, 7);
    EXPECT_EQ(slurp(out_path_), "::group::build\nno newline");
    EXPECT_EQ(slurp(err_path_), "to-stderr\n");
    auto ok = run("head -c 3000000 /dev/zero | tr '\\0' x");
    ASSERT_TRUE(ok) << ok.error().what();
    EXPECT_EQ(*ok, 0);
    EXPECT_EQ(slurp(out_path_), std::string(3000000, 'x'));
}

TEST_F(exec_step_test, no_status_is_never_success) {
    arm(R"({"exec": {"count": 1, "noStatus": true}})");
    auto r = run("echo done; exit 0");
    ASSERT_FALSE(r) << "exit " << *r;
    EXPECT_TRUE(r.error().is(kube::errc::missing_status)) << r.error().what();
    EXPECT_NE(r.error().what().find("outcome is unknown"), std::string::npos) << r.error().what();
}

TEST_F(exec_step_test, dropped_connection_is_an_error) {
    arm(R"({"exec": {"count": 1, "dropAfterBytes": 100000}})");
    auto r = run("head -c 5000000 /dev/zero; exit 0");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("dropped"), std::string::npos) << r.error().what();
}

TEST_F(exec_step_test, cancellation_stops_the_step) {
    std::stop_source stop;
    std::jthread canceller([&] { // once the step runs (its first output arrived)
        EXPECT_TRUE(podpipe::testing::eventually([&] { return slurp(out_path_) == "started\n"; }));
        stop.request_stop();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run("echo started; sleep 60", stop.get_token());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("cancelled"), std::string::npos) << r.error().what();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

TEST_F(exec_step_test, missing_pod_or_container_is_an_error) {
    const int fd = ::open("/dev/null", O_WRONLY);
    auto gone = exec_step(*client_, {"default", "ghost", "job"}, {"true"}, fd, fd);
    EXPECT_FALSE(gone);
    auto nocontainer = exec_step(*client_, {"default", "jobpod", "nope"}, {"true"}, fd, fd);
    EXPECT_FALSE(nocontainer);
    ::close(fd);
}

} // namespace
} // namespace podpipe::hook
