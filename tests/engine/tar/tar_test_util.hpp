// Test helpers for engine/tar: a collecting parser_handler, archive builders and raw header
// construction for hand-made (hostile) headers. Test-only.
#pragma once

#include "engine/tar/manifest.hpp"
#include "engine/tar/parser.hpp"
#include "engine/tar/writer.hpp"

#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::tar::testing {

inline std::span<const std::byte> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

inline std::string as_string(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct parsed_entry {
    entry e;
    std::string content;
};

// Records everything; checks the callback protocol (on_entry / on_data* / on_entry_end).
class collector : public parser_handler {
public:
    std::vector<parsed_entry> entries;
    std::vector<manifest> manifests;
    manifest_builder digest;
    bool in_entry = false;
    int entry_ends = 0;

    result<void> on_entry(const entry& e) override {
        EXPECT_FALSE(in_entry) << "on_entry before on_entry_end of the previous entry";
        entries.push_back({e, {}});
        digest.add_entry(e);
        in_entry = true;
        return {};
    }
    result<void> on_data(std::span<const std::byte> bytes) override {
        EXPECT_TRUE(in_entry);
        EXPECT_FALSE(bytes.empty());
        if (!entries.empty())
            entries.back().content += as_string(bytes);
        digest.add_content(bytes);
        return {};
    }
    result<void> on_entry_end() override {
        EXPECT_TRUE(in_entry);
        in_entry = false;
        ++entry_ends;
        if (!entries.empty()) {
            EXPECT_EQ(entries.back().content.size(), entries.back().e.size);
        }
        return {};
    }
    result<void> on_manifest(const manifest& m) override {
        manifests.push_back(m);
        return {};
    }
};

// Feeds `data` in pieces of `chunk` bytes (0 = all at once), each piece copied into its own
// exactly sized heap buffer so ASan catches any read past a piece. Then finish().
inline result<void> parse_all(std::span<const std::byte> data, parser& p, std::size_t chunk = 0) {
    if (chunk == 0)
        chunk = data.size() ? data.size() : 1;
    for (std::size_t at = 0; at < data.size(); at += chunk) {
        const std::size_t n = std::min(chunk, data.size() - at);
        auto piece = std::make_unique<std::byte[]>(n);
        std::memcpy(piece.get(), data.data() + at, n);
        PODPIPE_TRY(p.feed({piece.get(), n}));
    }
    return p.finish();
}

struct item {
    entry e;
    std::string content;
};

// Writer output for items (content + padding after each), plus append_end unless told not to.
inline std::vector<std::byte> build_archive(const std::vector<item>& items, bool with_end = true,
                                            manifest* m_out = nullptr) {
    std::vector<std::byte> out;
    manifest_builder mb;
    for (const auto& it : items) {
        auto r = append_header(it.e, out);
        EXPECT_TRUE(r) << "append_header failed for " << it.e.path << ": "
                       << (r ? "" : r.error().message());
        mb.add_entry(it.e);
        const auto c = as_bytes(it.content);
        out.insert(out.end(), c.begin(), c.end());
        mb.add_content(c);
        out.resize(out.size() + padding_for(it.content.size()));
    }
    const manifest m = mb.finish();
    if (m_out)
        *m_out = m;
    if (with_end)
        append_end(m, out);
    return out;
}

// A hand-made 512-byte header; fields are written raw, checksum fixed by finish().
struct raw_header {
    std::byte b[512] = {};

    raw_header& set(std::size_t off, std::string_view s) {
        std::memcpy(b + off, s.data(), s.size());
        return *this;
    }
    raw_header& octal(std::size_t off, std::size_t width, std::uint64_t v) {
        std::string s(width - 1, '0');
        for (std::size_t i = width - 1; i-- > 0; v >>= 3)
            s[i] = static_cast<char>('0' + (v & 7));
        return set(off, s);
    }
    // A typical POSIX ustar header.
    static raw_header ustar(std::string_view name, char type, std::uint64_t size) {
        raw_header h;
        h.set(0, name).octal(100, 8, 0644).octal(108, 8, 1000).octal(116, 8, 1000);
        h.octal(124, 12, size).octal(136, 12, 1700000000);
        h.b[156] = static_cast<std::byte>(type);
        h.set(257, std::string_view("ustar\0" "00", 8)).set(265, "user").set(297, "group");
        return h;
    }
    // Computes the checksum with unsigned (or, if asked, signed) bytes.
    raw_header& finish(bool signed_sum = false) {
        std::memset(b + 148, ' ', 8);
        long sum = 0;
        for (auto x : b)
            sum += signed_sum ? static_cast<signed char>(x) : std::to_integer<unsigned char>(x);
        auto v = static_cast<unsigned long>(sum) & 0777777; // six octal digits
        for (int i = 5; i >= 0; --i, v >>= 3)
            b[148 + i] = static_cast<std::byte>('0' + (v & 7));
        b[154] = std::byte{0};
        return *this;
    }
    void append_to(std::vector<std::byte>& out) const { out.insert(out.end(), b, b + 512); }
};

inline void append_data(std::vector<std::byte>& out, std::string_view data) {
    auto d = as_bytes(data);
    out.insert(out.end(), d.begin(), d.end());
    out.resize(out.size() + padding_for(data.size()));
}

inline void append_zero_blocks(std::vector<std::byte>& out, int n = 2) {
    out.resize(out.size() + 512 * static_cast<std::size_t>(n));
}

// One pax record "<len> key=value\n".
inline std::string pax_record(std::string_view key, std::string_view value) {
    const std::size_t body = key.size() + value.size() + 3;
    std::size_t len = body + 1;
    while (std::to_string(len).size() + body != len)
        ++len;
    return std::to_string(len) + " " + std::string(key) + "=" + std::string(value) + "\n";
}

} // namespace podpipe::tar::testing
