// What the stream-mode hook suites (stream_mode_test, psa_stream_test, restart_test) share: one
// kubesim whose actions-runner image ships the in-pod podpipe in its externals, and the runner
// emulator's options as the actions-runner image runs the hook (user 1001:123, runner pod
// runner-abc, a 30 s prepare timeout). In the `restricted` variant (pod_security.hpp) the
// namespace the pods live in enforces Pod Security "restricted" and the hook template is the
// restricted one with CPU and memory limits on $job (also when a test brings its own template:
// use_template merges them).
#pragma once

#include "tests/hooks/runner/pod_security.hpp"
#include "tests/hooks/runner/runner_emulator.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace podpipe::kubesim::testing {

/// prepare_job's args: a job container of `image` in /__w/app/app, no services;
/// `extra_container_fields` (",\"key\":...") are added to the container.
std::string stream_job_args(const std::string& image = "debian:12",
                            const std::string& extra_container_fields = "");

class stream_hook_fixture : public kubesim_fixture {
protected:
    /// Starts kubesim (with kubesim_args_ after --externals) and fills options_; in the
    /// restricted variant labels the namespace (options_.ns, or default) enforce=restricted and
    /// sets the restricted template.
    void SetUp() override;

    /// The test's own template (YAML), as hook_template(security_, yaml) makes it for this
    /// variant, becomes ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE. Before runner().
    void use_template(const std::string& yaml);

    /// The emulator, made from options_ on first use.
    hook::testing::runner_emulator& runner();

    bool restricted() const { return security_ == hook::testing::pod_security::restricted; }

    /// Set before SetUp (a parametrised suite's SetUp sets it from GetParam()).
    hook::testing::pod_security security_ = hook::testing::pod_security::plain;
    /// More kubesim flags; set before SetUp.
    std::vector<std::string> kubesim_args_;

    podpipe::testing::temp_dir tmp_;
    std::filesystem::path externals_ = tmp_ / "externals";
    hook::testing::runner_emulator::options options_;
    std::optional<hook::testing::runner_emulator> runner_;
};

} // namespace podpipe::kubesim::testing
