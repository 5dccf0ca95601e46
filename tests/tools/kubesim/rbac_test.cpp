// RBAC (--rbac FILE): 403 Forbidden Status in the upstream wording for kubectl and raw HTTPS,
// pods/exec guarded as verb get over WebSocket, and SelfSubjectAccessReview from the same rules.
#include <filesystem>
#include <fstream>

#include "kubesim_fixture.hpp"
#include "test_client.hpp"

namespace podpipe::kubesim::testing {
namespace {

constexpr const char* limited_token = "limited-token-0123456789";
constexpr const char* limited_user = "system:serviceaccount:default:runner";

class rbac_test : public kubesim_fixture {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kubesim-rbac-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        policy_dir_ = tmpl;
        std::ofstream(policy_dir_ + "/rbac.json")
            << R"({"users": [{"token": ")" << limited_token << R"(", "user": ")" << limited_user
            << R"(", "rules": [
                 {"verbs": ["get", "list", "watch"], "resources": ["pods", "pods/log"], "namespaces": ["default"]},
                 {"verbs": ["create"], "resources": ["secrets"], "namespaces": ["default"]}]}]})";
        extra_args_ = {"--rbac", policy_dir_ + "/rbac.json"};
        kubesim_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: p1}
spec:
  containers: [{name: c1, image: busybox, command: ["sleep", "1000000"]}]
)");
        ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    }
    void TearDown() override {
        kubesim_fixture::TearDown();
        std::error_code ec;
        std::filesystem::remove_all(policy_dir_, ec);
    }
    command_result limited(const std::string& args) {
        return kubectl(std::string("--token ") + limited_token + " " + args);
    }
    std::string ssar(const std::string& token, const std::string& attrs) {
        auto r = https_request(port(), ca_file(), token, "POST",
                               "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                               R"({"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview",)"
                               R"("spec":{"resourceAttributes":)" + attrs + "}}");
        EXPECT_EQ(r.status, 201) << r.body;
        return r.body;
    }
    std::string policy_dir_;
};

TEST_F(rbac_test, allowed_requests_pass) {
    auto r = limited("get pods -o name");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "pod/p1\n");
    // (`kubectl create secret generic` would send protobuf, which kubesim does not speak.)
    auto s = kubectl(std::string("--token ") + limited_token + " create -f - --validate=false",
                     "apiVersion: v1\nkind: Secret\nmetadata: {name: s1}\nstringData: {a: b}\n");
    EXPECT_EQ(s.exit_code, 0) << s.output;
}

TEST_F(rbac_test, denied_requests_show_upstream_forbidden_message) {
    auto get = limited("get pod p1 -n kube-system");
    EXPECT_NE(get.exit_code, 0);
    EXPECT_NE(get.output.find(std::string("Error from server (Forbidden): pods \"p1\" is forbidden: User \"") +
                              limited_user +
                              "\" cannot get resource \"pods\" in API group \"\" in the namespace \"kube-system\""),
              std::string::npos)
        << get.output;
    auto del = limited("delete pod p1");
    EXPECT_NE(del.exit_code, 0);
    EXPECT_NE(del.output.find("cannot delete resource \"pods\" in API group \"\" in the namespace \"default\""),
              std::string::npos)
        << del.output;
    auto nodes = limited("get nodes");
    EXPECT_NE(nodes.exit_code, 0);
    EXPECT_NE(nodes.output.find("nodes is forbidden: User \"" + std::string(limited_user) +
                                "\" cannot list resource \"nodes\" in API group \"\" at the cluster scope"),
              std::string::npos)
        << nodes.output;
    auto exec = limited("exec p1 -- true");
    EXPECT_NE(exec.exit_code, 0);
    EXPECT_NE(exec.output.find("resource \"pods/exec\" in API group \"\" in the namespace \"default\""),
              std::string::npos)
        << exec.output;
    // The admin token is unaffected.
    EXPECT_EQ(kubectl("exec p1 -- true").exit_code, 0);
}

