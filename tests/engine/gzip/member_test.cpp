#include "engine/gzip/head.hpp"
#include "engine/gzip/member_compressor.hpp"
#include "engine/gzip/member_decompressor.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace podpipe::gzip {
namespace {

using test::as_span;
using test::bytes;

std::span<const std::byte> view(const bytes& b) { return as_span(b); }

std::uint32_t le32(const bytes& b, std::size_t at) {
    return static_cast<std::uint32_t>(b[at]) | static_cast<std::uint32_t>(b[at + 1]) << 8 |
           static_cast<std::uint32_t>(b[at + 2]) << 16 |
           static_cast<std::uint32_t>(b[at + 3]) << 24;
}

bytes decompress_ok(const bytes& member, std::size_t out_bytes) {
    member_decompressor d;
    bytes out(out_bytes);
    auto n = d.decompress(view(member), out);
    EXPECT_TRUE(n.has_value()) << (n ? "" : n.error().message());
    out.resize(n ? *n : 0);
    return out;
}

std::error_code decompress_error(const bytes& member, std::size_t out_bytes) {
    member_decompressor d;
    bytes out(out_bytes);
    auto n = d.decompress(view(member), out);
    EXPECT_FALSE(n.has_value());
    return n ? std::error_code{} : n.error();
}

TEST(gzip_format, header_is_24_bytes) {
    static_assert(podpipe_header_bytes == 24);
    member_compressor c(6);
    const bytes in = test::text_bytes(1000);
    const bytes m = test::compress_member(c, view(in));
    ASSERT_GE(m.size(), podpipe_header_bytes + trailer_bytes);
    EXPECT_EQ(m[0], std::byte{0x1f});
    EXPECT_EQ(m[1], std::byte{0x8b});
    EXPECT_EQ(m[2], std::byte{8});
    EXPECT_EQ(m[3], std::byte{0x04}); // FEXTRA only
    EXPECT_EQ(le32(m, 4), 0u);        // MTIME
    EXPECT_EQ(m[9], std::byte{255});  // OS unknown
    EXPECT_EQ(m[10], std::byte{12});  // XLEN
    EXPECT_EQ(m[11], std::byte{0});
    EXPECT_EQ(m[12], std::byte{'P'});
    EXPECT_EQ(m[13], std::byte{'P'});
    EXPECT_EQ(m[14], std::byte{8});
    EXPECT_EQ(m[15], std::byte{0});
    EXPECT_EQ(le32(m, 16), m.size());
    EXPECT_EQ(le32(m, 20), in.size());
    EXPECT_EQ(le32(m, m.size() - 4), in.size()); // ISIZE
}

TEST(gzip_format, xfl_follows_level) {
    const bytes in = test::text_bytes(100);
    for (auto [level, xfl] : {std::pair{0, 4}, {1, 4}, {2, 0}, {6, 0}, {8, 2}, {12, 2}}) {
        member_compressor c(level);
        EXPECT_EQ(test::compress_member(c, view(in))[8], std::byte(xfl)) << level;
    }
}

struct round_trip_case {
    const char* name;
    bytes data;
};

void check_round_trips(member_compressor& c) {
    const round_trip_case cases[] = {
        {"empty", {}},
        {"one_byte", {std::byte{'x'}}},
        {"random_1m", test::random_bytes(1 << 20)},
        {"text_1m", test::text_bytes(1 << 20)},
        {"zeros_1m", bytes(1 << 20)},
        {"odd_size_text", test::text_bytes(65537)},
    };
    for (const auto& tc : cases) {
        SCOPED_TRACE(tc.name);
        const bytes m = test::compress_member(c, view(tc.data));
        EXPECT_LE(m.size(), c.bound(tc.data.size()));
        auto h = inspect_head(view(m));
        ASSERT_TRUE(h.has_value());
        EXPECT_EQ(h->kind, head_kind::podpipe_member);
        EXPECT_EQ(h->member_bytes, m.size());
        EXPECT_EQ(h->uncompressed_bytes, tc.data.size());
        // Exact-size output buffer, and an empty one for empty input.
        EXPECT_EQ(decompress_ok(m, tc.data.size()), tc.data);
        if (c.level() == 0) {
            EXPECT_GE(m.size(), tc.data.size() + podpipe_header_bytes + trailer_bytes);
        }
    }
}

class gzip_round_trip : public ::testing::TestWithParam<int> {};

TEST_P(gzip_round_trip, all_inputs) {
    member_compressor c(GetParam());
    check_round_trips(c);
}

INSTANTIATE_TEST_SUITE_P(levels, gzip_round_trip, ::testing::Values(0, 1, 6, 9, 12));

// Level 1 has two engines; each must produce valid members whichever one `automatic` picks.
TEST(gzip_engine, libdeflate_level1_round_trip) {
    member_compressor c(1, deflate_engine::libdeflate);
    EXPECT_EQ(c.engine(), deflate_engine::libdeflate);
    check_round_trips(c);
}

TEST(gzip_engine, isal_level1_round_trip) {
    if (!isal_available())
        GTEST_SKIP() << "built without ISA-L (libisal-dev)";
    member_compressor c(1, deflate_engine::isal);
    EXPECT_EQ(c.engine(), deflate_engine::isal);
    check_round_trips(c);
    // Reused across many sizes: the per-call stream state must be reset every time.
    for (std::uint32_t seed = 0; seed < 20; ++seed) {
        const bytes in = test::text_bytes(1000 + seed * 4099, seed);
        EXPECT_EQ(decompress_ok(test::compress_member(c, view(in)), in.size()), in);
    }
}

TEST(gzip_engine, automatic_choice) {
    EXPECT_EQ(member_compressor(1).engine(),
              isal_available() ? deflate_engine::isal : deflate_engine::libdeflate);
    for (int level : {0, 2, 6, 12})
        EXPECT_EQ(member_compressor(level).engine(), deflate_engine::libdeflate) << level;
}

// Incompressible input makes igzip overflow a tight buffer; the member must still fit in
// bound() (stored-block fallback), and a buffer below that is output_too_small, not a crash.
TEST(gzip_engine, isal_incompressible_fits_bound) {
    if (!isal_available())
        GTEST_SKIP() << "built without ISA-L (libisal-dev)";
    member_compressor c(1, deflate_engine::isal);
    for (std::size_t n : {std::size_t{1}, std::size_t{4096}, std::size_t{65535},
                          std::size_t{65536}, std::size_t{1} << 20}) {
        SCOPED_TRACE(n);
        const bytes in = test::random_bytes(n);
        bytes out(c.bound(n));
        auto r = c.compress(view(in), out);
        ASSERT_TRUE(r.has_value()) << r.error().message();
        out.resize(*r);
        EXPECT_EQ(decompress_ok(out, n), in);
        if (n < 4096)
            continue;
        bytes small(n / 2 + podpipe_header_bytes + trailer_bytes + 2);
        auto r2 = c.compress(view(in), small);
        ASSERT_FALSE(r2.has_value());
        EXPECT_EQ(r2.error(), errc::output_too_small);
    }
}

TEST(gzip_compress, text_compresses) {
    member_compressor c(6);
    const bytes in = test::text_bytes(1 << 20);
    EXPECT_LT(test::compress_member(c, view(in)).size(), in.size() / 2);
}

TEST(gzip_compress, output_too_small) {
    member_compressor c(6);
    const bytes in = test::random_bytes(4096);
    bytes out(100);
    auto r = c.compress(view(in), out);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), errc::output_too_small);
    EXPECT_EQ(r.error(), condition::fatal);
    bytes tiny(10);
    auto r2 = c.compress({}, tiny);
    ASSERT_FALSE(r2.has_value());
    EXPECT_EQ(r2.error(), errc::output_too_small);
    // bound() is enough, even for incompressible input at every level.
    for (int level : {0, 1, 6, 12}) {
        member_compressor cl(level);
        bytes b(cl.bound(in.size()));
        EXPECT_TRUE(cl.compress(view(in), b).has_value()) << level;
    }
}

