// The static in-pod podpipe (build/static/podpipe) runs inside kubesim's busybox image: it
// receives a stream through a real `kubectl exec -i`, verifies the manifest, sends it back, and
// reports a damaged stream with its exit code.
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/kubesim/test_client.hpp"
#include "tests/tools/podpipe/pod_yaml.hpp"

#include <filesystem>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::shell_quote;

const std::string host_podpipe = PODPIPE_EXE;
const std::string static_dir = PODPIPE_STATIC_DIR;

class pod_binary_test : public kubesim_fixture {
protected:
    void SetUp() override {
        kubesim_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        create_pod(podpipe_pod_yaml("bb", "busybox:1.36", static_dir));
        ASSERT_EQ(wait_phase("bb", "Running"), "Running");
    }
    podpipe::testing::temp_dir tmp_;
};

TEST_F(pod_binary_test, static_binary_round_trips_a_tree_in_a_busybox_pod) {
    // The image really is busybox: its tar is the applet, not the host's GNU tar.
    EXPECT_EQ(kubectl("exec bb -- readlink /bin/tar").output, "/bin/busybox\n");
    auto v = kubectl("exec bb -- /__e/podpipe/podpipe --version");
    ASSERT_EQ(v.exit_code, 0) << v.output;
    // Level 1 is what the build configured: ISA-L's igzip when a static ISA-L was linked.
    EXPECT_EQ(v.output, "podpipe 0.3.0 (recv --acks, send --acks, send --watch-stdin)\n"
                        "gzip level 1: "
                        PODPIPE_STATIC_LEVEL1 "\n");

    podpipe::testing::make_awkward_tree(tmp_ / "src", 300);
    const std::string src = shell_quote((tmp_ / "src").string());
    auto in = shell(host_podpipe + " pack " + src + " | " + kubectl_bin_ +
                    " exec -i bb -- /__e/podpipe/podpipe recv --report /data/dst");
    ASSERT_EQ(in.exit_code, 0) << in.output;
    EXPECT_NE(in.output.find("\"checked\":true"), std::string::npos) << in.output;

    const std::string back = shell_quote((tmp_ / "back").string());
    auto out = shell(kubectl_bin_ + " exec bb -- /__e/podpipe/podpipe send /data/dst | " +
                     host_podpipe + " unpack --require-manifest " + back);
    ASSERT_EQ(out.exit_code, 0) << out.output;
    EXPECT_EQ(podpipe::testing::diff_trees(tmp_ / "src", tmp_ / "back"), std::vector<std::string>{});
}

TEST_F(pod_binary_test, damaged_streams_fail_with_their_exit_codes) {
    podpipe::testing::write_file(tmp_ / "src/small.txt", "hello\n");
    const std::string src = shell_quote((tmp_ / "src").string());
    ASSERT_EQ(shell("head -c 3000000 /dev/urandom > " + src + "/big.bin").exit_code, 0);
    // Truncated: the receiver must not report success.
    auto cut = shell(host_podpipe + " pack --chunk-size 256K " + src + " | head -c 100000 | " +
                     kubectl_bin_ + " exec -i bb -- /__e/podpipe/podpipe recv /data/cut");
    EXPECT_EQ(cut.exit_code, 4) << cut.output;
    EXPECT_NE(cut.output.find("recv failed: "), std::string::npos) << cut.output;
    // A plain tar.gz has no manifest: refused unless --no-verify.
    auto plain = shell("tar czf - -C " + src + " . | " + kubectl_bin_ +
                       " exec -i bb -- /__e/podpipe/podpipe recv /data/plain");
    EXPECT_EQ(plain.exit_code, 4) << plain.output;
    EXPECT_NE(plain.output.find("no podpipe manifest"), std::string::npos) << plain.output;
    auto relaxed = shell("tar czf - -C " + src + " . | " + kubectl_bin_ +
                         " exec -i bb -- /__e/podpipe/podpipe recv --no-verify /data/plain");
    EXPECT_EQ(relaxed.exit_code, 0) << relaxed.output;
    EXPECT_EQ(kubectl("exec bb -- cat /data/plain/small.txt").output, "hello\n");
}

// `podpipe run` in a pod through real exec sessions: the session that started the step drops
// after a few hundred bytes (kubesim's exec fault), the step goes on, and a second exec attached
// at the byte count kubectl printed gives the rest and the step's exit code.
TEST_F(pod_binary_test, a_step_outlives_its_dropped_exec_and_is_followed_from_where_it_was) {
    auto fault = https_request(port(), ca_file(), admin_token(), "POST", "/kubesim/faults",
                               R"({"exec": {"count": 1, "dropAfterBytes": 300}})");
    ASSERT_EQ(fault.status, 200) << fault.body;
    // 60 lines one by one (more than the drop lets through), then it waits for the test's go.
    const std::string script = "i=0; while [ $i -lt 80 ]; do echo line-$i; i=$((i+1)); "
                               "sleep 0.02; if [ $i = 60 ]; then while [ ! -e /data/go ]; do "
                               "sleep 0.05; done; fi; done; exit 3";
    const std::string out = (tmp_ / "first").string();
    auto first = shell(kubectl_bin_ + " exec bb -- /__e/podpipe/podpipe run --spool /data/step "
                       "-- sh -c " + shell_quote(script) + " > " + shell_quote(out) +
                       " 2>/dev/null");
    EXPECT_NE(first.exit_code, 0) << "the session should have dropped";
    const std::string printed = shell("cat " + shell_quote(out)).output;
    ASSERT_LT(printed.size(), 400u) << printed; // cut short (≈300 bytes, whole messages)
    EXPECT_EQ(kubectl("exec bb -- /__e/podpipe/podpipe run --spool /data/step --status").output,
              "running\n");
    ASSERT_EQ(kubectl("exec bb -- touch /data/go").exit_code, 0);
    auto rest = shell(kubectl_bin_ + " exec bb -- /__e/podpipe/podpipe run --spool /data/step "
                      "--attach --stdout-from " + std::to_string(printed.size()) + " 2>&1");
    EXPECT_EQ(rest.exit_code, 3) << rest.output;
    std::string want;
    for (int i = 0; i < 80; ++i)
        want += "line-" + std::to_string(i) + "\n";
    EXPECT_EQ(printed + rest.output.substr(0, rest.output.find("command terminated")), want);
}

} // namespace
} // namespace podpipe::kubesim::testing
