// A container step whose image is private in kubesim's image map (the scenarios give kubesim a
// rule "registry.example/secure/*" with "auth": octo / s3cret), run with those credentials: shared by the stream and the
// volume scenarios that prove a step pod gets the credentials as its pull secret. Header-only:
// the scenarios bring their kubesim fixture's kubectl.
#pragma once

#include "tests/hooks/runner/runner_emulator.hpp"
#include "tests/support/eventually.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace podpipe::hook::testing {

/// What the step pod showed while it ran, and the step's result.
struct private_step_seen {
    hook_run run;
    std::string pod;    ///< the step pod ("runner-abc-step-...")
    std::string secret; ///< its imagePullSecrets
    std::string type, label, config; ///< the secret's type, runner-pod label, decoded .dockerconfigjson
};

/// Runs the step (it prints "private-image-runs", waits until the pod was inspected, exits 4)
/// and inspects the step pod and its secret through `kubectl` (ARGS -> output).
inline private_step_seen run_private_registry_step(runner_emulator& r,
                                                   const std::function<std::string(const std::string&)>& kubectl) {
    container_action a;
    a.image = "registry.example/secure/tool:1";
    a.entry_point = "sh";
    // Waits (at most 30 s) until the test has looked at the pod and its secret.
    a.args = {"-c", "echo private-image-runs; i=0; while [ ! -f /tmp/go ] && [ $i -lt 300 ]; do "
                    "sleep 0.1; i=$((i+1)); done; exit 4"};
    r.begin_step_for_test();
    std::string args = r.container_step_args(a);
    const std::string null_registry = R"("registry":null)";
    EXPECT_NE(args.find(null_registry), std::string::npos) << args;
    if (auto at = args.find(null_registry); at != std::string::npos)
        args.replace(at, null_registry.size(),
                     R"("registry":{"username":"octo","password":"s3cret","serverUrl":"registry.example"})");
    private_step_seen seen;
    std::thread step([&] { seen.run = r.run_container_step(args); });
    podpipe::testing::eventually(
        [&] {
            const std::string names = kubectl("get pods -l runner-pod=runner-abc -o name");
            if (auto at = names.find("pod/runner-abc-step-"); at != std::string::npos)
                seen.pod = names.substr(at + 4, names.find('\n', at) - at - 4);
            return !seen.pod.empty();
        },
        std::chrono::seconds(30), std::chrono::milliseconds(100));
    if (!seen.pod.empty()) {
        podpipe::testing::eventually(
            [&] {
                return kubectl("get pod " + seen.pod + " -o jsonpath='{.status.phase}'") ==
                       "Running";
            },
            std::chrono::seconds(30), std::chrono::milliseconds(100));
        seen.secret = kubectl("get pod " + seen.pod + " -o jsonpath='{.spec.imagePullSecrets[*].name}'");
        seen.type = kubectl("get secret " + seen.secret + " -o jsonpath='{.type}'");
        seen.label = kubectl("get secret " + seen.secret + " -o jsonpath='{.metadata.labels.runner-pod}'");
        seen.config = kubectl("get secret " + seen.secret +
                              R"( -o go-template='{{index .data ".dockerconfigjson" | base64decode}}')");
        (void)kubectl("exec " + seen.pod + " -c job -- touch /tmp/go");
    }
    step.join();
    return seen;
}

/// The .dockerconfigjson entry both modes must write for octo / s3cret.
inline constexpr const char* private_registry_auth_entry =
    R"("registry.example":{"username":"octo","password":"s3cret","auth":"b2N0bzpzM2NyZXQ="})";

} // namespace podpipe::hook::testing
