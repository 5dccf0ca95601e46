#include "engine/transport/http_client.hpp"

#include "engine/common/error.hpp"
#include "engine/transport/error.hpp"
#include "tests/engine/transport/test_server.hpp"
#include "tests/engine/transport/test_util.hpp"
#include "tests/support/silent_listener.hpp"

#include <optional>
#include <stop_token>

#include <gtest/gtest.h>

namespace podpipe::transport {
namespace {

using namespace std::chrono_literals;
using testing::pki;
using testing::test_server;
using testing::watchdog;

std::unique_ptr<tls_context> make_tls(std::string ca, std::string name = "", bool verify = true) {
    tls_config c;
    c.ca_pem = std::move(ca);
    c.server_name = std::move(name);
    c.verify = verify;
    auto r = tls_context::create(c);
    EXPECT_TRUE(r);
    return std::move(*r);
}

TEST(http_client, request_response_with_keep_alive_reuse) {
    watchdog dog(60s, "keep-alive");
    test_server server;
    auto tls = make_tls(pki().ca_pem, "localhost");
    http_client client(*tls, "127.0.0.1", server.port());
    for (int i = 1; i <= 3; ++i) {
        http_request req;
        req.method = "POST";
        req.target = "/hello";
        req.body = "b" + std::to_string(i);
        req.headers.push_back({"Accept-Encoding", "gzip"}); // must be stripped
        req.headers.push_back({"X-Opaque", "value"});
        auto res = client.request(req, 10s);
        ASSERT_TRUE(res) << res.error().message() << " " << client.last_error_detail();
        EXPECT_EQ(res->status, 200u);
        EXPECT_EQ(res->body, "hello " + std::to_string(i) + " b" + std::to_string(i));
        ASSERT_NE(find_header(res->headers, "content-type"), nullptr);
    }
    EXPECT_EQ(server.connections(), 1u);
    EXPECT_EQ(client.connections_opened(), 1u);
    EXPECT_EQ(server.accept_encoding_seen(), 0u);
    EXPECT_EQ(server.last_header("X-Opaque"), "value");
}

TEST(http_client, reconnects_after_server_closes) {
    watchdog dog(60s, "reconnect");
    test_server server;
    auto tls = make_tls(pki().ca_pem, "localhost");
    http_client client(*tls, "127.0.0.1", server.port());
    http_request close_req;
    close_req.target = "/close";
    ASSERT_TRUE(client.request(close_req, 10s));
    http_request req;
    req.target = "/hello";
    auto res = client.request(req, 10s);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->body, "hello 1 ");
    EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(http_client, error_status_is_a_response) {
    watchdog dog(60s, "404");
    test_server server;
    auto tls = make_tls(pki().ca_pem, "127.0.0.1");
    http_client client(*tls, "127.0.0.1", server.port());
    http_request req;
    req.target = "/missing";
    auto res = client.request(req, 10s);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 404u);
    EXPECT_EQ(res->body, R"({"reason":"NotFound"})");
}

TEST(http_client, chunked_streaming) {
    watchdog dog(60s, "streaming");
    test_server server;
    auto tls = make_tls(pki().ca_pem, "localhost");
    http_client client(*tls, "127.0.0.1", server.port());
    http_request req;
    req.target = "/stream";
    std::string got;
    auto head = client.request_streaming(req, 10s, 10s, [&](std::span<const std::byte> piece) {
        got.append(reinterpret_cast<const char*>(piece.data()), piece.size());
        return true;
    });
    ASSERT_TRUE(head) << head.error().message();
    EXPECT_EQ(head->status, 200u);
    EXPECT_EQ(got, "chunk-0\nchunk-1\nchunk-2\nchunk-3\nchunk-4\n");
    // The connection is reused after a complete chunked body.
    http_request hello;
    hello.target = "/hello";
    ASSERT_TRUE(client.request(hello, 10s));
    EXPECT_EQ(server.connections(), 1u);
}

TEST(http_client, streaming_stops_when_callback_says_so) {
    watchdog dog(60s, "stream stop");
    test_server server;
    auto tls = make_tls(pki().ca_pem, "localhost");
    http_client client(*tls, "127.0.0.1", server.port());
    http_request req;
    req.target = "/endless";
    std::size_t bytes = 0;
    auto head = client.request_streaming(req, 10s, 10s, [&](std::span<const std::byte> piece) {
        bytes += piece.size();
        return bytes < 100000;
    });
    ASSERT_TRUE(head);
    EXPECT_GE(bytes, 100000u);
    http_request hello;
    hello.target = "/hello";
    ASSERT_TRUE(client.request(hello, 10s)); // a fresh connection
    EXPECT_EQ(client.connections_opened(), 2u);
}

TEST(http_client, wrong_ca_is_rejected) {
    watchdog dog(60s, "wrong CA");
    test_server server;
    auto tls = make_tls(pki().other_ca_pem, "localhost");
    http_client client(*tls, "127.0.0.1", server.port());
    auto res = client.request(http_request{}, 10s);
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), errc::certificate_rejected) << client.last_error_detail();
    EXPECT_EQ(res.error(), condition::fatal);
}

