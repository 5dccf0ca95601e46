// Pod Security Admission in kubesim (issue 20): namespaces labelled
// pod-security.kubernetes.io/enforce reject non-conforming pods with the v1.32 API server's 403
// message (reasons, details, order, pluralisation as upstream); warn answers Warning headers,
// audit goes to kubesim's log; invalid labels are 422 on the namespace; a stricter enforce label
// warns about the pods already there; the Job controller's rejected pods are FailedCreate events.
#include "kubesim_fixture.hpp"
#include "test_client.hpp"

#include <fstream>
#include <sstream>
#include <thread>

#include <boost/json.hpp>

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;

class psa_test : public kubesim_fixture {
protected:
    http_reply call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& type = "application/json") {
        return https_request(port(), ca_file(), admin_token(), method, target, body,
                             {{"Content-Type", type}});
    }

    static std::string message(const http_reply& r) {
        return std::string(json::parse(r.body).at("message").as_string());
    }

    /// Creates namespace `name` with the given `pod-security.kubernetes.io/` labels (JSON members).
    void make_namespace(const std::string& name, const std::string& labels) {
        auto r = call("POST", "/api/v1/namespaces",
                      R"({"metadata":{"name":")" + name + R"(","labels":{)" + labels + "}}}");
        ASSERT_EQ(r.status, 201) << r.body;
    }

    http_reply create_pod(const std::string& ns, const std::string& pod_json) {
        return call("POST", "/api/v1/namespaces/" + ns + "/pods", pod_json);
    }

    std::string log() const {
        std::ifstream in(dir_ + "/kubesim.log");
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }
};

constexpr const char* enforce = R"("pod-security.kubernetes.io/enforce":)";

/// A pod that passes restricted: the securityContext the hook's restricted template sets.
const std::string conforming_pod =
    R"({"metadata":{"name":"ok"},"spec":{"securityContext":{"runAsNonRoot":true,"runAsUser":1001,)"
    R"("runAsGroup":123,"fsGroup":123,"seccompProfile":{"type":"RuntimeDefault"}},)"
    R"("containers":[{"name":"c","image":"busybox","command":["sleep","1"],"securityContext":)"
    R"({"allowPrivilegeEscalation":false,"capabilities":{"drop":["ALL"]}}}]}})";

const std::string plain_pod =
    R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"busybox",)"
    R"("command":["sleep","1"]}]}})";

const std::string plain_restricted_detail =
    "allowPrivilegeEscalation != false (container \"c\" must set "
    "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container \"c\" "
    "must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod or "
    "container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or "
    "container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
    "\"Localhost\")";

struct row {
    const char* what;
    const char* ns; ///< one of the namespaces made in the table test
    std::string pod;
    int code;
    std::string message; ///< for a 403
};

