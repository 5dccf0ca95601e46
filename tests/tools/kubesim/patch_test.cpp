// PUT and PATCH of pods and secrets over HTTPS, as a v1.32 API server answers them: the three
// patch types (merge, strategic with merge keys and $patch directives, JSON patch and its 422s),
// 415 for other types, ValidatePodUpdate's Forbidden text, immutable metadata and secrets, the
// resourceVersion conflict, dryRun, fieldValidation, no-op updates, watch MODIFIED events and
// label selectors after a label patch; then kubectl patch/label/annotate/replace.
#include "kubesim_fixture.hpp"
#include "test_client.hpp"

#include <thread>

#include <boost/json.hpp>

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;

constexpr const char* merge = "application/merge-patch+json";
constexpr const char* strategic = "application/strategic-merge-patch+json";
constexpr const char* jsonpatch = "application/json-patch+json";

const std::string pod_path = "/api/v1/namespaces/default/pods/p";
const std::string secret_path = "/api/v1/namespaces/default/secrets/s";

class patch_test : public kubesim_fixture {
protected:
    http_reply call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& type = "application/json") {
        return https_request(port(), ca_file(), admin_token(), method, target, body,
                             {{"Content-Type", type}});
    }

    void make_pod() {
        auto r = call("POST", "/api/v1/namespaces/default/pods",
                      R"({"metadata":{"name":"p","labels":{"app":"a"}},
                          "spec":{"restartPolicy":"Never",
                                  "containers":[{"name":"c","image":"busybox",
                                                 "env":[{"name":"A","value":"1"}]},
                                                {"name":"d","image":"busybox"}]}})");
        ASSERT_EQ(r.status, 201) << r.body;
    }

    void make_secret(const std::string& extra = "") {
        auto r = call("POST", "/api/v1/namespaces/default/secrets",
                      R"({"metadata":{"name":"s"},"stringData":{"k":"v"})" + extra + "}");
        ASSERT_EQ(r.status, 201) << r.body;
    }

    json::object get(const std::string& path) {
        auto r = call("GET", path);
        EXPECT_EQ(r.status, 200) << r.body;
        return json::parse(r.body).as_object();
    }

    static std::string message(const http_reply& r) {
        auto v = json::parse(r.body);
        return std::string(v.at("message").as_string());
    }

    static std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

    static std::string rv(const json::object& o) {
        return std::string(o.at("metadata").at("resourceVersion").as_string());
    }
};

