#include "tools/podpipe/synthetic.hpp"

#include "tools/podpipe/cli_util.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <fstream>
#include <system_error>
#include <vector>

namespace podpipe::cli {
namespace {

// splitmix64: small, fast, and fully determined by the seed.
struct rng {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
    }
    double unit() { return static_cast<double>(next() >> 11) / 9007199254740992.0; }
};

constexpr std::array<std::string_view, 48> words = {
    "const", "return", "if", "else", "for", "while", "function", "struct", "class", "import",
    "export", "value", "result", "error", "index", "buffer", "size", "count", "data", "node",
    "module", "require", "string", "number", "object", "array", "length", "push", "static",
    "public", "private", "void", "int", "char", "true", "false", "null", "this", "new", "delete",
    "template", "typename", "namespace", "include", "define", "async", "await", "yield"};

void fill_text(rng& r, std::string& out, std::size_t n) {
    out.clear();
    while (out.size() < n) {
        const int indent = static_cast<int>(r.next() % 4) * 4;
        out.append(static_cast<std::size_t>(indent), ' ');
        const int count = 3 + static_cast<int>(r.next() % 9);
        for (int i = 0; i < count; ++i) {
            out += words[r.next() % words.size()];
            if (r.next() % 5 == 0)
                out += std::to_string(r.next() % 1000);
            out += (i + 1 == count) ? ";\n" : " ";
        }
    }
    out.resize(n);
}

void fill_binary(rng& r, std::string& out, std::size_t n) {
    out.resize(n);
    // Mostly random with short repeated runs: compresses by a few percent, like executables.
    std::size_t i = 0;
    while (i < n) {
        const std::uint64_t v = r.next();
        if (v % 16 == 0) {
            const std::size_t run = std::min<std::size_t>(n - i, 16 + v % 64);
            std::memset(out.data() + i, static_cast<int>(v >> 8) & 0xff, run);
            i += run;
        } else {
            const std::size_t k = std::min<std::size_t>(n - i, 8);
            std::memcpy(out.data() + i, &v, k);
            i += k;
        }
    }
}

} // namespace

result<synthetic_spec, std::string> parse_synthetic_spec(std::string_view text) {
    synthetic_spec spec;
    while (!text.empty()) {
        const std::size_t comma = text.find(',');
        const std::string_view item = text.substr(0, comma);
        text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
        const std::size_t eq = item.find('=');
        if (eq == std::string_view::npos)
            return fail("'" + std::string(item) + "': expected key=value");
        const std::string_view key = item.substr(0, eq), value = item.substr(eq + 1);
        if (key == "files" || key == "size") {
            auto v = parse_size(value);
            if (!v || *v == 0)
                return fail("'" + std::string(item) + "': expected a positive number");
            (key == "files" ? spec.files : spec.bytes) = *v;
        } else if (key == "dist") {
            if (value != "source" && value != "node_modules" && value != "binaries")
                return fail("dist must be source, node_modules or binaries");
            spec.dist = std::string(value);
        } else {
            return fail("unknown key '" + std::string(key) + "' (files, size, dist)");
        }
    }
    if (spec.files > 10'000'000)
        return fail(std::string("at most 10M files"));
    return spec;
}

result<std::uint64_t, std::string> make_synthetic_tree(const synthetic_spec& spec,
                                                       const std::filesystem::path& root) {
    namespace fs = std::filesystem;
    rng r{spec.files * 1000003 + spec.bytes + spec.dist.size()};
    const bool tiny = spec.dist == "node_modules";
    const bool binary = spec.dist == "binaries";
    // Sizes: log-normal weights scaled so they sum to spec.bytes.
    std::vector<double> weight(spec.files);
    double total = 0;
    for (auto& w : weight) {
        const double u1 = std::max(r.unit(), 1e-12), u2 = r.unit();
        const double normal = std::sqrt(-2 * std::log(u1)) * std::cos(6.283185307179586 * u2);
        w = std::exp((binary ? 0.8 : tiny ? 1.4 : 1.1) * normal);
        total += w;
    }
    std::error_code ec;
    fs::create_directories(root, ec);
    if (ec)
        return fail("cannot create " + root.string() + ": " + ec.message());
    std::string content;
    std::uint64_t written = 0;
    const std::uint64_t per_dir = tiny ? 12 : binary ? 8 : 40;
    for (std::uint64_t i = 0; i < spec.files; ++i) {
        // Directory shape: node_modules nests packages deeply; source is a few levels.
        fs::path dir = root;
        std::uint64_t d = i / per_dir;
        const int depth = tiny ? 4 : 2;
        for (int level = 0; level < depth && d > 0; ++level, d /= 7)
            dir /= (tiny ? "pkg" : "dir") + std::to_string(d % 7) + "-" + std::to_string(level);
        fs::create_directories(dir, ec);
        if (ec)
            return fail("cannot create " + dir.string() + ": " + ec.message());
        const auto n = static_cast<std::size_t>(
            static_cast<double>(spec.bytes) * weight[i] / total);
        if (binary)
            fill_binary(r, content, n);
        else
            fill_text(r, content, n);
        const fs::path file = dir / ("f" + std::to_string(i) + (binary ? ".bin" : tiny ? ".js" : ".c"));
        std::ofstream out(file, std::ios::binary | std::ios::trunc);
        out.write(content.data(), static_cast<std::streamsize>(content.size()));
        if (!out)
            return fail("cannot write " + file.string());
        written += content.size();
    }
    return written;
}

} // namespace podpipe::cli
