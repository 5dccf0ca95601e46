// Parts of the client that need no cluster: the server URL, and the JSON of the objects
// kubesim does not serve yet (batch/v1 Jobs) or only partly (PVC fields, node lists).
#include "kube/client.hpp"

#include "engine/transport/error.hpp"
#include "kube/json.hpp"
#include "kube/paths.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/silent_listener.hpp"

#include <thread>

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

// An API server that accepts TCP and never answers: client_options::stop ends the REST call
// in flight at once, without retries (a GET retries timeouts), and a call made after the stop
// (clean-up) is not cancelled: it runs to its own timeout.
TEST(client_stop, ends_the_rest_call_in_flight_and_not_the_clean_up_after_it) {
    using namespace std::chrono_literals;
    podpipe::testing::silent_listener silent;
    ASSERT_NE(silent.port(), 0);
    cluster_config cfg;
    cfg.server = "https://127.0.0.1:" + std::to_string(silent.port());
    cfg.insecure_skip_tls_verify = true;
    cfg.credentials = std::make_shared<static_credentials>(credentials{});
    std::stop_source stop;
    client_options o;
    o.request_timeout = 60s;
    o.stop = stop.get_token();
    auto client = api_client::connect(cfg, o);
    ASSERT_TRUE(client) << client.error().what();
    std::jthread stopper([&] {
        // The GET connected (it waits in the backlog) and waits for the TLS answer.
        EXPECT_TRUE(podpipe::testing::eventually([&] { return silent.queued() >= 1; }));
        stop.request_stop();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto p = (*client)->get_pod("", "p");
    stopper.join();
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().code, transport::errc::cancelled) << p.error().what();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s) << "not ended by the stop";

    auto after_stop = api_client::connect(cfg, [&] {
        client_options short_timeout = o;
        short_timeout.request_timeout = 500ms;
        short_timeout.retry.max_attempts = 1;
        return short_timeout;
    }());
    ASSERT_TRUE(after_stop);
    auto cleanup = (*after_stop)->delete_pod("", "p");
    ASSERT_FALSE(cleanup);
    EXPECT_EQ(cleanup.error().code, transport::errc::timeout) << cleanup.error().what();
}

TEST(server_url, host_port_and_prefix) {
    auto a = parse_server_url("https://127.0.0.1:6443");
    ASSERT_TRUE(a) << a.error().what();
    EXPECT_EQ(a->host, "127.0.0.1");
    EXPECT_EQ(a->port, 6443);
    EXPECT_EQ(a->path_prefix, "");
    auto b = parse_server_url("https://api.example.com/k8s/clusters/c1/");
    ASSERT_TRUE(b) << b.error().what();
    EXPECT_EQ(b->host, "api.example.com");
    EXPECT_EQ(b->port, 443);
    EXPECT_EQ(b->path_prefix, "/k8s/clusters/c1");
    auto c = parse_server_url("https://[fd00::1]:8443");
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->host, "fd00::1");
    EXPECT_EQ(c->port, 8443);
    auto d = parse_server_url("https://[fd00::1]");
    ASSERT_TRUE(d);
    EXPECT_EQ(d->port, 443);
}

TEST(server_url, rejects_plain_http_and_garbage) {
    for (const char* bad : {"http://127.0.0.1:8080", "127.0.0.1:6443", "https://", "https://:443",
                            "https://h:0", "https://h:70000", "https://h:12x", "https://[::1",
                            "https://[::1]x", "https://user:pw@h"}) {
        auto r = parse_server_url(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_TRUE(r.error().is(errc::config_invalid)) << bad;
    }
}

TEST(job_json, round_trip_of_the_fields_podpipe_sends) {
    job j;
    j.metadata.name = "step-1";
    j.metadata.labels = {{"runner-pod", "r1"}};
    j.spec.backoff_limit = 0;
    j.spec.ttl_seconds_after_finished = 300;
    j.spec.active_deadline_seconds = 3600;
    j.spec.pod.metadata.labels = {{"job", "step-1"}};
    j.spec.pod.spec.restart_policy = "Never";
    container c;
    c.name = "step";
    c.image = "node:20";
    c.command = {"sh", "-c", "echo hi"};
    j.spec.pod.spec.containers.push_back(c);
    const std::string text = to_json(j);
    EXPECT_NE(text.find(R"("apiVersion":"batch/v1")"), std::string::npos) << text;
    EXPECT_NE(text.find(R"("kind":"Job")"), std::string::npos) << text;
    EXPECT_NE(text.find(R"("backoffLimit":0)"), std::string::npos) << text;
    EXPECT_EQ(text.find("completions"), std::string::npos) << text; // unset: omitted

    auto back = parse_job(text);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->metadata.name, "step-1");
    EXPECT_EQ(back->metadata.labels.at("runner-pod"), "r1");
    EXPECT_EQ(back->spec.backoff_limit, 0);
    EXPECT_EQ(back->spec.ttl_seconds_after_finished, 300);
    EXPECT_EQ(back->spec.active_deadline_seconds, 3600);
    EXPECT_EQ(back->spec.pod.metadata.labels.at("job"), "step-1");
    EXPECT_EQ(back->spec.pod.spec.restart_policy, "Never");
    ASSERT_EQ(back->spec.pod.spec.containers.size(), 1u);
    EXPECT_EQ(back->spec.pod.spec.containers[0].image, "node:20");
}

