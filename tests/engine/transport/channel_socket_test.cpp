#include "engine/transport/channel_socket.hpp"

#include "engine/common/error.hpp"
#include "engine/transport/error.hpp"
#include "tests/engine/transport/test_server.hpp"
#include "tests/engine/transport/test_util.hpp"
#include "tests/support/silent_listener.hpp"

#include <cstring>
#include <stop_token>
#include <thread>

#include <gtest/gtest.h>

namespace podpipe::transport {
namespace {

using namespace std::chrono_literals;
using testing::pki;
using testing::test_server;
using testing::wait_until;
using testing::watchdog;

class channel_socket_test : public ::testing::Test {
protected:
    void SetUp() override {
        tls_config c;
        c.ca_pem = pki().ca_pem;
        c.server_name = "localhost";
        tls_ = std::move(*tls_context::create(c));
        options_.subprotocols = {"beta.test", "alpha.test"};
        options_.headers = {{"Authorization", "Bearer opaque"}};
    }

    result<std::unique_ptr<channel_socket>> connect(const std::string& target,
                                                    upgrade_failure* failure = nullptr) {
        return channel_socket::connect(*tls_, "127.0.0.1", server_.port(), target, options_,
                                       failure);
    }

    static std::string text(const std::vector<std::byte>& b) {
        return std::string(reinterpret_cast<const char*>(b.data()), b.size());
    }

    static std::span<const std::byte> bytes(const std::string& s) {
        return std::as_bytes(std::span<const char>(s.data(), s.size()));
    }

    // Next message with data (skips zero-byte messages such as the ready marker).
    static channel_message next_data(channel_socket& s) {
        for (;;) {
            auto m = s.read();
            EXPECT_TRUE(m) << m.error().message();
            if (!m || !m->has_value())
                return channel_message{0xEE, {}};
            if (!(*m)->data.empty())
                return std::move(**m);
        }
    }

    test_server server_;
    std::unique_ptr<tls_context> tls_;
    channel_socket_options options_;
};

TEST_F(channel_socket_test, negotiates_first_supported_subprotocol) {
    watchdog dog(60s, "subprotocol");
    auto s = connect("/ws/echo");
    ASSERT_TRUE(s) << s.error().message();
    EXPECT_EQ((*s)->subprotocol(), "beta.test");
    EXPECT_EQ(server_.last_subprotocol_offer(), "beta.test, alpha.test");
    EXPECT_EQ(server_.last_header("Authorization"), "Bearer opaque");
    EXPECT_TRUE((*s)->close(10s));
}

TEST_F(channel_socket_test, unoffered_or_missing_subprotocol_fails) {
    watchdog dog(60s, "subprotocol mismatch");
    auto wrong = connect("/ws/wrong-proto");
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error(), errc::subprotocol_mismatch);
    auto none = connect("/ws/no-proto");
    ASSERT_FALSE(none);
    EXPECT_EQ(none.error(), errc::subprotocol_mismatch);
}

TEST_F(channel_socket_test, non_101_carries_status_and_body) {
    watchdog dog(60s, "non-101");
    upgrade_failure failure;
    auto s = connect("/ws/reject", &failure);
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), errc::upgrade_rejected);
    EXPECT_EQ(failure.status, 403u);
    EXPECT_EQ(failure.body, R"({"kind":"Status","reason":"Forbidden"})");
}

TEST_F(channel_socket_test, routes_channels_both_ways) {
    watchdog dog(60s, "routing");
    auto s = connect("/ws/echo");
    ASSERT_TRUE(s);
    auto& sock = **s;
    ASSERT_TRUE(sock.write(0, bytes("to-one")));
    ASSERT_TRUE(sock.write(5, bytes("to-two")));
    auto a = next_data(sock);
    EXPECT_EQ(a.channel, 1);
    EXPECT_EQ(text(a.data), "to-one");
    auto b = next_data(sock);
    EXPECT_EQ(b.channel, 2);
    EXPECT_EQ(text(b.data), "to-two");
    EXPECT_TRUE(sock.close(10s));
    EXPECT_EQ(sock.peer_close()->code, 1000);
}

