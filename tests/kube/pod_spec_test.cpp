#include "kube/base64.hpp"
#include "kube/json.hpp"
#include "kube/pod_spec.hpp"

#include <regex>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace podpipe::kube {
namespace {

namespace dom = simdjson::dom;

const std::string name63(63, 'r');

std::string error_text(const api_error& e) { return e.what(); }

// ---- names and labels (spec §8 items 4-19) ----

TEST(pod_spec_names, runner_label_needs_a_pod_name) {
    auto r = runner_label_selector("");
    ASSERT_FALSE(r);
    EXPECT_EQ(error_text(r.error()), "'ACTIONS_RUNNER_POD_NAME' env is required, please contact "
                                     "your self hosted runner administrator");
    EXPECT_TRUE(r.error().code == condition::bad_input);
}

TEST(pod_spec_names, runner_label_is_key_equals_pod_name) {
    EXPECT_FALSE(runner_label_key.empty());
    auto r = runner_label_selector("runner-abc");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, "runner-pod=runner-abc");
}

TEST(pod_spec_names, job_pod_name_appends_workflow_and_truncates_to_54) {
    EXPECT_FALSE(job_pod_name(""));
    EXPECT_EQ(*job_pod_name("test"), "test-workflow");
    auto long_name = job_pod_name(name63);
    ASSERT_TRUE(long_name);
    EXPECT_EQ(*long_name, name63.substr(0, 54) + "-workflow");
    EXPECT_EQ(long_name->size(), max_name_length);
}

TEST(pod_spec_names, secret_and_step_names_end_in_random_suffix_within_63) {
    const std::regex secret_re(".*-secret-[a-z0-9]{8,}$");
    const std::regex step_re(".*-step-[a-z0-9]{8,}$");
    for (const std::string& runner : {std::string("test"), name63}) {
        auto s = secret_name(runner, random_name_suffix());
        ASSERT_TRUE(s);
        EXPECT_TRUE(std::regex_match(*s, secret_re)) << *s;
        EXPECT_LE(s->size(), max_name_length);
        auto p = step_pod_name(runner, random_name_suffix());
        ASSERT_TRUE(p);
        EXPECT_TRUE(std::regex_match(*p, step_re)) << *p;
        EXPECT_LE(p->size(), max_name_length);
    }
    EXPECT_EQ(*secret_name(name63, "0123abcd"), name63.substr(0, 47) + "-secret-0123abcd");
    EXPECT_EQ(*step_pod_name(name63, "0123abcd"), name63.substr(0, 49) + "-step-0123abcd");
    EXPECT_FALSE(secret_name("", "0123abcd"));
    EXPECT_FALSE(step_pod_name("", "0123abcd"));
}

TEST(pod_spec_names, random_suffixes_are_hex_and_differ) {
    const std::string a = random_name_suffix();
    const std::string b = random_name_suffix();
    EXPECT_TRUE(std::regex_match(a, std::regex("[0-9a-f]{8}")));
    // Two 32-bit draws collide with probability 2^-32.
    EXPECT_NE(a, b);
}

TEST(pod_spec_names, constants) {
    EXPECT_FALSE(job_container_name.empty());
    EXPECT_GT(max_name_length, 0u);
    EXPECT_GT(name_suffix_length, 0u);
}

// ---- port mappings (§3.1.1, items 69-72) ----

TEST(pod_spec_ports, valid_forms) {
    auto a = parse_port_mapping("8080:80");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->container_port, 80);
    EXPECT_EQ(a->host_port, 8080);
    EXPECT_EQ(a->protocol, "TCP");
    auto b = parse_port_mapping("8080:80/udp");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->protocol, "UDP");
    EXPECT_EQ(b->host_port, 8080);
    auto c = parse_port_mapping("8080/udp");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->container_port, 8080);
    EXPECT_FALSE(c->host_port);
    EXPECT_EQ(c->protocol, "UDP");
    auto d = parse_port_mapping("8080");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->container_port, 8080);
    EXPECT_FALSE(d->host_port);
    EXPECT_EQ(d->protocol, "TCP");
    EXPECT_TRUE(parse_port_mapping("1:65535/sctp"));
}

