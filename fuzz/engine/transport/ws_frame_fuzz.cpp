// libFuzzer target for what engine/transport parses from the network: the channel demux of
// received messages (parse_channel_message, is_close_channel_message), the WebSocket frame
// reader configured as channel_socket configures it (client role, binary, no deflate, a
// message cap), fed the input as raw server bytes after a real handshake, and the HTTP
// response parser with http_client's limits.
#include "engine/transport/channel_message.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using namespace podpipe::transport;

constexpr std::size_t max_message_bytes = 64 * 1024;

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

void demux(std::span<const std::byte> message, bool is_text) {
    auto r = parse_channel_message(message, is_text, max_message_bytes);
    if (is_text || message.empty()) {
        check(!r);
        return;
    }
    if (message.size() > max_message_bytes) {
        check(!r);
        return;
    }
    check(r.has_value());
    check(r->channel == std::to_integer<std::uint8_t>(message[0]));
    check(r->data.size() == message.size() - 1);
    std::uint8_t ch = 0;
    if (is_close_channel_message(message, ch))
        check(message.size() == 2 && ch == std::to_integer<std::uint8_t>(message[1]));
}

// The input split into messages by a 1-byte length prefix, as a sequence of demux calls.
void fuzz_demux(std::span<const std::byte> in) {
    while (!in.empty()) {
        const std::size_t n = std::min<std::size_t>(std::to_integer<std::size_t>(in[0]), in.size() - 1);
        demux(in.subspan(1, n), (std::to_integer<unsigned>(in[0]) & 0x80) != 0 && n % 7 == 0);
        in = in.subspan(1 + n);
    }
}

// A client WebSocket over an in-memory stream; the server side completes the handshake, then
// the fuzz input arrives as raw bytes from the server.
void fuzz_frames(std::span<const std::byte> in) {
    asio::io_context ioc;
    websocket::stream<beast::test::stream, false> client(ioc);
    websocket::stream<beast::test::stream, false> server(ioc);
    client.next_layer().connect(server.next_layer());
    beast::error_code cec, sec;
    client.async_handshake("localhost", "/", [&](beast::error_code e) { cec = e; });
    server.async_accept([&](beast::error_code e) { sec = e; });
    ioc.run();
    if (cec || sec)
        return;
    client.read_message_max(max_message_bytes);
    client.auto_fragment(false);
    client.binary(true);
    server.next_layer().append(
        beast::string_view(reinterpret_cast<const char*>(in.data()), in.size()));
    server.next_layer().close(); // EOF after the input
    beast::flat_buffer buffer;
    for (int i = 0; i < 1000; ++i) {
        beast::error_code ec;
        bool done = false;
        buffer.clear();
        client.async_read(buffer, [&](beast::error_code e, std::size_t) {
            ec = e;
            done = true;
        });
        ioc.restart();
        ioc.run();
        if (!done || ec)
            return;
        const auto b = buffer.cdata();
        demux(std::span<const std::byte>(static_cast<const std::byte*>(b.data()), b.size()),
              client.got_text());
    }
}

void fuzz_http(std::span<const std::byte> in) {
    http::response_parser<http::string_body> parser;
    parser.header_limit(64 * 1024);
    parser.body_limit(1 << 20);
    parser.eager(true);
    beast::error_code ec;
    std::size_t pos = 0;
    while (pos < in.size() && !parser.is_done()) {
        const std::size_t used = parser.put(
            asio::buffer(reinterpret_cast<const char*>(in.data()) + pos, in.size() - pos), ec);
        if (ec == http::error::need_more)
            break;
        if (ec)
            return;
        if (used == 0)
            break;
        pos += used;
    }
    if (!parser.is_done()) {
        parser.put_eof(ec);
        return;
    }
    const auto& res = parser.get();
    (void)res.result_int();
    for (const auto& f : res)
        (void)f.value();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);
    if (in.empty())
        return 0;
    switch (std::to_integer<unsigned>(in[0]) % 3) {
    case 0:
        fuzz_demux(in.subspan(1));
        break;
    case 1:
        fuzz_frames(in.subspan(1));
        break;
    default:
        fuzz_http(in.subspan(1));
        break;
    }
    return 0;
}
