// What a kubelet and an API server (v1.32) do with updates of a running pod, over HTTPS:
// - a new image (PATCH of spec.containers[*].image) kills the container and starts it again
//   with that image, whatever the restartPolicy (kubelet computePodActions: the container's
//   hash changed), with the "Killing" event, restartCount + 1 and lastState;
// - a waiting container takes the new image at once, a terminated one that will not restart
//   keeps its state;
// - pods/status writes go through ValidatePodStatusUpdate (422 with upstream's causes).
#include "kubesim_fixture.hpp"
#include "test_client.hpp"

#include <chrono>
#include <future>
#include <thread>

#include <boost/json.hpp>

#include "tests/support/eventually.hpp"

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr const char* strategic = "application/strategic-merge-patch+json";
constexpr const char* merge = "application/merge-patch+json";
const std::string pods = "/api/v1/namespaces/default/pods";

class pod_update_test : public kubesim_fixture {
protected:
    http_reply call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& type = "application/json") {
        return https_request(port(), ca_file(), admin_token(), method, target, body,
                             {{"Content-Type", type}});
    }

    json::object get(const std::string& path) {
        auto r = call("GET", path);
        EXPECT_EQ(r.status, 200) << r.body;
        if (r.status != 200)
            return {};
        return json::parse(r.body).as_object();
    }

    /// The status of container `name` of pod `pod` (empty when not reported).
    json::object container_status(const std::string& pod, const std::string& name,
                                  const char* list = "containerStatuses") {
        auto p = get(pods + "/" + pod);
        const auto* st = p.if_contains("status");
        const auto* cs = st ? st->as_object().if_contains(list) : nullptr;
        if (!cs)
            return {};
        for (const auto& c : cs->as_array())
            if (c.at("name") == name.c_str())
                return c.as_object();
        return {};
    }

    static std::string message(const http_reply& r) {
        return std::string(json::parse(r.body).at("message").as_string());
    }

    /// The messages of the pod's events with `reason`, in time order, with " xN" when the
    /// event was recorded N > 1 times (a repeat increments the count, as client-go's
    /// correlator does).
    std::vector<std::string> events(const std::string& pod, const std::string& reason) {
        auto list = get("/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3D" +
                        pod + ",reason%3D" + reason);
        std::vector<std::string> out;
        if (const auto* items = list.if_contains("items"))
            for (const auto& e : items->as_array()) {
                std::string m(e.at("message").as_string());
                if (auto n = e.at("count").to_number<int>(); n > 1)
                    m += " x" + std::to_string(n);
                out.push_back(m);
            }
        return out;
    }
};

