// engine/gzip micro-benchmarks on source-code-like data (the headers under /usr/include,
// cut into 1 MiB chunks): member_compressor per level with the compression ratio, and the
// two decoders. zlib's deflate at the same levels is the baseline (what gzip/tar czf run).
//
//   build/.../gzip_bench --benchmark_min_time=0.5
#include "engine/gzip/member_compressor.hpp"
#include "engine/gzip/member_decompressor.hpp"
#include "engine/gzip/stream_inflater.hpp"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <zlib.h>

namespace {

using podpipe::gzip::member_compressor;
using podpipe::gzip::member_decompressor;
using podpipe::gzip::stream_inflater;

constexpr std::size_t chunk_bytes = std::size_t{1} << 20;
constexpr std::size_t corpus_bytes = std::size_t{32} << 20;

// Header files from /usr/include in sorted path order (deterministic), concatenated up to
// corpus_bytes. Falls back to repeating what it found if the tree is small.
const std::vector<std::byte>& corpus() {
    static const std::vector<std::byte> data = [] {
        std::vector<std::filesystem::path> paths;
        std::error_code ec;
        for (auto it = std::filesystem::recursive_directory_iterator(
                 "/usr/include", std::filesystem::directory_options::skip_permission_denied, ec);
             it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
            if (ec)
                break;
            if (it->is_regular_file(ec) && !it->is_symlink(ec))
                paths.push_back(it->path());
        }
        std::sort(paths.begin(), paths.end());
        std::vector<std::byte> out;
        out.reserve(corpus_bytes);
        for (const auto& p : paths) {
            std::ifstream f(p, std::ios::binary);
            std::vector<char> c((std::istreambuf_iterator<char>(f)), {});
            const std::size_t n = std::min(c.size(), corpus_bytes - out.size());
            out.resize(out.size() + n);
            std::memcpy(out.data() + out.size() - n, c.data(), n);
            if (out.size() == corpus_bytes)
                break;
        }
        if (out.empty())
            out.resize(chunk_bytes, std::byte{'x'});
        while (out.size() < corpus_bytes)
            out.insert(out.end(), out.begin(),
                       out.begin() +
                           static_cast<long>(std::min(out.size(), corpus_bytes - out.size())));
        return out;
    }();
    return data;
}

std::size_t chunk_count() { return corpus().size() / chunk_bytes; }

std::span<const std::byte> chunk(std::size_t i) {
    return std::span(corpus()).subspan((i % chunk_count()) * chunk_bytes, chunk_bytes);
}

// Each iteration compresses every chunk of the corpus, so all levels see the same data and
// the ratio (input / output over the whole corpus) is comparable across levels.
void compress_with(benchmark::State& state, member_compressor c) {
    corpus(); // load the corpus outside the timed loop
    std::vector<std::byte> out(c.bound(chunk_bytes));
    std::size_t in_total = 0;
    std::size_t out_total = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < chunk_count(); ++i) {
            auto n = c.compress(chunk(i), out);
            if (!n) {
                state.SkipWithError("compress failed");
                return;
            }
            benchmark::DoNotOptimize(out.data());
            in_total += chunk_bytes;
            out_total += *n;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(in_total));
    state.counters["ratio"] = out_total ? double(in_total) / double(out_total) : 0.0;
    state.counters["out_pct"] = in_total ? 100.0 * double(out_total) / double(in_total) : 0.0;
}

// The level's default engine (level 1: ISA-L when built with it).
void compress_members(benchmark::State& state) {
    compress_with(state, member_compressor(static_cast<int>(state.range(0))));
}

BENCHMARK(compress_members)
    ->ArgName("level")
    ->Arg(0)
    ->Arg(1)
    ->Arg(2)
    ->Arg(3)
    ->Arg(4)
    ->Arg(6)
    ->Arg(9)
    ->Unit(benchmark::kMillisecond);

// Level 1 on each engine: the numbers behind member_compressor's choice of ISA-L for level 1.
void compress_level1_libdeflate(benchmark::State& state) {
    compress_with(state, member_compressor(1, podpipe::gzip::deflate_engine::libdeflate));
}
BENCHMARK(compress_level1_libdeflate)->Unit(benchmark::kMillisecond);

void compress_level1_isal(benchmark::State& state) {
    if (!podpipe::gzip::isal_available()) {
        state.SkipWithError("built without ISA-L");
        return;
    }
    compress_with(state, member_compressor(1, podpipe::gzip::deflate_engine::isal));
}
BENCHMARK(compress_level1_isal)->Unit(benchmark::kMillisecond);