TEST(gzip_compress, reusable_compressor) {
    member_compressor c(3);
    for (std::uint32_t seed = 0; seed < 20; ++seed) {
        const bytes in = test::text_bytes(1000 + seed * 997, seed);
        EXPECT_EQ(decompress_ok(test::compress_member(c, view(in)), in.size()), in);
    }
}

// --- incompressible chunks ------------------------------------------------------------------

// The largest member of stored blocks for n bytes: 5 bytes of block header per 64 KiB.
std::size_t stored_member_bytes(std::size_t n) {
    return n + (n / 65535 + 1) * 5 + podpipe_header_bytes + trailer_bytes;
}

// A run of chunks that do not compress: the first is compressed (nothing to go by yet), the
// next ones are probed and stored, every one round-trips, and text after them compresses again
// (the probe sees it), after which chunks are no longer probed.
TEST(gzip_incompressible, stored_after_a_chunk_that_saved_nothing) {
    const std::size_t n = std::size_t{1} << 20;
    const bytes text = test::text_bytes(n);
    for (int level : {1, 2, 6, 9}) {
        SCOPED_TRACE(level);
        member_compressor c(level);
        const bytes first = test::random_bytes(n, 1);
        EXPECT_EQ(decompress_ok(test::compress_member(c, view(first)), n), first);
        EXPECT_FALSE(c.last_stored());
        for (std::uint32_t seed = 2; seed < 5; ++seed) {
            const bytes in = test::random_bytes(n, seed);
            const bytes m = test::compress_member(c, view(in));
            EXPECT_TRUE(c.last_stored()) << seed;
            EXPECT_LE(m.size(), stored_member_bytes(n));
            EXPECT_EQ(inspect_head(view(m))->member_bytes, m.size());
            EXPECT_EQ(decompress_ok(m, n), in);
        }
        const bytes m = test::compress_member(c, view(text));
        EXPECT_FALSE(c.last_stored());
        EXPECT_LT(m.size(), n / 2);
        EXPECT_EQ(decompress_ok(m, n), text);
        // Text saved plenty: the next chunk is not probed, so random data is compressed again.
        (void)test::compress_member(c, view(first));
        EXPECT_FALSE(c.last_stored());
    }
}