TEST_F(pod_update_test, new_image_restarts_the_container_even_under_restart_policy_never) {
    // c ignores SIGTERM, so the kubelet's SIGKILL at the end of the grace period ends it.
    auto r = call("POST", pods, R"({"metadata":{"name":"img"},
        "spec":{"restartPolicy":"Never","terminationGracePeriodSeconds":2,
                "containers":[
                  {"name":"c","image":"busybox:1.35",
                   "command":["sh","-c",
                              "trap '' TERM; echo i20img-instance; while :; do sleep 1; done"]},
                  {"name":"d","image":"busybox:1.35","command":["sleep","200011"]}]}})");
    ASSERT_EQ(r.status, 201) << r.body;
    ASSERT_EQ(wait_phase("img", "Running"), "Running");
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] { return container_status("img", "c").at("state").as_object().contains("running"); },
        20s));
    const std::string rv0 =
        std::string(get(pods + "/img").at("metadata").at("resourceVersion").as_string());
    // Every version of the pod from now on, to check it never looked finished on the way.
    auto history = std::async(std::launch::async, [&] {
        return https_request(port(), ca_file(), admin_token(), "GET",
                             pods + "?watch=true&fieldSelector=metadata.name%3Dimg&"
                                    "timeoutSeconds=8&resourceVersion=" + rv0);
    });
    std::this_thread::sleep_for(200ms);

    const auto t0 = std::chrono::steady_clock::now();
    auto p = call("PATCH", pods + "/img",
                  R"({"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}})", strategic);
    ASSERT_EQ(p.status, 200) << p.body;
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] {
            auto c = container_status("img", "c");
            return c.at("restartCount") == 1 &&
                   c.at("state").as_object().contains("running");
        },
        20s))
        << json::serialize(get(pods + "/img"));
    // Killed only after the 2 s grace (it ignores SIGTERM): exit 137.
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 2s);
    auto c = container_status("img", "c");
    EXPECT_EQ(c.at("image"), "busybox:1.36");
    EXPECT_EQ(c.at("lastState").at("terminated").at("exitCode"), 137);
    EXPECT_EQ(container_status("img", "d").at("restartCount"), 0);
    EXPECT_EQ(get(pods + "/img").at("status").at("phase"), "Running");

    EXPECT_EQ(events("img", "Killing"),
              std::vector<std::string>{"Container c definition changed, will be restarted"});
    EXPECT_EQ(events("img", "Started"),
              (std::vector<std::string>{"Started container c x2", "Started container d"}));
    EXPECT_EQ(events("img", "Created"),
              (std::vector<std::string>{"Created container: c x2", "Created container: d"}));
    // The previous instance's log is the one before the image change.
    auto prev = call("GET", pods + "/img/log?container=c&previous=true");
    EXPECT_EQ(prev.status, 200);
    EXPECT_EQ(prev.body, "i20img-instance\n");

    // The pod never looked finished while its container was replaced.
    auto h = history.get();
    ASSERT_EQ(h.status, 200);
    EXPECT_EQ(h.body.find(R"("phase":"Failed")"), std::string::npos) << h.body;
    EXPECT_EQ(h.body.find(R"("phase":"Succeeded")"), std::string::npos) << h.body;
    EXPECT_NE(h.body.find(R"("image":"busybox:1.36")"), std::string::npos);
}

TEST_F(pod_update_test, waiting_container_takes_the_new_image_terminated_one_keeps_its_state) {
    auto r = call("POST", pods, R"({"metadata":{"name":"w"},
        "spec":{"restartPolicy":"Never",
                "containers":[
                  {"name":"done","image":"busybox:1.35","command":["true"]},
                  {"name":"bad","image":"does-not-exist:1","command":["sleep","200012"]}]}})");
    ASSERT_EQ(r.status, 201) << r.body;
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] {
            auto d = container_status("w", "done");
            auto b = container_status("w", "bad");
            return !d.empty() && d.at("state").as_object().contains("terminated") && !b.empty() &&
                   b.at("state").as_object().contains("waiting") &&
                   b.at("state").at("waiting").at("reason") == "ErrImagePull";
        },
        20s))
        << json::serialize(get(pods + "/w"));
    auto p = call("PATCH", pods + "/w",
                  R"({"spec":{"containers":[{"name":"done","image":"busybox:1.36"},
                                            {"name":"bad","image":"busybox:1.36"}]}})",
                  strategic);
    ASSERT_EQ(p.status, 200) << p.body;
    // The waiting container starts with the new image without waiting out its back-off.
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] { return container_status("w", "bad").at("state").as_object().contains("running"); },
        5s))
        << json::serialize(get(pods + "/w"));
    EXPECT_EQ(container_status("w", "bad").at("image"), "busybox:1.36");
    EXPECT_EQ(container_status("w", "bad").at("restartCount"), 0);
    // The finished container is not run again (restartPolicy Never; it is not running).
    std::this_thread::sleep_for(1s);
    auto done = container_status("w", "done");
    EXPECT_EQ(done.at("restartCount"), 0);
    EXPECT_TRUE(done.at("state").as_object().contains("terminated")) << json::serialize(done);
    EXPECT_TRUE(events("w", "Killing").empty());
}