TEST(pod_spec_ports, out_of_range_and_empty_numbers_fail) {
    for (const char* in :
         {"65536", "0", "65536/udp", "0/udp", "1:65536", "65536:1", "1:65536/tcp", "65536:1/tcp",
          "1:", ":1", "1:/tcp", ":1/tcp", "", "1.5", "8000-8010", "-1", "+80", "80 "}) {
        auto r = parse_port_mapping(in);
        EXPECT_FALSE(r) << in;
        if (!r) {
            EXPECT_EQ(r.error().code, make_error_code(spec_errc::bad_port)) << in;
        }
    }
    EXPECT_EQ(error_text(parse_port_mapping("65536").error()), "invalid container port: 65536");
    EXPECT_EQ(error_text(parse_port_mapping("1:").error()), "invalid container port: ");
}

TEST(pod_spec_ports, too_many_separators_fail_with_reference_texts) {
    EXPECT_EQ(error_text(parse_port_mapping("1:1:1").error()),
              "ports should have at most one \":\" separator");
    EXPECT_EQ(error_text(parse_port_mapping("127.0.0.1:8080:80").error()),
              "ports should have at most one \":\" separator");
    EXPECT_EQ(error_text(parse_port_mapping("1:1/tcp/udp").error()),
              "Unexpected port format: 1:1/tcp/udp");
    EXPECT_EQ(error_text(parse_port_mapping("1/tcp/udp").error()),
              "Unexpected port format: 1/tcp/udp");
    // Kubernetes knows TCP, UDP and SCTP only; refuse early instead of a 422 at pod creation.
    EXPECT_FALSE(parse_port_mapping("80/http"));
}

// ---- argument tokenisation (§3.1.2) ----

TEST(pod_spec_args, runner_quoted_fragments_are_rejoined) {
    auto r = fix_args({"\"-f\"", "\"/dev/null\""});
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, (std::vector<std::string>{"-f", "/dev/null"}));
    auto spaced = fix_args({"\"arg", "2\"", "\"say", "\\\"hi\\\"\""});
    ASSERT_TRUE(spaced);
    EXPECT_EQ(*spaced, (std::vector<std::string>{"arg 2", "say \"hi\""}));
}

TEST(pod_spec_args, sh_dash_c_is_kept_verbatim) {
    const std::vector<std::string> argv{"sh", "-c", "echo 'a  b' \"$HOME\""};
    auto r = fix_args(argv);
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, argv);
}

TEST(pod_spec_args, posix_rules) {
    auto r = shell_split("a 'b  c' \"d\\$e\\x\" f\\ g '' \"\" h\\\\");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, (std::vector<std::string>{"a", "b  c", "d$e\\x", "f g", "", "", "h\\"}));
    auto empty = shell_split("   ");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->empty());
    auto adj = shell_split("x'y'\"z\"");
    ASSERT_TRUE(adj);
    EXPECT_EQ(*adj, (std::vector<std::string>{"xyz"}));
}

TEST(pod_spec_args, unterminated_quotes_fail) {
    EXPECT_EQ(shell_split("'abc").error().code, make_error_code(spec_errc::bad_args));
    EXPECT_EQ(shell_split("\"abc\\\"").error().code, make_error_code(spec_errc::bad_args));
    EXPECT_FALSE(fix_args({"\"arg"}));
}

// ---- service container names (items 73, 74, 94) ----

TEST(pod_spec_service_names, from_image_basename) {
    EXPECT_EQ(*container_name_for_image("public.ecr.aws/localstack/localstack"), "localstack");
    EXPECT_EQ(*container_name_for_image("public.ecr.aws/url/with/multiple/slashes/postgres:latest"),
              "postgres");
    EXPECT_EQ(*container_name_for_image("postgres"), "postgres");
    EXPECT_EQ(*container_name_for_image("postgres:latest"), "postgres");
    EXPECT_EQ(*container_name_for_image("localstack/localstack"), "localstack");
    EXPECT_EQ(*container_name_for_image("localstack/localstack:latest"), "localstack");
}

TEST(pod_spec_service_names, invalid_images_fail_with_reference_text) {
    EXPECT_EQ(error_text(container_name_for_image("localstack/localstack/:latest").error()),
              "Image definition 'localstack/localstack/:latest' is invalid");
    EXPECT_EQ(error_text(container_name_for_image(":latest").error()),
              "Image definition ':latest' is invalid");
    EXPECT_FALSE(container_name_for_image(""));
}