TEST_F(patch_test, three_patch_types_change_labels_and_images) {
    make_pod();
    auto m = call("PATCH", pod_path, R"({"metadata":{"labels":{"tier":"x","app":null}}})", merge);
    ASSERT_EQ(m.status, 200) << m.body;
    auto labels = json::parse(m.body).at("metadata").at("labels").as_object();
    EXPECT_EQ(json::serialize(labels), R"({"tier":"x"})");

    // Strategic: containers merge by name (only c changes; d stays), env by name.
    auto s = call("PATCH", pod_path,
                  R"({"spec":{"containers":[{"name":"c","image":"busybox:1.36",
                       "env":[{"name":"A","value":"1"}]}]}})",
                  strategic);
    ASSERT_EQ(s.status, 200) << s.body;
    auto spec = json::parse(s.body).at("spec").as_object();
    ASSERT_EQ(spec.at("containers").as_array().size(), 2u);
    EXPECT_EQ(spec.at("containers").at(0).at("image"), "busybox:1.36");
    EXPECT_EQ(spec.at("containers").at(1).at("image"), "busybox");

    // The same change as a merge patch replaces the list: d would be removed → Forbidden.
    auto mm = call("PATCH", pod_path,
                   R"({"spec":{"containers":[{"name":"c","image":"busybox:1.37"}]}})", merge);
    EXPECT_EQ(mm.status, 422) << mm.body;
    EXPECT_EQ(message(mm),
              "Pod \"p\" is invalid: spec.containers: Forbidden: pod updates may not add or "
              "remove containers");

    // JSON patch: add, replace, copy, move, test, remove.
    auto j = call("PATCH", pod_path,
                  R"([{"op":"add","path":"/metadata/annotations","value":{"a/b":"1"}},
                      {"op":"replace","path":"/spec/containers/1/image","value":"busybox:2"},
                      {"op":"copy","from":"/metadata/annotations/a~1b","path":"/metadata/labels/c"},
                      {"op":"move","from":"/metadata/labels/c","path":"/metadata/labels/d"},
                      {"op":"test","path":"/metadata/labels/d","value":"1"},
                      {"op":"remove","path":"/metadata/labels/tier"}])",
                  jsonpatch);
    ASSERT_EQ(j.status, 200) << j.body;
    auto obj = json::parse(j.body).as_object();
    EXPECT_EQ(json::serialize(obj.at("metadata").at("labels")), R"({"d":"1"})");
    EXPECT_EQ(obj.at("spec").at("containers").at(1).at("image"), "busybox:2");

    // Strategic $patch: delete of a whole map.
    auto del_map = call("PATCH", pod_path, R"({"metadata":{"annotations":{"$patch":"delete"}}})",
                        strategic);
    ASSERT_EQ(del_map.status, 200) << del_map.body;
    EXPECT_FALSE(json::parse(del_map.body).at("metadata").as_object().contains("annotations"));

    // Strategic $patch: delete of a list element by merge key, here an env var.
    auto del =
        call("PATCH", pod_path,
             R"({"spec":{"containers":[{"name":"c","env":[{"name":"A","$patch":"delete"}]}]}})",
             strategic);
    EXPECT_EQ(del.status, 422) << del.body; // env is not updatable: Forbidden with a diff
    EXPECT_EQ(first_line(message(del)),
              "Pod \"p\" is invalid: spec: Forbidden: pod updates may not change fields other "
              "than `spec.containers[*].image`,`spec.initContainers[*].image`,"
              "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
              "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
              "was previously negative)");
    EXPECT_NE(message(del).find("core.PodSpec{"), std::string::npos) << message(del);
    EXPECT_NE(message(del).find("- \tContainers:"), std::string::npos) << message(del);
}

