// What volume mode's externals step costs (issue 6): the runner's externals reach /__e through a
// copy onto the work claim that happens only when their content marker changed.
//   externals_sync_bench [--files N] [--mb M] [--dir D]
// Builds a tree like the runner's externals (N files, M MB in total, a few large binaries and many
// small files in nested directories) under D, then times:
//   1. the first sync (marker + engine copy, level 0),
//   2. a repeat sync with an unchanged source (the marker stat walk only),
//   3. `cp -a` of the same tree (the reference's per-job copy, as a baseline).
// The page cache is dropped before 1 and 3 (when permitted), so both copies read cold.
// Prints one line per measurement. Not a test: numbers go to hooks/commands/README.md.
#include "hooks/commands/volume_mode.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace fs = std::filesystem;
using namespace podpipe;

namespace {

void make_tree(const fs::path& root, int files, double mb) {
    std::mt19937_64 rng(7);
    const std::size_t total = static_cast<std::size_t>(mb * 1e6);
    // 60 % of the bytes in 4 large files (node binaries), the rest spread over small files.
    const std::size_t large = total * 6 / 10 / 4;
    const std::size_t small = files > 4 ? (total - 4 * large) / static_cast<std::size_t>(files - 4) : 0;
    std::string buf;
    for (int i = 0; i < files; ++i) {
        const fs::path dir = root / ("pkg" + std::to_string(i % 40)) / ("lib" + std::to_string(i % 7));
        fs::create_directories(dir);
        const std::size_t n = i < 4 ? large : small;
        buf.resize(n);
        for (std::size_t k = 0; k < n; k += 8) {
            const auto v = rng();
            std::memcpy(buf.data() + k, &v, std::min<std::size_t>(8, n - k));
        }
        std::ofstream(dir / ("f" + std::to_string(i) + ".js"), std::ios::binary).write(buf.data(), static_cast<std::streamsize>(n));
    }
}

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

} // namespace

int main(int argc, char** argv) {
    int files = 9000;
    double mb = 600;
    std::string base = "/tmp/podpipe-externals-bench";
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--files")
            files = std::atoi(argv[i + 1]);
        else if (a == "--mb")
            mb = std::atof(argv[i + 1]);
        else if (a == "--dir")
            base = argv[i + 1];
    }
    fs::remove_all(base);
    const fs::path src = fs::path(base) / "externals";
    make_tree(src, files, mb);
    std::system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null");
    const std::string dest = fs::path(base) / "work" / "externals";
    double t = now_s();
    auto first = hook::sync_externals(src.string(), dest, 0, std::size_t{256} << 20);
    const double first_s = now_s() - t;
    if (!first) {
        std::fprintf(stderr, "%s\n", first.error().what().c_str());
        return 1;
    }
    t = now_s();
    auto again = hook::sync_externals(src.string(), dest, 0, std::size_t{256} << 20);
    const double again_s = now_s() - t;
    if (!again || again->copied)
        return 1;
    const std::string cp_dest = fs::path(base) / "cp-dest";
    std::system("sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null"); // both copies start cold
    t = now_s();
    const int rc = std::system(("cp -a " + src.string() + " " + cp_dest).c_str());
    const double cp_s = now_s() - t;
    std::printf("tree: %d files, %.0f MB\n", files, mb);
    std::printf("first sync (marker %.3f s + engine copy): %.2f s, %llu files, %.1f MB\n",
                first->marker_seconds, first_s, static_cast<unsigned long long>(first->files),
                static_cast<double>(first->bytes) / 1e6);
    std::printf("unchanged sync (marker only): %.3f s\n", again_s);
    std::printf("cp -a baseline: %.2f s (exit %d)\n", cp_s, rc);
    fs::remove_all(base);
    return 0;
}
