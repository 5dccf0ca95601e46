#include "tools/kubesim/tls_ca.hpp"

#include <memory>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace podpipe::kubesim {
namespace {

struct pkey_free {
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
    void operator()(X509* p) const { X509_free(p); }
};
struct bio_free {
    void operator()(BIO* p) const { BIO_free(p); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_free>;
using x509_ptr = std::unique_ptr<X509, x509_free>;
using bio_ptr = std::unique_ptr<BIO, bio_free>;

std::error_code ssl_error() {
    ERR_print_errors_fp(stderr);
    return std::make_error_code(std::errc::protocol_error);
}

bool add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    if (!ext)
        return false;
    bool ok = X509_add_ext(cert, ext, -1) == 1;
    X509_EXTENSION_free(ext);
    return ok;
}

x509_ptr make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, long days) {
    x509_ptr cert(X509_new());
    if (!cert)
        return nullptr;
    X509_set_version(cert.get(), 2);
    unsigned char serial[16];
    RAND_bytes(serial, sizeof serial);
    serial[0] &= 0x7f;
    BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), days * 24 * 3600);
    X509_set_pubkey(cert.get(), key);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509* iss = issuer ? issuer : cert.get();
    X509_set_issuer_name(cert.get(), X509_get_subject_name(iss));
    if (!issuer) {
        if (!add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:TRUE") ||
            !add_ext(cert.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature") ||
            !add_ext(cert.get(), iss, NID_subject_key_identifier, "hash"))
            return nullptr;
    } else {
        if (!add_ext(cert.get(), iss, NID_basic_constraints, "critical,CA:FALSE") ||
            !add_ext(cert.get(), iss, NID_key_usage, "critical,digitalSignature,keyEncipherment") ||
            !add_ext(cert.get(), iss, NID_ext_key_usage, "serverAuth") ||
            !add_ext(cert.get(), iss, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost") ||
            !add_ext(cert.get(), iss, NID_authority_key_identifier, "keyid:always"))
            return nullptr;
    }
    if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0)
        return nullptr;
    return cert;
}

std::string bio_string(BIO* bio) {
    char* data = nullptr;
    long n = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(n));
}

} // namespace

result<tls_material> generate_tls_material() {
    pkey_ptr ca_key(EVP_EC_gen("P-256"));
    pkey_ptr srv_key(EVP_EC_gen("P-256"));
    if (!ca_key || !srv_key)
        return fail(ssl_error());
    x509_ptr ca = make_cert(ca_key.get(), "kubesim-ca", nullptr, ca_key.get(), 3650);
    if (!ca)
        return fail(ssl_error());
    x509_ptr srv = make_cert(srv_key.get(), "kube-apiserver", ca.get(), ca_key.get(), 365);
    if (!srv)
        return fail(ssl_error());
    tls_material m;
    bio_ptr b1(BIO_new(BIO_s_mem())), b2(BIO_new(BIO_s_mem())), b3(BIO_new(BIO_s_mem()));
    if (!PEM_write_bio_X509(b1.get(), ca.get()) || !PEM_write_bio_X509(b2.get(), srv.get()) ||
        !PEM_write_bio_PrivateKey(b3.get(), srv_key.get(), nullptr, nullptr, 0, nullptr, nullptr))
        return fail(ssl_error());
    m.ca_cert_pem = bio_string(b1.get());
    m.server_cert_pem = bio_string(b2.get());
    m.server_key_pem = bio_string(b3.get());
    return m;
}

} // namespace podpipe::kubesim
