#include "engine/transport/channel_message.hpp"

#include "engine/common/error.hpp"
#include "engine/transport/error.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace podpipe::transport {
namespace {

std::vector<std::byte> bytes(std::initializer_list<int> v) {
    std::vector<std::byte> out;
    for (int b : v)
        out.push_back(std::byte(b));
    return out;
}

TEST(channel_message, splits_channel_and_data) {
    const auto m = bytes({1, 'a', 'b'});
    auto r = parse_channel_message(m);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->channel, 1);
    EXPECT_EQ(r->data.size(), 2u);
}

TEST(channel_message, channel_only_is_zero_bytes_not_end) {
    const auto m = bytes({1});
    auto r = parse_channel_message(m);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->data.empty());
}

TEST(channel_message, rejects_empty_text_and_oversized) {
    EXPECT_EQ(parse_channel_message({}).error(), errc::bad_message);
    const auto m = bytes({1, 2, 3});
    EXPECT_EQ(parse_channel_message(m, true).error(), errc::bad_message);
    EXPECT_EQ(parse_channel_message(m, false, 2).error(), errc::message_too_large);
    EXPECT_EQ(parse_channel_message({}).error(), condition::bad_input);
}

TEST(channel_message, close_channel_bytes) {
    const auto m = make_close_channel_message(0);
    EXPECT_EQ(m[0], std::byte{0xFF});
    EXPECT_EQ(m[1], std::byte{0x00});
    std::uint8_t ch = 9;
    EXPECT_TRUE(is_close_channel_message(m, ch));
    EXPECT_EQ(ch, 0);
    const auto longer = bytes({0xFF, 0, 0});
    EXPECT_FALSE(is_close_channel_message(longer, ch));
}

TEST(transport_errc, conditions) {
    EXPECT_EQ(make_error_code(errc::connection_reset), condition::retryable);
    EXPECT_EQ(make_error_code(errc::connection_reset), condition::peer_closed);
    EXPECT_EQ(make_error_code(errc::timeout), condition::retryable);
    EXPECT_EQ(make_error_code(errc::abrupt_close), condition::peer_closed);
    EXPECT_EQ(make_error_code(errc::certificate_rejected), condition::fatal);
    EXPECT_NE(make_error_code(errc::certificate_rejected), condition::retryable);
}

} // namespace
} // namespace podpipe::transport