TEST_F(channel_socket_test, ready_marker_is_zero_bytes_not_end) {
    watchdog dog(60s, "ready");
    auto s = connect("/ws/echo");
    ASSERT_TRUE(s);
    auto first = (*s)->read();
    ASSERT_TRUE(first && first->has_value());
    EXPECT_EQ((*first)->channel, 1);
    EXPECT_TRUE((*first)->data.empty());
    EXPECT_TRUE((*s)->close(10s));
}

TEST_F(channel_socket_test, close_channel_sends_ff_id_and_peer_close_ends_reads) {
    watchdog dog(60s, "close_channel");
    auto s = connect("/ws/echo");
    ASSERT_TRUE(s);
    auto& sock = **s;
    ASSERT_TRUE(sock.write(0, bytes("x")));
    ASSERT_TRUE(sock.close_channel(0));
    std::string status;
    for (;;) {
        auto m = sock.read();
        ASSERT_TRUE(m) << m.error().message();
        if (!m->has_value())
            break;
        if ((*m)->channel == 3)
            status = text((*m)->data);
    }
    EXPECT_EQ(status, "closed-0");
    ASSERT_TRUE(sock.peer_close());
    EXPECT_EQ(sock.peer_close()->code, 1000);
    EXPECT_TRUE(sock.close(10s)); // already closed by the peer: success
    const auto msgs = server_.small_messages();
    ASSERT_GE(msgs.size(), 2u);
    EXPECT_EQ(msgs.back(), (std::vector<std::uint8_t>{0xFF, 0x00}));
    EXPECT_EQ(msgs[msgs.size() - 2], (std::vector<std::uint8_t>{0x00, 'x'}));
    EXPECT_EQ(sock.write(0, bytes("late")).error(), errc::closed);
}

TEST_F(channel_socket_test, fifty_megabytes_through_a_slow_reader_with_bounded_memory) {
    watchdog dog(240s, "50 MB");
    options_.max_in_flight_bytes = 1u << 20;
    options_.max_message_bytes = 256u << 10;
    auto s = connect("/ws/slow");
    ASSERT_TRUE(s);
    auto& sock = **s;
    constexpr std::size_t total = 50u << 20;
    std::vector<std::byte> chunk(3u << 20);
    std::uint64_t hash = 1469598103934665603ull;
    std::size_t sent = 0;
    std::uint32_t x = 12345;
    while (sent < total) {
        const std::size_t n = std::min(chunk.size(), total - sent);
        for (std::size_t i = 0; i < n; ++i) {
            x = x * 1103515245u + 12345u;
            chunk[i] = std::byte(x >> 24);
            hash = (hash ^ static_cast<std::uint8_t>(chunk[i])) * 1099511628211ull;
        }
        ASSERT_TRUE(sock.write(0, std::span<const std::byte>(chunk.data(), n)));
        const auto st = sock.stats();
        EXPECT_LE(st.in_flight_bytes, options_.max_in_flight_bytes);
        sent += n;
    }
    ASSERT_TRUE(sock.flush());
    ASSERT_TRUE(sock.close_channel(0)); // end of input: the server answers with its status
    std::string status;
    for (;;) {
        auto m = sock.read();
        ASSERT_TRUE(m) << m.error().message();
        if (!m->has_value())
            break; // the server's close frame
        if ((*m)->channel == 3)
            status.assign(reinterpret_cast<const char*>((*m)->data.data()), (*m)->data.size());
    }
    EXPECT_EQ(status, std::to_string(total) + " " + std::to_string(hash));
    const auto st = sock.stats();
    EXPECT_LE(st.peak_in_flight_bytes, options_.max_in_flight_bytes);
    EXPECT_GT(st.write_blocked_ns, 0u); // the writer was slowed down, not buffered
    EXPECT_GE(st.bytes_sent, total);
    EXPECT_EQ(sock.peer_close()->code, 1000);
}

