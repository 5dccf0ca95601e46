#include "engine/tar/parser.hpp"

#include "engine/tar/detail/ustar.hpp"

#include <charconv>
#include <cstring>
#include <limits>
#include <optional>
#include <string_view>

namespace podpipe::tar {
namespace {

using detail::field;

enum class state { header, content, meta, padding, ended, failed };
enum class meta_kind { pax_local, pax_global, long_name, long_link };

// Values from pax 'x' headers and GNU 'L'/'K' entries waiting for the next real header.
struct overrides {
    std::optional<std::string> pax_path, pax_linkpath, gnu_longname, gnu_longlink;
    std::optional<std::string> uname, gname;
    std::optional<std::uint64_t> size;
    std::optional<std::int64_t> mtime;
    std::optional<std::uint32_t> uid, gid;
    bool any = false;
};

std::string_view as_chars(const std::byte* p, std::size_t n) noexcept {
    return {reinterpret_cast<const char*>(p), n};
}

// A NUL-terminated (or full-width) string field.
std::string_view cstr(const std::byte* h, field f) noexcept {
    std::string_view s = as_chars(h + f.offset, f.size);
    return s.substr(0, s.find('\0'));
}

// For error details: printable, bounded, quoted.
std::string quoted(std::string_view s) {
    constexpr std::size_t max_shown = 200;
    std::string out = "'";
    for (std::size_t i = 0; i < s.size() && i < max_shown; ++i) {
        const auto c = static_cast<unsigned char>(s[i]);
        out.push_back(c >= 0x20 && c < 0x7f ? static_cast<char>(c) : '?');
    }
    if (s.size() > max_shown)
        out += "...";
    out.push_back('\'');
    return out;
}

struct number {
    bool negative = false;
    std::uint64_t magnitude = 0;
};

enum class num_status { ok, bad, overflow };

// A numeric header field: octal digits with optional leading spaces, terminated by spaces or
// NULs (an all-space/NUL field is 0), or GNU base-256 (high bit of the first byte set).
num_status parse_numeric(const std::byte* h, field f, number& out) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(h + f.offset);
    const std::size_t n = f.size;
    out = {};
    if (p[0] & 0x80) {
        const bool neg = (p[0] & 0x40) != 0;
        const unsigned char flip = neg ? 0xff : 0x00;
        std::uint64_t v = (p[0] ^ flip) & 0x3f;
        for (std::size_t i = 1; i < n; ++i) {
            if (v >> 56)
                return num_status::overflow;
            v = (v << 8) | static_cast<unsigned char>(p[i] ^ flip);
        }
        if (neg) {
            // Value is -1 - v (two's complement of the inverted bits).
            if (v == std::numeric_limits<std::uint64_t>::max())
                return num_status::overflow;
            out.negative = true;
            out.magnitude = v + 1;
        } else {
            out.magnitude = v;
        }
        return num_status::ok;
    }
    std::size_t i = 0;
    while (i < n && p[i] == ' ')
        ++i;
    std::uint64_t v = 0;
    std::size_t digits = 0;
    for (; i < n && p[i] >= '0' && p[i] <= '7'; ++i, ++digits) {
        if (v >> 61)
            return num_status::overflow;
        v = v * 8 + (p[i] - '0');
    }
    for (; i < n; ++i) {
        if (p[i] != ' ' && p[i] != 0)
            return num_status::bad;
    }
    (void)digits; // an all-space/NUL field reads as 0
    out.magnitude = v;
    return num_status::ok;
}

// Strict decimal for pax values: digits only, no sign, no overflow.
bool parse_pax_unsigned(std::string_view s, std::uint64_t& v) noexcept {
    if (s.empty())
        return false;
    for (char c : s) {
        if (c < '0' || c > '9')
            return false;
    }
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    return ec == std::errc() && ptr == s.data() + s.size();
}

// pax mtime: [-]digits[.digits]; keeps the integer seconds, rounding toward -infinity.
bool parse_pax_time(std::string_view s, std::int64_t& out) noexcept {
    bool neg = false;
    if (!s.empty() && s[0] == '-') {
        neg = true;
        s.remove_prefix(1);
    }
    std::string_view frac;
    if (auto dot = s.find('.'); dot != std::string_view::npos) {
        frac = s.substr(dot + 1);
        s = s.substr(0, dot);
        if (frac.empty())
            return false;
        for (char c : frac) {
            if (c < '0' || c > '9')
                return false;
        }
    }
    std::uint64_t secs = 0;
    if (!parse_pax_unsigned(s, secs))
        return false;
    const bool frac_nonzero = frac.find_first_not_of('0') != std::string_view::npos;
    if (!neg) {
        if (secs > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
            return false;
        out = static_cast<std::int64_t>(secs);
        return true;
    }
    // -secs, minus one more when a non-zero fraction is present.
    const std::uint64_t mag = secs + (frac_nonzero ? 1 : 0);
    if (mag < secs || mag > std::uint64_t{1} << 63)
        return false;
    out = mag == std::uint64_t{1} << 63 ? std::numeric_limits<std::int64_t>::min()
                                        : -static_cast<std::int64_t>(mag);
    return true;
}

void strip_dot_slash(std::string& p) {
    if (p.size() >= 2 && p[0] == '.' && p[1] == '/')
        p.erase(0, 2);
}

bool has_no_data(entry_type t) noexcept {
    switch (t) {
    case entry_type::symlink:
    case entry_type::directory:
    case entry_type::char_device:
    case entry_type::block_device:
    case entry_type::fifo:
        return true;
    default:
        return false;
    }
}

std::size_t padding_for_size(std::uint64_t n) noexcept {
    return static_cast<std::size_t>((block_bytes - n % block_bytes) % block_bytes);
}

alignas(64) constexpr std::byte zero_block[block_bytes] = {};

} // namespace

class parser::impl {
public:
    explicit impl(parser_handler& h) : handler_(h) {}

