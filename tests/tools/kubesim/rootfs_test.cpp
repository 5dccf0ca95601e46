// Container roots as a runtime gives them: the image under a writable copy-on-write layer of the
// container's own (changes stay in the container, the image and other containers never see
// them, a restarted container starts from the image again), and a read-only root only with
// securityContext.readOnlyRootFilesystem (volumes stay writable then).
#include "kubesim_fixture.hpp"
#include "tests/support/eventually.hpp"

namespace podpipe::kubesim::testing {
namespace {

class rootfs_test : public kubesim_fixture {
protected:
    std::string logs(const std::string& args) { return kubectl("logs " + args).output; }
};

TEST_F(rootfs_test, a_container_changes_its_own_copy_of_the_image) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: w}
spec:
  restartPolicy: OnFailure
  containers:
  - name: a
    image: busybox
    command: ["sh", "-c", "cat /etc/mark 2>/dev/null || echo none; echo a > /etc/mark && rm /bin/true && mkdir /newdir && ls /bin/true 2>/dev/null; test -f /restarted && exit 0; touch /restarted; exit 1"]
  - name: b
    image: busybox
    command: ["sh", "-c", "sleep 1; cat /etc/mark 2>/dev/null || echo none; ls /bin/true; sleep 1000000"]
)");
    // a: its first instance changed the image, exited 1 and was restarted: the second one
    // starts from the image again (no mark, and /restarted is gone too, so it fails again).
    ASSERT_EQ(wait_phase("w", "Running"), "Running");
    std::string b_log, previous;
    EXPECT_TRUE(podpipe::testing::eventually(
        [&] {
            b_log = logs("w -c b");
            previous = logs("w -c a --previous");
            return b_log == "none\n/bin/true\n" && !previous.empty();
        },
        std::chrono::seconds(20), std::chrono::milliseconds(100)))
        << b_log << "/" << previous;
    EXPECT_EQ(kubectl("exec w -c b -- cat /etc/mark").exit_code, 1); // b never saw a's change
    // The first instance found the image's /etc (no mark), changed it without an error; the
    // second starts from the image again (no mark).
    EXPECT_EQ(previous, "none\n");
    EXPECT_TRUE(podpipe::testing::eventually([&] { return logs("w -c a") == "none\n"; },
                                             std::chrono::seconds(20),
                                             std::chrono::milliseconds(100)))
        << logs("w -c a");
}

TEST_F(rootfs_test, read_only_root_filesystem_makes_the_root_read_only_but_not_volumes) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: ro}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "1000000"]
    securityContext: {readOnlyRootFilesystem: true}
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {}}]
)");
    ASSERT_EQ(wait_phase("ro", "Running"), "Running");
    for (const char* path : {"/etc/x", "/x", "/tmp/x"}) {
        auto r = kubectl(std::string("exec ro -- touch ") + path);
        EXPECT_NE(r.exit_code, 0) << path;
        EXPECT_NE(r.output.find("Read-only file system"), std::string::npos) << r.output;
    }
    EXPECT_EQ(kubectl("exec ro -- sh -c 'echo ok > /scratch/f && cat /scratch/f'").output, "ok\n");
}

} // namespace
} // namespace podpipe::kubesim::testing
