#include "engine/gzip/head.hpp"

#include "engine/gzip/detail/header.hpp"

#include <algorithm>
#include <cstring>

#include <libdeflate.h>

namespace podpipe::gzip {
namespace detail {
namespace {

header_scan need(std::size_t n) {
    header_scan s;
    s.prefix_needed = n;
    return s;
}

} // namespace

result<header_scan> scan_header(std::span<const std::byte> bytes, bool full_header) {
    const std::size_t n = bytes.size();
    const std::byte* p = bytes.data();
    header_scan s;
    if (n < 1)
        return need(1);
    if (p[0] != std::byte{0x1f}) {
        s.info.kind = head_kind::not_gzip;
        return s;
    }
    if (n < 2)
        return need(2);
    if (p[1] != std::byte{0x8b}) {
        s.info.kind = head_kind::not_gzip;
        return s;
    }
    if (n >= 3 && p[2] != std::byte{8})
        return fail(errc::bad_header);
    if (n >= 4 && (static_cast<unsigned>(p[3]) & flg_reserved) != 0)
        return fail(errc::bad_header);
    if (n < fixed_header_bytes)
        return need(fixed_header_bytes);

    const unsigned flg = static_cast<unsigned>(p[3]);
    std::size_t pos = fixed_header_bytes;
    bool has_pp = false;
    if (flg & flg_fextra) {
        if (n < pos + 2)
            return need(pos + 2);
        const std::size_t xlen = load_le16(p + pos);
        pos += 2;
        if (n < pos + xlen)
            return need(pos + xlen);
        // Walk the subfields (RFC 1952 2.3.1.1). A malformed layout is not ours: stop looking.
        std::size_t sf = pos;
        const std::size_t extra_end = pos + xlen;
        while (sf + 4 <= extra_end) {
            const std::size_t len = load_le16(p + sf + 2);
            if (sf + 4 + len > extra_end)
                break;
            if (p[sf] == std::byte{subfield_si1} && p[sf + 1] == std::byte{subfield_si2}) {
                if (len != subfield_payload_bytes)
                    return fail(errc::bad_header);
                const std::size_t member = load_le32(p + sf + 4);
                const std::size_t raw = load_le32(p + sf + 8);
                if (member < extra_end + trailer_bytes || member > max_member_bytes ||
                    raw > max_member_bytes)
                    return fail(errc::bad_header);
                s.info.member_bytes = member;
                s.info.uncompressed_bytes = raw;
                has_pp = true;
                break;
            }
            sf += 4 + len;
        }
        pos = extra_end;
    }
    s.info.kind = has_pp ? head_kind::podpipe_member : head_kind::foreign_gzip;
    if (!full_header)
        return s;

    for (const unsigned flag : {flg_fname, flg_fcomment}) {
        if (!(flg & flag))
            continue;
        const auto* zero = std::find(p + pos, p + n, std::byte{0});
        if (zero == p + n)
            return need(n + 1);
        pos = static_cast<std::size_t>(zero - p) + 1;
    }
    if (flg & flg_fhcrc) {
        if (n < pos + 2)
            return need(pos + 2);
        const std::uint32_t crc = libdeflate_crc32(0, p, pos);
        if ((crc & 0xffffu) != load_le16(p + pos))
            return fail(errc::bad_crc);
        pos += 2;
    }
    if (has_pp && s.info.member_bytes < pos + trailer_bytes)
        return fail(errc::bad_header);
    s.header_bytes = pos;
    return s;
}

} // namespace detail

result<head_info> inspect_head(std::span<const std::byte> bytes) {
    auto s = detail::scan_header(bytes, false);
    if (!s)
        return fail(s.error());
    return s->info;
}

} // namespace podpipe::gzip
