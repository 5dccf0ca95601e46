// `podpipe cp` that fails for good (issue 21, resume gaps): when the retries run out (here:
// --retry-for 0, one attempt) the transfer's resume ledger is removed from the target, in a pod
// (`recv --abandon`) and locally, and the error says the target holds a partial copy, naming
// it. A target that runs out of space fails at once (no retries: no repeat mends it), with an
// error that says so, for the local receiver (a 2 MB tmpfs) and the in-pod one.
#include "tests/support/child_process.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/podpipe/pod_yaml.hpp"

#include <sys/mount.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using podpipe::testing::child_process;
using podpipe::testing::shell_quote;

const std::string podpipe_exe = PODPIPE_EXE;

/// Every exec from now (20) drops once 3 MB of its output were read, at 4 MB/s.
const std::string cut_after_3mb = R"({"throttle": {"bytesPerSecond": 4000000},
                                      "exec": {"count": 20, "dropAfterBytes": 3000000}})";

class cp_give_up_test : public bb_and_gnu_pods {
protected:
    void SetUp() override {
        bb_and_gnu_pods::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        // 12 MB that do not compress, in 12 files.
        fs::create_directories(src_);
        for (int i = 0; i < 12; ++i)
            ASSERT_EQ(podpipe::testing::run_shell("head -c 1000000 /dev/urandom > " +
                                                  shell_quote((src_ / ("f" + std::to_string(i)))
                                                                  .string())),
                      0);
    }
    void TearDown() override {
        if (mounted_)
            ::umount2(small_.c_str(), MNT_DETACH);
        bb_and_gnu_pods::TearDown();
    }

    /// `podpipe cp ARGS`: exit code and all output; at most a minute.
    std::pair<int, std::string> cp(const std::vector<std::string>& args,
                                   const std::string& log) {
        std::vector<std::string> argv{podpipe_exe, "cp", "--kubeconfig", kubeconfig_};
        argv.insert(argv.end(), args.begin(), args.end());
        child_process c(argv, tmp_ / log);
        const auto code = c.wait_exit(60s);
        return {code ? *code : -1, c.output()};
    }

    /// The names in `dir` of pod `pod` ("ls -A"), one a line.
    std::string ls_in(const std::string& pod, const std::string& dir) {
        return kubectl("exec " + pod + " -- ls -A " + dir).output;
    }

    static std::vector<std::string> ledgers_in(const fs::path& dir) {
        std::vector<std::string> found;
        for (const auto& e : fs::directory_iterator(dir))
            if (e.path().filename().string().starts_with(".podpipe-resume-"))
                found.push_back(e.path().filename().string());
        return found;
    }

    /// A 2 MB tmpfs at small_ (we are root in the test's namespaces).
    void mount_small() {
        fs::create_directories(small_);
        if (::mount("tmpfs", small_.c_str(), "tmpfs", 0, "size=2m") != 0)
            GTEST_SKIP() << "cannot mount a tmpfs here";
        mounted_ = true;
    }

    podpipe::testing::temp_dir tmp_;
    fs::path src_ = tmp_ / "src";
    fs::path small_ = tmp_ / "small";
    bool mounted_ = false;
};

// A relay cut after 3 MB of the source pod's stream, no retry: the destination pod's recv kept a
// ledger, which goes; the error names the destination and says what it holds.
TEST_F(cp_give_up_test, a_relay_that_fails_for_good_leaves_no_ledger_and_says_partial) {
    ASSERT_EQ(cp({src_.string(), "bb:/data/gu-src"}, "seed.log").first, 0);
    faults(cut_after_3mb);
    auto [code, out] = cp({"--retry-for", "0", "bb:/data/gu-src", "gnu:/data/gu-relay"}, "r.log");
    faults(R"({"throttle": {"bytesPerSecond": 0}, "exec": {"count": 0}})");
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find("pod default/gnu:/data/gu-relay holds a partial copy"), std::string::npos)
        << out;
    // Its ledger is gone: the receiver's "kept for a resume" no longer holds and is not said.
    EXPECT_EQ(out.find("kept for a resume"), std::string::npos) << out;
    const std::string left = ls_in("gnu", "/data/gu-relay");
    EXPECT_NE(left.find("f"), std::string::npos) << "nothing arrived: not a partial copy";
    EXPECT_EQ(left.find(".podpipe-resume-"), std::string::npos) << left;
}

// Out of a pod, cut after 3 MB, no retry: the local receiver's ledger goes.
TEST_F(cp_give_up_test, a_copy_out_that_fails_for_good_leaves_no_local_ledger) {
    ASSERT_EQ(cp({src_.string(), "bb:/data/gu-out"}, "seed.log").first, 0);
    faults(cut_after_3mb);
    const fs::path dst = tmp_ / "out";
    auto [code, out] = cp({"--retry-for", "0", "bb:/data/gu-out", dst.string()}, "o.log");
    faults(R"({"throttle": {"bytesPerSecond": 0}, "exec": {"count": 0}})");
    EXPECT_EQ(code, 1) << out;
    EXPECT_NE(out.find(dst.string() + " holds a partial copy"), std::string::npos) << out;
    EXPECT_EQ(out.find("kept for a resume"), std::string::npos) << out;
    ASSERT_TRUE(fs::exists(dst)) << out;
    EXPECT_EQ(ledgers_in(dst), std::vector<std::string>{}) << out;
}

// A local target with 2 MB of room for 12 MB: one attempt (a repeat would meet the same full
// disk), well inside the default retry time, and the error says why and where.
TEST_F(cp_give_up_test, a_full_local_disk_fails_at_once_and_says_so) {
    ASSERT_EQ(cp({src_.string(), "bb:/data/gu-full"}, "seed.log").first, 0);
    mount_small();
    if (IsSkipped())
        return;
    const auto t0 = std::chrono::steady_clock::now();
    const fs::path dst = small_ / "x";
    auto [code, out] = cp({"bb:/data/gu-full", dst.string()}, "f.log");
    EXPECT_EQ(code, 1) << out;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << out;
    EXPECT_NE(out.find("no space left on device writing " + dst.string()), std::string::npos)
        << out;
    EXPECT_EQ(out.find("trying again"), std::string::npos) << out;
    if (fs::exists(dst)) {
        EXPECT_EQ(ledgers_in(dst), std::vector<std::string>{}) << out;
    }
}

// The same in the pod: a 2 MB tmpfs mounted inside the pod's own mount namespace.
TEST_F(cp_give_up_test, a_full_disk_in_the_pod_fails_at_once_and_says_so) {
    auto m = kubectl("exec gnu -- sh -c 'mkdir -p /data/small && "
                     "mount -t tmpfs -o size=2m tmpfs /data/small && echo mounted'");
    if (m.output.find("mounted") == std::string::npos)
        GTEST_SKIP() << "cannot mount a tmpfs in the pod: " << m.output;
    const auto t0 = std::chrono::steady_clock::now();
    auto [code, out] = cp({src_.string(), "gnu:/data/small/x"}, "p.log");
    EXPECT_EQ(code, 1) << out;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s) << out;
    EXPECT_NE(out.find("no space left on device writing /data/small/x in pod default/gnu"),
              std::string::npos)
        << out;
    EXPECT_EQ(out.find("trying again"), std::string::npos) << out;
    EXPECT_NE(out.find("holds a partial copy"), std::string::npos) << out;
    EXPECT_EQ(ls_in("gnu", "/data/small/x").find(".podpipe-resume-"), std::string::npos);
    kubectl("exec gnu -- umount /data/small");
}

} // namespace
} // namespace podpipe::kubesim::testing
