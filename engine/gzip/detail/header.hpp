// Internal: full RFC 1952 header parsing shared by inspect_head, member_decompressor and
// member_splitter. Not part of the public API.
#pragma once

#include "engine/common/result.hpp"
#include "engine/gzip/head.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace podpipe::gzip::detail {

inline std::uint32_t load_le32(const std::byte* p) noexcept {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

inline std::uint16_t load_le16(const std::byte* p) noexcept {
    return static_cast<std::uint16_t>(static_cast<unsigned>(p[0]) |
                                      (static_cast<unsigned>(p[1]) << 8));
}

inline void store_le32(std::byte* p, std::uint32_t v) noexcept {
    p[0] = static_cast<std::byte>(v);
    p[1] = static_cast<std::byte>(v >> 8);
    p[2] = static_cast<std::byte>(v >> 16);
    p[3] = static_cast<std::byte>(v >> 24);
}

// FLG bits (RFC 1952 2.3.1).
constexpr unsigned flg_ftext = 0x01;
constexpr unsigned flg_fhcrc = 0x02;
constexpr unsigned flg_fextra = 0x04;
constexpr unsigned flg_fname = 0x08;
constexpr unsigned flg_fcomment = 0x10;
constexpr unsigned flg_reserved = 0xe0;

struct header_scan {
    head_info info;                ///< kind need_more / podpipe_member / foreign_gzip / not_gzip
    std::size_t header_bytes = 0;  ///< full_header only: offset of the DEFLATE data
    std::size_t prefix_needed = 0; ///< need_more: a lower bound on the bytes needed to progress
};

/// full_header = false: stop as soon as the kind is known (inspect_head). true: also walk
/// FNAME, FCOMMENT and FHCRC (verifying the CRC16) and fill header_bytes; need_more until the
/// whole header is present.
result<header_scan> scan_header(std::span<const std::byte> bytes, bool full_header);

} // namespace podpipe::gzip::detail