TEST(pod_spec_service_names, made_dns_labels) {
    // Digests, upper case, '_' and '.' would make an invalid pod upstream.
    EXPECT_EQ(*container_name_for_image("redis@sha256:0123"), "redis");
    EXPECT_EQ(*container_name_for_image("ghcr.io/Org/My_Service.v2:1"), "my-service-v2");
    auto long_name = container_name_for_image(std::string(100, 'a'));
    ASSERT_TRUE(long_name);
    EXPECT_LE(long_name->size() + 4, max_name_length);
}

TEST(pod_spec_service_names, duplicates_get_indexes) {
    auto r = service_container_names({"redis", "postgres:16", "docker.io/library/redis:7"});
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, (std::vector<std::string>{"redis-0", "postgres", "redis-1"}));
    auto job = service_container_names({"myorg/job"});
    ASSERT_TRUE(job);
    EXPECT_NE((*job)[0], "job"); // the job container owns that name
}

// ---- env (§3.1, items 85, 86) ----

std::vector<std::pair<std::string, std::string>> names_values(const std::vector<env_var>& env) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& e : env)
        out.emplace_back(e.name, e.value);
    return out;
}

TEST(pod_spec_env, adds_github_actions_and_ci) {
    auto r = container_env({{"NODE_ENV", "development"}, {"HOME", "/github/home"}});
    ASSERT_TRUE(r);
    EXPECT_EQ(names_values(*r),
              (std::vector<std::pair<std::string, std::string>>{
                  {"NODE_ENV", "development"}, {"GITHUB_ACTIONS", "true"}, {"CI", "true"}}));
}

TEST(pod_spec_env, user_ci_is_kept_and_github_actions_not_duplicated) {
    auto r = container_env({{"CI", "false"}, {"GITHUB_ACTIONS", "no"}, {"EMPTY", ""}});
    ASSERT_TRUE(r);
    EXPECT_EQ(names_values(*r), (std::vector<std::pair<std::string, std::string>>{
                                    {"CI", "false"}, {"EMPTY", ""}, {"GITHUB_ACTIONS", "true"}}));
}

TEST(pod_spec_env, invalid_keys_fail) {
    for (const char* key : {"", "A=B", "A'", "A\"", "$A", "1ABC", "A B"}) {
        auto r = container_env({{key, "v"}});
        EXPECT_FALSE(r) << key;
        if (!r) {
            EXPECT_EQ(r.error().code, make_error_code(spec_errc::bad_env));
        }
    }
    EXPECT_TRUE(container_env({{"a.b-c_D9", "v"}}));
}

// ---- containers and the job pod (§3.1, §4.1) ----

container_source job_fixture() {
    container_source s;
    s.image = "node:22";
    s.working_directory = "/__w/repo/repo";
    s.environment = {{"NODE_ENV", "development"}};
    s.port_mappings = {"80:8080"};
    return s;
}

container_source redis_fixture() {
    container_source s;
    s.image = "redis";
    s.port_mappings = {"8080:80", "8088:8080"};
    return s;
}

TEST(pod_spec_containers, job_container_defaults_to_tail) {
    auto ct = build_job_container(job_fixture());
    ASSERT_TRUE(ct);
    EXPECT_EQ(ct->name, "job");
    EXPECT_EQ(ct->image, "node:22");
    EXPECT_EQ(ct->command, (std::vector<std::string>{"tail"}));
    EXPECT_EQ(ct->args, (std::vector<std::string>{"-f", "/dev/null"}));
    EXPECT_EQ(ct->working_dir, "/__w/repo/repo");
    ASSERT_EQ(ct->ports.size(), 1u);
    EXPECT_EQ(ct->ports[0].container_port, 8080);
    EXPECT_EQ(ct->ports[0].host_port, 80);
    ASSERT_EQ(ct->volume_mounts.size(), 3u);
    EXPECT_EQ(ct->volume_mounts[0].mount_path, "/__e");
    EXPECT_EQ(ct->volume_mounts[1].mount_path, "/__w");
    EXPECT_EQ(ct->volume_mounts[2].mount_path, "/github");
}

TEST(pod_spec_containers, entrypoint_and_args_are_tokenised) {
    container_source s = job_fixture();
    s.entry_point = "bash";
    s.entry_point_args = {"-c", "\"echo", "hi\""};
    auto ct = build_job_container(s);
    ASSERT_TRUE(ct);
    EXPECT_EQ(ct->command, (std::vector<std::string>{"bash"}));
    EXPECT_EQ(ct->args, (std::vector<std::string>{"-c", "echo hi"}));
}

