#include "engine/gzip/member_decompressor.hpp"

#include "engine/gzip/detail/header.hpp"

#include <algorithm>
#include <array>
#include <new>

#include <climits>
#include <libdeflate.h>
#include <zlib.h>

namespace podpipe::gzip {
namespace {

// libdeflate says only "bad data" both for a corrupt stream and for one cut short. On that
// (rare) path, replay the DEFLATE data through zlib, discarding output, to tell them apart:
// zlib running out of input without an error means truncation. Output is capped a little
// above what libdeflate was allowed to write, so a hostile input cannot make this path
// slower than the successful one by more than a constant.
errc classify_deflate_failure(std::span<const std::byte> deflate, std::size_t out_cap) {
    z_stream zs{};
    if (inflateInit2(&zs, -15) != Z_OK)
        return errc::corrupt_deflate;
    std::array<unsigned char, 32768> sink;
    const std::size_t cap = out_cap + (std::size_t{1} << 20);
    std::size_t produced = 0;
    errc verdict = errc::corrupt_deflate;
    const auto* in = reinterpret_cast<const unsigned char*>(deflate.data());
    std::size_t in_left = deflate.size();
    for (;;) {
        const auto chunk = static_cast<uInt>(std::min<std::size_t>(in_left, UINT_MAX / 2));
        zs.next_in = const_cast<unsigned char*>(in); // zlib's API is not const-correct
        zs.avail_in = chunk;
        zs.next_out = sink.data();
        zs.avail_out = static_cast<uInt>(sink.size());
        const int rc = inflate(&zs, Z_NO_FLUSH);
        const std::size_t used = chunk - zs.avail_in;
        in += used;
        in_left -= used;
        produced += sink.size() - zs.avail_out;
        if (rc == Z_STREAM_END || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR || rc == Z_NEED_DICT)
            break; // corrupt (or zlib accepts what libdeflate rejected: still not usable)
        if (in_left == 0 && zs.avail_out != 0) {
            verdict = errc::truncated;
            break;
        }
        if (produced > cap || (rc == Z_BUF_ERROR && in_left != 0))
            break;
    }
    inflateEnd(&zs);
    return verdict;
}

} // namespace

void decompressor_deleter::operator()(libdeflate_decompressor* d) const noexcept {
    libdeflate_free_decompressor(d);
}

member_decompressor::member_decompressor()
    : handle_(libdeflate_alloc_decompressor()) {
    if (!handle_)
        throw std::bad_alloc();
}

result<std::size_t> member_decompressor::decompress(std::span<const std::byte> member,
                                                    std::span<std::byte> out) {
    auto scanned = detail::scan_header(member, true);
    if (!scanned)
        return fail(scanned.error());
    const detail::header_scan& h = *scanned;
    switch (h.info.kind) {
    case head_kind::need_more:
        return fail(errc::truncated);
    case head_kind::not_gzip:
        return fail(errc::bad_header);
    case head_kind::podpipe_member:
        if (member.size() < h.info.member_bytes)
            return fail(errc::truncated);
        if (member.size() > h.info.member_bytes)
            return fail(errc::bad_length);
        if (h.info.uncompressed_bytes > out.size())
            return fail(errc::output_too_small);
        break;
    case head_kind::foreign_gzip:
        break;
    }
    if (member.size() < h.header_bytes + trailer_bytes)
        return fail(errc::truncated);

    const bool ours = h.info.kind == head_kind::podpipe_member;
    const auto deflate = member.subspan(h.header_bytes);
    const std::size_t out_cap = ours ? h.info.uncompressed_bytes : out.size();
    std::size_t in_used = 0;
    std::size_t out_used = 0;
    const libdeflate_result rc = libdeflate_deflate_decompress_ex(
        handle_.get(), deflate.data(), deflate.size(), out.data(), out_cap, &in_used, &out_used);
    switch (rc) {
    case LIBDEFLATE_SUCCESS:
        break;
    case LIBDEFLATE_INSUFFICIENT_SPACE:
        // For our member the subfield promised out_cap bytes: the member lies.
        return fail(ours ? errc::bad_length : errc::output_too_small);
    case LIBDEFLATE_BAD_DATA:
    case LIBDEFLATE_SHORT_OUTPUT:
    default:
        return fail(classify_deflate_failure(deflate, out_cap));
    }

    const std::size_t end = h.header_bytes + in_used;
    if (end + trailer_bytes > member.size())
        return fail(errc::truncated);
    if (end + trailer_bytes < member.size())
        return fail(errc::bad_length);
    const std::uint32_t crc = detail::load_le32(member.data() + end);
    const std::uint32_t isize = detail::load_le32(member.data() + end + 4);
    if (isize != static_cast<std::uint32_t>(out_used) ||
        (ours && out_used != h.info.uncompressed_bytes))
        return fail(errc::bad_length);
    if (crc != libdeflate_crc32(0, out.data(), out_used))
        return fail(errc::bad_crc);
    return out_used;
}

} // namespace podpipe::gzip
