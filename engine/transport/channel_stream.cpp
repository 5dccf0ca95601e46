#include "engine/transport/channel_stream.hpp"

#include <algorithm>
#include <cstring>

namespace podpipe::transport {

result<void> channel_sink::write(std::span<const std::byte> bytes) {
    if (bytes.empty())
        return {};
    return socket_.write(channel_, bytes);
}

result<void> channel_sink::finish() {
    PODPIPE_TRY(socket_.flush());
    if (half_close_)
        return socket_.close_channel(channel_);
    return {};
}

result<std::size_t> channel_source::read(std::span<std::byte> into) {
    if (into.empty())
        return std::size_t{0};
    while (pending_pos_ == pending_.size()) {
        auto next = socket_.read();
        if (!next)
            return fail(next.error());
        if (!next->has_value())
            return std::size_t{0};
        channel_message& m = **next;
        if (m.channel != channel_) {
            if (others_)
                PODPIPE_TRY(others_(m.channel, m.data));
            continue;
        }
        pending_ = std::move(m.data);
        pending_pos_ = 0;
    }
    const std::size_t n = std::min(into.size(), pending_.size() - pending_pos_);
    std::memcpy(into.data(), pending_.data() + pending_pos_, n);
    pending_pos_ += n;
    return n;
}

} // namespace podpipe::transport