TEST_F(psa_test, table_of_conforming_and_violating_pods) {
    make_namespace("priv", std::string(enforce) + R"("privileged")");
    make_namespace("base", std::string(enforce) + R"("baseline")");
    make_namespace("restr", std::string(enforce) + R"("restricted")");
    make_namespace("restr-121", std::string(enforce) +
                                    R"("restricted","pod-security.kubernetes.io/enforce-version":)"
                                    R"("v1.21")");
    make_namespace("restr-140", std::string(enforce) +
                                    R"("restricted","pod-security.kubernetes.io/enforce-version":)"
                                    R"("v1.40")");
    const std::string privileged_host_pod =
        R"({"metadata":{"name":"h"},"spec":{"hostNetwork":true,"hostPID":true,"containers":[)"
        R"({"name":"c","image":"busybox","ports":[{"containerPort":80,"hostPort":80}],)"
        R"("securityContext":{"privileged":true}}]}})";
    const std::vector<row> rows{
        {"privileged allows anything", "priv", privileged_host_pod, 201, ""},
        {"baseline allows a plain pod", "base", plain_pod, 201, ""},
        {"restricted allows the conforming pod", "restr", conforming_pod, 201, ""},
        {"baseline: host namespaces, hostPort, privileged", "base", privileged_host_pod, 403,
         "pods \"h\" is forbidden: violates PodSecurity \"baseline:latest\": host namespaces "
         "(hostNetwork=true, hostPID=true), hostPort (container \"c\" uses hostPort 80), "
         "privileged (container \"c\" must not set securityContext.privileged=true)"},
        {"baseline: sysctls, then the overlapping checks (capabilities, hostPath, seccomp)", "base",
         R"({"metadata":{"name":"b"},"spec":{"securityContext":{"seccompProfile":)"
         R"({"type":"Unconfined"},"sysctls":[{"name":"kernel.msgmax","value":"1"},)"
         R"({"name":"net.ipv4.tcp_syncookies","value":"1"}]},)"
         R"("volumes":[{"name":"h","hostPath":{"path":"/tmp"}},{"name":"e","emptyDir":{}}],)"
         R"("containers":[{"name":"a","image":"busybox","securityContext":{"capabilities":)"
         R"({"add":["NET_ADMIN","CHOWN"]}}},{"name":"b","image":"busybox","securityContext":)"
         R"({"capabilities":{"add":["SYS_TIME"]}}}]}})",
         403,
         "pods \"b\" is forbidden: violates PodSecurity \"baseline:latest\": forbidden sysctls "
         "(kernel.msgmax), non-default capabilities (containers \"a\", \"b\" must not include "
         "\"NET_ADMIN\", \"SYS_TIME\" in securityContext.capabilities.add), hostPath volumes "
         "(volume \"h\"), seccompProfile (pod must not set securityContext.seccompProfile.type "
         "to \"Unconfined\")"},
        {"baseline: init containers count (AppArmor), SELinux type", "base",
         R"({"metadata":{"name":"i"},"spec":{"initContainers":[{"name":"init","image":"busybox",)"
         R"("securityContext":{"appArmorProfile":{"type":"Unconfined"}}}],)"
         R"("containers":[{"name":"c","image":"busybox","securityContext":{"seLinuxOptions":)"
         R"({"type":"spc_t"}}}]}})",
         403,
         "pods \"i\" is forbidden: violates PodSecurity \"baseline:latest\": forbidden AppArmor "
         "profile (container \"init\" must not set AppArmor profile type to \"Unconfined\"), "
         "seLinuxOptions (container \"c\" set forbidden securityContext.seLinuxOptions: type "
         "\"spc_t\")"},
        {"restricted: a plain pod", "restr", plain_pod, 403,
         "pods \"p\" is forbidden: violates PodSecurity \"restricted:latest\": " +
             plain_restricted_detail},
        {"restricted: the baseline checks come first, overlapping ones are not repeated", "restr",
         privileged_host_pod, 403,
         "pods \"h\" is forbidden: violates PodSecurity \"restricted:latest\": host namespaces "
         "(hostNetwork=true, hostPID=true), hostPort (container \"c\" uses hostPort 80), "
         "privileged (container \"c\" must not set securityContext.privileged=true), "
         "allowPrivilegeEscalation != false (container \"c\" must set "
         "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
         "\"c\" must set securityContext.capabilities.drop=[\"ALL\"]), runAsNonRoot != true (pod "
         "or container \"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or "
         "container \"c\" must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
         "\"Localhost\")"},
        {"restricted: volumes, capabilities, explicit runAsNonRoot=false, runAsUser 0", "restr",
         R"({"metadata":{"name":"r"},"spec":{"securityContext":{"runAsNonRoot":true,)"
         R"("seccompProfile":{"type":"RuntimeDefault"}},"volumes":[{"name":"n","nfs":)"
         R"({"server":"x","path":"/"}},{"name":"e","emptyDir":{}},{"name":"h","hostPath":)"
         R"({"path":"/tmp"}}],"initContainers":[{"name":"i","image":"busybox","securityContext":)"
         R"({"allowPrivilegeEscalation":false,"runAsUser":0,"capabilities":{"drop":["ALL"],)"
         R"("add":["NET_BIND_SERVICE","SYS_ADMIN"]}}}],"containers":[{"name":"c1",)"
         R"("image":"busybox","securityContext":{"allowPrivilegeEscalation":true,)"
         R"("capabilities":{"drop":["ALL"]}}},{"name":"c2","image":"busybox",)"
         R"("securityContext":{"runAsNonRoot":false,"capabilities":{"drop":["ALL"]}}}]}})",
         403,
         "pods \"r\" is forbidden: violates PodSecurity \"restricted:latest\": "
         "allowPrivilegeEscalation != false (containers \"c1\", \"c2\" must set "
         "securityContext.allowPrivilegeEscalation=false), unrestricted capabilities (container "
         "\"i\" must not include \"SYS_ADMIN\" in securityContext.capabilities.add), restricted "
         "volume types (volumes \"n\", \"h\" use restricted volume types \"hostPath\", \"nfs\"), "
         "runAsNonRoot != true (container \"c2\" must not set securityContext.runAsNonRoot=false), "
         "runAsUser=0 (container \"i\" must not set runAsUser=0)"},
        {"restricted v1.21: no capabilities (1.22) or runAsUser (1.23) check", "restr-121",
         plain_pod, 403,
         "pods \"p\" is forbidden: violates PodSecurity \"restricted:v1.21\": "
         "allowPrivilegeEscalation != false (container \"c\" must set "
         "securityContext.allowPrivilegeEscalation=false), runAsNonRoot != true (pod or container "
         "\"c\" must set securityContext.runAsNonRoot=true), seccompProfile (pod or container "
         "\"c\" "
         "must set securityContext.seccompProfile.type to \"RuntimeDefault\" or \"Localhost\")"},
        {"restricted v1.40 evaluates as the newest version and says v1.40", "restr-140", plain_pod,
         403,
         "pods \"p\" is forbidden: violates PodSecurity \"restricted:v1.40\": " +
             plain_restricted_detail},
        {"restricted v1.40 allows the conforming pod", "restr-140", conforming_pod, 201, ""},
    };
    for (const auto& r : rows) {
        SCOPED_TRACE(r.what);
        auto reply = create_pod(r.ns, r.pod);
        ASSERT_EQ(reply.status, r.code) << reply.body;
        if (r.code != 403)
            continue;
        auto st = json::parse(reply.body).as_object();
        EXPECT_EQ(st.at("reason").as_string(), "Forbidden");
        EXPECT_EQ(st.at("message").as_string(), r.message);
        EXPECT_EQ(st.at("details").at("kind").as_string(), "pods");
        std::string name(json::parse(r.pod).at("metadata").at("name").as_string());
        EXPECT_EQ(call("GET", std::string("/api/v1/namespaces/") + r.ns + "/pods/" + name).status,
                  404)
            << "a rejected pod is not stored";
    }
    // kubectl shows the server's message.
    auto k = kubectl("create --validate=false -n restr -f -",
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: k}\nspec:\n  containers:\n"
                     "  - {name: c, image: busybox}\n");
    EXPECT_NE(k.exit_code, 0);
    EXPECT_NE(k.output.find("pods \"k\" is forbidden: violates PodSecurity \"restricted:latest\": "
                            "allowPrivilegeEscalation != false"),
              std::string::npos)
        << k.output;
}

