// The externals copy of volume mode (sync_externals): the engine's local copy_tree
// with the sender on a thread of its own.
#include "hooks/commands/volume_mode.hpp"

#include "tests/support/tree_fixture.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::hook {
namespace {

using podpipe::testing::temp_dir;

// When the sender fails, the error carries the sender's own reason, not whatever the
// receiving thread last saw (the reason once lived in a thread_local of the failing thread).
TEST(sync_externals, a_failed_sender_says_its_own_reason) {
    temp_dir tmp;
    podpipe::testing::write_file(tmp / "src/bin/tool", "x");
    // 20 MiB in all: the sender's half cannot hold its chunks and says so before it starts.
    auto r = sync_externals((tmp / "src").string(), (tmp / "dst").string(), 1, 20u << 20);
    ASSERT_FALSE(r);
    const std::string what = r.error().what();
    EXPECT_NE(what.find("reading"), std::string::npos) << what;
    EXPECT_NE(what.find("memory budget too small"), std::string::npos) << what;
}

// And a copy that works leaves the marker that makes the next one a no-op.
TEST(sync_externals, copies_once_then_skips) {
    temp_dir tmp;
    podpipe::testing::write_file(tmp / "src/bin/tool", "x");
    auto first = sync_externals((tmp / "src").string(), (tmp / "dst").string(), 1, 64u << 20);
    ASSERT_TRUE(first) << first.error().what();
    EXPECT_TRUE(first->copied);
    auto again = sync_externals((tmp / "src").string(), (tmp / "dst").string(), 1, 64u << 20);
    ASSERT_TRUE(again) << again.error().what();
    EXPECT_FALSE(again->copied);
}

// The marker's definition, computed independently: FNV-1a 64 over the sorted lines
// "path\0st_mode size mtime_sec.mtime_nsec" (each followed by a 0xff separator), then
// "v1 COUNT HASH". Markers written on claims by earlier versions must still match.
std::string marker_by_definition(const std::filesystem::path& dir) {
    std::vector<std::string> lines;
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
        struct stat st {};
        EXPECT_EQ(::lstat(e.path().c_str(), &st), 0);
        const std::string rel = e.path().lexically_relative(dir).string();
        if (rel == externals_marker_name)
            continue;
        lines.push_back(rel + '\0' + std::to_string(st.st_mode) + ' ' +
                        std::to_string(S_ISREG(st.st_mode) ? st.st_size : 0) + ' ' +
                        std::to_string(st.st_mtim.tv_sec) + '.' +
                        std::to_string(st.st_mtim.tv_nsec));
    }
    std::sort(lines.begin(), lines.end());
    std::uint64_t h = 1469598103934665603ull;
    for (const auto& l : lines) {
        for (const unsigned char c : l) {
            h ^= c;
            h *= 1099511628211ull;
        }
        h ^= 0xff;
        h *= 1099511628211ull;
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "v1 %zu %016llx", lines.size(),
                  static_cast<unsigned long long>(h));
    return buf;
}

TEST(tree_marker, is_the_marker_earlier_versions_wrote) {
    temp_dir tmp;
    podpipe::testing::make_awkward_tree(tmp / "ext", 50);
    podpipe::testing::write_file(tmp / "ext" / externals_marker_name, "old marker\n");
    const std::string m = tree_marker((tmp / "ext").string());
    EXPECT_EQ(m, marker_by_definition(tmp / "ext"));
    podpipe::testing::write_file(tmp / "ext/changed", "x");
    EXPECT_NE(tree_marker((tmp / "ext").string()), m);
    EXPECT_EQ(tree_marker((tmp / "nope").string()), "");
}

} // namespace
} // namespace podpipe::hook
