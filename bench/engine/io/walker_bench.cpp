// read_tree and tree_writer over a generated tree (20k files, ~13 KB average, 200 dirs),
// created once under /tmp and reused; numbers are with a warm page cache. The tar baseline runs
// `tar cf - DIR | cat > /dev/null` (GNU tar skips reading when writing to /dev/null directly).
#include "engine/io/tree_reader.hpp"
#include "engine/io/tree_writer.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

namespace {

using namespace podpipe;

constexpr int dir_count = 200;
constexpr int files_per_dir = 100;
const char* const tree_root = "/tmp/podpipe_walker_bench_tree";

std::size_t file_size(int i) { return static_cast<std::size_t>((i * 7919u) % 26000u) + 100; }

const std::string& payload() {
    static const std::string p = [] {
        std::string s(32000, '\0');
        std::uint32_t x = 12345;
        for (auto& c : s) {
            x = x * 1103515245u + 12345u;
            c = static_cast<char>(x >> 24);
        }
        return s;
    }();
    return p;
}

void ensure_tree() {
    static bool done = false;
    if (done)
        return;
    done = true;
    const std::string marker = std::string(tree_root) + "/.complete";
    if (::access(marker.c_str(), F_OK) == 0)
        return;
    std::system((std::string("rm -rf ") + tree_root).c_str());
    ::mkdir(tree_root, 0755);
    for (int d = 0; d < dir_count; ++d) {
        const std::string dir = std::string(tree_root) + "/d" + std::to_string(d);
        ::mkdir(dir.c_str(), 0755);
        for (int f = 0; f < files_per_dir; ++f) {
            const int i = d * files_per_dir + f;
            const std::string p = dir + "/f" + std::to_string(f);
            const int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || ::write(fd, payload().data(), file_size(i)) < 0)
                std::abort();
            ::close(fd);
        }
    }
    const int fd = ::open(marker.c_str(), O_WRONLY | O_CREAT, 0644);
    ::close(fd);
}

class discard : public io::tree_consumer {
public:
    std::uint64_t bytes = 0;
    result<void> on_entry(const io::file_entry&) override { return {}; }
    result<void> on_data(std::span<const std::byte> b) override {
        bytes += b.size();
        return {};
    }
};

// Args: walk_threads, use_io_uring
void bm_read_tree(benchmark::State& state) {
    ensure_tree();
    io::read_options o;
    o.walk_threads = static_cast<unsigned>(state.range(0));
    o.use_io_uring = state.range(1) != 0;
    if (o.use_io_uring && !io::io_uring_available()) {
        state.SkipWithError("io_uring unavailable");
        return;
    }
    std::uint64_t entries = 0, bytes = 0;
    io::read_stats last;
    for (auto _ : state) {
        discard c;
        auto st = io::read_tree(tree_root, o, c);
        if (!st) {
            state.SkipWithError(st.error().message().c_str());
            return;
        }
        entries += st->entries;
        bytes += st->content_bytes;
        last = *st;
    }
    state.counters["entries/s"] = benchmark::Counter(static_cast<double>(entries), benchmark::Counter::kIsRate);
    state.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
    state.counters["walk_ms"] = static_cast<double>(last.walk_ns) / 1e6;
    state.counters["read_ms"] = static_cast<double>(last.read_ns) / 1e6;
    state.counters["walk_wait_ms"] = static_cast<double>(last.walk_wait_ns) / 1e6;
}
BENCHMARK(bm_read_tree)
    ->ArgNames({"walk_threads", "io_uring"})
    ->Args({1, 1})->Args({2, 1})->Args({1, 0})->Args({2, 0})
    ->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

int remove_one(const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }

// Arg: use_io_uring. Writes the same shape of tree from memory into a fresh directory.
void bm_write_tree(benchmark::State& state) {
    io::write_options o;
    o.use_io_uring = state.range(0) != 0;
    if (o.use_io_uring && !io::io_uring_available()) {
        state.SkipWithError("io_uring unavailable");
        return;
    }
    const std::string out = "/tmp/podpipe_walker_bench_out";
    std::uint64_t entries = 0, bytes = 0;
    for (auto _ : state) {
        state.PauseTiming();
        ::nftw(out.c_str(), &remove_one, 64, FTW_DEPTH | FTW_PHYS);
        state.ResumeTiming();
        auto w = io::tree_writer::open(out, o);
        if (!w) {
            state.SkipWithError("open failed");
            return;
        }
        for (int d = 0; d < dir_count; ++d) {
            io::file_entry de;
            de.path = "d" + std::to_string(d);
            de.kind = io::file_kind::directory;
            de.mode = 0755;
            (void)(*w)->begin_entry(de);
            for (int f = 0; f < files_per_dir; ++f) {
                const int i = d * files_per_dir + f;
                io::file_entry fe;
                fe.path = de.path + "/f" + std::to_string(f);
                fe.mode = 0644;
                fe.size = file_size(i);
                fe.mtime_sec = 1600000000;
                (void)(*w)->begin_entry(fe);
                (void)(*w)->write(std::as_bytes(std::span(payload().data(), fe.size)));
                (void)(*w)->end_entry();
                bytes += fe.size;
            }
        }
        auto st = (*w)->finish();
        if (!st) {
            state.SkipWithError((*w)->last_error_detail().c_str());
            return;
        }
        entries += st->entries;
    }
    state.counters["entries/s"] = benchmark::Counter(static_cast<double>(entries), benchmark::Counter::kIsRate);
    state.counters["MB/s"] = benchmark::Counter(static_cast<double>(bytes) / 1e6, benchmark::Counter::kIsRate);
}
BENCHMARK(bm_write_tree)->ArgName("io_uring")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void bm_tar_baseline(benchmark::State& state) {
    ensure_tree();
    const std::string cmd = std::string("tar cf - -C ") + tree_root + " . | cat > /dev/null";
    for (auto _ : state) {
        if (std::system(cmd.c_str()) != 0) {
            state.SkipWithError("tar failed");
            return;
        }
    }
    state.counters["entries/s"] = benchmark::Counter(
        static_cast<double>(state.iterations()) * (dir_count * (files_per_dir + 1)),
        benchmark::Counter::kIsRate);
}
BENCHMARK(bm_tar_baseline)->Unit(benchmark::kMillisecond)->UseRealTime();

} // namespace
