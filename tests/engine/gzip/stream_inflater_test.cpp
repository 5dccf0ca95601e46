#include "engine/gzip/stream_inflater.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace podpipe::gzip {
namespace {

using test::as_span;
using test::bytes;

struct inflate_outcome {
    bytes out;
    std::error_code error; ///< from inflate() or finish()
};

/// Feeds `in` in pieces of in_step bytes with an out_step-byte output window, drains, finishes.
inflate_outcome inflate_all(std::span<const std::byte> in, std::size_t in_step,
                            std::size_t out_step) {
    stream_inflater inf;
    inflate_outcome o;
    bytes window(out_step);
    std::size_t off = 0;
    for (;;) {
        const auto piece = in.subspan(off, std::min(in_step, in.size() - off));
        auto r = inf.inflate(piece, window);
        if (!r) {
            o.error = r.error();
            return o;
        }
        if (!piece.empty() && r->consumed == 0 && r->produced == 0) {
            ADD_FAILURE() << "no progress at offset " << off;
            return o;
        }
        o.out.insert(o.out.end(), window.begin(),
                     window.begin() + static_cast<std::ptrdiff_t>(r->produced));
        off += r->consumed;
        if (off == in.size() && r->produced < window.size())
            break;
        if (r->consumed == 0 && r->produced == 0 && piece.empty())
            break;
    }
    if (auto f = inf.finish(); !f)
        o.error = f.error();
    return o;
}

TEST(gzip_stream_inflater, our_stream_various_feeds) {
    const bytes in = test::text_bytes(700000);
    const bytes gz = test::compress_stream(as_span(in), 100000, 6);
    for (auto [in_step, out_step] : {std::pair<std::size_t, std::size_t>{1 << 20, 1 << 20},
                                     {4096, 1000},
                                     {1, 65536},
                                     {65536, 1},
                                     {7, 13}}) {
        if (out_step == 1 && in_step == 65536) {
            // 700k single-byte output steps are slow under ASan; use a smaller prefix stream.
            const bytes small_in = test::text_bytes(20000);
            const bytes small = test::compress_stream(as_span(small_in), 3000, 6);
            auto o = inflate_all(as_span(small), in_step, out_step);
            EXPECT_FALSE(o.error) << o.error.message();
            EXPECT_EQ(o.out, small_in);
            continue;
        }
        auto o = inflate_all(as_span(gz), in_step, out_step);
        EXPECT_FALSE(o.error) << in_step << "/" << out_step << " " << o.error.message();
        EXPECT_EQ(o.out, in) << in_step << "/" << out_step;
    }
}

TEST(gzip_stream_inflater, one_byte_feeding_multi_member) {
    const bytes in = test::text_bytes(50000);
    const bytes gz = test::compress_stream(as_span(in), 7000, 1);
    stream_inflater inf;
    bytes out;
    bytes window(4096);
    for (std::size_t i = 0; i < gz.size(); ++i) {
        std::span<const std::byte> piece = as_span(gz).subspan(i, 1);
        while (!piece.empty()) {
            auto r = inf.inflate(piece, window);
            ASSERT_TRUE(r.has_value()) << r.error().message();
            out.insert(out.end(), window.begin(), window.begin() + static_cast<long>(r->produced));
            piece = piece.subspan(r->consumed);
        }
    }
    for (;;) { // drain
        auto r = inf.inflate({}, window);
        ASSERT_TRUE(r.has_value());
        out.insert(out.end(), window.begin(), window.begin() + static_cast<long>(r->produced));
        if (r->produced < window.size())
            break;
    }
    EXPECT_TRUE(inf.finish().has_value());
    EXPECT_EQ(out, in);
    EXPECT_EQ(inf.members_completed(), 8u);
}

TEST(gzip_stream_inflater, trailing_zeros_accepted) {
    const bytes in = test::text_bytes(5000);
    bytes gz = test::compress_stream(as_span(in), 5000, 6);
    gz.resize(gz.size() + 10240); // record padding
    auto o = inflate_all(as_span(gz), 3000, 4096);
    EXPECT_FALSE(o.error) << o.error.message();
    EXPECT_EQ(o.out, in);
}

TEST(gzip_stream_inflater, trailing_garbage_rejected) {
    const bytes in = test::text_bytes(5000);
    for (const bytes& tail : {bytes{std::byte{'x'}}, bytes{std::byte{0}, std::byte{1}},
                              bytes{std::byte{0x1f}, std::byte{0x8c}, std::byte{0}}}) {
        bytes gz = test::compress_stream(as_span(in), 5000, 6);
        gz.insert(gz.end(), tail.begin(), tail.end());
        gz.resize(gz.size() + 20);
        auto o = inflate_all(as_span(gz), 1 << 20, 1 << 20);
        EXPECT_EQ(o.error, errc::bad_header) << o.error.message();
    }
}

TEST(gzip_stream_inflater, lone_magic_byte_at_end_is_truncated) {
    const bytes in = test::text_bytes(5000);
    bytes gz = test::compress_stream(as_span(in), 5000, 6);
    gz.push_back(std::byte{0x1f});
    auto o = inflate_all(as_span(gz), 1 << 20, 1 << 20);
    EXPECT_EQ(o.error, errc::truncated);
}

TEST(gzip_stream_inflater, truncated_and_empty) {
    const bytes in = test::text_bytes(50000);
    const bytes gz = test::compress_stream(as_span(in), 20000, 6);
    for (std::size_t n :
         {std::size_t{0}, std::size_t{5}, std::size_t{30}, gz.size() / 2, gz.size() - 1}) {
        auto o = inflate_all(as_span(gz).first(n), 1000, 1 << 20);
        EXPECT_EQ(o.error, errc::truncated) << n;
    }
}

TEST(gzip_stream_inflater, corrupt) {
    const bytes in = test::text_bytes(50000);
    const bytes gz = test::compress_stream(as_span(in), 1 << 20, 6);
    bytes crc = gz;
    crc[crc.size() - 8] ^= std::byte{1};
    EXPECT_EQ(inflate_all(as_span(crc), 999, 4096).error, errc::bad_crc);
    bytes len = gz;
    len[len.size() - 4] ^= std::byte{1};
    EXPECT_EQ(inflate_all(as_span(len), 999, 4096).error, errc::bad_length);
    bytes hdr = gz;
    hdr[2] = std::byte{7};
    EXPECT_EQ(inflate_all(as_span(hdr), 999, 4096).error, errc::bad_header);
    EXPECT_EQ(inflate_all(as_span(in), 999, 4096).error, errc::bad_header); // not gzip
    bool saw_corrupt = false;
    for (std::size_t at = 30; at < gz.size() - 8; at += 101) {
        bytes d = gz;
        d[at] ^= std::byte{0x40};
        const auto e = inflate_all(as_span(d), 1 << 20, 1 << 20).error;
        EXPECT_TRUE(e == errc::corrupt_deflate || e == errc::bad_crc || e == errc::bad_length ||
                    e == errc::truncated)
            << at << " " << e.message();
        saw_corrupt |= e == errc::corrupt_deflate;
    }
    EXPECT_TRUE(saw_corrupt);
}

TEST(gzip_stream_inflater, errors_are_sticky_and_reset_clears) {
    stream_inflater inf;
    bytes out(100);
    const bytes junk = test::text_bytes(10);
    auto r = inf.inflate(as_span(junk), out);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(inf.inflate(as_span(junk), out).error(), errc::bad_header);
    EXPECT_EQ(inf.finish().error(), errc::bad_header);
    inf.reset();
    const bytes in = test::text_bytes(50);
    const bytes gz = test::compress_stream(as_span(in), 1 << 20, 6);
    auto ok = inf.inflate(as_span(gz), out);
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->produced, in.size());
    EXPECT_TRUE(inf.finish().has_value());
}

TEST(gzip_stream_inflater, empty_out_never_spins) {
    stream_inflater inf;
    const bytes in = test::text_bytes(50);
    const bytes gz = test::compress_stream(as_span(in), 1 << 20, 6);
    auto r = inf.inflate(as_span(gz), {});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->produced, 0u);
}

} // namespace
} // namespace podpipe::gzip