    result<void> feed(std::span<const std::byte> in);
    result<void> finish();

    bool ended() const noexcept { return state_ == state::ended; }
    std::optional<resume_point> where() const;
    result<void> resume_at(const resume_point& p);
    bool end_marker_seen() const noexcept { return marker_seen_; }
    std::uint64_t bytes_consumed() const noexcept { return offset_; }
    const std::string& detail() const noexcept { return detail_; }

private:
    // The numeric ustar fields of an entry's header.
    struct ustar_numbers {
        number mode, uid, gid, mtime;
    };

    result<void> process_header(const std::byte* h);
    result<void> process_zero_block();
    result<void> verify_checksum(const std::byte* h);
    result<void> begin_meta(char typeflag, std::uint64_t size);
    result<void> parse_ustar_numbers(const std::byte* h, ustar_numbers& n);
    std::uint64_t fill_entry(const std::byte* h, const ustar_numbers& n, std::uint64_t header_size);
    std::uint64_t set_type(char typeflag, std::uint64_t size);
    static void normalise_paths(entry& e);
    result<void> deliver_entry(std::uint64_t data_size);
    result<void> process_meta();
    result<void> apply_pax_record(std::string_view key, std::string_view value);
    result<void> end_entry();
    result<void> handler_failed(std::error_code ec, const char* callback);
    failure<std::error_code> fail_with(errc e, std::string detail);
    std::string header_context() const;

    parser_handler& handler_;
    state state_ = state::header;
    std::error_code error_;
    std::string detail_;

    std::uint64_t offset_ = 0;        // bytes processed
    std::uint64_t header_offset_ = 0; // where the header being processed starts
    std::uint64_t remaining_ = 0;     // content or meta bytes left
    std::uint64_t entry_size_ = 0;    // content size of the current entry / meta payload
    std::size_t pad_ = 0;             // padding bytes left
    std::size_t hdr_fill_ = 0;
    bool zero_seen_ = false;
    bool marker_seen_ = false; // two zero blocks read (not only EOF on a boundary)
    meta_kind meta_kind_ = meta_kind::pax_local;

