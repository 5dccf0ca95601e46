#include "kube/volume_spec.hpp"

#include <algorithm>

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

const volume_mount* find_mount(const container& c, std::string_view path) {
    for (const auto& m : c.volume_mounts)
        if (m.mount_path == path)
            return &m;
    return nullptr;
}

TEST(volume_spec, required_affinity_names_the_node_by_name_or_hostname_label) {
    const node_affinity a = runner_node_affinity("node-1", true);
    EXPECT_TRUE(a.preferred.empty());
    ASSERT_EQ(a.required.size(), 2u); // ORed terms
    ASSERT_EQ(a.required[0].match_expressions.size(), 1u);
    EXPECT_EQ(a.required[0].match_expressions[0].key, "kubernetes.io/hostname");
    EXPECT_EQ(a.required[0].match_expressions[0].op, "In");
    EXPECT_EQ(a.required[0].match_expressions[0].values, std::vector<std::string>{"node-1"});
    EXPECT_TRUE(a.required[0].match_fields.empty());
    ASSERT_EQ(a.required[1].match_fields.size(), 1u);
    EXPECT_EQ(a.required[1].match_fields[0].key, "metadata.name");
    EXPECT_EQ(a.required[1].match_fields[0].op, "In");
    EXPECT_EQ(a.required[1].match_fields[0].values, std::vector<std::string>{"node-1"});
    EXPECT_TRUE(a.required[1].match_expressions.empty());
}

TEST(volume_spec, preferred_affinity_has_weight_100_and_no_required_term) {
    const node_affinity a = runner_node_affinity("node-2", false);
    EXPECT_TRUE(a.required.empty());
    ASSERT_EQ(a.preferred.size(), 2u);
    for (const auto& p : a.preferred)
        EXPECT_EQ(p.weight, 100);
    // spec §8 104: preferred[0]'s first expression is kubernetes.io/hostname In [node].
    EXPECT_EQ(a.preferred[0].preference.match_expressions.at(0).key, "kubernetes.io/hostname");
    EXPECT_EQ(a.preferred[0].preference.match_expressions.at(0).values.at(0), "node-2");
    EXPECT_EQ(a.preferred[1].preference.match_fields.at(0).key, "metadata.name");
    EXPECT_EQ(a.preferred[1].preference.match_fields.at(0).values.at(0), "node-2");
}

TEST(volume_spec, workspace_sub_path_is_relative_to_the_work_root) {
    EXPECT_EQ(*workspace_sub_path("/home/runner/_work", "/home/runner/_work/app/app"), "app/app");
    EXPECT_EQ(*workspace_sub_path("/home/runner/_work/", "/home/runner/_work/app/app/"), "app/app");
    // Not below W: the reference's rule (after the last _work/).
    EXPECT_EQ(*workspace_sub_path("/x", "/y/_work/r/r"), "r/r");
    EXPECT_FALSE(workspace_sub_path("/x", "/y/z"));
    EXPECT_FALSE(workspace_sub_path("/w", "/w"));
    EXPECT_FALSE(workspace_sub_path("/x", "/y/_work/../etc"));
}

TEST(volume_spec, user_volumes_become_sub_paths_of_the_claim) {
    auto m = user_volume_mount("/home/runner/_work", "/home/runner/_work/app/app/data", "/data", true);
    ASSERT_TRUE(m) << m.error().what();
    EXPECT_EQ(m->name, "work");
    EXPECT_EQ(m->sub_path, "app/app/data");
    EXPECT_EQ(m->mount_path, "/data");
    EXPECT_TRUE(m->read_only);
    auto rel = user_volume_mount("/home/runner/_work", "cache", "/cache", false);
    ASSERT_TRUE(rel);
    EXPECT_EQ(rel->sub_path, "cache");
    auto outside = user_volume_mount("/home/runner/_work", "/etc", "/etc2", false);
    ASSERT_FALSE(outside);
    EXPECT_NE(outside.error().what().find("Volume mounts outside of the work folder are not supported"),
              std::string::npos);
    EXPECT_FALSE(user_volume_mount("/home/runner/_work", "../x", "/x", false));
    EXPECT_FALSE(user_volume_mount("/home/runner/_work", "/home/runner/_workshop", "/x", false));
    EXPECT_FALSE(user_volume_mount("/home/runner/_work", "cache", "relative", false));
}

