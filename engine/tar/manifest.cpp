#include "engine/tar/manifest.hpp"

#include "engine/common/assert.hpp"

#include <algorithm>
#include <charconv>

#define XXH_STATIC_LINKING_ONLY // the state's layout, for save_state/restore_state
#include <xxhash.h>

#include <cstring>

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

void manifest_builder::add_deletion(std::string_view path) {
    end_entry();
    scratch_.clear();
    scratch_.push_back('D');
    put_bytes(scratch_, path);
    XXH3_64bits_update(state_.get(), scratch_.data(), scratch_.size());
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

manifest manifest_builder::peek() const {
    return manifest{entries_, content_bytes_, XXH3_64bits_digest(state_.get())};
}

namespace {

constexpr std::string_view state_tag = "podpipe-manifest-state v1 xxh";

bool take_u64(std::string_view& s, std::uint64_t& v) {
    if (s.size() < 8)
        return false;
    v = 0;
    for (int i = 0; i < 8; ++i)
        v |= static_cast<std::uint64_t>(static_cast<unsigned char>(s[i])) << (8 * i);
    s.remove_prefix(8);
    return true;
}

} // namespace

// Only the parts of XXH3's state that feeding changes are kept: the accumulators, the
// buffered tail, the stripe and length counters. The rest (secret, its size, the seed) is what
// XXH3_64bits_reset() sets, so a restore starts from a reset state and overwrites the fed
// parts. The xxHash version is part of the tag: another version may lay its state out
// differently, and a ledger may outlive an upgrade.
std::string manifest_builder::save_state() const {
    const XXH3_state_t& st = *state_;
    std::string out(state_tag);
    put_u64(out, XXH_VERSION_NUMBER);
    for (const XXH64_hash_t a : st.acc)
        put_u64(out, a);
    // The whole buffer: the digest of a short tail reads the previous stripe's end from it.
    put_u64(out, st.bufferedSize);
    out.append(reinterpret_cast<const char*>(st.buffer), sizeof st.buffer);
    put_u64(out, st.nbStripesSoFar);
    put_u64(out, st.totalLen);
    put_u64(out, entries_);
    put_u64(out, content_bytes_);
    put_u64(out, current_content_);
    return out;
}

bool manifest_builder::restore_state(std::string_view s) {
    if (!s.starts_with(state_tag))
        return false;
    s.remove_prefix(state_tag.size());
    std::uint64_t version = 0;
    std::uint64_t acc[8] = {};
    std::uint64_t buffered = 0;
    if (!take_u64(s, version) || version != XXH_VERSION_NUMBER)
        return false;
    for (std::uint64_t& a : acc)
        if (!take_u64(s, a))
            return false;
    if (!take_u64(s, buffered) || buffered > XXH3_INTERNALBUFFER_SIZE ||
        s.size() < XXH3_INTERNALBUFFER_SIZE)
        return false;
    const std::string_view tail = s.substr(0, XXH3_INTERNALBUFFER_SIZE);
    s.remove_prefix(XXH3_INTERNALBUFFER_SIZE);
    std::uint64_t stripes = 0, total = 0, entries = 0, content = 0, current = 0;
    if (!take_u64(s, stripes) || !take_u64(s, total) || !take_u64(s, entries) ||
        !take_u64(s, content) || !take_u64(s, current) || !s.empty())
        return false;
    XXH3_state_t& st = *state_;
    // The buffer holds what is not yet a whole stripe block; a state XXH3 wrote never has more
    // stripes than a block, nor a length below what it buffered.
    if (stripes >= st.nbStripesPerBlock || total < buffered || current > content)
        return false;
    XXH3_64bits_reset(&st);
    for (int i = 0; i < 8; ++i)
        st.acc[i] = acc[i];
    std::memcpy(st.buffer, tail.data(), tail.size());
    st.bufferedSize = static_cast<XXH32_hash_t>(buffered);
    st.nbStripesSoFar = static_cast<std::size_t>(stripes);
    st.totalLen = total;
    entries_ = entries;
    content_bytes_ = content;
    current_content_ = current;
    return true;
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

namespace {
constexpr std::string_view problems_prefix = "podpipe-problems v1 ";
} // namespace

std::string printable_line(std::string_view line) {
    line = line.substr(0, sender_problems::max_line_bytes);
    std::string out;
    out.reserve(line.size());
    for (std::size_t i = 0; i < line.size();) {
        const auto c = static_cast<unsigned char>(line[i]);
        // A valid UTF-8 sequence is kept whole; any other byte becomes '?'.
        const std::size_t len = c < 0x80 ? 1 : (c >= 0xc2 && c <= 0xdf) ? 2
                                               : (c >= 0xe0 && c <= 0xef) ? 3
                                               : (c >= 0xf0 && c <= 0xf4) ? 4
                                                                          : 0;
        bool ok = len > 0 && i + len <= line.size();
        for (std::size_t k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(line[i + k]) & 0xc0) == 0x80;
        if (ok && len > 2) { // no overlong forms, surrogates or code points past U+10FFFF
            const auto c1 = static_cast<unsigned char>(line[i + 1]);
            ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 > 0x9f) &&
                 !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 > 0x8f);
        }
        if (ok && len == 1 && (c < 0x20 || c == 0x7f))
            ok = false;
        if (!ok) {
            out += '?';
            ++i;
            continue;
        }
        out.append(line.substr(i, len));
        i += len;
    }
    return out;
}

