#include "hooks/commands/input.hpp"

#include <gtest/gtest.h>

namespace podpipe::hook {
namespace {

// The spec's hand-made prepare_job example (§2.2), pretty-printed over several lines.
constexpr std::string_view prepare_example =
    R"({"command":"prepare_job","responseFile":"/home/runner/_work/_temp/_runner_hook_responses/7f0c.json","state":null,
 "args":{"container":{"image":"node:22","entryPoint":null,"entryPointArgs":[],"workingDirectory":"/__w/app/app",
   "createOptions":null,"registry":null,"environmentVariables":{"NODE_ENV":"dev"},"portMappings":["3000:3000"],
   "systemMountVolumes":[],"userMountVolumes":[{"sourceVolumePath":"/home/runner/_work/app/app/data","targetVolumePath":"/data","readOnly":false}]},
  "services":[{"image":"redis:7","entryPoint":null,"entryPointArgs":[],"environmentVariables":{},"portMappings":["6379"],
   "systemMountVolumes":[],"userMountVolumes":[]}]}})";

TEST(hook_input, prepare_job_example) {
    auto r = parse_input(prepare_example);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->cmd, command::prepare_job);
    EXPECT_EQ(r->response_file, "/home/runner/_work/_temp/_runner_hook_responses/7f0c.json");
    EXPECT_FALSE(r->state);
    const auto& a = std::get<prepare_job_args>(r->args);
    ASSERT_TRUE(a.container);
    EXPECT_EQ(a.container->image, "node:22");
    EXPECT_TRUE(a.container->entry_point.empty());
    EXPECT_EQ(a.container->working_directory, "/__w/app/app");
    EXPECT_FALSE(a.container->registry);
    EXPECT_FALSE(a.container->create_options);
    EXPECT_EQ(a.container->environment_variables, (env_list{{"NODE_ENV", "dev"}}));
    EXPECT_EQ(a.container->port_mappings, (std::vector<std::string>{"3000:3000"}));
    ASSERT_EQ(a.container->user_mount_volumes.size(), 1u);
    EXPECT_EQ(a.container->user_mount_volumes[0].source_volume_path,
              "/home/runner/_work/app/app/data");
    EXPECT_EQ(a.container->user_mount_volumes[0].target_volume_path, "/data");
    EXPECT_FALSE(a.container->user_mount_volumes[0].read_only);
    ASSERT_EQ(a.services.size(), 1u);
    EXPECT_EQ(a.services[0].image, "redis:7");
    EXPECT_EQ(a.services[0].port_mappings, (std::vector<std::string>{"6379"}));
}

TEST(hook_input, registry_and_env_order) {
    auto r = parse_input(R"({"command":"prepare_job","responseFile":"/r","args":{"container":{
        "image":"ghcr.io/o/i:1","registry":{"username":"u","password":"p","serverUrl":"ghcr.io"},
        "environmentVariables":{"Z":"1","A":"2","N":null}},"services":null}})");
    ASSERT_TRUE(r) << r.error().what();
    const auto& a = std::get<prepare_job_args>(r->args);
    ASSERT_TRUE(a.container->registry);
    EXPECT_EQ(a.container->registry->username, "u");
    EXPECT_EQ(a.container->registry->password, "p");
    EXPECT_EQ(a.container->registry->server_url, "ghcr.io");
    EXPECT_EQ(a.container->environment_variables, (env_list{{"Z", "1"}, {"A", "2"}, {"N", ""}}));
    EXPECT_TRUE(a.services.empty());
}

TEST(hook_input, prepare_job_without_container) {
    auto r = parse_input(R"({"command":"prepare_job","responseFile":"/r","args":{"services":[]}})");
    ASSERT_TRUE(r);
    EXPECT_FALSE(std::get<prepare_job_args>(r->args).container);
}

TEST(hook_input, run_script_step) {
    auto r = parse_input(R"({"command":"run_script_step","responseFile":"/r",
        "state":{"jobPod":"runner-abc-workflow"},
        "args":{"entryPoint":"bash","entryPointArgs":["-e","/__w/_temp/example-script.sh"],
        "environmentVariables":{"NODE_ENV":"development"},"prependPath":["/foo/bar","bar/foo"],
        "workingDirectory":"/__w/repo/repo"}})");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->cmd, command::run_script_step);
    ASSERT_TRUE(r->state);
    EXPECT_EQ(r->state->job_pod, "runner-abc-workflow");
    const auto& a = std::get<run_script_step_args>(r->args);
    EXPECT_EQ(a.entry_point, "bash");
    EXPECT_EQ(a.entry_point_args, (std::vector<std::string>{"-e", "/__w/_temp/example-script.sh"}));
    EXPECT_EQ(a.prepend_path, (std::vector<std::string>{"/foo/bar", "bar/foo"}));
    EXPECT_EQ(a.working_directory, "/__w/repo/repo");
    EXPECT_EQ(a.environment_variables, (env_list{{"NODE_ENV", "development"}}));
}

TEST(hook_input, prepend_path_as_one_string) {
    auto r = parse_input(R"({"command":"run_script_step","args":{"prependPath":"/old/runner"}})");
    ASSERT_TRUE(r);
    EXPECT_EQ(std::get<run_script_step_args>(r->args).prepend_path,
              (std::vector<std::string>{"/old/runner"}));
}