TEST_F(psa_test, warn_answers_a_warning_header_and_audit_goes_to_the_log) {
    make_namespace("w", std::string(enforce) +
                            R"("baseline","pod-security.kubernetes.io/warn":"restricted",)"
                            R"("pod-security.kubernetes.io/audit":"restricted",)"
                            R"("pod-security.kubernetes.io/audit-version":"v1.30")");
    auto r = create_pod("w", plain_pod);
    ASSERT_EQ(r.status, 201) << r.body;
    // JSON string escaping matches Go's %q for this ASCII text.
    std::string quoted = json::serialize(
        json::value("would violate PodSecurity \"restricted:latest\": " + plain_restricted_detail));
    EXPECT_EQ(r.headers["warning"], "299 - " + quoted);
    EXPECT_NE(log().find("pod-security.kubernetes.io/audit-violations: would violate PodSecurity "
                         "\"restricted:v1.30\": allowPrivilegeEscalation != false"),
              std::string::npos)
        << log();
    // A conforming pod: no warning, no audit line for it.
    auto ok = create_pod("w", conforming_pod);
    ASSERT_EQ(ok.status, 201) << ok.body;
    EXPECT_EQ(ok.headers.count("warning"), 0u);
    EXPECT_EQ(log().find("w/ok"), std::string::npos);
    // An enforced rejection carries no warning.
    auto bad = create_pod(
        "w", R"({"metadata":{"name":"h"},"spec":{"hostPID":true,"containers":[{"name":"c",)"
             R"("image":"busybox"}]}})");
    EXPECT_EQ(bad.status, 403);
    EXPECT_EQ(bad.headers.count("warning"), 0u);
    // kubectl prints the warning.
    auto k = kubectl("create --validate=false -n w -f -",
                     "apiVersion: v1\nkind: Pod\nmetadata: {name: k}\nspec:\n  containers:\n"
                     "  - {name: c, image: busybox}\n");
    EXPECT_EQ(k.exit_code, 0) << k.output;
    EXPECT_NE(k.output.find("Warning: would violate PodSecurity \"restricted:latest\""),
              std::string::npos)
        << k.output;
}

