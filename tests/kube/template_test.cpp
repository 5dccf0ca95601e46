#include "kube/json.hpp"
#include "kube/template.hpp"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

namespace fs = std::filesystem;

// Our own rendering of the upstream example extension (spec §3.3 worked example).
constexpr std::string_view extension_yaml = R"(
apiVersion: v1
kind: PodTemplate
metadata:
  annotations:
    annotated-by: "extension"
  labels:
    labeled-by: "extension"
spec:
  restartPolicy: Never
  containers:
    - name: $job
      image: "ignored:latest"
      env:
        - name: ENV1
          value: "value1"
      imagePullPolicy: Always
      command: ["sh"]
      args: ["-c", "sleep 50"]
    - name: $redis
      env:
        - name: ENV2
          value: "value2"
      resources:
        requests:
          memory: "1Mi"
          cpu: "1"
        limits:
          memory: "1Gi"
          cpu: "2"
    - name: side-car
      image: "ubuntu:latest"
      command: ["sh"]
      args: ["-c", "sleep 60"]
)";

pod fixture_pod() {
    job_pod_options opts;
    opts.runner_pod_name = "runner-abc";
    container_source job;
    job.image = "node:22";
    job.environment = {{"NODE_ENV", "development"}};
    container_source redis;
    redis.image = "redis";
    auto built = build_job_pod(opts, &job, {redis});
    EXPECT_TRUE(built);
    return built->job_pod;
}

std::string env_value(const container& ct, std::string_view name) {
    for (const auto& e : ct.env)
        if (e.name == name)
            return e.value;
    return "<absent>";
}

class temp_dir : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("template_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }

    void TearDown() override { fs::remove_all(dir_); }

    std::string write(const std::string& name, std::string_view text) {
        const fs::path p = dir_ / name;
        std::ofstream(p, std::ios::binary) << text;
        return p.string();
    }

    fs::path dir_;
};

// ---- reading the file (spec §8 items 75-79) ----

using template_file = temp_dir;

TEST_F(template_file, missing_file_fails) {
    auto r = load_template((dir_ / "nope.yaml").string());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(spec_errc::template_unreadable));
    EXPECT_NE(r.error().what().find("nope.yaml"), std::string::npos);
}

TEST_F(template_file, unset_means_no_template) {
    auto r = load_template("");
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->has_value());
}

TEST_F(template_file, empty_file_fails) {
    const std::string p = write("empty.yaml", "");
    auto r = load_template(p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what(), "Failed to parse " + p);
}

TEST_F(template_file, scalar_fails) {
    const std::string p = write("scalar.yaml", "invalid yaml");
    auto r = load_template(p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what(), "Failed to parse " + p);
    EXPECT_EQ(r.error().code, make_error_code(spec_errc::template_invalid));
}

TEST_F(template_file, broken_yaml_fails_with_the_path) {
    const std::string p = write("broken.yaml", "spec: [unclosed\n");
    auto r = load_template(p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what().rfind("Failed to parse " + p, 0), 0u) << r.error().what();
}

TEST_F(template_file, valid_template_is_parsed) {
    const std::string p = write("ext.yaml", extension_yaml);
    auto r = load_template(p);
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_TRUE(r->has_value());
    const pod_template_extension& ext = **r;
    EXPECT_EQ(ext.labels.at("labeled-by"), "extension");
    EXPECT_EQ(ext.annotations.at("annotated-by"), "extension");
    ASSERT_EQ(ext.overrides.size(), 2u);
    EXPECT_EQ(ext.overrides[0].target, "job");
    EXPECT_EQ(ext.overrides[1].target, "redis");
    ASSERT_EQ(ext.sidecars.size(), 1u);
    EXPECT_EQ(ext.sidecars[0].name, "side-car");
    EXPECT_EQ(ext.spec.restart_policy, "Never");
}

// ---- field types and unsupported fields ----

