// api_client REST calls against a real kubesim (spec/kube-api.md §3, §4): pods CRUD with
// selectors, watch, logs (plain and followed), secrets, PVCs, nodes, access reviews under an
// RBAC policy, 401 with a token re-read, 429/500 retries, keep-alive reuse.
#include "cluster_fixture.hpp"
#include "engine/transport/fault_injection.hpp"
#include "kube/client.hpp"
#include "kube/credentials.hpp"
#include "tests/support/eventually.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdlib.h>
#include <thread>
#include <unistd.h>

namespace podpipe::kube::testing {
namespace {

std::set<std::string> names_of(const pod_list& l) {
    std::set<std::string> s;
    for (const auto& p : l.items)
        s.insert(p.metadata.name);
    return s;
}

class client_test : public cluster_test {};

TEST_F(client_test, pod_create_get_list_with_selectors_and_delete) {
    pod a = busybox_pod("alpha");
    a.metadata.labels = {{"app", "web"}, {"tier", "front"}};
    pod b = busybox_pod("beta");
    b.metadata.labels = {{"app", "db"}};
    auto ca = client_->create_pod(a);
    ASSERT_TRUE(ca) << ca.error().what();
    EXPECT_EQ(ca->metadata.name, "alpha");
    EXPECT_FALSE(ca->metadata.uid.empty());
    EXPECT_EQ(ca->metadata.labels.at("tier"), "front");
    ASSERT_TRUE(client_->create_pod(b));

    auto again = client_->create_pod(a);
    ASSERT_FALSE(again);
    EXPECT_TRUE(again.error().is(errc::already_exists)) << again.error().what();

    auto got = client_->get_pod("", "alpha");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(got->spec.containers.at(0).image, "busybox");

    list_options by_label;
    by_label.label_selector = "app in (web,cache)";
    auto l1 = client_->list_pods("", by_label);
    ASSERT_TRUE(l1) << l1.error().what();
    EXPECT_EQ(names_of(*l1), (std::set<std::string>{"alpha"}));
    EXPECT_FALSE(l1->resource_version.empty());

    list_options by_field;
    by_field.field_selector = "metadata.name=beta";
    auto l2 = client_->list_pods("", by_field);
    ASSERT_TRUE(l2) << l2.error().what();
    EXPECT_EQ(names_of(*l2), (std::set<std::string>{"beta"}));

    list_options paged; // two pages of one: the client follows the continue token
    paged.limit = 1;
    auto l3 = client_->list_pods("", paged);
    ASSERT_TRUE(l3) << l3.error().what();
    EXPECT_EQ(names_of(*l3), (std::set<std::string>{"alpha", "beta"}));

    delete_options now;
    now.grace_period_seconds = 0;
    auto del = client_->delete_pod("", "alpha", now);
    ASSERT_TRUE(del) << del.error().what();
    EXPECT_EQ(del->metadata.name, "alpha");
    auto gone = client_->get_pod("", "alpha");
    ASSERT_FALSE(gone);
    EXPECT_TRUE(gone.error().is(errc::not_found)) << gone.error().what();
    auto del2 = client_->delete_pod("", "alpha", now);
    ASSERT_FALSE(del2);
    EXPECT_TRUE(del2.error().is(errc::not_found)); // callers may tolerate it
    EXPECT_EQ(del2.error().http_status, 404);
}

TEST_F(client_test, invalid_pod_is_a_typed_error) {
    pod p = busybox_pod("noimage");
    p.spec.containers[0].image.clear();
    auto r = client_->create_pod(p);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::invalid)) << r.error().what();
    EXPECT_EQ(r.error().http_status, 422);
}

using podpipe::testing::eventually;

