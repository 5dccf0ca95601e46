// podpipe-hook in stream mode under Pod Security Admission (issue 20): the runner emulator runs
// prepare_job, a script step, a container step and cleanup_job in a kubesim namespace that
// enforces "restricted" with examples/hook-template-restricted.yaml, and in one that enforces
// "baseline" without a template; a template that breaks "restricted" fails prepare_job with the
// API server's own message and leaves nothing behind.
#include "tests/hooks/runner/runner_emulator.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/kubesim/test_client.hpp"

#include <chrono>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using hook::testing::hook_run;
using hook::testing::runner_emulator;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;

const std::string job_args =
    R"({"container":{"image":"debian:12","workingDirectory":"/__w/app/app",)"
    R"("environmentVariables":{},"portMappings":[],"userMountVolumes":[]},"services":[]})";

using hook::testing::all;

class psa_stream_test : public kubesim_fixture {
protected:
    void SetUp() override {
        // The actions-runner image's externals hold podpipe (what examples/Dockerfile.runner adds).
        fs::create_directories(externals_ / "podpipe");
        fs::copy_file(PODPIPE_POD_BINARY, externals_ / "podpipe" / "podpipe");
        extra_args_ = {"--externals", externals_.string()};
        kubesim_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        options_.home = tmp_ / "runner";
        options_.kubeconfig = kubeconfig_;
        options_.hook_shim = PODPIPE_HOOK_SHIM;
        options_.hook_binary = PODPIPE_HOOK_EXE;
        options_.runner_pod_name = "runner-abc";
        options_.ns = "ci";
        options_.extra_env = {{"ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS", "30"}};
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

    temp_dir tmp_;
    fs::path externals_ = tmp_ / "externals";
    runner_emulator::options options_;
    std::map<std::string, std::string> outputs_;
};

TEST_F(psa_stream_test, restricted_namespace_with_the_example_template) {
    make_namespace("restricted");
    options_.extra_env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"] =
        std::string(PODPIPE_SOURCE_DIR) + "/examples/hook-template-restricted.yaml";
    run_a_job();
    // Job pod and step pod ran as the template's non-root user.
    EXPECT_EQ(outputs_["uid"], "1001");
    EXPECT_EQ(outputs_["step_uid"], "1001");
}

TEST_F(psa_stream_test, baseline_namespace_without_a_template) {
    make_namespace("baseline");
    run_a_job();
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