// Baseline: zlib deflate (gzip wrapper) on the same chunks.
void zlib_compress_baseline(benchmark::State& state) {
    const int level = static_cast<int>(state.range(0));
    std::vector<unsigned char> out(compressBound(chunk_bytes) + 64);
    std::size_t in_total = 0;
    std::size_t out_total = 0;
    for (auto _ : state) {
        for (std::size_t i = 0; i < chunk_count(); ++i) {
            z_stream zs{};
            deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
            const auto in = chunk(i);
            zs.next_in = reinterpret_cast<Bytef*>(const_cast<std::byte*>(in.data()));
            zs.avail_in = static_cast<uInt>(in.size());
            zs.next_out = out.data();
            zs.avail_out = static_cast<uInt>(out.size());
            deflate(&zs, Z_FINISH);
            out_total += zs.total_out;
            deflateEnd(&zs);
            in_total += chunk_bytes;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(in_total));
    state.counters["ratio"] = out_total ? double(in_total) / double(out_total) : 0.0;
}

BENCHMARK(zlib_compress_baseline)
    ->ArgName("level")
    ->Arg(1)
    ->Arg(6)
    ->Arg(9)
    ->Unit(benchmark::kMillisecond);

// Incompressible data (what git packfiles, media and archives are to DEFLATE): 16 chunks of
// pseudo-random bytes. `compress_incompressible` is one compressor over the run, as a worker
// sees it (the first chunk compressed, the rest probed and stored); `..._unprobed` gives every
// chunk a fresh compressor, which never probes: the cost of compressing them all, as before.
const std::vector<std::byte>& random_corpus() {
    static const std::vector<std::byte> data = [] {
        std::vector<std::byte> out(16 * chunk_bytes);
        std::uint64_t x = 0x9e3779b97f4a7c15ULL;
        for (auto& b : out) {
            x ^= x << 13; // xorshift64
            x ^= x >> 7;
            x ^= x << 17;
            b = static_cast<std::byte>(x >> 56);
        }
        return out;
    }();
    return data;
}

void incompressible_run(benchmark::State& state, bool fresh_per_chunk) {
    const int level = static_cast<int>(state.range(0));
    const auto& data = random_corpus();
    member_compressor kept(level);
    std::vector<std::byte> out(kept.bound(chunk_bytes));
    std::size_t in_total = 0;
    std::size_t out_total = 0;
    std::size_t stored = 0;
    for (auto _ : state) {
        for (std::size_t off = 0; off < data.size(); off += chunk_bytes) {
            std::optional<member_compressor> fresh;
            member_compressor& c = fresh_per_chunk ? fresh.emplace(level) : kept;
            auto n = c.compress(std::span(data).subspan(off, chunk_bytes), out);
            if (!n) {
                state.SkipWithError("compress failed");
                return;
            }
            stored += c.last_stored() ? 1 : 0;
            in_total += chunk_bytes;
            out_total += *n;
        }
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(in_total));
    state.counters["out_pct"] = in_total ? 100.0 * double(out_total) / double(in_total) : 0.0;
    state.counters["stored_pct"] = in_total ? 100.0 * double(stored * chunk_bytes) /
                                                  double(in_total)
                                            : 0.0;
}

void compress_incompressible(benchmark::State& state) { incompressible_run(state, false); }
void compress_incompressible_unprobed(benchmark::State& state) { incompressible_run(state, true); }
BENCHMARK(compress_incompressible)->ArgName("level")->Arg(1)->Arg(6)->Unit(benchmark::kMillisecond);
BENCHMARK(compress_incompressible_unprobed)
    ->ArgName("level")
    ->Arg(1)
    ->Arg(6)
    ->Unit(benchmark::kMillisecond);

// Members of every chunk at a level, precompressed once.
const std::vector<std::vector<std::byte>>& members_at(int level) {
    static std::vector<std::vector<std::vector<std::byte>>> cache(13);
    auto& m = cache[static_cast<std::size_t>(level)];
    if (m.empty()) {
        member_compressor c(level);
        for (std::size_t i = 0; i < chunk_count(); ++i) {
            std::vector<std::byte> out(c.bound(chunk_bytes));
            out.resize(*c.compress(chunk(i), out));
            m.push_back(std::move(out));
        }
    }
    return m;
}

void decompress_members(benchmark::State& state) {
    const auto& members = members_at(static_cast<int>(state.range(0)));
    member_decompressor d;
    std::vector<std::byte> out(chunk_bytes);
    std::size_t i = 0;
    std::size_t out_total = 0;
    for (auto _ : state) {
        auto n = d.decompress(members[i++ % members.size()], out);
        if (!n) {
            state.SkipWithError("decompress failed");
            break;
        }
        out_total += *n;
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(out_total)); // uncompressed bytes
}

BENCHMARK(decompress_members)
    ->ArgName("level")
    ->Arg(1)
    ->Arg(6)
    ->Arg(9)
    ->Unit(benchmark::kMillisecond);

// The serial path over the same members (zlib), 256 KiB input reads and 256 KiB output.
void stream_inflate_members(benchmark::State& state) {
    const auto& members = members_at(static_cast<int>(state.range(0)));
    std::vector<std::byte> stream;
    for (const auto& m : members)
        stream.insert(stream.end(), m.begin(), m.end());
    std::vector<std::byte> out(256 << 10);
    std::size_t out_total = 0;
    for (auto _ : state) {
        stream_inflater inf;
        std::span<const std::byte> in(stream);
        for (;;) {
            auto r = inf.inflate(in.first(std::min<std::size_t>(in.size(), 256 << 10)), out);
            if (!r) {
                state.SkipWithError("inflate failed");
                return;
            }
            out_total += r->produced;
            in = in.subspan(r->consumed);
            if (in.empty() && r->produced < out.size())
                break;
        }
        if (!inf.finish())
            state.SkipWithError("finish failed");
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(out_total));
}

BENCHMARK(stream_inflate_members)->ArgName("level")->Arg(6)->Unit(benchmark::kMillisecond);

} // namespace
