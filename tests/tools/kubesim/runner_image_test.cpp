// The built-in actions-runner root: ghcr.io/actions/actions-runner:* runs on a busybox-based root
// with user runner (1001) and /home/runner/externals holding the files of --externals DIR.
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "kubesim_fixture.hpp"

namespace podpipe::kubesim::testing {
namespace {

class runner_image_test : public kubesim_fixture {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/kubesim-externals-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        externals_ = tmpl;
        std::ofstream(externals_ + "/podpipe") << "#!/bin/sh\necho podpipe-stand-in \"$@\"\n";
        ::chmod((externals_ + "/podpipe").c_str(), 0755);
        extra_args_ = {"--externals", externals_};
        kubesim_fixture::SetUp();
    }
    void TearDown() override {
        kubesim_fixture::TearDown();
        std::error_code ec;
        std::filesystem::remove_all(externals_, ec);
    }
    std::string externals_;
};

TEST_F(runner_image_test, externals_hold_the_given_binary) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: runner}
spec:
  nodeName: node-2
  containers:
  - name: runner
    image: ghcr.io/actions/actions-runner:2.321.0
    command: ["sleep", "1000000"]
    volumeMounts: [{name: work, mountPath: /home/runner/_work}]
  volumes: [{name: work, emptyDir: {}}]
)");
    ASSERT_EQ(wait_phase("runner", "Running"), "Running");
    EXPECT_EQ(kubectl("get pod runner -o jsonpath='{.spec.nodeName}'").output, "node-2");
    auto r = kubectl("exec runner -- /home/runner/externals/podpipe --version");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "podpipe-stand-in --version\n");
    EXPECT_EQ(kubectl("exec runner -- sh -c 'grep ^runner: /etc/passwd | cut -d: -f3; readlink /bin/tar'").output,
              "1001\n/bin/busybox\n");
    EXPECT_EQ(kubectl("exec runner -- sh -c 'echo ok > /home/runner/_work/f && cat /home/runner/_work/f'").output,
              "ok\n");
}

// The upstream hook's fs-init moves the externals out of the runner image (its root must be
// writable, as a runtime's copy-on-write layer is), and the image's externals belong to
// runner:docker (1001:123) as in the real image.
TEST_F(runner_image_test, the_image_is_writable_and_its_externals_belong_to_the_runner) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: init}
spec:
  restartPolicy: Never
  containers:
  - name: fs-init
    image: ghcr.io/actions/actions-runner:2.321.0
    command: ["sh", "-c", "stat -c '%u:%g %n' /home/runner/externals/podpipe && mkdir -p /mnt/e && mv /home/runner/externals/* /mnt/e/ && ls /mnt/e && ls /home/runner/externals | wc -l"]
)");
    EXPECT_EQ(wait_phase("init", "Succeeded"), "Succeeded")
        << kubectl("logs init").output;
    EXPECT_EQ(kubectl("logs init").output,
              "1001:123 /home/runner/externals/podpipe\npodpipe\n0\n");
    // The image itself is unchanged: the next pod finds its externals in place.
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: again}
spec:
  restartPolicy: Never
  containers:
  - {name: c, image: ghcr.io/actions/actions-runner:2.321.0, command: ["ls", "/home/runner/externals"]}
)");
    EXPECT_EQ(wait_phase("again", "Succeeded"), "Succeeded");
    EXPECT_EQ(kubectl("logs again").output, "podpipe\n");
}

} // namespace
} // namespace podpipe::kubesim::testing
