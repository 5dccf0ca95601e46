#include "kube/pod_spec.hpp"

#include "kube/base64.hpp"
#include "engine/common/json_writer.hpp"

#include <algorithm>
#include <random>

namespace podpipe::kube {

namespace {

class spec_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "k8s.spec"; }

    std::string message(int c) const override {
        switch (static_cast<spec_errc>(c)) {
        case spec_errc::missing_runner_name:
            return "runner pod name missing";
        case spec_errc::bad_port:
            return "invalid port mapping";
        case spec_errc::bad_image:
            return "invalid image";
        case spec_errc::bad_env:
            return "invalid environment variable";
        case spec_errc::bad_args:
            return "invalid arguments";
        case spec_errc::bad_workspace:
            return "invalid workspace directory";
        case spec_errc::no_containers:
            return "no containers";
        case spec_errc::template_unreadable:
            return "pod template unreadable";
        case spec_errc::template_invalid:
            return "pod template invalid";
        case spec_errc::template_unsupported:
            return "pod template field not supported";
        case spec_errc::template_forbidden:
            return "pod template field not allowed";
        }
        return "unknown spec error";
    }

    std::error_condition default_error_condition(int) const noexcept override {
        return condition::bad_input;
    }
};

constexpr std::string_view missing_name_text =
    "'ACTIONS_RUNNER_POD_NAME' env is required, please contact your self hosted runner "
    "administrator";

result<std::string, api_error> prefixed_name(std::string_view runner, std::size_t keep,
                                              std::string_view tail) {
    if (runner.empty())
        return fail(spec_error(spec_errc::missing_runner_name, std::string(missing_name_text)));
    std::string out(runner.substr(0, keep));
    out += tail;
    return out;
}

bool env_key_ok(std::string_view k) {
    if (k.empty())
        return false;
    auto alpha = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-' || c == '.';
    };
    if (!alpha(k.front()))
        return false;
    return std::all_of(k.begin(), k.end(),
                       [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

result<int, api_error> parse_port_number(std::string_view text) {
    auto bad = [&] {
        return fail(
            spec_error(spec_errc::bad_port, "invalid container port: " + std::string(text)));
    };
    if (text.empty() || text.size() > 5)
        return bad();
    int v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return bad();
        v = v * 10 + (c - '0');
    }
    if (v < 1 || v > 65535)
        return bad();
    return v;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    std::size_t start = 0;
    for (;;) {
        const auto pos = s.find(sep, start);
        if (pos == std::string_view::npos) {
            parts.push_back(s.substr(start));
            return parts;
        }
        parts.push_back(s.substr(start, pos - start));
        start = pos + 1;
    }
}

container base_container(const container_source& src, std::string name) {
    container ct;
    ct.name = std::move(name);
    ct.image = src.image;
    ct.working_dir = src.working_directory;
    ct.volume_mounts = stream_mounts();
    return ct;
}

result<void, api_error> fill_common(container& ct, const container_source& src) {
    auto env = container_env(src.environment);
    if (!env)
        return fail(env.error());
    ct.env = std::move(*env);
    for (const auto& m : src.port_mappings) {
        auto p = parse_port_mapping(m);
        if (!p)
            return fail(p.error());
        ct.ports.push_back(std::move(*p));
    }
    if (!src.entry_point.empty())
        ct.command = {src.entry_point};
    if (!src.entry_point_args.empty()) {
        auto args = fix_args(src.entry_point_args);
        if (!args)
            return fail(args.error());
        ct.args = std::move(*args);
    }
    return {};
}

} // namespace

const std::error_category& spec_category() noexcept {
    static const spec_category_impl instance;
    return instance;
}

api_error spec_error(spec_errc e, std::string message) {
    api_error err(make_error_code(e), std::string());
    err.message = std::move(message);
    return err;
}

// ---- names ----------------------------------------------------------------------------------

result<std::string, api_error> runner_label_selector(std::string_view runner_pod_name) {
    if (runner_pod_name.empty())
        return fail(spec_error(spec_errc::missing_runner_name, std::string(missing_name_text)));
    return std::string(runner_label_key) + "=" + std::string(runner_pod_name);
}

result<std::string, api_error> job_pod_name(std::string_view runner_pod_name) {
    return prefixed_name(runner_pod_name, max_name_length - 9, "-workflow");
}

result<std::string, api_error> step_pod_name(std::string_view runner_pod_name,
                                              std::string_view suffix) {
    return prefixed_name(runner_pod_name, max_name_length - 6 - name_suffix_length,
                         "-step-" + std::string(suffix));
}

result<std::string, api_error> secret_name(std::string_view runner_pod_name,
                                            std::string_view suffix) {
    return prefixed_name(runner_pod_name, max_name_length - 8 - name_suffix_length,
                         "-secret-" + std::string(suffix));
}

