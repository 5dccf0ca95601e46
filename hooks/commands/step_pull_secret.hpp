// step_pull_secret: the registry pull secret of a container step's image, for both workspace
// modes. spec/hook-behavior.md §3.2 gives prepare_job's job pod a kubernetes.io/dockerconfigjson
// Secret from `args.container.registry`; run_container_step's request carries the same
// `registry` {username, password, serverUrl} for the action's image (a private registry), so
// the step pod gets one too: built by the same kube::build_pull_secret (labelled runner-pod, so
// cleanup_job also finds it), created before the step pod, added to the pod's
// imagePullSecrets after the template (a template's own pull secrets stay), and deleted when the
// guard goes out of scope — declare it before the step pod's own guard, so the pod goes first.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/errors.hpp"
#include "kube/api_types.hpp"
#include "kube/pod_spec.hpp"

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace podpipe::kube {
class api_client;
}

namespace podpipe::hook {

class step_pull_secret {
public:
    /// `warn` receives the one-line text of a failed deletion (the caller's ::warning::).
    step_pull_secret(kube::api_client& client, std::string ns,
                     std::function<void(const std::string&)> warn);
    ~step_pull_secret();
    step_pull_secret(const step_pull_secret&) = delete;
    step_pull_secret& operator=(const step_pull_secret&) = delete;

    /// With `creds`: creates the secret for runner `runner_pod_name` and adds it to `step_pod`'s
    /// imagePullSecrets. Without: does nothing. Errors: the name could not be built, or the API
    /// refused the secret (the caller names the step).
    result<void, hook_error> create_for(kube::pod& step_pod, std::string_view runner_pod_name,
                                        const std::optional<kube::registry_credentials>& creds);

    /// The created secret's name; empty when none was created.
    const std::string& name() const { return name_; }

private:
    kube::api_client& client_;
    std::string ns_;
    std::function<void(const std::string&)> warn_;
    std::string name_;
};

} // namespace podpipe::hook