TEST_F(psa_test, invalid_labels_are_422_on_the_namespace) {
    auto level = call("POST", "/api/v1/namespaces",
                      R"({"metadata":{"name":"bad","labels":{"pod-security.kubernetes.io/)"
                      R"(enforce":"strict"}}})");
    EXPECT_EQ(level.status, 422) << level.body;
    EXPECT_EQ(message(level),
              "Namespace \"bad\" is invalid: metadata.labels[pod-security.kubernetes.io/enforce]: "
              "Invalid value: \"strict\": must be one of privileged, baseline, restricted");
    auto version = call("POST", "/api/v1/namespaces",
                        R"({"metadata":{"name":"bad","labels":{"pod-security.kubernetes.io/)"
                        R"(warn-version":"1.30"}}})");
    EXPECT_EQ(version.status, 422);
    EXPECT_EQ(message(version),
              "Namespace \"bad\" is invalid: metadata.labels[pod-security.kubernetes.io/"
              "warn-version]: Invalid value: \"1.30\": must be \"latest\" or \"v1.x\"");
    EXPECT_EQ(call("GET", "/api/v1/namespaces/bad").status, 404);
    make_namespace("good", std::string(enforce) + R"("baseline")");
    auto patch = call("PATCH", "/api/v1/namespaces/good",
                      R"({"metadata":{"labels":{"pod-security.kubernetes.io/audit":"all"}}})",
                      "application/merge-patch+json");
    EXPECT_EQ(patch.status, 422) << patch.body;
    auto lbl = kubectl("label ns good pod-security.kubernetes.io/enforce-version=v1.x");
    EXPECT_NE(lbl.exit_code, 0);
    EXPECT_NE(lbl.output.find("must be \"latest\" or \"v1.x\""), std::string::npos) << lbl.output;
}

TEST_F(psa_test, a_stricter_enforce_label_warns_about_existing_pods) {
    make_namespace("upd", std::string(enforce) + R"("baseline")");
    for (const char* name : {"p2", "p1"}) {
        std::string pod = plain_pod;
        pod.replace(pod.find("\"p\""), 3, std::string("\"") + name + "\"");
        ASSERT_EQ(create_pod("upd", pod).status, 201);
    }
    ASSERT_EQ(create_pod("upd", conforming_pod).status, 201);
    auto r = call("PATCH", "/api/v1/namespaces/upd",
                  R"({"metadata":{"labels":{"pod-security.kubernetes.io/enforce":"restricted"}}})",
                  "application/merge-patch+json");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.headers["warning"],
              "299 - \"existing pods in namespace \\\"upd\\\" violate the new PodSecurity enforce "
              "level \\\"restricted:latest\\\"\", 299 - \"p1 (and 1 other pod): "
              "allowPrivilegeEscalation != false, unrestricted capabilities, runAsNonRoot != true, "
              "seccompProfile\"");
    // Relaxing it again says nothing; the pods keep running either way.
    auto relax = call("PATCH", "/api/v1/namespaces/upd",
                      R"({"metadata":{"labels":{"pod-security.kubernetes.io/enforce":null}}})",
                      "application/merge-patch+json");
    ASSERT_EQ(relax.status, 200) << relax.body;
    EXPECT_EQ(relax.headers.count("warning"), 0u);
    auto k = kubectl("label ns upd pod-security.kubernetes.io/enforce=restricted");
    EXPECT_EQ(k.exit_code, 0) << k.output;
    EXPECT_NE(k.output.find("Warning: existing pods in namespace \"upd\" violate the new "
                            "PodSecurity enforce level \"restricted:latest\""),
              std::string::npos)
        << k.output;
}

TEST_F(psa_test, job_pods_rejected_by_enforce_are_failed_create_events) {
    make_namespace("jobs", std::string(enforce) +
                               R"("restricted","pod-security.kubernetes.io/warn":"restricted")");
    auto r =
        call("POST", "/apis/batch/v1/namespaces/jobs/jobs",
             R"({"metadata":{"name":"j"},"spec":{"template":{"spec":{"restartPolicy":)"
             R"("Never","containers":[{"name":"c","image":"busybox","command":["true"]}]}}}})");
    ASSERT_EQ(r.status, 201) << r.body;
    // A pod controller is not enforced, only warned about.
    EXPECT_NE(r.headers["warning"].find("would violate PodSecurity \\\"restricted:latest\\\": "
                                        "allowPrivilegeEscalation != false"),
              std::string::npos)
        << r.headers["warning"];
    std::string found;
    for (int i = 0; i < 100 && found.empty(); ++i) {
        auto ev = call("GET", "/api/v1/namespaces/jobs/events");
        json::value list = json::parse(ev.body);
        for (const auto& e : list.at("items").as_array())
            if (e.at("reason").as_string() == "FailedCreate")
                found = std::string(e.at("message").as_string());
        if (found.empty())
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(found.starts_with("Error creating: pods \"j-")) << found;
    EXPECT_NE(found.find("\" is forbidden: violates PodSecurity \"restricted:latest\": " +
                         plain_restricted_detail),
              std::string::npos)
        << found;
    auto pods = call("GET", "/api/v1/namespaces/jobs/pods");
    EXPECT_EQ(json::parse(pods.body).at("items").as_array().size(), 0u);
}

} // namespace
} // namespace podpipe::kubesim::testing
