// PersistentVolumeClaims: CRUD, per-claim directories shared by pods, ReadWriteOnce attach to the
// first running pod's node (Multi-Attach wait elsewhere, scheduler preference), ReadWriteMany;
// a pod naming a claim that does not exist waits for it (FailedScheduling / FailedMount).
#include <filesystem>
#include <thread>

#include "kubesim_fixture.hpp"
#include "tests/support/eventually.hpp"

namespace podpipe::kubesim::testing {
namespace {

std::string claim(const std::string& name, const std::string& mode) {
    return "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: " + name +
           "}\nspec:\n  accessModes: [" + mode + "]\n  resources: {requests: {storage: 1Gi}}\n";
}

std::string pod(const std::string& name, const std::string& claim_name, const std::string& placement,
                const std::string& script = "sleep 1000000") {
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: " + name + "}\nspec:\n" + placement +
           "  containers:\n  - {name: c, image: busybox, command: [\"sh\", \"-c\", \"" + script +
           "\"], volumeMounts: [{name: w, mountPath: /work}]}\n"
           "  volumes: [{name: w, persistentVolumeClaim: {claimName: " + claim_name + "}}]\n";
}

class pvc_test : public kubesim_fixture {
protected:
    std::string field(const std::string& what, const std::string& path) {
        return kubectl("get " + what + " -o jsonpath='" + path + "'").output;
    }
};

TEST_F(pvc_test, create_get_list_delete) {
    ASSERT_EQ(kubectl("create -f - --validate=false", claim("data", "ReadWriteOnce")).exit_code, 0);
    EXPECT_EQ(field("pvc data", "{.status.phase} {.status.accessModes[0]} {.spec.volumeMode}"),
              "Bound ReadWriteOnce Filesystem");
    EXPECT_EQ(kubectl("get pvc -o name").output, "persistentvolumeclaim/data\n");
    auto dup = kubectl("create -f - --validate=false", claim("data", "ReadWriteOnce"));
    EXPECT_NE(dup.output.find("AlreadyExists"), std::string::npos) << dup.output;
    auto bad = kubectl("create -f - --validate=false",
                       "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: x}\nspec: {}\n");
    EXPECT_NE(bad.output.find("spec.accessModes: Required value"), std::string::npos) << bad.output;
    auto del = kubectl("delete pvc data");
    EXPECT_EQ(del.exit_code, 0) << del.output;
    EXPECT_NE(kubectl("get pvc data").output.find("NotFound"), std::string::npos);
}

TEST_F(pvc_test, read_write_once_attaches_to_first_node) {
    ASSERT_EQ(kubectl("create -f - --validate=false", claim("rwo", "ReadWriteOnce")).exit_code, 0);
    create_pod(pod("first", "rwo", "  nodeName: node-2\n", "echo one > /work/f; exec sleep 1000000"));
    ASSERT_EQ(wait_phase("first", "Running"), "Running");
    // A runner-style pod pinned to another node cannot attach: ContainerCreating + Multi-Attach.
    create_pod(pod("pinned", "rwo", "  nodeName: node-1\n", "cat /work/f; exec sleep 1000000"));
    podpipe::testing::eventually([&] { return !field("pod pinned", "{.status.message}").empty(); },
                                 std::chrono::seconds(10), std::chrono::milliseconds(100));
    EXPECT_EQ(field("pod pinned", "{.status.phase} {.status.containerStatuses[0].state.waiting.reason}"),
              "Pending ContainerCreating");
    EXPECT_NE(field("pod pinned", "{.status.message}").find("Multi-Attach error for volume \"pvc-"),
              std::string::npos);
    EXPECT_NE(field("pod pinned", "{.status.message}").find("already used by pod(s) first"), std::string::npos);
    EXPECT_NE(kubectl("get pods").output.find("ContainerCreating"), std::string::npos);
    EXPECT_EQ(field("events --field-selector involvedObject.name=pinned,reason=FailedAttachVolume",
                    "{.items[0].type} {.items[0].source.component}"),
              "Warning attachdetach-controller");
    EXPECT_NE(kubectl("describe pod pinned").output.find("Multi-Attach error for volume"), std::string::npos);
    // Unpinned pods are scheduled to the attached node and start.
    create_pod(pod("follower", "rwo", ""));
    ASSERT_EQ(wait_phase("follower", "Running"), "Running");
    EXPECT_EQ(field("pod follower", "{.spec.nodeName}"), "node-2");
    // Once every user on node-2 is gone, the pinned pod attaches and sees the data.
    ASSERT_EQ(kubectl("delete pod first follower --grace-period=0").exit_code, 0);
    ASSERT_EQ(wait_phase("pinned", "Running"), "Running");
    EXPECT_EQ(kubectl("logs pinned").output, "one\n");
}

TEST_F(pvc_test, read_write_many_attaches_anywhere) {
    ASSERT_EQ(kubectl("create -f - --validate=false", claim("shared", "ReadWriteMany")).exit_code, 0);
    create_pod(pod("a", "shared", "  nodeName: node-1\n", "echo from-a > /work/a; exec sleep 1000000"));
    ASSERT_EQ(wait_phase("a", "Running"), "Running");
    create_pod(pod("b", "shared", "  nodeName: node-3\n"));
    ASSERT_EQ(wait_phase("b", "Running"), "Running");
    EXPECT_EQ(kubectl("exec b -- cat /work/a").output, "from-a\n");
}

TEST_F(pvc_test, a_missing_claim_holds_the_pod_in_the_scheduler_until_it_exists) {
    create_pod(pod("early", "later", "", "echo started; exec sleep 1000000"));
    podpipe::testing::eventually(
        [&] { return !field("pod early", "{.status.conditions[0].reason}").empty(); },
        std::chrono::seconds(10), std::chrono::milliseconds(100));
    EXPECT_EQ(field("pod early", "{.status.phase} {.status.conditions[0].type} "
                                 "{.status.conditions[0].status} {.status.conditions[0].reason}"),
              "Pending PodScheduled False Unschedulable");
    EXPECT_EQ(field("pod early", "{.spec.nodeName}"), "");
    const std::string expected = "0/3 nodes are available: persistentvolumeclaim \"later\" not "
                                 "found. preemption: 0/3 nodes are available: 3 Preemption is not "
                                 "helpful for scheduling.";
    EXPECT_EQ(field("events --field-selector involvedObject.name=early,reason=FailedScheduling",
                    "{.items[0].type} {.items[0].source.component} {.items[0].message}"),
              "Warning default-scheduler " + expected);
    // Nothing was made on disk for a claim that does not exist.
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/state/claims/default/later"));
    // The claim's creation requeues the pod, which then starts with the claim mounted.
    ASSERT_EQ(kubectl("create -f - --validate=false", claim("later", "ReadWriteOnce")).exit_code,
              0);
    ASSERT_EQ(wait_phase("early", "Running"), "Running");
    EXPECT_NE(field("pod early", "{.spec.nodeName}"), "");
    EXPECT_EQ(kubectl("exec early -- sh -c 'echo x > /work/f && cat /work/f'").output, "x\n");
}

TEST_F(pvc_test, a_pod_bound_to_a_node_waits_for_its_claim_with_failed_mount) {
    create_pod(pod("bound", "absent", "  nodeName: node-1\n", "echo started; exec sleep 1000000"));
    podpipe::testing::eventually([&] { return !field("pod bound", "{.status.message}").empty(); },
                                 std::chrono::seconds(10), std::chrono::milliseconds(100));
    EXPECT_EQ(field("pod bound",
                    "{.status.phase} {.status.containerStatuses[0].state.waiting.reason}"),
              "Pending ContainerCreating");
    EXPECT_EQ(field("events --field-selector involvedObject.name=bound,reason=FailedMount",
                    "{.items[0].type} {.items[0].source.component}"),
              "Warning kubelet");
    EXPECT_NE(field("pod bound", "{.status.message}")
                  .find("persistentvolumeclaims \"absent\" not found"),
              std::string::npos);
    // Held, not started: the container never ran.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    EXPECT_EQ(field("pod bound", "{.status.phase}"), "Pending");
    ASSERT_EQ(kubectl("create -f - --validate=false", claim("absent", "ReadWriteMany")).exit_code,
              0);
    ASSERT_EQ(wait_phase("bound", "Running"), "Running");
    EXPECT_EQ(kubectl("logs bound").output, "started\n");
}

TEST_F(pvc_test, a_claim_name_that_is_a_path_never_becomes_one) {
    // Pod validation only requires claimName (upstream validatePersistentClaimVolumeSource), so
    // such a pod is accepted; no claim can have that name, so it waits and nothing is created.
    create_pod(pod("escape", "../../../escaped", "", "exec sleep 1000000"));
    podpipe::testing::eventually(
        [&] { return !field("pod escape", "{.status.conditions[0].reason}").empty(); },
        std::chrono::seconds(10), std::chrono::milliseconds(100));
    EXPECT_EQ(field("pod escape", "{.status.phase} {.status.conditions[0].reason}"),
              "Pending Unschedulable");
    auto bad = kubectl("create -f - --validate=false", claim("../../../escaped", "ReadWriteOnce"));
    EXPECT_NE(bad.exit_code, 0);
    EXPECT_NE(bad.output.find("Invalid"), std::string::npos) << bad.output;
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/state/../escaped"));
    EXPECT_FALSE(std::filesystem::exists(dir_ + "/state/claims/escaped"));
}

} // namespace
} // namespace podpipe::kubesim::testing
