#include "engine/gzip/member_decompressor.hpp"
#include "engine/gzip/member_splitter.hpp"
#include "engine/gzip/stream_inflater.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace podpipe::gzip {
namespace {

using test::as_span;
using test::bytes;

struct split_outcome {
    std::vector<bytes> members;
    head_kind stop = head_kind::need_more;
    bytes rest; ///< pending() + unconsumed input once stopped
    std::error_code error;
};

/// Feeds `stream` to a splitter in pieces whose sizes come from next_size().
template <class NextSize>
split_outcome split(std::span<const std::byte> stream, NextSize next_size,
                    std::size_t max_member = member_splitter::default_max_member_bytes) {
    member_splitter sp(max_member);
    split_outcome o;
    std::size_t off = 0;
    while (off < stream.size()) {
        const std::size_t n = std::min(next_size(), stream.size() - off);
        std::span<const std::byte> in = stream.subspan(off, n);
        auto k = sp.feed(in, [&](std::span<const std::byte> m, const head_info& h) {
            EXPECT_EQ(m.size(), h.member_bytes);
            o.members.emplace_back(m.begin(), m.end());
        });
        if (!k) {
            o.error = k.error();
            return o;
        }
        if (*k == head_kind::foreign_gzip || *k == head_kind::not_gzip) {
            o.stop = *k;
            const auto p = sp.pending();
            o.rest.assign(p.begin(), p.end());
            o.rest.insert(o.rest.end(), in.begin(), in.end());
            o.rest.insert(o.rest.end(), stream.begin() + static_cast<long>(off + n), stream.end());
            return o;
        }
        EXPECT_EQ(*k, head_kind::need_more);
        EXPECT_TRUE(in.empty());
        off += n;
    }
    if (auto f = sp.finish(); !f)
        o.error = f.error();
    return o;
}

bytes inflate_members(const std::vector<bytes>& members) {
    member_decompressor d;
    bytes out;
    for (const auto& m : members) {
        auto h = inspect_head(as_span(m));
        EXPECT_TRUE(h && h->kind == head_kind::podpipe_member);
        const std::size_t at = out.size();
        out.resize(at + h->uncompressed_bytes);
        auto n = d.decompress(as_span(m), std::span(out).subspan(at));
        EXPECT_TRUE(n.has_value()) << (n ? "" : n.error().message());
    }
    return out;
}

class gzip_member_splitter : public ::testing::Test {
protected:
    bytes input_ = test::text_bytes(300000);
    bytes stream_ = test::compress_stream(as_span(input_), 20000, 6); // 15 members
};

TEST_F(gzip_member_splitter, whole_stream_at_once) {
    auto o = split(as_span(stream_), [] { return std::size_t{1} << 30; });
    EXPECT_FALSE(o.error);
    EXPECT_EQ(o.members.size(), 15u);
    EXPECT_EQ(inflate_members(o.members), input_);
}

TEST_F(gzip_member_splitter, one_byte_at_a_time) {
    auto o = split(as_span(stream_), [] { return std::size_t{1}; });
    EXPECT_FALSE(o.error);
    EXPECT_EQ(o.members.size(), 15u);
    EXPECT_EQ(inflate_members(o.members), input_);
}

TEST_F(gzip_member_splitter, random_splits) {
    for (std::uint32_t seed = 0; seed < 30; ++seed) {
        std::mt19937 rng(seed);
        const std::size_t max_piece = std::size_t{1} << (rng() % 17);
        auto o = split(as_span(stream_), [&] { return 1 + rng() % max_piece; });
        EXPECT_FALSE(o.error) << seed;
        ASSERT_EQ(o.members.size(), 15u) << seed;
        EXPECT_EQ(inflate_members(o.members), input_) << seed;
    }
}

TEST_F(gzip_member_splitter, zero_copy_when_member_fits) {
    member_splitter sp;
    std::span<const std::byte> in = as_span(stream_);
    auto it = sp.next(in);
    ASSERT_TRUE(it.has_value());
    ASSERT_EQ(it->kind, head_kind::podpipe_member);
    EXPECT_EQ(it->member.data(), stream_.data());
    EXPECT_EQ(in.data(), stream_.data() + it->member.size());
}

TEST_F(gzip_member_splitter, empty_member_and_padding) {
    member_compressor c(6);
    bytes s = test::compress_member(c, {});
    s.insert(s.end(), stream_.begin(), stream_.end());
    s.resize(s.size() + 512); // zero padding after the last member
    for (std::size_t step : {std::size_t{1}, std::size_t{333}, std::size_t{1} << 20}) {
        auto o = split(as_span(s), [&] { return step; });
        EXPECT_FALSE(o.error) << step;
        EXPECT_EQ(o.members.size(), 16u);
        EXPECT_EQ(inflate_members(o.members), input_);
    }
    s.push_back(std::byte{1}); // garbage after padding
    EXPECT_EQ(split(as_span(s), [] { return std::size_t{4096}; }).error, errc::bad_header);
}

TEST_F(gzip_member_splitter, truncated) {
    for (std::size_t n :
         {std::size_t{0}, std::size_t{1}, std::size_t{23}, std::size_t{100}, stream_.size() - 1}) {
        auto o = split(as_span(stream_).first(n), [] { return std::size_t{777}; });
        EXPECT_EQ(o.error, errc::truncated) << n;
    }
}

TEST_F(gzip_member_splitter, too_large) {
    auto o = split(
        as_span(stream_), [] { return std::size_t{100}; }, 1000);
    EXPECT_EQ(o.error, errc::too_large);
    EXPECT_EQ(o.error, condition::fatal);
}

TEST_F(gzip_member_splitter, bad_header_is_sticky) {
    bytes s = stream_;
    s[2] = std::byte{9};
    member_splitter sp;
    std::span<const std::byte> in = as_span(s);
    auto r = sp.next(in);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::bad_header);
    EXPECT_EQ(sp.next(in).error(), errc::bad_header);
    EXPECT_EQ(sp.finish().error(), errc::bad_header);
    sp.reset();
    in = as_span(stream_);
    r = sp.next(in);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->kind, head_kind::podpipe_member);
}

