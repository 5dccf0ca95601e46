// batch/v1 Jobs with real kubectl and raw HTTPS: the job controller's pods (labels, owner
// reference), status and conditions, backoffLimit retries, activeDeadlineSeconds, TTL, Table
// output, `kubectl wait` / `kubectl logs job/NAME`, validation, and the three deletion
// propagation policies (with the orphan default's Warning header).
#include "kubesim_fixture.hpp"
#include "test_client.hpp"
#include "tests/support/eventually.hpp"

#include <thread>

namespace podpipe::kubesim::testing {
namespace {

std::string job(const std::string& name, const std::string& script,
                const std::string& extra_spec = "", const std::string& policy = "Never") {
    return "apiVersion: batch/v1\nkind: Job\nmetadata: {name: " + name +
           ", labels: {runner-pod: r1}}\nspec:\n" + extra_spec +
           "  template:\n    spec:\n      restartPolicy: " + policy +
           "\n      containers: [{name: job, image: busybox, command: [\"sh\", \"-c\", \"" +
           script + "\"]}]\n";
}

class jobs_test : public kubesim_fixture {
protected:
    std::string field(const std::string& what, const std::string& path) {
        return kubectl("get " + what + " -o jsonpath='" + path + "'").output;
    }

    /// Polls `kubectl get WHAT -o jsonpath=PATH` until it prints `want`; returns the last output.
    std::string wait_field(const std::string& what, const std::string& path,
                           const std::string& want,
                           std::chrono::seconds timeout = std::chrono::seconds(20)) {
        std::string last;
        podpipe::testing::eventually([&] { return (last = field(what, path)) == want; }, timeout,
                                     std::chrono::milliseconds(200));
        return last;
    }

