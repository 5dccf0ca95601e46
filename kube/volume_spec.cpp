#include "kube/volume_spec.hpp"

#include <optional>

namespace podpipe::kube {
namespace {

constexpr std::string_view hostname_label = "kubernetes.io/hostname";

std::string trim_slashes(std::string_view p) {
    while (!p.empty() && p.back() == '/')
        p.remove_suffix(1);
    return std::string(p);
}

// `path` below `root` ("" when equal), or nullopt when it is not below it.
std::optional<std::string> below(std::string_view root, std::string_view path) {
    const std::string r = trim_slashes(root);
    const std::string p = trim_slashes(path);
    if (p == r)
        return std::string();
    if (p.size() > r.size() + 1 && p.compare(0, r.size(), r) == 0 && p[r.size()] == '/')
        return p.substr(r.size() + 1);
    return std::nullopt;
}

bool escapes(std::string_view rel) {
    // A sub-path must stay inside the claim: no "..", no absolute path.
    if (!rel.empty() && rel.front() == '/')
        return true;
    std::size_t start = 0;
    while (start <= rel.size()) {
        const auto end = rel.find('/', start);
        const auto part = rel.substr(start, end == std::string_view::npos ? rel.npos : end - start);
        if (part == "..")
            return true;
        if (end == std::string_view::npos)
            break;
        start = end + 1;
    }
    return false;
}

volume_mount work_mount(std::string mount_path, std::string sub_path = {}) {
    return {std::string(work_volume_name), std::move(mount_path), std::move(sub_path), false};
}

} // namespace

node_affinity runner_node_affinity(std::string_view node_name, bool required) {
    node_selector_term by_name;
    by_name.match_fields.push_back({"metadata.name", "In", {std::string(node_name)}});
    node_selector_term by_hostname;
    by_hostname.match_expressions.push_back({std::string(hostname_label), "In", {std::string(node_name)}});
    node_affinity a;
    // The hostname form first: where the reference's readers (and its tests, spec §8 104-107)
    // look at the first term.
    if (required) {
        a.required = {std::move(by_hostname), std::move(by_name)};
    } else {
        a.preferred.push_back({100, std::move(by_hostname)});
        a.preferred.push_back({100, std::move(by_name)});
    }
    return a;
}

std::vector<volume_mount> volume_job_mounts() {
    return {work_mount("/__w"), work_mount("/__e", std::string(externals_sub_path)),
            work_mount("/github/home", "_temp/_github_home"),
            work_mount("/github/workflow", "_temp/_github_workflow")};
}

std::vector<volume_mount> volume_step_mounts(std::string_view workspace_sub_path) {
    return {work_mount("/__w"),
            work_mount("/github/workspace", std::string(workspace_sub_path)),
            work_mount("/github/file_commands", "_temp/_runner_file_commands"),
            work_mount("/github/runner_temp", "_temp"),
            work_mount("/github/home", "_temp/_github_home"),
            work_mount("/github/workflow", "_temp/_github_workflow")};
}

result<std::string, api_error> workspace_sub_path(std::string_view work_root,
                                                   std::string_view github_workspace) {
    if (auto rel = below(work_root, github_workspace); rel && !rel->empty() && !escapes(*rel))
        return *rel;
    const std::string ws = trim_slashes(github_workspace);
    const auto at = ws.rfind("_work/");
    if (at != std::string::npos && at + 6 < ws.size() && !escapes(ws.substr(at + 6)))
        return ws.substr(at + 6);
    return fail(spec_error(spec_errc::bad_workspace,
                           "GITHUB_WORKSPACE=\"" + std::string(github_workspace) +
                               "\" is not inside the work directory " + std::string(work_root) +
                               " (volume mode mounts it from the runner's work volume)"));
}

result<volume_mount, api_error> user_volume_mount(std::string_view work_root,
                                                   std::string_view source,
                                                   std::string_view target, bool read_only) {
    const std::string what = "volume '" + std::string(source) + ":" + std::string(target) + "'";
    if (target.empty() || target.front() != '/')
        return fail(spec_error(spec_errc::bad_workspace, what + ": the target must be an absolute path"));
    std::string sub;
    if (!source.empty() && source.front() == '/') {
        auto rel = below(work_root, source);
        if (!rel)
            return fail(spec_error(
                spec_errc::bad_workspace,
                what + ": Volume mounts outside of the work folder are not supported (in volume "
                       "mode only the runner's work volume " + std::string(work_root) +
                       " is shared with the job pod; put the files below it)"));
        sub = *rel;
    } else {
        sub = trim_slashes(source);
    }
    if (escapes(sub))
        return fail(spec_error(spec_errc::bad_workspace, what + ": the source leaves the work folder"));
    volume_mount m = work_mount(std::string(target), sub);
    m.read_only = read_only;
    return m;
}

void make_volume_job_pod(pod& p, const volume_pod_options& opts) {
    p.spec.init_containers.clear();
    p.spec.security.reset();
    p.spec.volumes = {volume{std::string(work_volume_name), pvc_source{opts.claim_name, false}}};
    for (auto& ct : p.spec.containers)
        ct.volume_mounts = ct.name == job_container_name ? volume_job_mounts()
                                                         : std::vector<volume_mount>{work_mount("/__w")};
    p.spec.affinity = runner_node_affinity(opts.node_name, opts.rwo);
}

result<secret, api_error> build_step_env_secret(std::string_view runner_pod_name,
                                                 std::string_view suffix,
                                                 const std::vector<env_var>& env) {
    auto name = secret_name(runner_pod_name, suffix);
    if (!name)
        return fail(name.error());
    secret s;
    s.metadata.name = std::move(*name);
    s.metadata.labels[std::string(runner_label_key)] = std::string(runner_pod_name);
    s.immutable = true;
    for (const auto& e : env)
        s.data[e.name] = e.value; // a later duplicate wins, as in the pod env
    return s;
}

result<pod, api_error> build_volume_step_pod(std::string_view runner_pod_name,
                                              std::string_view suffix, const container_source& src,
                                              std::string_view env_secret,
                                              std::string_view workspace_sub_path,
                                              const volume_pod_options& opts) {
    auto name = step_pod_name(runner_pod_name, suffix);
    if (!name)
        return fail(name.error());
    auto ct = build_service_container(src, std::string(job_container_name));
    if (!ct)
        return fail(ct.error());
    ct->env.clear(); // in the Secret: values may be secrets, a pod spec is readable by many
    ct->env_from = {env_from_secret{std::string(env_secret)}};
    ct->ports.clear();
    ct->volume_mounts = volume_step_mounts(workspace_sub_path);
    pod p;
    p.metadata.name = std::move(*name);
    p.metadata.labels[std::string(runner_label_key)] = std::string(runner_pod_name);
    p.spec.restart_policy = "Never";
    p.spec.containers.push_back(std::move(*ct));
    p.spec.volumes = {volume{std::string(work_volume_name), pvc_source{opts.claim_name, false}}};
    p.spec.affinity = runner_node_affinity(opts.node_name, opts.rwo);
    return p;
}

} // namespace podpipe::kube
