// exec_session against a real kubesim (spec/kube-api.md §2): v5 and v4, stdin half-close,
// exit codes, stderr, missing status, dropped connections, legacy close, bounded memory under
// a throttled link, concurrent stdin/stdout, upgrade errors and the 429 retry.
#include "cluster_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "engine/transport/error.hpp"
#include "engine/transport/fault_injection.hpp"
#include "kube/exec.hpp"

#include <atomic>
#include <iostream>
#include <thread>

#include <openssl/evp.h>

namespace podpipe::kube::testing {
namespace {

std::string sha256_hex(std::string_view data) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 0xF]);
    }
    return out;
}

class exec_test : public cluster_test {
protected:
    void SetUp() override {
        cluster_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        running_pod("p1");
    }

    std::unique_ptr<exec_session> open(const exec_options& e, exec_session_options so = {}) {
        auto s = client_->exec(e, so);
        EXPECT_TRUE(s) << (s ? "" : s.error().what());
        return s ? std::move(*s) : nullptr;
    }
};

TEST_F(exec_test, stdin_round_trip_through_cat_on_v5) {
    exec_options e;
    e.pod = "p1";
    e.command = {"cat"};
    auto s = open(e);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->protocol(), "v5.channel.k8s.io");
    EXPECT_TRUE(s->can_half_close_stdin());
    const std::string data = random_bytes(3u << 20);
    string_sink out;
    std::thread writer([&] { EXPECT_TRUE(send_all(s->stdin_sink(), data)); });
    auto code = s->wait(&out);
    writer.join();
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 0);
    EXPECT_EQ(out.data.size(), data.size());
    EXPECT_TRUE(out.data == data);
}

// A receiver that ends before its stdin is closed (podpipe recv stops at the stream's end
// member) makes the server send the status and close the session; closing stdin afterwards is
// not a failure: the process's status, read by wait(), tells how it ended. The race a relay
// meets under load, made certain: the process ends at once, the status stays unread while the
// server's close arrives, then finish() runs.
TEST_F(exec_test, closing_stdin_after_the_process_ended_is_not_an_error) {
    for (const bool v5 : {true, false}) {
        exec_options e;
        e.pod = "p1";
        e.command = {"sh", "-c", "exit 0"};
        exec_session_options so;
        so.offer_v5 = v5;
        auto s = open(e, so);
        ASSERT_NE(s, nullptr);
        // Writes fail once the server's close has arrived: that is the moment to close stdin.
        const std::string byte = "x";
        EXPECT_TRUE(podpipe::testing::eventually(
            [&] { return !s->stdin_sink().write(std::as_bytes(std::span(byte))); },
            std::chrono::seconds(10), std::chrono::milliseconds(20)))
            << "the session never closed";
        auto fin = s->stdin_sink().finish();
        EXPECT_TRUE(fin) << (fin ? "" : fin.error().message());
        auto code = s->wait();
        ASSERT_TRUE(code) << code.error().what();
        EXPECT_EQ(*code, 0);
    }
}

TEST_F(exec_test, v4_only_with_a_self_terminating_reader) {
    // v4 has no stdin half-close: the remote command must stop by itself (§2.5).
    const std::string data = random_bytes(1u << 20, 7);
    exec_session_options so;
    so.offer_v5 = false;
    auto s = open(sh("p1", "head -c " + std::to_string(data.size()), true), so);
    ASSERT_NE(s, nullptr);
    EXPECT_EQ(s->protocol(), "v4.channel.k8s.io");
    EXPECT_FALSE(s->can_half_close_stdin());
    string_sink out;
    std::thread writer([&] { EXPECT_TRUE(send_all(s->stdin_sink(), data)); });
    auto code = s->wait(&out);
    writer.join();
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 0);
    EXPECT_TRUE(out.data == data);
}

