#include "tools/kubesim/server.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <list>
#include <stdexcept>
#include <mutex>
#include <thread>

#include <boost/beast/websocket/rfc6455.hpp>

#include "tools/kubesim/beast_detail.hpp"

namespace podpipe::kubesim {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using detail::http_request;
using detail::tls_stream;

namespace {

int hexval(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/// Form decoding: %XX and '+' → space (client-go sends '+', client-node %20; spec §1).
std::string url_decode(std::string_view s, bool plus_is_space) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() &&
            hexval(s[i + 1]) >= 0 && hexval(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hexval(s[i + 1]) * 16 + hexval(s[i + 2])));
            i += 2;
        } else if (s[i] == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

api_request to_api_request(const http_request& req) {
    api_request r;
    r.method = std::string(req.method_string());
    std::string_view target = req.target();
    auto q = target.find('?');
    r.path = url_decode(target.substr(0, q), false);
    if (q != std::string_view::npos) {
        std::string_view rest = target.substr(q + 1);
        while (!rest.empty()) {
            auto amp = rest.find('&');
            std::string_view kv = rest.substr(0, amp);
            auto eq = kv.find('=');
            if (!kv.empty())
                r.query.emplace_back(url_decode(kv.substr(0, eq), true),
                                     eq == std::string_view::npos ? "" : url_decode(kv.substr(eq + 1), true));
            if (amp == std::string_view::npos)
                break;
            rest.remove_prefix(amp + 1);
        }
    }
    for (const auto& f : req) {
        std::string name(f.name_string());
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto it = r.headers.find(name);
        if (it == r.headers.end())
            r.headers[name] = std::string(f.value());
        else
            it->second.append(",").append(f.value().data(), f.value().size());
    }
    r.body = req.body();
    r.websocket_upgrade = boost::beast::websocket::is_upgrade(req);
    return r;
}

int alpn_select(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
    // Select http/1.1 when offered; never h2 (not implemented); otherwise no ALPN at all.
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == 8 && std::memcmp(in + i + 1, "http/1.1", 8) == 0) {
            *out = in + i + 1;
            *outlen = static_cast<unsigned char>(len);
            return SSL_TLSEXT_ERR_OK;
        }
        i += 1 + len;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

class tls_chunk_sink : public chunk_sink {
public:
    explicit tls_chunk_sink(tls_stream& s) : s_(s) {}
    bool write(std::string_view data) override {
        if (failed_)
            return false;
        if (data.empty())
            return true;
        boost::system::error_code ec;
        net::write(s_, http::make_chunk(net::buffer(data.data(), data.size())), ec);
        failed_ = static_cast<bool>(ec);
        return !failed_;
    }
    void abort() override { failed_ = true; } // the caller drops the connection, no last chunk
    bool failed() const { return failed_; }

private:
    tls_stream& s_;
    bool failed_ = false;
};

} // namespace

struct server::impl {
    api_server& api;
    kubelet& kube;
    server_options options;
    ssl::context tls{ssl::context::tls_server};
    net::io_context accept_ioc;
    tcp::acceptor acceptor{accept_ioc};
    std::thread accept_thread;
    std::atomic<bool> stopping{false};

    struct connection {
        int fd = -1;
        std::thread thread;
        std::atomic<bool> done{false};
    };
    std::mutex mu;
    std::list<connection> connections;

    impl(api_server& a, kubelet& k, server_options o) : api(a), kube(k), options(std::move(o)) {}

