// engine/tar micro-benchmarks: header encoding rate for typical source-tree paths, parser
// throughput over an in-memory archive of many small files, and the manifest digest rate.
#include "engine/tar/manifest.hpp"
#include "engine/tar/parser.hpp"
#include "engine/tar/writer.hpp"

#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace podpipe::tar {
namespace {

std::vector<entry> typical_entries(std::size_t n) {
    std::vector<entry> v;
    v.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        entry e;
        e.path = "src/module" + std::to_string(i % 53) + "/sub" + std::to_string(i % 7) +
                 "/file_" + std::to_string(i) + ".cpp";
        if (i % 97 == 0)
            e.path = std::string(140, 'd') + "/" + e.path; // some need pax
        e.mode = 0644;
        e.size = 200 + (i * 7919) % 20000; // ~10 KiB average: 250 MB / 18k files ~ 14 KB
        e.mtime_sec = 1700000000 + static_cast<std::int64_t>(i);
        e.uid = 1000;
        e.gid = 1000;
        e.uname = "runner";
        e.gname = "runner";
        v.push_back(std::move(e));
    }
    return v;
}

void bm_append_header(benchmark::State& state) {
    const auto entries = typical_entries(4096);
    std::vector<std::byte> out;
    out.reserve(entries.size() * 1024);
    std::size_t i = 0;
    for (auto _ : state) {
        if (i == entries.size()) {
            i = 0;
            out.clear();
        }
        auto r = append_header(entries[i++], out);
        benchmark::DoNotOptimize(r);
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
    state.counters["headers/s"] =
        benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}
BENCHMARK(bm_append_header);

std::vector<std::byte> build_archive(std::size_t files) {
    const auto entries = typical_entries(files);
    std::vector<std::byte> out;
    manifest_builder mb;
    for (const auto& e : entries) {
        (void)append_header(e, out);
        mb.add_entry(e);
        const std::size_t at = out.size();
        out.resize(at + e.size, std::byte{'x'});
        mb.add_content({out.data() + at, e.size});
        out.resize(out.size() + padding_for(e.size));
    }
    append_end(mb.finish(), out);
    return out;
}

class counting_handler final : public parser_handler {
public:
    std::uint64_t entries = 0, bytes = 0;
    result<void> on_entry(const entry&) override {
        ++entries;
        return {};
    }
    result<void> on_data(std::span<const std::byte> b) override {
        bytes += b.size();
        return {};
    }
    result<void> on_entry_end() override { return {}; }
    result<void> on_manifest(const manifest&) override { return {}; }
};

// Feeds the archive in `chunk`-byte pieces, as a network receiver would.
void bm_parse(benchmark::State& state) {
    const auto archive = build_archive(4000);
    const auto chunk = static_cast<std::size_t>(state.range(0));
    for (auto _ : state) {
        counting_handler h;
        parser p(h);
        for (std::size_t at = 0; at < archive.size(); at += chunk) {
            auto r = p.feed({archive.data() + at, std::min(chunk, archive.size() - at)});
            if (!r)
                state.SkipWithError("parse failed");
        }
        if (!p.finish())
            state.SkipWithError("finish failed");
        benchmark::DoNotOptimize(h.bytes);
    }
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * archive.size()));
    state.counters["files/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * 4000, benchmark::Counter::kIsRate);
}
BENCHMARK(bm_parse)->Arg(4096)->Arg(65536)->Arg(1 << 20);

// Parser cost alone for header-heavy input: 4000 empty files.
void bm_parse_headers_only(benchmark::State& state) {
    std::vector<std::byte> archive;
    for (auto e : typical_entries(4000)) {
        e.size = 0;
        (void)append_header(e, archive);
    }
    for (auto _ : state) {
        counting_handler h;
        parser p(h);
        (void)p.feed(archive);
        (void)p.finish();
        benchmark::DoNotOptimize(h.entries);
    }
    state.counters["headers/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * 4000, benchmark::Counter::kIsRate);
}
BENCHMARK(bm_parse_headers_only);

void bm_manifest_content(benchmark::State& state) {
    std::vector<std::byte> data(1 << 20, std::byte{'m'});
    manifest_builder mb;
    for (auto _ : state)
        mb.add_content(data);
    benchmark::DoNotOptimize(mb.finish());
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * data.size()));
}
BENCHMARK(bm_manifest_content);

} // namespace
} // namespace podpipe::tar