TEST(template_parse, wrong_types_name_the_field) {
    auto r =
        parse_template("spec:\n  containers:\n    - name: $job\n      command: sh\n", "t.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what(),
              "Failed to parse t.yaml: spec.containers[0].command: expected a list");
    auto port = parse_template(
        "spec:\n  containers:\n    - name: $job\n      ports: [{containerPort: http}]\n", "t.yaml");
    ASSERT_FALSE(port);
    EXPECT_NE(port.error().what().find("spec.containers[0].ports[0].containerPort"),
              std::string::npos);
    EXPECT_FALSE(parse_template("metadata: [a]\n", "t.yaml"));
    EXPECT_FALSE(parse_template("spec:\n  securityContext:\n    fsGroup: abc\n", "t.yaml"));
}

TEST(template_parse, unsupported_fields_are_refused_by_path) {
    auto r = parse_template("spec:\n  priorityClassName: high\n", "t.yaml");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(spec_errc::template_unsupported));
    EXPECT_EQ(r.error().what(), "t.yaml: spec.priorityClassName is not supported by podpipe");
    auto lifecycle =
        parse_template("spec:\n  containers:\n    - name: $job\n      lifecycle: {}\n", "t.yaml");
    ASSERT_FALSE(lifecycle);
    EXPECT_NE(lifecycle.error().what().find("spec.containers[0].lifecycle"), std::string::npos);
    auto cm =
        parse_template("spec:\n  volumes:\n    - name: c\n      configMap: {name: x}\n", "t.yaml");
    ASSERT_FALSE(cm);
    EXPECT_NE(cm.error().what().find("spec.volumes[0].configMap"), std::string::npos);
}

TEST(template_parse, metadata_other_fields_and_top_level_kind_are_ignored) {
    auto r = parse_template("apiVersion: v1\nkind: PodTemplate\nmetadata:\n  name: x\n"
                            "  namespace: y\n",
                            "t.yaml");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_TRUE(r->labels.empty());
}

TEST(template_parse, sidecar_needs_an_image) {
    auto r = parse_template("spec:\n  containers:\n    - name: helper\n", "t.yaml");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("spec.containers[0].image"), std::string::npos);
}

TEST(template_parse, alias_bombs_hit_the_node_budget) {
    std::string y = "a: &a [";
    for (int i = 0; i < 1000; ++i)
        y += "{name: E" + std::to_string(i) + ", value: v},";
    y += "]\nspec:\n  containers:\n    - name: $job\n      env: *a\n";
    std::string list = "  initContainers:\n";
    for (int i = 0; i < 200; ++i)
        list += "    - {name: i" + std::to_string(i) + ", image: x, env: *a}\n";
    y += list;
    auto r = parse_template(y, "t.yaml");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("too many nodes"), std::string::npos);
}

// ---- merge rules (items 80, 81, 90, 91) ----

TEST(template_merge, container_override_appends_lists_and_keeps_name_and_image) {
    pod p;
    p.metadata.labels["runner-pod"] = "r";
    container base;
    base.name = "test";
    base.image = "node:22";
    base.env = {{"TEST", "1", std::nullopt}};
    base.ports = {{8080, 8080, "TCP"}};
    p.spec.containers = {base};
    auto ext = parse_template(R"(
spec:
  containers:
    - name: $test
      image: ubuntu:latest
      ports: [{containerPort: 9090, hostPort: 9090}]
      env: [{name: TEST_TWO, value: "2"}]
)",
                              "t.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    auto warnings = apply_template(*ext, p);
    ASSERT_TRUE(warnings);
    ASSERT_EQ(p.spec.containers.size(), 1u);
    const container& ct = p.spec.containers[0];
    EXPECT_EQ(ct.name, "test");
    EXPECT_EQ(ct.image, "node:22");
    ASSERT_EQ(ct.env.size(), 2u);
    EXPECT_EQ(ct.env[0].name, "TEST");
    EXPECT_EQ(ct.env[1].name, "TEST_TWO");
    ASSERT_EQ(ct.ports.size(), 2u);
    EXPECT_EQ(ct.ports[0].container_port, 8080);
    EXPECT_EQ(ct.ports[1].container_port, 9090);
    EXPECT_TRUE(ct.command.empty());
    EXPECT_FALSE(ct.security);
    EXPECT_EQ(*warnings,
              (std::vector<std::string>{"Skipping image override: image can't be overwritten"}));
}