TEST_F(channel_socket_test, pongs_keep_an_idle_connection_alive) {
    watchdog dog(60s, "ping/pong");
    options_.ping_interval = 20ms;
    options_.pong_timeout = 200ms;
    auto s = connect("/ws/echo");
    ASSERT_TRUE(s);
    auto& sock = **s;
    // 25 pongs take at least 500 ms: more than twice the pong deadline without any data.
    ASSERT_TRUE(wait_until([&] { return sock.stats().pongs_received >= 25; }, 30s));
    ASSERT_TRUE(sock.write(0, bytes("alive")));
    auto m = next_data(sock);
    EXPECT_EQ(text(m.data), "alive");
    EXPECT_TRUE(sock.close(10s));
}

TEST_F(channel_socket_test, dead_peer_is_an_error_not_a_hang) {
    watchdog dog(60s, "dead peer");
    options_.ping_interval = 20ms;
    options_.pong_timeout = 300ms;
    auto s = connect("/ws/deaf");
    ASSERT_TRUE(s);
    auto m = (*s)->read();
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error(), errc::heartbeat_timeout);
    EXPECT_EQ(m.error(), condition::retryable);
}

TEST_F(channel_socket_test, abrupt_tcp_close_is_reported_distinctly) {
    watchdog dog(60s, "abrupt");
    auto s = connect("/ws/abrupt");
    ASSERT_TRUE(s);
    auto first = next_data(**s);
    EXPECT_EQ(text(first.data), "partial"); // data before the loss is still delivered
    auto m = (*s)->read();
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error(), errc::abrupt_close) << m.error().message();
    EXPECT_EQ(m.error(), condition::peer_closed);
    EXPECT_FALSE((*s)->peer_close());
}

TEST_F(channel_socket_test, peer_initiated_close_1000) {
    watchdog dog(60s, "peer close");
    auto s = connect("/ws/peer-close");
    ASSERT_TRUE(s);
    auto m = next_data(**s);
    EXPECT_EQ(text(m.data), "bye");
    auto end = (*s)->read();
    ASSERT_TRUE(end);
    EXPECT_FALSE(end->has_value());
    EXPECT_EQ((*s)->peer_close()->code, 1000);
}

// Writes accepted just before the peer's close frame arrived can never be sent; close() must
// still complete at once (it used to wait out its whole timeout for that queue to drain).
TEST_F(channel_socket_test, close_after_writes_that_raced_the_peers_close) {
    watchdog dog(60s, "writes racing the peer's close");
    for (int round = 0; round < 5; ++round) {
        auto s = connect("/ws/peer-close");
        ASSERT_TRUE(s);
        auto m = next_data(**s);
        EXPECT_EQ(text(m.data), "bye");
        int accepted = 0;
        while ((*s)->write(0, bytes("podpipe-ack 1234567\n")) && accepted < 1'000'000)
            ++accepted;
        EXPECT_EQ((*s)->write(0, bytes("late")).error(), errc::closed) << accepted;
        auto closed = (*s)->close(5s);
        EXPECT_TRUE(closed) << "round " << round << ", " << accepted
                            << " writes accepted: " << closed.error().message();
    }
}

TEST_F(channel_socket_test, abort_wakes_a_blocked_reader) {
    watchdog dog(60s, "abort");
    options_.ping_interval = 0ms;
    auto s = connect("/ws/deaf");
    ASSERT_TRUE(s);
    std::thread t([&] {
        wait_until([] { return false; }, 50ms);
        (*s)->abort();
    });
    auto m = (*s)->read();
    t.join();
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error(), errc::closed);
}

