#include "test_client.hpp"

#include <stdexcept>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace podpipe::kubesim::testing {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace websocket = boost::beast::websocket;
using tcp = net::ip::tcp;

namespace {

void connect_tls(ssl::stream<tcp::socket>& s, int port) {
    s.next_layer().connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    s.set_verify_mode(ssl::verify_peer);
    s.handshake(ssl::stream_base::client);
}

std::unique_ptr<ssl::context> make_context(const std::string& ca_file) {
    auto ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    ctx->load_verify_file(ca_file);
    return ctx;
}

} // namespace

http_reply https_request(int port, const std::string& ca_file, const std::string& token,
                         const std::string& method, const std::string& target, const std::string& body,
                         const std::map<std::string, std::string>& headers) {
    net::io_context ioc;
    auto ctx = make_context(ca_file);
    ssl::stream<tcp::socket> s(ioc, *ctx);
    connect_tls(s, port);
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    if (!token.empty())
        req.set(http::field::authorization, "Bearer " + token);
    for (const auto& [k, v] : headers)
        req.set(k, v);
    if (!body.empty() && headers.find("Content-Type") == headers.end())
        req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.keep_alive(false);
    req.prepare_payload();
    http::write(s, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256 * 1024 * 1024);
    beast::error_code rec;
    http::read(s, buf, parser, rec);
    if (rec == net::ssl::error::stream_truncated && parser.is_header_done())
        parser.put_eof(rec); // a close-delimited body (HTTP/1.0 431) ended by a TCP FIN
    if (rec)
        throw beast::system_error(rec);
    auto res = parser.release();
    http_reply r;
    r.status = static_cast<int>(res.result_int());
    for (const auto& f : res) {
        std::string name(f.name_string());
        for (auto& c : name)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto [it, fresh] = r.headers.try_emplace(name, std::string(f.value()));
        if (!fresh) // a repeated header (Warning): combined as HTTP allows
            it->second += ", " + std::string(f.value());
    }
    r.body = res.body();
    beast::error_code ec;
    s.next_layer().close(ec);
    return r;
}

struct ws_exec_client::impl {
    int port;
    std::string ca_file, token;
    net::io_context ioc;
    std::unique_ptr<ssl::context> ctx;
    std::unique_ptr<websocket::stream<ssl::stream<tcp::socket>>> ws;
    std::string protocol, body;
    int pongs = 0;
    beast::flat_buffer buf;
};

ws_exec_client::ws_exec_client(int port, std::string ca_file, std::string token)
    : impl_(std::make_unique<impl>()) {
    impl_->port = port;
    impl_->ca_file = std::move(ca_file);
    impl_->token = std::move(token);
}

ws_exec_client::~ws_exec_client() = default;

int ws_exec_client::open(const std::string& target, const std::string& protocols) {
    auto& d = *impl_;
    d.ctx = make_context(d.ca_file);
    d.ws = std::make_unique<websocket::stream<ssl::stream<tcp::socket>>>(d.ioc, *d.ctx);
    connect_tls(d.ws->next_layer(), d.port);
    d.ws->set_option(websocket::stream_base::decorator([&d, protocols](websocket::request_type& req) {
        req.set(http::field::authorization, "Bearer " + d.token);
        if (!protocols.empty())
            req.set(http::field::sec_websocket_protocol, protocols);
    }));
    d.ws->control_callback([&d](websocket::frame_type kind, beast::string_view) {
        if (kind == websocket::frame_type::pong)
            ++d.pongs;
    });
    d.ws->read_message_max(64 * 1024 * 1024);
    d.ws->binary(true);
    websocket::response_type res;
    beast::error_code ec;
    d.ws->handshake(res, "127.0.0.1", target, ec);
    d.protocol = std::string(res[http::field::sec_websocket_protocol]);
    d.body = res.body();
    if (ec && res.result_int() == 101)
        throw std::runtime_error("websocket handshake: " + ec.message());
    return static_cast<int>(res.result_int());
}

const std::string& ws_exec_client::protocol() const { return impl_->protocol; }
const std::string& ws_exec_client::body() const { return impl_->body; }

void ws_exec_client::send(std::string_view bytes) {
    impl_->ws->binary(true);
    impl_->ws->write(net::buffer(bytes.data(), bytes.size()));
}

void ws_exec_client::ping() { impl_->ws->ping({}); }
int ws_exec_client::pongs() const { return impl_->pongs; }

ws_exec_client::message ws_exec_client::read() {
    auto& d = *impl_;
    message m;
    beast::error_code ec;
    d.buf.clear();
    d.ws->read(d.buf, ec);
    if (ec == websocket::error::closed) {
        m.closed = true;
        m.close_code = d.ws->reason().code;
        return m;
    }
    if (ec) {
        m.closed = true;
        m.eof = true;
        return m;
    }
    m.data = beast::buffers_to_string(d.buf.data());
    return m;
}

void ws_exec_client::close() {
    if (impl_->ws && impl_->ws->is_open()) {
        beast::error_code ec;
        impl_->ws->close(websocket::close_code::normal, ec);
    }
}

} // namespace podpipe::kubesim::testing