    http_reply api(const std::string& method, const std::string& target,
                   const std::string& body = "") {
        return https_request(port(), ca_file(), admin_token(), method, target, body);
    }
};

TEST_F(jobs_test, kubectl_create_wait_logs_and_table) {
    ASSERT_EQ(
        kubectl("create -f - --validate=false", job("j1", "echo hello from the step")).exit_code,
        0);
    auto table = kubectl("get jobs");
    EXPECT_NE(table.output.find("NAME   STATUS"), std::string::npos) << table.output;
    EXPECT_NE(table.output.find("COMPLETIONS   DURATION   AGE"), std::string::npos) << table.output;
    auto wait = kubectl("wait --for=condition=complete job/j1 --timeout=30s");
    ASSERT_EQ(wait.exit_code, 0) << wait.output;
    EXPECT_EQ(kubectl("logs job/j1").output, "hello from the step\n");
    std::string uid = field("job j1", "{.metadata.uid}");
    ASSERT_FALSE(uid.empty());
    EXPECT_EQ(
        field("job j1", "{.spec.selector.matchLabels.batch\\.kubernetes\\.io/controller-uid}"),
        uid);
    EXPECT_EQ(
        field("job j1", "{.status.succeeded} {.status.conditions[?(@.type==\"Complete\")].status}"),
        "1 True");
    EXPECT_FALSE(field("job j1", "{.status.completionTime}").empty());
    EXPECT_FALSE(field("job j1", "{.status.startTime}").empty());
    // The hook finds the Job's pod by the job-name label; the pod carries the upstream labels and a
    // controlling owner reference, but not the Job's own labels.
    auto pods = api("GET", "/api/v1/namespaces/default/pods?labelSelector=job-name%3Dj1&limit=1");
    ASSERT_EQ(pods.status, 200);
    EXPECT_NE(pods.body.find(R"("name":"j1-)"), std::string::npos) << pods.body;
    std::string pod = kubectl("get pods -l batch.kubernetes.io/job-name=j1 -o name").output;
    ASSERT_EQ(pod.rfind("pod/j1-", 0), 0u) << pod;
    pod = pod.substr(4, pod.size() - 5);
    EXPECT_EQ(field("pod " + pod, "{.metadata.labels.controller-uid} "
                                  "{.metadata.labels.batch\\.kubernetes\\.io/controller-uid}"),
              uid + " " + uid);
    EXPECT_EQ(field("pod " + pod, "{.metadata.labels.runner-pod}"), "");
    EXPECT_EQ(field("pod " + pod,
                    "{.metadata.ownerReferences[0].kind} {.metadata.ownerReferences[0].name} "
                    "{.metadata.ownerReferences[0].uid} {.metadata.ownerReferences[0].controller}"),
              "Job j1 " + uid + " true");
    EXPECT_EQ(field("pod " + pod, "{.status.phase}"), "Succeeded");
    table = kubectl("get jobs");
    EXPECT_NE(table.output.find("Complete   1/1"), std::string::npos) << table.output;
    // Job labels, list with selectors, events.
    EXPECT_EQ(kubectl("get jobs -l runner-pod=r1 -o name").output, "job.batch/j1\n");
    EXPECT_EQ(kubectl("get jobs -l runner-pod=other -o name").output, "");
    auto events = kubectl("get events --field-selector involvedObject.name=j1");
    EXPECT_NE(events.output.find("SuccessfulCreate"), std::string::npos) << events.output;
    EXPECT_NE(events.output.find("Completed"), std::string::npos) << events.output;
    // kubectl deletes with propagationPolicy Background and waits for the Job to go.
    auto del = kubectl("delete job j1");
    EXPECT_EQ(del.exit_code, 0) << del.output;
    EXPECT_EQ(wait_field("pods", "{.items[*].metadata.name}", ""), "");
}

TEST_F(jobs_test, backoff_limit_retries_with_new_pods_then_fails) {
    ASSERT_EQ(kubectl("create -f - --validate=false",
                      job("jf", "echo attempt; exit 3", "  backoffLimit: 2\n"))
                  .exit_code,
              0);
    auto wait =
        kubectl("wait --for=condition=failed job/jf --timeout=40s", "", std::chrono::seconds(50));
    ASSERT_EQ(wait.exit_code, 0) << wait.output;
    EXPECT_EQ(field("job jf", "{.status.failed}"), "3");
    EXPECT_EQ(field("job jf", "{.status.succeeded}"), ""); // zero counters are omitted, as upstream
    EXPECT_EQ(field("job jf", "{.status.conditions[?(@.type==\"Failed\")].reason}"),
              "BackoffLimitExceeded");
    EXPECT_EQ(field("job jf", "{.status.conditions[?(@.type==\"Failed\")].message}"),
              "Job has reached the specified backoff limit");
    auto pods = kubectl("get pods -l job-name=jf -o jsonpath='{range .items[*]}{.status.phase} "
                        "{.status.containerStatuses[0].state.terminated.exitCode}{\"\\n\"}{end}'");
    EXPECT_EQ(pods.output, "Failed 3\nFailed 3\nFailed 3\n");
    EXPECT_NE(kubectl("get jobs jf").output.find("Failed"), std::string::npos);
    auto events =
        kubectl("get events --field-selector involvedObject.kind=Job,involvedObject.name=jf "
                "-o jsonpath='{range .items[*]}{.type}/{.reason}{\"\\n\"}{end}'");
    EXPECT_NE(events.output.find("Warning/BackoffLimitExceeded"), std::string::npos)
        << events.output;
}

TEST_F(jobs_test, backoff_limit_zero_fails_on_first_failure) {
    // What the hook's container-step Job uses: backoffLimit 0, restartPolicy Never.
    ASSERT_EQ(kubectl("create -f - --validate=false", job("j0", "exit 1", "  backoffLimit: 0\n"))
                  .exit_code,
              0);
    ASSERT_EQ(kubectl("wait --for=condition=failed job/j0 --timeout=30s").exit_code, 0);
    EXPECT_EQ(field("job j0", "{.status.failed}"), "1");
    EXPECT_EQ(kubectl("get pods -l job-name=j0 -o name").output.find('\n'),
              kubectl("get pods -l job-name=j0 -o name").output.size() - 1); // exactly one pod
}

TEST_F(jobs_test, active_deadline_fails_and_deletes_the_pod) {
    ASSERT_EQ(kubectl("create -f - --validate=false",
                      job("jd", "sleep 1000", "  activeDeadlineSeconds: 1\n"))
                  .exit_code,
              0);
    ASSERT_EQ(kubectl("wait --for=condition=failed job/jd --timeout=30s").exit_code, 0);
    EXPECT_EQ(field("job jd", "{.status.conditions[?(@.type==\"Failed\")].reason}"),
              "DeadlineExceeded");
    EXPECT_EQ(wait_field("pods", "{.items[*].metadata.name}", ""), "");
}

TEST_F(jobs_test, on_failure_is_accepted_and_always_is_rejected) {
    auto r = api("POST", "/apis/batch/v1/namespaces/default/jobs",
                 R"({"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"bad"},
                     "spec":{"template":{"spec":{"containers":[{"name":"c","image":"busybox"}]}}}})");
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(
        r.body.find(
            R"(Job.batch \"bad\" is invalid: spec.template.spec.restartPolicy: Unsupported value: \"Always\")"),
        std::string::npos)
        << r.body;
    r = api(
        "POST", "/apis/batch/v1/namespaces/default/jobs",
        R"({"metadata":{"name":"nocontainers"},"spec":{"template":{"spec":{"restartPolicy":"Never"}}}})");
    EXPECT_EQ(r.status, 422);
    EXPECT_NE(r.body.find("spec.template.spec.containers: Required value"), std::string::npos)
        << r.body;
    ASSERT_EQ(kubectl("create -f - --validate=false", job("ok", "true", "", "OnFailure")).exit_code,
              0);
    EXPECT_EQ(kubectl("wait --for=condition=complete job/ok --timeout=30s").exit_code, 0);
    r = api(
        "POST", "/apis/batch/v1/namespaces/default/jobs",
        R"({"metadata":{"name":"ok"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox"}]}}}})");
    EXPECT_EQ(r.status, 409);
    EXPECT_NE(r.body.find(R"(jobs.batch \"ok\" already exists)"), std::string::npos) << r.body;
    EXPECT_EQ(api("GET", "/apis/batch/v1/namespaces/default/jobs/missing").status, 404);
    auto list = api("GET", "/apis/batch/v1/jobs");
    EXPECT_EQ(list.status, 200);
    EXPECT_NE(list.body.find(R"("kind":"JobList","apiVersion":"batch/v1")"), std::string::npos)
        << list.body;
}