// A stop ends a connect blocked on a server that never answers, long before connect_timeout,
// with errc::cancelled (issue 18: a signal must not wait out the timeout). `port` is the
// server's; the stop comes once `blocked` says the connect waits on it.
void expect_stop_ends_connect(tls_context& tls, channel_socket_options options,
                              std::uint16_t port, const std::string& target,
                              const std::function<bool()>& blocked) {
    watchdog dog(120s, "stopped connect");
    std::stop_source stop;
    options.connect_timeout = 60s;
    options.stop = stop.get_token();
    std::optional<result<std::unique_ptr<channel_socket>>> s;
    const auto late = testing::run_stopped(stop, blocked, [&] {
        s = channel_socket::connect(tls, "127.0.0.1", port, target, options);
    });
    ASSERT_FALSE(*s) << "connected to a server that never answers";
    EXPECT_EQ(s->error(), errc::cancelled) << s->error().message();
    EXPECT_FALSE(s->error() == condition::retryable);
    // About a millisecond in practice; generous for a loaded machine, far below the timeout.
    EXPECT_LT(late, 5s);
}

TEST_F(channel_socket_test, stop_ends_a_connect_to_a_server_that_never_speaks_tls) {
    podpipe::testing::silent_listener silent;
    ASSERT_NE(silent.port(), 0);
    // Nothing to observe on a listener that never accepts: the stop comes after 300 ms, by
    // when the connect waits for the TLS answer (earlier, it ends before the handshake).
    expect_stop_ends_connect(*tls_, options_, silent.port(), "/ws", testing::after(300ms));
}

TEST_F(channel_socket_test, stop_ends_a_connect_whose_upgrade_is_never_answered) {
    expect_stop_ends_connect(*tls_, options_, server_.port(), "/ws/no-answer",
                             [&] { return !server_.last_header("Upgrade").empty(); });
}

TEST_F(channel_socket_test, a_stop_requested_before_connect_is_cancelled_at_once) {
    std::stop_source stop;
    stop.request_stop();
    options_.stop = stop.get_token();
    auto s = connect("/ws");
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error(), errc::cancelled);
    EXPECT_EQ(server_.connections(), 0u);
}

TEST_F(channel_socket_test, fail_nth_operation_until_success) {
    watchdog dog(180s, "ws fail-N loop");
    options_.ping_interval = 0ms; // pings are not counted; keep the count deterministic
    bool succeeded = false;
    for (std::size_t n = 0; n < 200 && !succeeded; ++n) {
        fault_injection faults(n);
        options_.faults = &faults;
        bool ok = false;
        auto s = connect("/ws/echo");
        if (s) {
            auto& sock = **s;
            ok = static_cast<bool>(sock.write(0, bytes("abc")));
            if (ok) {
                auto m = sock.read();
                while (m && m->has_value() && (*m)->data.empty())
                    m = sock.read();
                ok = m && m->has_value() && text((*m)->data) == "abc";
            }
            ok = ok && sock.close_channel(0);
            while (ok) {
                auto m = sock.read();
                if (!m)
                    ok = false;
                else if (!m->has_value())
                    break;
            }
            ok = ok && sock.close(10s);
        }
        if (!faults.fired()) {
            ASSERT_TRUE(ok) << "n=" << n;
            succeeded = true;
        } else {
            EXPECT_FALSE(ok) << "fault at n=" << n << " was not reported";
        }
    }
    EXPECT_TRUE(succeeded);
}

TEST_F(channel_socket_test, splits_large_writes_into_bounded_messages) {
    watchdog dog(60s, "split");
    options_.max_message_bytes = 1000;
    auto s = connect("/ws/echo");
    ASSERT_TRUE(s);
    auto& sock = **s;
    const std::string big(4500, 'z');
    ASSERT_TRUE(sock.write(0, bytes(big)));
    std::size_t got = 0;
    std::size_t messages = 0;
    while (got < big.size()) {
        auto m = next_data(sock);
        ASSERT_EQ(m.channel, 1);
        EXPECT_LE(m.data.size(), 999u);
        got += m.data.size();
        ++messages;
    }
    EXPECT_EQ(messages, 5u);
    EXPECT_TRUE(sock.close(10s));
}

} // namespace
} // namespace podpipe::transport
