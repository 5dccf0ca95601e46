// `podpipe run` (remote/step_spool.hpp) as the hook will use it in a pod, run here on the host:
// a step's output and exit code through a follower, a follower killed mid-step (the dropped
// exec) and a second one attached at the printed byte counts (nothing lost, nothing twice),
// signals to the step's process group, a supervisor that dies, and every refusal.
#include "tests/support/child_process.hpp"
#include "tests/support/tree_fixture.hpp"

#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace podpipe {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::child_process;
using testing::shell_quote;
using testing::temp_dir;

const std::string exe = PODPIPE_EXE;

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

struct run_result {
    int code = -1;
    std::string out, err;
};

class run_step_test : public ::testing::Test {
protected:
    /// `podpipe run ARGS` through sh, stdout and stderr kept apart.
    run_result run(const std::string& args) {
        const fs::path o = tmp_ / "o", e = tmp_ / "e";
        const std::string cmd = shell_quote(exe) + " run " + args + " >" + shell_quote(o.string()) +
                                " 2>" + shell_quote(e.string());
        const int st = std::system(cmd.c_str());
        return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(o), slurp(e)};
    }
    std::string spool(const std::string& name) const { return (tmp_ / name).string(); }

    /// A follower of `podpipe run --spool NAME -- sh -c SCRIPT`, returned once its output shows
    /// `mark` (the step runs) or after 5 s; null when it did not start.
    std::unique_ptr<child_process> follow_step(const std::string& name, const std::string& script,
                                               const std::string& mark) {
        auto f = std::make_unique<child_process>(
            std::vector<std::string>{exe, "run", "--spool", spool(name), "--", "sh", "-c", script},
            tmp_ / (name + "-out"));
        if (!f->started())
            return nullptr;
        for (int i = 0; i < 200 && f->output().find(mark) == std::string::npos; ++i)
            std::this_thread::sleep_for(25ms);
        return f;
    }

    temp_dir tmp_;
};

TEST_F(run_step_test, a_step_runs_and_its_output_and_exit_code_come_back) {
    auto r = run("--spool " + spool("s") +
                 " -- sh -c 'echo out1; echo err1 >&2; echo out2; exit 7'");
    EXPECT_EQ(r.code, 7);
    EXPECT_EQ(r.out, "out1\nout2\n");
    EXPECT_EQ(r.err, "err1\n");
    auto st = run("--spool " + spool("s") + " --status");
    EXPECT_EQ(st.code, 0);
    EXPECT_EQ(st.out, "exit 7\n");
    // Followed again from the start, or from offsets: the same bytes.
    auto again = run("--spool " + spool("s") + " --attach --stdout-from 5 --stderr-from 5");
    EXPECT_EQ(again.code, 7);
    EXPECT_EQ(again.out, "out2\n");
    EXPECT_EQ(again.err, "");
    // --cwd and the step's stdin (nothing: /dev/null).
    auto cwd = run("--spool " + spool("c") + " --cwd " + shell_quote(tmp_.path().string()) +
                   " -- sh -c 'pwd; cat; echo end'");
    EXPECT_EQ(cwd.code, 0) << cwd.err;
    EXPECT_EQ(cwd.out, fs::canonical(tmp_.path()).string() + "\nend\n");
}

// The exec session drops while the step runs: the follower dies, the step does not, and a new
// follower from the byte counts the caller printed gives the rest, each line exactly once.
TEST_F(run_step_test, a_dropped_follower_loses_nothing_and_repeats_nothing) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    const std::string script =
        "i=0; while [ $i -lt 40 ]; do echo line-$i; echo err-$i >&2; i=$((i+1)); "
        "sleep 0.05; done; exit 3";
    child_process first({exe, "run", "--spool", spool("d"), "--", "sh", "-c", script},
                        tmp_ / "first-err", -1, p[1]);
    ::close(p[1]);
    ASSERT_TRUE(first.started());
    // Read a few lines, then the session "drops": the follower is killed mid-step.
    std::string printed;
    char buf[256];
    while (printed.find("line-5\n") == std::string::npos) {
        const ssize_t n = ::read(p[0], buf, sizeof buf);
        ASSERT_GT(n, 0) << printed;
        printed.append(buf, static_cast<std::size_t>(n));
    }
    ::kill(first.pid(), SIGKILL);
    ASSERT_TRUE(first.wait_exit(5s).has_value());
    for (ssize_t n; (n = ::read(p[0], buf, sizeof buf)) > 0;)
        printed.append(buf, static_cast<std::size_t>(n)); // in the pipe before it died: printed
    ::close(p[0]);
    const std::string printed_err = first.output();
    // The step goes on without any follower.
    std::this_thread::sleep_for(300ms);
    auto st = run("--spool " + spool("d") + " --status");
    EXPECT_EQ(st.out, "running\n") << "the step should still run";
    auto rest = run("--spool " + spool("d") + " --attach --stdout-from " +
                    std::to_string(printed.size()) + " --stderr-from " +
                    std::to_string(printed_err.size()));
    EXPECT_EQ(rest.code, 3) << rest.err;
    std::string want, want_err;
    for (int i = 0; i < 40; ++i) {
        want += "line-" + std::to_string(i) + "\n";
        want_err += "err-" + std::to_string(i) + "\n";
    }
    EXPECT_EQ(printed + rest.out, want);
    EXPECT_EQ(printed_err + rest.err, want_err);
}