    void accept_loop();
    void serve(connection& c, tcp::socket socket, net::io_context& ioc);
    void reap(bool all);
};

void server::impl::reap(bool all) {
    std::list<connection> finished;
    {
        std::lock_guard lk(mu);
        for (auto it = connections.begin(); it != connections.end();) {
            if (all || it->done) {
                auto next = std::next(it);
                finished.splice(finished.end(), connections, it);
                it = next;
            } else {
                ++it;
            }
        }
    }
    for (auto& c : finished)
        if (c.thread.joinable())
            c.thread.join();
}

void server::impl::accept_loop() {
    while (!stopping) {
        pollfd pfd{acceptor.native_handle(), POLLIN, 0};
        int rc = ::poll(&pfd, 1, 200);
        reap(false);
        if (rc <= 0)
            continue;
        auto ioc = std::make_shared<net::io_context>(1);
        boost::system::error_code ec;
        tcp::socket sock = acceptor.accept(*ioc, ec);
        if (ec)
            continue;
        sock.set_option(tcp::no_delay(true), ec);
        std::lock_guard lk(mu);
        if (stopping)
            break;
        connections.emplace_back();
        connection& c = connections.back();
        c.fd = sock.native_handle();
        c.thread = std::thread([this, &c, ioc, s = std::move(sock)]() mutable {
            serve(c, std::move(s), *ioc);
            c.done = true;
        });
    }
}

void server::impl::serve(connection& /*c*/, tcp::socket socket, net::io_context& ioc) {
    tls_stream stream(std::move(socket), tls);
    boost::system::error_code ec;
    stream.handshake(ssl::stream_base::server, ec);
    if (ec)
        return;
    boost::beast::flat_buffer buffer;
    while (!stopping) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(64 * 1024 * 1024);
        // The API server's limit (http.Server MaxHeaderBytes 1 MiB, which Go enforces with 4 KiB
        // of slack), not Beast's 8 KiB default: long label selectors and tokens fit.
        parser.header_limit(1024 * 1024 + 4096);
        bool field_too_large = false;
        try {
            http::read(stream, buffer, parser, ec);
        } catch (const std::length_error&) {
            field_too_large = true; // Beast stores one field (or the target) in at most 64 KiB
        }
        if (ec == http::error::header_limit || field_too_large) {
            // What Go's net/http writes before it hangs up.
            static constexpr std::string_view too_large =
                "HTTP/1.0 431 Request Header Fields Too Large\r\nContent-Type: text/plain; "
                "charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large";
            net::write(stream, net::buffer(too_large.data(), too_large.size()), ec);
            // Go then closes its write side and gives the client time to stop sending; here: a
            // TCP FIN (the close-delimited body ends; Go sends a TLS close_notify), then what the
            // client still sends is read and dropped until it closes (so it sees no reset).
            ::shutdown(stream.next_layer().native_handle(), SHUT_WR);
            char sink[16 * 1024];
            for (std::size_t drained = 0; !ec && drained < 16 * 1024 * 1024;)
                drained += stream.next_layer().read_some(net::buffer(sink), ec);
            break;
        }
        if (ec)
            break;
        http_request req = parser.release();
        api_request areq = to_api_request(req);
        bool keep_alive = req.keep_alive();

        auto send = [&](const api_response& r) {
            http::response<http::string_body> res{static_cast<http::status>(r.status), req.version()};
            res.set(http::field::content_type, r.content_type);
            res.set(http::field::cache_control, "no-cache, private");
            for (const auto& [k, v] : r.headers)
                res.insert(k, v); // several Warning headers stay several
            res.body() = r.body;
            res.keep_alive(keep_alive);
            res.prepare_payload();
            http::write(stream, res, ec);
        };

        if (!api.authenticate(areq)) {
            send(api_server::unauthorized());
        } else if (auto injected = api.injected_failure(areq)) {
            send(*injected);
        } else if (auto denied = api.authorize(areq)) {
            send(*denied);
        } else if (api_server::is_exec_path(areq.path)) {
            auto prep = api.prepare_exec(areq);
            if (auto* err = std::get_if<api_response>(&prep)) {
                send(*err);
            } else {
                detail::run_exec_session(stream, ioc, std::move(req), std::get<exec_plan>(std::move(prep)), kube);
                return; // the exec session owns the connection to its end
            }
        } else {
            api_response r = api.handle(areq);
            if (r.stream) {
                http::response<http::empty_body> res{static_cast<http::status>(r.status), req.version()};
                res.set(http::field::content_type, r.content_type);
                res.set(http::field::cache_control, "no-cache, private");
                res.keep_alive(keep_alive);
                res.chunked(true);
                http::response_serializer<http::empty_body> sr{res};
                http::write_header(stream, sr, ec);
                if (!ec) {
                    tls_chunk_sink sink(stream);
                    r.stream(sink);
                    if (sink.failed())
                        break;
                    net::write(stream, http::make_chunk_last(), ec);
                }
            } else {
                send(r);
            }
        }
        if (ec || !keep_alive)
            break;
    }
    // No TLS close_notify dance: clients do not need it and it could block on a dead peer.
    boost::system::error_code ignored;
    stream.next_layer().shutdown(tcp::socket::shutdown_both, ignored);
    stream.next_layer().close(ignored);
}

server::server(api_server& api, kubelet& kube, server_options options)
    : impl_(std::make_unique<impl>(api, kube, std::move(options))) {}

server::~server() { stop(); }

result<int> server::start() {
    auto& t = impl_->tls;
    boost::system::error_code ec;
    t.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                  ec);
    t.use_certificate_chain(net::buffer(impl_->options.cert_pem), ec);
    if (!ec)
        t.use_private_key(net::buffer(impl_->options.key_pem), ssl::context::pem, ec);
    if (ec)
        return fail(std::error_code(ec.value(), std::system_category()));
    SSL_CTX_set_alpn_select_cb(t.native_handle(), alpn_select, nullptr);

    tcp::endpoint ep(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(impl_->options.port));
    impl_->acceptor.open(ep.protocol(), ec);
    if (!ec)
        impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec)
        impl_->acceptor.bind(ep, ec);
    if (!ec)
        impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        return fail(std::error_code(ec.value(), std::system_category()));
    int port = impl_->acceptor.local_endpoint().port();
    impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
    return port;
}

void server::stop() {
    if (!impl_ || impl_->stopping.exchange(true))
        return;
    if (impl_->accept_thread.joinable())
        impl_->accept_thread.join();
    boost::system::error_code ec;
    impl_->acceptor.close(ec);
    {
        std::lock_guard lk(impl_->mu);
        for (auto& c : impl_->connections)
            ::shutdown(c.fd, SHUT_RDWR);
    }
    impl_->reap(true);
}

} // namespace podpipe::kubesim
