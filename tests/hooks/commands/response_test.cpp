#include "hooks/commands/response.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace podpipe::hook {
namespace {

namespace fs = std::filesystem;
namespace dom = simdjson::dom;

class response_file : public ::testing::Test {
protected:
    void SetUp() override {
        dir_ = fs::path(::testing::TempDir()) /
               ("response_test_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::create_directories(dir_);
    }

    void TearDown() override { fs::remove_all(dir_); }

    std::string read(const fs::path& p) {
        std::ifstream in(p, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

    fs::path dir_;
};

prepare_job_response sample() {
    prepare_job_response r;
    r.state.job_pod = "runner-abc-workflow";
    r.state.namespace_name = "arc";
    r.state.permissions_checked = true;
    r.container =
        response_container{"node:22", response_ports({{8080, 80, "TCP"}, {9000, {}, "TCP"}})};
    r.services.push_back({"redis:7", response_ports({{6379, 6379, "TCP"}})});
    r.services.push_back({"postgres", {}});
    r.is_alpine = false;
    return r;
}

TEST(hook_response, ports_only_with_host_port) {
    const auto ports = response_ports({{80, 8080, "TCP"}, {53, 5353, "UDP"}, {9000, {}, "TCP"}});
    EXPECT_EQ(ports, (std::map<std::string, std::string>{{"80", "8080"}, {"53", "5353"}}));
}

TEST(hook_response, prepare_job_json_has_what_the_runner_reads) {
    const std::string json = to_json(sample());
    dom::parser parser;
    dom::element root;
    ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS) << json;
    EXPECT_EQ(std::string_view(root["state"]["jobPod"]), "runner-abc-workflow");
    EXPECT_EQ(std::string_view(root["state"]["podpipe"]["namespace"]), "arc");
    EXPECT_EQ(bool(root["state"]["podpipe"]["permissionsChecked"]), true);
    EXPECT_TRUE(root["state"]["podpipe"]["stepRun"].error()) << "written only when true";
    EXPECT_EQ(std::string_view(root["context"]["container"]["image"]), "node:22");
    EXPECT_EQ(std::string_view(root["context"]["container"]["ports"]["8080"]), "80");
    dom::array services = root["context"]["services"];
    ASSERT_EQ(services.size(), 2u);
    EXPECT_EQ(std::string_view(services.at(0)["ports"]["6379"]), "6379");
    // An empty ports map is still an object: the runner's loop crashes on a missing one.
    EXPECT_EQ(services.at(1)["ports"].get_object().error(), simdjson::SUCCESS);
    EXPECT_EQ(bool(root["isAlpine"]), false);
}

TEST(hook_response, no_services_key_without_services_and_no_container_without_job) {
    prepare_job_response r;
    r.state.job_pod = "p";
    r.is_alpine = true;
    const std::string json = to_json(r);
    dom::parser parser;
    dom::element root;
    ASSERT_EQ(parser.parse(json).get(root), simdjson::SUCCESS);
    EXPECT_EQ(root["context"]["services"].error(), simdjson::NO_SUCH_FIELD);
    EXPECT_EQ(root["context"]["container"].error(), simdjson::NO_SUCH_FIELD);
    EXPECT_EQ(bool(root["isAlpine"]), true);
}

TEST(hook_response, state_round_trips_through_the_input_parser) {
    job_state s;
    s.job_pod = "runner-abc-workflow";
    s.namespace_name = "ns1";
    s.permissions_checked = true;
    s.pull_secret = "runner-abc-secret-0123abcd";
    s.step_run = true;
    // The runner hands the response's state back verbatim in the next invocation.
    const std::string next = R"({"command":"cleanup_job","args":{},"state":)" + to_json(s) + "}";
    auto in = parse_input(next);
    ASSERT_TRUE(in) << in.error().what();
    ASSERT_TRUE(in->state);
    EXPECT_EQ(in->state->job_pod, s.job_pod);
    EXPECT_EQ(in->state->namespace_name, s.namespace_name);
    EXPECT_TRUE(in->state->permissions_checked);
    EXPECT_EQ(in->state->pull_secret, s.pull_secret);
    EXPECT_TRUE(in->state->step_run);
    EXPECT_EQ(state_response_json(s), "{\"state\":" + to_json(s) + "}");
}

TEST(hook_response, built_from_the_job_pod_in_request_order_without_sidecars) {
    kube::job_pod_options opts;
    opts.runner_pod_name = "runner-abc";
    kube::container_source job;
    job.image = "node:22";
    job.port_mappings = {"31080:8080"};
    kube::container_source redis;
    redis.image = "redis";
    redis.port_mappings = {"31081:80", "8080"};
    kube::container_source pg;
    pg.image = "postgres:16";
    auto built = kube::build_job_pod(opts, &job, {redis, pg, redis});
    ASSERT_TRUE(built);
    kube::container sidecar;
    sidecar.name = "side-car";
    sidecar.image = "ubuntu";
    built->job_pod.spec.containers.push_back(sidecar);
    job_state st;
    st.job_pod = built->job_pod.metadata.name;
    const prepare_job_response r =
        make_prepare_response(built->job_pod, built->service_names, st, true);
    ASSERT_TRUE(r.container);
    EXPECT_EQ(r.container->image, "node:22");
    EXPECT_EQ(r.container->ports, (std::map<std::string, std::string>{{"8080", "31080"}}));
    ASSERT_EQ(r.services.size(), 3u);
    EXPECT_EQ(r.services[0].image, "redis");
    EXPECT_EQ(r.services[0].ports, (std::map<std::string, std::string>{{"80", "31081"}}));
    EXPECT_EQ(r.services[1].image, "postgres:16");
    EXPECT_TRUE(r.services[1].ports.empty());
    EXPECT_EQ(r.services[2].image, "redis");
    EXPECT_EQ(r.state.job_pod, "runner-abc-workflow");
    EXPECT_TRUE(r.is_alpine);

    kube::container_source imageless;
    auto services_only = kube::build_job_pod(opts, &imageless, {pg});
    ASSERT_TRUE(services_only);
    EXPECT_FALSE(
        make_prepare_response(services_only->job_pod, services_only->service_names, st, false)
            .container);
}

TEST_F(response_file, replaces_the_runner_created_file) {
    const fs::path p = dir_ / "7f0c.json";
    std::ofstream(p).close();
    ::chmod(p.c_str(), 0644);
    const std::string json = to_json(sample());
    ASSERT_TRUE(write_response_file(p.string(), json));
    EXPECT_EQ(read(p), json + "\n");

    struct stat st {};

    ASSERT_EQ(::stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0644u);
    // No temporary file is left behind.
    EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);
}

TEST_F(response_file, empty_and_missing_paths_fail_with_reference_texts) {
    auto empty = write_response_file("", "{}");
    ASSERT_FALSE(empty);
    EXPECT_EQ(empty.error().what(), "Expected file path");
    const std::string missing = (dir_ / "missing.json").string();
    auto r = write_response_file(missing, "{}");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().what(), "Missing file at path: " + missing);
    EXPECT_FALSE(fs::exists(missing));
}

TEST_F(response_file, directory_is_refused) {
    auto r = write_response_file(dir_.string(), "{}");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, make_error_code(errc::response_file));
}

TEST_F(response_file, unwritable_directory_fails_and_keeps_the_file) {
    if (::geteuid() == 0)
        GTEST_SKIP() << "root ignores directory permissions";
    const fs::path p = dir_ / "r.json";
    std::ofstream(p) << "old";
    ::chmod(dir_.c_str(), 0555);
    auto r = write_response_file(p.string(), "{}");
    ::chmod(dir_.c_str(), 0755);
    ASSERT_FALSE(r);
    EXPECT_EQ(read(p), "old");
}

} // namespace
} // namespace podpipe::hook