TEST_F(run_step_test, a_signal_reaches_the_step_and_what_it_started) {
    auto follower = follow_step("k", "sleep 60 & echo started; wait", "started");
    ASSERT_TRUE(follower);
    ASSERT_NE(follower->output().find("started"), std::string::npos);
    const std::string pgid = slurp(tmp_ / "k" / "pgid");
    ASSERT_FALSE(pgid.empty());
    auto sig = run("--spool " + spool("k") + " --signal TERM");
    EXPECT_EQ(sig.code, 0) << sig.err;
    const auto code = follower->wait_exit(10s);
    ASSERT_TRUE(code.has_value());
    EXPECT_EQ(*code, 128 + SIGTERM);
    EXPECT_EQ(run("--spool " + spool("k") + " --status").out, "signal 15\n");
    // The background `sleep` was in the step's group: gone too.
    bool group_gone = false;
    for (int i = 0; i < 100 && !group_gone; ++i) {
        group_gone = ::kill(-std::stoi(pgid), 0) != 0;
        std::this_thread::sleep_for(20ms);
    }
    EXPECT_TRUE(group_gone);
    // A step that ended is left alone.
    EXPECT_EQ(run("--spool " + spool("k") + " --signal KILL").code, 0);
}

TEST_F(run_step_test, a_supervisor_that_dies_ends_the_follower_with_an_error) {
    auto follower = follow_step("v", "echo up; exec sleep 60", "up");
    ASSERT_TRUE(follower);
    const int supervisor = std::stoi(slurp(tmp_ / "v" / "supervisor"));
    ASSERT_GT(supervisor, 1);
    ::kill(supervisor, SIGKILL);
    const auto code = follower->wait_exit(10s);
    ASSERT_TRUE(code.has_value()) << "the follower waits forever for a status nobody writes";
    EXPECT_EQ(*code, 125);
    EXPECT_NE(follower->output().find("podpipe run: the step's supervisor is gone"),
              std::string::npos)
        << follower->output();
    const std::string pgid = slurp(tmp_ / "v" / "pgid");
    ::kill(-std::stoi(pgid), SIGKILL);
}

// --remove: an ended step's spool goes, a second
// ask (after a cut) is success, a running step's spool and a directory that is no spool stay.
TEST_F(run_step_test, remove_takes_an_ended_spool_and_nothing_else) {
    ASSERT_EQ(run("--spool " + spool("s") + " -- sh -c 'echo hi; echo ho >&2; exit 3'").code, 3);
    ASSERT_TRUE(fs::exists(tmp_ / "s" / "status"));
    auto gone = run("--spool " + spool("s") + " --remove");
    EXPECT_EQ(gone.code, 0) << gone.err;
    EXPECT_FALSE(fs::exists(tmp_ / "s"));
    EXPECT_TRUE(fs::exists(tmp_.path())); // not its parent
    EXPECT_EQ(run("--spool " + spool("s") + " --remove").code, 0);

    auto follower = follow_step("r", "echo up; exec sleep 60", "up");
    ASSERT_TRUE(follower);
    auto running = run("--spool " + spool("r") + " --remove");
    EXPECT_EQ(running.code, 125);
    EXPECT_NE(running.err.find("still runs"), std::string::npos) << running.err;
    EXPECT_TRUE(fs::exists(tmp_ / "r" / "stdout"));
    EXPECT_EQ(run("--spool " + spool("r") + " --signal KILL").code, 0);
    ASSERT_TRUE(follower->wait_exit(10s).has_value());
    EXPECT_EQ(run("--spool " + spool("r") + " --remove").code, 0);
    EXPECT_FALSE(fs::exists(tmp_ / "r"));

    fs::create_directories(tmp_ / "other");
    {
        std::ofstream(tmp_ / "other" / "status") << "exit 0\n";
        std::ofstream(tmp_ / "other" / "keep") << "x";
    }
    auto other = run("--spool " + spool("other") + " --remove");
    EXPECT_EQ(other.code, 125);
    EXPECT_TRUE(fs::exists(tmp_ / "other" / "keep"));
    EXPECT_EQ(run("--spool " + spool("x") + " --remove --status").code, 2);
    EXPECT_EQ(run("--spool " + spool("x") + " --remove -- true").code, 2);
}

