#include "hooks/commands/env.hpp"

#include <gtest/gtest.h>

namespace podpipe::hook {
namespace {

env_map base() { return {{"ACTIONS_RUNNER_POD_NAME", "runner-abc"}}; }

TEST(hook_env, pod_name_is_required) {
    for (env_map env : {env_map{}, env_map{{"ACTIONS_RUNNER_POD_NAME", ""}}}) {
        auto r = read_env(env);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().what(), "'ACTIONS_RUNNER_POD_NAME' env is required, please contact "
                                    "your self hosted runner administrator");
        EXPECT_EQ(r.error().code, make_error_code(errc::bad_env));
    }
}

TEST(hook_env, pod_name_must_be_a_label_value) {
    for (const char* bad : {"-abc", "abc-", "a b", "a/b"}) {
        env_map env{{"ACTIONS_RUNNER_POD_NAME", bad}};
        auto r = read_env(env);
        ASSERT_FALSE(r) << bad;
        EXPECT_NE(r.error().what().find("ACTIONS_RUNNER_POD_NAME"), std::string::npos);
    }
    EXPECT_FALSE(read_env({{"ACTIONS_RUNNER_POD_NAME", std::string(64, 'a')}}));
    EXPECT_TRUE(read_env({{"ACTIONS_RUNNER_POD_NAME", std::string(63, 'a')}}));
}

TEST(hook_env, defaults) {
    auto r = read_env(base());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->runner_pod_name, "runner-abc");
    EXPECT_EQ(r->claim_name, "runner-abc-work");
    EXPECT_EQ(r->prepare_job_timeout, std::chrono::seconds(600));
    EXPECT_EQ(r->runner_image, "ghcr.io/actions/actions-runner:latest");
    EXPECT_EQ(r->heartbeat_period, std::chrono::milliseconds(5000));
    EXPECT_EQ(r->heartbeat_deadline, std::chrono::milliseconds(61000));
    EXPECT_FALSE(r->rwo);
    EXPECT_EQ(r->mode, workspace_mode::stream);
    EXPECT_TRUE(r->template_path.empty());
    EXPECT_EQ(r->compression_level, auto_compression_level);
    EXPECT_EQ(r->threads, 0u);
    EXPECT_EQ(r->memory_budget_bytes, std::size_t{256} << 20);
    EXPECT_EQ(r->recv_path, "/__e/podpipe");
    EXPECT_TRUE(r->warnings.empty());
}

TEST(hook_env, reference_variables_are_read) {
    env_map env = base();
    env["ACTIONS_RUNNER_CLAIM_NAME"] = "my-claim";
    env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"] = "/etc/hook/template.yaml";
    env["ACTIONS_RUNNER_KUBERNETES_NAMESPACE"] = "arc";
    env["ACTIONS_RUNNER_IMAGE"] = "runner:2.330";
    env["ACTIONS_RUNNER_HOOK_RWO"] = "true";
    env["ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"] = "true";
    env["ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"] = "10abc";
    env["RUNNER_WORKSPACE"] = "/home/runner/_work/repo";
    env["GITHUB_WORKSPACE"] = "/home/runner/_work/repo/repo";
    env["RUNNER_TEMP"] = "/home/runner/_work/_temp";
    auto r = read_env(env);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->claim_name, "my-claim");
    EXPECT_EQ(r->template_path, "/etc/hook/template.yaml");
    EXPECT_EQ(r->namespace_name, "arc");
    EXPECT_EQ(r->runner_image, "runner:2.330");
    EXPECT_TRUE(r->rwo);
    EXPECT_TRUE(r->require_job_container);
    EXPECT_EQ(r->prepare_job_timeout, std::chrono::seconds(10));
    EXPECT_EQ(*r->work_root(), "/home/runner/_work");
    EXPECT_EQ(r->github_workspace, "/home/runner/_work/repo/repo");
    EXPECT_EQ(r->runner_temp, "/home/runner/_work/_temp");
}

TEST(hook_env, rwo_only_for_exact_true) {
    for (const char* v : {"TRUE", "1", "yes", "true "}) {
        env_map env = base();
        env["ACTIONS_RUNNER_HOOK_RWO"] = v;
        EXPECT_FALSE(read_env(env)->rwo) << v;
    }
}

TEST(hook_env, old_scheduler_knobs_are_noticed_when_set) {
    env_map env = base();
    EXPECT_TRUE(read_env(env)->old_scheduler_knobs.empty());
    env["ACTIONS_RUNNER_DISABLE_KUBE_SCHEDULER"] = "true";
    env["ACTIONS_RUNNER_USE_KUBE_SCHEDULER"] = "";
    EXPECT_EQ(read_env(env)->old_scheduler_knobs,
              std::vector<std::string>{"ACTIONS_RUNNER_DISABLE_KUBE_SCHEDULER"});
    env["ACTIONS_RUNNER_USE_KUBE_SCHEDULER"] = "false";
    EXPECT_EQ(read_env(env)->old_scheduler_knobs.size(), 2U);
}

TEST(hook_env, invalid_timeout_warns_and_falls_back) {
    for (const char* v : {"0", "-5", "abc", ""}) {
        env_map env = base();
        env["ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"] = v;
        auto r = read_env(env);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->prepare_job_timeout, std::chrono::seconds(600)) << v;
        ASSERT_EQ(r->warnings.size(), 1u);
        EXPECT_EQ(r->warnings[0],
                  std::string("Prepare job timeout is invalid (\"") + v + "\"): use an int > 0");
    }
}

