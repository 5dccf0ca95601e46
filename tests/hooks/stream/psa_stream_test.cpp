// podpipe-hook in stream mode under Pod Security Admission (issue 20), in a namespace of its own
// (ci): the runner emulator runs prepare_job, a script step, a container step and cleanup_job
// where "baseline" is enforced and there is no template; a template that breaks "restricted"
// fails prepare_job with the API server's own message and leaves nothing behind. A whole job
// under "restricted" with examples/hook-template-restricted.yaml is every test of
// stream_mode_test's `restricted` variant.
#include "tests/hooks/stream/stream_hook_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/tools/kubesim/test_client.hpp"

#include <chrono>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using hook::testing::runner_emulator;
using podpipe::testing::write_file;

const std::string job_args = stream_job_args();

using hook::testing::all;

class psa_stream_test : public stream_hook_fixture {
protected:
    void SetUp() override {
        stream_hook_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        options_.ns = "ci"; // made by each test with its level
    }

    void make_namespace(const std::string& level) {
        auto r = https_request(port(), ca_file(), admin_token(), "POST", "/api/v1/namespaces",
                               R"({"metadata":{"name":"ci","labels":{)"
                               R"("pod-security.kubernetes.io/enforce":")" +
                                   level + R"("}}})",
                               {{"Content-Type", "application/json"}});
        ASSERT_EQ(r.status, 201) << r.body;
    }

    std::string pods() { return kubectl("get pods -n ci -o name").output; }

    /// prepare_job, a script step, a container step whose output the next script step reads,
    /// cleanup_job: all succeed and nothing is left.
    void run_a_job() {
        runner_emulator r(options_);
        write_file(r.github_workspace() / "in.txt", "from the runner\n");
        auto prep = r.prepare_job(job_args);
        ASSERT_TRUE(prep.ok()) << all(prep);
        auto s1 = r.run_script_step("cat in.txt > made.txt\necho \"uid=$(id -u)\" >> "
                                    "\"$GITHUB_OUTPUT\"\n");
        ASSERT_TRUE(s1.ok()) << all(s1);
        outputs_["uid"] = r.outputs()["uid"];
        hook::testing::container_action a;
        a.image = "debian:12";
        a.entry_point = "sh";
        a.args = {"-c", "cat made.txt > out.txt && echo step >> out.txt && "
                        "echo \"step_uid=$(id -u)\" >> \"$GITHUB_OUTPUT\""};
        auto c = r.run_container_step(a);
        ASSERT_TRUE(c.ok()) << all(c);
        outputs_["step_uid"] = r.outputs()["step_uid"];
        auto s2 = r.run_script_step("cat out.txt\n");
        ASSERT_TRUE(s2.ok()) << all(s2);
        EXPECT_NE(s2.out.find("from the runner\nstep\n"), std::string::npos) << s2.out;
        auto clean = r.cleanup_job();
        ASSERT_TRUE(clean.ok()) << all(clean);
        podpipe::testing::eventually([&] { return pods().empty(); }, std::chrono::seconds(10));
        EXPECT_EQ(pods(), "");
    }

    std::map<std::string, std::string> outputs_;
};

TEST_F(psa_stream_test, baseline_namespace_without_a_template) {
    make_namespace("baseline");
    run_a_job();
    // Baseline lets the images run as their own user (root in debian:12).
    EXPECT_EQ(outputs_["uid"], "0");
    EXPECT_EQ(outputs_["step_uid"], "0");
}

TEST_F(psa_stream_test, a_template_that_breaks_restricted_fails_prepare_with_the_reason) {
    make_namespace("restricted");
    const fs::path tmpl = tmp_ / "template.yaml";
    write_file(tmpl, R"(spec:
  containers:
  - name: $job
    securityContext: {runAsUser: 0}
)");
    options_.extra_env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"] = tmpl.string();
    runner_emulator r(options_);
    auto prep = r.prepare_job(job_args);
    EXPECT_NE(prep.exit_code, 0) << all(prep);
    EXPECT_NE(prep.out.find("pods \"runner-abc-workflow\" is forbidden: violates PodSecurity "
                            "\"restricted:latest\": allowPrivilegeEscalation != false (container "
                            "\"job\" must set securityContext.allowPrivilegeEscalation=false)"),
              std::string::npos)
        << all(prep);
    EXPECT_NE(prep.out.find("runAsUser=0 (container \"job\" must not set runAsUser=0)"),
              std::string::npos)
        << all(prep);
    EXPECT_EQ(pods(), "");
}

} // namespace
} // namespace podpipe::kubesim::testing
