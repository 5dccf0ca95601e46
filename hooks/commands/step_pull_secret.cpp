#include "hooks/commands/step_pull_secret.hpp"

#include "kube/client.hpp"

#include <algorithm>

namespace podpipe::hook {

step_pull_secret::step_pull_secret(kube::api_client& client, std::string ns,
                                   std::function<void(const std::string&)> warn)
    : client_(client)
    , ns_(std::move(ns))
    , warn_(std::move(warn)) {}

step_pull_secret::~step_pull_secret() {
    if (name_.empty())
        return;
    auto d = client_.delete_secret(ns_, name_);
    if (!d && !d.error().is(kube::errc::not_found) && warn_)
        warn_("could not delete the step's registry pull secret " + name_ +
              " (cleanup_job removes it by label): " + d.error().what());
}

result<void, hook_error>
step_pull_secret::create_for(kube::pod& step_pod, std::string_view runner_pod_name,
                             const std::optional<kube::registry_credentials>& creds) {
    if (!creds)
        return {};
    auto sec = kube::build_pull_secret(runner_pod_name, kube::random_name_suffix(), *creds);
    if (!sec)
        return fail(sec.error());
    auto made = client_.create_secret(*sec, ns_);
    if (!made)
        return fail(made.error());
    name_ = sec->metadata.name;
    auto& refs = step_pod.spec.image_pull_secrets;
    if (std::find(refs.begin(), refs.end(), name_) == refs.end())
        refs.push_back(name_);
    return {};
}

} // namespace podpipe::hook
