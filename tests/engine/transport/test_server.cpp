#include "tests/engine/transport/test_server.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace podpipe::transport::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// ---- PKI --------------------------------------------------------------------------------

namespace {

struct key_deleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_deleter {
    void operator()(X509* x) const { X509_free(x); }
};
using key_ptr = std::unique_ptr<EVP_PKEY, key_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;

void check(bool ok, const char* what) {
    if (!ok)
        throw std::runtime_error(what);
}

void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    check(ext != nullptr, "X509V3_EXT_conf_nid");
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

x509_ptr make_cert(EVP_PKEY* key, const char* cn, X509* issuer, EVP_PKEY* issuer_key, long serial,
                   bool ca) {
    x509_ptr x(X509_new());
    X509_set_version(x.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), serial);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 86400);
    X509_set_pubkey(x.get(), key);
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn),
                               -1, -1, 0);
    X509* iss = issuer != nullptr ? issuer : x.get();
    X509_set_issuer_name(x.get(), X509_get_subject_name(iss));
    add_ext(x.get(), iss, NID_subject_key_identifier, "hash");
    if (ca) {
        add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x.get(), iss, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x.get(), iss, NID_basic_constraints, "critical,CA:FALSE");
        add_ext(x.get(), iss, NID_key_usage, "critical,digitalSignature");
        add_ext(x.get(), iss, NID_ext_key_usage, "serverAuth");
        add_ext(x.get(), iss, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
        add_ext(x.get(), iss, NID_authority_key_identifier, "keyid:always");
    }
    check(X509_sign(x.get(), issuer_key, EVP_sha256()) > 0, "X509_sign");
    return x;
}

std::string cert_pem(X509* x) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, x);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

std::string key_pem(EVP_PKEY* k) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, k, nullptr, nullptr, 0, nullptr, nullptr);
    char* data = nullptr;
    const long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<std::size_t>(n));
    BIO_free(b);
    return s;
}

test_pki generate() {
    key_ptr ca_key(EVP_EC_gen("P-256"));
    key_ptr other_key(EVP_EC_gen("P-256"));
    key_ptr server_key(EVP_EC_gen("P-256"));
    check(ca_key && other_key && server_key, "EVP_EC_gen");
    auto ca = make_cert(ca_key.get(), "podpipe test CA", nullptr, ca_key.get(), 1, true);
    auto other = make_cert(other_key.get(), "podpipe other CA", nullptr, other_key.get(), 2, true);
    auto server = make_cert(server_key.get(), "localhost", ca.get(), ca_key.get(), 3, false);
    return test_pki{cert_pem(ca.get()), cert_pem(server.get()), key_pem(server_key.get()),
                    cert_pem(other.get())};
}

} // namespace

const test_pki& pki() {
    static const test_pki instance = generate();
    return instance;
}

// ---- server -----------------------------------------------------------------------------

struct test_server::state {
    asio::io_context ioc;
    asio::ssl::context ssl{asio::ssl::context::tls_server};
    tcp::acceptor acceptor{ioc};
    std::uint16_t port = 0;
    std::thread accept_thread;

    mutable std::mutex mu;
    std::condition_variable cv;
    bool stopping = false;
    std::vector<std::thread> workers;
    std::set<int> open_fds;
    std::size_t connections = 0;
    std::size_t accept_encoding = 0;
    std::vector<std::vector<std::uint8_t>> small;
    std::map<std::string, std::string> last_headers;

    void run_accept() {
        for (;;) {
            beast::error_code ec;
            tcp::socket sock(ioc);
            acceptor.accept(sock, ec);
            std::lock_guard lk(mu);
            if (stopping)
                return;
            if (ec)
                continue;
            ++connections;
            open_fds.insert(sock.native_handle());
            workers.emplace_back([this, s = std::move(sock)]() mutable { serve(std::move(s)); });
        }
    }

