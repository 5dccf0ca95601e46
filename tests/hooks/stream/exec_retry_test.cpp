// podpipe-hook's one-shot execs and REST calls under failures (issue 21): prepare_job's /github
// set-up exec opens through a burst of 503s longer than the kube client's own retries (tried
// again with the copies' backoff, PODPIPE_COPY_RETRY_SECONDS), and a refusal that stays (403)
// still fails prepare_job at once, saying what the server said.
#include "tests/hooks/stream/stream_hook_fixture.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/tools/kubesim/test_client.hpp"

#include <chrono>
#include <filesystem>
#include <future>
#include <string>

#include <gtest/gtest.h>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using hook::testing::all;
using podpipe::testing::shell_quote;

const std::string job_args = stream_job_args();

class hook_exec_retry_test : public stream_hook_fixture {
protected:
    void SetUp() override {
        stream_hook_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        options_.timeout = 120s;
        runner_.emplace(options_);
        // 4 MB through 2 MB/s: the workspace copy into the job pod lasts about two seconds,
        // long enough to arm a fault while it runs.
        const fs::path big = runner_->github_workspace() / "big";
        fs::create_directories(big);
        for (int i = 0; i < 4; ++i)
            EXPECT_EQ(podpipe::testing::run_shell("head -c 1000000 /dev/urandom > " +
                                                  shell_quote((big / std::to_string(i)).string())),
                      0);
        faults(R"({"throttle": {"bytesPerSecond": 2000000}})");
    }

    /// Arms `fault` while the workspace copy runs (its first file is in the job pod's /__w
    /// emptyDir, STATE/pods/<uid>/volumes/<name>: this test's kubesim, whatever else runs). The
    /// copy's session is open then, so the next requests are the ones after the copy: the
    /// /github set-up exec first. Returns when armed (false: the copy was never seen).
    std::future<bool> arm_during_the_copy(const std::string& fault) {
        return std::async(std::launch::async, [this, fault] {
            const fs::path pods = fs::path(dir_) / "state" / "pods";
            const bool seen = podpipe::testing::eventually(
                [&] {
                    std::error_code ec;
                    for (const auto& pod : fs::directory_iterator(pods, ec))
                        for (const auto& vol : fs::directory_iterator(pod.path() / "volumes", ec))
                            if (fs::exists(vol.path() / "app" / "app" / "big" / "0", ec))
                                return true;
                    return false;
                },
                60s, 10ms);
            faults(fault);
            return seen;
        });
    }
};

// Twelve 503s: the set-up exec's first attempt (the client's five tries) and its second fail,
// the third opens. Without the hook's own retries prepare_job fails here (the soak's one
// failure, RELIABILITY.md).
TEST_F(hook_exec_retry_test, prepare_job_set_up_opens_through_more_503s_than_the_client_retries) {
    auto& r = *runner_;
    auto armed = arm_during_the_copy(R"({"http": {"code": 503, "count": 12}})");
    auto p = r.prepare_job(job_args);
    ASSERT_TRUE(armed.get()) << all(p);
    ASSERT_EQ(p.exit_code, 0) << all(p);
    EXPECT_NE(p.out.find("::warning::preparing /github in pod runner-abc-workflow failed "
                         "(attempt 1): "),
              std::string::npos)
        << all(p);
    EXPECT_NE(p.out.find("HTTP 503 ServiceUnavailable); trying again in "), std::string::npos)
        << all(p);
    auto link = kubectl("exec runner-abc-workflow -c job -- readlink /github/home");
    EXPECT_EQ(link.output, "/__w/_temp/_github_home\n") << all(p);
}

// Twelve 503s at the start of prepare_job (its permission check: 13 access reviews, the first
// refused through the client's five tries twice) and again at cleanup_job (its list of the
// job's pods): the hook's REST calls are tried again as its execs are, and the job goes on.
TEST_F(hook_exec_retry_test, rest_calls_get_through_more_503s_than_the_client_retries) {
    auto& r = *runner_;
    faults(R"({"http": {"code": 503, "count": 12}})");
    auto p = r.prepare_job(job_args);
    ASSERT_EQ(p.exit_code, 0) << all(p);
    EXPECT_NE(p.out.find("::warning::checking the permissions failed (attempt 1): "),
              std::string::npos)
        << all(p);
    faults(R"({"http": {"code": 503, "count": 12}})");
    auto c = r.cleanup_job();
    ASSERT_EQ(c.exit_code, 0) << all(c);
    EXPECT_NE(c.out.find("::warning::listing the job's pods in namespace default failed "
                         "(attempt 1): "),
              std::string::npos)
        << all(c);
    EXPECT_TRUE(podpipe::testing::eventually(
        [&] { return kubectl("get pods -l runner-pod=runner-abc -o name").output.empty(); },
        20s));
}

// A 403 on the set-up exec's upgrade cannot pass: prepare_job fails at once (no retry), with
// the server's answer in its error, and leaves no pod behind.
TEST_F(hook_exec_retry_test, prepare_job_set_up_refused_with_403_fails_fast) {
    auto& r = *runner_;
    auto armed = arm_during_the_copy(R"({"failNth": {"n": 1, "code": 403, "path": "/exec"}})");
    auto p = r.prepare_job(job_args);
    ASSERT_TRUE(armed.get()) << all(p);
    EXPECT_NE(p.exit_code, 0) << all(p);
    EXPECT_NE(all(p).find("preparing /github in the job pod: exec in pod "
                          "default/runner-abc-workflow container job: "),
              std::string::npos)
        << all(p);
    EXPECT_NE(all(p).find("(HTTP 403 Forbidden)"), std::string::npos) << all(p);
    EXPECT_EQ(p.out.find("trying again in"), std::string::npos) << all(p);
    EXPECT_NE(https_request(port(), ca_file(), admin_token(), "GET", "/kubesim/faults")
                  .body.find(R"("fired":true)"),
              std::string::npos);
    EXPECT_EQ(kubectl("get pods -l runner-pod=runner-abc -o name").output, "") << all(p);
}

} // namespace
} // namespace podpipe::kubesim::testing