TEST_F(pod_update_test, finished_pod_is_not_restarted_by_a_new_image) {
    auto r = call("POST", pods, R"({"metadata":{"name":"f"},
        "spec":{"restartPolicy":"Never",
                "containers":[{"name":"c","image":"busybox:1.35","command":["true"]}]}})");
    ASSERT_EQ(r.status, 201) << r.body;
    ASSERT_EQ(wait_phase("f", "Succeeded"), "Succeeded");
    auto p = call("PATCH", pods + "/f",
                  R"({"spec":{"containers":[{"name":"c","image":"busybox:1.36"}]}})", strategic);
    ASSERT_EQ(p.status, 200) << p.body;
    std::this_thread::sleep_for(1s);
    EXPECT_EQ(get(pods + "/f").at("status").at("phase"), "Succeeded");
    EXPECT_EQ(container_status("f", "c").at("restartCount"), 0);
}

/// A 422's message and first cause, as "reason field".
std::string first_cause(const http_reply& r) {
    const json::value v = json::parse(r.body);
    const auto& c = v.at("details").at("causes").at(0);
    return std::string(c.at("reason").as_string()) + " " + std::string(c.at("field").as_string());
}

TEST_F(pod_update_test, status_writes_go_through_validate_pod_status_update) {
    auto r = call("POST", pods, R"({"metadata":{"name":"s"},
        "spec":{"containers":[{"name":"c","image":"busybox","command":["sleep","200013"]}]}})");
    ASSERT_EQ(r.status, 201) << r.body;
    ASSERT_EQ(wait_phase("s", "Running"), "Running");
    const std::string status = pods + "/s/status";
    struct bad_case {
        const char* patch;
        const char* message;
        const char* cause;
    };
    const bad_case cases[] = {
        {R"({"status":{"nominatedNodeName":"Node_1"}})",
         "Pod \"s\" is invalid: status.nominatedNodeName: Invalid value: \"Node_1\": a lowercase "
         "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
         "must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
         "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
         "FieldValueInvalid status.nominatedNodeName"},
        {R"({"status":{"conditions":[{"type":"bad type","status":"True"}]}})",
         "Pod \"s\" is invalid: metadata.conditions[0].Type: Invalid value: \"bad type\": name "
         "part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
         "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used "
         "for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')",
         "FieldValueInvalid metadata.conditions[0].Type"},
        {R"({"status":{"qosClass":"Guaranteed"}})",
         "Pod \"s\" is invalid: status.qosClass: Invalid value: \"Guaranteed\": field is "
         "immutable",
         "FieldValueInvalid status.qosClass"},
        {R"({"status":{"podIP":"10.0.0.300","podIPs":null}})",
         "Pod \"s\" is invalid: status.podIPs[0]: Invalid value: \"10.0.0.300\": must be a "
         "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)",
         "FieldValueInvalid status.podIPs[0]"},
        {R"({"status":{"podIP":"10.0.0.1","podIPs":[{"ip":"10.0.0.1"},{"ip":"10.0.0.1"}]}})",
         "Pod \"s\" is invalid: [status.podIPs: Invalid value: []core.PodIP{core.PodIP{IP:"
         "\"10.0.0.1\"}, core.PodIP{IP:\"10.0.0.1\"}}: may specify no more than one IP for each "
         "IP family, status.podIPs[1]: Duplicate value: core.PodIP{IP:\"10.0.0.1\"}]",
         "FieldValueInvalid status.podIPs"},
        {R"({"status":{"hostIP":"10.1.1.1","hostIPs":[{"ip":"10.1.1.2"}]}})",
         "Pod \"s\" is invalid: status.hostIPs[0].ip: Invalid value: \"10.1.1.2\": must be "
         "equal to `hostIP`",
         "FieldValueInvalid status.hostIPs[0].ip"},
    };
    const std::string before = json::serialize(get(pods + "/s").at("status").at("podIPs"));
    for (const auto& c : cases) {
        SCOPED_TRACE(c.patch);
        auto p = call("PATCH", status, c.patch, merge);
        ASSERT_EQ(p.status, 422) << p.body;
        EXPECT_EQ(message(p), c.message);
        EXPECT_EQ(first_cause(p), c.cause);
    }
    EXPECT_EQ(json::serialize(get(pods + "/s").at("status").at("podIPs")), before);

    // What upstream accepts: one IP of each family, custom condition types, statuses of
    // containers the spec does not have (upstream's comment: consumers must cope), a running
    // container under restartPolicy Always.
    auto ok = call("PATCH", status,
                   R"({"status":{"podIP":"10.0.0.1",
                                 "podIPs":[{"ip":"10.0.0.1"},{"ip":"fd00::1"}],
                                 "conditions":[{"type":"example.com/ready","status":"True"}],
                                 "containerStatuses":[{"name":"c","image":"busybox",
                                     "imageID":"","ready":true,"restartCount":0,
                                     "state":{"running":{}}},
                                   {"name":"ghost","image":"x","imageID":"","ready":false,
                                    "restartCount":0,"state":{"waiting":{}}}]}})",
                   merge);
    ASSERT_EQ(ok.status, 200) << ok.body;
    EXPECT_EQ(json::serialize(json::parse(ok.body).at("status").at("podIPs")),
              R"([{"ip":"10.0.0.1"},{"ip":"fd00::1"}])");
    // podIP wins over a different podIPs[0] (v1 conversion, for older kubelets).
    auto conv = call("PATCH", status,
                     R"({"status":{"podIP":"10.0.0.9","podIPs":[{"ip":"10.0.0.1"}]}})", merge);
    ASSERT_EQ(conv.status, 200) << conv.body;
    EXPECT_EQ(json::serialize(json::parse(conv.body).at("status").at("podIPs")),
              R"([{"ip":"10.0.0.9"}])");
}

