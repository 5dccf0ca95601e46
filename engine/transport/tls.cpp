// The TLS context and the connect sequence shared by http_client and channel_socket.
#include "engine/transport/tls.hpp"

#include "engine/transport/detail/net.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <vector>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/websocket/error.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

namespace podpipe::transport {

namespace ssl = boost::asio::ssl;

tls_context::tls_context(std::unique_ptr<impl> i) : impl_(std::move(i)) {}

tls_context::~tls_context() = default;

const tls_config& tls_context::config() const noexcept { return impl_->config; }

result<std::unique_ptr<tls_context>> tls_context::create(const tls_config& config) {
    if (config.client_cert_pem.empty() != config.client_key_pem.empty())
        return fail(errc::bad_argument);
    auto i = std::make_unique<impl>(config);
    boost::system::error_code ec;
    i->ssl.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                           ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                           ssl::context::no_tlsv1_1,
                       ec);
    if (config.ca_pem.empty())
        i->ssl.set_default_verify_paths(ec);
    else
        i->ssl.add_certificate_authority(boost::asio::buffer(config.ca_pem), ec);
    if (ec)
        return fail(errc::bad_argument);
    if (!config.client_cert_pem.empty()) {
        i->ssl.use_certificate_chain(boost::asio::buffer(config.client_cert_pem), ec);
        if (!ec)
            i->ssl.use_private_key(boost::asio::buffer(config.client_key_pem),
                                   ssl::context::pem, ec);
        if (ec)
            return fail(errc::bad_argument);
    }
    i->ssl.set_verify_mode(config.verify ? ssl::verify_peer : ssl::verify_none, ec);
    // HTTP/1.1 only (Beast speaks no h2): offer exactly that, so no server selects h2.
    static constexpr unsigned char alpn[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_CTX_set_alpn_protos(i->ssl.native_handle(), alpn, sizeof alpn);
    return std::unique_ptr<tls_context>(new tls_context(std::move(i))); // NOLINT: private ctor
}

namespace detail {

std::error_code map_error(const beast::error_code& ec, phase p, std::string& detail) {
    if (!detail.empty())
        detail += "; ";
    detail += ec.message();
    namespace aerr = boost::asio::error;
    if (ec == beast::error::timeout || ec == aerr::operation_aborted || ec == aerr::timed_out)
        return errc::timeout;
    if (p == phase::resolve)
        return errc::resolve_failed;
    if (p == phase::connect)
        return errc::connect_failed;
    const bool lost = ec == aerr::eof || ec == aerr::connection_reset ||
                      ec == aerr::broken_pipe || ec == aerr::connection_aborted ||
                      ec == aerr::not_connected || ec == aerr::bad_descriptor ||
                      ec == ssl::error::stream_truncated;
    if (lost)
        return p == phase::websocket ? errc::abrupt_close : errc::connection_reset;
    if (ec.category() == aerr::get_ssl_category()) {
        if (ERR_GET_REASON(static_cast<unsigned long>(ec.value())) ==
            SSL_R_CERTIFICATE_VERIFY_FAILED)
            return errc::certificate_rejected;
        return p == phase::handshake ? errc::tls_failed : errc::connection_reset;
    }
    if (ec == beast::http::error::end_of_stream)
        return errc::connection_reset;
    if (ec.category() == make_error_code(beast::http::error::end_of_stream).category())
        return errc::bad_response;
    if (ec == beast::websocket::error::closed)
        return errc::closed;
    if (ec == beast::websocket::error::message_too_big)
        return errc::message_too_large;
    if (ec.category() == make_error_code(beast::websocket::error::closed).category())
        return errc::bad_response;
    return p == phase::handshake ? errc::tls_failed : errc::connection_reset;
}

std::string host_header(std::string_view host, std::uint16_t port, std::uint16_t default_port) {
    std::string h;
    const bool v6 = host.find(':') != std::string_view::npos && !host.starts_with('[');
    if (v6)
        h += '[';
    h += host;
    if (v6)
        h += ']';
    if (port != default_port)
        h += ':' + std::to_string(port);
    return h;
}

stop_guard::stop_guard(asio::io_context& ioc, asio::ip::tcp::socket& socket, std::stop_token stop)
    : stop_(std::move(stop))
    , state_(std::make_shared<state>()) {
    state_->socket = &socket;
    if (!stop_.stop_possible())
        return;
    on_stop_.emplace(stop_, [&ioc, weak = std::weak_ptr<state>(state_)] {
        asio::post(ioc, [weak] {
            const auto s = weak.lock();
            if (!s || s->socket == nullptr)
                return;
            beast::error_code ignored;
            s->socket->close(ignored);
            if (s->resolver != nullptr)
                s->resolver->cancel();
        });
    });
}

stop_guard::~stop_guard() {
    on_stop_.reset(); // waits for a callback running on another thread; none starts after
    state_->socket = nullptr;
    state_->resolver = nullptr;
}

result<void> connect_tls(asio::io_context& ioc, tls_stream& stream, tls_context& ctx,
                         std::string_view host_in, std::uint16_t port,
                         std::chrono::milliseconds timeout, fault_injection* faults,
                         std::string& detail, std::stop_token stop) {
    std::string host(host_in);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    auto& tcp = beast::get_lowest_layer(stream);
    beast::error_code ec;
    stop_guard guard(ioc, tcp.socket(), std::move(stop));

    if (guard.stopped())
        return fail(errc::cancelled);
    if (inject(faults))
        return fail(errc::injected_fault);
    std::vector<asio::ip::tcp::endpoint> endpoints;
    boost::system::error_code addr_ec;
    const auto addr = asio::ip::make_address(host, addr_ec);
    if (!addr_ec) {
        endpoints.emplace_back(addr, port);
    } else {
        asio::ip::tcp::resolver resolver(ioc);
        asio::steady_timer timer(ioc);
        bool done = false;
        timer.expires_after(timeout);
        resolver.async_resolve(host, std::to_string(port),
                               [&](const beast::error_code& e, const auto& results) {
                                   ec = e;
                                   done = true;
                                   timer.cancel();
                                   for (const auto& r : results)
                                       endpoints.push_back(r.endpoint());
                               });
        timer.async_wait([&](const beast::error_code& e) {
            if (!e && !done)
                resolver.cancel();
        });
        guard.watch_resolver(&resolver);
        run_all(ioc);
        guard.watch_resolver(nullptr);
        if (guard.stopped())
            return fail(errc::cancelled);
        if (ec)
            return fail(map_error(ec, phase::resolve, detail));
        if (endpoints.empty())
            return fail(errc::resolve_failed);
    }

    if (guard.stopped())
        return fail(errc::cancelled);
    if (inject(faults))
        return fail(errc::injected_fault);
    tcp.expires_after(timeout);
    tcp.async_connect(endpoints, [&](const beast::error_code& e, const auto&) { ec = e; });
    run_all(ioc);
    if (guard.stopped())
        return fail(errc::cancelled);
    if (ec)
        return fail(map_error(ec, phase::connect, detail));
    tcp.socket().set_option(asio::ip::tcp::no_delay(true), ec);
    tcp.socket().set_option(asio::socket_base::keep_alive(true), ec);
    {
        // Keepalive is the dead-peer backstop when WebSocket pings are off (see
        // channel_socket::set_pings_enabled): probe after 30 s idle, give up after ~60 s.
        const int fd = tcp.socket().native_handle();
        const int idle_s = 30, interval_s = 10, probes = 3;
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof idle_s);
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof interval_s);
        (void)::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &probes, sizeof probes);
    }

    const auto& cfg = ctx.config();
    const std::string name = cfg.server_name.empty() ? host : cfg.server_name;
    SSL* native = stream.native_handle();
    (void)asio::ip::make_address(name, addr_ec);
    const bool name_is_ip = !addr_ec;
    if (!name_is_ip)
        SSL_set_tlsext_host_name(native, name.c_str());
    if (cfg.verify) {
        const int ok = name_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(native),
                                                                  name.c_str())
                                  : SSL_set1_host(native, name.c_str());
        if (ok != 1)
            return fail(errc::bad_argument);
    }

    if (guard.stopped())
        return fail(errc::cancelled);
    if (inject(faults))
        return fail(errc::injected_fault);
    stream.async_handshake(asio::ssl::stream_base::client,
                           [&](const beast::error_code& e) { ec = e; });
    run_all(ioc);
    if (guard.stopped())
        return fail(errc::cancelled);
    if (ec)
        return fail(map_error(ec, phase::handshake, detail));
    tcp.expires_never();
    return {};
}

} // namespace detail
} // namespace podpipe::transport