TEST_F(exec_test, exit_code_is_propagated_on_v5_and_v4) {
    for (bool v5 : {true, false}) {
        exec_session_options so;
        so.offer_v5 = v5;
        auto s = open(sh("p1", "echo hi; exit 7"), so);
        ASSERT_NE(s, nullptr);
        string_sink out;
        auto code = s->wait(&out);
        ASSERT_TRUE(code) << code.error().what();
        EXPECT_EQ(*code, 7) << s->protocol();
        EXPECT_EQ(out.data, "hi\n");
        ASSERT_TRUE(s->status_message().has_value());
        EXPECT_NE(s->status_message()->find("NonZeroExitCode"), std::string::npos);
    }
}

TEST_F(exec_test, stdout_source_reads_to_the_end_then_wait_gives_the_code) {
    auto s = open(sh("p1", "printf abc; printf def; exit 0"));
    ASSERT_NE(s, nullptr);
    std::string got;
    std::byte buf[2];
    for (;;) {
        auto n = s->stdout_source().read(buf);
        ASSERT_TRUE(n) << n.error().message();
        if (*n == 0)
            break;
        got.append(reinterpret_cast<const char*>(buf), *n);
    }
    EXPECT_EQ(got, "abcdef");
    auto code = s->wait();
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 0);
}

TEST_F(exec_test, stderr_goes_to_the_callback_and_the_tail) {
    std::string seen;
    exec_session_options so;
    so.on_stderr = [&](std::span<const std::byte> b) {
        seen.append(reinterpret_cast<const char*>(b.data()), b.size());
    };
    so.stderr_keep_bytes = 8;
    auto s = open(sh("p1", "echo out; echo first-err >&2; echo tail-err >&2; exit 3"), so);
    ASSERT_NE(s, nullptr);
    string_sink out;
    auto code = s->wait(&out);
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 3);
    EXPECT_EQ(out.data, "out\n");
    EXPECT_EQ(seen, "first-err\ntail-err\n");
    EXPECT_EQ(s->stderr_tail(), "ail-err\n"); // the last 8 bytes
}

TEST_F(exec_test, missing_status_is_an_error_never_success) {
    arm(R"({"exec": {"count": 1, "noStatus": true}})");
    auto s = open(sh("p1", "echo partial; exit 0"));
    ASSERT_NE(s, nullptr);
    string_sink out;
    auto code = s->wait(&out);
    ASSERT_FALSE(code) << "exit code " << *code;
    EXPECT_TRUE(code.error().is(errc::missing_status)) << code.error().what();
    EXPECT_NE(code.error().what().find("close code 1000"), std::string::npos)
        << code.error().what();
    EXPECT_EQ(out.data, "partial\n");
}

TEST_F(exec_test, dropped_connection_mid_stream_is_a_clear_error) {
    arm(R"({"exec": {"count": 1, "dropAfterBytes": 200000}})");
    auto s = open(sh("p1", "head -c 50000000 /dev/zero"));
    ASSERT_NE(s, nullptr);
    string_sink out;
    auto code = s->wait(&out);
    ASSERT_FALSE(code) << "exit code " << *code;
    EXPECT_FALSE(code.error().is(errc::missing_status));
    EXPECT_EQ(code.error().code, make_error_condition(condition::peer_closed))
        << code.error().what();
    EXPECT_NE(code.error().what().find("dropped before the exit status"), std::string::npos)
        << code.error().what();
    EXPECT_LT(out.data.size(), 50'000'000u);
}

TEST_F(exec_test, legacy_close_after_the_status_keeps_the_exit_code) {
    arm(R"({"exec": {"count": 1, "legacyClose": true}})");
    auto s = open(sh("p1", "echo done; exit 5"));
    ASSERT_NE(s, nullptr);
    string_sink out;
    auto code = s->wait(&out);
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 5);
    EXPECT_EQ(out.data, "done\n");
}