// What is never stored: a stream that compresses, chunks below probe_min_chunk, level 0 (it
// stores anyway), and a probed chunk with compressible data in any of the three samples.
TEST(gzip_incompressible, compressible_small_and_mixed_chunks_are_compressed) {
    const std::size_t n = std::size_t{1} << 20;
    member_compressor text_only(6);
    for (std::uint32_t seed = 0; seed < 4; ++seed) {
        (void)test::compress_member(text_only, view(test::text_bytes(n, seed)));
        EXPECT_FALSE(text_only.last_stored());
    }
    member_compressor small(1);
    const std::size_t below = member_compressor::probe_min_chunk - 1;
    for (std::uint32_t seed = 0; seed < 4; ++seed) {
        const bytes in = test::random_bytes(below, seed);
        EXPECT_EQ(decompress_ok(test::compress_member(small, view(in)), below), in);
        EXPECT_FALSE(small.last_stored());
    }
    member_compressor zero(0);
    for (std::uint32_t seed = 0; seed < 3; ++seed) {
        (void)test::compress_member(zero, view(test::random_bytes(n, seed)));
        EXPECT_FALSE(zero.last_stored());
    }
    // Random data with text where one sample falls: start, middle or end.
    const std::size_t sample = member_compressor::probe_sample_bytes;
    for (std::size_t at : {std::size_t{0}, (n - sample) / 2, n - sample}) {
        SCOPED_TRACE(at);
        member_compressor c(6);
        (void)test::compress_member(c, view(test::random_bytes(n, 7)));
        bytes mixed = test::random_bytes(n, 8);
        const bytes t = test::text_bytes(sample);
        std::copy(t.begin(), t.end(), mixed.begin() + static_cast<std::ptrdiff_t>(at));
        const bytes m = test::compress_member(c, view(mixed));
        EXPECT_FALSE(c.last_stored());
        EXPECT_EQ(decompress_ok(m, n), mixed);
    }
}

// --- inspect_head -----------------------------------------------------------------------------

bytes from_hex(std::initializer_list<int> v) {
    bytes b;
    for (int x : v)
        b.push_back(static_cast<std::byte>(x));
    return b;
}

TEST(gzip_inspect_head, short_inputs_need_more) {
    member_compressor c(1);
    const bytes m = test::compress_member(c, view(test::text_bytes(100)));
    for (std::size_t n = 0; n < 24; ++n) {
        auto h = inspect_head(view(m).first(n));
        ASSERT_TRUE(h.has_value()) << n;
        EXPECT_EQ(h->kind, head_kind::need_more) << n;
    }
    auto h = inspect_head(view(m).first(24));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::podpipe_member);
}

TEST(gzip_inspect_head, not_gzip) {
    for (const bytes& b :
         {from_hex({'u', 's', 't'}), from_hex({0x1f, 0x8c}), from_hex({0}), from_hex({0x1e})}) {
        auto h = inspect_head(view(b));
        ASSERT_TRUE(h.has_value());
        EXPECT_EQ(h->kind, head_kind::not_gzip);
    }
    auto h = inspect_head(view(from_hex({0x1f})));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::need_more);
}

