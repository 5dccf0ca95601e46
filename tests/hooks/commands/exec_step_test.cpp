// A step's command in a kubesim pod: output forwarded byte for byte, the real exit code, and
// every abnormal end an error (no status, dropped connection, cancellation, pod gone). The
// one-shot execs' retries (exec_step_retried, exec_retried): an exec that did not open for a
// reason that can pass is opened again past the client's own retries; a refusal that stays
// (403, no pod, no such command) fails at once; a session that broke is run again only for an
// idempotent command.
#include "hooks/commands/exec_step.hpp"

#include "kube/client.hpp"
#include "kube/config.hpp"
#include "kube/exec.hpp"
#include "tests/kube/cluster_fixture.hpp"
#include "tests/support/eventually.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace podpipe::hook {
namespace {

class exec_step_test : public kube::testing::cluster_test {
protected:
    void SetUp() override {
        cluster_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: jobpod}\nspec:\n  containers: "
                   "[{name: job, image: busybox:1.36, command: [sleep, '100000']}]\n");
        ASSERT_EQ(wait_phase("jobpod", "Running"), "Running");
        out_path_ = dir_ + "/out";
        err_path_ = dir_ + "/err";
    }

    result<int, kube::api_error> run(const std::string& script, std::stop_token stop = {}) {
        const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        auto r = exec_step(*client_, {"default", "jobpod", "job"}, {"sh", "-c", script}, out, err, stop);
        ::close(out);
        ::close(err);
        return r;
    }

    /// exec_step_retried of `script` with a short backoff; the warnings go to `warnings_`.
    result<int, kube::api_error> run_retried(const std::string& script, bool idempotent,
                                             std::vector<std::string> argv = {}) {
        exec_retry retry;
        retry.policy.retry_for = std::chrono::seconds(20);
        retry.policy.first_backoff = std::chrono::milliseconds(20);
        retry.policy.max_backoff = std::chrono::milliseconds(200);
        retry.idempotent = idempotent;
        retry.what = "the test's exec";
        retry.on_warning = [this](const std::string& w) { warnings_.push_back(w); };
        if (argv.empty())
            argv = {"sh", "-c", script};
        const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        auto r = exec_step_retried(*client_, {"default", "jobpod", "job"}, argv, out, err, {},
                                   retry);
        ::close(out);
        ::close(err);
        return r;
    }

    static std::string slurp(const std::string& p) {
        std::ifstream f(p, std::ios::binary);
        return {std::istreambuf_iterator<char>(f), {}};
    }

    std::string out_path_, err_path_;
    std::vector<std::string> warnings_;
};

TEST_F(exec_step_test, output_forwarded_and_exit_code_returned) {
    auto r = run("echo '::group::build'; echo to-stderr >&2; printf 'no newline'; exit 7");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(*r, 7);
    EXPECT_EQ(slurp(out_path_), "::group::build\nno newline");
    EXPECT_EQ(slurp(err_path_), "to-stderr\n");
    auto ok = run("head -c 3000000 /dev/zero | tr '\\0' x");
    ASSERT_TRUE(ok) << ok.error().what();
    EXPECT_EQ(*ok, 0);
    EXPECT_EQ(slurp(out_path_), std::string(3000000, 'x'));
}

TEST_F(exec_step_test, no_status_is_never_success) {
    arm(R"({"exec": {"count": 1, "noStatus": true}})");
    auto r = run("echo done; exit 0");
    ASSERT_FALSE(r) << "exit " << *r;
    EXPECT_TRUE(r.error().is(kube::errc::missing_status)) << r.error().what();
    EXPECT_NE(r.error().what().find("outcome is unknown"), std::string::npos) << r.error().what();
}

TEST_F(exec_step_test, dropped_connection_is_an_error) {
    arm(R"({"exec": {"count": 1, "dropAfterBytes": 100000}})");
    auto r = run("head -c 5000000 /dev/zero; exit 0");
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("dropped"), std::string::npos) << r.error().what();
}

TEST_F(exec_step_test, cancellation_stops_the_step) {
    std::stop_source stop;
    std::jthread canceller([&] { // once the step runs (its first output arrived)
        EXPECT_TRUE(podpipe::testing::eventually([&] { return slurp(out_path_) == "started\n"; }));
        stop.request_stop();
    });
    const auto t0 = std::chrono::steady_clock::now();
    auto r = run("echo started; sleep 60", stop.get_token());
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().what().find("cancelled"), std::string::npos) << r.error().what();
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
}

TEST_F(exec_step_test, missing_pod_or_container_is_an_error) {
    const int fd = ::open("/dev/null", O_WRONLY);
    auto gone = exec_step(*client_, {"default", "ghost", "job"}, {"true"}, fd, fd);
    EXPECT_FALSE(gone);
    auto nocontainer = exec_step(*client_, {"default", "jobpod", "nope"}, {"true"}, fd, fd);
    EXPECT_FALSE(nocontainer);
    ::close(fd);
}

