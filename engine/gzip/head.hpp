// The podpipe gzip member format (RFC 1952 with one FEXTRA subfield) and inspect_head(),
// which classifies the bytes at a member boundary without inflating anything.
//
// Member layout written by member_compressor (all integers little-endian):
//
//   offset size  field
//        0    2  ID1 ID2 = 1f 8b
//        2    1  CM = 8 (deflate)
//        3    1  FLG = 0x04 (FEXTRA only)
//        4    4  MTIME = 0 (reproducible output)
//        8    1  XFL = 4 (levels 0-1), 2 (levels 8-12), else 0   (RFC 1952 2.3.1)
//        9    1  OS = 255 (unknown)
//       10    2  XLEN = 12
//       12    1  SI1 = 'P'
//       13    1  SI2 = 'P'
//       14    2  LEN = 8
//       16    4  member_bytes: whole member, header through trailer inclusive
//       20    4  uncompressed_bytes: bytes this member inflates to
//       24    .  raw DEFLATE data
//    end-8    4  CRC32 of the uncompressed data
//    end-4    4  ISIZE = uncompressed_bytes
//
// So podpipe_header_bytes = 10 (fixed) + 2 (XLEN) + 4 (SI1 SI2 LEN) + 8 (payload) = 24, and a
// member is 24 + deflate + 8 bytes. Any RFC 1952 reader (gzip -d, zlib, GNU/busybox tar)
// ignores the subfield; concatenated members are one valid multi-member .gz stream.
#pragma once

#include "engine/common/result.hpp"
#include "engine/gzip/error.hpp"

#include <cstddef>
#include <cstdint>
#include <span>

namespace podpipe::gzip {

/// Fixed part (10) + XLEN (2) + subfield header SI1 SI2 LEN (4) + subfield payload (8).
constexpr std::size_t podpipe_header_bytes = 10 + 2 + 4 + 8;
static_assert(podpipe_header_bytes == 24);
/// CRC32 + ISIZE.
constexpr std::size_t trailer_bytes = 8;
/// The fixed RFC 1952 header before any optional field.
constexpr std::size_t fixed_header_bytes = 10;
/// Largest member_bytes / uncompressed_bytes a podpipe subfield may declare. Chunks are
/// ~1 MiB; anything near 1 GiB is corruption or hostility, and the limit keeps both values
/// well inside the u32 fields and ISIZE (which is only mod 2^32).
constexpr std::size_t max_member_bytes = std::size_t{1} << 30;
/// Largest input member_compressor accepts: leaves room under max_member_bytes for the
/// worst-case expansion of stored blocks (5 bytes per 64 KiB) plus header and trailer.
constexpr std::size_t max_chunk_bytes = max_member_bytes - (std::size_t{1} << 20);

/// Subfield id of the podpipe FEXTRA subfield (RFC 1952 2.3.1.1).
constexpr unsigned char subfield_si1 = 'P';
constexpr unsigned char subfield_si2 = 'P';
constexpr std::size_t subfield_payload_bytes = 8;

enum class head_kind {
    need_more,      ///< too few bytes to decide; call again with more
    podpipe_member, ///< a gzip member carrying our subfield; head_info lengths are valid
    foreign_gzip,   ///< a gzip header without our subfield (gzip, pigz, tar czf ...)
    not_gzip,       ///< the first bytes are not 1f 8b
};

struct head_info {
    head_kind kind = head_kind::need_more;
    std::size_t member_bytes = 0;       ///< podpipe_member only: whole member incl. trailer
    std::size_t uncompressed_bytes = 0; ///< podpipe_member only: inflated size
};

/// Classifies the bytes at the start of a stream or member boundary. Reads only the prefix it
/// needs: 1 byte decides not_gzip, 10 bytes decide a header without FEXTRA, and 12 + XLEN
/// bytes one with FEXTRA (so at most 65547 bytes). Empty input is need_more.
///
/// Errors (errc::bad_header): gzip magic with CM != 8 or reserved FLG bits set; a PP
/// subfield whose LEN is not 8; member_bytes smaller than the header plus the trailer, or
/// member_bytes / uncompressed_bytes above max_member_bytes. A malformed FEXTRA (subfields
/// not adding up to XLEN) without a PP subfield is foreign_gzip: RFC 1952 readers accept it.
/// Pure function; thread-safe.
result<head_info> inspect_head(std::span<const std::byte> bytes);

} // namespace podpipe::gzip
