// libFuzzer target for the pod template extension (kube/template.hpp): parse untrusted
// YAML, merge it into a generated job pod, serialize the result. Invariants: nothing crashes
// or throws, a failed merge leaves the pod unchanged, and the merged pod serializes to JSON
// our own pod parser accepts with the same container count.
#include "kube/json.hpp"
#include "kube/pod_spec.hpp"
#include "kube/template.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace podpipe::kube;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto ext = parse_template(in, "fuzz.yaml");
    if (!ext)
        return 0;
    job_pod_options opts;
    opts.runner_pod_name = "runner";
    container_source job;
    job.image = "node:22";
    container_source redis;
    redis.image = "redis";
    auto built = build_job_pod(opts, &job, {redis});
    if (!built)
        std::abort();
    pod p = built->job_pod;
    const std::string before = to_json(p);
    if (!apply_template(*ext, p)) {
        if (to_json(p) != before)
            std::abort();
        return 0;
    }
    auto back = parse_pod(to_json(p));
    if (!back || back->spec.containers.size() != p.spec.containers.size())
        std::abort();
    return 0;
}
