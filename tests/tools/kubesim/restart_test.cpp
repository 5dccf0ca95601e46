// The API-server restart fault (README "Fault injection", `restart`), over real HTTPS: at the cut
// an exec session ends without a status, a log follow and a watch end without their last chunk;
// for the down time new connections are refused ("refused") or every request answers a 503
// Status ("503"); afterwards everything works again, and the pods kept running (the exec'd
// process too, its stdin at EOF).
#include <signal.h>

#include <chrono>
#include <future>
#include <stdexcept>
#include <thread>

#include "kubesim_fixture.hpp"
#include "test_client.hpp"
#include "tests/support/eventually.hpp"

namespace podpipe::kubesim::testing {
namespace {

using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

class restart_test : public kubesim_fixture {
protected:
    void SetUp() override {
        kubesim_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  containers: [{name: c1, image: busybox,
    command: ["sh", "-c", "i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done"]}]
)");
        ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    }
    http_reply get(const std::string& target) {
        return https_request(port(), ca_file(), admin_token(), "GET", target);
    }
    http_reply arm(const std::string& json) {
        return https_request(port(), ca_file(), admin_token(), "POST", "/kubesim/faults", json);
    }
    /// A request's outcome as text: the status code, or the error that ended it.
    std::string attempt(const std::string& target) {
        try {
            return std::to_string(get(target).status);
        } catch (const std::exception& e) {
            return std::string("error: ") + e.what();
        }
    }
    /// Polls until /version answers 200 again; returns when that was.
    clock_type::time_point wait_serving() {
        podpipe::testing::eventually([&] { return attempt("/version") == "200"; }, 30s);
        return clock_type::now();
    }
    /// An exec of `script` in p1 that printed its first line (read here).
    std::unique_ptr<ws_exec_client> start_exec(const std::string& script) {
        auto c = std::make_unique<ws_exec_client>(port(), ca_file(), admin_token());
        EXPECT_EQ(c->open("/api/v1/namespaces/default/pods/p1/exec?command=sh&command=-c&command=" +
                              script + "&stdin=true&stdout=true",
                          "v5.channel.k8s.io"),
                  101);
        for (;;) {
            auto m = c->read();
            if (m.closed || (!m.data.empty() && m.data[0] == 1))
                break;
        }
        return c;
    }
    /// Reads `c` to its end: true when it ended without a status message and without a close
    /// frame (a dropped connection).
    static bool ends_dropped(ws_exec_client& c, std::string& status) {
        for (;;) {
            auto m = c.read();
            if (m.closed)
                return m.eof && m.close_code == 0;
            if (!m.data.empty() && m.data[0] == 3)
                status += m.data.substr(1);
        }
    }
    /// Waits up to 5 s for a stream's end. A stream the fault did not cut would block the test
    /// for good: then kubesim is told to stop (SIGTERM ends every connection) and the test
    /// fails, its teardown too.
    template <class T>
    bool cut_in_time(std::future<T>& f, const char* what) {
        if (f.wait_for(5s) == std::future_status::ready)
            return true;
        ADD_FAILURE() << what << " was not cut";
        ::kill(pid_, SIGTERM);
        f.wait();
        return false;
    }
    /// `c` ends dropped, without a status, within the bound of cut_in_time.
    void expect_exec_cut(ws_exec_client& c) {
        auto f = std::async(std::launch::async, [&c] {
            std::string status;
            return ends_dropped(c, status) && status.empty();
        });
        if (cut_in_time(f, "the exec session")) {
            EXPECT_TRUE(f.get()) << "the exec session ended with a status or a close frame";
        }
    }
};

// The script of the exec that outlives its session: it reports its stdin's EOF in a file.
constexpr const char* survivor =
    "echo%20ready%3B%20cat%20%3E%2Fdev%2Fnull%3B%20echo%20stdin-eof%20%3E%2Ftmp%2Fmarker%3B%20"
    "sleep%201000";

TEST_F(restart_test, refused_cuts_every_stream_then_serves_again) {
    auto exec = start_exec(survivor);
    // A log follow and a watch, each on its own connection and thread.
    auto log = std::async(std::launch::async, [&] {
        return attempt("/api/v1/namespaces/default/pods/p1/log?follow=true");
    });
    auto watch = std::async(std::launch::async, [&] {
        return attempt("/api/v1/namespaces/default/pods?watch=true");
    });
    // Both streams are open once the follow has sent bytes (no way to see that from outside
    // but time; a stream that is not open yet would be refused, which the checks also catch).
    std::this_thread::sleep_for(500ms);

    auto r = arm(R"({"restart": {"downSeconds": 2, "mode": "refused"}})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto armed = clock_type::now();

    expect_exec_cut(*exec);
    ASSERT_TRUE(cut_in_time(log, "the log follow"));
    ASSERT_TRUE(cut_in_time(watch, "the watch"));
    EXPECT_EQ(log.get().rfind("error: ", 0), 0u) << "the log follow ended cleanly";
    EXPECT_EQ(watch.get().rfind("error: ", 0), 0u) << "the watch ended cleanly";
    EXPECT_LT(clock_type::now() - armed, 2s) << "streams are cut at once";

    // Down: refused (the request fails before any TLS).
    std::string during = attempt("/version");
    EXPECT_NE(during.find("refused"), std::string::npos) << during;

    auto back = wait_serving();
    EXPECT_GE(back - armed, 1800ms);
    EXPECT_LT(back - armed, 5s);

    // The pod kept running, and so did the exec'd process: its stdin reached EOF at the cut.
    auto pod = get("/api/v1/namespaces/default/pods/p1");
    EXPECT_NE(pod.body.find(R"("phase":"Running")"), std::string::npos) << pod.body;
    EXPECT_NE(pod.body.find(R"("restartCount":0)"), std::string::npos) << pod.body;
    auto marker = kubectl("exec p1 -- cat /tmp/marker");
    EXPECT_EQ(marker.output, "stdin-eof\n");
    auto ps = kubectl("exec p1 -- ps");
    EXPECT_NE(ps.output.find("sleep 1000"), std::string::npos) << ps.output;
    auto faults = get("/kubesim/faults");
    EXPECT_NE(faults.body.find(R"("restart":{"restarts":1,"down":false})"), std::string::npos)
        << faults.body;
}

TEST_F(restart_test, answering_503_keeps_the_admin_endpoint) {
    auto exec = start_exec(survivor);
    auto r = arm(R"({"restart": {"downSeconds": 2, "mode": "503", "retryAfterSeconds": 1}})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto armed = clock_type::now();
    expect_exec_cut(*exec);

    auto during = get("/api/v1/namespaces/default/pods");
    EXPECT_EQ(during.status, 503);
    EXPECT_EQ(during.headers["retry-after"], "1");
    EXPECT_NE(during.body.find(R"("reason":"ServiceUnavailable")"), std::string::npos)
        << during.body;
    // Even without a token: the answer comes from in front of the API server.
    EXPECT_EQ(https_request(port(), ca_file(), "", "GET", "/version").status, 503);
    ws_exec_client refused(port(), ca_file(), admin_token());
    EXPECT_EQ(refused.open("/api/v1/namespaces/default/pods/p1/exec?command=true&stdout=true",
                           "v5.channel.k8s.io"),
              503);
    // kubesim's own endpoint stays reachable, says it is down, and refuses a second restart.
    auto faults = get("/kubesim/faults");
    EXPECT_NE(faults.body.find(R"("restart":{"restarts":1,"down":true})"), std::string::npos)
        << faults.body;
    EXPECT_EQ(arm(R"({"restart": {"downSeconds": 1}})").status, 409);

    auto back = wait_serving();
    EXPECT_GE(back - armed, 1800ms);
    EXPECT_EQ(get("/api/v1/namespaces/default/pods").status, 200);
    EXPECT_EQ(kubectl("exec p1 -- cat /tmp/marker").output, "stdin-eof\n");
}

TEST_F(restart_test, answering_503_html_like_a_load_balancer) {
    auto r = arm(R"({"restart": {"downSeconds": 1, "mode": "503-html", "retryAfterSeconds": 2}})");
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] { return attempt("/api/v1/namespaces/default/pods") == "503"; }, 5s));
    auto during = get("/api/v1/namespaces/default/pods");
    EXPECT_EQ(during.status, 503);
    EXPECT_EQ(during.headers["content-type"], "text/html");
    EXPECT_EQ(during.headers["retry-after"], "2");
    EXPECT_TRUE(during.body.starts_with("<!DOCTYPE html>\r\n<html>")) << during.body;
    EXPECT_NE(during.body.find("<title>503 Service Temporarily Unavailable</title>"),
              std::string::npos);
    EXPECT_EQ(during.body.find("\"kind\""), std::string::npos) << "not a Status";
    ws_exec_client refused(port(), ca_file(), admin_token());
    EXPECT_EQ(refused.open("/api/v1/namespaces/default/pods/p1/exec?command=true&stdout=true",
                           "v5.channel.k8s.io"),
              503);
    wait_serving();
    auto after = get("/api/v1/namespaces/default/pods");
    EXPECT_EQ(after.status, 200);
    EXPECT_EQ(after.headers["content-type"], "application/json");
    EXPECT_EQ(arm(R"({"restart": {"downSeconds": 1, "mode": "503-json"}})").status, 400);
}