TEST_F(pod_update_test, terminated_containers_stay_terminated_under_never_but_phase_is_free) {
    auto r = call("POST", pods, R"({"metadata":{"name":"t"},
        "spec":{"restartPolicy":"Never",
                "containers":[{"name":"c","image":"busybox","command":["true"]}]}})");
    ASSERT_EQ(r.status, 201) << r.body;
    ASSERT_EQ(wait_phase("t", "Succeeded"), "Succeeded");
    auto cs = container_status("t", "c");
    ASSERT_TRUE(cs.at("state").as_object().contains("terminated"));
    // Back to running: Forbidden, indexed by the old status list.
    json::object running = cs;
    running["state"] =
        json::object{{"running", json::object{{"startedAt", "2026-01-01T00:00:00Z"}}}};
    auto p = call("PATCH", pods + "/t/status",
                  json::serialize(json::object{
                      {"status", json::object{{"containerStatuses", json::array{running}}}}}),
                  merge);
    ASSERT_EQ(p.status, 422) << p.body;
    EXPECT_EQ(message(p), "Pod \"t\" is invalid: status.containerStatuses[0].state: Forbidden: "
                          "may not be transitioned to non-terminated state");
    EXPECT_EQ(first_cause(p), "FieldValueForbidden status.containerStatuses[0].state");
    // ValidatePodStatusUpdate has no rule for the phase itself: a v1.32 API server stores
    // Running over Succeeded when the container statuses stay terminated (the kubelet's status
    // manager is what refuses to leave a terminal phase).
    auto phase = call("PATCH", pods + "/t/status", R"({"status":{"phase":"Running"}})", merge);
    ASSERT_EQ(phase.status, 200) << phase.body;
    EXPECT_EQ(json::parse(phase.body).at("status").at("phase"), "Running");
}

} // namespace
} // namespace podpipe::kubesim::testing
