// Shared helpers for the engine/gzip tests: data generators, temp dirs, shell-outs.
#pragma once

#include "engine/gzip/member_compressor.hpp"

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <sys/wait.h>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::gzip::test {

using bytes = std::vector<std::byte>;

inline bytes random_bytes(std::size_t n, std::uint32_t seed = 1) {
    std::mt19937 rng(seed);
    bytes b(n);
    for (auto& x : b)
        x = static_cast<std::byte>(rng());
    return b;
}

/// Source-code-like text: identifiers, keywords, punctuation, indentation, numbers.
inline bytes text_bytes(std::size_t n, std::uint32_t seed = 2) {
    static constexpr std::string_view words[] = {
        "int",    "return", "const",  "std::size_t", "if",     "else", "for",    "while",
        "struct", "class",  "buffer", "length",      "offset", "data", "member", "header",
        "static", "inline", "void",   "namespace",   "auto",   "{",    "}",      "(",
        ")",      ";",      "=",      "==",          "+",      "->",   "//",     "0x1f"};
    std::mt19937 rng(seed);
    std::string s;
    s.reserve(n + 64);
    while (s.size() < n) {
        const auto r = rng();
        if (r % 11 == 0)
            s += "\n    ";
        else if (r % 13 == 0)
            s += std::to_string(r % 1000);
        else
            s += words[r % std::size(words)];
        s += ' ';
    }
    s.resize(n);
    bytes b(n);
    std::memcpy(b.data(), s.data(), n);
    return b;
}

inline std::span<const std::byte> as_span(const bytes& b) { return {b.data(), b.size()}; }

/// One member, in an exact-size vector (ASan catches over-reads past its end).
inline bytes compress_member(member_compressor& c, std::span<const std::byte> in) {
    bytes out(c.bound(in.size()));
    auto n = c.compress(in, out);
    EXPECT_TRUE(n.has_value()) << (n ? "" : n.error().message());
    out.resize(n ? *n : 0);
    out.shrink_to_fit();
    return out;
}

/// Chunks `in` into chunk_bytes pieces, one member each, concatenated.
inline bytes compress_stream(std::span<const std::byte> in, std::size_t chunk_bytes, int level) {
    member_compressor c(level);
    bytes stream;
    std::size_t off = 0;
    do {
        const std::size_t n = std::min(chunk_bytes, in.size() - off);
        const bytes m = compress_member(c, in.subspan(off, n));
        stream.insert(stream.end(), m.begin(), m.end());
        off += n;
    } while (off < in.size());
    return stream;
}

/// A fresh directory under the system temp dir, removed on destruction.
class temp_dir {
public:
    temp_dir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("podpipe_gzip_test_" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }

    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }

    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }

    std::string file(std::string_view name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline void write_file(const std::string& path, std::span<const std::byte> data) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
    ASSERT_TRUE(f.good()) << path;
}

inline bytes read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::vector<char> c((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    bytes b(c.size());
    std::memcpy(b.data(), c.data(), c.size());
    return b;
}

/// Runs a shell command; returns its exit status (-1 if it could not run).
inline int run(const std::string& cmd) {
    const int rc = std::system(cmd.c_str());
    if (rc == -1)
        return -1;
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline bool have_tool(const std::string& name) {
    return run("command -v " + name + " >/dev/null 2>&1") == 0;
}

} // namespace podpipe::gzip::test