std::string random_name_suffix() {
    static constexpr std::string_view hex = "0123456789abcdef";
    std::random_device rd;
    std::string s(name_suffix_length, '0');
    std::uint32_t bits = rd();
    for (char& c : s) {
        c = hex[bits & 0xF];
        bits >>= 4;
    }
    return s;
}

// ---- containers -----------------------------------------------------------------------------

result<container_port, api_error> parse_port_mapping(std::string_view mapping) {
    const auto slash = split(mapping, '/');
    if (slash.size() > 2)
        return fail(
            spec_error(spec_errc::bad_port, "Unexpected port format: " + std::string(mapping)));
    container_port port;
    if (slash.size() == 2) {
        port.protocol.clear();
        for (char c : slash[1])
            port.protocol.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
        // Kubernetes accepts TCP, UDP and SCTP only; anything else would be a 422 later.
        if (port.protocol != "TCP" && port.protocol != "UDP" && port.protocol != "SCTP")
            return fail(
                spec_error(spec_errc::bad_port, "Unexpected port format: " + std::string(mapping)));
    }
    const auto colon = split(slash[0], ':');
    if (colon.size() > 2)
        return fail(
            spec_error(spec_errc::bad_port, "ports should have at most one \":\" separator"));
    if (colon.size() == 2) {
        auto host = parse_port_number(colon[0]);
        if (!host)
            return fail(host.error());
        auto cport = parse_port_number(colon[1]);
        if (!cport)
            return fail(cport.error());
        port.host_port = *host;
        port.container_port = *cport;
    } else {
        auto cport = parse_port_number(colon[0]);
        if (!cport)
            return fail(cport.error());
        port.container_port = *cport;
    }
    return port;
}

result<std::vector<std::string>, api_error> shell_split(std::string_view text) {
    std::vector<std::string> words;
    std::string cur;
    bool in_word = false;
    std::size_t i = 0;
    auto unterminated = [&](const char* what) {
        return fail(spec_error(spec_errc::bad_args,
                               std::string("unterminated ") + what +
                                   " in arguments: " + sanitize_for_message(text, 256)));
    };
    while (i < text.size()) {
        const char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n') {
            if (in_word) {
                words.push_back(std::move(cur));
                cur.clear();
                in_word = false;
            }
            ++i;
        } else if (c == '\'') {
            in_word = true;
            const auto end = text.find('\'', i + 1);
            if (end == std::string_view::npos)
                return unterminated("single quote");
            cur.append(text.substr(i + 1, end - i - 1));
            i = end + 1;
        } else if (c == '"') {
            in_word = true;
            ++i;
            bool closed = false;
            while (i < text.size()) {
                const char d = text[i];
                if (d == '"') {
                    closed = true;
                    ++i;
                    break;
                }
                if (d == '\\' && i + 1 < text.size()) {
                    const char n = text[i + 1];
                    if (n == '$' || n == '`' || n == '"' || n == '\\') {
                        cur.push_back(n);
                        i += 2;
                        continue;
                    }
                    if (n == '\n') { // line continuation
                        i += 2;
                        continue;
                    }
                }
                cur.push_back(d);
                ++i;
            }
            if (!closed)
                return unterminated("double quote");
        } else if (c == '\\') {
            if (i + 1 >= text.size()) { // a trailing backslash stands for itself
                cur.push_back('\\');
                in_word = true;
                ++i;
            } else if (text[i + 1] == '\n') {
                i += 2;
            } else {
                cur.push_back(text[i + 1]);
                in_word = true;
                i += 2;
            }
        } else {
            cur.push_back(c);
            in_word = true;
            ++i;
        }
    }
    if (in_word)
        words.push_back(std::move(cur));
    return words;
}

result<std::vector<std::string>, api_error> fix_args(const std::vector<std::string>& argv) {
    if (argv.size() >= 2 && argv[0] == "sh" && argv[1] == "-c")
        return argv;
    std::string joined;
    for (std::size_t i = 0; i < argv.size(); ++i) {
        if (i)
            joined.push_back(' ');
        joined += argv[i];
    }
    return shell_split(joined);
}

result<std::string, api_error> container_name_for_image(std::string_view image) {
    std::string_view base = image;
    if (const auto slash = base.rfind('/'); slash != std::string_view::npos)
        base = base.substr(slash + 1);
    base = base.substr(0, std::min(base.find(':'), base.find('@')));
    std::string name;
    for (char c : base) {
        if (c >= 'A' && c <= 'Z')
            name.push_back(static_cast<char>(c - 'A' + 'a'));
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            name.push_back(c);
        else
            name.push_back('-');
    }
    // Room for a "-<index>" suffix of a duplicated name.
    if (name.size() > max_name_length - 4)
        name.resize(max_name_length - 4);
    while (!name.empty() && name.front() == '-')
        name.erase(name.begin());
    while (!name.empty() && name.back() == '-')
        name.pop_back();
    if (name.empty())
        return fail(spec_error(spec_errc::bad_image,
                               "Image definition '" + std::string(image) + "' is invalid"));
    return name;
}

