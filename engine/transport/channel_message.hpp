// The byte framing of a channel-multiplexed WebSocket: every message is one binary frame whose
// first payload byte is the channel id and whose remaining bytes are that channel's data (an
// empty remainder is legal: zero bytes of data, never end of stream). A 2-byte message
// {close_channel_id, id} asks the peer to half-close channel `id`.
// Pure functions on bytes, no I/O: this is the demultiplexer the fuzz target exercises.
#pragma once

#include "engine/common/result.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace podpipe::transport {

/// The channel id reserved for "close channel" control messages.
inline constexpr std::uint8_t close_channel_id = 0xFF;

/// One received message split into channel and data. `data` views the caller's buffer and is
/// valid only as long as that buffer.
struct channel_message_view {
    std::uint8_t channel = 0;
    std::span<const std::byte> data;
};

/// Splits a received message. Errors: errc::bad_message for an empty message (no channel byte)
/// or a text frame (`is_text`), errc::message_too_large above `max_message_bytes` (0 = no cap).
result<channel_message_view> parse_channel_message(std::span<const std::byte> message,
                                                   bool is_text = false,
                                                   std::size_t max_message_bytes = 0);

/// If `message` is a close-channel request ({0xFF, id}, exactly 2 bytes) returns true and sets
/// `channel`; any other message on channel 0xFF is not a close request (returns false).
bool is_close_channel_message(std::span<const std::byte> message, std::uint8_t& channel) noexcept;

/// The 2 bytes asking the peer to half-close `channel`.
inline std::array<std::byte, 2> make_close_channel_message(std::uint8_t channel) noexcept {
    return {std::byte{close_channel_id}, std::byte{channel}};
}

} // namespace podpipe::transport