    void serve(tcp::socket sock) {
        const int fd = sock.native_handle();
        try {
            websocket::stream<beast::ssl_stream<tcp::socket&>> ws(sock, ssl);
            ws.next_layer().handshake(asio::ssl::stream_base::server);
            beast::flat_buffer buffer;
            for (int n = 1;; ++n) {
                http::request<http::string_body> req;
                http::read(ws.next_layer(), buffer, req);
                record(req);
                if (websocket::is_upgrade(req)) {
                    serve_websocket(ws, req);
                    break;
                }
                if (!serve_http(ws.next_layer(), req, n))
                    break;
            }
        } catch (const std::exception&) {
            // the client went away or the test ended: nothing to report
        }
        std::lock_guard lk(mu);
        open_fds.erase(fd);
    }

    void record(const http::request<http::string_body>& req) {
        std::lock_guard lk(mu);
        if (req.find(http::field::accept_encoding) != req.end())
            ++accept_encoding;
        last_headers.clear();
        for (const auto& f : req)
            last_headers[std::string(f.name_string())] = std::string(f.value());
    }

    template <class Stream>
    bool serve_http(Stream& s, const http::request<http::string_body>& req, int n) {
        const std::string target(req.target());
        if (target == "/no-answer") { // the request read, never answered
            std::unique_lock lk(mu);
            cv.wait(lk, [&] { return stopping; });
            return false;
        }
        if (target == "/stream" || target == "/endless") {
            http::response<http::empty_body> res{http::status::ok, 11};
            res.set(http::field::content_type, "text/plain");
            res.chunked(true);
            http::response_serializer<http::empty_body> sr{res};
            http::write_header(s, sr);
            for (int i = 0; target == "/endless" || i < 5; ++i) {
                const std::string piece = "chunk-" + std::to_string(i) + "\n";
                asio::write(s, http::make_chunk(asio::buffer(piece)));
            }
            asio::write(s, http::make_chunk_last());
            return req.keep_alive();
        }
        http::response<http::string_body> res{http::status::ok, 11};
        res.set(http::field::content_type, "text/plain");
        if (target == "/missing") {
            res.result(http::status::not_found);
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"reason":"NotFound"})";
        } else {
            res.body() = "hello " + std::to_string(n) + " " + req.body();
        }
        const bool keep = req.keep_alive() && target != "/close";
        res.keep_alive(keep);
        res.prepare_payload();
        http::write(s, res);
        return keep;
    }

    using ws_type = websocket::stream<beast::ssl_stream<tcp::socket&>>;

    static void send(ws_type& ws, std::uint8_t channel, const std::string& text) {
        std::string m(1, static_cast<char>(channel));
        m += text;
        ws.binary(true);
        ws.write(asio::buffer(m));
    }

    void serve_websocket(ws_type& ws, const http::request<http::string_body>& req) {
        const std::string target(req.target());
        if (target == "/ws/no-answer") { // TLS done, the upgrade read and never answered
            std::unique_lock lk(mu);
            cv.wait(lk, [&] { return stopping; });
            return;
        }
        if (target == "/ws/reject") {
            http::response<http::string_body> res{http::status::forbidden, 11};
            res.set(http::field::content_type, "application/json");
            res.body() = R"({"kind":"Status","reason":"Forbidden"})";
            res.prepare_payload();
            http::write(ws.next_layer(), res);
            return;
        }
        std::string chosen;
        const std::string offer(req[http::field::sec_websocket_protocol]);
        std::stringstream list(offer);
        for (std::string item; std::getline(list, item, ',');) {
            item.erase(0, item.find_first_not_of(' '));
            if (chosen.empty() && (item == "alpha.test" || item == "beta.test"))
                chosen = item;
        }
        if (target == "/ws/wrong-proto")
            chosen = "zeta.test";
        if (target == "/ws/no-proto")
            chosen.clear();
        ws.set_option(websocket::stream_base::decorator([chosen](websocket::response_type& res) {
            if (!chosen.empty())
                res.set(http::field::sec_websocket_protocol, chosen);
        }));
        ws.accept(req);
        ws.binary(true);

        if (target == "/ws/deaf") {
            std::unique_lock lk(mu);
            cv.wait(lk, [&] { return stopping; });
            return;
        }
        if (target == "/ws/abrupt") {
            send(ws, 1, "partial");
            beast::get_lowest_layer(ws).shutdown(tcp::socket::shutdown_both);
            beast::get_lowest_layer(ws).close();
            return;
        }
        if (target == "/ws/peer-close") {
            send(ws, 1, "bye");
            ws.close(websocket::close_code::normal);
            return;
        }
        const bool slow = target == "/ws/slow";
        send(ws, 1, ""); // ready marker: zero bytes on channel 1
        std::uint64_t total = 0;
        std::uint64_t hash = 1469598103934665603ull;
        beast::flat_buffer b;
        for (std::size_t count = 0;; ++count) {
            b.clear();
            beast::error_code ec;
            ws.read(b, ec);
            if (ec)
                return; // the client's close frame (the sync read answers it) or an error
            const auto* p = static_cast<const std::uint8_t*>(b.cdata().data());
            const std::vector<std::uint8_t> m(p, p + b.size());
            if (m.size() < 64) {
                std::lock_guard lk(mu);
                small.push_back(m);
            }
            if (m.empty())
                continue;
            if (m.size() == 2 && m[0] == 0xFF) {
                send(ws, 3, slow ? std::to_string(total) + " " + std::to_string(hash)
                                 : "closed-" + std::to_string(m[1]));
                ws.close(websocket::close_code::normal);
                return;
            }
            if (slow) {
                for (std::size_t i = 1; i < m.size(); ++i)
                    hash = (hash ^ m[i]) * 1099511628211ull;
                total += m.size() - 1;
                if (count % 4 == 0) // a deliberately slow reader
                    std::this_thread::sleep_for(std::chrono::milliseconds(2));
                continue;
            }
            if (m[0] == 0)
                send(ws, 1, std::string(reinterpret_cast<const char*>(m.data()) + 1, m.size() - 1));
            else if (m[0] == 5)
                send(ws, 2, std::string(reinterpret_cast<const char*>(m.data()) + 1, m.size() - 1));
        }
    }
};