    alignas(8) std::byte hdr_[block_bytes];
    std::string meta_;
    overrides pending_;
    entry entry_;
    std::string last_path_; // for error details: the entry before the failing header
};

failure<std::error_code> parser::impl::fail_with(errc e, std::string detail) {
    state_ = state::failed;
    error_ = make_error_code(e);
    detail_ = std::move(detail);
    return fail(error_);
}

std::string parser::impl::header_context() const {
    std::string s = "header at offset " + std::to_string(header_offset_);
    if (!last_path_.empty())
        s += " (after entry " + quoted(last_path_) + ")";
    return s;
}

result<void> parser::impl::handler_failed(std::error_code ec, const char* callback) {
    state_ = state::failed;
    error_ = ec;
    detail_ = std::string("stopped by the receiver in ") + callback + " for entry " +
              quoted(entry_.path) + " at offset " + std::to_string(offset_) + ": " + ec.message();
    return fail(ec);
}

result<void> parser::impl::end_entry() {
    if (auto r = handler_.on_entry_end(); !r)
        return handler_failed(r.error(), "on_entry_end");
    return {};
}

std::optional<resume_point> parser::impl::where() const {
    resume_point p;
    p.offset = offset_;
    if (state_ == state::header && hdr_fill_ == 0 && !zero_seen_ && !pending_.any)
        return p;
    // Content of a regular file only: a hardlink's or an unknown type's data is dropped by
    // an extractor, and resuming there would gain nothing.
    if (state_ == state::content && entry_.type == entry_type::regular &&
        remaining_ < entry_size_ && entry_size_ == entry_.size) {
        p.in_content = true;
        p.current = entry_;
        p.content_done = entry_size_ - remaining_;
        return p;
    }
    return std::nullopt;
}

result<void> parser::impl::resume_at(const resume_point& p) {
    if (offset_ != 0 || state_ != state::header || hdr_fill_ != 0)
        return fail_with(errc::bad_header, "resuming a parser that has already read a stream");
    if (p.offset % block_bytes != 0 && !p.in_content)
        return fail_with(errc::bad_header, "resume point between entries at offset " +
                                               std::to_string(p.offset) +
                                               ", not on a 512-byte block");
    if (p.in_content) {
        if (p.current.type != entry_type::regular || p.content_done >= p.current.size ||
            p.content_done > p.offset)
            return fail_with(errc::bad_header, "resume point inside " + quoted(p.current.path) +
                                                   " at content byte " +
                                                   std::to_string(p.content_done) +
                                                   " of " + std::to_string(p.current.size));
        entry_ = p.current;
        last_path_ = entry_.path;
        entry_size_ = p.current.size;
        remaining_ = p.current.size - p.content_done;
        state_ = state::content;
    }
    offset_ = p.offset;
    return {};
}

result<void> parser::impl::feed(std::span<const std::byte> in) {
    const std::byte* p = in.data();
    std::size_t n = in.size();
    while (n > 0) {
        switch (state_) {
        case state::failed:
            return fail(error_);
        case state::ended:
            return {};
        case state::header: {
            if (hdr_fill_ == 0 && n >= block_bytes) {
                header_offset_ = offset_;
                offset_ += block_bytes;
                const std::byte* h = p;
                p += block_bytes;
                n -= block_bytes;
                PODPIPE_TRY(process_header(h));
                break;
            }
            if (hdr_fill_ == 0)
                header_offset_ = offset_;
            const std::size_t take = std::min(block_bytes - hdr_fill_, n);
            std::memcpy(hdr_ + hdr_fill_, p, take);
            hdr_fill_ += take;
            p += take;
            n -= take;
            offset_ += take;
            if (hdr_fill_ == block_bytes) {
                hdr_fill_ = 0;
                PODPIPE_TRY(process_header(hdr_));
            }
            break;
        }
        case state::content: {
            const std::size_t take =
                remaining_ < n ? static_cast<std::size_t>(remaining_) : n;
            offset_ += take;
            remaining_ -= take;
            if (auto r = handler_.on_data({p, take}); !r)
                return handler_failed(r.error(), "on_data");
            p += take;
            n -= take;
            if (remaining_ == 0) {
                pad_ = padding_for_size(entry_size_);
                state_ = pad_ ? state::padding : state::header;
                PODPIPE_TRY(end_entry());
            }
            break;
        }
        case state::meta: {
            const std::size_t take =
                remaining_ < n ? static_cast<std::size_t>(remaining_) : n;
            meta_.append(reinterpret_cast<const char*>(p), take);
            offset_ += take;
            remaining_ -= take;
            p += take;
            n -= take;
            if (remaining_ == 0) {
                pad_ = padding_for_size(entry_size_);
                state_ = pad_ ? state::padding : state::header;
                PODPIPE_TRY(process_meta());
            }
            break;
        }
        case state::padding: {
            const std::size_t take = std::min(pad_, n);
            pad_ -= take;
            p += take;
            n -= take;
            offset_ += take;
            if (pad_ == 0)
                state_ = state::header;
            break;
        }
        }
    }
    if (state_ == state::failed)
        return fail(error_);
    return {};
}

// A header block, in stages: the end-of-archive marker, the checksum, the size; then either an
// extended header (its payload follows) or an entry: ustar numbers, the entry's fields with the
// pending overrides applied, its type, its normalised paths, and the handler.
result<void> parser::impl::process_header(const std::byte* h) {
    if (std::memcmp(h, zero_block, block_bytes) == 0)
        return process_zero_block();
    // A lone zero block followed by a header: GNU tar warns and carries on; so do we.
    zero_seen_ = false;
    PODPIPE_TRY(verify_checksum(h));

    const auto typeflag = std::to_integer<char>(h[detail::f_typeflag.offset]);
    number size_n;
    if (auto st = parse_numeric(h, detail::f_size, size_n); st != num_status::ok || size_n.negative)
        return fail_with(st == num_status::overflow ? errc::too_large : errc::bad_header,
                         header_context() + ": the size field is not a valid number");

    switch (typeflag) {
    case 'x':
    case 'X': // Solaris' pre-POSIX name for 'x'
    case 'g':
    case 'L':
    case 'K':
        return begin_meta(typeflag, size_n.magnitude);
    case 'S':
        return fail_with(errc::unsupported,
                         header_context() + ": GNU sparse file " +
                             quoted(cstr(h, detail::f_name)) + " is not supported");
    default:
        break;
    }

    ustar_numbers n;
    PODPIPE_TRY(parse_ustar_numbers(h, n));
    const std::uint64_t size = fill_entry(h, n, size_n.magnitude);
    if (entry_.path.find('\0') != std::string::npos ||
        entry_.link_target.find('\0') != std::string::npos)
        return fail_with(errc::bad_header,
                         header_context() + ": entry " + quoted(entry_.path) +
                             " has a NUL byte inside its name or link target");
    const std::uint64_t data_size = set_type(typeflag, size);
    if (entry_.path.empty())
        return fail_with(errc::bad_header, header_context() + ": entry with an empty name");
    normalise_paths(entry_);
    return deliver_entry(data_size);
}

result<void> parser::impl::process_zero_block() {
    if (pending_.any)
        return fail_with(errc::bad_header,
                         header_context() + ": an extended header is followed by the "
                                            "end-of-archive marker instead of an entry");
    if (zero_seen_) {
        state_ = state::ended;
        marker_seen_ = true;
        return {};
    }
    zero_seen_ = true;
    return {};
}

// Checksum (ustar "chksum"): the sum of all header bytes with the field itself taken as spaces.
// Historic tars summed signed chars, so both sums are accepted.
result<void> parser::impl::verify_checksum(const std::byte* h) {
    number stored;
    if (parse_numeric(h, detail::f_chksum, stored) != num_status::ok || stored.negative)
        return fail_with(errc::bad_header, header_context() +
                                               ": the checksum field is not an octal number "
                                               "(not a tar archive?)");
    std::uint64_t usum = 0;
    std::int64_t ssum = 0;
    for (std::size_t i = 0; i < block_bytes; ++i) {
        const bool in_chk =
            i >= detail::f_chksum.offset && i < detail::f_chksum.offset + detail::f_chksum.size;
        const auto b = in_chk ? static_cast<unsigned char>(' ') : std::to_integer<unsigned char>(h[i]);
        usum += b;
        ssum += static_cast<signed char>(b);
    }
    if (stored.magnitude != usum && static_cast<std::int64_t>(stored.magnitude) != ssum)
        return fail_with(errc::bad_checksum,
                         header_context() + ": checksum mismatch (stored " +
                             std::to_string(stored.magnitude) + ", computed " +
                             std::to_string(usum) + "); the name field reads " +
                             quoted(cstr(h, detail::f_name)));
    return {};
}

// An extended header (pax 'x'/'g', GNU 'L'/'K'): its payload of `size` bytes follows.
result<void> parser::impl::begin_meta(char typeflag, std::uint64_t size) {
    if (size > max_extended_header_bytes)
        return fail_with(errc::too_large,
                         header_context() + ": extended header of " + std::to_string(size) +
                             " bytes exceeds the " + std::to_string(max_extended_header_bytes) +
                             "-byte limit");
    meta_kind_ = typeflag == 'g'   ? meta_kind::pax_global
                 : typeflag == 'L' ? meta_kind::long_name
                 : typeflag == 'K' ? meta_kind::long_link
                                   : meta_kind::pax_local;
    meta_.clear();
    meta_.reserve(static_cast<std::size_t>(size));
    entry_size_ = size;
    remaining_ = size;
    if (remaining_ == 0) {
        state_ = state::header;
        return process_meta();
    }
    state_ = state::meta;
    return {};
}

result<void> parser::impl::parse_ustar_numbers(const std::byte* h, ustar_numbers& n) {
    const char* bad_field = nullptr;
    num_status st = num_status::ok;
    if ((st = parse_numeric(h, detail::f_mode, n.mode)) != num_status::ok || n.mode.negative)
        bad_field = "mode";
    else if ((st = parse_numeric(h, detail::f_uid, n.uid)) != num_status::ok || n.uid.negative ||
             n.uid.magnitude > std::numeric_limits<std::uint32_t>::max())
        bad_field = "uid";
    else if ((st = parse_numeric(h, detail::f_gid, n.gid)) != num_status::ok || n.gid.negative ||
             n.gid.magnitude > std::numeric_limits<std::uint32_t>::max())
        bad_field = "gid";
    else if ((st = parse_numeric(h, detail::f_mtime, n.mtime)) != num_status::ok ||
             n.mtime.magnitude > (std::uint64_t{1} << 63) ||
             (!n.mtime.negative && n.mtime.magnitude == (std::uint64_t{1} << 63)))
        bad_field = "mtime";
    if (bad_field)
        return fail_with(errc::bad_header, header_context() + ": the " + bad_field +
                                               " field is not a valid number");
    return {};
}

// The entry's fields from the header, each overridden by a pending pax record or GNU long
// name/link; the pending overrides are consumed. Returns the entry's size field.
std::uint64_t parser::impl::fill_entry(const std::byte* h, const ustar_numbers& n,
                                       std::uint64_t header_size) {
    const bool posix = std::memcmp(h + detail::f_magic.offset, "ustar\0", 6) == 0;
    const bool gnu = std::memcmp(h + detail::f_magic.offset, "ustar  \0", 8) == 0;
    entry& e = entry_;
    overrides& o = pending_;

    // Path: pax path > GNU long name > ustar prefix + "/" + name.
    if (o.pax_path) {
        e.path = std::move(*o.pax_path);
    } else if (o.gnu_longname) {
        e.path = std::move(*o.gnu_longname);
    } else {
        const std::string_view name = cstr(h, detail::f_name);
        const std::string_view prefix = posix ? cstr(h, detail::f_prefix) : std::string_view();
        e.path.clear();
        if (!prefix.empty()) {
            e.path.append(prefix);
            e.path.push_back('/');
        }
        e.path.append(name);
    }
    if (o.pax_linkpath)
        e.link_target = std::move(*o.pax_linkpath);
    else if (o.gnu_longlink)
        e.link_target = std::move(*o.gnu_longlink);
    else
        e.link_target.assign(cstr(h, detail::f_linkname));

    if (o.uname)
        e.uname = std::move(*o.uname);
    else if (posix || gnu)
        e.uname.assign(cstr(h, detail::f_uname));
    else
        e.uname.clear();
    if (o.gname)
        e.gname = std::move(*o.gname);
    else if (posix || gnu)
        e.gname.assign(cstr(h, detail::f_gname));
    else
        e.gname.clear();

    e.mode = static_cast<std::uint32_t>(n.mode.magnitude & 07777u);
    e.uid = o.uid ? *o.uid : static_cast<std::uint32_t>(n.uid.magnitude);
    e.gid = o.gid ? *o.gid : static_cast<std::uint32_t>(n.gid.magnitude);
    if (o.mtime)
        e.mtime_sec = *o.mtime;
    else if (n.mtime.negative)
        e.mtime_sec = n.mtime.magnitude == (std::uint64_t{1} << 63)
                          ? std::numeric_limits<std::int64_t>::min()
                          : -static_cast<std::int64_t>(n.mtime.magnitude);
    else
        e.mtime_sec = static_cast<std::int64_t>(n.mtime.magnitude);
    const std::uint64_t size = o.size ? *o.size : header_size;

    if (o.any)
        pending_ = overrides{};
    return size;
}

// Type: '\0' is the pre-POSIX regular file, '7' a contiguous file (POSIX: treat as regular);
// an old regular entry whose name ends in '/' is a directory (v7 had no typeflag for them).
// Returns how many data bytes follow the header.
std::uint64_t parser::impl::set_type(char typeflag, std::uint64_t size) {
    entry& e = entry_;
    std::uint64_t data_size = size;
    switch (typeflag) {
    case '\0':
    case '0':
    case '7':
        if (!e.path.empty() && e.path.back() == '/' && typeflag != '7') {
            e.type = entry_type::directory;
            data_size = 0;
        } else {
            e.type = entry_type::regular;
        }
        break;
    default:
        e.type = static_cast<entry_type>(typeflag);
        // POSIX: "No data logical records are stored for types 1, 2, or 5" and none for 3, 4, 6;
        // hardlinks are the exception pax allows (a link with data), so only these skip it.
        if (has_no_data(e.type))
            data_size = 0;
        break;
    }
    e.size = data_size;
    return data_size;
}

// No leading "./", no trailing '/' on a directory, "." for the root.
void parser::impl::normalise_paths(entry& e) {
    strip_dot_slash(e.path);
    if (e.type == entry_type::directory) {
        while (!e.path.empty() && e.path.back() == '/')
            e.path.pop_back();
    }
    if (e.path.empty())
        e.path = ".";
    if (e.type == entry_type::hardlink)
        strip_dot_slash(e.link_target);
}

// Hands the entry to the handler; its `data_size` bytes of content follow.
result<void> parser::impl::deliver_entry(std::uint64_t data_size) {
    last_path_ = entry_.path;
    if (auto r = handler_.on_entry(entry_); !r)
        return handler_failed(r.error(), "on_entry");
    if (data_size == 0) {
        state_ = state::header;
        return end_entry();
    }
    entry_size_ = data_size;
    remaining_ = data_size;
    state_ = state::content;
    return {};
}

result<void> parser::impl::apply_pax_record(std::string_view key, std::string_view value) {
    overrides& o = pending_;
    // An empty value removes an earlier record for the keyword (POSIX pax, "pax Extended
    // Header": "the value ... shall be deleted").
    const bool unset = value.empty();
    auto bad = [&](const char* what) {
        return fail_with(errc::bad_pax, header_context() + ": pax record " + quoted(key) + " " +
                                            what + ": " + quoted(value));
    };
    if (key == "path") {
        if (unset)
            o.pax_path.reset();
        else
            o.pax_path.emplace(value);
    } else if (key == "linkpath") {
        if (unset)
            o.pax_linkpath.reset();
        else
            o.pax_linkpath.emplace(value);
    } else if (key == "uname") {
        if (unset)
            o.uname.reset();
        else
            o.uname.emplace(value);
    } else if (key == "gname") {
        if (unset)
            o.gname.reset();
        else
            o.gname.emplace(value);
    } else if (key == "size") {
        std::uint64_t v = 0;
        if (unset)
            o.size.reset();
        else if (!parse_pax_unsigned(value, v))
            return bad("is not a decimal size");
        else
            o.size = v;
    } else if (key == "uid" || key == "gid") {
        std::uint64_t v = 0;
        auto& slot = key == "uid" ? o.uid : o.gid;
        if (unset)
            slot.reset();
        else if (!parse_pax_unsigned(value, v) || v > std::numeric_limits<std::uint32_t>::max())
            return bad("is not a 32-bit id");
        else
            slot = static_cast<std::uint32_t>(v);
    } else if (key == "mtime") {
        std::int64_t v = 0;
        if (unset)
            o.mtime.reset();
        else if (!parse_pax_time(value, v))
            return bad("is not a time");
        else
            o.mtime = v;
    } else if (key.substr(0, 11) == "GNU.sparse.") {
        return fail_with(errc::unsupported,
                         header_context() + ": GNU sparse files (pax GNU.sparse.*) are not supported");
    }
    // Everything else (atime, ctime, charset, comment, hdrcharset, SCHILY.*, LIBARCHIVE.*) is
    // irrelevant to extraction and ignored, as POSIX allows for keywords a reader does not use.
    o.any = true;
    return {};
}

result<void> parser::impl::process_meta() {
    std::string_view data = meta_;
    switch (meta_kind_) {
    case meta_kind::long_name:
    case meta_kind::long_link: {
        // GNU stores the name with its terminating NUL (and sometimes more padding NULs).
        while (!data.empty() && data.back() == '\0')
            data.remove_suffix(1);
        if (data.find('\0') != std::string_view::npos)
            return fail_with(errc::bad_header,
                             header_context() + ": GNU long name contains a NUL byte");
        if (meta_kind_ == meta_kind::long_name)
            pending_.gnu_longname.emplace(data);
        else
            pending_.gnu_longlink.emplace(data);
        pending_.any = true;
        return {};
    }
    case meta_kind::pax_local:
    case meta_kind::pax_global:
        break;
    }
    // Records: "<length> <keyword>=<value>\n", length in decimal counting the whole record.
    while (!data.empty()) {
        std::size_t i = 0;
        std::uint64_t len = 0;
        while (i < data.size() && data[i] >= '0' && data[i] <= '9' && i < 19) {
            len = len * 10 + static_cast<std::uint64_t>(data[i] - '0');
            ++i;
        }
        if (i == 0 || i >= data.size() || data[i] != ' ' || len <= i + 1 || len > data.size())
            return fail_with(errc::bad_pax, header_context() + ": a pax record has a bad length");
        const std::string_view record = data.substr(0, static_cast<std::size_t>(len));
        data.remove_prefix(static_cast<std::size_t>(len));
        if (record.back() != '\n')
            return fail_with(errc::bad_pax,
                             header_context() + ": a pax record does not end in a newline");
        const std::string_view kv = record.substr(i + 1, record.size() - i - 2);
        const std::size_t eq = kv.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return fail_with(errc::bad_pax,
                             header_context() + ": a pax record has no keyword=value");
        const std::string_view key = kv.substr(0, eq);
        const std::string_view value = kv.substr(eq + 1);
        if (meta_kind_ == meta_kind::pax_global) {
            if (key == "comment") {
                if (auto m = parse_manifest_comment(value)) {
                    if (auto r = handler_.on_manifest(*m); !r)
                        return handler_failed(r.error(), "on_manifest");
                } else if (auto p = parse_problems_comment(value)) {
                    if (auto r = handler_.on_sender_problems(*p); !r)
                        return handler_failed(r.error(), "on_sender_problems");
                } else if (auto d = parse_deletions_comment(value)) {
                    if (auto r = handler_.on_deletions(*d); !r)
                        return handler_failed(r.error(), "on_deletions");
                }
            }
            continue; // other global records do not affect extraction
        }
        PODPIPE_TRY(apply_pax_record(key, value));
    }
    return {};
}

result<void> parser::impl::finish() {
    switch (state_) {
    case state::failed:
        return fail(error_);
    case state::ended:
        return {};
    case state::header:
        if (hdr_fill_ == 0) {
            if (pending_.any)
                return fail_with(errc::truncated,
                                 "the archive ends after an extended header at offset " +
                                     std::to_string(header_offset_) + ", before its entry");
            state_ = state::ended;
            return {};
        }
        return fail_with(errc::truncated,
                         "the archive ends inside the header at offset " +
                             std::to_string(header_offset_) + " (" + std::to_string(hdr_fill_) +
                             " of 512 bytes)");
    case state::content:
        return fail_with(errc::truncated, "the archive ends inside the content of entry " +
                                              quoted(entry_.path) + " (" +
                                              std::to_string(remaining_) + " of " +
                                              std::to_string(entry_size_) + " bytes missing)");
    case state::meta:
        return fail_with(errc::truncated,
                         "the archive ends inside the extended header at offset " +
                             std::to_string(header_offset_));
    case state::padding:
        return fail_with(errc::truncated, "the archive ends inside the padding after offset " +
                                              std::to_string(header_offset_));
    }
    return {};
}

parser::parser(parser_handler& h) : impl_(std::make_unique<impl>(h)) {}
parser::parser(parser&&) noexcept = default;
parser& parser::operator=(parser&&) noexcept = default;
parser::~parser() = default;

result<void> parser::feed(std::span<const std::byte> bytes) { return impl_->feed(bytes); }
result<void> parser::finish() { return impl_->finish(); }
std::optional<resume_point> parser::where() const { return impl_->where(); }

result<void> parser::resume_at(const resume_point& p) { return impl_->resume_at(p); }

bool parser::ended() const noexcept { return impl_->ended(); }
bool parser::end_marker_seen() const noexcept { return impl_->end_marker_seen(); }
std::uint64_t parser::bytes_consumed() const noexcept { return impl_->bytes_consumed(); }
std::string parser::last_error_detail() const { return impl_->detail(); }

} // namespace podpipe::tar