TEST(gzip_inspect_head, foreign) {
    // Plain header, no FEXTRA (as gzip -n writes it).
    auto h = inspect_head(view(from_hex({0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3})));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::foreign_gzip);
    // FNAME: decided after the fixed header, the name is not needed.
    h = inspect_head(view(from_hex({0x1f, 0x8b, 8, 8, 0, 0, 0, 0, 0, 3})));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::foreign_gzip);
    // FEXTRA with another subfield ("RA", as dictzip).
    h = inspect_head(
        view(from_hex({0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 6, 0, 'R', 'A', 2, 0, 1, 2})));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::foreign_gzip);
    // ...incomplete: need_more.
    h = inspect_head(view(from_hex({0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 6, 0, 'R', 'A', 2})));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::need_more);
    // Malformed FEXTRA layout without PP: still gzip, not ours.
    h = inspect_head(view(from_hex({0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 3, 0, 'R', 'A', 9})));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::foreign_gzip);
}

TEST(gzip_inspect_head, pp_after_other_subfield) {
    const bytes b = from_hex({0x1f, 0x8b, 8, 4,   0,   0, 0, 0,   0, 3, 18, 0, 'R', 'A', 2,
                              0,    1,    2, 'P', 'P', 8, 0, 100, 0, 0, 0,  7, 0,   0,   0});
    auto h = inspect_head(view(b));
    ASSERT_TRUE(h.has_value());
    EXPECT_EQ(h->kind, head_kind::podpipe_member);
    EXPECT_EQ(h->member_bytes, 100u);
    EXPECT_EQ(h->uncompressed_bytes, 7u);
}

TEST(gzip_inspect_head, bad_headers) {
    const bytes bad[] = {
        from_hex({0x1f, 0x8b, 7}),       // CM != 8
        from_hex({0x1f, 0x8b, 8, 0x20}), // reserved flag
        from_hex({0x1f, 0x8b, 8, 4, 0, 0, 0, 0, 0, 3, 8, 0, 'P', 'P', 4, 0, 1, 2, 3, 4}), // LEN 4
        from_hex({0x1f, 0x8b, 8, 4, 0,  0, 0, 0, 0, 3, 12, 0,
                  'P',  'P',  8, 0, 31, 0, 0, 0, 0, 0, 0,  0}), // member_bytes 31 < 24 + 8
        from_hex({0x1f, 0x8b, 8, 4, 0, 0, 0, 0,    0, 3, 12, 0,
                  'P',  'P',  8, 0, 1, 0, 0, 0x41, 0, 0, 0,  0}), // member_bytes > 1 GiB
        from_hex({0x1f, 0x8b, 8, 4, 0,   0, 0, 0, 0, 3, 12, 0,
                  'P',  'P',  8, 0, 100, 0, 0, 0, 1, 0, 0,  0x41}), // uncompressed > 1 GiB
    };
    for (const auto& b : bad) {
        auto h = inspect_head(view(b));
        ASSERT_FALSE(h.has_value());
        EXPECT_EQ(h.error(), errc::bad_header);
        EXPECT_EQ(h.error(), condition::bad_input);
    }
}

// --- corrupt members ----------------------------------------------------------------------------

class gzip_corrupt : public ::testing::Test {
protected:
    bytes input_ = test::text_bytes(200000);
    member_compressor compressor_{6};
    bytes member_ = test::compress_member(compressor_, view(input_));
};

TEST_F(gzip_corrupt, flipped_deflate_byte) {
    // Every position in the DEFLATE data must fail (a flip may pass inflate but not the CRC).
    int corrupt = 0;
    for (std::size_t at = podpipe_header_bytes; at < member_.size() - trailer_bytes;
         at += (member_.size() / 97) + 1) {
        bytes m = member_;
        m[at] ^= std::byte{0x10};
        const auto e = decompress_error(m, input_.size());
        EXPECT_TRUE(e == errc::corrupt_deflate || e == errc::bad_crc || e == errc::bad_length ||
                    e == errc::truncated)
            << at << " " << e.message();
        EXPECT_EQ(e, condition::bad_input);
        corrupt += e == errc::corrupt_deflate;
    }
    EXPECT_GT(corrupt, 0);
}

TEST_F(gzip_corrupt, flipped_crc) {
    bytes m = member_;
    m[m.size() - 8] ^= std::byte{1};
    EXPECT_EQ(decompress_error(m, input_.size()), errc::bad_crc);
}

