#include "hooks/commands/cleanup_job.hpp"

#include "hooks/k8s/client.hpp"
#include "hooks/k8s/pod_spec.hpp"

#include <optional>
#include <string>

namespace podpipe::hook {

result<cleanup_counts, k8s::hook_error> cleanup_job(k8s::api_client& client, std::string_view ns,
                                                    std::string_view runner_pod_name) {
    auto selector = k8s::runner_label_selector(runner_pod_name);
    if (!selector)
        return fail(selector.error());
    k8s::list_options by_label;
    by_label.label_selector = *selector;
    cleanup_counts counts;
    std::optional<k8s::hook_error> first_error;
    auto note = [&](const k8s::hook_error& e) {
        if (!e.is(k8s::errc::not_found) && !first_error)
            first_error = e;
        return e.is(k8s::errc::not_found);
    };

    auto pods = client.list_pods(ns, by_label);
    if (!pods)
        note(pods.error());
    else
        for (const auto& p : pods->items) {
            k8s::delete_options now;
            now.grace_period_seconds = 0;
            auto d = client.delete_pod(ns, p.metadata.name, now);
            if (d || note(d.error()))
                ++counts.pods;
        }

    auto secrets = client.list_secrets(ns, by_label);
    if (!secrets)
        note(secrets.error());
    else
        for (const auto& s : secrets->items) {
            auto d = client.delete_secret(ns, s.metadata.name);
            if (d || note(d.error()))
                ++counts.secrets;
        }

    if (first_error)
        return fail(*first_error);
    return counts;
}

} // namespace podpipe::hook