// Our members then a foreign member: the splitter yields ours, stops at the foreign one, and
// pending() + rest decodes serially, for every split.
TEST_F(gzip_member_splitter, switch_to_serial_on_foreign_member) {
    const bytes tail_in = test::text_bytes(30000, 9);
    const bytes ours = test::compress_stream(as_span(tail_in), 1 << 20, 6);
    bytes foreign(ours.begin(), ours.begin() + 10); // same member, subfield stripped
    foreign[3] = std::byte{0};
    foreign.insert(foreign.end(), ours.begin() + 24, ours.end());
    bytes s = stream_;
    s.insert(s.end(), foreign.begin(), foreign.end());
    s.insert(s.end(), stream_.begin(), stream_.begin() + 2000); // more after it, any bytes

    for (std::uint32_t seed = 0; seed < 20; ++seed) {
        std::mt19937 rng(seed);
        auto o = split(as_span(s), [&] { return 1 + rng() % (seed < 3 ? 1 : 70000); });
        ASSERT_FALSE(o.error) << seed;
        EXPECT_EQ(o.stop, head_kind::foreign_gzip);
        EXPECT_EQ(o.members.size(), 15u);
        ASSERT_EQ(o.rest.size(), foreign.size() + 2000) << seed;
        EXPECT_TRUE(std::equal(foreign.begin(), foreign.end(), o.rest.begin()));
    }
}

TEST(gzip_member_splitter_kinds, not_gzip_and_foreign_at_start) {
    const bytes tar_like = test::text_bytes(1000);
    auto o = split(as_span(tar_like), [] { return std::size_t{1}; });
    EXPECT_EQ(o.stop, head_kind::not_gzip);
    EXPECT_EQ(o.rest, tar_like);

    const bytes gz = {std::byte{0x1f}, std::byte{0x8b}, std::byte{8}, std::byte{0},
                      std::byte{0},    std::byte{0},    std::byte{0}, std::byte{0},
                      std::byte{0},    std::byte{3},    std::byte{3}, std::byte{0}};
    for (std::size_t step : {std::size_t{1}, std::size_t{5}, std::size_t{100}}) {
        auto f = split(as_span(gz), [&] { return step; });
        EXPECT_EQ(f.stop, head_kind::foreign_gzip);
        EXPECT_EQ(f.rest, gz);
    }
    // A zero byte first is not padding (no member yet): not gzip.
    const bytes zeros(100);
    EXPECT_EQ(split(as_span(zeros), [] { return std::size_t{10}; }).stop, head_kind::not_gzip);
}

TEST(gzip_member_splitter_kinds, callback_can_pause) {
    const bytes input = test::text_bytes(10000);
    const bytes s = test::compress_stream(as_span(input), 1000, 1);
    member_splitter sp;
    std::span<const std::byte> in = as_span(s);
    int calls = 0;
    auto k = sp.feed(in, [&](std::span<const std::byte>, const head_info&) {
        ++calls;
        return false;
    });
    ASSERT_TRUE(k.has_value());
    EXPECT_EQ(*k, head_kind::podpipe_member);
    EXPECT_EQ(calls, 1);
    k = sp.feed(in, [&](std::span<const std::byte>, const head_info&) { return true; });
    ASSERT_TRUE(k.has_value());
    EXPECT_EQ(*k, head_kind::need_more);
    EXPECT_EQ(sp.members(), 10u);
    EXPECT_TRUE(sp.finish().has_value());
}

} // namespace
} // namespace podpipe::gzip
