// examples/hook-template-restricted.yaml against a real API server's rule: the job pod the hook
// builds with it (fs-init, job container, a redis service) is created over HTTPS in a kubesim
// namespace that enforces Pod Security "restricted"; without the template the same pod is
// refused there and accepted in a "baseline" namespace.
#include "kube/json.hpp"
#include "kube/pod_spec.hpp"
#include "kube/template.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/kubesim/test_client.hpp"

#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

namespace podpipe::kubesim::testing {
namespace {

const std::string examples = std::string(PODPIPE_SOURCE_DIR) + "/examples/";

std::string read_file(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

class hook_examples_kubesim : public kubesim_fixture {
protected:
    http_reply call(const std::string& method, const std::string& target, const std::string& body) {
        return https_request(port(), ca_file(), admin_token(), method, target, body,
                             {{"Content-Type", "application/json"}});
    }

    void make_namespace(const std::string& name, const std::string& level) {
        auto r =
            call("POST", "/api/v1/namespaces",
                 R"({"metadata":{"name":")" + name +
                     R"(","labels":{"pod-security.kubernetes.io/enforce":")" + level + R"("}}})");
        ASSERT_EQ(r.status, 201) << r.body;
    }

    /// The hook's job pod (job + redis service + fs-init), with the template when given.
    kube::pod job_pod(const std::string* template_path) {
        kube::job_pod_options opts;
        opts.runner_pod_name = "runner-abc";
        opts.workspace_tail = "app/app";
        kube::container_source job;
        job.image = "busybox";
        kube::container_source redis;
        redis.image = "redis:7";
        auto built = kube::build_job_pod(opts, &job, {redis});
        EXPECT_TRUE(built) << built.error().what();
        kube::pod p = built->job_pod;
        if (template_path) {
            auto ext = kube::parse_template(read_file(*template_path), *template_path);
            EXPECT_TRUE(ext) << ext.error().what();
            auto warnings = kube::apply_template(*ext, p);
            EXPECT_TRUE(warnings) << warnings.error().what();
        }
        return p;
    }
};

TEST_F(hook_examples_kubesim, restricted_template_makes_the_job_pod_pass_restricted) {
    make_namespace("restricted", "restricted");
    make_namespace("baseline", "baseline");
    const std::string path = examples + "hook-template-restricted.yaml";
    auto with = call("POST", "/api/v1/namespaces/restricted/pods", kube::to_json(job_pod(&path)));
    EXPECT_EQ(with.status, 201) << with.body;
    EXPECT_EQ(with.headers.count("warning"), 0u) << with.headers["warning"];

    auto without =
        call("POST", "/api/v1/namespaces/restricted/pods", kube::to_json(job_pod(nullptr)));
    EXPECT_EQ(without.status, 403) << without.body;
    // fs-init conforms on its own; the job and service containers are what restricted refuses.
    EXPECT_NE(without.body.find("allowPrivilegeEscalation != false (containers \\\"job\\\", "
                                "\\\"redis\\\" must set"),
              std::string::npos)
        << without.body;
    auto base = call("POST", "/api/v1/namespaces/baseline/pods", kube::to_json(job_pod(nullptr)));
    EXPECT_EQ(base.status, 201) << base.body;
}

// The runner pod each ARC values file describes passes Pod Security "restricted" (a server-side
// dry run through kubectl: validation and admission as for a create, nothing runs), and without
// its securityContext it would not.
TEST_F(hook_examples_kubesim, runner_pods_of_both_arc_modes_pass_restricted) {
    make_namespace("arc", "restricted");
    for (const char* file :
         {"arc-values-kubernetes-mode.yaml", "arc-values-kubernetes-novolume-mode.yaml"}) {
        SCOPED_TRACE(file);
        YAML::Node spec = YAML::Clone(YAML::LoadFile(examples + file)["template"]["spec"]);
        auto create = [&](const YAML::Node& s) {
            YAML::Node pod;
            pod["apiVersion"] = "v1";
            pod["kind"] = "Pod";
            pod["metadata"]["name"] = "runner-abc";
            pod["spec"] = s;
            return kubectl("create -n arc --dry-run=server --validate=false -f -",
                           YAML::Dump(pod) + "\n");
        };
        auto ok = create(spec);
        EXPECT_EQ(ok.exit_code, 0) << ok.output;
        EXPECT_NE(ok.output.find("pod/runner-abc created (server dry run)"), std::string::npos)
            << ok.output;
        spec.remove("securityContext");
        spec["containers"][0].remove("securityContext");
        auto refused = create(spec);
        EXPECT_NE(refused.exit_code, 0);
        EXPECT_NE(refused.output.find("violates PodSecurity \"restricted:latest\""),
                  std::string::npos)
            << refused.output;
    }
    EXPECT_EQ(kubectl("get pods -n arc -o name").output, "");
}

} // namespace
} // namespace podpipe::kubesim::testing