TEST_F(exec_test, large_stdin_over_a_throttled_link_keeps_memory_bounded) {
    arm(R"({"throttle": {"bytesPerSecond": 20000000}})");
    const std::string data = random_bytes(40u << 20, 3);
    exec_session_options so;
    so.stdin_message_bytes = 64u << 10;
    so.max_in_flight_bytes = 512u << 10;
    exec_options e;
    e.pod = "p1";
    e.command = {"sha256sum"};
    auto s = open(e, so);
    ASSERT_NE(s, nullptr);
    string_sink out;
    std::thread writer([&] { EXPECT_TRUE(send_all(s->stdin_sink(), data, 1u << 20)); });
    auto code = s->wait(&out);
    writer.join();
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 0);
    EXPECT_EQ(out.data.substr(0, 64), sha256_hex(data));
    const auto st = s->stats();
    // Bounded: the in-flight budget plus at most one message, however large the input.
    EXPECT_LE(st.peak_in_flight_bytes, so.max_in_flight_bytes + so.stdin_message_bytes + 1);
    EXPECT_GT(st.write_blocked_ns, 0u); // the slow link did push back on the writer
    EXPECT_GE(st.bytes_sent, data.size());
}

TEST_F(exec_test, concurrent_stdin_and_heavy_stdout_stderr_do_not_deadlock) {
    // The pod echoes everything on stdout and stderr while we are still writing stdin: the
    // buffers fill long before stdin ends unless output is read concurrently.
    const std::string data = random_bytes(24u << 20, 9);
    std::size_t stderr_bytes = 0;
    exec_session_options so;
    so.on_stderr = [&](std::span<const std::byte> b) { stderr_bytes += b.size(); };
    auto s = open(sh("p1", "tee /dev/stderr", true), so);
    ASSERT_NE(s, nullptr);
    string_sink out;
    std::thread writer([&] { EXPECT_TRUE(send_all(s->stdin_sink(), data, 256u << 10)); });
    auto code = s->wait(&out);
    writer.join();
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 0);
    EXPECT_TRUE(out.data == data);
    EXPECT_EQ(stderr_bytes, data.size());
}

TEST_F(exec_test, remote_exit_while_writing_stdin_reports_the_exit_code) {
    exec_options e = sh("p1", "head -c 10 >/dev/null; echo bye >&2; exit 2", true);
    auto s = open(e);
    ASSERT_NE(s, nullptr);
    const std::string data = random_bytes(64u << 20, 5);
    std::atomic<bool> write_failed{false};
    std::thread writer([&] {
        auto r = send_all(s->stdin_sink(), data, 1u << 20);
        write_failed = !r;
    });
    auto code = s->wait();
    writer.join();
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 2);
    EXPECT_EQ(s->stderr_tail(), "bye\n");
    EXPECT_TRUE(write_failed.load()); // 64 MiB cannot all have been sent to a reader of 10 bytes
}

TEST_F(exec_test, pings_are_answered_during_a_quiet_command) {
    exec_session_options so;
    so.ping_interval = std::chrono::milliseconds(50);
    so.pong_timeout = std::chrono::milliseconds(5000);
    auto s = open(sh("p1", "sleep 1; echo awake"), so);
    ASSERT_NE(s, nullptr);
    string_sink out;
    auto code = s->wait(&out);
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(out.data, "awake\n");
    EXPECT_GT(s->stats().pongs_received, 0u);
}

TEST_F(exec_test, abort_wakes_a_blocked_wait) {
    auto s = open(sh("p1", "sleep 1000"));
    ASSERT_NE(s, nullptr);
    std::thread aborter([&] { s->abort(); });
    auto code = s->wait();
    aborter.join();
    ASSERT_FALSE(code);
    EXPECT_EQ(code.error().code, transport::errc::closed) << code.error().what();
}

TEST_F(exec_test, upgrade_errors_are_typed) {
    exec_options missing = sh("nope", "true");
    auto r = client_->exec(missing);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::not_found)) << r.error().what();
    EXPECT_EQ(r.error().http_status, 404);

    exec_options bad_container = sh("p1", "true");
    bad_container.container = "nosuch";
    r = client_->exec(bad_container);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::bad_request)) << r.error().what();
    EXPECT_NE(r.error().message.find("nosuch"), std::string::npos) << r.error().what();
}

TEST_F(exec_test, too_many_requests_on_the_upgrade_is_retried) {
    arm(R"({"http": {"code": 429, "count": 2, "retryAfterSeconds": 2}})");
    const auto slept_before = clock_.slept();
    auto s = open(sh("p1", "echo ok"));
    ASSERT_NE(s, nullptr);
    string_sink out;
    auto code = s->wait(&out);
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(out.data, "ok\n");
    EXPECT_EQ(clock_.slept() - slept_before, std::chrono::seconds(4)); // Retry-After honoured
}

