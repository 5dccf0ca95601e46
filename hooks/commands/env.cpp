#include "hooks/commands/env.hpp"

#include "engine/common/limits.hpp"
#include "engine/pipeline/send.hpp"
#include "remote/retry.hpp"

#include <algorithm>

#include <climits>

namespace podpipe::hook {

remote::retry_policy hook_env::copy_retry_policy() const {
    remote::retry_policy p;
    p.retry_for = copy_retry;
    return p;
}

namespace {

std::string get(const env_map& env, std::string_view key) {
    auto it = env.find(key);
    return it == env.end() ? std::string() : it->second;
}

bool alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// A Kubernetes label value (it becomes the runner-pod label): <= 63 chars, alphanumerics with
// '-', '_', '.' inside.
bool label_value_ok(std::string_view v) {
    if (v.empty() || v.size() > 63 || !alnum(v.front()) || !alnum(v.back()))
        return false;
    return std::all_of(v.begin(), v.end(),
                       [](char c) { return alnum(c) || c == '-' || c == '_' || c == '.'; });
}

hook_error bad(std::string_view var, std::string_view value, std::string_view want) {
    return make_error(errc::bad_env, std::string(var) + "=\"" +
                                         kube::sanitize_for_message(value, 128) +
                                         "\" is invalid: " + std::string(want));
}

// ACTIONS_RUNNER_HEARTBEAT_*: integer > 0, else the fallback (silently, as the reference).
std::chrono::milliseconds positive_ms(const env_map& env, std::string_view key,
                                      std::chrono::milliseconds fallback) {
    auto v = parse_leading_int(get(env, key));
    if (!v || *v <= 0)
        return fallback;
    return std::chrono::milliseconds(*v);
}

std::optional<std::size_t> parse_bytes(std::string_view text) {
    std::size_t digits = 0;
    while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
        ++digits;
    if (digits == 0 || digits > 12)
        return std::nullopt;
    std::size_t v = std::stoull(std::string(text.substr(0, digits)));
    const std::string_view unit = text.substr(digits);
    if (unit.empty())
        return v;
    if (unit == "Ki")
        return v << 10;
    if (unit == "Mi")
        return v << 20;
    if (unit == "Gi")
        return v << 30;
    return std::nullopt;
}

} // namespace

env_map env_from_environ(const char* const* envp) {
    env_map env;
    for (; envp && *envp; ++envp) {
        std::string_view kv(*envp);
        const auto eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0)
            continue;
        env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
    return env;
}

std::optional<long long> parse_leading_int(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && (text[i] == ' ' || text[i] == '\t' || text[i] == '\n'))
        ++i;
    bool neg = false;
    if (i < text.size() && (text[i] == '+' || text[i] == '-'))
        neg = text[i++] == '-';
    if (i >= text.size() || text[i] < '0' || text[i] > '9')
        return std::nullopt;
    long long v = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        if (v > (LLONG_MAX - (text[i] - '0')) / 10)
            return std::nullopt;
        v = v * 10 + (text[i] - '0');
    }
    return neg ? -v : v;
}

result<std::string, hook_error> hook_env::work_root() const {
    std::string_view p = runner_workspace;
    while (p.size() > 1 && p.back() == '/')
        p.remove_suffix(1);
    const auto slash = p.rfind('/');
    if (p.empty() || slash == std::string_view::npos || p.front() != '/')
        return fail(make_error(errc::bad_env,
                               "RUNNER_WORKSPACE=\"" + runner_workspace +
                                   "\" is invalid: expected an absolute path below the work root"));
    if (slash == 0)
        return std::string("/");
    return std::string(p.substr(0, slash));
}