TEST(pod_spec_containers, service_without_entrypoint_has_no_command_or_args) {
    auto ct = build_service_container(redis_fixture(), "redis");
    ASSERT_TRUE(ct);
    EXPECT_TRUE(ct->command.empty());
    EXPECT_TRUE(ct->args.empty());
    EXPECT_TRUE(ct->working_dir.empty());
    EXPECT_EQ(ct->ports.size(), 2u);
}

TEST(pod_spec_containers, bad_port_in_request_fails_the_build) {
    container_source s = redis_fixture();
    s.port_mappings = {"1:1:1"};
    EXPECT_EQ(build_service_container(s, "redis").error().code,
              make_error_code(spec_errc::bad_port));
}

dom::element parse_json(dom::parser& parser, const std::string& text) {
    dom::element e;
    EXPECT_EQ(parser.parse(text).get(e), simdjson::SUCCESS) << text;
    return e;
}

std::vector<std::string> strings_at(dom::element e) {
    std::vector<std::string> out;
    for (dom::element s : e.get_array())
        out.emplace_back(std::string_view(s.get_string()));
    return out;
}

TEST(pod_spec_job_pod, serializes_to_the_documented_manifest) {
    job_pod_options opts;
    opts.runner_pod_name = "runner-abc";
    opts.runner_image = "ghcr.io/actions/actions-runner:2.330.0";
    opts.workspace_tail = "repo/repo";
    opts.pull_secret_name = "runner-abc-secret-0123abcd";
    const container_source job = job_fixture();
    auto built = build_job_pod(opts, &job, {redis_fixture()});
    ASSERT_TRUE(built) << built.error().what();
    EXPECT_EQ(built->service_names, (std::vector<std::string>{"redis"}));

    const std::string json = to_json(built->job_pod);
    dom::parser parser;
    dom::element root = parse_json(parser, json);
    EXPECT_EQ(std::string_view(root["metadata"]["name"]), "runner-abc-workflow");
    EXPECT_EQ(std::string_view(root["metadata"]["labels"]["runner-pod"]), "runner-abc");
    dom::element spec = root["spec"];
    EXPECT_EQ(std::string_view(spec["restartPolicy"]), "Never");
    EXPECT_EQ(int64_t(spec["securityContext"]["fsGroup"]), 1001);
    EXPECT_EQ(std::string_view(spec["imagePullSecrets"].at(0)["name"]),
              "runner-abc-secret-0123abcd");

    dom::element init = spec["initContainers"].at(0);
    EXPECT_EQ(std::string_view(init["name"]), "fs-init");
    EXPECT_EQ(std::string_view(init["image"]), "ghcr.io/actions/actions-runner:2.330.0");
    const auto cmd = strings_at(init["command"]);
    ASSERT_EQ(cmd.size(), 3u);
    EXPECT_EQ(cmd[0], "sh");
    EXPECT_EQ(cmd[1], "-c");
    EXPECT_NE(cmd[2].find("cp -a /home/runner/externals/. /mnt/externals/"), std::string::npos);
    EXPECT_NE(cmd[2].find("mkdir -p /mnt/work/repo/repo"), std::string::npos);
    EXPECT_EQ(int64_t(init["securityContext"]["runAsUser"]), 1001);
    EXPECT_EQ(int64_t(init["securityContext"]["runAsGroup"]), 1001);
    EXPECT_EQ(std::string_view(init["volumeMounts"].at(0)["mountPath"]), "/mnt/externals");

    dom::array containers = spec["containers"];
    ASSERT_EQ(containers.size(), 2u);
    dom::element jobc = containers.at(0);
    EXPECT_EQ(std::string_view(jobc["name"]), "job");
    EXPECT_EQ(std::string_view(jobc["workingDir"]), "/__w/repo/repo");
    EXPECT_EQ(int64_t(jobc["ports"].at(0)["containerPort"]), 8080);
    EXPECT_EQ(int64_t(jobc["ports"].at(0)["hostPort"]), 80);
    std::map<std::string, std::string> env;
    for (dom::element e : jobc["env"].get_array())
        env[std::string(std::string_view(e["name"]))] = std::string(std::string_view(e["value"]));
    EXPECT_EQ(env["CI"], "true");
    EXPECT_EQ(env["GITHUB_ACTIONS"], "true");
    EXPECT_EQ(env["NODE_ENV"], "development");
    dom::element redis = containers.at(1);
    EXPECT_EQ(std::string_view(redis["name"]), "redis");
    EXPECT_TRUE(redis["command"].error() == simdjson::NO_SUCH_FIELD);
    EXPECT_TRUE(redis["args"].error() == simdjson::NO_SUCH_FIELD);
    EXPECT_EQ(std::string_view(redis["volumeMounts"].at(1)["mountPath"]), "/__w");

    std::vector<std::string> vols;
    for (dom::element v : spec["volumes"].get_array()) {
        vols.emplace_back(std::string_view(v["name"]));
        EXPECT_EQ(v["emptyDir"].get_object().error(), simdjson::SUCCESS);
    }
    EXPECT_EQ(vols, (std::vector<std::string>{"externals", "github", "work"}));
}