TEST_F(client_test, watch_delivers_events_as_they_happen) {
    auto start = client_->list_pods("");
    ASSERT_TRUE(start) << start.error().what();
    std::mutex mu;
    std::vector<std::string> events;
    result<void, api_error> watched;
    std::thread watcher([&] {
        list_options o;
        o.field_selector = "metadata.name=w1";
        o.resource_version = start->resource_version;
        o.timeout_seconds = 120;
        watched = client_->watch_pods("", o, [&](const watch_event& ev) {
            static constexpr const char* names[] = {"ADDED", "MODIFIED", "DELETED", "BOOKMARK",
                                                    "ERROR"};
            std::lock_guard lk(mu);
            events.push_back(std::string(names[static_cast<int>(ev.type)]) + ":" +
                             ev.object.metadata.name);
            return ev.type != watch_event::kind::deleted;
        });
    });
    ASSERT_TRUE(client_->create_pod(busybox_pod("w1")));
    ASSERT_TRUE(client_->create_pod(busybox_pod("other")));
    // The ADDED event must arrive while the watch is open, not when the response ends.
    const bool added = eventually([&] {
        std::lock_guard lk(mu);
        return !events.empty();
    });
    EXPECT_TRUE(added) << "no event delivered while the watch was open";
    delete_options now;
    now.grace_period_seconds = 0;
    ASSERT_TRUE(client_->delete_pod("", "w1", now));
    watcher.join();
    ASSERT_TRUE(watched) << watched.error().what();
    ASSERT_GE(events.size(), 2u);
    EXPECT_EQ(events.front(), "ADDED:w1");
    EXPECT_EQ(events.back(), "DELETED:w1");
    for (const auto& e : events)
        EXPECT_NE(e.find(":w1"), std::string::npos) << e; // the field selector held
}

TEST_F(client_test, logs_plain_and_followed) {
    // The container logs "first", then waits for a file that the test creates only after
    // "first" arrived through the followed stream: chunks must be delivered as they come.
    auto p = client_->create_pod(busybox_pod(
        "logger",
        {"sh", "-c", "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second"}));
    ASSERT_TRUE(p) << p.error().what();
    ASSERT_EQ(wait_for_phase("logger", "Running"), "Running");
    std::mutex mu;
    std::string followed;
    result<void, api_error> r;
    std::thread follower([&] {
        // Right after start the server may still answer 400 "waiting to start": retry.
        eventually(
            [&] {
                r = client_->follow_pod_log("", "logger", {}, [&](std::string_view chunk) {
                    std::lock_guard lk(mu);
                    followed.append(chunk);
                    return true;
                });
                return r || !r.error().is(errc::bad_request);
            },
            std::chrono::seconds(10), std::chrono::milliseconds(50));
    });
    const bool first = eventually([&] {
        std::lock_guard lk(mu);
        return followed.find("first\n") != std::string::npos;
    });
    EXPECT_TRUE(first) << "the first line was not delivered while the container ran";
    auto go = client_->exec(sh("logger", "touch /tmp/go"));
    ASSERT_TRUE(go) << go.error().what();
    auto code = (*go)->wait();
    ASSERT_TRUE(code) << code.error().what();
    follower.join();
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(followed, "first\nsecond\n"); // follow ends when the container exits

    ASSERT_EQ(wait_for_phase("logger", "Succeeded"), "Succeeded");
    auto plain = client_->get_pod_log("", "logger");
    ASSERT_TRUE(plain) << plain.error().what();
    EXPECT_EQ(*plain, "first\nsecond\n");

    std::string some;
    auto stopped = client_->follow_pod_log("", "logger", {}, [&](std::string_view chunk) {
        some.append(chunk);
        return false; // the callback may stop following: not an error
    });
    ASSERT_TRUE(stopped) << stopped.error().what();
    EXPECT_FALSE(some.empty());
}

TEST_F(client_test, secrets_create_get_list_delete) {
    secret s;
    s.metadata.name = "regcred";
    s.metadata.labels = {{"runner-pod", "r1"}};
    s.data = {{"token", "s3cr3t-value"}};
    auto c = client_->create_secret(s);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->type, "Opaque");
    secret other;
    other.metadata.name = "unrelated";
    ASSERT_TRUE(client_->create_secret(other));

    auto g = client_->get_secret("", "regcred");
    ASSERT_TRUE(g) << g.error().what();
    EXPECT_EQ(g->metadata.labels.at("runner-pod"), "r1");

    list_options o;
    o.label_selector = "runner-pod=r1";
    auto l = client_->list_secrets("", o);
    ASSERT_TRUE(l) << l.error().what();
    ASSERT_EQ(l->items.size(), 1u);
    EXPECT_EQ(l->items[0].metadata.name, "regcred");

    auto d = client_->delete_secret("", "regcred");
    ASSERT_TRUE(d) << d.error().what();
    EXPECT_EQ(d->status, "Success");
    auto d2 = client_->delete_secret("", "regcred");
    ASSERT_FALSE(d2);
    EXPECT_TRUE(d2.error().is(errc::not_found));
}