TEST_F(jobs_test, ttl_after_finished_deletes_job_and_pods) {
    ASSERT_EQ(
        kubectl("create -f - --validate=false", job("jt", "true", "  ttlSecondsAfterFinished: 1\n"))
            .exit_code,
        0);
    podpipe::testing::eventually(
        [&] { return api("GET", "/apis/batch/v1/namespaces/default/jobs/jt").status == 404; },
        std::chrono::seconds(20), std::chrono::milliseconds(200));
    EXPECT_EQ(api("GET", "/apis/batch/v1/namespaces/default/jobs/jt").status, 404);
    EXPECT_EQ(wait_field("pods", "{.items[*].metadata.name}", ""), "");
}

TEST_F(jobs_test, delete_propagation_policies) {
    for (const char* name : {"bg", "orphan", "fg", "dflt"})
        ASSERT_EQ(kubectl("create -f - --validate=false", job(name, "exec sleep 1000")).exit_code,
                  0);
    for (const char* name : {"bg", "orphan", "fg", "dflt"})
        ASSERT_EQ(wait_field("pods -l job-name=" + std::string(name), "{.items[0].status.phase}",
                             "Running"),
                  "Running");

    // Background: the Job goes at once (Status answer), the garbage collector deletes its pod.
    auto r = api("DELETE", "/apis/batch/v1/namespaces/default/jobs/bg",
                 R"({"propagationPolicy":"Background"})");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find(R"("kind":"Status")"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("group":"batch","kind":"jobs")"), std::string::npos) << r.body;
    EXPECT_EQ(r.headers.count("warning"), 0u);
    EXPECT_EQ(api("GET", "/apis/batch/v1/namespaces/default/jobs/bg").status, 404);
    EXPECT_EQ(wait_field("pods -l job-name=bg", "{.items[*].metadata.name}", ""), "");

    // No policy: batch/v1 orphans by default and warns about it.
    r = api("DELETE", "/apis/batch/v1/namespaces/default/jobs/dflt");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(
        r.headers["warning"].find("child pods are preserved by default when jobs are deleted"),
        std::string::npos);
    EXPECT_EQ(api("GET", "/apis/batch/v1/namespaces/default/jobs/dflt").status, 404);

    // Orphan: the pod stays, without the owner reference.
    r = api("DELETE", "/apis/batch/v1/namespaces/default/jobs/orphan?propagationPolicy=Orphan");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find(R"("finalizers":["orphan"])"), std::string::npos) << r.body;
    EXPECT_EQ(api("GET", "/apis/batch/v1/namespaces/default/jobs/orphan").status, 404);
    for (const char* name : {"orphan", "dflt"}) {
        std::string sel = std::string("pods -l job-name=") + name;
        EXPECT_EQ(field(sel, "{.items[0].status.phase}"), "Running");
        EXPECT_EQ(field(sel, "{.items[0].metadata.ownerReferences}"), "");
    }

    // Foreground: the Job stays (finalizer, deletionTimestamp) until its pod is gone.
    r = api("DELETE", "/apis/batch/v1/namespaces/default/jobs/fg",
            R"({"propagationPolicy":"Foreground"})");
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.body.find(R"("finalizers":["foregroundDeletion"])"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find(R"("deletionTimestamp")"), std::string::npos) << r.body;
    podpipe::testing::eventually(
        [&] { return api("GET", "/apis/batch/v1/namespaces/default/jobs/fg").status == 404; },
        std::chrono::seconds(20), std::chrono::milliseconds(100));
    EXPECT_EQ(api("GET", "/apis/batch/v1/namespaces/default/jobs/fg").status, 404);
    EXPECT_EQ(field("pods -l job-name=fg", "{.items[*].metadata.name}"), "");
    EXPECT_EQ(api("DELETE", "/apis/batch/v1/namespaces/default/jobs/fg").status, 404);
}

} // namespace
} // namespace podpipe::kubesim::testing
