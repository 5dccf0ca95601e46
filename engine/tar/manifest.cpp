#include "engine/tar/manifest.hpp"

#include "engine/common/assert.hpp"

#include <charconv>

#include <xxhash.h>

namespace podpipe::tar {
namespace {

void put_u64(std::string& out, std::uint64_t v) {
    char b[8];
    for (int i = 0; i < 8; ++i)
        b[i] = static_cast<char>((v >> (8 * i)) & 0xff);
    out.append(b, 8);
}

void put_bytes(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

std::string_view strip_dot_slash(std::string_view p) {
    if (p.size() >= 2 && p[0] == '.' && p[1] == '/')
        p.remove_prefix(2);
    return p;
}

constexpr std::string_view comment_prefix = "podpipe-manifest v1 ";

} // namespace

void manifest_builder::state_deleter::operator()(XXH3_state_s* s) const noexcept {
    XXH3_freeState(s);
}

manifest_builder::manifest_builder() : state_(XXH3_createState()) {
    PODPIPE_CHECK(state_ != nullptr, "XXH3_createState failed (out of memory)");
    reset();
}

manifest_builder::manifest_builder(manifest_builder&&) noexcept = default;
manifest_builder& manifest_builder::operator=(manifest_builder&&) noexcept = default;
manifest_builder::~manifest_builder() = default;

void manifest_builder::reset() {
    XXH3_64bits_reset(state_.get());
    entries_ = 0;
    content_bytes_ = 0;
    current_content_ = 0;
}

void manifest_builder::end_entry() {
    if (entries_ == 0 && current_content_ == 0)
        return;
    char b[9];
    b[0] = 'C';
    for (int i = 0; i < 8; ++i)
        b[1 + i] = static_cast<char>((current_content_ >> (8 * i)) & 0xff);
    XXH3_64bits_update(state_.get(), b, sizeof b);
    current_content_ = 0;
}

void manifest_builder::add_entry(const entry& e) {
    end_entry();
    std::string_view path = strip_dot_slash(e.path);
    if (e.type == entry_type::directory) {
        while (!path.empty() && path.back() == '/')
            path.remove_suffix(1);
    }
    if (path.empty())
        path = ".";
    std::string_view link = e.link_target;
    if (e.type == entry_type::hardlink)
        link = strip_dot_slash(link);

    scratch_.clear();
    scratch_.push_back('E');
    put_bytes(scratch_, path);
    scratch_.push_back(static_cast<char>(e.type));
    put_u64(scratch_, e.mode & 07777u);
    put_u64(scratch_, e.size);
    put_u64(scratch_, static_cast<std::uint64_t>(e.mtime_sec));
    put_bytes(scratch_, link);
    XXH3_64bits_update(state_.get(), scratch_.data(), scratch_.size());
    ++entries_;
}

void manifest_builder::add_content(std::span<const std::byte> bytes) {
    if (bytes.empty())
        return;
    XXH3_64bits_update(state_.get(), bytes.data(), bytes.size());
    current_content_ += bytes.size();
    content_bytes_ += bytes.size();
}

manifest manifest_builder::finish() {
    end_entry();
    manifest m;
    m.entries = entries_;
    m.content_bytes = content_bytes_;
    m.digest = XXH3_64bits_digest(state_.get());
    return m;
}

std::string format_manifest_comment(const manifest& m) {
    std::string out(comment_prefix);
    char num[24];
    out += "entries=";
    out.append(num, std::to_chars(num, num + sizeof num, m.entries).ptr);
    out += " bytes=";
    out.append(num, std::to_chars(num, num + sizeof num, m.content_bytes).ptr);
    out += " digest=";
    static constexpr char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; --i)
        out.push_back(hex[(m.digest >> (4 * i)) & 0xf]);
    return out;
}

namespace {

// Consumes "<key><decimal>" from s; strict: at least one digit, no sign, no leading '+',
// no overflow, no leading zeros except "0" itself.
bool take_decimal(std::string_view& s, std::string_view key, std::uint64_t& v) {
    if (s.substr(0, key.size()) != key)
        return false;
    s.remove_prefix(key.size());
    std::size_t n = 0;
    while (n < s.size() && s[n] >= '0' && s[n] <= '9')
        ++n;
    if (n == 0 || (n > 1 && s[0] == '0'))
        return false;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + n, v);
    if (ec != std::errc() || ptr != s.data() + n)
        return false;
    s.remove_prefix(n);
    return true;
}

} // namespace

std::optional<manifest> parse_manifest_comment(std::string_view s) {
    if (s.substr(0, comment_prefix.size()) != comment_prefix)
        return std::nullopt;
    s.remove_prefix(comment_prefix.size());
    manifest m;
    if (!take_decimal(s, "entries=", m.entries))
        return std::nullopt;
    if (!take_decimal(s, " bytes=", m.content_bytes))
        return std::nullopt;
    constexpr std::string_view dkey = " digest=";
    if (s.substr(0, dkey.size()) != dkey)
        return std::nullopt;
    s.remove_prefix(dkey.size());
    if (s.size() != 16)
        return std::nullopt;
    std::uint64_t d = 0;
    for (char c : s) {
        unsigned v;
        if (c >= '0' && c <= '9')
            v = static_cast<unsigned>(c - '0');
        else if (c >= 'a' && c <= 'f')
            v = static_cast<unsigned>(c - 'a' + 10);
        else
            return std::nullopt;
        d = (d << 4) | v;
    }
    m.digest = d;
    return m;
}

} // namespace podpipe::tar