TEST_F(client_test, pvc_create_get_delete) {
    pvc claim;
    claim.name = "work";
    claim.access_modes = {"ReadWriteOnce"};
    claim.storage_request = "2Gi";
    auto c = client_->create_pvc(claim);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->name, "work");
    EXPECT_EQ(c->access_modes, std::vector<std::string>{"ReadWriteOnce"});
    EXPECT_EQ(c->storage_request, "2Gi");
    auto g = client_->get_pvc("", "work");
    ASSERT_TRUE(g) << g.error().what();
    EXPECT_EQ(g->phase, "Bound");
    EXPECT_FALSE(g->volume_name.empty());

    pvc bad;
    bad.name = "bad";
    auto b = client_->create_pvc(bad); // no access modes
    ASSERT_FALSE(b);
    EXPECT_TRUE(b.error().is(errc::invalid)) << b.error().what();

    auto d = client_->delete_pvc("", "work");
    ASSERT_TRUE(d) << d.error().what();
    auto gone = client_->get_pvc("", "work");
    ASSERT_FALSE(gone);
    EXPECT_TRUE(gone.error().is(errc::not_found));
}

TEST_F(client_test, nodes_list_and_get) {
    auto l = client_->list_nodes();
    ASSERT_TRUE(l) << l.error().what();
    ASSERT_EQ(l->size(), 3u);
    list_options sel;
    sel.label_selector = "kubernetes.io/hostname=node-2";
    auto one = client_->list_nodes(sel);
    ASSERT_TRUE(one) << one.error().what();
    ASSERT_EQ(one->size(), 1u);
    EXPECT_EQ(one->at(0).name, "node-2");
    auto g = client_->get_node("node-1");
    ASSERT_TRUE(g) << g.error().what();
    EXPECT_EQ(g->labels.at("kubernetes.io/hostname"), "node-1");
    auto missing = client_->get_node("node-9");
    ASSERT_FALSE(missing);
    EXPECT_TRUE(missing.error().is(errc::not_found));
}

TEST_F(client_test, rest_calls_reuse_one_keep_alive_connection) {
    for (int i = 0; i < 5; ++i)
        ASSERT_TRUE(client_->list_pods(""));
    ASSERT_TRUE(client_->list_nodes());
    EXPECT_EQ(client_->rest_connections_opened(), 1u);
}

TEST_F(client_test, a_failed_socket_operation_is_retried_for_reads) {
    // Fail socket operation N = 0, 1, 2, ... of a fresh client's two GETs: one fault is
    // always absorbed by a retry, so every run succeeds with the right objects.
    for (std::size_t n = 0;; ++n) {
        ASSERT_LT(n, 200u);
        transport::fault_injection faults(n);
        client_options o;
        o.clock = &clock_;
        o.faults = &faults;
        auto c = api_client::connect(config_, o);
        ASSERT_TRUE(c) << c.error().what();
        auto node = (*c)->get_node("node-3");
        ASSERT_TRUE(node) << "n=" << n << ": " << node.error().what();
        EXPECT_EQ(node->name, "node-3");
        auto nodes = (*c)->list_nodes();
        ASSERT_TRUE(nodes) << "n=" << n << ": " << nodes.error().what();
        EXPECT_EQ(nodes->size(), 3u);
        if (!faults.fired()) {
            EXPECT_GE(n, 5u); // resolve, connect, TLS, write, read at least
            break;
        }
    }
}

TEST_F(client_test, too_many_requests_then_success_honours_retry_after) {
    arm(R"({"http": {"code": 429, "count": 2, "retryAfterSeconds": 3}})");
    const auto before = clock_.slept();
    auto l = client_->list_pods("");
    ASSERT_TRUE(l) << l.error().what();
    EXPECT_EQ(clock_.slept() - before, std::chrono::seconds(6));

    arm(R"({"http": {"code": 429, "count": 1}})");
    auto c = client_->create_pod(busybox_pod("after429")); // POST: 429 is safe to repeat
    ASSERT_TRUE(c) << c.error().what();
}