TEST(hook_input, run_container_step) {
    auto r = parse_input(R"({"command":"run_container_step","responseFile":"/r",
        "state":{"jobPod":"p","podpipe":{"namespace":"arc","permissionsChecked":true,"pullSecret":"s"}},
        "args":{"image":"node:22","dockerfile":null,"entryPoint":"bash",
        "entryPointArgs":["-e","/__w/_temp/example-script.sh"],"workingDirectory":"/__w/repo/repo",
        "environmentVariables":{"NODE_ENV":"development"},"prependPath":["/foo/bar","bar/foo"],
        "registry":null,"portMappings":["8080:8080"]}})");
    ASSERT_TRUE(r) << r.error().what();
    const auto& c = std::get<container_request>(r->args);
    EXPECT_EQ(c.image, "node:22");
    EXPECT_FALSE(c.dockerfile);
    EXPECT_EQ(c.entry_point, "bash");
    EXPECT_EQ(c.prepend_path.size(), 2u);
    EXPECT_EQ(r->state->namespace_name, "arc");
    EXPECT_TRUE(r->state->permissions_checked);
    EXPECT_EQ(r->state->pull_secret, "s");
    const kube::container_source src = to_container_source(c);
    EXPECT_EQ(src.image, "node:22");
    EXPECT_EQ(src.entry_point_args.size(), 2u);
    EXPECT_EQ(src.port_mappings, (std::vector<std::string>{"8080:8080"}));
}

TEST(hook_input, dockerfile_action) {
    auto r = parse_input(R"({"command":"run_container_step","args":{"image":null,
        "dockerfile":"/home/runner/_work/_actions/o/a/v1/Dockerfile"}})");
    ASSERT_TRUE(r);
    const auto& c = std::get<container_request>(r->args);
    EXPECT_TRUE(c.image.empty());
    EXPECT_EQ(c.dockerfile, "/home/runner/_work/_actions/o/a/v1/Dockerfile");
}

TEST(hook_input, cleanup_job_with_and_without_args) {
    for (std::string_view in : {R"({"command":"cleanup_job","args":{},"state":{"jobPod":"p"}})",
                                R"({"command":"cleanup_job"})"}) {
        auto r = parse_input(in);
        ASSERT_TRUE(r) << in;
        EXPECT_EQ(r->cmd, command::cleanup_job);
        EXPECT_TRUE(std::holds_alternative<cleanup_job_args>(r->args));
    }
}

TEST(hook_input, unknown_command) {
    auto r = parse_input(R"({"command":"prepare_jobs","args":{}})");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(errc::unknown_command));
    EXPECT_EQ(r.error().what(), "Command not recognized: prepare_jobs");
}

TEST(hook_input, malformed_json) {
    for (std::string_view in : {"", "   \n", "{", "[1,2]", "null", "{\"command\":", "not json"}) {
        auto r = parse_input(in);
        ASSERT_FALSE(r) << in;
        EXPECT_EQ(r.error().code, make_error_code(errc::bad_input)) << in;
        EXPECT_TRUE(r.error().code == condition::bad_input);
    }
}

TEST(hook_input, wrong_types_name_the_field) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {R"({"args":{}})", "command: expected a string"},
        {R"({"command":7})", "command: expected a string"},
        {R"({"command":"cleanup_job","responseFile":3})", "responseFile: expected a string"},
        {R"({"command":"cleanup_job","state":"x"})", "state: expected an object"},
        {R"({"command":"cleanup_job","args":[]})", "args: expected an object"},
        {R"({"command":"prepare_job","args":{"container":{"image":1}}})",
         "args.container.image: expected a string"},
        {R"({"command":"prepare_job","args":{"services":[{"image":"a"},{"portMappings":["1",2]}]}})",
         "args.services[1].portMappings[1]: expected a string"},
        {R"({"command":"prepare_job","args":{"services":{}}})", "args.services: expected an array"},
        {R"({"command":"prepare_job","args":{"services":[3]}})",
         "args.services[0]: expected an object"},
        {R"({"command":"prepare_job","args":{"container":{"environmentVariables":{"A":1}}}})",
         "args.container.environmentVariables.A: expected a string"},
        {R"({"command":"prepare_job","args":{"container":{"userMountVolumes":[{"readOnly":"no"}]}}})",
         "args.container.userMountVolumes[0].readOnly: expected a boolean"},
        {R"({"command":"run_script_step","args":{"prependPath":[1]}})",
         "args.prependPath[0]: expected a string"},
        {R"({"command":"run_script_step","args":{"entryPointArgs":"-e"}})",
         "args.entryPointArgs: expected an array of strings"},
        {R"({"command":"run_container_step","state":{"jobPod":5}})",
         "state.jobPod: expected a string"},
    };
    for (const auto& [in, want] : cases) {
        auto r = parse_input(in);
        ASSERT_FALSE(r) << in;
        EXPECT_EQ(r.error().what(), "invalid hook input on stdin: " + std::string(want)) << in;
    }
}

TEST(hook_input, last_line_rule_of_the_reference) {
    // Stray output before the JSON line (the reference reads only the last line).
    auto r = parse_input("warming up\n{\"command\":\"cleanup_job\"}\n");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->cmd, command::cleanup_job);
}

TEST(hook_input, deep_nesting_and_huge_input_are_refused) {
    std::string deep = R"({"command":"cleanup_job","x":)";
    deep += std::string(1000, '[') + std::string(1000, ']') + "}";
    EXPECT_FALSE(parse_input(deep));
    EXPECT_FALSE(parse_input(std::string(max_input_bytes + 1, ' ')));
}

TEST(hook_input, unknown_keys_are_ignored) {
    auto r = parse_input(R"({"command":"prepare_job","future":{"x":[1]},"args":{"container":
        {"image":"a","contextName":"c","newField":true}}})");
    ASSERT_TRUE(r) << r.error().what();
}

TEST(hook_input, command_names_round_trip) {
    for (command c : {command::prepare_job, command::cleanup_job, command::run_script_step,
                      command::run_container_step})
        EXPECT_EQ(command_from_string(to_string(c)), c);
}

} // namespace
} // namespace podpipe::hook