TEST_F(restart_test, delay_and_bad_knobs) {
    EXPECT_EQ(arm(R"({"restart": {"mode": "refused"}})").status, 400);
    EXPECT_EQ(arm(R"({"restart": {"downSeconds": 1, "mode": "nope"}})").status, 400);
    EXPECT_EQ(arm(R"({"restart": {"downSeconds": -1}})").status, 400);
    // afterMilliseconds: the cut comes that long after the answer; meanwhile all is well.
    ASSERT_EQ(arm(R"({"restart": {"downSeconds": 0.5, "afterMilliseconds": 1500}})").status, 200);
    const auto armed = clock_type::now();
    EXPECT_EQ(get("/version").status, 200);
    EXPECT_TRUE(podpipe::testing::eventually(
        [&] { return attempt("/version").find("refused") != std::string::npos; }, 5s));
    EXPECT_GE(clock_type::now() - armed, 1400ms);
    wait_serving();
    EXPECT_EQ(get("/version").status, 200);
    // Again (a soak fires it many times): a second restart cuts and comes back as well.
    auto exec = start_exec(survivor);
    ASSERT_EQ(arm(R"({"restart": {"downSeconds": 0.3, "mode": "503"}})").status, 200);
    expect_exec_cut(*exec);
    wait_serving();
    EXPECT_NE(get("/kubesim/faults").body.find(R"("restart":{"restarts":2,"down":false})"),
              std::string::npos);
}

