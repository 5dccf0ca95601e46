// What clients other than kubectl get use (issue 20): the legacy /api/v1/watch/... paths, the
// node object a kubelet reports, and the self-subject reviews behind `kubectl auth can-i --list`
// and `kubectl auth whoami`.
#include "kubesim_fixture.hpp"
#include "test_client.hpp"

#include <filesystem>
#include <fstream>

#include <boost/json.hpp>

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;

class extras_test : public kubesim_fixture {
protected:
    http_reply call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& token = "") {
        return https_request(port(), ca_file(), token.empty() ? admin_token() : token, method,
                             target, body, {{"Content-Type", "application/json"}});
    }

    void make_pod(const std::string& name) {
        auto r = call("POST", "/api/v1/namespaces/default/pods",
                      R"({"metadata":{"name":")" + name +
                          R"("},"spec":{"containers":[{"name":"c","image":"busybox"}]}})");
        ASSERT_EQ(r.status, 201) << r.body;
    }

    /// The names of the objects of ADDED events in a watch stream.
    static std::string str(const json::value& v) { return std::string(v.as_string()); }

    static std::vector<std::string> added(const std::string& stream) {
        std::vector<std::string> out;
        std::istringstream in(stream);
        for (std::string line; std::getline(in, line);) {
            if (line.empty())
                continue;
            auto ev = json::parse(line).as_object();
            if (ev.at("type") == "ADDED")
                out.emplace_back(ev.at("object").at("metadata").at("name").as_string());
        }
        return out;
    }
};

TEST_F(extras_test, legacy_watch_paths) {
    make_pod("p1");
    make_pod("p2");
    auto one = call("GET", "/api/v1/watch/namespaces/default/pods/p1?timeoutSeconds=1");
    ASSERT_EQ(one.status, 200) << one.body;
    EXPECT_EQ(added(one.body), std::vector<std::string>{"p1"});
    auto ns = call("GET", "/api/v1/watch/namespaces/default/pods?timeoutSeconds=1");
    EXPECT_EQ(added(ns.body), (std::vector<std::string>{"p1", "p2"}));
    auto all = call("GET", "/api/v1/watch/pods?timeoutSeconds=1");
    EXPECT_EQ(added(all.body), (std::vector<std::string>{"p1", "p2"}));
    auto same = call("GET", "/api/v1/watch/namespaces/default/pods/p2?timeoutSeconds=1"
                            "&fieldSelector=metadata.name%3Dp2");
    EXPECT_EQ(added(same.body), std::vector<std::string>{"p2"});
    auto other = call("GET", "/api/v1/watch/namespaces/default/pods/p2?timeoutSeconds=1"
                             "&fieldSelector=metadata.name%3Dp1");
    EXPECT_EQ(other.status, 400);
    EXPECT_EQ(json::parse(other.body).at("message"),
              "fieldSelector metadata.name doesn't match requested name");
    auto nss = call("GET", "/api/v1/watch/namespaces/kube-system?timeoutSeconds=1");
    EXPECT_EQ(added(nss.body), std::vector<std::string>{"kube-system"});
}

TEST_F(extras_test, node_info_as_a_kubelet_reports_it) {
    auto r = call("GET", "/api/v1/nodes/node-1");
    ASSERT_EQ(r.status, 200) << r.body;
    auto st = json::parse(r.body).at("status").as_object();
    auto info = st.at("nodeInfo").as_object();
    auto uname = shell("uname -r; nproc; cat /proc/sys/kernel/random/boot_id").output;
    std::istringstream lines(uname);
    std::string kernel, cpus, boot;
    std::getline(lines, kernel);
    std::getline(lines, cpus);
    std::getline(lines, boot);
    EXPECT_EQ(str(info.at("kernelVersion")), kernel);
    EXPECT_EQ(str(info.at("bootID")), boot);
    EXPECT_EQ(str(st.at("capacity").at("cpu")), cpus);
    EXPECT_EQ(str(info.at("kubeletVersion")).substr(0, 6), "v1.32.");
    EXPECT_EQ(str(info.at("containerRuntimeVersion")).substr(0, 13), "containerd://");
    EXPECT_EQ(info.at("operatingSystem"), "linux");
    for (const char* k : {"machineID", "systemUUID", "osImage", "architecture"})
        EXPECT_FALSE(info.at(k).as_string().empty()) << k;
    EXPECT_TRUE(info.contains("kubeProxyVersion"));
    for (const char* k : {"cpu", "memory", "ephemeral-storage", "pods"}) {
        EXPECT_TRUE(st.at("capacity").as_object().contains(k)) << k;
        EXPECT_TRUE(st.at("allocatable").as_object().contains(k)) << k;
    }
    EXPECT_EQ(st.at("capacity").at("pods"), "110");
    std::vector<std::string> types, reasons;
    for (const auto& c : st.at("conditions").as_array()) {
        types.emplace_back(c.at("type").as_string());
        reasons.emplace_back(c.at("reason").as_string());
    }
    EXPECT_EQ(types,
              (std::vector<std::string>{"MemoryPressure", "DiskPressure", "PIDPressure", "Ready"}));
    EXPECT_EQ(reasons,
              (std::vector<std::string>{"KubeletHasSufficientMemory", "KubeletHasNoDiskPressure",
                                        "KubeletHasSufficientPID", "KubeletReady"}));
    EXPECT_EQ(st.at("addresses").at(0).at("type"), "InternalIP");
    EXPECT_EQ(st.at("addresses").at(1).at("type"), "Hostname");
    EXPECT_EQ(st.at("daemonEndpoints").at("kubeletEndpoint").at("Port"), 10250);
    // kubectl shows it: describe and the wide Table columns.
    auto d = kubectl("describe node node-1");
    ASSERT_EQ(d.exit_code, 0) << d.output;
    EXPECT_NE(d.output.find("Kernel Version:             " + kernel), std::string::npos)
        << d.output;
    EXPECT_NE(d.output.find("KubeletHasSufficientPID"), std::string::npos);
    auto wide = kubectl("get nodes -o wide");
    ASSERT_EQ(wide.exit_code, 0) << wide.output;
    EXPECT_NE(wide.output.find("KERNEL-VERSION"), std::string::npos) << wide.output;
    EXPECT_NE(wide.output.find("containerd://"), std::string::npos) << wide.output;
}

