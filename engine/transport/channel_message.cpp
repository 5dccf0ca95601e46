#include "engine/transport/channel_message.hpp"

#include "engine/transport/error.hpp"

namespace podpipe::transport {

result<channel_message_view> parse_channel_message(std::span<const std::byte> message,
                                                   bool is_text, std::size_t max_message_bytes) {
    if (is_text || message.empty())
        return fail(errc::bad_message);
    if (max_message_bytes != 0 && message.size() > max_message_bytes)
        return fail(errc::message_too_large);
    return channel_message_view{std::to_integer<std::uint8_t>(message[0]), message.subspan(1)};
}

bool is_close_channel_message(std::span<const std::byte> message, std::uint8_t& channel) noexcept {
    if (message.size() != 2 || std::to_integer<std::uint8_t>(message[0]) != close_channel_id)
        return false;
    channel = std::to_integer<std::uint8_t>(message[1]);
    return true;
}

} // namespace podpipe::transport