// Starting a step removes the ended spools beside its own (the hook's steps run one after
// another), and leaves a running step's spool and a directory that is no spool.
TEST_F(run_step_test, starting_a_step_removes_the_ended_spools_beside_it) {
    ASSERT_EQ(run("--spool " + spool("a") + " -- true").code, 0);
    ASSERT_EQ(run("--spool " + spool("b") + " -- sh -c 'exit 4'").code, 4);
    auto follower = follow_step("r", "echo up; exec sleep 60", "up");
    ASSERT_TRUE(follower);
    fs::create_directories(tmp_ / "other");
    std::ofstream(tmp_ / "other" / "keep") << "x";

    auto c = run("--spool " + spool("c") + " -- echo next");
    EXPECT_EQ(c.code, 0) << c.err;
    EXPECT_EQ(c.out, "next\n");
    EXPECT_FALSE(fs::exists(tmp_ / "a"));
    EXPECT_FALSE(fs::exists(tmp_ / "b"));
    EXPECT_TRUE(fs::exists(tmp_ / "r" / "stdout")); // still running
    EXPECT_TRUE(fs::exists(tmp_ / "other" / "keep"));
    EXPECT_TRUE(fs::exists(tmp_ / "c" / "status")); // its own stays for a re-attach
    // Re-attaching never removes anything.
    EXPECT_EQ(run("--spool " + spool("c") + " --attach").code, 0);
    EXPECT_TRUE(fs::exists(tmp_ / "c" / "status"));
    EXPECT_EQ(run("--spool " + spool("r") + " --signal KILL").code, 0);
    ASSERT_TRUE(follower->wait_exit(10s).has_value());
}

// A disk that fills up under the step: its status cannot be written, and the follower says
// why instead of a cryptic "not a step status" (a pod whose /tmp is full).
TEST_F(run_step_test, a_full_disk_is_named_when_the_status_cannot_be_written) {
    const fs::path small = tmp_ / "small";
    fs::create_directories(small);
    if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=256k") != 0)
        GTEST_SKIP() << "cannot mount a tmpfs here";
    struct unmount {
        fs::path p;
        ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } guard{small};
    const std::string dir = (small / "steps" / "s").string();
    const std::string fill = "head -c 1000000 /dev/zero >" + (small / "fill").string() + "; exit 3";
    auto r = run("--spool " + shell_quote(dir) + " -- sh -c " + shell_quote(fill));
    EXPECT_EQ(r.code, 125) << r.out << r.err;
    EXPECT_NE(r.err.find("is full (no space left on device)"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("not a step status"), std::string::npos) << r.err;
}

TEST_F(run_step_test, refusals_are_clear_and_change_nothing) {
    ASSERT_EQ(run("--spool " + spool("s") + " -- true").code, 0);
    auto twice = run("--spool " + spool("s") + " -- true");
    EXPECT_EQ(twice.code, 125);
    EXPECT_NE(twice.err.find("podpipe run: " + spool("s") + " exists already"),
              std::string::npos)
        << twice.err;
    // A spool that cannot be made (here under a file; in a pod, a read-only /tmp) says that
    // nothing ran, which the hook takes as leave to run the step without `run`; a spool that
    // exists does not (a step may be running there).
    {
        std::ofstream(tmp_ / "file") << "x";
    }
    const fs::path marker = tmp_ / "ran";
    auto unmade = run("--spool " + spool("file/s") + " -- touch " + shell_quote(marker.string()));
    EXPECT_EQ(unmade.code, 125);
    EXPECT_EQ(unmade.err.rfind("podpipe run: the step did not start: creating ", 0), 0u)
        << unmade.err;
    EXPECT_FALSE(fs::exists(marker));
    EXPECT_EQ(twice.err.find("did not start"), std::string::npos) << twice.err;
    auto missing = run("--spool " + spool("none") + " --attach");
    EXPECT_EQ(missing.code, 125);
    EXPECT_NE(missing.err.find("podpipe run: "), std::string::npos) << missing.err;
    auto past = run("--spool " + spool("s") + " --attach --stdout-from 1");
    EXPECT_EQ(past.code, 125);
    EXPECT_NE(past.err.find("fewer than the 1 already printed"), std::string::npos) << past.err;
    auto unrunnable = run("--spool " + spool("u") + " -- /no/such/program");
    EXPECT_EQ(unrunnable.code, 125);
    EXPECT_NE(unrunnable.err.find("cannot run /no/such/program"), std::string::npos)
        << unrunnable.err;
    EXPECT_EQ(run("--spool " + spool("u") + " --status").out, "exit 127\n");
    // Usage errors: 2, and nothing is started.
    EXPECT_EQ(run("--spool " + spool("x")).code, 2);
    EXPECT_EQ(run("--spool " + spool("x") + " --attach -- true").code, 2);
    EXPECT_EQ(run("--spool " + spool("x") + " --attach --status").code, 2);
    EXPECT_EQ(run("--spool " + spool("s") + " --signal BOGUS").code, 2);
    EXPECT_EQ(run("--spool " + spool("s") + " --attach --stdout-from 1K").code, 2);
    EXPECT_FALSE(fs::exists(tmp_ / "x"));
    // A status file that is not one is refused, not trusted.
    {
        std::ofstream(tmp_ / "s" / "status", std::ios::trunc) << "exit 99999\n";
    }
    auto bad = run("--spool " + spool("s") + " --status");
    EXPECT_EQ(bad.code, 125);
    EXPECT_NE(bad.err.find("not a step status"), std::string::npos) << bad.err;
}

} // namespace
} // namespace podpipe