result<std::vector<std::string>, api_error>
service_container_names(const std::vector<std::string>& images) {
    std::vector<std::string> names;
    names.reserve(images.size());
    for (const auto& img : images) {
        auto n = container_name_for_image(img);
        if (!n)
            return fail(n.error());
        names.push_back(std::move(*n));
    }
    std::vector<std::string> out = names;
    std::map<std::string, int> next_index;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (std::count(names.begin(), names.end(), names[i]) < 2)
            continue;
        out[i] = names[i] + "-" + std::to_string(next_index[names[i]]++);
    }
    // The job container is named "job": a service image called "job" would collide.
    for (auto& n : out) {
        if (n == job_container_name)
            n = "job-service";
    }
    return out;
}

result<std::vector<env_var>, api_error>
container_env(const std::vector<std::pair<std::string, std::string>>& environment) {
    std::vector<env_var> env;
    bool have_ci = false;
    for (const auto& [k, v] : environment) {
        if (!env_key_ok(k))
            return fail(
                spec_error(spec_errc::bad_env,
                           "environment key " + sanitize_for_message(k, 128) +
                               " is invalid - the key must match [-._a-zA-Z][-._a-zA-Z0-9]*"));
        if (k == "HOME" || k == "GITHUB_ACTIONS")
            continue;
        if (k == "CI")
            have_ci = true;
        // A later duplicate key wins in Kubernetes too; keep the request's order.
        env.push_back({k, v, std::nullopt});
    }
    env.push_back({"GITHUB_ACTIONS", "true", std::nullopt});
    if (!have_ci)
        env.push_back({"CI", "true", std::nullopt});
    return env;
}

std::vector<volume_mount> stream_mounts() {
    return {{"externals", "/__e", "", false},
            {"work", "/__w", "", false},
            {"github", "/github", "", false}};
}

result<container, api_error> build_job_container(const container_source& src) {
    container ct = base_container(src, std::string(job_container_name));
    PODPIPE_TRY(fill_common(ct, src));
    if (src.entry_point.empty()) {
        ct.command = {"tail"};
        ct.args = {"-f", "/dev/null"};
    }
    return ct;
}

result<container, api_error> build_service_container(const container_source& src,
                                                      std::string name) {
    container ct = base_container(src, std::move(name));
    PODPIPE_TRY(fill_common(ct, src));
    return ct;
}

// ---- pods ------------------------------------------------------------------------------------

std::string fs_init_script(std::string_view workspace_tail) {
    // cp, not the reference's mv: from the image layer to an emptyDir both copy every byte, and
    // cp also works where the image's root is read-only (readOnlyRootFilesystem, kubesim).
    // umask 002: the directories are group-writable, and the volumes' group is the pod's
    // fsGroup, which every container has as a supplementary group, so a job image running as
    // another uid can write the workspace (#395).
    std::string s = "umask 002 && mkdir -p /mnt/externals && mkdir -p /mnt/work && "
                    "mkdir -p /mnt/github && cp -a /home/runner/externals/. /mnt/externals/";
    if (!workspace_tail.empty())
        s += " && mkdir -p " + shell_quote("/mnt/work/" + std::string(workspace_tail));
    return s;
}

security_context init_container_security() {
    // The reference's fs-init has runAsUser/runAsGroup 1001; the rest is harmless for a uid-1001
    // `cp` and lets the pod pass "restricted" whatever its own securityContext is.
    security_context s;
    s.run_as_user = runner_uid;
    s.run_as_group = runner_uid;
    s.run_as_non_root = true;
    s.allow_privilege_escalation = false;
    s.capabilities = capability_set{{}, {"ALL"}};
    s.seccomp = seccomp_profile{"RuntimeDefault", ""};
    return s;
}

std::string single_quote(std::string_view s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out.push_back(c);
    }
    out.push_back('\'');
    return out;
}

std::string shell_quote(std::string_view s) {
    const bool safe = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               std::string_view("_./:@%+=,-").find(c) != std::string_view::npos;
    });
    return safe ? std::string(s) : single_quote(s);
}

result<std::string, api_error> workspace_tail(std::string_view github_workspace) {
    std::string_view p = github_workspace;
    while (!p.empty() && p.back() == '/')
        p.remove_suffix(1);
    std::vector<std::string_view> segs;
    for (auto s : split(p, '/'))
        if (!s.empty())
            segs.push_back(s);
    if (segs.size() < 2 || segs[segs.size() - 1] == ".." || segs[segs.size() - 2] == ".." ||
        segs[segs.size() - 1] == "." || segs[segs.size() - 2] == ".")
        return fail(spec_error(spec_errc::bad_workspace, "Invalid github workspace directory: " +
                                                             std::string(github_workspace)));
    return std::string(segs[segs.size() - 2]) + "/" + std::string(segs.back());
}