// Eight 503s in a row on the exec upgrade: more than the client's five attempts, so exec_step
// alone fails; exec_step_retried opens the exec again after them and runs the command once.
TEST_F(exec_step_test, retried_exec_opens_after_more_503s_than_the_client_retries) {
    const std::string count = "/tmp/exec-retry-" + std::to_string(::getpid());
    auto rm = run("rm -f " + count);
    ASSERT_TRUE(rm) << rm.error().what();
    arm(R"({"http": {"code": 503, "count": 8}})");
    auto plain = run("echo once >> " + count);
    ASSERT_FALSE(plain) << "the client's own retries outlasted the burst: the test proves nothing";
    EXPECT_TRUE(plain.error().is(kube::errc::service_unavailable)) << plain.error().what();

    arm(R"({"http": {"code": 503, "count": 8}})");
    auto r = run_retried("echo once >> " + count + "; cat " + count, true);
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(*r, 0);
    EXPECT_EQ(slurp(out_path_), "once\n"); // opened once: ran once
    ASSERT_FALSE(warnings_.empty());
    EXPECT_NE(warnings_[0].find("the test's exec failed (attempt 1): "), std::string::npos)
        << warnings_[0];
    EXPECT_NE(warnings_[0].find("503"), std::string::npos) << warnings_[0];
    EXPECT_NE(warnings_[0].find("; trying again in "), std::string::npos) << warnings_[0];
}

// What cannot pass fails at the first attempt, with what the server said: a 403 on the upgrade,
// a pod that does not exist, a command the container does not have (an image without sh).
TEST_F(exec_step_test, retried_exec_fails_fast_on_a_refusal_that_stays) {
    arm(R"({"failNth": {"n": 1, "code": 403, "path": "/exec"}})");
    const auto t0 = std::chrono::steady_clock::now();
    auto denied = run_retried("true", true);
    ASSERT_FALSE(denied);
    EXPECT_TRUE(denied.error().is(kube::errc::forbidden)) << denied.error().what();
    EXPECT_NE(denied.error().what().find("HTTP 403"), std::string::npos) << denied.error().what();
    EXPECT_EQ(denied.error().what().find("attempts"), std::string::npos) << denied.error().what();

    auto no_sh = run_retried("", true, {"/no/such/sh", "-c", "true"});
    if (no_sh) // the runtime's exit code for a missing command
        EXPECT_EQ(*no_sh, 127);
    else
        EXPECT_NE(no_sh.error().what().find("/no/such/sh"), std::string::npos)
            << no_sh.error().what();

    exec_retry retry;
    retry.policy.retry_for = std::chrono::seconds(20);
    const int fd = ::open("/dev/null", O_WRONLY);
    auto gone = exec_step_retried(*client_, {"default", "ghost", "job"}, {"true"}, fd, fd, {},
                                  retry);
    ::close(fd);
    ASSERT_FALSE(gone);
    EXPECT_NE(gone.error().what().find("ghost"), std::string::npos) << gone.error().what();
    EXPECT_TRUE(warnings_.empty()) << warnings_[0];
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

// A session that opened and broke (no status: the outcome is unknown) is run again only when
// the caller says the command is idempotent.
TEST_F(exec_step_test, retried_exec_runs_again_after_a_break_only_when_idempotent) {
    const std::string count = "/tmp/exec-break-" + std::to_string(::getpid());
    ASSERT_TRUE(run("rm -f " + count));
    arm(R"({"exec": {"count": 1, "noStatus": true}})");
    auto once = run_retried("echo ran >> " + count, false);
    ASSERT_FALSE(once);
    EXPECT_TRUE(once.error().is(kube::errc::missing_status)) << once.error().what();
    EXPECT_TRUE(warnings_.empty()) << warnings_[0];

    arm(R"({"exec": {"count": 1, "noStatus": true}})");
    auto again = run_retried("echo ran >> " + count + "; wc -l < " + count, true);
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_EQ(*again, 0);
    // The broken session printed its run's count, then the one run again (the output of a
    // command run twice comes twice: the hook's one-shot commands print nothing).
    EXPECT_EQ(slurp(out_path_), "2\n3\n");
    EXPECT_EQ(warnings_.size(), 1u);
}

// exec_retried (the one-shot execs that write stdin): the open is tried again past the burst,
// and what `use` does with the session happens once.
TEST_F(exec_step_test, exec_retried_writes_stdin_once_after_a_burst) {
    arm(R"({"http": {"code": 503, "count": 8}})");
    kube::exec_options o;
    o.ns = "default";
    o.pod = "jobpod";
    o.container = "job";
    o.command = {"sh", "-c", "wc -c"};
    o.use_stdin = true;
    exec_retry retry;
    retry.policy.retry_for = std::chrono::seconds(20);
    retry.policy.first_backoff = std::chrono::milliseconds(20);
    int uses = 0;
    std::string out;
    auto r = exec_retried(*client_, o, {}, retry,
                          [&](kube::exec_session& x) -> result<int, kube::api_error> {
                              ++uses;
                              const std::string text = "hello\n";
                              auto w = x.stdin_sink().write(
                                  {reinterpret_cast<const std::byte*>(text.data()), text.size()});
                              if (w)
                                  (void)x.stdin_sink().finish();
                              return x.wait();
                          });
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(*r, 0);
    EXPECT_EQ(uses, 1);
}

} // namespace
} // namespace podpipe::hook
