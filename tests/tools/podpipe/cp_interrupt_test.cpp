// `podpipe cp` interrupted (issue 18, items 3 and 4), on a real kubesim: SIGTERM ends a copy
// whose pod-side sender stopped, a stalled copy times out, and an interrupted copy out of a pod
// or between pods leaves none of its pod-side processes behind (a kubelet, and kubesim, do not
// kill an exec's command when its session goes). podpipe runs as a child process, so the
// signals reach it as a user's would.
//
// Pods share the host's PID namespace with every test running beside this one: the pod-side
// processes are found by paths only these tests use (/data/i18-...).
#include "kube/client.hpp"
#include "kube/config.hpp"
#include "remote/pod_copy.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/kubesim/test_client.hpp"
#include "tests/tools/podpipe/pod_yaml.hpp"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <thread>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using podpipe::testing::child_process;
using podpipe::testing::process_cmdline;
using podpipe::testing::processes_mentioning;
using podpipe::testing::shell_quote;
using podpipe::testing::wait_no_process_mentioning;

const std::string podpipe_exe = PODPIPE_EXE;

class cp_interrupt_test : public bb_and_gnu_pods {
protected:
    // 40 MB that do not compress in `pod`:/data/NAME: at the 4 MB/s the tests set, a copy
    // takes ten seconds, so it is surely running when the test interrupts it.
    void make_source(const std::string& pod, const std::string& name) {
        auto r = kubectl("exec " + pod + " -- sh -c " +
                         shell_quote("mkdir -p /data/" + name + " && head -c 40000000 "
                                     "/dev/urandom > /data/" + name + "/big"));
        ASSERT_EQ(r.exit_code, 0) << r.output;
        throttle(4'000'000);
    }

    void throttle(int bytes_per_second) {
        auto r = https_request(port(), ca_file(), admin_token(), "POST", "/kubesim/faults",
                               R"({"throttle": {"bytesPerSecond": )" +
                                   std::to_string(bytes_per_second) + "}}");
        ASSERT_EQ(r.status, 200) << r.body;
    }

    // `podpipe cp [FLAG] ARGS...` (FLAG: one more option, or "").
    std::unique_ptr<child_process> start_cp(const std::vector<std::string>& args,
                                            const std::string& flag = "") {
        std::vector<std::string> argv{podpipe_exe, "cp", "--kubeconfig", kubeconfig_};
        if (!flag.empty())
            argv.push_back(flag);
        argv.insert(argv.end(), args.begin(), args.end());
        auto p = std::make_unique<child_process>(argv, tmp_ / "cp.log");
        EXPECT_TRUE(p->started());
        return p;
    }

    // The pod-side process of this copy that mentions `needle` (in its command line or working
    // directory) and whose command line starts with `prefix` ("" for the pod's tar: `sh -c`
    // or, where the shell exec's it, `tar`), once it runs (a copy starts it after its probe).
    pid_t wait_pod_process(const std::string& needle, const std::string& prefix) {
        const auto fits = [&](const std::string& cmdline) {
            if (!prefix.empty())
                return cmdline.starts_with(prefix);
            return cmdline.starts_with("sh -c") || cmdline.starts_with("tar ");
        };
        pid_t found = -1;
        podpipe::testing::eventually(
            [&] {
                for (pid_t pid : processes_mentioning(needle))
                    if (fits(process_cmdline(pid)))
                        return (found = pid) > 0;
                return false;
            },
            30s, 20ms);
        return found;
    }

    // SIGTERM to the copy once it handles it; it must end within a few seconds with exit 5.
    // The deadline is generous for a loaded machine; before the fixes it never came.
    void interrupt(child_process& cp) {
        ASSERT_TRUE(cp.wait_handles(SIGTERM, 20s)) << cp.output();
        ::kill(cp.pid(), SIGTERM);
        const auto code = cp.wait_exit(15s);
        ASSERT_TRUE(code.has_value()) << "cp still running 15 s after SIGTERM: " << cp.output();
        EXPECT_EQ(*code, 5) << cp.output();
        EXPECT_NE(cp.output().find("interrupted"), std::string::npos) << cp.output();
    }

    // Nothing of the copy may stay in the pods: its sender (podpipe send, or sh + tar + gzip),
    // its receiver.
    void expect_nothing_left(const std::string& needle) {
        EXPECT_EQ(wait_no_process_mentioning(needle, 20s), std::vector<std::string>{});
    }

    podpipe::testing::temp_dir tmp_;
};