namespace {

std::vector<volume> stream_volumes() {
    return {{"externals", empty_dir_source{}},
            {"github", empty_dir_source{}},
            {"work", empty_dir_source{}}};
}

} // namespace

result<job_pod_result, api_error> build_job_pod(const job_pod_options& opts,
                                                 const container_source* job,
                                                 const std::vector<container_source>& services) {
    auto name = job_pod_name(opts.runner_pod_name);
    if (!name)
        return fail(name.error());
    job_pod_result out;
    pod& p = out.job_pod;
    p.metadata.name = std::move(*name);
    p.metadata.labels[std::string(runner_label_key)] = opts.runner_pod_name;
    p.spec.restart_policy = "Never";
    p.spec.security = pod_security_context{runner_uid, std::nullopt, std::nullopt, std::nullopt};

    if (job && !job->image.empty()) {
        auto ct = build_job_container(*job);
        if (!ct)
            return fail(ct.error());
        p.spec.containers.push_back(std::move(*ct));
    }
    std::vector<std::string> images;
    for (const auto& s : services)
        images.push_back(s.image);
    auto names = service_container_names(images);
    if (!names)
        return fail(names.error());
    for (std::size_t i = 0; i < services.size(); ++i) {
        auto ct = build_service_container(services[i], (*names)[i]);
        if (!ct)
            return fail(ct.error());
        p.spec.containers.push_back(std::move(*ct));
    }
    if (p.spec.containers.empty())
        return fail(
            spec_error(spec_errc::no_containers, "No containers exist, skipping hook invocation"));
    out.service_names = std::move(*names);

    container init;
    init.name = "fs-init";
    init.image = opts.runner_image.empty() ? std::string(default_runner_image) : opts.runner_image;
    init.command = {"sh", "-c", fs_init_script(opts.workspace_tail)};
    init.security = init_container_security();
    init.volume_mounts = {{"externals", "/mnt/externals", "", false},
                          {"work", "/mnt/work", "", false},
                          {"github", "/mnt/github", "", false}};
    p.spec.init_containers.push_back(std::move(init));
    p.spec.volumes = stream_volumes();
    if (!opts.pull_secret_name.empty())
        p.spec.image_pull_secrets.push_back(opts.pull_secret_name);
    return out;
}

result<pod, api_error> build_step_pod(std::string_view runner_pod_name, std::string_view suffix,
                                       std::string_view image) {
    auto name = step_pod_name(runner_pod_name, suffix);
    if (!name)
        return fail(name.error());
    pod p;
    p.metadata.name = std::move(*name);
    p.metadata.labels[std::string(runner_label_key)] = std::string(runner_pod_name);
    p.spec.restart_policy = "Never";
    container ct;
    ct.name = std::string(job_container_name);
    ct.image = std::string(image);
    ct.working_dir = "/__w";
    ct.command = {"tail"};
    ct.args = {"-f", "/dev/null"};
    ct.volume_mounts = stream_mounts();
    p.spec.containers.push_back(std::move(ct));
    p.spec.volumes = stream_volumes();
    return p;
}

// ---- secret ----------------------------------------------------------------------------------

std::string docker_config_json(const registry_credentials& creds) {
    json_writer w;
    w.begin_object();
    w.key("auths");
    w.begin_object();
    w.key(creds.server_url.empty() ? docker_hub_auth_url : std::string_view(creds.server_url));
    w.begin_object();
    w.field("username", creds.username);
    w.field("password", creds.password);
    w.field("auth", base64_encode(creds.username + ":" + creds.password));
    w.end_object();
    w.end_object();
    w.end_object();
    return w.take();
}

result<secret, api_error> build_pull_secret(std::string_view runner_pod_name,
                                             std::string_view suffix,
                                             const registry_credentials& creds) {
    auto name = secret_name(runner_pod_name, suffix);
    if (!name)
        return fail(name.error());
    secret s;
    s.metadata.name = std::move(*name);
    s.metadata.labels[std::string(runner_label_key)] = std::string(runner_pod_name);
    s.type = "kubernetes.io/dockerconfigjson";
    s.immutable = true;
    s.data[".dockerconfigjson"] = docker_config_json(creds);
    return s;
}

std::vector<std::string> alpine_detection_argv() {
    return {"sh", "-c",
            "[ $(cat /etc/*release* | grep -i -e \"^ID=*alpine*\" -c) != 0 ] || exit 1"};
}

} // namespace podpipe::kube
