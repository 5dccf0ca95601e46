// examples/ is documentation users copy: keep it true. The template parses and merges with
// podpipe's own template code, the RBAC grants exactly what the hook checks (spec §2.7), and the
// scale set values point the runner at podpipe's shim with settings podpipe-hook accepts.
#include "hooks/commands/env.hpp"
#include "kube/pod_spec.hpp"
#include "kube/template.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <tuple>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace podpipe::hook::testing {
namespace {

const std::string examples = std::string(PODPIPE_SOURCE_DIR) + "/examples/";

std::string read_file(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

TEST(hook_examples, template_parses_and_merges_into_a_job_pod) {
    const std::string path = examples + "hook-template.yaml";
    auto ext = kube::parse_template(read_file(path), path);
    ASSERT_TRUE(ext) << ext.error().what();

    kube::job_pod_options opts;
    opts.runner_pod_name = "runner-abc";
    opts.workspace_tail = "app/app";
    kube::container_source job;
    job.image = "node:22";
    kube::container_source redis;
    redis.image = "redis:7";
    auto built = kube::build_job_pod(opts, &job, {redis});
    ASSERT_TRUE(built) << built.error().what();
    kube::pod p = built->job_pod;
    auto warnings = kube::apply_template(*ext, p);
    ASSERT_TRUE(warnings) << warnings.error().what();
    EXPECT_TRUE(warnings->empty()) << warnings->front();

    EXPECT_EQ(p.metadata.labels.at("runner-pod"), "runner-abc");
    EXPECT_EQ(p.metadata.labels.at("team"), "build-infra");
    EXPECT_EQ(p.spec.service_account_name, "ci-jobs");
    ASSERT_EQ(p.spec.init_containers.size(), 1u) << "the example must keep fs-init";
    ASSERT_EQ(p.spec.containers.size(), 3u);
    EXPECT_EQ(p.spec.containers[0].name, "job");
    EXPECT_EQ(p.spec.containers[0].image, "node:22");
    EXPECT_EQ(p.spec.containers[0].resources.requests.at("memory"), "4Gi");
    EXPECT_TRUE(std::any_of(p.spec.containers[0].env.begin(), p.spec.containers[0].env.end(),
                            [](const kube::env_var& e) { return e.name == "NPM_CONFIG_CACHE"; }));
    EXPECT_EQ(p.spec.containers[1].name, "redis");
    EXPECT_EQ(p.spec.containers[1].resources.limits.at("memory"), "256Mi");
    EXPECT_EQ(p.spec.containers[2].name, "log-shipper");
    // The sidecar's mount names a volume the pod has.
    for (const auto& c : p.spec.containers)
        for (const auto& m : c.volume_mounts)
            EXPECT_TRUE(std::any_of(p.spec.volumes.begin(), p.spec.volumes.end(),
                                    [&](const kube::volume& v) { return v.name == m.name; }))
                << c.name << " mounts missing volume " << m.name;
}

TEST(hook_examples, rbac_grants_what_the_hook_checks) {
    // spec/hook-behavior.md §2.7, stream mode.
    const std::set<std::tuple<std::string, std::string, std::string>> wanted = {
        {"", "pods", "get"},         {"", "pods", "list"},        {"", "pods", "create"},
        {"", "pods", "delete"},      {"", "pods/exec", "get"},    {"", "pods/exec", "create"},
        {"", "pods/log", "get"},     {"", "pods/log", "list"},    {"", "pods/log", "watch"},
        {"", "secrets", "create"},   {"", "secrets", "delete"},   {"", "secrets", "get"},
        {"", "secrets", "list"},
    };
    std::set<std::tuple<std::string, std::string, std::string>> granted;
    std::string account, bound;
    for (const auto& doc : YAML::LoadAllFromFile(examples + "rbac.yaml")) {
        const std::string kind = doc["kind"].as<std::string>();
        if (kind == "ServiceAccount")
            account = doc["metadata"]["name"].as<std::string>();
        if (kind == "RoleBinding")
            bound = doc["subjects"][0]["name"].as<std::string>();
        if (kind != "Role")
            continue;
        for (const auto& rule : doc["rules"])
            for (const auto& g : rule["apiGroups"])
                for (const auto& r : rule["resources"])
                    for (const auto& v : rule["verbs"])
                        granted.emplace(g.as<std::string>(), r.as<std::string>(), v.as<std::string>());
    }
    EXPECT_EQ(granted, wanted);
    EXPECT_EQ(account, "podpipe-runner");
    EXPECT_EQ(bound, account);
}

// Both ARC container modes users run: "kubernetes" (a work volume the job pods mount: podpipe's
// volume mode) and "kubernetes-novolume" (podpipe's stream mode).
TEST(hook_examples, scale_set_values_point_at_podpipe_with_accepted_settings) {
    struct values_file {
        const char* file;
        const char* container_mode;
        workspace_mode mode;
        const char* work_volume; ///< the kind of the runner's `work` volume
    };
    for (const values_file& f :
         {values_file{"arc-values-kubernetes-mode.yaml", "kubernetes", workspace_mode::volume,
                      "ephemeral"},
          values_file{"arc-values-kubernetes-novolume-mode.yaml", "kubernetes-novolume",
                      workspace_mode::stream, "emptyDir"}}) {
        SCOPED_TRACE(f.file);
        const YAML::Node values = YAML::LoadFile(examples + f.file);
        EXPECT_EQ(values["containerMode"]["type"].as<std::string>(), f.container_mode);
        const YAML::Node spec = values["template"]["spec"];
        EXPECT_EQ(spec["serviceAccountName"].as<std::string>(), "podpipe-runner");
        const YAML::Node runner = spec["containers"][0];
        EXPECT_EQ(runner["name"].as<std::string>(), "runner");
        env_map env;
        for (const auto& e : runner["env"]) {
            if (e["value"])
                env[e["name"].as<std::string>()] = e["value"].as<std::string>();
            else
                env[e["name"].as<std::string>()] = "from-field-ref";
        }
        EXPECT_EQ(env.at("ACTIONS_RUNNER_CONTAINER_HOOKS"), "/home/runner/podpipe/hook.sh");
        EXPECT_EQ(env.at("ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"), "true");
        ASSERT_TRUE(env.count("ACTIONS_RUNNER_POD_NAME"));
        env["ACTIONS_RUNNER_POD_NAME"] = "runner-abc"; // what the fieldRef gives
        auto read = read_env(env);
        ASSERT_TRUE(read) << read.error().what();
        EXPECT_TRUE(read->warnings.empty()) << read->warnings.front();
        EXPECT_EQ(read->mode, f.mode);
        // The template the values mount is the restricted example.
        EXPECT_EQ(env.at("ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"),
                  "/home/runner/podpipe-template/hook-template-restricted.yaml");
        bool work = false;
        for (const auto& v : spec["volumes"])
            if (v["name"].as<std::string>() == "work")
                work = v[f.work_volume].IsDefined();
        EXPECT_TRUE(work) << "the runner's work volume should be " << f.work_volume;
        // The runner runs as the image's runner user (the hook with it), non-root.
        EXPECT_EQ(spec["securityContext"]["runAsUser"].as<int>(), 1001);
        EXPECT_TRUE(spec["securityContext"]["runAsNonRoot"].as<bool>());
    }
}

TEST(hook_examples, dockerfile_puts_files_where_the_values_expect_them) {
    const std::string docker = read_file(examples + "Dockerfile.runner");
    EXPECT_NE(docker.find("/home/runner/podpipe"), std::string::npos);
    EXPECT_NE(docker.find("/home/runner/externals/podpipe"), std::string::npos);
    EXPECT_NE(docker.find("tools/hook.sh"), std::string::npos);
    // The shim it copies is the repository's.
    EXPECT_FALSE(read_file(std::string(PODPIPE_SOURCE_DIR) + "/tools/hook.sh").empty());
}

} // namespace
} // namespace podpipe::hook::testing
