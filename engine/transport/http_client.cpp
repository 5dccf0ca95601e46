#include "engine/transport/http_client.hpp"

#include "engine/transport/detail/net.hpp"

#include <algorithm>
#include <array>
#include <optional>
#include <strings.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

namespace podpipe::transport {

namespace http = boost::beast::http;
using detail::phase;

const std::string* find_header(const std::vector<http_header>& headers, std::string_view name) {
    for (const auto& h : headers)
        if (h.name.size() == name.size() &&
            ::strncasecmp(h.name.data(), name.data(), name.size()) == 0)
            return &h.value;
    return nullptr;
}

namespace {

using clock = std::chrono::steady_clock;

std::chrono::milliseconds remaining(clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
    return std::max(left, std::chrono::milliseconds(1));
}

http::request<http::string_body> build_request(const http_request& r, const std::string& host) {
    http::request<http::string_body> req;
    req.version(11);
    const auto verb = http::string_to_verb(r.method);
    if (verb == http::verb::unknown)
        req.method_string(r.method);
    else
        req.method(verb);
    req.target(r.target);
    req.set(http::field::host, host);
    for (const auto& h : r.headers) {
        if (::strcasecmp(h.name.c_str(), "Accept-Encoding") == 0 ||
            ::strcasecmp(h.name.c_str(), "Host") == 0)
            continue;
        req.insert(h.name, h.value);
    }
    req.keep_alive(true);
    if (!r.body.empty() || verb == http::verb::post || verb == http::verb::put ||
        verb == http::verb::patch) {
        req.body() = r.body;
        req.prepare_payload();
    }
    return req;
}

template <class Fields>
void copy_head(const http::response_header<Fields>& h, http_response& out) {
    out.status = h.result_int();
    out.reason = std::string(h.reason());
    out.headers.clear();
    for (const auto& f : h)
        out.headers.push_back({std::string(f.name_string()), std::string(f.value())});
}

} // namespace

struct http_client::impl {
    impl(tls_context& t, std::string h, std::uint16_t p, http_options o)
        : tls(t)
        , host(std::move(h))
        , port(p)
        , options(o)
        , host_value(detail::host_header(host, port, 443)) {}

    tls_context& tls;
    std::string host;
    std::uint16_t port;
    http_options options;
    std::string host_value;
    detail::asio::io_context ioc;
    std::optional<detail::tls_stream> stream;
    detail::beast::flat_buffer buffer;
    std::size_t connections = 0;
    std::string detail_text;
    std::stop_token stop; // the current call's

    // Runs the operation just started on `stream` to completion; false when `stop` ended it
    // (the socket is closed then: the caller drops the connection and reports cancelled).
    bool run_unless_stopped() {
        detail::stop_guard guard(ioc, detail::beast::get_lowest_layer(*stream).socket(), stop);
        detail::run_all(ioc);
        return !guard.stopped();
    }

    void drop() noexcept {
        if (stream) {
            detail::beast::error_code ec;
            detail::beast::get_lowest_layer(*stream).socket().close(ec);
            stream.reset();
        }
        buffer.clear();
        ioc.restart();
        ioc.poll(); // completes any cancelled handler before the stream's memory is reused
    }

    result<void> ensure_connected(clock::time_point deadline) {
        if (stream)
            return {};
        stream.emplace(ioc, tls.native().ssl);
        buffer.clear();
        ++connections;
        auto r = detail::connect_tls(ioc, *stream, tls, host, port,
                                     std::min(options.connect_timeout, remaining(deadline)),
                                     options.faults, detail_text, stop);
        if (!r) {
            drop();
            return r;
        }
        return {};
    }

    // Writes the request and reads the response head. `reused` tells the caller whether a
    // failure may be retried on a fresh connection (nothing of the response arrived).
    template <class Parser>
    result<void> send_and_read_head(const http::request<http::string_body>& req, Parser& parser,
                                    clock::time_point deadline, bool& retry_ok) {
        retry_ok = false;
        const bool reused = connections > 0 && stream.has_value();
        PODPIPE_TRY(ensure_connected(deadline));
        detail::beast::error_code ec;
        auto& tcp = detail::beast::get_lowest_layer(*stream);
        if (detail::inject(options.faults)) {
            drop();
            return fail(errc::injected_fault);
        }
        tcp.expires_after(remaining(deadline));
        http::async_write(*stream, req, [&](const detail::beast::error_code& e, std::size_t) {
            ec = e;
        });
        bool stopped = !run_unless_stopped();
        if (!ec && !stopped) {
            if (detail::inject(options.faults)) {
                drop();
                return fail(errc::injected_fault);
            }
            http::async_read_header(*stream, buffer, parser,
                                    [&](const detail::beast::error_code& e, std::size_t) {
                                        ec = e;
                                    });
            stopped = !run_unless_stopped();
        }
        if (stopped) {
            drop();
            return fail(errc::cancelled);
        }
        if (ec) {
            const auto code = detail::map_error(ec, phase::http, detail_text);
            retry_ok = reused && !parser.got_some() && code == errc::connection_reset;
            drop();
            return fail(code);
        }
        return {};
    }

