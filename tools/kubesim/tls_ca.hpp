// tls_ca: generates kubesim's throwaway certificate authority and the server certificate it
// signs, with the OpenSSL 3 API. No OpenSSL types leak out: everything is PEM text.
#pragma once

#include <string>
#include <system_error>

#include "engine/common/result.hpp"

namespace podpipe::kubesim {

struct tls_material {
    std::string ca_cert_pem;     ///< self-signed CA (what kubeconfig certificate-authority-data holds)
    std::string server_cert_pem; ///< leaf signed by the CA; SANs IP:127.0.0.1, DNS:localhost
    std::string server_key_pem;  ///< PKCS#8 private key of the leaf
};

/// Creates a fresh P-256 CA (10-year validity, CA:TRUE) and a server certificate (1 year,
/// serverAuth, SANs IP:127.0.0.1 and DNS:localhost). Fails with an error code only when OpenSSL
/// itself fails (the message goes to stderr via ERR_print_errors).
result<tls_material> generate_tls_material();

} // namespace podpipe::kubesim
