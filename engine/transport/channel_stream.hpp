// Adapters that let a pipeline write into and read from one channel of a channel_socket:
// channel_sink (e.g. a remote process's input channel) and channel_source (its output channel).
// Both only borrow the socket, which must outlive them.
#pragma once

#include "engine/pipeline/byte_stream.hpp"
#include "engine/transport/channel_socket.hpp"

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace podpipe::transport {

/// write() sends bytes on `channel` (blocking under the socket's backpressure). finish()
/// waits until everything is on the socket and, when `half_close_on_finish`, then sends the
/// close-channel message for `channel` (only when the negotiated protocol supports it).
class channel_sink final : public pipeline::byte_sink {
public:
    channel_sink(channel_socket& socket, std::uint8_t channel, bool half_close_on_finish) noexcept
        : socket_(socket)
        , channel_(channel)
        , half_close_(half_close_on_finish) {}

    result<void> write(std::span<const std::byte> bytes) override;
    result<void> finish() override;

private:
    channel_socket& socket_;
    std::uint8_t channel_;
    bool half_close_;
};

/// Handles a message on a channel other than the source's (stderr, status, ...). Returning an
/// error stops the source with that error.
using other_channel_handler = std::function<result<void>(std::uint8_t, std::span<const std::byte>)>;

/// read() returns the bytes of `channel` in order, skipping empty messages (they carry no
/// data and do not end the stream). Messages for other channels go to `others` (dropped when it
/// is empty). End of stream (0) is the peer's close frame; whether that close was a success is
/// for the caller to judge (channel_socket::peer_close(), a status channel). This source is the
/// socket's only reader.
class channel_source final : public pipeline::byte_source {
public:
    channel_source(channel_socket& socket, std::uint8_t channel, other_channel_handler others = {})
        : socket_(socket)
        , channel_(channel)
        , others_(std::move(others)) {}

    result<std::size_t> read(std::span<std::byte> into) override;

private:
    channel_socket& socket_;
    std::uint8_t channel_;
    other_channel_handler others_;
    std::vector<std::byte> pending_; ///< the unread rest of the current message
    std::size_t pending_pos_ = 0;
};

} // namespace podpipe::transport