TEST(pod_spec_job_pod, no_workspace_tail_no_mkdir_and_no_secret) {
    job_pod_options opts;
    opts.runner_pod_name = "r";
    const container_source job = job_fixture();
    auto built = build_job_pod(opts, &job, {});
    ASSERT_TRUE(built);
    const auto& init = built->job_pod.spec.init_containers.at(0);
    EXPECT_EQ(init.command.at(2).find("/mnt/work/"), std::string::npos);
    EXPECT_EQ(init.image, default_runner_image);
    EXPECT_TRUE(built->job_pod.spec.image_pull_secrets.empty());
}

TEST(pod_spec_job_pod, services_only_and_no_containers) {
    job_pod_options opts;
    opts.runner_pod_name = "r";
    container_source imageless = job_fixture();
    imageless.image.clear();
    auto services_only = build_job_pod(opts, &imageless, {redis_fixture()});
    ASSERT_TRUE(services_only);
    ASSERT_EQ(services_only->job_pod.spec.containers.size(), 1u);
    EXPECT_EQ(services_only->job_pod.spec.containers[0].name, "redis");
    auto none = build_job_pod(opts, &imageless, {});
    ASSERT_FALSE(none);
    EXPECT_EQ(error_text(none.error()), "No containers exist, skipping hook invocation");
    EXPECT_FALSE(build_job_pod(opts, nullptr, {}));
}

TEST(pod_spec_job_pod, two_redis_services_are_indexed) {
    job_pod_options opts;
    opts.runner_pod_name = "r";
    container_source job = job_fixture();
    job.port_mappings = {"31080:8080"};
    container_source a = redis_fixture(), b = redis_fixture();
    a.port_mappings = {"31081:80", "31082:8080"};
    b.port_mappings = {"31083:80", "31084:8080"};
    auto built = build_job_pod(opts, &job, {a, b});
    ASSERT_TRUE(built);
    const auto& cs = built->job_pod.spec.containers;
    ASSERT_EQ(cs.size(), 3u);
    EXPECT_EQ(cs[1].name, "redis-0");
    EXPECT_EQ(cs[2].name, "redis-1");
    EXPECT_EQ(cs[2].ports.at(0).host_port, 31083);
}

TEST(pod_spec_job_pod, missing_runner_name_fails) {
    const container_source job = job_fixture();
    EXPECT_EQ(build_job_pod({}, &job, {}).error().code,
              make_error_code(spec_errc::missing_runner_name));
}

TEST(pod_spec_workspace, tail_has_two_segments) {
    EXPECT_EQ(*workspace_tail("/home/runner/_work/repo/repo"), "repo/repo");
    EXPECT_EQ(*workspace_tail("/home/runner/_work/repo/repo/"), "repo/repo");
    EXPECT_EQ(error_text(workspace_tail("/repo").error()),
              "Invalid github workspace directory: /repo");
    EXPECT_FALSE(workspace_tail(""));
    EXPECT_FALSE(workspace_tail("/a/.."));
}

TEST(pod_spec_workspace, fs_init_quotes_an_unusual_workspace) {
    EXPECT_NE(fs_init_script("repo/repo").find(" && mkdir -p /mnt/work/repo/repo"),
              std::string::npos);
    const std::string script = fs_init_script("my repo/it's");
    EXPECT_NE(script.find("mkdir -p '/mnt/work/my repo/it'\\''s'"), std::string::npos) << script;
}

