// libFuzzer target for the runner's stdin JSON (hooks/commands/input.hpp), followed through
// what the hook does next with it: the job pod is built from a parsed prepare_job request
// (ports, args tokenisation, env, service names) and serialized. Invariants: nothing crashes
// or throws, and a parsed state survives a response round trip unchanged.
#include "hooks/commands/input.hpp"
#include "hooks/commands/response.hpp"
#include "kube/json.hpp"
#include "kube/pod_spec.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace podpipe;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto parsed = hook::parse_input(in);
    if (!parsed)
        return 0;
    if (parsed->state) {
        const std::string again =
            R"({"command":"cleanup_job","state":)" + hook::to_json(*parsed->state) + "}";
        auto back = hook::parse_input(again);
        if (!back || !back->state || back->state->job_pod != parsed->state->job_pod ||
            back->state->pull_secret != parsed->state->pull_secret ||
            back->state->namespace_name != parsed->state->namespace_name)
            std::abort();
    }
    if (const auto* prep = std::get_if<hook::prepare_job_args>(&parsed->args)) {
        kube::job_pod_options opts;
        opts.runner_pod_name = "runner";
        std::vector<kube::container_source> services;
        for (const auto& s : prep->services)
            services.push_back(hook::to_container_source(s));
        std::optional<kube::container_source> job;
        if (prep->container)
            job = hook::to_container_source(*prep->container);
        if (auto pod = kube::build_job_pod(opts, job ? &*job : nullptr, services)) {
            auto back = kube::parse_pod(kube::to_json(pod->job_pod));
            if (!back || back->spec.containers.size() != pod->job_pod.spec.containers.size())
                std::abort();
        }
        if (prep->container && prep->container->registry)
            (void)kube::build_pull_secret("runner", "0123abcd", *prep->container->registry);
    }
    if (const auto* step = std::get_if<hook::run_script_step_args>(&parsed->args))
        (void)kube::fix_args(step->entry_point_args);
    return 0;
}
