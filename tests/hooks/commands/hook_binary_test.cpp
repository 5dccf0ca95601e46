// podpipe-hook as the runner runs it: through tools/hook.sh, JSON on stdin, against kubesim.
#include "tests/support/tree_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"

#include <chrono>
#include <string>
#include <thread>

namespace podpipe::kubesim::testing {
namespace {

using podpipe::testing::shell_quote;

const std::string hook_bin = PODPIPE_HOOK_EXE;
const std::string shim = PODPIPE_HOOK_SHIM;

class hook_binary_test : public kubesim_fixture {
protected:
    // Runs the shim like the runner does (bash -e -o pipefail), with the runner pod's name.
    command_result hook(const std::string& json, const std::string& runner = "runner-1") {
        return shell("printf '%s' " + shell_quote(json) + " | PODPIPE_HOOK_BIN=" + shell_quote(hook_bin) +
                     " ACTIONS_RUNNER_POD_NAME=" + runner + " bash --noprofile --norc -e -o pipefail " + shim);
    }

    void labelled_pod(const std::string& name, const std::string& runner) {
        create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + ", labels: {runner-pod: " +
                   runner + "}}\nspec:\n  containers: [{name: c, image: busybox:1.36, command: [sleep, '1000000']}]\n");
    }

    void labelled_secret(const std::string& name, const std::string& runner) {
        auto r = kubectl("create --validate=false -f -",
                         "apiVersion: v1\nkind: Secret\nmetadata: {name: " + name +
                             ", labels: {runner-pod: " + runner + "}}\nstringData: {k: v}\n");
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }
};

TEST_F(hook_binary_test, cleanup_job_deletes_only_this_runners_pods_and_secrets) {
    labelled_pod("runner-1-workflow", "runner-1");
    labelled_pod("runner-1-step-abc", "runner-1");
    labelled_pod("runner-2-workflow", "runner-2");
    labelled_secret("runner-1-secret-x", "runner-1");
    labelled_secret("runner-2-secret-y", "runner-2");
    ASSERT_EQ(wait_phase("runner-1-workflow", "Running"), "Running");

    const std::string input = R"({"command":"cleanup_job","responseFile":null,"state":{},"args":{}})";
    auto r = hook(input);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    // Gone or terminating: grace period 0 removes them promptly.
    podpipe::testing::eventually(
        [&] { return kubectl("get pods -l runner-pod=runner-1 -o name").output.empty(); },
        std::chrono::seconds(10), std::chrono::milliseconds(100));
    EXPECT_EQ(kubectl("get pods -l runner-pod=runner-1 -o name").output, "");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-1 -o name").output, "");
    EXPECT_EQ(kubectl("get pods -l runner-pod=runner-2 -o name").output, "pod/runner-2-workflow\n");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-2 -o name").output, "secret/runner-2-secret-y\n");

    // Again, with nothing left: still a success.
    auto again = hook(input);
    EXPECT_EQ(again.exit_code, 0) << again.output;
}

TEST_F(hook_binary_test, errors_are_workflow_commands_with_exit_1) {
    auto unknown = hook(R"({"command":"dance","responseFile":null,"state":{},"args":{}})");
    EXPECT_EQ(unknown.exit_code, 1) << unknown.output;
    EXPECT_NE(unknown.output.find("::error::Command not recognized: dance"), std::string::npos)
        << unknown.output;
    auto garbage = hook("{not json");
    EXPECT_EQ(garbage.exit_code, 1) << garbage.output;
    EXPECT_NE(garbage.output.find("::error::"), std::string::npos) << garbage.output;
    auto no_runner = hook(R"({"command":"cleanup_job","responseFile":null,"state":{},"args":{}})", "");
    EXPECT_EQ(no_runner.exit_code, 1) << no_runner.output;
    EXPECT_NE(no_runner.output.find("ACTIONS_RUNNER_POD_NAME"), std::string::npos) << no_runner.output;
    // prepare_job refuses before creating anything: no response file, then no job container.
    auto no_file = hook(R"({"command":"prepare_job","responseFile":"/nonexistent/r.json","state":null,"args":{"container":null,"services":[]}})");
    EXPECT_EQ(no_file.exit_code, 1) << no_file.output;
    EXPECT_NE(no_file.output.find("::error::Missing file at path: /nonexistent/r.json"), std::string::npos)
        << no_file.output;
    podpipe::testing::temp_dir dir;
    const std::string response = (dir / "r.json").string();
    podpipe::testing::write_file(response, "");
    auto no_container = hook(R"({"command":"prepare_job","responseFile":")" + response +
                             R"(","state":null,"args":{"container":null,"services":[]}})");
    EXPECT_EQ(no_container.exit_code, 1) << no_container.output;
    EXPECT_NE(no_container.output.find("::error::Job Container is required."), std::string::npos)
        << no_container.output;
    EXPECT_EQ(kubectl("get pods -o name").output, "");
    // A missing binary behind the shim is a clear error too.
    auto missing = shell("echo '{}' | PODPIPE_HOOK_BIN=/nowhere/podpipe-hook sh " + shim);
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_NE(missing.output.find("::error::"), std::string::npos) << missing.output;
}

} // namespace
} // namespace podpipe::kubesim::testing