/// The resourceVersion of a list of `resource` in default.
std::string list_rv(const http_reply& r) {
    const std::string key = R"("resourceVersion":")";
    auto at = r.body.find(key);
    if (at == std::string::npos)
        return "";
    at += key.size();
    return r.body.substr(at, r.body.find('"', at) - at);
}

TEST_F(restart_test, watch_history_before_the_restart_is_gone) {
    const std::string secrets = "/api/v1/namespaces/default/secrets";
    const std::string old_rv = list_rv(get(secrets));
    ASSERT_FALSE(old_rv.empty());
    auto made = https_request(port(), ca_file(), admin_token(), "POST", secrets,
                              R"({"metadata":{"name":"i20-before"},"stringData":{"k":"v"}})");
    ASSERT_EQ(made.status, 201) << made.body;
    const std::string watch = secrets + "?watch=true&timeoutSeconds=1&resourceVersion=";
    // Before the restart a watch from the older version replays the create.
    auto before = get(watch + old_rv);
    ASSERT_EQ(before.status, 200);
    EXPECT_NE(before.body.find(R"({"type":"ADDED")"), std::string::npos) << before.body;

    const std::string at_restart = list_rv(get(secrets));
    ASSERT_EQ(arm(R"({"restart": {"downSeconds": 0.5, "mode": "503"}})").status, 200);
    podpipe::testing::eventually([&] { return attempt("/version") == "503"; }, 5s);
    wait_serving();
    // The new watch cache starts at the version it listed: older ones are too old, as an
    // ERROR event in a 200 stream (the cacher's newErrWatcher).
    auto after = get(watch + old_rv);
    ASSERT_EQ(after.status, 200);
    const std::string expired = R"({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1",)"
                                R"("metadata":{},"status":"Failure","message":)";
    EXPECT_EQ(after.body, expired + "\"too old resource version: " + old_rv + " (" +
                              at_restart + R"x()","reason":"Expired","code":410}})x" + "\n");
    // From the version it starts at, a watch works and sees what comes after.
    auto later = std::async(std::launch::async, [&] { return get(watch + at_restart); });
    std::this_thread::sleep_for(200ms);
    ASSERT_EQ(https_request(port(), ca_file(), admin_token(), "POST", secrets,
                            R"({"metadata":{"name":"i20-after"},"stringData":{"k":"v"}})")
                  .status,
              201);
    auto seen = later.get();
    ASSERT_EQ(seen.status, 200);
    EXPECT_NE(seen.body.find("i20-after"), std::string::npos) << seen.body;
    EXPECT_EQ(seen.body.find("ERROR"), std::string::npos) << seen.body;
}

