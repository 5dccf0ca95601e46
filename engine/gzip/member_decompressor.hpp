// member_decompressor: inflates exactly one complete gzip member with libdeflate. Works for
// podpipe members (whose subfield is cross-checked) and for any other RFC 1952 member
// (FEXTRA, FNAME, FCOMMENT and FHCRC are parsed and skipped; FHCRC is verified).
//
// Thread safety: one instance per thread (it holds a libdeflate decompressor).
#pragma once

#include "engine/common/result.hpp"
#include "engine/gzip/head.hpp"

#include <cstddef>
#include <memory>
#include <span>

struct libdeflate_decompressor;

namespace podpipe::gzip {

struct decompressor_deleter {
    void operator()(libdeflate_decompressor* d) const noexcept;
};

class member_decompressor {
public:
    /// Allocation failure throws std::bad_alloc.
    member_decompressor();

    /// `member` must be exactly one member, header through trailer. Inflates it into the
    /// front of `out`, verifies CRC32 and ISIZE, and returns the bytes written.
    /// Errors:
    ///  - errc::output_too_small: the member inflates to more than out.size() bytes (for a
    ///    podpipe member decided from the subfield before inflating).
    ///  - errc::truncated: `member` ends before the header, the DEFLATE data or the trailer do
    ///    (for a podpipe member: member.size() < member_bytes).
    ///  - errc::bad_length: bytes follow the trailer (or member.size() > member_bytes), or
    ///    ISIZE / the subfield disagree with the inflated size.
    ///  - errc::bad_crc: CRC32 (or the FHCRC header CRC16) mismatch.
    ///  - errc::corrupt_deflate: invalid DEFLATE data.  errc::bad_header: see inspect_head;
    ///    also for input that is not gzip at all.
    /// On error the contents of `out` are unspecified. A foreign member whose data exceeds
    /// 4 GiB fails with bad_length (ISIZE is mod 2^32); chunked streams never get there.
    result<std::size_t> decompress(std::span<const std::byte> member, std::span<std::byte> out);

private:
    std::unique_ptr<libdeflate_decompressor, decompressor_deleter> handle_;
};

} // namespace podpipe::gzip
