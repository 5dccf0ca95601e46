#include "tools/kubesim/server.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <list>
#include <mutex>
#include <optional>
#include <stdexcept>
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
    tls_chunk_sink(tls_stream& s, const std::atomic<bool>& cut) : s_(s), cut_(cut) {}
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
    bool cancelled() const override { return cut_.load(std::memory_order_acquire); }
    bool failed() const { return failed_ || cancelled(); }

private:
    tls_stream& s_;
    const std::atomic<bool>& cut_;
    bool failed_ = false;
};

/// What a load balancer answers for a backend that is gone (the restart fault's 503 mode).
constexpr std::string_view unavailable_status =
    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
    R"("message":"the server is currently unable to handle the request",)"
    R"("reason":"ServiceUnavailable","code":503})";

/// What a load balancer (ingress-nginx's default backend style) answers in "503-html" mode:
/// an HTML page with CRLFs, an inline style and a comment, longer than a log line should be.
constexpr std::string_view unavailable_html =
    "<!DOCTYPE html>\r\n<html>\r\n<head>\r\n<title>503 Service Temporarily Unavailable</title>\r\n"
    "<style>\r\n\tbody { font-family: Tahoma, Verdana, Arial, sans-serif; margin: 0 auto; "
    "width: 35em; }\r\n\th1 { font-size: 2em; color: #444; }\r\n\t.details { color: #777; "
    "font-size: 0.8em; }\r\n</style>\r\n</head>\r\n<body>\r\n<!-- upstream: "
    "kube-apiserver, all backends unhealthy -->\r\n<center><h1>503 Service Temporarily "
    "Unavailable</h1></center>\r\n<p class=\"details\">The server is temporarily unable to "
    "service your request due to maintenance downtime or capacity problems. Please try again "
    "later.</p>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

} // namespace

// The restart fault (README "Fault injection", `restart`): the cut does what the death of an
// API server process does to its sockets. Every open connection is shut down at once (the peer
// gets a TCP FIN, or an RST for unread data; no TLS close_notify, no last chunk, no WebSocket
// close frame or exec status), and the listening socket either stops listening ("refused": a
// connect gets an RST, ECONNREFUSED; it keeps its port, so nothing else can take it and the
// same URL works again) or keeps accepting with every request answered 503 ("503", a load
// balancer in front of a restarting server). The pods are not touched: a session's exec'd
// process keeps running as after any dropped exec (exec_session.cpp abort()).
struct server::impl : restart_driver {
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
        std::atomic<bool> cut{false}; ///< shut down by the restart or kubeletRestart fault
        std::string node; ///< an exec session's or log follow's node while it runs (guarded by mu)
    };
    std::mutex mu; // connections; also held from accept() to registering the connection
    std::list<connection> connections;

    // Restart fault state (guarded by restart_mu; the atomics are read without it).
    std::mutex restart_mu;
    std::condition_variable restart_cv;
    std::optional<restart_fault> armed; ///< armed, waiting for its faults answer to go out
    bool released = false;              ///< that answer is out: the delay runs
    std::atomic<bool> refusing{false};  ///< "refused" mode, down
    std::atomic<bool> answering_503{false};
    std::atomic<bool> html_503{false}; ///< "503-html": the page instead of the Status
    std::atomic<int> retry_after_s{0};
    std::atomic<int> restart_count{0};
    std::thread restart_thread;

    impl(api_server& a, kubelet& k, server_options o) : api(a), kube(k), options(std::move(o)) {}

    void accept_loop();
    void serve(connection& c, tcp::socket socket, net::io_context& ioc);
    void reap(bool all);

    bool arm(const restart_fault& fault) override {
        std::lock_guard lk(restart_mu);
        if (armed || refusing || answering_503)
            return false;
        armed = fault;
        released = false;
        return true;
    }
    bool down() const override { return refusing || answering_503; }
    int restarts() const override { return restart_count; }
    /// After a /kubesim/faults answer was written: an armed restart may start its delay.
    void release_restart() {
        std::lock_guard lk(restart_mu);
        if (armed && !released) {
            released = true;
            restart_cv.notify_all();
        }
    }
    void restart_loop();
    void cut_everything(bool refuse);
    int cut_node_streams(const std::string& node) override;
    void set_node(connection& c, const std::string& node) {
        std::lock_guard lk(mu);
        c.node = node;
    }
};

// The kubeletRestart fault: the API server proxies exec and log streams from the kubelet; when
// the kubelet goes, its side of each proxied stream breaks and the API server drops the client
// connection. The socket is shut down as in the restart's cut; the pods are not touched.
int server::impl::cut_node_streams(const std::string& node) {
    std::lock_guard lk(mu);
    int n = 0;
    for (auto& c : connections) {
        if (c.done || c.cut || c.node.empty() || (!node.empty() && c.node != node))
            continue;
        c.cut.store(true, std::memory_order_release);
        ::shutdown(c.fd, SHUT_RDWR);
        ++n;
    }
    return n;
}

void server::impl::cut_everything(bool refuse) {
    std::lock_guard lk(mu); // no accept() completes meanwhile
    if (refuse) {
        // On Linux, shutdown() of a listening socket stops listening (queued connections are
        // reset) but keeps the socket bound to its port; listen() again re-opens it.
        ::shutdown(acceptor.native_handle(), SHUT_RDWR);
        refusing = true;
    } else {
        answering_503 = true;
    }
    for (auto& c : connections) {
        // A connection cut before may still have its thread (an exec session waits for its
        // process) but its socket is closed: its fd number may belong to someone else now.
        if (c.done || c.cut)
            continue;
        c.cut.store(true, std::memory_order_release);
        ::shutdown(c.fd, SHUT_RDWR); // wakes the connection's thread; its reads and writes fail
    }
}

