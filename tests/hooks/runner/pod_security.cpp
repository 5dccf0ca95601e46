#include "tests/hooks/runner/pod_security.hpp"

#include <fstream>
#include <stdexcept>
#include <string>

#include <yaml-cpp/yaml.h>

namespace podpipe::hook::testing {
namespace {

YAML::Node load(const std::string& text, const std::string& what) {
    try {
        return text.empty() ? YAML::Node(YAML::NodeType::Map) : YAML::Load(text);
    } catch (const YAML::Exception& e) {
        throw std::runtime_error(what + ": " + e.what());
    }
}

void merge_containers(YAML::Node into, const YAML::Node& from);

/// Merges map `from` into map `into`: maps key by key, `containers` by name, anything else
/// replaced by `from`'s.
void merge(YAML::Node into, const YAML::Node& from) {
    for (const auto& kv : from) {
        const std::string key = kv.first.as<std::string>();
        const YAML::Node& value = kv.second;
        if (key == "containers" && into[key] && into[key].IsSequence() && value.IsSequence())
            merge_containers(into[key], value);
        else if (into[key] && into[key].IsMap() && value.IsMap())
            merge(into[key], value);
        else
            into[key] = YAML::Clone(value);
    }
}

void merge_containers(YAML::Node into, const YAML::Node& from) {
    for (const auto& c : from) {
        bool merged = false;
        for (auto mine : into)
            if (mine["name"] && c["name"] &&
                mine["name"].as<std::string>() == c["name"].as<std::string>()) {
                merge(mine, c);
                merged = true;
            }
        if (!merged)
            into.push_back(YAML::Clone(c));
    }
}

YAML::Node job_container(YAML::Node containers) {
    for (auto c : containers)
        if (c["name"] && c["name"].as<std::string>() == "$job")
            return c;
    throw std::runtime_error("the restricted template has no $job container");
}

} // namespace

std::string to_string(pod_security s) {
    return s == pod_security::restricted ? "restricted" : "plain";
}

std::string hook_template(pod_security s, const std::string& test_template) {
    if (s == pod_security::plain)
        return test_template;
    const std::string example =
        std::string(PODPIPE_SOURCE_DIR) + "/examples/hook-template-restricted.yaml";
    YAML::Node out;
    try {
        out = YAML::LoadFile(example);
    } catch (const YAML::Exception& e) {
        throw std::runtime_error(example + ": " + e.what());
    }
    // What every container needs under "restricted": the example's $job securityContext.
    const YAML::Node needed =
        YAML::Clone(job_container(out["spec"]["containers"])["securityContext"]);
    merge(out, load(test_template, "the test's template"));
    for (auto c : out["spec"]["containers"]) {
        YAML::Node sc = YAML::Clone(needed);
        if (c["securityContext"])
            merge(sc, c["securityContext"]);
        c["securityContext"] = sc;
    }
    YAML::Node job = job_container(out["spec"]["containers"]);
    if (!job["resources"] || !job["resources"]["limits"]) {
        job["resources"]["limits"]["cpu"] = std::string(restricted_cpu_limit);
        job["resources"]["limits"]["memory"] = std::string(restricted_memory_limit);
    }
    YAML::Emitter e;
    e << out;
    return std::string(e.c_str()) + "\n";
}

void set_hook_template(std::map<std::string, std::string>& env, pod_security s,
                       const std::filesystem::path& file, const std::string& test_template) {
    const std::string text = hook_template(s, test_template);
    if (text.empty()) {
        env.erase("ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE");
        return;
    }
    std::ofstream out(file, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out.flush())
        throw std::runtime_error("cannot write " + file.string());
    env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"] = file.string();
}

} // namespace podpipe::hook::testing