TEST(volume_spec, job_pod_mounts_the_claim_and_drops_stream_mode_parts) {
    job_pod_options o;
    o.runner_pod_name = "runner-abc";
    container_source job;
    job.image = "debian:12";
    container_source redis;
    redis.image = "redis:7";
    auto built = build_job_pod(o, &job, {redis});
    ASSERT_TRUE(built);
    pod& p = built->job_pod;
    make_volume_job_pod(p, {"runner-abc-work", "node-1", true});
    EXPECT_TRUE(p.spec.init_containers.empty());
    EXPECT_FALSE(p.spec.security);
    EXPECT_TRUE(p.spec.node_name.empty());
    ASSERT_EQ(p.spec.volumes.size(), 1u);
    EXPECT_EQ(p.spec.volumes[0].name, "work");
    ASSERT_TRUE(std::holds_alternative<pvc_source>(p.spec.volumes[0].source));
    EXPECT_EQ(std::get<pvc_source>(p.spec.volumes[0].source).claim_name, "runner-abc-work");
    ASSERT_EQ(p.spec.containers.size(), 2u);
    const container& j = p.spec.containers[0];
    ASSERT_NE(find_mount(j, "/__w"), nullptr);
    EXPECT_EQ(find_mount(j, "/__w")->sub_path, "");
    EXPECT_EQ(find_mount(j, "/__e")->sub_path, "externals");
    EXPECT_EQ(find_mount(j, "/github/home")->sub_path, "_temp/_github_home");
    EXPECT_EQ(find_mount(j, "/github/workflow")->sub_path, "_temp/_github_workflow");
    const container& svc = p.spec.containers[1];
    ASSERT_EQ(svc.volume_mounts.size(), 1u);
    EXPECT_EQ(svc.volume_mounts[0].mount_path, "/__w");
    ASSERT_TRUE(p.spec.affinity);
    EXPECT_EQ(p.spec.affinity->required.size(), 2u);
}

TEST(volume_spec, step_pod_takes_env_from_the_secret_and_mounts_runner_temp) {
    container_source src;
    src.image = "alpine:3";
    src.working_directory = "/github/workspace";
    src.entry_point_args = {"-c", "\"echo hi\""}; // quoted by the runner
    auto env = container_env({{"INPUT_X", "1"}});
    ASSERT_TRUE(env);
    auto sec = build_step_env_secret("runner-abc", "0123abcd", *env);
    ASSERT_TRUE(sec);
    EXPECT_EQ(sec->metadata.name, "runner-abc-secret-0123abcd");
    EXPECT_EQ(sec->metadata.labels.at("runner-pod"), "runner-abc");
    EXPECT_EQ(sec->data.at("INPUT_X"), "1");
    EXPECT_EQ(sec->data.at("GITHUB_ACTIONS"), "true");
    EXPECT_EQ(sec->data.at("CI"), "true");
    auto p = build_volume_step_pod("runner-abc", "0123abcd", src, sec->metadata.name, "app/app",
                                   {"runner-abc-work", "node-1", false});
    ASSERT_TRUE(p) << p.error().what();
    EXPECT_EQ(p->metadata.name, "runner-abc-step-0123abcd");
    EXPECT_EQ(p->metadata.labels.at("runner-pod"), "runner-abc");
    EXPECT_EQ(p->spec.restart_policy, "Never");
    const container& c = p->spec.containers.at(0);
    EXPECT_EQ(c.name, "job");
    EXPECT_TRUE(c.env.empty());
    ASSERT_EQ(c.env_from.size(), 1u);
    EXPECT_EQ(c.env_from[0].secret_name, "runner-abc-secret-0123abcd");
    EXPECT_TRUE(c.command.empty()); // the image's ENTRYPOINT
    EXPECT_EQ(c.args, (std::vector<std::string>{"-c", "echo hi"}));
    EXPECT_EQ(find_mount(c, "/github/workspace")->sub_path, "app/app");
    EXPECT_EQ(find_mount(c, "/github/runner_temp")->sub_path, "_temp");
    EXPECT_EQ(find_mount(c, "/github/file_commands")->sub_path, "_temp/_runner_file_commands");
    ASSERT_TRUE(p->spec.affinity);
    EXPECT_EQ(p->spec.affinity->preferred.size(), 2u);
}

} // namespace
} // namespace podpipe::kube