result<hook_env, hook_error> read_env(const env_map& env) {
    hook_env e;
    e.memory_budget_bytes = default_memory_budget();
    e.runner_pod_name = get(env, "ACTIONS_RUNNER_POD_NAME");
    if (e.runner_pod_name.empty())
        return fail(make_error(errc::bad_env, "'ACTIONS_RUNNER_POD_NAME' env is required, please "
                                              "contact your self hosted runner administrator"));
    if (!label_value_ok(e.runner_pod_name))
        return fail(
            bad("ACTIONS_RUNNER_POD_NAME", e.runner_pod_name,
                "it names pods and labels them, so it must be a Kubernetes label value "
                "(at most 63 letters, digits, '-', '_' or '.', alphanumeric at both ends)"));
    e.namespace_name = get(env, "ACTIONS_RUNNER_KUBERNETES_NAMESPACE");
    e.template_path = get(env, "ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE");

    if (auto it = env.find("ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"); it != env.end()) {
        auto v = parse_leading_int(it->second);
        if (!v || *v <= 0 || *v > 7LL * 24 * 3600)
            e.warnings.push_back("Prepare job timeout is invalid (\"" +
                                 kube::sanitize_for_message(it->second, 64) + "\"): use an int > 0");
        else
            e.prepare_job_timeout = std::chrono::seconds(*v);
    }
    e.runner_image = get(env, "ACTIONS_RUNNER_IMAGE");
    if (e.runner_image.empty())
        e.runner_image = "ghcr.io/actions/actions-runner:latest";
    e.heartbeat_period =
        positive_ms(env, "ACTIONS_RUNNER_HEARTBEAT_PERIOD_MS", std::chrono::milliseconds(5000));
    e.heartbeat_deadline = positive_ms(env, "ACTIONS_RUNNER_HEARTBEAT_DEADLINE_MS",
                                       12 * e.heartbeat_period + std::chrono::milliseconds(1000));
    e.claim_name = get(env, "ACTIONS_RUNNER_CLAIM_NAME");
    if (e.claim_name.empty())
        e.claim_name = e.runner_pod_name + "-work";
    e.rwo = get(env, "ACTIONS_RUNNER_HOOK_RWO") == "true";
    for (const char* var : {"ACTIONS_RUNNER_DISABLE_KUBE_SCHEDULER", "ACTIONS_RUNNER_USE_KUBE_SCHEDULER"})
        if (!get(env, var).empty())
            e.old_scheduler_knobs.emplace_back(var);
    e.require_job_container = get(env, "ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER") == "true";
    e.runner_workspace = get(env, "RUNNER_WORKSPACE");
    e.github_workspace = get(env, "GITHUB_WORKSPACE");
    e.runner_temp = get(env, "RUNNER_TEMP");

    if (const std::string m = get(env, "PODPIPE_WORKSPACE_MODE"); m == "volume")
        e.mode = workspace_mode::volume;
    else if (!m.empty() && m != "stream")
        return fail(bad("PODPIPE_WORKSPACE_MODE", m, "expected stream or volume"));

    if (const std::string lvl = get(env, "PODPIPE_COMPRESSION_LEVEL"); lvl == "auto") {
        e.compression_level = auto_compression_level;
    } else if (!lvl.empty()) {
        auto v = parse_leading_int(lvl);
        if (!v || std::to_string(*v) != lvl || *v < 0 || *v > 12)
            return fail(bad("PODPIPE_COMPRESSION_LEVEL", lvl, "expected auto or 0..12"));
        e.compression_level = static_cast<int>(*v);
    }
    if (const std::string t = get(env, "PODPIPE_THREADS"); !t.empty()) {
        auto v = parse_leading_int(t);
        if (!v || std::to_string(*v) != t || *v < 0 || *v > 256)
            return fail(bad("PODPIPE_THREADS", t, "expected 0 (one per core) .. 256"));
        e.threads = static_cast<unsigned>(*v);
    }
    if (const std::string t = get(env, "PODPIPE_STEP_REATTACH_SECONDS"); !t.empty()) {
        auto v = parse_leading_int(t);
        if (!v || std::to_string(*v) != t || *v < 0 || *v > 86400)
            return fail(bad("PODPIPE_STEP_REATTACH_SECONDS", t, "expected 0 .. 86400"));
        e.step_reattach = std::chrono::seconds(*v);
    }
    if (const std::string t = get(env, "PODPIPE_COPY_RETRY_SECONDS"); !t.empty()) {
        auto v = parse_leading_int(t);
        if (!v || std::to_string(*v) != t || *v < 0 || *v > 86400)
            return fail(bad("PODPIPE_COPY_RETRY_SECONDS", t, "expected 0 .. 86400"));
        e.copy_retry = std::chrono::seconds(*v);
    }
    if (const std::string t = get(env, "PODPIPE_POD_THREADS"); !t.empty()) {
        auto v = parse_leading_int(t);
        if (!v || std::to_string(*v) != t || *v < 0 || *v > 256)
            return fail(bad("PODPIPE_POD_THREADS", t, "expected 0 (the pod's cores) .. 256"));
        e.pod_threads = static_cast<unsigned>(*v);
    }
    if (const std::string c = get(env, "PODPIPE_CHUNK_SIZE"); !c.empty()) {
        auto v = parse_bytes(c);
        if (!v || *v < pipeline::min_chunk_bytes || *v > pipeline::max_chunk_bytes)
            return fail(bad("PODPIPE_CHUNK_SIZE", c,
                            "expected bytes with an optional Ki/Mi suffix, 64Ki..8Mi"));
        e.chunk_bytes = *v;
    }
    if (const std::string b = get(env, "PODPIPE_MEMORY_BUDGET"); !b.empty()) {
        auto v = parse_bytes(b);
        if (!v || *v < (std::size_t{4} << 20))
            return fail(bad("PODPIPE_MEMORY_BUDGET", b,
                            "expected bytes with an optional Ki/Mi/Gi suffix, at least 4Mi"));
        e.memory_budget_bytes = *v;
    }
    if (const std::string r = get(env, "PODPIPE_RECV_PATH"); !r.empty()) {
        if (r.front() != '/')
            return fail(bad("PODPIPE_RECV_PATH", r, "expected an absolute path in the pod"));
        e.recv_path = r;
    }
    if (const std::string a = get(env, "PODPIPE_ALLOW_INCOMPLETE"); !a.empty()) {
        if (a != "true" && a != "false")
            return fail(bad("PODPIPE_ALLOW_INCOMPLETE", a, "expected true or false"));
        e.allow_incomplete = a == "true";
    }
    return e;
}

} // namespace podpipe::hook