    template <class Parser>
    result<void> read_rest(Parser& parser, std::chrono::milliseconds timeout) {
        detail::beast::error_code ec;
        if (detail::inject(options.faults)) {
            drop();
            return fail(errc::injected_fault);
        }
        detail::beast::get_lowest_layer(*stream).expires_after(timeout);
        http::async_read(*stream, buffer, parser,
                         [&](const detail::beast::error_code& e, std::size_t) { ec = e; });
        if (!run_unless_stopped()) {
            drop();
            return fail(errc::cancelled);
        }
        if (ec) {
            const auto code = detail::map_error(ec, phase::http, detail_text);
            drop();
            return fail(code);
        }
        return {};
    }

    void finish(bool keep_alive) {
        if (keep_alive && stream)
            detail::beast::get_lowest_layer(*stream).expires_never();
        else
            drop();
    }
};

http_client::http_client(tls_context& tls, std::string host, std::uint16_t port,
                         http_options options)
    : impl_(std::make_unique<impl>(tls, std::move(host), port, options)) {}

http_client::~http_client() { impl_->drop(); }

void http_client::disconnect() noexcept { impl_->drop(); }

std::size_t http_client::connections_opened() const noexcept { return impl_->connections; }

const std::string& http_client::last_error_detail() const noexcept { return impl_->detail_text; }

result<http_response> http_client::request(const http_request& r,
                                           std::chrono::milliseconds timeout,
                                           std::stop_token stop) {
    auto& i = *impl_;
    i.detail_text.clear();
    i.stop = std::move(stop);
    const auto deadline = clock::now() + timeout;
    const auto req = build_request(r, i.host_value);
    for (int attempt = 0;; ++attempt) {
        http::response_parser<http::string_body> parser;
        parser.header_limit(64 * 1024);
        parser.body_limit(i.options.max_body_bytes);
        bool retry_ok = false;
        auto head = i.send_and_read_head(req, parser, deadline, retry_ok);
        if (!head) {
            if (retry_ok && attempt == 0)
                continue;
            return fail(head.error());
        }
        if (!parser.is_done())
            PODPIPE_TRY(i.read_rest(parser, remaining(deadline)));
        http_response out;
        copy_head(parser.get().base(), out);
        out.body = std::move(parser.get().body());
        i.finish(parser.get().keep_alive());
        return out;
    }
}

result<http_response> http_client::request_streaming(const http_request& r,
                                                     std::chrono::milliseconds head_timeout,
                                                     std::chrono::milliseconds idle_timeout,
                                                     const body_callback& on_body,
                                                     std::stop_token stop) {
    auto& i = *impl_;
    i.detail_text.clear();
    i.stop = std::move(stop);
    const auto deadline = clock::now() + head_timeout;
    const auto req = build_request(r, i.host_value);
    for (int attempt = 0;; ++attempt) {
        http::response_parser<http::buffer_body> parser;
        parser.header_limit(64 * 1024);
        parser.body_limit(boost::none);
        bool retry_ok = false;
        auto head = i.send_and_read_head(req, parser, deadline, retry_ok);
        if (!head) {
            if (retry_ok && attempt == 0)
                continue;
            return fail(head.error());
        }
        http_response out;
        copy_head(parser.get().base(), out);
        if (out.status < 200 || out.status > 299) {
            http::response_parser<http::string_body> whole(std::move(parser));
            whole.body_limit(i.options.max_body_bytes);
            if (!whole.is_done())
                PODPIPE_TRY(i.read_rest(whole, idle_timeout));
            out.body = std::move(whole.get().body());
            i.finish(whole.get().keep_alive());
            return out;
        }
        std::array<char, 64 * 1024> piece{};
        while (!parser.is_done()) {
            parser.get().body().data = piece.data();
            parser.get().body().size = piece.size();
            detail::beast::error_code ec;
            if (detail::inject(i.options.faults)) {
                i.drop();
                return fail(errc::injected_fault);
            }
            detail::beast::get_lowest_layer(*i.stream).expires_after(idle_timeout);
            // read_some: hand over what arrived (a watch event, a log line) instead of
            // waiting until the 64 KiB piece is full or the body ends.
            http::async_read_some(*i.stream, i.buffer, parser,
                                  [&](const detail::beast::error_code& e, std::size_t) { ec = e; });
            if (!i.run_unless_stopped()) {
                i.drop();
                return fail(errc::cancelled);
            }
            if (ec == http::error::need_buffer)
                ec = {};
            if (ec) {
                const auto code = detail::map_error(ec, phase::http, i.detail_text);
                i.drop();
                return fail(code);
            }
            const std::size_t got = piece.size() - parser.get().body().size;
            if (got != 0 &&
                !on_body(std::as_bytes(std::span<const char>(piece.data(), got)))) {
                i.drop();
                return out;
            }
        }
        i.finish(parser.get().keep_alive());
        return out;
    }
}

} // namespace podpipe::transport
