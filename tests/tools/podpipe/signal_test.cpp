// SIGTERM ends podpipe whatever it waits on, and a stream that stops moving times out
// (issue 18, item 3). The binary runs as a child process fed by pipes the test holds: one
// never written (a stalled sender), one never read (a stalled receiver).
#include "tests/support/child_process.hpp"
#include "tests/support/silent_listener.hpp"
#include "tests/support/tree_fixture.hpp"

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include <gtest/gtest.h>

namespace podpipe {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::child_process;
using testing::pipe_pair;
using testing::temp_dir;

const std::string exe = PODPIPE_EXE;

// Sends SIGTERM once the handler is in place, and expects exit 5 within a few seconds (the
// deadline is generous: a machine under load must not fail it; before the fix it never ends).
void expect_sigterm_ends(child_process& p, const char* what) {
    ASSERT_TRUE(p.started()) << what;
    ASSERT_TRUE(p.wait_handles(SIGTERM, 20s)) << what << ": no SIGTERM handler\n" << p.output();
    ASSERT_FALSE(p.wait_exit(300ms)) << what << " ended by itself: " << p.output();
    ::kill(p.pid(), SIGTERM);
    const auto code = p.wait_exit(10s);
    ASSERT_TRUE(code.has_value()) << what << " still running 10 s after SIGTERM";
    EXPECT_EQ(*code, 5) << what << ": " << p.output();
}

TEST(podpipe_signals, sigterm_ends_unpack_and_recv_reading_a_silent_pipe) {
    for (const char* cmd : {"unpack", "recv"}) {
        temp_dir tmp;
        pipe_pair in; // the test holds the write end open and never writes
        child_process p({exe, cmd, (tmp / "dst").string()}, tmp / "out", in.read_end);
        expect_sigterm_ends(p, cmd);
    }
}

TEST(podpipe_signals, sigterm_ends_pack_and_send_writing_a_pipe_nobody_reads) {
    temp_dir tmp;
    // Far more than a pipe holds (64 KiB): the writer blocks once the pipe is full.
    ASSERT_EQ(testing::run_shell("mkdir -p " + testing::shell_quote((tmp / "src").string()) +
                                 " && head -c 8000000 /dev/urandom > " +
                                 testing::shell_quote((tmp / "src" / "big").string())),
              0);
    for (const char* cmd : {"pack", "send"}) {
        pipe_pair out; // the test holds the read end open and never reads
        child_process p({exe, cmd, (tmp / "src").string()}, tmp / "log", -1, out.write_end);
        expect_sigterm_ends(p, cmd);
    }
}

// A sender that stops without closing: the read times out with an error naming it, exit 1 (an
// I/O failure like a dropped connection: nothing says the bytes that came are wrong).
TEST(podpipe_signals, a_stalled_read_times_out_with_the_stall_timeout) {
    temp_dir tmp;
    pipe_pair in;
    const auto t0 = std::chrono::steady_clock::now();
    child_process p({exe, "unpack", (tmp / "dst").string(), "--stall-timeout", "1s"}, tmp / "out",
                    in.read_end);
    ASSERT_TRUE(p.started());
    const auto code = p.wait_exit(30s);
    ASSERT_TRUE(code.has_value()) << "still running 30 s after the start";
    EXPECT_EQ(*code, 1) << p.output();
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 1s);
    EXPECT_NE(p.output().find("reading stdin stalled: no byte moved for 1s (--stall-timeout)"),
              std::string::npos)
        << p.output();
    // The same on the writing side: nobody reads what pack writes.
    ASSERT_EQ(testing::run_shell("mkdir -p " + testing::shell_quote((tmp / "src").string()) +
                                 " && head -c 2000000 /dev/urandom > " +
                                 testing::shell_quote((tmp / "src" / "big").string())),
              0);
    pipe_pair out;
    child_process w({exe, "pack", (tmp / "src").string(), "--stall-timeout", "500ms"},
                    tmp / "log", -1, out.write_end);
    const auto wcode = w.wait_exit(30s);
    ASSERT_TRUE(wcode.has_value()) << "pack still running 30 s after the start";
    EXPECT_EQ(*wcode, 1) << w.output();
    EXPECT_NE(w.output().find("writing to stdout stalled"), std::string::npos) << w.output();
    // A malformed value is a usage error.
    EXPECT_EQ(testing::run_shell(exe + " unpack " + testing::shell_quote((tmp / "x").string()) +
                                 " --stall-timeout soon < /dev/null"),
              2);
}

// A cluster whose API server accepts TCP and never answers: `cp` blocks opening the probe's
// exec session (TLS handshake, 30 s per attempt); SIGTERM must end it at once with exit 5.
TEST(podpipe_signals, sigterm_ends_cp_opening_an_exec_to_a_silent_api_server) {
    temp_dir tmp;
    testing::silent_listener server;
    ASSERT_NE(server.port(), 0);
    const auto kubeconfig = tmp / "kubeconfig";
    testing::write_file(kubeconfig,
                        "apiVersion: v1\nkind: Config\ncurrent-context: silent\n"
                        "clusters:\n- name: silent\n  cluster:\n"
                        "    server: https://127.0.0.1:" + std::to_string(server.port()) +
                            "\n    insecure-skip-tls-verify: true\n"
                        "users:\n- name: u\n  user:\n    token: t\n"
                        "contexts:\n- name: silent\n  context:\n    cluster: silent\n"
                        "    user: u\n    namespace: default\n");
    fs::create_directories(tmp / "src");
    child_process p({exe, "cp", "--kubeconfig", kubeconfig.string(), (tmp / "src").string(),
                     "some-pod:/dst"},
                    tmp / "log");
    expect_sigterm_ends(p, "cp to a silent API server");
}

} // namespace
} // namespace podpipe
