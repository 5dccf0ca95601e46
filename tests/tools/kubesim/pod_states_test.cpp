// Waiting states and restarts with real kubectl: image pull failures (ErrImagePull /
// ImagePullBackOff from the built-in patterns and an image-map rule, also for init containers),
// container restarts (restartPolicy Always / OnFailure, restartCount, lastState, CrashLoopBackOff,
// logs --previous), and the Events that `kubectl describe` / `kubectl get events` show for them.
#include "kubesim_fixture.hpp"
#include "test_client.hpp"
#include "tests/support/eventually.hpp"

#include <fstream>
#include <functional>
#include <thread>
#include <utility>
#include <vector>

namespace podpipe::kubesim::testing {
namespace {

class pod_states_test : public kubesim_fixture {
protected:
    void SetUp() override {
        // A private registry rule: every image under registry.example/private/ fails to pull.
        char tmpl[] = "/tmp/kubesim-imagemap-XXXXXX";
        int fd = ::mkstemp(tmpl);
        ASSERT_GE(fd, 0);
        ::close(fd);
        map_file_ = tmpl;
        std::ofstream(map_file_)
            << R"({"images": [{"match": "registry.example/private/*", "pull": "fail"},)"
               R"( {"match": "registry.example/secure/*", "root": "busybox",)"
               R"(  "auth": {"username": "octo", "password": "s3cret"}}]})";
        extra_args_ = {"--image-map", map_file_};
        kubesim_fixture::SetUp();
    }

    void TearDown() override {
        kubesim_fixture::TearDown();
        ::unlink(map_file_.c_str());
    }

    // GET pods/POD/log?QUERY in the default namespace.
    auto pod_log(const std::string& pod, const std::string& query) {
        return https_request(port(), ca_file(), admin_token(), "GET",
                             "/api/v1/namespaces/default/pods/" + pod + "/log?" + query);
    }

    // Waits up to 20 s for the pod's whole log to be `expected`; returns the last read.
    std::string wait_log(const std::string& pod, const std::string& expected) {
        std::string got;
        podpipe::testing::eventually([&] { return (got = pod_log(pod, "").body) == expected; },
                                     std::chrono::seconds(20), std::chrono::milliseconds(100));
        return got;
    }

    std::string field(const std::string& what, const std::string& path) {
        return kubectl("get " + what + " -o jsonpath='" + path + "'").output;
    }

    std::string wait_field(const std::string& what, const std::string& path,
                           const std::string& want,
                           std::chrono::seconds timeout = std::chrono::seconds(20)) {
        std::string last;
        podpipe::testing::eventually([&] { return (last = field(what, path)) == want; }, timeout,
                                     std::chrono::milliseconds(100));
        return last;
    }

    /// Runs `probe` while `what`'s `path` reads `want` before and after it (states cycle every
    /// second or two, slower sanitizer builds included); returns the probe's output.
    std::string while_in(const std::string& what, const std::string& path, const std::string& want,
                         const std::function<std::string()>& probe) {
        std::string out;
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (std::chrono::steady_clock::now() < deadline) {
            if (wait_field(what, path, want) != want)
                continue;
            out = probe();
            if (field(what, path) == want)
                break;
        }
        return out;
    }

    std::string map_file_;
};

const char* const waiting_reason = "{.status.containerStatuses[0].state.waiting.reason}";

TEST_F(pod_states_test, unpullable_image_cycles_err_image_pull_and_back_off) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: nopull}
spec:
  containers: [{name: c, image: "does-not-exist:1.0"}]
)");
    const std::string message = "{.status.containerStatuses[0].state.waiting.message}";
    EXPECT_EQ(while_in("pod nopull", waiting_reason, "ErrImagePull",
                       [&] { return field("pod nopull", message); }),
              "rpc error: code = NotFound desc = failed to pull and unpack image "
              "\"docker.io/library/does-not-exist:1.0\": failed to resolve reference "
              "\"docker.io/library/does-not-exist:1.0\": docker.io/library/does-not-exist:1.0: not "
              "found");
    EXPECT_EQ(field("pod nopull", "{.status.phase}"), "Pending");
    auto logs = while_in("pod nopull", waiting_reason, "ErrImagePull",
                         [&] { return kubectl("logs nopull").output; });
    EXPECT_NE(logs.find("is waiting to start: trying and failing to pull image"), std::string::npos)
        << logs;
    EXPECT_EQ(
        while_in("pod nopull", waiting_reason, "ImagePullBackOff",
                 [&] { return field("pod nopull", message); })
            .rfind("Back-off pulling image \"does-not-exist:1.0\": ErrImagePull: rpc error:", 0),
        0u);
    auto table = while_in("pod nopull", waiting_reason, "ImagePullBackOff",
                          [&] { return kubectl("get pod nopull").output; });
    EXPECT_NE(table.find("ImagePullBackOff"), std::string::npos) << table;
    logs = while_in("pod nopull", waiting_reason, "ImagePullBackOff",
                    [&] { return kubectl("logs nopull").output; });
    EXPECT_NE(logs.find("is waiting to start: image can't be pulled"), std::string::npos) << logs;
    // It retries: ErrImagePull comes back after the back-off.
    EXPECT_EQ(wait_field("pod nopull", waiting_reason, "ErrImagePull"), "ErrImagePull");
    auto describe = kubectl("describe pod nopull");
    EXPECT_NE(describe.output.find("Failed to pull image \"does-not-exist:1.0\": rpc error"),
              std::string::npos)
        << describe.output;
    EXPECT_NE(describe.output.find("Back-off pulling image \"does-not-exist:1.0\""),
              std::string::npos);
    EXPECT_NE(describe.output.find("Successfully assigned default/nopull to node-"),
              std::string::npos);
    EXPECT_EQ(field("events --field-selector involvedObject.name=nopull,reason=BackOff",
                    "{.items[0].type}"),
              "Normal");
    EXPECT_EQ(kubectl("delete pod nopull").exit_code, 0);
}

TEST_F(pod_states_test, image_map_rule_and_invalid_registry_and_init_containers) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: private}
spec:
  containers: [{name: c, image: "registry.example/private/tool:2"}]
---
apiVersion: v1
kind: Pod
metadata: {name: badreg}
spec:
  containers: [{name: c, image: "invalid.registry/team/app:3"}]
---
apiVersion: v1
kind: Pod
metadata: {name: badinit}
spec:
  initContainers: [{name: init, image: "registry.example/private/init:1"}]
  containers: [{name: c, image: busybox}]
)");
    EXPECT_EQ(wait_field("pod private", waiting_reason, "ErrImagePull"), "ErrImagePull");
    EXPECT_NE(field("pod private", "{.status.containerStatuses[0].state.waiting.message}{.status."
                                   "containerStatuses[0].state.waiting.reason}")
                  .find("failed to pull and unpack image \"registry.example/private/tool:2\""),
              std::string::npos);
    EXPECT_EQ(wait_field("pod badreg", waiting_reason, "ErrImagePull"), "ErrImagePull");
    EXPECT_NE(field("pod badreg", "{.status.containerStatuses[0].state.waiting.message}{.status."
                                  "containerStatuses[0].state.waiting.reason}")
                  .find("Head \"https://invalid.registry/v2/team/app/manifests/3\": dial tcp: "
                        "lookup invalid.registry: no such host"),
              std::string::npos);
    EXPECT_EQ(wait_field("pod badinit", "{.status.initContainerStatuses[0].state.waiting.reason}",
                         "ErrImagePull"),
              "ErrImagePull");
    EXPECT_EQ(
        field("pod badinit", "{.status.phase} {.status.containerStatuses[0].state.waiting.reason}"),
        "Pending PodInitializing");
    auto table = kubectl("get pod badinit").output; // the state may have moved on to the back-off
    EXPECT_TRUE(table.find("Init:ErrImagePull") != std::string::npos ||
                table.find("Init:ImagePullBackOff") != std::string::npos)
        << table;
}

// An image-map rule with "auth": the image pulls only for a pod whose imagePullSecrets hold a
// kubernetes.io/dockerconfigjson Secret with those credentials for its registry (username and
// password fields, or only "auth"; the key may be a URL). Without one, or with wrong credentials
// or another registry's, it fails to pull as a private image does.
TEST_F(pod_states_test, private_image_needs_a_matching_pull_secret) {
    auto secret = [](const std::string& name, const std::string& config_b64) {
        return "apiVersion: v1\nkind: Secret\nmetadata: {name: " + name +
               "}\ntype: kubernetes.io/dockerconfigjson\ndata: {.dockerconfigjson: " + config_b64 + "}\n";
    };
    auto pod = [](const std::string& name, const std::string& secret_name) {
        return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n" +
               (secret_name.empty() ? std::string() : "  imagePullSecrets: [{name: " + secret_name + "}]\n") +
               "  containers: [{name: c, image: \"registry.example/secure/tool:1\", command: [sleep, '1000']}]\n";
    };
    // One kubectl call for all objects (each call costs a process start and discovery).
    std::string objects;
    for (const auto& [name, b64] : std::vector<std::pair<std::string, std::string>>{
             {"good", "eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlIjp7InVzZXJuYW1lIjoib2N0byIsInBhc3N3b3JkIjoiczNjcmV0IiwiYXV0aCI6ImIyTjBienB6TTJOeVpYUT0ifX19"}, {"auth-only", "eyJhdXRocyI6eyJodHRwczovL3JlZ2lzdHJ5LmV4YW1wbGUvdjEvIjp7ImF1dGgiOiJiMk4wYnpwek0yTnlaWFE9In19fQ=="}, {"wrong", "eyJhdXRocyI6eyJyZWdpc3RyeS5leGFtcGxlIjp7InVzZXJuYW1lIjoib2N0byIsInBhc3N3b3JkIjoibm9wZSJ9fX0="}, {"other", "eyJhdXRocyI6eyJvdGhlci5leGFtcGxlIjp7InVzZXJuYW1lIjoib2N0byIsInBhc3N3b3JkIjoiczNjcmV0In19fQ=="}})
        objects += secret(name, b64) + "---\n";
    for (const auto& [name, sec] : std::vector<std::pair<std::string, std::string>>{
             {"with-good", "good"}, {"with-auth-only", "auth-only"}, {"without", ""},
             {"with-wrong", "wrong"}, {"with-other", "other"}})
        objects += pod(name, sec) + "---\n";
    auto made = kubectl("create --validate=false -f -", objects);
    ASSERT_EQ(made.exit_code, 0) << made.output;
    EXPECT_EQ(wait_phase("with-good", "Running"), "Running");
    EXPECT_EQ(wait_phase("with-auth-only", "Running"), "Running");
    // The others fail to pull: phase, reason (or already the back-off) and message.
    for (const char* denied : {"without", "with-wrong", "with-other"}) {
        std::string got;
        podpipe::testing::eventually( // the first pull attempt comes at once; a slow start waits
            [&] {
                got = field(std::string("pod ") + denied,
                            "{.status.phase}|{.status.containerStatuses[0].state.waiting.reason}|"
                            "{.status.containerStatuses[0].state.waiting.message}");
                return got.find("pull access denied") != std::string::npos;
            },
            std::chrono::seconds(20), std::chrono::milliseconds(100));
        EXPECT_TRUE(got.rfind("Pending|ErrImagePull|", 0) == 0 || got.rfind("Pending|ImagePullBackOff|", 0) == 0)
            << denied << ": " << got;
        EXPECT_NE(got.find("pull access denied"), std::string::npos) << denied << ": " << got;
    }
}

TEST_F(pod_states_test, one_unpullable_container_keeps_the_pod_pending) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: mixed}
spec:
  containers:
  - {name: good, image: busybox, command: ["sleep", "1000"]}
  - {name: bad, image: "does-not-exist"}
)");
    EXPECT_EQ(wait_field("pod mixed", "{.status.containerStatuses[1].state.waiting.reason}",
                         "ErrImagePull"),
              "ErrImagePull");
    EXPECT_EQ(wait_field("pod mixed", "{.status.containerStatuses[0].started}", "true"), "true");
    EXPECT_EQ(field("pod mixed", "{.status.phase}"), "Pending");
    EXPECT_EQ(kubectl("exec mixed -c good -- echo in").output, "in\n");
    EXPECT_NE(field("pod mixed", "{.status.containerStatuses[1].state.waiting.message}{.status."
                                 "containerStatuses[1].state.waiting.reason}")
                  .find("docker.io/library/does-not-exist:latest"),
              std::string::npos);
}

TEST_F(pod_states_test, restart_always_crash_loops_with_back_off) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  containers: [{name: c, image: busybox, command: ["sh", "-c", "echo run; exit 2"]}]
)");
    EXPECT_EQ(wait_field("pod crash", waiting_reason, "CrashLoopBackOff"), "CrashLoopBackOff");
    EXPECT_EQ(field("pod crash", "{.status.phase}"), "Running");
    EXPECT_EQ(field("pod crash", "{.status.containerStatuses[0].lastState.terminated.exitCode} "
                                 "{.status.containerStatuses[0].lastState.terminated.reason}"),
              "2 Error");
    std::string uid = field("pod crash", "{.metadata.uid}");
    std::string backoff = while_in("pod crash", waiting_reason, "CrashLoopBackOff", [&] {
        return field("pod crash", "{.status.containerStatuses[0].state.waiting.message}");
    });
    EXPECT_EQ(backoff.find("restarting failed container=c pod=crash_default(" + uid + ")"),
              std::string("back-off 1s ").size())
        << backoff;
    int restarts = std::stoi(field("pod crash", "{.status.containerStatuses[0].restartCount}"));
    EXPECT_GE(restarts, 1);
    // Logs: the last instance during the back-off, the one before with --previous. Read while the
    // same back-off lasts (a restart in between would show a fresh, maybe still empty, log).
    std::string logs, previous;
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
        std::string state =
            "{.status.containerStatuses[0].restartCount} " + std::string(waiting_reason);
        std::string before = field("pod crash", state);
        logs = kubectl("logs crash").output;
        previous = kubectl("logs crash --previous").output;
        if (before.find("CrashLoopBackOff") != std::string::npos &&
            field("pod crash", state) == before)
            break;
    }
    EXPECT_EQ(logs, "run\n");
    EXPECT_EQ(previous, "run\n");
    auto table = kubectl("get pod crash");
    EXPECT_NE(table.output.find("CrashLoopBackOff"), std::string::npos) << table.output;
    EXPECT_NE(table.output.find(" ago)"), std::string::npos) << table.output;
    // The count keeps growing.
    podpipe::testing::eventually(
        [&] {
            return std::stoi(field("pod crash", "{.status.containerStatuses[0].restartCount}")) >
                   restarts;
        },
        std::chrono::seconds(20), std::chrono::milliseconds(200));
    EXPECT_GT(std::stoi(field("pod crash", "{.status.containerStatuses[0].restartCount}")),
              restarts);
    auto describe = kubectl("describe pod crash");
    EXPECT_NE(describe.output.find("Back-off restarting failed container c in pod crash_default(" +
                                   uid + ")"),
              std::string::npos)
        << describe.output;
    EXPECT_EQ(kubectl("delete pod crash").exit_code, 0);
}

TEST_F(pod_states_test, restart_on_failure_until_success) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: retry}
spec:
  restartPolicy: OnFailure
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "n=$(cat /data/n 2>/dev/null || echo 0); n=$((n+1)); echo $n > /data/n; echo try $n; [ $n -ge 3 ]"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
)");
    EXPECT_EQ(wait_phase("retry", "Succeeded", std::chrono::seconds(30)), "Succeeded");
    EXPECT_EQ(field("pod retry", "{.status.containerStatuses[0].restartCount} "
                                 "{.status.containerStatuses[0].state.terminated.exitCode} "
                                 "{.status.containerStatuses[0].lastState.terminated.exitCode}"),
              "2 0 1");
    EXPECT_EQ(kubectl("logs retry").output, "try 3\n");
    EXPECT_EQ(kubectl("logs retry -p").output, "try 2\n");
}

TEST_F(pod_states_test, never_does_not_restart_and_delete_records_killing) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: once}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: ["sh", "-c", "exit 4"]}]
---
apiVersion: v1
kind: Pod
metadata: {name: sleeper}
spec:
  containers: [{name: c, image: busybox, command: ["sleep", "1000"]}]
)");
    EXPECT_EQ(wait_phase("once", "Failed"), "Failed");
    EXPECT_EQ(field("pod once", "{.status.containerStatuses[0].restartCount}"), "0");
    auto prev = kubectl("logs once --previous");
    EXPECT_NE(prev.output.find("previous terminated container \"c\" in pod \"once\" not found"),
              std::string::npos)
        << prev.output;
    ASSERT_EQ(wait_phase("sleeper", "Running"), "Running");
    auto events = kubectl(
        "get events --field-selector involvedObject.name=sleeper "
        "-o jsonpath='{range "
        ".items[*]}{.reason}/{.source.component}/{.involvedObject.fieldPath}{\"\\n\"}{end}'");
    EXPECT_NE(events.output.find("Scheduled/default-scheduler/\n"), std::string::npos)
        << events.output;
    EXPECT_NE(events.output.find("Started/kubelet/spec.containers{c}\n"), std::string::npos)
        << events.output;
    // The list comes out in time order.
    EXPECT_LT(events.output.find("Scheduled"), events.output.find("Started"));
    ASSERT_EQ(kubectl("delete pod sleeper --wait=false").exit_code, 0);
    podpipe::testing::eventually(
        [&] {
            return !field("events --field-selector involvedObject.name=sleeper,reason=Killing",
                          "{.items[*].message}")
                        .empty();
        },
        std::chrono::seconds(10), std::chrono::milliseconds(100));
    EXPECT_EQ(field("events --field-selector involvedObject.name=sleeper,reason=Killing",
                    "{.items[*].message}"),
              "Stopping container c");
    auto table = kubectl("get events");
    EXPECT_NE(table.output.find("LAST SEEN   TYPE"), std::string::npos) << table.output;
    EXPECT_NE(table.output.find("pod/sleeper"), std::string::npos) << table.output;
}

TEST_F(pod_states_test, job_with_on_failure_counts_restarts_against_backoff_limit) {
    ASSERT_EQ(kubectl("create -f - --validate=false", R"(apiVersion: batch/v1
kind: Job
metadata: {name: jr}
spec:
  backoffLimit: 2
  template:
    spec:
      restartPolicy: OnFailure
      containers: [{name: c, image: busybox, command: ["sh", "-c", "exit 1"]}]
)")
                  .exit_code,
              0);
    auto wait =
        kubectl("wait --for=condition=failed job/jr --timeout=40s", "", std::chrono::seconds(50));
    ASSERT_EQ(wait.exit_code, 0) << wait.output;
    EXPECT_EQ(field("job jr", "{.status.conditions[?(@.type==\"Failed\")].reason}"),
              "BackoffLimitExceeded");
}

TEST_F(pod_states_test, log_timestamps_since_and_tail) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: lg}
spec:
  containers: [{name: c, image: busybox, command: ["sh", "-c", "echo one; sleep 1.5; echo two; exec sleep 1000"]}]
)");
    auto get = [&](const std::string& query) { return pod_log("lg", query); };
    ASSERT_EQ(wait_log("lg", "one\ntwo\n"), "one\ntwo\n");
    // timestamps=true: RFC 3339 with nanoseconds (trailing zeros dropped) and a space per line.
    std::string stamped = get("timestamps=true").body;
    auto nl = stamped.find('\n');
    ASSERT_NE(nl, std::string::npos) << stamped;
    std::string first = stamped.substr(0, nl), second = stamped.substr(nl + 1);
    auto check = [](const std::string& line, const std::string& text) {
        auto sp = line.find(' ');
        ASSERT_NE(sp, std::string::npos) << line;
        std::string ts = line.substr(0, sp);
        EXPECT_EQ(line.substr(sp + 1), text);
        ASSERT_GE(ts.size(), 20u) << ts;
        EXPECT_EQ(ts[4], '-');
        EXPECT_EQ(ts[10], 'T');
        EXPECT_EQ(ts.back(), 'Z');
        if (ts.size() > 20) {
            EXPECT_EQ(ts[19], '.') << ts;
            EXPECT_NE(ts[ts.size() - 2], '0') << "trailing zeros are dropped: " << ts;
        }
    };
    check(first, "one");
    check(second, "two\n");
    std::string t1 = first.substr(0, first.find(' ')), t2 = second.substr(0, second.find(' '));
    EXPECT_LT(t1, t2); // same-length prefixes up to the second: the later line sorts after
    // sinceTime (second precision) at the second line's second excludes the first line.
    EXPECT_EQ(get("sinceTime=" + t2.substr(0, 19) + "Z").body, "two\n");
    EXPECT_EQ(get("sinceSeconds=3600").body, "one\ntwo\n");
    EXPECT_EQ(get("sinceSeconds=0").status, 422);
    EXPECT_EQ(get("sinceSeconds=5&sinceTime=" + t2.substr(0, 19) + "Z").status, 422);
    EXPECT_EQ(get("timestamps=true&tailLines=1").body, second);
    EXPECT_EQ(get("timestamps=true&limitBytes=4").body, first.substr(0, 4));
}

// A line over 16 KiB is stored in parts with a time each (containerd's default
// max-container-log-line-size): timestamps=true stamps the line once, and sinceTime filters by
// part, so a stream from the second of the line's rest begins inside the line, unstamped (what
// the kubelet serves; log_resume relies on it).
TEST_F(pod_states_test, log_long_line_parts_have_their_own_times) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: long}
spec:
  containers: [{name: c, image: busybox, command: ["sh", "-c", "head -c 16384 /dev/zero | tr '\\0' x; sleep 1.5; echo tail; echo after; exec sleep 1000"]}]
)");
    auto get = [&](const std::string& query) { return pod_log("long", query); };
    const std::string line = std::string(16384, 'x') + "tail\n";
    ASSERT_EQ(wait_log("long", line + "after\n"), line + "after\n");
    const std::string stamped = get("timestamps=true").body;
    const auto sp = stamped.find(' ');
    ASSERT_NE(sp, std::string::npos);
    const auto nl = stamped.find('\n');
    EXPECT_EQ(stamped.substr(sp + 1, nl - sp), line) << "one stamp for the whole line";
    const std::string after = stamped.substr(nl + 1);
    ASSERT_EQ(after.substr(after.find(' ') + 1), "after\n");
    // From the second of "after" (the rest arrived 1.5 s after the line's first part, within
    // ms of "after"): the rest of the line, unstamped, then "after" stamped. Unless "after"
    // came in the first 100 ms of its second (the rest may be in the second before), this is
    // exact.
    const std::string second = after.substr(0, 19) + "Z";
    const bool same_second = after[19] == '.' && after[20] != '0';
    const std::string from = get("timestamps=true&sinceTime=" + second).body;
    const std::string plain = get("sinceTime=" + second).body;
    if (same_second || from != after) {
        EXPECT_EQ(from, "tail\n" + after);
        EXPECT_EQ(plain, "tail\nafter\n");
    } else {
        EXPECT_EQ(plain, "after\n");
    }
}

} // namespace
} // namespace podpipe::kubesim::testing