// Resumes a stopped process when the test ends, however it ends.
struct continue_at_exit {
    pid_t pid;
    ~continue_at_exit() {
        if (pid > 0)
            ::kill(pid, SIGCONT);
    }
};

TEST_F(cp_interrupt_test, sigterm_ends_a_copy_whose_pod_sender_is_stopped) {
    make_source("bb", "i18-stopped");
    auto cp = start_cp({"bb:/data/i18-stopped", (tmp_ / "out").string()});
    const pid_t sender = wait_pod_process("/data/i18-stopped", "/__e/podpipe/podpipe send");
    ASSERT_GT(sender, 0) << cp->output();
    continue_at_exit resume{sender};
    ASSERT_EQ(::kill(sender, SIGSTOP), 0);
    interrupt(*cp);
    // Once resumed, the sender finds its stdin closed and ends.
    ::kill(sender, SIGCONT);
    expect_nothing_left("/data/i18-stopped");
}

TEST_F(cp_interrupt_test, a_stopped_pod_sender_times_out) {
    make_source("bb", "i18-stall");
    const auto t0 = std::chrono::steady_clock::now();
    // One attempt: a stall is worth another (--retry-for), which is not what is tested here.
    auto cp = start_cp({"--retry-for", "0", "--stall-timeout", "2s", "bb:/data/i18-stall",
                        (tmp_ / "out").string()});
    const pid_t sender = wait_pod_process("/data/i18-stall", "/__e/podpipe/podpipe send");
    ASSERT_GT(sender, 0) << cp->output();
    continue_at_exit resume{sender};
    ASSERT_EQ(::kill(sender, SIGSTOP), 0);
    const auto code = cp->wait_exit(60s);
    ASSERT_TRUE(code.has_value()) << "cp still running 60 s after the sender stopped";
    EXPECT_EQ(*code, 1) << cp->output();
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 2s);
    EXPECT_NE(cp->output().find("moved no byte for 2 s (--stall-timeout)"), std::string::npos)
        << cp->output();
    EXPECT_NE(cp->output().find("default/bb"), std::string::npos) << cp->output();
    ::kill(sender, SIGCONT);
    expect_nothing_left("/data/i18-stall");
}

// Out of a pod, with the in-pod podpipe and with the pod's tar (busybox and GNU): the
// interrupted copy's sender ends instead of blocking on a stdout nobody reads.
TEST_F(cp_interrupt_test, interrupted_copy_out_of_a_pod_leaves_no_sender) {
    struct variant {
        std::string pod, flags, prefix;
    };
    for (const auto& v : {variant{"bb", "", "/__e/podpipe/podpipe send"},
                          variant{"bb", "--pod-binary=none", ""},
                          variant{"gnu", "--pod-binary=none", ""}}) {
        const std::string name = "i18-out-" + v.pod + (v.flags.empty() ? "-bin" : "-tar");
        SCOPED_TRACE(name);
        make_source(v.pod, name);
        auto cp = start_cp({v.pod + ":/data/" + name, (tmp_ / name).string()}, v.flags);
        ASSERT_GT(wait_pod_process("/data/" + name, v.prefix), 0) << cp->output();
        interrupt(*cp);
        expect_nothing_left("/data/" + name);
    }
}

// Between pods: the relay's source pod (and the destination) keep nothing running either.
TEST_F(cp_interrupt_test, interrupted_copy_between_pods_leaves_no_sender) {
    for (const std::string flags : {"", "--pod-binary=none"}) {
        const std::string name = std::string("i18-p2p-") + (flags.empty() ? "bin" : "tar");
        SCOPED_TRACE(name);
        make_source("bb", name);
        auto cp = start_cp({"bb:/data/" + name, "gnu:/data/" + name + "-copy"}, flags);
        ASSERT_GT(wait_pod_process("/data/" + name,
                                   flags.empty() ? "/__e/podpipe/podpipe send" : ""),
                  0)
            << cp->output();
        interrupt(*cp);
        expect_nothing_left("/data/" + name);
    }
}

