// tls_config and tls_context: how this process verifies servers and proves its own identity.
// Create one tls_context per process (or per trust configuration) and share it between every
// http_client and channel_socket; OpenSSL state stays behind the pimpl.
#pragma once

#include "engine/common/result.hpp"

#include <memory>
#include <string>

namespace podpipe::transport {

struct tls_config {
    /// PEM bundle of trusted CA certificates. Empty: the system's default trust store.
    std::string ca_pem;
    /// false skips certificate and host name verification (insecure; for explicit opt-in only).
    bool verify = true;
    /// Name checked against the server certificate (and sent as SNI when it is a DNS name).
    /// Empty: the host passed to each connection. An IPv4/IPv6 literal is matched against the
    /// certificate's IP SANs and sends no SNI.
    std::string server_name;
    /// Optional client certificate chain and private key (PEM), both or neither.
    std::string client_cert_pem;
    std::string client_key_pem;
};

/// Owns the OpenSSL context. Immutable after create(); connections may use it concurrently
/// from any thread. Must outlive every connection made with it.
class tls_context {
public:
    /// Errors: errc::bad_argument when a PEM does not parse, or only one of cert/key is given.
    static result<std::unique_ptr<tls_context>> create(const tls_config& config);

    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    const tls_config& config() const noexcept;

    struct impl;
    /// For engine/transport's own connection code only.
    impl& native() noexcept { return *impl_; }

private:
    explicit tls_context(std::unique_ptr<impl> i);
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::transport
