// An in-test HTTPS + WebSocket server on 127.0.0.1, port 0, with a throwaway PKI made with the
// OpenSSL API. Behaviour is chosen by the request target (see test_server.cpp). Beast stays in
// test_server.cpp so the test files compile fast.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace podpipe::transport::testing {

struct test_pki {
    std::string ca_pem;          ///< the CA that signed the server certificate
    std::string server_cert_pem; ///< SAN: DNS:localhost, IP:127.0.0.1
    std::string server_key_pem;
    std::string other_ca_pem;    ///< an unrelated CA (verification must fail with it)
};

/// Generated once per process (EC P-256, valid from an hour ago for a day).
const test_pki& pki();

class test_server {
public:
    test_server();
    ~test_server();
    test_server(const test_server&) = delete;
    test_server& operator=(const test_server&) = delete;

    std::uint16_t port() const;
    /// TCP connections accepted so far.
    std::size_t connections() const;
    /// Requests that carried an Accept-Encoding header.
    std::size_t accept_encoding_seen() const;
    /// Small (< 64 bytes) WebSocket messages the echo endpoint received, in order.
    std::vector<std::vector<std::uint8_t>> small_messages() const;
    /// The last upgrade request's header value (empty if none).
    std::string last_subprotocol_offer() const;
    std::string last_header(const std::string& name) const;

    struct state;

private:
    std::unique_ptr<state> s_;
};

} // namespace podpipe::transport::testing