TEST_F(patch_test, json_patch_failures_as_upstream) {
    make_pod();
    auto t = call("PATCH", pod_path, R"([{"op":"test","path":"/metadata/labels/app","value":"b"}])",
                  jsonpatch);
    EXPECT_EQ(t.status, 422) << t.body;
    auto st = json::parse(t.body).as_object();
    EXPECT_EQ(st.at("reason"), "Invalid");
    EXPECT_EQ(st.at("message"), "the server rejected our request due to an error in our request");
    EXPECT_EQ(st.at("details").at("causes").at(0).at("reason"), "UnexpectedServerResponse");
    EXPECT_EQ(st.at("details").at("causes").at(0).at("message"),
              "testing value /metadata/labels/app failed: test failed");
    auto rm =
        call("PATCH", pod_path, R"([{"op":"remove","path":"/metadata/labels/nope"}])", jsonpatch);
    EXPECT_EQ(rm.status, 422);
    EXPECT_EQ(json::parse(rm.body).at("details").at("causes").at(0).at("message"),
              "error in remove for path: '/metadata/labels/nope': Unable to remove nonexistent "
              "key: nope: missing value");
    auto rp = call("PATCH", pod_path, R"([{"op":"replace","path":"/metadata/x/y","value":1}])",
                   jsonpatch);
    EXPECT_EQ(rp.status, 422);
    auto obj = call("PATCH", pod_path, R"({"op":"add"})", jsonpatch);
    EXPECT_EQ(obj.status, 400) << obj.body;
    EXPECT_EQ(message(obj), "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
    auto bad_merge = call("PATCH", pod_path, "[1]", merge);
    EXPECT_EQ(bad_merge.status, 400);
    EXPECT_EQ(message(bad_merge), "Invalid JSON Patch");
    for (const char* type : {"application/json", "application/apply-patch+yaml", "text/plain"}) {
        auto u = call("PATCH", pod_path, "{}", type);
        EXPECT_EQ(u.status, 415) << type;
        EXPECT_EQ(message(u),
                  "the body of the request was in an unknown format - accepted media types "
                  "include: application/json-patch+json, application/merge-patch+json, "
                  "application/apply-patch+yaml, application/strategic-merge-patch+json");
    }
    auto missing = call("PATCH", "/api/v1/namespaces/default/pods/nope", "{}", merge);
    EXPECT_EQ(missing.status, 404);
    EXPECT_EQ(message(missing), "pods \"nope\" not found");
}

TEST_F(patch_test, pod_update_rules) {
    make_pod();
    auto set = call("PATCH", pod_path, R"({"spec":{"activeDeadlineSeconds":100}})", merge);
    EXPECT_EQ(set.status, 200) << set.body;
    auto raise = call("PATCH", pod_path, R"({"spec":{"activeDeadlineSeconds":200}})", merge);
    EXPECT_EQ(raise.status, 422);
    EXPECT_EQ(message(raise), "Pod \"p\" is invalid: spec.activeDeadlineSeconds: Invalid value: "
                              "200: must be less than or equal to previous value");
    auto unset = call("PATCH", pod_path, R"({"spec":{"activeDeadlineSeconds":null}})", merge);
    EXPECT_EQ(unset.status, 422);
    EXPECT_EQ(message(unset), "Pod \"p\" is invalid: spec.activeDeadlineSeconds: Invalid value: "
                              "\"null\": must not update from a positive integer to nil value");
    auto lower = call("PATCH", pod_path, R"({"spec":{"activeDeadlineSeconds":50}})", merge);
    EXPECT_EQ(lower.status, 200);
    auto tol = call("PATCH", pod_path,
                    R"({"spec":{"tolerations":[{"key":"k","operator":"Exists"}]}})", merge);
    EXPECT_EQ(tol.status, 200) << tol.body;
    auto tol_rm = call("PATCH", pod_path, R"({"spec":{"tolerations":[]}})", merge);
    EXPECT_EQ(tol_rm.status, 422);
    EXPECT_EQ(message(tol_rm), "Pod \"p\" is invalid: spec.tolerations: Forbidden: existing "
                               "toleration can not be modified except its tolerationSeconds");
    auto no_image =
        call("PATCH", pod_path, R"({"spec":{"containers":[{"name":"c","image":""}]}})", strategic);
    EXPECT_EQ(no_image.status, 422);
    EXPECT_EQ(message(no_image), "Pod \"p\" is invalid: spec.containers[0].image: Required value");
    auto node = call("PATCH", pod_path, R"({"spec":{"nodeName":"elsewhere"}})", merge);
    EXPECT_EQ(node.status, 422);
    EXPECT_NE(message(node).find("+ \tNodeName: \"elsewhere\","), std::string::npos)
        << message(node);
    // Metadata: uid and creationTimestamp are immutable, name and namespace are 400s.
    auto uid = call("PATCH", pod_path, R"({"metadata":{"uid":"x"}})", merge);
    EXPECT_EQ(uid.status, 422);
    EXPECT_EQ(message(uid),
              "Pod \"p\" is invalid: metadata.uid: Invalid value: \"x\": field is immutable");
    auto rename = call("PATCH", pod_path, R"({"metadata":{"name":"q"}})", merge);
    EXPECT_EQ(rename.status, 400);
    EXPECT_EQ(message(rename), "the name of the object (q) does not match the name on the URL (p)");
    auto ns = call("PATCH", pod_path, R"({"metadata":{"namespace":"kube-system"}})", merge);
    EXPECT_EQ(ns.status, 400);
    EXPECT_EQ(message(ns), "the namespace of the provided object does not match the namespace "
                           "sent on the request");
    auto label = call("PATCH", pod_path, R"({"metadata":{"labels":{"x":"-bad"}}})", merge);
    EXPECT_EQ(label.status, 422);
    // Status cannot be changed through the pod itself.
    auto status = call("PATCH", pod_path, R"({"status":{"phase":"Failed"}})", merge);
    EXPECT_EQ(status.status, 200);
    EXPECT_NE(json::parse(status.body).at("status").at("phase"), "Failed");
}

TEST_F(patch_test, status_subresource_changes_status_and_metadata_only) {
    make_pod();
    ASSERT_EQ(wait_phase("p", "Running"), "Running");
    auto r = call("PATCH", pod_path + "/status",
                  R"({"metadata":{"labels":{"s":"1"}},"spec":{"nodeName":"x"},
                      "status":{"message":"from a controller"}})",
                  merge);
    ASSERT_EQ(r.status, 200) << r.body;
    auto pod = get(pod_path);
    EXPECT_EQ(pod.at("status").at("message"), "from a controller");
    EXPECT_EQ(pod.at("metadata").at("labels").at("s"), "1");
    EXPECT_NE(pod.at("spec").at("nodeName"), "x");
    EXPECT_EQ(pod.at("status").at("phase"), "Running");
}