test_server::test_server() : s_(std::make_unique<state>()) {
    const auto& p = pki();
    s_->ssl.use_certificate_chain(asio::buffer(p.server_cert_pem));
    s_->ssl.use_private_key(asio::buffer(p.server_key_pem), asio::ssl::context::pem);
    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
    s_->acceptor.open(ep.protocol());
    s_->acceptor.set_option(asio::socket_base::reuse_address(true));
    s_->acceptor.bind(ep);
    s_->acceptor.listen();
    s_->port = s_->acceptor.local_endpoint().port();
    s_->accept_thread = std::thread([st = s_.get()] { st->run_accept(); });
}

test_server::~test_server() {
    {
        std::lock_guard lk(s_->mu);
        s_->stopping = true;
        for (int fd : s_->open_fds)
            ::shutdown(fd, SHUT_RDWR);
    }
    s_->cv.notify_all();
    {
        // Wake the blocking accept with one last connection.
        asio::io_context ioc;
        tcp::socket poke(ioc);
        beast::error_code ec;
        poke.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), s_->port), ec);
    }
    s_->accept_thread.join();
    std::vector<std::thread> workers;
    {
        std::lock_guard lk(s_->mu);
        workers.swap(s_->workers);
    }
    for (auto& t : workers)
        t.join();
}

std::uint16_t test_server::port() const { return s_->port; }

std::size_t test_server::connections() const {
    std::lock_guard lk(s_->mu);
    return s_->connections;
}

std::size_t test_server::accept_encoding_seen() const {
    std::lock_guard lk(s_->mu);
    return s_->accept_encoding;
}

std::vector<std::vector<std::uint8_t>> test_server::small_messages() const {
    std::lock_guard lk(s_->mu);
    return s_->small;
}

std::string test_server::last_subprotocol_offer() const {
    return last_header("Sec-WebSocket-Protocol");
}

std::string test_server::last_header(const std::string& name) const {
    std::lock_guard lk(s_->mu);
    auto it = s_->last_headers.find(name);
    return it == s_->last_headers.end() ? std::string() : it->second;
}

} // namespace podpipe::transport::testing