TEST(pod_spec_shell, quote_round_trips_through_sh) {
    for (const std::string& s :
         {std::string("plain/path-1.2"), std::string("a b"), std::string("it's"),
          std::string("$(x) `y` \\ \"z\""), std::string("")}) {
        const std::string q = shell_quote(s);
        auto back = shell_split(q);
        ASSERT_TRUE(back) << q;
        ASSERT_EQ(back->size(), 1u) << q;
        EXPECT_EQ((*back)[0], s) << q;
    }
    EXPECT_EQ(shell_quote("/__w/repo"), "/__w/repo");
}

TEST(pod_spec_step_pod, matches_section_4_3) {
    auto p = build_step_pod("runner-abc", "0123abcd", "node:22");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->metadata.name, "runner-abc-step-0123abcd");
    EXPECT_EQ(p->metadata.labels.at("runner-pod"), "runner-abc");
    EXPECT_EQ(p->spec.restart_policy, "Never");
    EXPECT_TRUE(p->spec.init_containers.empty());
    ASSERT_EQ(p->spec.containers.size(), 1u);
    const container& ct = p->spec.containers[0];
    EXPECT_EQ(ct.name, "job");
    EXPECT_EQ(ct.working_dir, "/__w");
    EXPECT_EQ(ct.command, (std::vector<std::string>{"tail"}));
    EXPECT_EQ(ct.args, (std::vector<std::string>{"-f", "/dev/null"}));
    EXPECT_TRUE(ct.env.empty());
    EXPECT_EQ(p->spec.volumes.size(), 3u);
}

// ---- pull secret (§3.2) ----

TEST(pod_spec_secret, dockerconfigjson_with_auth) {
    registry_credentials creds{"user", "p@ss:word", "ghcr.io"};
    auto s = build_pull_secret("runner-abc", "0123abcd", creds);
    ASSERT_TRUE(s);
    EXPECT_EQ(s->metadata.name, "runner-abc-secret-0123abcd");
    EXPECT_EQ(s->metadata.labels.at("runner-pod"), "runner-abc");
    EXPECT_EQ(s->type, "kubernetes.io/dockerconfigjson");
    EXPECT_TRUE(s->immutable);
    const std::string& cfg = s->data.at(".dockerconfigjson");
    dom::parser parser;
    dom::element root = parse_json(parser, cfg);
    dom::element entry = root["auths"]["ghcr.io"];
    EXPECT_EQ(std::string_view(entry["username"]), "user");
    EXPECT_EQ(std::string_view(entry["password"]), "p@ss:word");
    EXPECT_EQ(base64_decode(std::string_view(entry["auth"])), "user:p@ss:word");

    // On the wire the data is base64 of that document.
    dom::parser wire_parser;
    dom::element wire = parse_json(wire_parser, to_json(*s));
    EXPECT_EQ(base64_decode(std::string_view(wire["data"][".dockerconfigjson"])), cfg);
    EXPECT_EQ(std::string_view(wire["type"]), "kubernetes.io/dockerconfigjson");
}

TEST(pod_spec_secret, docker_hub_default_server) {
    dom::parser parser;
    dom::element root = parse_json(parser, docker_config_json({"u", "p", ""}));
    EXPECT_EQ(std::string_view(root["auths"]["https://index.docker.io/v1/"]["username"]), "u");
}

// ---- alpine detection (§3.6) ----

TEST(pod_spec_alpine, detection_script_exits_zero_only_for_alpine) {
    const auto argv = alpine_detection_argv();
    ASSERT_EQ(argv.size(), 3u);
    EXPECT_EQ(argv[0], "sh");
    EXPECT_EQ(argv[1], "-c");
    // Run the script against fake release files: it must tell alpine from debian.
    const std::string dir = ::testing::TempDir() + "alpine_detect_" + random_name_suffix();
    ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
    std::string script = argv[2];
    const std::string from = "/etc/*release*";
    script.replace(script.find(from), from.size(), dir + "/*release*");
    auto run = [&](const std::string& release) {
        std::system(("rm -f " + dir + "/*").c_str());
        std::system(("printf '" + release + "' > " + dir + "/os-release").c_str());
        return std::system(("sh -c '" + script + "' >/dev/null 2>&1").c_str());
    };
    EXPECT_EQ(run("NAME=\"Alpine Linux\"\\nID=alpine\\n"), 0);
    EXPECT_NE(run("NAME=\"Debian\"\\nID=debian\\n"), 0);
    std::system(("rm -rf " + dir).c_str());
}

} // namespace
} // namespace podpipe::kube