TEST_F(patch_test, put_conflicts_noops_dry_run_and_field_validation) {
    make_pod();
    ASSERT_EQ(wait_phase("p", "Running"), "Running");
    // The kubelet's status updates bump the resourceVersion while the pod starts: a client
    // re-reads and retries, as against a real cluster.
    json::object pod;
    std::string old_rv;
    http_reply put;
    for (int i = 0; i < 20 && put.status != 200; ++i) {
        pod = get(pod_path);
        old_rv = rv(pod);
        pod["metadata"].as_object()["labels"].as_object()["v"] = "1";
        put = call("PUT", pod_path, json::serialize(pod));
        if (put.status == 409)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ASSERT_EQ(put.status, 200) << put.body;
    // The same body again carries a resourceVersion that is no longer current.
    auto stale = call("PUT", pod_path, json::serialize(pod));
    EXPECT_EQ(stale.status, 409);
    EXPECT_EQ(message(stale), "Operation cannot be fulfilled on pods \"p\": the object has been "
                              "modified; please apply your changes to the latest version and try "
                              "again");
    EXPECT_EQ(json::parse(stale.body).at("reason"), "Conflict");
    // Without a resourceVersion a PUT is unconditional (pods allow it).
    pod["metadata"].as_object().erase("resourceVersion");
    pod["metadata"].as_object()["labels"].as_object()["v"] = "2";
    auto uncond = call("PUT", pod_path, json::serialize(pod));
    EXPECT_EQ(uncond.status, 200) << uncond.body;
    auto wrong_name = call("PUT", "/api/v1/namespaces/default/pods/other", json::serialize(pod));
    EXPECT_EQ(wrong_name.status, 400);
    EXPECT_EQ(message(wrong_name),
              "the name of the object (p) does not match the name on the URL (other)");
    // A patch naming a stale resourceVersion conflicts too.
    auto stale_patch =
        call("PATCH", pod_path, R"({"metadata":{"resourceVersion":")" + old_rv + R"("}})", merge);
    EXPECT_EQ(stale_patch.status, 409);
    // No-op: no new resourceVersion.
    std::string before = rv(get(pod_path));
    auto noop = call("PATCH", pod_path, R"({"metadata":{"labels":{"v":"2"}}})", merge);
    EXPECT_EQ(noop.status, 200);
    EXPECT_EQ(rv(json::parse(noop.body).as_object()), before);
    // dryRun=All answers the result, stores nothing.
    auto dry =
        call("PATCH", pod_path + "?dryRun=All", R"({"metadata":{"labels":{"v":"3"}}})", merge);
    EXPECT_EQ(dry.status, 200);
    EXPECT_EQ(json::parse(dry.body).at("metadata").at("labels").at("v"), "3");
    EXPECT_EQ(get(pod_path).at("metadata").at("labels").at("v"), "2");
    // Unknown fields: a warning by default, 422 on `patch` under Strict, 400 for a strict PUT.
    auto warn = call("PATCH", pod_path, R"({"spec":{"bogus":1}})", merge);
    EXPECT_EQ(warn.status, 200);
    EXPECT_EQ(warn.headers["warning"], "299 - \"unknown field \\\"spec.bogus\\\"\"");
    auto strict =
        call("PATCH", pod_path + "?fieldValidation=Strict", R"({"spec":{"bogus":1}})", merge);
    EXPECT_EQ(strict.status, 422);
    EXPECT_EQ(message(strict).substr(0, 40), " \"\" is invalid: patch: Invalid value: \"{");
    EXPECT_NE(message(strict).find("strict decoding error: unknown field \"spec.bogus\""),
              std::string::npos);
    auto strict_put = call("PUT", pod_path + "?fieldValidation=Strict",
                           R"({"metadata":{"name":"p"},"bogus":1,"spec":{"containers":[]}})");
    EXPECT_EQ(strict_put.status, 400);
    EXPECT_EQ(message(strict_put), "Pod in version \"v1\" cannot be handled as a Pod: strict "
                                   "decoding error: unknown field \"bogus\"");
}

TEST_F(patch_test, label_patch_reaches_watch_and_selectors) {
    make_pod();
    std::string from = rv(get(pod_path));
    http_reply stream;
    std::thread watcher([&] {
        stream = https_request(port(), ca_file(), admin_token(), "GET",
                               "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=2"
                               "&labelSelector=team%3Dblue&resourceVersion=" +
                                   from);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto r = call("PATCH", pod_path, R"({"metadata":{"labels":{"team":"blue"}}})", strategic);
    ASSERT_EQ(r.status, 200) << r.body;
    watcher.join();
    // Entering the selection through a MODIFIED is an ADDED for this watch.
    EXPECT_NE(stream.body.find(R"({"type":"ADDED")"), std::string::npos) << stream.body;
    EXPECT_NE(stream.body.find(R"("team":"blue")"), std::string::npos);
    auto list = call("GET", "/api/v1/namespaces/default/pods?labelSelector=team%3Dblue");
    EXPECT_EQ(json::parse(list.body).at("items").as_array().size(), 1u);
    // And a plain watch sees MODIFIED.
    std::string from2 = rv(get(pod_path));
    std::thread watcher2([&] {
        stream = https_request(port(), ca_file(), admin_token(), "GET",
                               "/api/v1/namespaces/default/pods?watch=true&timeoutSeconds=2"
                               "&resourceVersion=" +
                                   from2);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto a = call("PATCH", pod_path, R"({"metadata":{"annotations":{"note":"x"}}})", merge);
    ASSERT_EQ(a.status, 200);
    watcher2.join();
    EXPECT_NE(stream.body.find(R"({"type":"MODIFIED")"), std::string::npos) << stream.body;
    EXPECT_NE(stream.body.find(R"("note":"x")"), std::string::npos);
}

TEST_F(patch_test, secrets_update_type_and_immutable) {
    make_secret();
    auto p = call("PATCH", secret_path,
                  R"({"stringData":{"k2":"w"},"metadata":{"labels":{"a":"b"}}})", merge);
    ASSERT_EQ(p.status, 200) << p.body;
    auto data = json::parse(p.body).at("data").as_object();
    EXPECT_EQ(data.at("k"), "dg==");
    EXPECT_EQ(data.at("k2"), "dw==");
    auto type = call("PATCH", secret_path, R"({"type":"kubernetes.io/tls"})", merge);
    EXPECT_EQ(type.status, 422);
    EXPECT_EQ(message(type), "Secret \"s\" is invalid: type: Invalid value: "
                             "\"kubernetes.io/tls\": field is immutable");
    auto bad = call("PATCH", secret_path, R"({"data":{"x":"%%%"}})", merge);
    EXPECT_EQ(bad.status, 422) << bad.body;
    auto imm = call("PATCH", secret_path, R"({"immutable":true})", merge);
    ASSERT_EQ(imm.status, 200) << imm.body;
    auto change = call("PATCH", secret_path, R"({"data":{"k":"eA=="}})", merge);
    EXPECT_EQ(change.status, 422);
    EXPECT_EQ(message(change), "Secret \"s\" is invalid: data: Forbidden: field is immutable when "
                               "`immutable` is set");
    auto off = call("PATCH", secret_path, R"({"immutable":false})", merge);
    EXPECT_EQ(off.status, 422);
    EXPECT_EQ(message(off), "Secret \"s\" is invalid: immutable: Forbidden: field is immutable "
                            "when `immutable` is set");
    // Labels may still change on an immutable secret.
    auto label = call("PATCH", secret_path, R"({"metadata":{"labels":{"a":"c"}}})", merge);
    EXPECT_EQ(label.status, 200);
    auto put = get(secret_path);
    put["data"].as_object()["k"] = "eQ==";
    auto r = call("PUT", secret_path, json::serialize(put));
    EXPECT_EQ(r.status, 422);
}

TEST_F(patch_test, kubectl_patch_label_annotate_replace) {
    make_pod();
    ASSERT_EQ(wait_phase("p", "Running"), "Running");
    auto p = kubectl("patch pod p -p '{\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
                     "\"busybox:1.36\"}]}}'");
    ASSERT_EQ(p.exit_code, 0) << p.output;
    EXPECT_EQ(p.output, "pod/p patched\n");
    EXPECT_EQ(kubectl("get pod p -o jsonpath={.spec.containers[0].image}").output, "busybox:1.36");
    auto j = kubectl("patch pod p --type json -p "
                     "'[{\"op\":\"add\",\"path\":\"/metadata/labels/j\",\"value\":\"1\"}]'");
    EXPECT_EQ(j.exit_code, 0) << j.output;
    auto l = kubectl("label pod p color=red");
    ASSERT_EQ(l.exit_code, 0) << l.output;
    EXPECT_EQ(l.output, "pod/p labeled\n");
    EXPECT_EQ(kubectl("get pods -l color=red -o name").output, "pod/p\n");
    auto a = kubectl("annotate pod p note=hello");
    ASSERT_EQ(a.exit_code, 0) << a.output;
    EXPECT_EQ(kubectl("get pod p -o jsonpath={.metadata.annotations.note}").output, "hello");
    auto overwrite = kubectl("label pod p color=blue");
    EXPECT_NE(overwrite.exit_code, 0);
    EXPECT_NE(overwrite.output.find("'color' already has a value (red), and --overwrite is false"),
              std::string::npos)
        << overwrite.output;
    auto bad = kubectl("patch pod p -p '{\"spec\":{\"restartPolicy\":\"Always\"}}'");
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.output.find("The Pod \"p\" is invalid: spec: Forbidden: pod updates may not "
                              "change fields other than `spec.containers[*].image`"),
              std::string::npos)
        << bad.output;
    auto test_fail =
        kubectl("patch pod p --type json -p "
                "'[{\"op\":\"test\",\"path\":\"/metadata/labels/j\",\"value\":\"2\"}]'");
    EXPECT_NE(test_fail.exit_code, 0);
    // kubectl prints the cause of the 422 (its field is empty).
    EXPECT_EQ(test_fail.output,
              "The request is invalid: : testing value /metadata/labels/j failed: test failed\n");
    auto yaml = kubectl("get pod p -o yaml");
    ASSERT_EQ(yaml.exit_code, 0);
    std::string edited = yaml.output;
    auto pos = edited.find("color: red");
    ASSERT_NE(pos, std::string::npos);
    edited.replace(pos, 10, "color: green");
    auto rep = kubectl("replace --validate=false -f -", edited);
    EXPECT_EQ(rep.exit_code, 0) << rep.output;
    EXPECT_EQ(kubectl("get pod p -o jsonpath={.metadata.labels.color}").output, "green");
    // The same (now stale) resourceVersion again: the conflict kubectl prints.
    auto again = kubectl("replace --validate=false -f -", edited);
    EXPECT_NE(again.exit_code, 0);
    EXPECT_NE(again.output.find("the object has been modified; please apply your changes to the "
                                "latest version and try again"),
              std::string::npos)
        << again.output;
}

} // namespace
} // namespace podpipe::kubesim::testing