TEST_F(exec_test, a_container_that_is_not_running_is_a_permanent_exec_failure) {
    // The kubelet refuses an exec into a container that is not running. On v5 the API server
    // upgrades first and reports it as a Failure status (InternalError) instead of an exit code;
    // on v4 the kubelet's plain-text 500 comes back before the upgrade. Either way it is
    // exec_failed, not retryable, and nothing is retried.
    auto p = client_->create_pod(busybox_pod("done", {"true"}));
    ASSERT_TRUE(p) << p.error().what();
    ASSERT_EQ(wait_for_phase("done", "Succeeded"), "Succeeded");
    const auto slept_before = clock_.slept();
    exec_session_options v5;
    auto s = client_->exec(sh("done", "echo never"), v5);
    ASSERT_TRUE(s) << s.error().what();
    auto code = (*s)->wait();
    ASSERT_FALSE(code) << "exit code " << *code;
    EXPECT_TRUE(code.error().is(errc::exec_failed)) << code.error().what();
    EXPECT_FALSE(code.error().retryable());
    EXPECT_NE(code.error().message.find("container not found (\"c1\")"), std::string::npos)
        << code.error().what();

    exec_session_options v4;
    v4.offer_v5 = false;
    auto refused = client_->exec(sh("done", "echo never"), v4);
    ASSERT_FALSE(refused);
    EXPECT_TRUE(refused.error().is(errc::exec_failed)) << refused.error().what();
    EXPECT_FALSE(refused.error().retryable());
    EXPECT_EQ(refused.error().http_status, 500);
    EXPECT_EQ(refused.error().message, "container not found (\"c1\")");
    EXPECT_EQ(clock_.slept(), slept_before) << "a refusal that cannot change was retried";
}

TEST_F(exec_test, every_failed_socket_operation_is_an_error_or_the_right_result) {
    // Beast's fail_count loop: fail socket operation N = 0, 1, 2, ... of a whole exec (connect,
    // TLS, upgrade, each message, close) until a run completes without the fault firing.
    // Every run must end (no hang) with either the correct output and exit code or an error.
    for (std::size_t n = 0;; ++n) {
        ASSERT_LT(n, 500u) << "the exec never completed without hitting the fault";
        transport::fault_injection faults(n);
        client_options o;
        o.clock = &clock_;
        o.faults = &faults;
        auto c = api_client::connect(config_, o);
        ASSERT_TRUE(c) << c.error().what();
        exec_options e = sh("p1", "cat; echo tail; exit 4", true);
        auto s = (*c)->exec(e);
        if (!s) {
            EXPECT_TRUE(faults.fired()) << s.error().what();
            continue;
        }
        string_sink out;
        const auto w = send_all((*s)->stdin_sink(), "head\n");
        auto code = (*s)->wait(&out);
        if (!faults.fired()) {
            ASSERT_TRUE(w);
            ASSERT_TRUE(code) << code.error().what();
            EXPECT_EQ(*code, 4);
            EXPECT_EQ(out.data, "head\ntail\n");
            // resolve, connect, TLS, upgrade, then per message: the loop covered them all.
            EXPECT_GE(n, 8u);
            std::cout << "exec completed after failing each of its first " << n
                      << " socket operations\n";
            break;
        }
        if (code) { // the fault hit after everything mattering had arrived
            EXPECT_EQ(*code, 4) << "n=" << n;
            EXPECT_EQ(out.data, "head\ntail\n") << "n=" << n;
        }
    }
}

TEST_F(exec_test, stdin_sink_refuses_writes_without_stdin) {
    auto s = open(sh("p1", "true"));
    ASSERT_NE(s, nullptr);
    auto w = s->stdin_sink().write(as_bytes("x"));
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), transport::errc::bad_argument);
    auto code = s->wait();
    ASSERT_TRUE(code) << code.error().what();
    EXPECT_EQ(*code, 0);
}

} // namespace
} // namespace podpipe::kube::testing