TEST(template_merge, pod_spec_keys_replace_volumes_and_sidecars_append) {
    pod p;
    container test;
    test.name = "test";
    test.image = "node:22";
    p.spec.containers = {test};
    p.spec.restart_policy = "Never";
    p.spec.security = pod_security_context{1001, std::nullopt, std::nullopt, std::nullopt};
    p.spec.volumes = {{"externals", empty_dir_source{}}};
    auto ext = parse_template(R"(
spec:
  securityContext: {runAsUser: 1000, fsGroup: 2000}
  restartPolicy: Always
  volumes: [{name: work, emptyDir: {}}]
  containers: [{name: side-car, image: "ubuntu:latest"}]
)",
                              "t.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    ASSERT_TRUE(apply_template(*ext, p));
    EXPECT_EQ(p.spec.restart_policy, "Always");
    ASSERT_TRUE(p.spec.security);
    EXPECT_EQ(p.spec.security->run_as_user, 1000);
    EXPECT_EQ(p.spec.security->fs_group, 2000);
    ASSERT_EQ(p.spec.volumes.size(), 2u);
    EXPECT_EQ(p.spec.volumes[0].name, "externals");
    EXPECT_EQ(p.spec.volumes[1].name, "work");
    ASSERT_EQ(p.spec.containers.size(), 2u);
    EXPECT_EQ(p.spec.containers[0].name, "test");
    EXPECT_EQ(p.spec.containers[1].name, "side-car");
}

TEST(template_merge, what_would_collide_with_the_hooks_pod_is_refused_before_creation) {
    pod generated = fixture_pod();
    ASSERT_FALSE(generated.spec.volumes.empty());
    const std::string ours = generated.spec.volumes[0].name;
    struct bad_case {
        std::string yaml, message;
    };
    const bad_case cases[] = {
        {"spec:\n  volumes: [{name: " + ours + ", emptyDir: {}}]\n",
         "pod template volume " + ours + " has the name of a volume the hook creates"},
        {"spec:\n  volumes: [{name: cache, emptyDir: {}}]\n  containers:\n"
         "  - name: $job\n    volumeMounts: [{name: cache, mountPath: /__w}]\n",
         "container job mounts both work and cache at /__w: the pod template may not mount over"},
        {"spec:\n  containers:\n  - name: $job\n"
         "    volumeMounts: [{name: nowhere, mountPath: /x}]\n",
         "container job mounts volume nowhere, which neither the hook nor the pod template"},
        {"spec:\n  volumes: [{name: a, emptyDir: {}}, {name: a, emptyDir: {}}]\n",
         "pod template volume a has the name of another volume"},
    };
    for (const auto& c : cases) {
        pod p = generated;
        auto ext = parse_template(c.yaml, "t.yaml");
        ASSERT_TRUE(ext) << c.yaml << ext.error().what();
        auto r = apply_template(*ext, p);
        ASSERT_FALSE(r) << c.yaml;
        EXPECT_NE(r.error().what().find(c.message), std::string::npos)
            << c.yaml << r.error().what();
        EXPECT_EQ(p.spec.volumes.size(), generated.spec.volumes.size()) << "p was changed";
    }
    // A mount of a template volume elsewhere is fine.
    pod p = generated;
    auto ok = parse_template("spec:\n  volumes: [{name: cache, emptyDir: {}}]\n  containers:\n"
                             "  - name: $job\n"
                             "    volumeMounts: [{name: cache, mountPath: /cache}]\n",
                             "t.yaml");
    ASSERT_TRUE(ok);
    EXPECT_TRUE(apply_template(*ok, p));
}