// The destination's exec upgrade fails after the source's sender started: the copy fails and
// the source pod keeps nothing of it.
TEST_F(cp_interrupt_test, failed_destination_upgrade_leaves_no_sender) {
    // The copy's execs: the two probes, then with podpipe in both pods (resumable, issue 21)
    // the destination's receiver and the source's sender, with the pods' tar the sender first.
    // Each upgrade that fails must leave nothing of the other end running.
    struct attempt {
        std::string flags;
        int failing;       // which exec's upgrade fails
        const char* named; // the pod the error names
    };
    for (const attempt& a : {attempt{"", 3, "default/gnu"}, attempt{"", 4, "default/bb"},
                             attempt{"--pod-binary=none", 4, "default/gnu"}}) {
        const std::string name = "i18-upgrade-" + std::to_string(a.failing) +
                                 (a.flags.empty() ? "-bin" : "-tar");
        SCOPED_TRACE(name);
        make_source("bb", name);
        auto f = https_request(port(), ca_file(), admin_token(), "POST", "/kubesim/faults",
                               R"({"failNth": {"n": )" + std::to_string(a.failing) +
                                   R"(, "code": 500, "path": "/exec"}})");
        ASSERT_EQ(f.status, 200) << f.body;
        // One attempt (the retry would succeed): what the failure leaves is tested here.
        auto cp = start_cp({"--retry-for", "0", "bb:/data/" + name, "gnu:/data/" + name + "-copy"},
                           a.flags);
        const auto code = cp->wait_exit(60s);
        ASSERT_TRUE(code.has_value()) << cp->output();
        EXPECT_EQ(*code, 1) << cp->output();
        EXPECT_NE(cp->output().find(a.named), std::string::npos) << cp->output();
        EXPECT_NE(https_request(port(), ca_file(), admin_token(), "GET", "/kubesim/faults", "")
                      .body.find(R"("fired":true)"),
                  std::string::npos);
        expect_nothing_left("/data/" + name);
    }
}

// podpipe bench ends on SIGTERM too (exit 5), its copy in flight stopped and its scratch
// directory gone from the pod.
TEST_F(cp_interrupt_test, sigterm_ends_bench) {
    throttle(20'000'000);
    child_process bench({podpipe_exe, "bench", "--kubeconfig", kubeconfig_, "--pod", "bb",
                         "--synthetic", "files=100,size=100M", "--budget", "60s", "--pod-dir",
                         "/tmp/i18-bench"},
                        tmp_ / "bench.log");
    ASSERT_TRUE(bench.started());
    ASSERT_GT(wait_pod_process("/tmp/i18-bench", "/__e/podpipe/podpipe recv"), 0)
        << bench.output();
    interrupt(bench);
    expect_nothing_left("/tmp/i18-bench");
    const auto left = kubectl("exec bb -- ls -R /tmp/i18-bench");
    EXPECT_NE(left.exit_code, 0) << left.output << "\n" << bench.output();
}

// podpipe-hook copies through the same pod_copier, with the stop token its SIGINT/SIGTERM
// waiter requests (hooks/main.cpp): the stop ends a copy whose pod sender is stopped at once.
TEST_F(cp_interrupt_test, the_hooks_stop_token_ends_a_stalled_copy) {
    make_source("bb", "i18-hook");
    kube::config_sources sources;
    sources.kubeconfig = kubeconfig_;
    sources.env = {{"HOME", dir_ + "/home"}};
    auto cfg = kube::load_config(sources);
    ASSERT_TRUE(cfg) << cfg.error().what();
    auto client = kube::api_client::connect(*cfg);
    ASSERT_TRUE(client) << client.error().what();
    std::stop_source stop;
    remote::pod_copier copier(**client, remote::copy_options{}, stop.get_token());
    auto from = copier.probe({"", "bb", "", "/data/i18-hook"});
    ASSERT_TRUE(from) << from.error().message;
    std::optional<remote::copy_result> outcome;
    std::atomic<bool> done{false};
    std::jthread copy([&] {
        outcome = copier.pod_to_local(*from, (tmp_ / "hook").string());
        done.store(true);
    });
    const pid_t sender = wait_pod_process("/data/i18-hook", "/__e/podpipe/podpipe send");
    continue_at_exit resume{sender};
    if (sender > 0)
        ::kill(sender, SIGSTOP);
    stop.request_stop();
    podpipe::testing::eventually([&] { return done.load(); }, 15s, 20ms);
    EXPECT_TRUE(done.load()) << "the copy still runs 15 s after the stop";
    ASSERT_GT(sender, 0);
    ::kill(sender, SIGCONT); // (without the fix, the copy only ends once data flows again)
    copy.join();
    ASSERT_TRUE(outcome.has_value());
    ASSERT_FALSE(*outcome);
    EXPECT_EQ(outcome->error().status, pipeline::exit_interrupted) << outcome->error().message;
    expect_nothing_left("/data/i18-hook");
}

} // namespace
} // namespace podpipe::kubesim::testing
