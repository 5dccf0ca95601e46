// Conformance: real kubectl 1.32 against kubesim (spec kube-api.md §6.3 must-haves).
#include <filesystem>
#include <fstream>

#include "kubesim_fixture.hpp"

namespace podpipe::kubesim::testing {
namespace {

const char* const sleeper_pod = R"(apiVersion: v1
kind: Pod
metadata:
  name: p1
  labels: {app: demo, tier: web}
spec:
  containers:
  - name: c1
    image: busybox:1.36
    command: ["sh", "-c", "echo started; exec sleep 1000000"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes: [{name: data, emptyDir: {}}]
)";

class kubectl_test : public kubesim_fixture {};

TEST_F(kubectl_test, get_pods_shows_table_columns) {
    create_pod(sleeper_pod);
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    auto r = kubectl("get pods");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("NAME"), std::string::npos) << r.output;
    for (const char* col : {"READY", "STATUS", "RESTARTS", "AGE"})
        EXPECT_NE(r.output.find(col), std::string::npos) << col << "\n" << r.output;
    EXPECT_NE(r.output.find("1/1"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("Running"), std::string::npos) << r.output;
    auto wide = kubectl("get pods -o wide");
    ASSERT_EQ(wide.exit_code, 0) << wide.output;
    EXPECT_NE(wide.output.find("NODE"), std::string::npos) << wide.output;
    EXPECT_NE(wide.output.find("node-"), std::string::npos) << wide.output;
    EXPECT_NE(wide.output.find("10.244."), std::string::npos) << wide.output;
    // Label selectors (set-based and equality) reach the server.
    auto sel = kubectl("get pods -l 'app in (demo,other),tier!=db' -o name");
    EXPECT_EQ(sel.output, "pod/p1\n");
    auto none = kubectl("get pods -l app=other -o name");
    EXPECT_EQ(none.exit_code, 0);
    EXPECT_EQ(none.output.find("pod/p1"), std::string::npos) << none.output;
    auto nodes = kubectl("get nodes -o name");
    EXPECT_EQ(nodes.output, "node/node-1\nnode/node-2\nnode/node-3\n");
}

TEST_F(kubectl_test, create_duplicate_is_already_exists) {
    create_pod(sleeper_pod);
    auto r = kubectl("create -f - --validate=false", sleeper_pod);
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("AlreadyExists"), std::string::npos) << r.output;
}

TEST_F(kubectl_test, exec_with_stdin_and_exit_code) {
    create_pod(sleeper_pod);
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    auto w = kubectl("exec -i p1 -- sh -c 'cat > /data/x'", "hello from stdin\n");
    ASSERT_EQ(w.exit_code, 0) << w.output;
    auto rd = kubectl("exec p1 -- cat /data/x");
    ASSERT_EQ(rd.exit_code, 0) << rd.output;
    EXPECT_EQ(rd.output, "hello from stdin\n");
    auto e7 = kubectl("exec p1 -- sh -c 'exit 7'");
    EXPECT_EQ(e7.exit_code, 7) << e7.output;
    auto err = kubectl("exec p1 -- sh -c 'echo to-stderr >&2'");
    EXPECT_EQ(err.exit_code, 0);
    EXPECT_NE(err.output.find("to-stderr"), std::string::npos) << err.output;
    // The image's own tools: busybox sh/tar, not the host's.
    auto tar = kubectl("exec p1 -- sh -c 'readlink /bin/tar'");
    EXPECT_EQ(tar.output, "/bin/busybox\n") << tar.output;
}

TEST_F(kubectl_test, exec_large_output_is_complete) {
    create_pod(sleeper_pod);
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    auto r = kubectl("exec p1 -- sh -c 'seq 1 200000' | tail -1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "200000\n");
}

TEST_F(kubectl_test, cp_tree_both_directions) {
    create_pod(sleeper_pod);
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    // 2 000 small files in 20 directories plus one 4 MiB binary file.
    auto gen = shell(
        "mkdir -p src && cd src && for d in $(seq 1 20); do mkdir d$d; for f in $(seq 1 100); do "
        "echo \"file $d $f\" > d$d/f$f; done; done && head -c 4194304 /dev/urandom > big.bin");
    ASSERT_EQ(gen.exit_code, 0) << gen.output;
    auto up = kubectl("cp src p1:/data/src", "", std::chrono::seconds(120));
    ASSERT_EQ(up.exit_code, 0) << up.output;
    auto count = kubectl("exec p1 -- sh -c 'find /data/src -type f | wc -l'");
    EXPECT_EQ(count.output.find("2001"), count.output.find_first_not_of(' ')) << count.output;
    auto down = kubectl("cp p1:/data/src back", "", std::chrono::seconds(120));
    ASSERT_EQ(down.exit_code, 0) << down.output;
    auto diff = shell("diff -r src back && echo SAME");
    EXPECT_EQ(diff.exit_code, 0) << diff.output;
    EXPECT_NE(diff.output.find("SAME"), std::string::npos) << diff.output;
}

TEST_F(kubectl_test, logs_follow_streams_until_exit) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: logger}
spec:
  restartPolicy: Never
  containers:
  - name: main
    image: alpine:3.20
    command: ["sh", "-c", "for i in 1 2 3 4; do echo line $i; sleep 0.3; done"]
)");
    ASSERT_EQ(wait_phase("logger", "Running"), "Running");
    auto r = kubectl("logs -f logger -c main");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "line 1\nline 2\nline 3\nline 4\n");
    EXPECT_EQ(wait_phase("logger", "Succeeded"), "Succeeded");
    auto tail = kubectl("logs logger --tail=2");
    EXPECT_EQ(tail.output, "line 3\nline 4\n");
}