TEST(template_merge, example_extension_on_the_job_pod) {
    pod p = fixture_pod();
    auto ext = parse_template(extension_yaml, "ext.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    auto warnings = apply_template(*ext, p);
    ASSERT_TRUE(warnings) << warnings.error().what();
    EXPECT_EQ(p.metadata.annotations.at("annotated-by"), "extension");
    EXPECT_EQ(p.metadata.labels.at("labeled-by"), "extension");
    EXPECT_EQ(p.metadata.labels.at("runner-pod"), "runner-abc");
    EXPECT_EQ(p.spec.restart_policy, "Never");
    ASSERT_EQ(p.spec.containers.size(), 3u);
    const container& job = p.spec.containers[0];
    EXPECT_EQ(job.name, "job");
    EXPECT_EQ(job.image, "node:22");
    EXPECT_EQ(job.command, (std::vector<std::string>{"sh"}));
    EXPECT_EQ(job.args, (std::vector<std::string>{"-c", "sleep 50"}));
    EXPECT_EQ(job.image_pull_policy, "Always");
    EXPECT_EQ(env_value(job, "ENV1"), "value1");
    const container& redis = p.spec.containers[1];
    EXPECT_EQ(redis.image, "redis");
    EXPECT_TRUE(redis.command.empty());
    EXPECT_TRUE(redis.args.empty());
    EXPECT_EQ(env_value(redis, "CI"), "true");
    EXPECT_EQ(env_value(redis, "GITHUB_ACTIONS"), "true");
    EXPECT_EQ(env_value(redis, "ENV2"), "value2");
    EXPECT_EQ(env_value(redis, "ENV1"), "<absent>");
    EXPECT_EQ(redis.resources.requests.at("memory"), "1Mi");
    EXPECT_EQ(redis.resources.requests.at("cpu"), "1");
    EXPECT_EQ(redis.resources.limits.at("memory"), "1Gi");
    EXPECT_EQ(redis.resources.limits.at("cpu"), "2");
    const container& side = p.spec.containers[2];
    EXPECT_EQ(side.name, "side-car");
    EXPECT_EQ(side.image, "ubuntu:latest");
    EXPECT_EQ(side.args, (std::vector<std::string>{"-c", "sleep 60"}));
    EXPECT_EQ(*warnings,
              (std::vector<std::string>{"Skipping image override: image can't be overwritten"}));
    // The fs-init init container and the emptyDir volumes survive (no initContainers key).
    EXPECT_EQ(p.spec.init_containers.at(0).name, "fs-init");
    EXPECT_EQ(p.spec.volumes.size(), 3u);
    // And the pod still serializes.
    EXPECT_NE(to_json(p).find("\"side-car\""), std::string::npos);
}

TEST(template_merge, job_mounts_do_not_leak_into_services) {
    pod p = fixture_pod();
    auto ext = parse_template(
        "spec:\n  containers:\n    - name: $job\n      volumeMounts: [{name: extra, mountPath: "
        "/extra}]\n  volumes: [{name: extra, emptyDir: {medium: Memory}}]\n",
        "t.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    ASSERT_TRUE(apply_template(*ext, p));
    EXPECT_EQ(p.spec.containers[0].volume_mounts.size(), 4u);
    EXPECT_EQ(p.spec.containers[1].volume_mounts.size(), 3u);
    // A step pod built later in the same process gets the default three mounts.
    auto step = build_step_pod("runner-abc", "0123abcd", "node:22");
    ASSERT_TRUE(step);
    EXPECT_EQ(step->spec.containers[0].volume_mounts.size(), 3u);
}

TEST(template_merge, overrides_match_generated_service_names_and_ignore_unknown) {
    job_pod_options opts;
    opts.runner_pod_name = "r";
    container_source redis;
    redis.image = "redis";
    auto built = build_job_pod(opts, nullptr, {redis, redis});
    ASSERT_TRUE(built);
    pod p = built->job_pod;
    auto ext = parse_template("spec:\n  containers:\n    - {name: $redis-1, workingDir: /data}\n"
                              "    - {name: $nothing, workingDir: /x}\n",
                              "t.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    ASSERT_TRUE(apply_template(*ext, p));
    ASSERT_EQ(p.spec.containers.size(), 2u);
    EXPECT_EQ(p.spec.containers[0].working_dir, "");
    EXPECT_EQ(p.spec.containers[1].working_dir, "/data");
}

TEST(template_merge, labels_and_annotations_warn_on_overwrite) {
    pod p = fixture_pod();
    p.metadata.annotations["a"] = "old";
    p.metadata.labels["team"] = "x";
    auto ext =
        parse_template("metadata:\n  labels: {team: y}\n  annotations: {a: new}\n", "t.yaml");
    ASSERT_TRUE(ext);
    auto warnings = apply_template(*ext, p);
    ASSERT_TRUE(warnings);
    EXPECT_EQ(p.metadata.labels.at("team"), "y");
    EXPECT_EQ(p.metadata.annotations.at("a"), "new");
    EXPECT_EQ(*warnings, (std::vector<std::string>{
                             "Label team is already defined and will be overwritten",
                             "Annotation a is already defined and will be overwritten"}));
}

TEST(template_merge, runner_pod_label_cannot_be_changed) {
    pod p = fixture_pod();
    const pod before = p;
    auto ext = parse_template("metadata:\n  labels: {runner-pod: other}\n", "t.yaml");
    ASSERT_TRUE(ext);
    auto r = apply_template(*ext, p);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(spec_errc::template_forbidden));
    EXPECT_EQ(to_json(p), to_json(before)); // unchanged on error
}

TEST(template_merge, init_containers_affinity_and_scheduling_replace) {
    pod p = fixture_pod();
    auto ext = parse_template(R"(
spec:
  initContainers:
    - name: warmup
      image: busybox
      command: [sh, -c, "true"]
  nodeSelector: {disk: ssd}
  serviceAccountName: builder
  imagePullSecrets: [{name: regcred}]
  terminationGracePeriodSeconds: 5
  tolerations:
    - {key: dedicated, operator: Equal, value: ci, effect: NoSchedule}
  affinity:
    nodeAffinity:
      preferredDuringSchedulingIgnoredDuringExecution:
        - weight: 50
          preference:
            matchExpressions: [{key: zone, operator: In, values: [a, b]}]
)",
                              "t.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    ASSERT_TRUE(apply_template(*ext, p));
    ASSERT_EQ(p.spec.init_containers.size(), 1u);
    EXPECT_EQ(p.spec.init_containers[0].name, "warmup");
    EXPECT_EQ(p.spec.node_selector.at("disk"), "ssd");
    EXPECT_EQ(p.spec.service_account_name, "builder");
    EXPECT_EQ(p.spec.image_pull_secrets, (std::vector<std::string>{"regcred"}));
    EXPECT_EQ(p.spec.termination_grace_period_seconds, 5);
    ASSERT_EQ(p.spec.tolerations.size(), 1u);
    EXPECT_EQ(p.spec.tolerations[0].effect, "NoSchedule");
    ASSERT_TRUE(p.spec.affinity);
    ASSERT_EQ(p.spec.affinity->preferred.size(), 1u);
    EXPECT_EQ(p.spec.affinity->preferred[0].weight, 50);
    EXPECT_EQ(p.spec.affinity->preferred[0].preference.match_expressions[0].values,
              (std::vector<std::string>{"a", "b"}));
    const std::string json = to_json(p);
    EXPECT_NE(json.find("\"preferredDuringSchedulingIgnoredDuringExecution\""), std::string::npos);
    EXPECT_EQ(json.find("fs-init"), std::string::npos);
}

TEST(template_merge, sidecar_name_collision_fails) {
    pod p = fixture_pod();
    auto ext = parse_template("spec:\n  containers: [{name: redis, image: redis}]\n", "t.yaml");
    ASSERT_TRUE(ext);
    EXPECT_FALSE(apply_template(*ext, p));
}

TEST(template_merge, override_replaces_other_fields) {
    pod p = fixture_pod();
    auto ext = parse_template(R"(
spec:
  containers:
    - name: $job
      workingDir: /elsewhere
      securityContext: {runAsUser: 0, privileged: true}
      envFrom: [{secretRef: {name: job-env}}]
      env: [{name: TOKEN, valueFrom: {secretKeyRef: {name: s, key: k}}}]
)",
                              "t.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    ASSERT_TRUE(apply_template(*ext, p));
    const container& job = p.spec.containers[0];
    EXPECT_EQ(job.working_dir, "/elsewhere");
    ASSERT_TRUE(job.security);
    EXPECT_EQ(job.security->run_as_user, 0);
    EXPECT_EQ(job.security->privileged, true);
    ASSERT_EQ(job.env_from.size(), 1u);
    EXPECT_EQ(job.env_from[0].secret_name, "job-env");
    ASSERT_TRUE(job.env.back().secret_ref);
    EXPECT_EQ(job.env.back().secret_ref->key, "k");
    // command/args untouched because the template did not name them.
    EXPECT_EQ(job.command, (std::vector<std::string>{"tail"}));
}

} // namespace
} // namespace podpipe::kube
