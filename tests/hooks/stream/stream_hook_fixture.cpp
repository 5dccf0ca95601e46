#include "tests/hooks/stream/stream_hook_fixture.hpp"

namespace podpipe::kubesim::testing {

namespace fs = std::filesystem;

std::string stream_job_args(const std::string& image, const std::string& extra_container_fields) {
    return R"({"container":{"image":")" + image +
           R"(","workingDirectory":"/__w/app/app","environmentVariables":{},"portMappings":[],)"
           R"("userMountVolumes":[])" +
           extra_container_fields + R"(},"services":[]})";
}

void stream_hook_fixture::SetUp() {
    // The actions-runner image's externals hold podpipe (what examples/Dockerfile.runner adds).
    fs::create_directories(externals_ / "podpipe");
    fs::copy_file(PODPIPE_POD_BINARY, externals_ / "podpipe" / "podpipe");
    extra_args_ = {"--externals", externals_.string()};
    extra_args_.insert(extra_args_.end(), kubesim_args_.begin(), kubesim_args_.end());
    kubesim_fixture::SetUp();
    if (IsSkipped() || HasFatalFailure())
        return;
    options_.home = tmp_ / "runner";
    options_.kubeconfig = kubeconfig_;
    options_.hook_shim = PODPIPE_HOOK_SHIM;
    options_.hook_binary = PODPIPE_HOOK_EXE;
    options_.runner_pod_name = "runner-abc";
    options_.user = {{1001, 123}}; // the actions-runner image's runner user: nothing assumes root
    options_.extra_env = {{"ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS", "30"}};
    if (restricted()) {
        auto label = kubectl("label namespace default " +
                             std::string(hook::testing::enforce_restricted_label));
        ASSERT_EQ(label.exit_code, 0) << label.output;
        use_template("");
    }
}

void stream_hook_fixture::use_template(const std::string& yaml) {
    hook::testing::set_hook_template(options_.extra_env, security_, tmp_ / "hook-template.yaml",
                                     yaml);
}

hook::testing::runner_emulator& stream_hook_fixture::runner() {
    if (!runner_)
        runner_.emplace(options_);
    return *runner_;
}

} // namespace podpipe::kubesim::testing