TEST_F(kubectl_test, failed_container_sets_failed_phase) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: bad}
spec:
  restartPolicy: Never
  initContainers:
  - {name: init, image: busybox, command: ["sh", "-c", "echo init > /work/marker"],
     volumeMounts: [{name: w, mountPath: /work}]}
  containers:
  - {name: main, image: busybox, command: ["sh", "-c", "test -f /work/marker && exit 3"],
     volumeMounts: [{name: w, mountPath: /work}]}
  volumes: [{name: w, emptyDir: {}}]
)");
    EXPECT_EQ(wait_phase("bad", "Failed"), "Failed");
    auto code = kubectl("get pod bad -o jsonpath='{.status.containerStatuses[0].state.terminated.exitCode} "
                        "{.status.containerStatuses[0].state.terminated.reason} "
                        "{.status.initContainerStatuses[0].state.terminated.reason}'");
    EXPECT_EQ(code.output, "3 Error Completed");
}

TEST_F(kubectl_test, delete_pod_kills_processes) {
    create_pod(sleeper_pod);
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    auto d = kubectl("delete pod p1");
    ASSERT_EQ(d.exit_code, 0) << d.output;
    EXPECT_NE(d.output.find("pod \"p1\" deleted"), std::string::npos) << d.output;
    auto g = kubectl("get pod p1");
    EXPECT_NE(g.exit_code, 0);
    EXPECT_NE(g.output.find("NotFound"), std::string::npos) << g.output;
    auto missing = kubectl("delete pod p1");
    EXPECT_NE(missing.exit_code, 0);
    EXPECT_NE(missing.output.find("not found"), std::string::npos) << missing.output;
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/state/pods")
                     ? !std::filesystem::is_empty(dir_ + "/state/pods")
                     : false)
        << "pod directory (emptyDir) not removed";
}

TEST_F(kubectl_test, unschedulable_pod_stays_pending) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: nowhere}
spec:
  nodeSelector: {kubernetes.io/hostname: node-9}
  containers: [{name: c, image: busybox}]
)");
    auto r = kubectl("get pod nowhere -o jsonpath='{.status.phase} {.status.conditions[0].reason}'");
    EXPECT_EQ(r.output, "Pending Unschedulable");
}

TEST_F(kubectl_test, bad_token_is_unauthorized) {
    auto r = kubectl("--token not-a-valid-token get pods");
    EXPECT_NE(r.exit_code, 0);
    // kubectl words a 401 during discovery as "provide credentials", later ones as
    // "(Unauthorized)"; both start with this sentence.
    EXPECT_NE(r.output.find("You must be logged in to the server"), std::string::npos) << r.output;
    // A request after discovery (cache warmed with the good token) shows the Status reason.
    ASSERT_EQ(kubectl("get pods").exit_code, 0);
    auto cached = kubectl("--token not-a-valid-token get pod x");
    EXPECT_NE(cached.exit_code, 0);
    EXPECT_NE(cached.output.find("Unauthorized"), std::string::npos) << cached.output;
}

} // namespace
} // namespace podpipe::kubesim::testing