TEST_F(client_test, server_error_retries_reads_but_not_creates) {
    arm(R"({"http": {"code": 500, "count": 1}})");
    auto g = client_->list_pods("");
    ASSERT_TRUE(g) << g.error().what();

    arm(R"({"http": {"code": 500, "count": 1}})");
    auto c = client_->create_pod(busybox_pod("once"));
    ASSERT_FALSE(c); // the server may have acted on a POST that failed with 500
    EXPECT_TRUE(c.error().is(errc::server_error)) << c.error().what();
    EXPECT_TRUE(client_->create_pod(busybox_pod("once")));
}

TEST_F(client_test, retries_give_up_after_max_attempts) {
    arm(R"({"http": {"code": 503, "count": 10, "retryAfterSeconds": 1}})");
    auto l = client_->list_pods("");
    ASSERT_FALSE(l);
    EXPECT_TRUE(l.error().is(errc::service_unavailable)) << l.error().what();
    EXPECT_TRUE(l.error().retryable());
    arm(R"({"http": {"code": 503, "count": 0}})");
}

TEST_F(client_test, a_load_balancers_html_503_is_a_short_retryable_error) {
    running_pod("i20-html");
    // A restarting API server behind a load balancer: its HTML error page for every request.
    arm(R"({"restart": {"downSeconds": 2, "mode": "503-html"}})");
    ASSERT_TRUE(podpipe::testing::eventually([&] {
        try { // the cut itself may end a request that was under way
            return kubesim::testing::https_request(port(), ca_file(), "", "GET", "/version")
                       .status == 503;
        } catch (const std::exception&) {
            return false;
        }
    }));
    const auto slept = clock_.slept();
    auto l = client_->list_pods("");
    ASSERT_FALSE(l);
    EXPECT_GT(clock_.slept(), slept) << "a 503 is retried";
    EXPECT_TRUE(l.error().is(errc::service_unavailable)) << l.error().what();
    EXPECT_TRUE(l.error().retryable());
    EXPECT_EQ(l.error().http_status, 503);
    EXPECT_EQ(l.error().message, "HTML page: 503 Service Temporarily Unavailable");
    EXPECT_TRUE(l.error().what().ends_with(
        ": HTML page: 503 Service Temporarily Unavailable (HTTP 503)"))
        << l.error().what();
    // The exec upgrade gets the same page, and says the same.
    exec_options e;
    e.pod = "i20-html";
    e.command = {"true"};
    auto x = client_->exec(e);
    ASSERT_FALSE(x);
    EXPECT_TRUE(x.error().is(errc::service_unavailable)) << x.error().what();
    EXPECT_EQ(x.error().message, "HTML page: 503 Service Temporarily Unavailable");
    // Served again afterwards.
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] {
            try {
                return kubesim::testing::https_request(port(), ca_file(), "", "GET", "/version")
                           .status == 200;
            } catch (const std::exception&) {
                return false;
            }
        },
        std::chrono::seconds(20)));
    EXPECT_TRUE(client_->list_pods(""));
}

class token_file_test : public cluster_test {
protected:
    std::unique_ptr<api_client> client_with_token_file(const std::string& initial) {
        token_file_ = dir_ + "/token";
        write_token(initial);
        cluster_config cfg = config_;
        cfg.credentials = std::make_shared<token_source>(token_file_, token_clock_);
        return make_client(cfg);
    }

    void write_token(const std::string& t) { std::ofstream(token_file_, std::ios::trunc) << t; }

    std::string token_file_;
    simulated_time token_clock_; // the file is not re-read by age in these tests
};

TEST_F(token_file_test, unauthorized_rereads_the_token_once_and_retries) {
    auto c = client_with_token_file("stale-token-1234");
    ASSERT_NE(c, nullptr);
    write_token(admin_token()); // the kubelet rotated the file
    auto l = c->list_pods("");
    ASSERT_TRUE(l) << l.error().what();

    // The exec upgrade does the same.
    running_pod("p1");
    write_token("stale-token-5678");
    auto c2 = client_with_token_file("stale-token-5678");
    ASSERT_NE(c2, nullptr);
    write_token(admin_token());
    auto s = c2->exec(sh("p1", "echo via-reread"));
    ASSERT_TRUE(s) << s.error().what();
    string_sink out;
    auto code = (*s)->wait(&out);
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(out.data, "via-reread\n");
}