constexpr const char* limited_token = "limited-token-0123456789";

class auth_test : public extras_test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kubesim-auth-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        policy_dir_ = tmpl;
        std::ofstream(policy_dir_ + "/rbac.json")
            << R"({"users": [{"token": ")" << limited_token
            << R"(", "user": "system:serviceaccount:ci:runner", "rules": [
                 {"verbs": ["get", "list", "watch"], "resources": ["pods", "pods/log"],
                  "namespaces": ["ci"]},
                 {"verbs": ["create", "delete"], "resources": ["jobs", "secrets"]}]}]})";
        extra_args_ = {"--rbac", policy_dir_ + "/rbac.json"};
        kubesim_fixture::SetUp();
    }

    void TearDown() override {
        kubesim_fixture::TearDown();
        std::error_code ec;
        std::filesystem::remove_all(policy_dir_, ec);
    }

    command_result limited(const std::string& args) {
        return kubectl(std::string("--token ") + limited_token + " " + args);
    }

    std::string policy_dir_;
};

TEST_F(auth_test, rules_review_from_the_policy) {
    auto r = call("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                  R"({"spec":{"namespace":"ci"}})", limited_token);
    ASSERT_EQ(r.status, 201) << r.body;
    auto st = json::parse(r.body).at("status").as_object();
    EXPECT_EQ(st.at("incomplete"), false);
    std::string rules = json::serialize(st.at("resourceRules"));
    EXPECT_NE(rules.find(R"({"verbs":["get","list","watch"],"apiGroups":[""],)"
                         R"("resources":["pods","pods/log"]})"),
              std::string::npos)
        << rules;
    EXPECT_NE(rules.find(R"({"verbs":["create","delete"],"apiGroups":["batch"],)"
                         R"("resources":["jobs"]})"),
              std::string::npos)
        << rules;
    // Another namespace: only the rules without a namespace, and what everyone may do.
    auto other = call("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                      R"({"spec":{"namespace":"default"}})", limited_token);
    EXPECT_EQ(
        json::serialize(json::parse(other.body).at("status").at("resourceRules")).find("pods"),
        std::string::npos);
    auto none = call("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews",
                     R"({"spec":{}})", limited_token);
    EXPECT_EQ(none.status, 400);
    EXPECT_EQ(json::parse(none.body).at("message"), "no namespace on request");
}

TEST_F(auth_test, kubectl_auth_can_i_list_and_whoami) {
    auto list = limited("auth can-i --list -n ci");
    ASSERT_EQ(list.exit_code, 0) << list.output;
    EXPECT_NE(list.output.find("Resources"), std::string::npos) << list.output;
    std::istringstream lines(list.output);
    bool pods = false, jobs = false, ssrr = false;
    for (std::string line; std::getline(lines, line);) {
        pods = pods || (line.starts_with("pods ") && line.ends_with("[get list watch]"));
        jobs = jobs || (line.starts_with("jobs.batch ") && line.ends_with("[create delete]"));
        ssrr = ssrr || line.starts_with("selfsubjectrulesreviews.authorization.k8s.io ");
    }
    EXPECT_TRUE(pods && jobs && ssrr) << list.output;
    auto admin = kubectl("auth can-i --list");
    ASSERT_EQ(admin.exit_code, 0) << admin.output;
    EXPECT_NE(admin.output.find("*.*"), std::string::npos) << admin.output;
    auto who = limited("auth whoami");
    ASSERT_EQ(who.exit_code, 0) << who.output;
    EXPECT_EQ(who.output, "ATTRIBUTE   VALUE\n"
                          "Username    system:serviceaccount:ci:runner\n"
                          "Groups      [system:serviceaccounts system:serviceaccounts:ci "
                          "system:authenticated]\n");
    auto me = kubectl("auth whoami -o jsonpath={.status.userInfo.username}");
    EXPECT_EQ(me.output, "kubesim-admin");
}

} // namespace
} // namespace podpipe::kubesim::testing
