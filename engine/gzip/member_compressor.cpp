#include "engine/gzip/member_compressor.hpp"

#include "engine/common/assert.hpp"
#include "engine/gzip/detail/header.hpp"

#include <new>

#include <libdeflate.h>

namespace podpipe::gzip {

void compressor_deleter::operator()(libdeflate_compressor* c) const noexcept {
    libdeflate_free_compressor(c);
}

member_compressor::member_compressor(int level)
    : level_(level) {
    PODPIPE_CHECK(level >= min_level && level <= max_level, "gzip level outside [0, 12]");
    handle_.reset(libdeflate_alloc_compressor(level));
    if (!handle_)
        throw std::bad_alloc();
}

std::size_t member_compressor::bound(std::size_t in_bytes) const noexcept {
    return libdeflate_deflate_compress_bound(handle_.get(), in_bytes) + podpipe_header_bytes +
           trailer_bytes;
}

result<std::size_t> member_compressor::compress(std::span<const std::byte> in,
                                                std::span<std::byte> out) {
    if (in.size() > max_chunk_bytes)
        return fail(errc::too_large);
    // The smallest DEFLATE stream is 2 bytes (an empty fixed-Huffman block).
    if (out.size() < podpipe_header_bytes + 2 + trailer_bytes)
        return fail(errc::output_too_small);

    std::byte* const o = out.data();
    const std::size_t deflate_bytes =
        libdeflate_deflate_compress(handle_.get(), in.data(), in.size(), o + podpipe_header_bytes,
                                    out.size() - podpipe_header_bytes - trailer_bytes);
    if (deflate_bytes == 0)
        return fail(out.size() >= bound(in.size()) ? errc::compress_failed
                                                   : errc::output_too_small);
    const std::size_t member_bytes = podpipe_header_bytes + deflate_bytes + trailer_bytes;

    // RFC 1952 2.3.1; XFL as gzip and libdeflate set it: 4 = fastest, 2 = maximum compression.
    unsigned char xfl = 0;
    if (level_ < 2)
        xfl = 4;
    else if (level_ >= 8)
        xfl = 2;
    const unsigned char fixed[12] = {0x1f, 0x8b, 8,   detail::flg_fextra,         0, 0, 0,
                                     0,    xfl,  255, 4 + subfield_payload_bytes, 0};
    for (std::size_t i = 0; i < sizeof fixed; ++i)
        o[i] = static_cast<std::byte>(fixed[i]);
    o[12] = std::byte{subfield_si1};
    o[13] = std::byte{subfield_si2};
    o[14] = std::byte{subfield_payload_bytes};
    o[15] = std::byte{0};
    detail::store_le32(o + 16, static_cast<std::uint32_t>(member_bytes));
    detail::store_le32(o + 20, static_cast<std::uint32_t>(in.size()));

    std::byte* const trailer = o + podpipe_header_bytes + deflate_bytes;
    detail::store_le32(trailer, libdeflate_crc32(0, in.data(), in.size()));
    detail::store_le32(trailer + 4, static_cast<std::uint32_t>(in.size()));
    return member_bytes;
}

} // namespace podpipe::gzip