// Spec §8 items 44-51: the heartbeat period parse.
TEST(hook_env, heartbeat_period_parse) {
    const std::pair<const char*, long> cases[] = {{"", 5000},      {"abc", 5000}, {"0", 5000},
                                                  {"-100", 5000},  {"NaN", 5000}, {"3000", 3000},
                                                  {"1500.9", 1500}};
    for (const auto& [in, want] : cases) {
        env_map env = base();
        env["ACTIONS_RUNNER_HEARTBEAT_PERIOD_MS"] = in;
        auto r = read_env(env);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->heartbeat_period.count(), want) << in;
        EXPECT_EQ(r->heartbeat_deadline.count(), 12 * want + 1000) << in;
    }
    env_map env = base();
    env["ACTIONS_RUNNER_HEARTBEAT_DEADLINE_MS"] = "2500";
    EXPECT_EQ(read_env(env)->heartbeat_deadline.count(), 2500);
}

TEST(hook_env, workspace_mode) {
    env_map env = base();
    env["PODPIPE_WORKSPACE_MODE"] = "volume";
    EXPECT_EQ(read_env(env)->mode, workspace_mode::volume);
    env["PODPIPE_WORKSPACE_MODE"] = "stream";
    EXPECT_EQ(read_env(env)->mode, workspace_mode::stream);
    env["PODPIPE_WORKSPACE_MODE"] = "pvc";
    auto r = read_env(env);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what(),
              "PODPIPE_WORKSPACE_MODE=\"pvc\" is invalid: expected stream or volume");
}

TEST(hook_env, podpipe_settings) {
    env_map env = base();
    env["PODPIPE_COMPRESSION_LEVEL"] = "6";
    env["PODPIPE_THREADS"] = "4";
    env["PODPIPE_POD_THREADS"] = "2";
    env["PODPIPE_STEP_REATTACH_SECONDS"] = "90";
    env["PODPIPE_MEMORY_BUDGET"] = "64Mi";
    env["PODPIPE_RECV_PATH"] = "/opt/podpipe";
    env["PODPIPE_CHUNK_SIZE"] = "4Mi";
    auto r = read_env(env);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->chunk_bytes, std::size_t{4} << 20);
    EXPECT_EQ(r->compression_level, 6);
    EXPECT_EQ(r->threads, 4u);
    EXPECT_EQ(r->pod_threads, 2u);
    EXPECT_EQ(r->step_reattach, std::chrono::seconds(90));
    EXPECT_EQ(r->memory_budget_bytes, std::size_t{64} << 20);
    EXPECT_EQ(r->recv_path, "/opt/podpipe");
    env["PODPIPE_COMPRESSION_LEVEL"] = "auto";
    EXPECT_EQ(read_env(env)->compression_level, auto_compression_level);
}

TEST(hook_env, podpipe_settings_validation) {
    const std::pair<const char*, const char*> bad[] = {
        {"PODPIPE_COMPRESSION_LEVEL", "13"}, {"PODPIPE_COMPRESSION_LEVEL", "6x"},
        {"PODPIPE_THREADS", "-1"},           {"PODPIPE_THREADS", "1000"},
        {"PODPIPE_POD_THREADS", "257"},      {"PODPIPE_POD_THREADS", "two"},
        {"PODPIPE_STEP_REATTACH_SECONDS", "-1"}, {"PODPIPE_STEP_REATTACH_SECONDS", "5m"},
        {"PODPIPE_MEMORY_BUDGET", "1Mi"},    {"PODPIPE_MEMORY_BUDGET", "64MB"},
        {"PODPIPE_RECV_PATH", "podpipe"},     {"PODPIPE_CHUNK_SIZE", "32Ki"},
        {"PODPIPE_CHUNK_SIZE", "16Mi"},      {"PODPIPE_CHUNK_SIZE", "1M"}};
    for (const auto& [k, v] : bad) {
        env_map env = base();
        env[k] = v;
        auto r = read_env(env);
        ASSERT_FALSE(r) << k << "=" << v;
        EXPECT_NE(r.error().what().find(k), std::string::npos);
    }
}

TEST(hook_env, work_root) {
    hook_env e;
    EXPECT_FALSE(e.work_root());
    e.runner_workspace = "relative/repo";
    EXPECT_FALSE(e.work_root());
    e.runner_workspace = "/home/runner/_work/repo/";
    EXPECT_EQ(*e.work_root(), "/home/runner/_work");
}

TEST(hook_env, from_environ) {
    const char* envp[] = {"A=1", "B=x=y", "NOEQ", "=bad", "C=", nullptr};
    const env_map env = env_from_environ(envp);
    EXPECT_EQ(env, (env_map{{"A", "1"}, {"B", "x=y"}, {"C", ""}}));
}

TEST(hook_env, parse_leading_int) {
    EXPECT_EQ(parse_leading_int("  42abc"), 42);
    EXPECT_EQ(parse_leading_int("-7"), -7);
    EXPECT_FALSE(parse_leading_int("x1"));
    EXPECT_FALSE(parse_leading_int("99999999999999999999999"));
}

} // namespace
} // namespace podpipe::hook