TEST_F(gzip_corrupt, isize_mismatch) {
    bytes m = member_;
    m[m.size() - 4] ^= std::byte{1};
    EXPECT_EQ(decompress_error(m, input_.size() + 10), errc::bad_length);
}

TEST_F(gzip_corrupt, subfield_uncompressed_mismatch) {
    bytes m = member_;
    m[20] = static_cast<std::byte>(static_cast<unsigned>(m[20]) + 1); // claims one more byte
    EXPECT_EQ(decompress_error(m, input_.size() + 10), errc::bad_length);
    m = member_;
    m[20] = static_cast<std::byte>(static_cast<unsigned>(m[20]) - 1); // claims one less
    EXPECT_EQ(decompress_error(m, input_.size() + 10), errc::bad_length);
}

TEST_F(gzip_corrupt, truncated_anywhere) {
    for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{10}, std::size_t{23},
                          std::size_t{24}, std::size_t{25}, member_.size() / 2, member_.size() - 9,
                          member_.size() - 8, member_.size() - 1}) {
        const bytes m(member_.begin(), member_.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_EQ(decompress_error(m, input_.size()), errc::truncated) << n;
    }
}

TEST_F(gzip_corrupt, trailing_bytes) {
    bytes m = member_;
    m.push_back(std::byte{0});
    EXPECT_EQ(decompress_error(m, input_.size()), errc::bad_length);
}

TEST_F(gzip_corrupt, output_too_small) {
    EXPECT_EQ(decompress_error(member_, input_.size() - 1), errc::output_too_small);
}

TEST(gzip_decompress, not_gzip) {
    EXPECT_EQ(decompress_error(test::text_bytes(100), 1000), errc::bad_header);
}

// A foreign member (no subfield) that is truncated must say truncated, not output_too_small,
// and one whose DEFLATE data is cut short must say truncated too.
TEST(gzip_decompress, foreign_member_truncated_and_small_output) {
    // Strip our subfield: FLG = 0, header = 10 bytes.
    member_compressor c(6);
    const bytes in = test::text_bytes(50000);
    const bytes ours = test::compress_member(c, view(in));
    bytes foreign(ours.begin(), ours.begin() + 10);
    foreign[3] = std::byte{0};
    foreign.insert(foreign.end(), ours.begin() + 24, ours.end());
    EXPECT_EQ(decompress_ok(foreign, in.size()), in);
    EXPECT_EQ(decompress_error(foreign, in.size() - 1), errc::output_too_small);
    for (std::size_t n : {foreign.size() / 3, foreign.size() - 9, foreign.size() - 3}) {
        const bytes m(foreign.begin(), foreign.begin() + static_cast<std::ptrdiff_t>(n));
        EXPECT_EQ(decompress_error(m, in.size() * 2), errc::truncated) << n;
    }
}

TEST(gzip_decompress, fname_fcomment_fhcrc) {
    member_compressor c(6);
    const bytes in = test::text_bytes(3000);
    const bytes ours = test::compress_member(c, view(in));
    bytes m = from_hex(
        {0x1f, 0x8b, 8, 0x08 | 0x10 | 0x02, 0, 0, 0, 0, 0, 3, 'a', '.', 't', 0, 'h', 'i', 0});
    // CRC16 of the header so far: low 16 bits of CRC32.
    std::uint32_t crc = 0xffffffffu;
    for (std::byte b : m) {
        crc ^= static_cast<std::uint32_t>(b);
        for (int k = 0; k < 8; ++k)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    crc ^= 0xffffffffu;
    m.push_back(static_cast<std::byte>(crc));
    m.push_back(static_cast<std::byte>(crc >> 8));
    m.insert(m.end(), ours.begin() + 24, ours.end());
    EXPECT_EQ(decompress_ok(m, in.size()), in);
    m[15] = std::byte{'H'}; // comment changes, header CRC no longer matches
    EXPECT_EQ(decompress_error(m, in.size()), errc::bad_crc);
}

TEST(gzip_errors, category) {
    const std::error_code e = errc::truncated;
    EXPECT_STREQ(e.category().name(), "gzip");
    EXPECT_EQ(e.message(), "truncated gzip member");
    EXPECT_EQ(e, condition::bad_input);
    EXPECT_EQ(std::error_code(errc::too_large), condition::fatal);
    EXPECT_EQ(std::error_code(errc::compress_failed), condition::fatal);
}

} // namespace
} // namespace podpipe::gzip