void server::impl::restart_loop() {
    std::unique_lock lk(restart_mu);
    for (;;) {
        restart_cv.wait(lk, [&] { return stopping || (armed && released); });
        if (stopping)
            return;
        restart_fault f = *armed;
        if (restart_cv.wait_for(lk, f.after, [&] { return stopping.load(); }))
            return;
        retry_after_s = f.retry_after_s;
        html_503 = f.html;
        lk.unlock();
        cut_everything(f.refuse);
        std::fprintf(stderr, "kubesim: restart fault: connections cut, %s for %lld ms\n",
                     f.refuse ? "refusing connections"
                              : (f.html ? "answering 503 (HTML)" : "answering 503"),
                     static_cast<long long>(f.down.count()));
        lk.lock();
        armed.reset();
        ++restart_count;
        if (restart_cv.wait_for(lk, f.down, [&] { return stopping.load(); }))
            return;
        if (f.refuse) {
            std::lock_guard alk(mu);
            if (::listen(acceptor.native_handle(), net::socket_base::max_listen_connections) != 0)
                std::perror("kubesim: restart fault: listen again");
        }
        api.restarted(); // a fresh watch cache: the history before the restart is gone
        refusing = false;
        answering_503 = false;
        std::fprintf(stderr, "kubesim: restart fault: serving again\n");
    }
}

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
        if (refusing) { // the restart fault: not listening (a closed socket polls as ready)
            reap(false);
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            continue;
        }
        int rc = ::poll(&pfd, 1, 200);
        reap(false);
        if (rc <= 0)
            continue;
        auto ioc = std::make_shared<net::io_context>(1);
        boost::system::error_code ec;
        std::lock_guard lk(mu);
        if (stopping)
            break;
        tcp::socket sock = acceptor.accept(*ioc, ec); // non-blocking (start())
        if (ec)
            continue;
        sock.non_blocking(false, ec);
        sock.set_option(tcp::no_delay(true), ec);
        connections.emplace_back();
        connection& c = connections.back();
        c.fd = sock.native_handle();
        c.thread = std::thread([this, &c, ioc, s = std::move(sock)]() mutable {
            serve(c, std::move(s), *ioc);
            c.done = true;
        });
    }
}

void server::impl::serve(connection& c, tcp::socket socket, net::io_context& ioc) {
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

        const bool admin_path = areq.path.rfind("/kubesim/", 0) == 0;
        if (answering_503 && !admin_path) {
            api_response r;
            r.status = 503;
            r.body = std::string(html_503 ? unavailable_html : unavailable_status);
            if (html_503)
                r.content_type = "text/html";
            if (int s = retry_after_s; s > 0)
                r.headers.emplace_back("Retry-After", std::to_string(s));
            send(r);
        } else if (!api.authenticate(areq)) {
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
                set_node(c, std::get<exec_plan>(prep).node);
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
                    tls_chunk_sink sink(stream, c.cut);
                    set_node(c, r.stream_node);
                    r.stream(sink);
                    set_node(c, "");
                    if (sink.failed())
                        break;
                    net::write(stream, http::make_chunk_last(), ec);
                }
            } else {
                send(r);
            }
        }
        if (admin_path)
            release_restart(); // an armed restart counts its delay from this answer
        if (ec || !keep_alive || c.cut)
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
    if (ep.port() == 0) {
        // Pick the port with a probe socket, then bind the real one to it by number: a socket
        // bound to port 0 gives its port up when the restart fault stops it listening, one
        // bound by number keeps it (both have SO_REUSEADDR and the probe never listens).
        tcp::acceptor probe(impl_->accept_ioc);
        probe.open(ep.protocol(), ec);
        if (!ec)
            probe.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec)
            probe.bind(ep, ec);
        if (!ec)
            ep.port(probe.local_endpoint().port());
        if (!ec)
            impl_->acceptor.open(ep.protocol(), ec);
        if (!ec)
            impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec)
            impl_->acceptor.bind(ep, ec);
    } else {
        impl_->acceptor.open(ep.protocol(), ec);
        if (!ec)
            impl_->acceptor.set_option(net::socket_base::reuse_address(true), ec);
        if (!ec)
            impl_->acceptor.bind(ep, ec);
    }
    if (!ec)
        impl_->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (!ec)
        impl_->acceptor.non_blocking(true, ec); // accept() runs under the connections mutex
    if (ec)
        return fail(std::error_code(ec.value(), std::system_category()));
    int port = impl_->acceptor.local_endpoint().port();
    impl_->api.set_restart_driver(impl_.get());
    impl_->accept_thread = std::thread([this] { impl_->accept_loop(); });
    impl_->restart_thread = std::thread([this] { impl_->restart_loop(); });
    return port;
}

void server::stop() {
    if (!impl_ || impl_->stopping.exchange(true))
        return;
    {
        std::lock_guard lk(impl_->restart_mu);
        impl_->restart_cv.notify_all();
    }
    if (impl_->restart_thread.joinable())
        impl_->restart_thread.join();
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
