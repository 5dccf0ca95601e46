#include "engine/tar/writer.hpp"

#include "engine/tar/detail/ustar.hpp"
#include "engine/tar/error.hpp"

#include <charconv>
#include <cstring>
#include <string>
#include <string_view>

namespace podpipe::tar {
namespace {

using detail::field;

// Largest value an octal field of `size` bytes holds with a terminating NUL.
constexpr std::uint64_t octal_max(std::size_t size) noexcept {
    return (std::uint64_t{1} << (3 * (size - 1))) - 1;
}

void put_string(std::byte* h, field f, std::string_view s) noexcept {
    if (s.empty())
        return; // memcpy from an empty view's null data() is undefined
    std::memcpy(h + f.offset, s.data(), s.size() < f.size ? s.size() : f.size);
}

// size-1 octal digits, zero padded, then NUL. Precondition: v <= octal_max(f.size).
void put_octal(std::byte* h, field f, std::uint64_t v) noexcept {
    std::byte* p = h + f.offset;
    p[f.size - 1] = std::byte{0};
    for (std::size_t i = f.size - 1; i-- > 0;) {
        p[i] = static_cast<std::byte>('0' + (v & 7));
        v >>= 3;
    }
}

// GNU base-256: first byte 0x80 (non-negative) or 0xff (negative), then the two's complement
// big-endian value in the remaining bytes (7 bytes in an 8-byte field: any uid/gid; 11 bytes in a
// 12-byte field: any size or mtime).
void put_base256_unsigned(std::byte* h, field f, std::uint64_t v) noexcept {
    std::byte* p = h + f.offset;
    for (std::size_t i = f.size; i-- > 1;) {
        p[i] = static_cast<std::byte>(v & 0xff);
        v >>= 8;
    }
    p[0] = std::byte{0x80};
}

void put_base256_signed(std::byte* h, field f, std::int64_t v) noexcept {
    if (v >= 0) {
        put_base256_unsigned(h, f, static_cast<std::uint64_t>(v));
        return;
    }
    std::byte* p = h + f.offset;
    for (std::size_t i = f.size; i-- > 1;) {
        p[i] = static_cast<std::byte>(static_cast<std::uint64_t>(v) & 0xff);
        v >>= 8; // arithmetic shift (defined since C++20): fills with 0xff
    }
    p[0] = std::byte{0xff};
}

void put_number(std::byte* h, field f, std::uint64_t v) noexcept {
    if (v <= octal_max(f.size))
        put_octal(h, f, v);
    else
        put_base256_unsigned(h, f, v);
}

void finish_checksum(std::byte* h) noexcept {
    std::memset(h + detail::f_chksum.offset, ' ', detail::f_chksum.size);
    unsigned sum = 0;
    for (std::size_t i = 0; i < block_bytes; ++i)
        sum += std::to_integer<unsigned>(h[i]);
    // Six octal digits, NUL, space: the form every tar since v7 reads.
    std::byte* p = h + detail::f_chksum.offset;
    for (int i = 5; i >= 0; --i) {
        p[i] = static_cast<std::byte>('0' + (sum & 7));
        sum >>= 3;
    }
    p[6] = std::byte{0};
    p[7] = std::byte{' '};
}

// Appends one "<len> key=value\n" pax record; len counts the whole record including itself.
void add_pax_record(std::string& out, std::string_view key, std::string_view value) {
    const std::size_t body = 1 + key.size() + 1 + value.size() + 1; // ' ' key '=' value '\n'
    std::size_t digits = 1;
    for (std::size_t p = 10; body + digits >= p; p *= 10)
        ++digits;
    char len[24];
    auto r = std::to_chars(len, len + sizeof len, body + digits);
    out.append(len, r.ptr);
    out.push_back(' ');
    out.append(key);
    out.push_back('=');
    out.append(value);
    out.push_back('\n');
}

void add_pax_number(std::string& out, std::string_view key, std::int64_t v, bool is_signed) {
    char buf[24];
    auto r = is_signed ? std::to_chars(buf, buf + sizeof buf, v)
                       : std::to_chars(buf, buf + sizeof buf, static_cast<std::uint64_t>(v));
    add_pax_record(out, key, std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

// Splits p into ustar prefix (<= 155) and name (<= 100, non-empty) at a '/', if possible.
bool split_ustar(std::string_view p, std::string_view& prefix, std::string_view& name) noexcept {
    if (p.size() <= detail::f_name.size) {
        prefix = {};
        name = p;
        return true;
    }
    if (p.size() > detail::f_prefix.size + 1 + detail::f_name.size)
        return false;
    // The slash at i must leave name = p[i+1..] of at most 100 bytes and at least 1, and prefix
    // = p[0..i) non-empty (an empty prefix would make readers drop the leading '/').
    const std::size_t first = p.size() - detail::f_name.size - 1;
    const std::size_t last = std::min(detail::f_prefix.size, p.size() - 2);
    for (std::size_t i = first < 1 ? 1 : first; i <= last; ++i) {
        if (p[i] == '/') {
            prefix = p.substr(0, i);
            name = p.substr(i + 1);
            return true;
        }
    }
    return false;
}

bool has_nul(std::string_view s) noexcept { return s.find('\0') != std::string_view::npos; }

std::byte* grow_block(std::vector<std::byte>& out) {
    const std::size_t at = out.size();
    out.resize(at + block_bytes); // value-initialised: zero
    return out.data() + at;
}

// Writes a pax header block ('x' or 'g') plus its data and padding.
void append_pax(std::vector<std::byte>& out, char typeflag, std::string_view name,
                std::string_view data, std::int64_t mtime) {
    std::byte* h = grow_block(out);
    put_string(h, detail::f_name, name.substr(0, detail::f_name.size));
    put_octal(h, detail::f_mode, 0644);
    put_octal(h, detail::f_uid, 0);
    put_octal(h, detail::f_gid, 0);
    put_octal(h, detail::f_size, data.size());
    put_octal(h, detail::f_mtime,
              mtime < 0 || static_cast<std::uint64_t>(mtime) > octal_max(detail::f_mtime.size)
                  ? 0
                  : static_cast<std::uint64_t>(mtime));
    h[detail::f_typeflag.offset] = static_cast<std::byte>(typeflag);
    put_string(h, detail::f_magic, std::string_view("ustar\0", 6));
    put_string(h, detail::f_version, "00");
    put_octal(h, detail::f_devmajor, 0);
    put_octal(h, detail::f_devminor, 0);
    finish_checksum(h);
    const std::size_t at = out.size();
    out.resize(at + data.size() + padding_for(data.size()));
    if (!data.empty())
        std::memcpy(out.data() + at, data.data(), data.size());
}

bool writable_type(entry_type t) noexcept {
    switch (t) {
    case entry_type::regular:
    case entry_type::hardlink:
    case entry_type::symlink:
    case entry_type::char_device:
    case entry_type::block_device:
    case entry_type::directory:
    case entry_type::fifo:
        return true;
    default:
        return false;
    }
}

constexpr std::size_t max_ugname = detail::f_uname.size - 1; // NUL-terminated in ustar

} // namespace

std::size_t padding_for(std::uint64_t content_bytes) noexcept {
    return static_cast<std::size_t>((block_bytes - content_bytes % block_bytes) % block_bytes);
}

result<void> append_header(const entry& e, std::vector<std::byte>& out) {
    if (e.path.empty() || has_nul(e.path) || has_nul(e.link_target) || has_nul(e.uname) ||
        has_nul(e.gname) || !writable_type(e.type))
        return fail(make_error_code(errc::invalid_entry));
    const bool is_link = e.type == entry_type::symlink || e.type == entry_type::hardlink;
    if ((is_link && e.link_target.empty()) || (e.type != entry_type::regular && e.size != 0))
        return fail(make_error_code(errc::invalid_entry));

    // The name as stored: directories get one trailing '/'.
    std::string dir_path;
    std::string_view path = e.path;
    if (e.type == entry_type::directory && path.back() != '/') {
        dir_path.reserve(path.size() + 1);
        dir_path.append(path).push_back('/');
        path = dir_path;
    }

    std::string_view prefix, name;
    const bool path_fits = split_ustar(path, prefix, name);
    const bool link_fits = e.link_target.size() <= detail::f_linkname.size;
    const bool size_fits = e.size <= octal_max(detail::f_size.size);
    const bool uid_fits = e.uid <= octal_max(detail::f_uid.size);
    const bool gid_fits = e.gid <= octal_max(detail::f_gid.size);
    const bool mtime_fits =
        e.mtime_sec >= 0 && static_cast<std::uint64_t>(e.mtime_sec) <= octal_max(detail::f_mtime.size);
    const bool uname_fits = e.uname.size() <= max_ugname;
    const bool gname_fits = e.gname.size() <= max_ugname;

    if (!(path_fits && link_fits && size_fits && uid_fits && gid_fits && mtime_fits &&
          uname_fits && gname_fits)) {
        std::string pax;
        if (!path_fits)
            add_pax_record(pax, "path", path);
        if (!link_fits)
            add_pax_record(pax, "linkpath", e.link_target);
        if (!size_fits)
            add_pax_number(pax, "size", static_cast<std::int64_t>(e.size), false);
        if (!uid_fits)
            add_pax_number(pax, "uid", e.uid, false);
        if (!gid_fits)
            add_pax_number(pax, "gid", e.gid, false);
        if (!mtime_fits)
            add_pax_number(pax, "mtime", e.mtime_sec, true);
        if (!uname_fits)
            add_pax_record(pax, "uname", e.uname);
        if (!gname_fits)
            add_pax_record(pax, "gname", e.gname);
        if (pax.size() > max_extended_header_bytes)
            return fail(make_error_code(errc::too_large));
        // The pax header's own name is informational (readers that ignore pax extract it as a
        // file); GNU tar uses "<dir>/PaxHeaders.<pid>/<base>", we keep it short and stable.
        std::string_view base = path;
        while (base.size() > 1 && base.back() == '/')
            base.remove_suffix(1);
        if (auto slash = base.rfind('/'); slash != std::string_view::npos && slash + 1 < base.size())
            base.remove_prefix(slash + 1);
        std::string pax_name = "PaxHeaders/";
        pax_name.append(base.substr(0, detail::f_name.size - pax_name.size()));
        append_pax(out, 'x', pax_name, pax, e.mtime_sec);
        if (!path_fits) {
            prefix = {};
            name = path.substr(0, detail::f_name.size);
        }
    }

    std::byte* h = grow_block(out);
    put_string(h, detail::f_name, name);
    put_string(h, detail::f_prefix, prefix);
    put_octal(h, detail::f_mode, e.mode & 07777u);
    put_number(h, detail::f_uid, e.uid);
    put_number(h, detail::f_gid, e.gid);
    put_number(h, detail::f_size, e.size);
    if (mtime_fits)
        put_octal(h, detail::f_mtime, static_cast<std::uint64_t>(e.mtime_sec));
    else
        put_base256_signed(h, detail::f_mtime, e.mtime_sec);
    h[detail::f_typeflag.offset] = static_cast<std::byte>(e.type);
    put_string(h, detail::f_linkname, e.link_target); // truncated if pax carries it
    put_string(h, detail::f_magic, std::string_view("ustar\0", 6));
    put_string(h, detail::f_version, "00");
    put_string(h, detail::f_uname, std::string_view(e.uname).substr(0, max_ugname));
    put_string(h, detail::f_gname, std::string_view(e.gname).substr(0, max_ugname));
    put_octal(h, detail::f_devmajor, 0);
    put_octal(h, detail::f_devminor, 0);
    finish_checksum(h);
    return {};
}

void append_end(const manifest& m, std::vector<std::byte>& out) {
    std::string pax;
    add_pax_record(pax, "comment", format_manifest_comment(m));
    append_pax(out, 'g', "pax_global_header", pax, 0);
    out.resize(out.size() + 2 * block_bytes);
}

void append_problems(const sender_problems& p, std::vector<std::byte>& out) {
    std::string pax;
    add_pax_record(pax, "comment", format_problems_comment(p));
    append_pax(out, 'g', "pax_global_header", pax, 0);
}

void append_deletions(std::span<const std::string> paths, std::vector<std::byte>& out) {
    // Each header's paths stay well under the parser's limit (escaping at most doubles them).
    constexpr std::size_t batch_bytes = max_extended_header_bytes / 4;
    std::size_t first = 0;
    while (first < paths.size()) {
        std::size_t last = first;
        std::size_t bytes = 0;
        while (last < paths.size() && (last == first || bytes + paths[last].size() < batch_bytes))
            bytes += paths[last++].size() + 1;
        std::string pax;
        add_pax_record(pax, "comment",
                       format_deletions_comment(paths.subspan(first, last - first)));
        append_pax(out, 'g', "pax_global_header", pax, 0);
        first = last;
    }
}

} // namespace podpipe::tar