// kubeletRestart (README "Fault injection"): the API server stays up, but every exec session and
// log follow of the node's pods is cut at once; for the down time a new exec or log request gets
// the 500 the API server answers when it cannot dial the kubelet; then both work again. The pod
// and the exec'd process keep running (stdin at EOF), as after the restart's cut.
TEST_F(restart_test, kubelet_restart_cuts_the_node_streams_while_rest_works) {
    auto pod = get("/api/v1/namespaces/default/pods/p1");
    const auto at = pod.body.find(R"("nodeName":")");
    ASSERT_NE(at, std::string::npos) << pod.body;
    const std::string node = pod.body.substr(at + 12, pod.body.find('"', at + 12) - at - 12);
    // Another node's restart leaves this pod alone.
    EXPECT_EQ(arm(R"({"kubeletRestart": {"node": "node-9", "downSeconds": 1}})").status, 404);
    auto other = arm(std::string(R"({"kubeletRestart": {"node": ")") +
                     (node == "node-1" ? "node-2" : "node-1") + R"(", "downSeconds": 1}})");
    ASSERT_EQ(other.status, 200) << other.body;
    EXPECT_NE(other.body.find(R"("kubeletRestart":{"cut":0})"), std::string::npos) << other.body;
    EXPECT_EQ(attempt("/api/v1/namespaces/default/pods/p1/log?tailLines=1"), "200");
    EXPECT_EQ(kubectl("exec p1 -- true").exit_code, 0);

    auto exec = start_exec(survivor);
    auto log = std::async(std::launch::async, [&] {
        return attempt("/api/v1/namespaces/default/pods/p1/log?follow=true");
    });
    auto watch = std::async(std::launch::async, [&] {
        return attempt("/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=4");
    });
    std::this_thread::sleep_for(500ms);
    auto r = arm(R"({"kubeletRestart": {"node": ")" + node + R"(", "downSeconds": 2}})");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto armed = clock_type::now();
    EXPECT_NE(r.body.find(R"("kubeletRestart":{"cut":2})"), std::string::npos) << r.body;
    expect_exec_cut(*exec);
    ASSERT_TRUE(cut_in_time(log, "the log follow"));
    EXPECT_EQ(log.get().rfind("error: ", 0), 0u) << "the log follow ended cleanly";

    // Down: REST answers; exec and logs get the API server's dial error.
    EXPECT_EQ(get("/api/v1/namespaces/default/pods").status, 200);
    ws_exec_client refused(port(), ca_file(), admin_token());
    EXPECT_EQ(refused.open("/api/v1/namespaces/default/pods/p1/exec?command=true&stdout=true",
                           "v5.channel.k8s.io"),
              500);
    EXPECT_NE(refused.body().find("\"message\":\"error dialing backend: dial tcp "),
              std::string::npos) << refused.body();
    EXPECT_NE(refused.body().find(":10250: connect: connection refused\""), std::string::npos)
        << refused.body();
    EXPECT_EQ(refused.body().find("\"reason\""), std::string::npos) << refused.body();
    auto logs = get("/api/v1/namespaces/default/pods/p1/log?follow=true&tailLines=1");
    EXPECT_EQ(logs.status, 500);
    EXPECT_NE(logs.body.find("/containerLogs/default/p1/c1?follow=true&tailLines=1\\\": dial "
                             "tcp "),
              std::string::npos) << logs.body;
    EXPECT_EQ(kubectl("exec p1 -- true").exit_code, 1);

    // The watch (not served by a kubelet) was not cut.
    EXPECT_EQ(watch.wait_for(0s), std::future_status::timeout) << "the watch was cut";
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] { return kubectl("exec p1 -- cat /tmp/marker").output == "stdin-eof\n"; }, 10s));
    EXPECT_GE(clock_type::now() - armed, 1800ms);
    EXPECT_EQ(attempt("/api/v1/namespaces/default/pods/p1/log?tailLines=1"), "200");
    EXPECT_EQ(watch.get(), "200");
    pod = get("/api/v1/namespaces/default/pods/p1");
    EXPECT_NE(pod.body.find(R"("restartCount":0)"), std::string::npos) << pod.body;
    EXPECT_NE(kubectl("exec p1 -- ps").output.find("sleep 1000"), std::string::npos);
    EXPECT_EQ(arm(R"({"kubeletRestart": {"downSeconds": -1}})").status, 400);
}

} // namespace
} // namespace podpipe::kubesim::testing
