#include "hooks/commands/cleanup_job.hpp"

#include "kube/client.hpp"
#include "kube/pod_spec.hpp"

#include <optional>
#include <thread>
#include <string>

namespace podpipe::hook {

result<cleanup_counts, kube::api_error> cleanup_job(kube::api_client& client, std::string_view ns,
                                                    std::string_view runner_pod_name,
                                                    const rest_retry& retry) {
    auto selector = kube::runner_label_selector(runner_pod_name);
    if (!selector)
        return fail(selector.error());
    kube::list_options by_label;
    by_label.label_selector = *selector;
    cleanup_counts counts;
    std::optional<kube::api_error> first_error;
    auto note = [&](const kube::api_error& e) {
        if (!e.is(kube::errc::not_found) && !first_error)
            first_error = e;
        return e.is(kube::errc::not_found);
    };

    const std::string where = " in namespace " + std::string(ns);
    auto pods = rest_retried(retry, "listing the job's pods" + where,
                             [&] { return client.list_pods(ns, by_label); });
    if (!pods)
        note(pods.error());
    else
        for (const auto& p : pods->items) {
            kube::delete_options now;
            now.grace_period_seconds = 0;
            auto d = rest_retried(retry, "deleting pod " + p.metadata.name, [&] {
                return client.delete_pod(ns, p.metadata.name, now);
            });
            if (d || note(d.error()))
                ++counts.pods;
        }

    auto secrets = rest_retried(retry, "listing the job's secrets" + where,
                                [&] { return client.list_secrets(ns, by_label); });
    if (!secrets)
        note(secrets.error());
    else
        for (const auto& s : secrets->items) {
            auto d = rest_retried(retry, "deleting secret " + s.metadata.name,
                                  [&] { return client.delete_secret(ns, s.metadata.name); });
            if (d || note(d.error()))
                ++counts.secrets;
        }

    if (first_error)
        return fail(*first_error);
    return counts;
}

bool prune_and_wait(kube::api_client& client, std::string_view ns, std::string_view runner_pod_name,
                    std::chrono::milliseconds timeout, std::string* warning,
                    const rest_retry& retry) {
    auto done = cleanup_job(client, ns, runner_pod_name, retry);
    if (!done) {
        if (warning != nullptr)
            *warning = "could not remove the job's pods and secrets: " + done.error().what();
        return false;
    }
    if (done->pods == 0)
        return true;
    auto selector = kube::runner_label_selector(runner_pod_name);
    if (!selector) {
        if (warning != nullptr)
            *warning = selector.error().what();
        return false;
    }
    kube::list_options by_label;
    by_label.label_selector = *selector;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto pods = client.list_pods(ns, by_label);
        if (pods && pods->items.empty())
            return true;
        if (std::chrono::steady_clock::now() >= deadline) {
            if (warning != nullptr)
                *warning = "pods of a previous job of this runner are still terminating";
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

} // namespace podpipe::hook
