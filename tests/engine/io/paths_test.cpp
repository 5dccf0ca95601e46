#include "engine/io/paths.hpp"

#include "engine/io/error.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::io {
namespace {

TEST(paths, exclude_matches_path_suffix_and_basename) {
    const std::vector<std::string> pats{"*.log", "build", "a/b/c", "x*/tmp"};
    EXPECT_TRUE(is_excluded(pats, "debug.log"));
    EXPECT_TRUE(is_excluded(pats, "deep/dir/debug.log"));
    EXPECT_TRUE(is_excluded(pats, "build"));
    EXPECT_TRUE(is_excluded(pats, "src/build"));
    EXPECT_TRUE(is_excluded(pats, "a/b/c"));
    EXPECT_TRUE(is_excluded(pats, "top/a/b/c")); // unanchored like GNU tar
    EXPECT_TRUE(is_excluded(pats, "xyz/tmp"));
    EXPECT_FALSE(is_excluded(pats, "builder"));
    EXPECT_FALSE(is_excluded(pats, "a/b/cd"));
    EXPECT_FALSE(is_excluded(pats, "log"));
    EXPECT_FALSE(is_excluded({}, "anything"));
}

TEST(paths, normalize_refuses_escapes) {
    for (const char* bad : {"", "/etc/passwd", "../x", "a/../../x", "a/..", ".."}) {
        auto r = normalize_entry_path(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error(), errc::unsafe_path);
        EXPECT_EQ(r.error(), condition::unsafe_path);
    }
    auto nul = normalize_entry_path(std::string_view("a\0b", 3));
    EXPECT_FALSE(nul);
    EXPECT_EQ(*normalize_entry_path("./a//b/./c/"), "a/b/c");
    EXPECT_EQ(*normalize_entry_path("./"), "");
    EXPECT_EQ(*normalize_entry_path("a..b/..c"), "a..b/..c");
}

TEST(paths, dfs_key_sorts_in_archive_order) {
    std::vector<std::string> p{"a.b", "a/b", "a", "a/b/c", "B", "a0"};
    std::sort(p.begin(), p.end(), [](const auto& x, const auto& y) { return dfs_key(x) < dfs_key(y); });
    EXPECT_EQ(p, (std::vector<std::string>{"B", "a", "a/b", "a/b/c", "a.b", "a0"}));
}

} // namespace
} // namespace podpipe::io