void clean_problems(sender_problems& p) {
    if (p.lines.size() > sender_problems::max_lines)
        p.lines.resize(sender_problems::max_lines);
    for (auto& line : p.lines)
        line = printable_line(line);
    p.count = std::max<std::uint64_t>(p.count, p.lines.size());
}

std::string problem_list(const sender_problems& p) {
    std::string out;
    for (const auto& line : p.lines)
        out += (out.empty() ? "  " : "\n  ") + printable_line(line);
    if (p.count > p.lines.size())
        out += (out.empty() ? "  ... and " : "\n  ... and ") +
               std::to_string(p.count - p.lines.size()) + " more";
    return out;
}

std::string format_problems_comment(const sender_problems& p) {
    std::string out(problems_prefix);
    out += "count=";
    out += std::to_string(std::max<std::uint64_t>(p.count, p.lines.size()));
    const std::size_t n = std::min(p.lines.size(), sender_problems::max_lines);
    for (std::size_t i = 0; i < n; ++i) {
        out += '\n';
        out += printable_line(p.lines[i]);
    }
    return out;
}

std::optional<sender_problems> parse_problems_comment(std::string_view s) {
    if (s.substr(0, problems_prefix.size()) != problems_prefix)
        return std::nullopt;
    s.remove_prefix(problems_prefix.size());
    sender_problems p;
    if (!take_decimal(s, "count=", p.count))
        return std::nullopt;
    while (!s.empty()) {
        if (s.front() != '\n')
            return std::nullopt;
        s.remove_prefix(1);
        const std::size_t end = std::min(s.find('\n'), s.size());
        if (p.lines.size() < sender_problems::max_lines) // a hostile list costs no memory
            p.lines.emplace_back(s.substr(0, end));
        s.remove_prefix(end);
    }
    clean_problems(p);
    return p;
}

namespace {
constexpr std::string_view deletions_prefix = "podpipe-deletions v1 ";
} // namespace

std::string format_deletions_comment(std::span<const std::string> paths) {
    std::string out(deletions_prefix);
    out += "count=";
    out += std::to_string(paths.size());
    for (const std::string& p : paths) {
        out += '\n';
        for (const char c : p) {
            if (c == '\\')
                out += "\\\\";
            else if (c == '\n')
                out += "\\n";
            else
                out += c;
        }
    }
    return out;
}

std::optional<deletions> parse_deletions_comment(std::string_view s) {
    if (s.substr(0, deletions_prefix.size()) != deletions_prefix)
        return std::nullopt;
    s.remove_prefix(deletions_prefix.size());
    std::uint64_t count = 0;
    if (!take_decimal(s, "count=", count))
        return std::nullopt;
    deletions d;
    while (!s.empty()) {
        if (s.front() != '\n' || d.paths.size() == count)
            return std::nullopt;
        s.remove_prefix(1);
        std::string path;
        while (!s.empty() && s.front() != '\n') {
            char c = s.front();
            s.remove_prefix(1);
            if (c == '\\') {
                if (s.empty() || (s.front() != '\\' && s.front() != 'n'))
                    return std::nullopt;
                c = s.front() == 'n' ? '\n' : '\\';
                s.remove_prefix(1);
            }
            path += c;
        }
        if (path.empty())
            return std::nullopt;
        d.paths.push_back(std::move(path));
    }
    if (d.paths.size() != count)
        return std::nullopt;
    return d;
}

} // namespace podpipe::tar