TEST_F(rbac_test, raw_forbidden_status_json) {
    auto r = https_request(port(), ca_file(), limited_token, "DELETE", "/api/v1/namespaces/default/pods/p1");
    EXPECT_EQ(r.status, 403);
    EXPECT_EQ(r.body, std::string(R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)") +
                          R"("message":"pods \"p1\" is forbidden: User \")" + limited_user +
                          R"(\" cannot delete resource \"pods\" in API group \"\" in the namespace \"default\"",)"
                          R"("reason":"Forbidden","details":{"name":"p1","kind":"pods"},"code":403})");
    // WebSocket exec is checked as verb get on pods/exec; the Status comes back on the upgrade.
    ws_exec_client c(port(), ca_file(), limited_token);
    EXPECT_EQ(c.open("/api/v1/namespaces/default/pods/p1/exec?command=true&stdout=true", "v5.channel.k8s.io"),
              403);
    EXPECT_NE(c.body().find(R"(cannot get resource \"pods/exec\" in API group \"\" in the namespace \"default\")"),
              std::string::npos)
        << c.body();
}

TEST_F(rbac_test, self_subject_access_review_uses_the_same_rules) {
    auto yes = ssar(limited_token, R"({"namespace":"default","verb":"get","group":"","resource":"pods"})");
    EXPECT_NE(yes.find(R"("status":{"allowed":true)"), std::string::npos) << yes;
    EXPECT_NE(yes.find(R"("kind":"SelfSubjectAccessReview")"), std::string::npos) << yes;
    auto log = ssar(limited_token, R"({"namespace":"default","verb":"get","resource":"pods","subresource":"log"})");
    EXPECT_NE(log.find(R"("allowed":true)"), std::string::npos) << log;
    auto exec = ssar(limited_token,
                     R"({"namespace":"default","verb":"create","resource":"pods","subresource":"exec"})");
    EXPECT_NE(exec.find(R"("status":{"allowed":false})"), std::string::npos) << exec;
    auto other_ns = ssar(limited_token, R"({"namespace":"kube-system","verb":"list","resource":"pods"})");
    EXPECT_NE(other_ns.find(R"("allowed":false)"), std::string::npos) << other_ns;
    auto admin = ssar(admin_token(), R"({"namespace":"default","verb":"create","resource":"pods","subresource":"exec"})");
    EXPECT_NE(admin.find(R"("allowed":true)"), std::string::npos) << admin;
}

TEST_F(rbac_test, kubectl_auth_can_i_over_protobuf) {
    // kubectl posts the SelfSubjectAccessReview as protobuf; kubesim decodes it and decides with
    // the same rules.
    auto yes = limited("auth can-i get pods");
    EXPECT_EQ(yes.exit_code, 0) << yes.output;
    EXPECT_EQ(yes.output, "yes\n");
    auto no = limited("auth can-i delete pods");
    EXPECT_EQ(no.exit_code, 1) << no.output;
    EXPECT_EQ(no.output, "no\n");
    EXPECT_EQ(limited("auth can-i create secrets -n default").output, "yes\n");
    EXPECT_EQ(limited("auth can-i create secrets -n other").output, "no\n");
    EXPECT_EQ(limited("auth can-i get pods --subresource=log").output, "yes\n");
    EXPECT_EQ(limited("auth can-i create pods --subresource=exec").output, "no\n");
    EXPECT_EQ(kubectl("auth can-i delete pods -n kube-system").output, "yes\n"); // the admin token
    // Garbage with the protobuf content type is a 400, not a crash.
    auto bad = https_request(port(), ca_file(), admin_token(), "POST",
                             "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", std::string("k8s\0\x12\x05" "ab", 8),
                             {{"Content-Type", "application/vnd.kubernetes.protobuf"}});
    EXPECT_EQ(bad.status, 400) << bad.body;
}

} // namespace
} // namespace podpipe::kubesim::testing