TEST(http_client, host_name_and_ip_san_checks) {
    watchdog dog(60s, "SAN");
    test_server server;
    for (const char* good : {"localhost", "127.0.0.1"}) {
        auto tls = make_tls(pki().ca_pem, good);
        http_client client(*tls, "127.0.0.1", server.port());
        EXPECT_TRUE(client.request(http_request{}, 10s)) << good;
    }
    for (const char* bad : {"other.example", "127.0.0.2"}) {
        auto tls = make_tls(pki().ca_pem, bad);
        http_client client(*tls, "127.0.0.1", server.port());
        auto res = client.request(http_request{}, 10s);
        ASSERT_FALSE(res) << bad;
        EXPECT_EQ(res.error(), errc::certificate_rejected) << bad;
    }
    // No server_name: the connection's host (an IP) is checked against the IP SANs.
    auto tls = make_tls(pki().ca_pem);
    http_client client(*tls, "127.0.0.1", server.port());
    EXPECT_TRUE(client.request(http_request{}, 10s));
}

TEST(http_client, insecure_skip_verify) {
    watchdog dog(60s, "skip verify");
    test_server server;
    auto tls = make_tls(pki().other_ca_pem, "other.example", false);
    http_client client(*tls, "127.0.0.1", server.port());
    auto res = client.request(http_request{}, 10s);
    ASSERT_TRUE(res) << res.error().message();
}

TEST(http_client, connect_refused_is_retryable) {
    watchdog dog(60s, "refused");
    std::uint16_t port = 0;
    {
        test_server server;
        port = server.port();
    }
    auto tls = make_tls(pki().ca_pem, "localhost");
    http_client client(*tls, "127.0.0.1", port);
    auto res = client.request(http_request{}, 5s);
    ASSERT_FALSE(res);
    EXPECT_EQ(res.error(), condition::retryable) << res.error().message();
}

// A stop ends a request blocked on a server that never answers (in the TLS handshake, or
// waiting for the response) at once with errc::cancelled, not at the request's timeout.
TEST(http_client, stop_ends_a_request_to_a_server_that_never_answers) {
    watchdog dog(120s, "stopped requests");
    test_server server;
    podpipe::testing::silent_listener silent;
    ASSERT_NE(silent.port(), 0);
    auto tls = make_tls(pki().ca_pem, "localhost");
    http_client tls_silent(*tls, "127.0.0.1", silent.port(), {.connect_timeout = 60s});
    http_client no_answer(*tls, "127.0.0.1", server.port(), {.connect_timeout = 60s});
    http_request req;
    req.target = "/no-answer";
    const auto asked = [&] { return server.connections() > 0; };
    for (auto [client, ready] : {std::pair{&tls_silent, testing::after(300ms)},
                                 std::pair{&no_answer, std::function<bool()>(asked)}}) {
        std::stop_source stop;
        std::optional<result<http_response>> r;
        const auto late = testing::run_stopped(stop, ready, [&] {
            r = client->request(req, 60s, stop.get_token());
        });
        ASSERT_FALSE(*r);
        EXPECT_EQ(r->error(), errc::cancelled) << r->error().message();
        EXPECT_LT(late, 5s);
        std::stop_source streaming;
        const auto late_streaming = testing::run_stopped(streaming, testing::after(300ms), [&] {
            r = client->request_streaming(req, 60s, 60s, [](auto) { return true; },
                                          streaming.get_token());
        });
        ASSERT_FALSE(*r);
        EXPECT_EQ(r->error(), errc::cancelled) << r->error().message();
        EXPECT_LT(late_streaming, 5s);
    }
}

TEST(http_client, bad_pem_is_rejected) {
    tls_config c;
    c.ca_pem = "not a pem";
    EXPECT_FALSE(tls_context::create(c));
    tls_config half;
    half.client_cert_pem = pki().server_cert_pem;
    EXPECT_FALSE(tls_context::create(half));
}

TEST(http_client, fail_nth_operation_until_success) {
    watchdog dog(120s, "http fail-N loop");
    test_server server;
    auto tls = make_tls(pki().ca_pem, "localhost");
    bool succeeded = false;
    for (std::size_t n = 0; n < 100 && !succeeded; ++n) {
        fault_injection faults(n);
        http_options opts;
        opts.faults = &faults;
        http_client client(*tls, "127.0.0.1", server.port(), opts);
        http_request req;
        req.target = "/hello";
        auto a = client.request(req, 10s);
        result<http_response> b = fail(errc::closed);
        if (a)
            b = client.request(req, 10s);
        http_request s;
        s.target = "/stream";
        result<http_response> c = fail(errc::closed);
        if (b)
            c = client.request_streaming(s, 10s, 10s, [](auto) { return true; });
        if (!faults.fired()) {
            ASSERT_TRUE(a && b && c) << "n=" << n;
            succeeded = true;
        } else {
            EXPECT_FALSE(a && b && c) << "fault at n=" << n << " was not reported";
        }
    }
    EXPECT_TRUE(succeeded);
}

} // namespace
} // namespace podpipe::transport
