// Namespaces are objects (issue 20): the built-in ones exist, a create in a missing namespace is
// 404, namespaces are created, listed, labelled (merge patch, `kubectl label`) and deleted, and a
// deletion takes what is in it (pods by their normal graceful deletion) before the namespace goes.
#include <thread>

#include <boost/json.hpp>

#include "kubesim_fixture.hpp"
#include "test_client.hpp"

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;

class namespaces_test : public kubesim_fixture {
protected:
    /// `kubectl create namespace` sends protobuf, which kubesim does not read: create -f.
    command_result create_namespace(const std::string& name) {
        return kubectl("create --validate=false -f -",
                       "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + name + "}\n");
    }

    http_reply call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& type = "application/json") {
        return https_request(port(), ca_file(), admin_token(), method, target, body,
                             {{"Content-Type", type}});
    }

    static std::string message(const http_reply& r) {
        return std::string(json::parse(r.body).at("message").as_string());
    }
};

TEST_F(namespaces_test, built_in_namespaces_exist) {
    auto r = kubectl("get ns -o name");
    EXPECT_EQ(r.output, "namespace/default\nnamespace/kube-public\nnamespace/kube-system\n");
    EXPECT_EQ(
        kubectl("get ns default -o 'jsonpath={.metadata.labels.kubernetes\\.io/metadata\\.name}'")
            .output,
        "default");
}

TEST_F(namespaces_test, create_in_a_missing_namespace_is_not_found) {
    auto r =
        call("POST", "/api/v1/namespaces/nope/pods",
             R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}})");
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(message(r), "namespaces \"nope\" not found");
    auto s = call("POST", "/api/v1/namespaces/nope/secrets", R"({"metadata":{"name":"s"}})");
    EXPECT_EQ(s.status, 404);
    auto k = kubectl("create --validate=false -n nope -f -",
                     "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {a: b}\n");
    EXPECT_NE(k.exit_code, 0);
    EXPECT_NE(k.output.find("namespaces \"nope\" not found"), std::string::npos) << k.output;
}

TEST_F(namespaces_test, create_label_list_and_invalid_names) {
    auto created = create_namespace("team-a");
    ASSERT_EQ(created.exit_code, 0) << created.output;
    EXPECT_EQ(kubectl("get ns team-a -o jsonpath={.status.phase}").output, "Active");
    auto dup = create_namespace("team-a");
    EXPECT_NE(dup.output.find("namespaces \"team-a\" already exists"), std::string::npos)
        << dup.output;
    auto labelled = kubectl("label namespace team-a pod-security.kubernetes.io/enforce=baseline");
    ASSERT_EQ(labelled.exit_code, 0) << labelled.output;
    EXPECT_EQ(kubectl("get ns -l pod-security.kubernetes.io/enforce=baseline -o name").output,
              "namespace/team-a\n");
    auto bad_label =
        call("PATCH", "/api/v1/namespaces/team-a", R"({"metadata":{"labels":{"x":"-bad"}}})",
             "application/merge-patch+json");
    EXPECT_EQ(bad_label.status, 422) << bad_label.body;
    auto bad = call("POST", "/api/v1/namespaces", R"({"metadata":{"name":"a.b"}})");
    EXPECT_EQ(bad.status, 422);
    EXPECT_EQ(
        message(bad),
        "Namespace \"a.b\" is invalid: metadata.name: Invalid value: \"a.b\": must not contain "
        "dots");
    // Pods now go into the new namespace.
    auto pod =
        call("POST", "/api/v1/namespaces/team-a/pods",
             R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox"}]}})");
    EXPECT_EQ(pod.status, 201) << pod.body;
}

TEST_F(namespaces_test, built_in_namespaces_cannot_be_deleted) {
    auto r = call("DELETE", "/api/v1/namespaces/default");
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(message(r), "namespaces \"default\" is forbidden: this namespace may not be deleted");
}

TEST_F(namespaces_test, deleting_a_namespace_deletes_what_is_in_it) {
    ASSERT_EQ(create_namespace("gone").exit_code, 0);
    ASSERT_EQ(kubectl("create --validate=false -n gone -f -", R"(apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  terminationGracePeriodSeconds: 2
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "trap 'echo bye; exit 0' TERM; while true; do sleep 0.1; done"]
)")
                  .exit_code,
              0);
    ASSERT_EQ(
        call("POST", "/api/v1/namespaces/gone/secrets", R"({"metadata":{"name":"s"}})").status,
        201);
    for (int i = 0; i < 100; ++i) {
        if (kubectl("get pod sleeper -n gone -o jsonpath={.status.phase}").output == "Running")
            break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto del = call("DELETE", "/api/v1/namespaces/gone");
    ASSERT_EQ(del.status, 200) << del.body;
    EXPECT_EQ(std::string(json::parse(del.body).at("status").at("phase").as_string()),
              "Terminating");
    // While terminating: new content is refused.
    auto refused = call("POST", "/api/v1/namespaces/gone/secrets", R"({"metadata":{"name":"t"}})");
    EXPECT_EQ(refused.status, 403);
    EXPECT_EQ(message(refused), "secrets \"t\" is forbidden: unable to create new content in "
                                "namespace gone because it is being terminated");
    EXPECT_EQ(call("GET", "/api/v1/namespaces/gone/secrets/s").status, 404);
    // The pod is deleted gracefully (deletionTimestamp, its TERM trap), then the namespace goes.
    bool gone = false;
    for (int i = 0; i < 100 && !gone; ++i) {
        gone = call("GET", "/api/v1/namespaces/gone").status == 404;
        if (!gone)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(gone);
    EXPECT_EQ(call("GET", "/api/v1/namespaces/gone/pods/sleeper").status, 404);
    EXPECT_EQ(kubectl("get ns -o name").output,
              "namespace/default\nnamespace/kube-public\nnamespace/kube-system\n");
}

} // namespace
} // namespace podpipe::kubesim::testing