TEST(job_json, parses_status_and_lists_without_kind) {
    const char* list = R"({"kind":"JobList","apiVersion":"batch/v1",
      "metadata":{"resourceVersion":"77","continue":"tok"},
      "items":[{"metadata":{"name":"j1","namespace":"ci","uid":"u1"},
                "spec":{"completions":1,"parallelism":1,"template":{"spec":{"containers":[{"name":"c","image":"busybox"}]}}},
                "status":{"active":0,"succeeded":1,"failed":0,"startTime":"2024-05-01T10:00:00Z",
                          "completionTime":"2024-05-01T10:00:05Z",
                          "conditions":[{"type":"Complete","status":"True"}]}}]})";
    auto l = parse_job_list(list);
    ASSERT_TRUE(l) << l.error().what();
    EXPECT_EQ(l->resource_version, "77");
    EXPECT_EQ(l->continue_token, "tok");
    ASSERT_EQ(l->items.size(), 1u);
    const job& j = l->items[0];
    EXPECT_EQ(j.metadata.ns, "ci");
    EXPECT_EQ(j.spec.completions, 1);
    EXPECT_EQ(j.status.succeeded, 1);
    EXPECT_EQ(j.status.completion_time, "2024-05-01T10:00:05Z");
    ASSERT_EQ(j.status.conditions.size(), 1u);
    EXPECT_EQ(j.status.conditions[0].type, "Complete");
    EXPECT_EQ(j.status.conditions[0].status, "True");
}

TEST(job_json, wrong_types_are_errors) {
    EXPECT_FALSE(parse_job(R"({"spec":{"backoffLimit":"six"}})"));
    EXPECT_FALSE(parse_job(R"({"spec":{"backoffLimit":-1}})"));
    EXPECT_FALSE(parse_job(R"({"status":{"succeeded":true}})"));
    EXPECT_FALSE(parse_job(R"({"spec":{"template":[]}})"));
    EXPECT_FALSE(parse_job_list(R"({"items":{}})"));
}

TEST(job_paths, batch_v1_group) {
    EXPECT_EQ(jobs_path("ci"), "/apis/batch/v1/namespaces/ci/jobs");
    EXPECT_EQ(job_path("ci", "a b"), "/apis/batch/v1/namespaces/ci/jobs/a%20b");
    EXPECT_EQ(pvcs_path("ci"), "/api/v1/namespaces/ci/persistentvolumeclaims");
}

TEST(pvc_json, create_body_and_parsed_fields) {
    pvc c;
    c.name = "work";
    c.access_modes = {"ReadWriteMany"};
    c.storage_request = "5Gi";
    c.storage_class_name = "fast";
    const std::string text = to_json(c);
    EXPECT_NE(text.find(R"("resources":{"requests":{"storage":"5Gi"}})"), std::string::npos)
        << text;
    auto back = parse_pvc(text);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->name, "work");
    EXPECT_EQ(back->access_modes, std::vector<std::string>{"ReadWriteMany"});
    EXPECT_EQ(back->storage_request, "5Gi");
    EXPECT_EQ(back->storage_class_name, "fast");
}

TEST(node_json, list_items) {
    auto l = parse_node_list(
        R"({"kind":"NodeList","items":[{"metadata":{"name":"n1","labels":{"a":"b"}}},
            {"metadata":{"name":"n2"},"spec":{"unschedulable":true}}]})");
    ASSERT_TRUE(l) << l.error().what();
    ASSERT_EQ(l->size(), 2u);
    EXPECT_EQ((*l)[0].labels.at("a"), "b");
    EXPECT_TRUE((*l)[1].unschedulable);
    EXPECT_FALSE(parse_node_list(R"({"items":[1]})"));
}

} // namespace
} // namespace podpipe::kube