TEST_F(token_file_test, unauthorized_after_the_reread_fails_without_leaking_the_token) {
    const std::string secret_token = "do-not-print-this-token-9f8e7d";
    auto c = client_with_token_file(secret_token);
    ASSERT_NE(c, nullptr);
    auto l = c->list_pods("");
    ASSERT_FALSE(l);
    EXPECT_TRUE(l.error().is(errc::unauthorized)) << l.error().what();
    EXPECT_EQ(l.error().what().find(secret_token), std::string::npos) << l.error().what();
    EXPECT_EQ(l.error().detail.find(secret_token), std::string::npos);
    auto s = c->exec(sh("p1", "true"));
    ASSERT_FALSE(s);
    EXPECT_TRUE(s.error().is(errc::unauthorized)) << s.error().what();
    EXPECT_EQ(s.error().what().find(secret_token), std::string::npos) << s.error().what();
    // The error says the credentials were rejected, and whose: the token file.
    for (const std::string& what : {l.error().what(), s.error().what()}) {
        EXPECT_NE(what.find("rejected the credentials"), std::string::npos) << what;
        EXPECT_NE(what.find("expired or revoked"), std::string::npos) << what;
        EXPECT_NE(what.find("token file " + token_file_), std::string::npos) << what;
    }
}

class rbac_client_test : public cluster_test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/k8s-client-rbac-XXXXXX";
        const int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        ::close(fd);
        policy_ = tmpl;
        std::ofstream(policy_) << R"({"users": [
  {"token": "runner-token", "user": "system:serviceaccount:default:runner",
   "rules": [
     {"verbs": ["get", "list", "watch", "create", "delete"], "resources": ["pods", "pods/log", "secrets"], "namespaces": ["default"]},
     {"verbs": ["get"], "resources": ["pods/exec"], "namespaces": ["default"]}]}]})";
        extra_args_ = {"--rbac", policy_};
        cluster_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        cluster_config cfg = config_;
        cfg.credentials = std::make_shared<static_credentials>(credentials{"runner-token", {}, {}});
        runner_ = make_client(cfg);
        ASSERT_NE(runner_, nullptr);
    }

    void TearDown() override {
        cluster_test::TearDown();
        if (!policy_.empty())
            std::filesystem::remove(policy_);
    }

    std::string policy_;
    std::unique_ptr<api_client> runner_;
};

TEST_F(rbac_client_test, access_reviews_follow_the_policy) {
    const std::vector<resource_attributes> checks = {
        {"default", "create", "", "pods", "", ""},
        {"default", "get", "", "pods", "exec", ""},
        {"default", "create", "", "pods", "exec", ""},
        {"kube-system", "delete", "", "secrets", "", ""},
        {"", "list", "", "nodes", "", ""},
    };
    auto r = runner_->access_reviews(checks);
    ASSERT_TRUE(r) << r.error().what();
    ASSERT_EQ(r->size(), checks.size());
    EXPECT_TRUE((*r)[0].allowed);
    EXPECT_TRUE((*r)[1].allowed);
    EXPECT_FALSE((*r)[2].allowed);
    EXPECT_FALSE((*r)[3].allowed);
    EXPECT_FALSE((*r)[4].allowed);
    auto admin = client_->access_review({"kube-system", "delete", "", "secrets", "", ""});
    ASSERT_TRUE(admin) << admin.error().what();
    EXPECT_TRUE(admin->allowed);
}

TEST_F(rbac_client_test, denied_calls_are_forbidden_with_the_server_message) {
    auto l = runner_->list_pods("kube-system");
    ASSERT_FALSE(l);
    EXPECT_TRUE(l.error().is(errc::forbidden)) << l.error().what();
    EXPECT_EQ(l.error().reason, "Forbidden");
    EXPECT_NE(l.error().message.find("cannot list resource \"pods\""), std::string::npos)
        << l.error().message;
    auto n = runner_->list_nodes();
    ASSERT_FALSE(n);
    EXPECT_TRUE(n.error().is(errc::forbidden));
    auto ok = runner_->list_pods("");
    EXPECT_TRUE(ok) << ok.error().what();
}

} // namespace
} // namespace podpipe::kube::testing
