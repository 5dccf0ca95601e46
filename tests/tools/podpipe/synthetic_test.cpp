// Synthetic bench trees: same spec, same bytes; specs are validated.
#include "tools/podpipe/synthetic.hpp"

#include "tests/support/tree_fixture.hpp"

#include <gtest/gtest.h>

namespace podpipe::cli {
namespace {

using podpipe::testing::temp_dir;

std::uint64_t tree_bytes(const std::filesystem::path& root, std::uint64_t& files) {
    std::uint64_t bytes = 0;
    files = 0;
    for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.is_regular_file()) {
            bytes += e.file_size();
            ++files;
        }
    return bytes;
}

TEST(synthetic_tree, deterministic_and_sized_as_asked) {
    temp_dir tmp;
    for (const char* dist : {"source", "node_modules", "binaries"}) {
        auto spec = parse_synthetic_spec(std::string("files=200,size=2M,dist=") + dist);
        ASSERT_TRUE(spec) << spec.error();
        const auto a = tmp / (std::string(dist) + "-a"), b = tmp / (std::string(dist) + "-b");
        ASSERT_TRUE(make_synthetic_tree(*spec, a));
        ASSERT_TRUE(make_synthetic_tree(*spec, b));
        EXPECT_EQ(podpipe::testing::diff_trees(a, b, /*compare_mtimes=*/false), std::vector<std::string>{}) << dist;
        std::uint64_t files = 0;
        const std::uint64_t bytes = tree_bytes(a, files);
        EXPECT_EQ(files, 200u) << dist;
        EXPECT_GT(bytes, spec->bytes * 99 / 100) << dist; // rounding down per file only
        EXPECT_LE(bytes, spec->bytes) << dist;
    }
}

TEST(synthetic_tree, bad_specs_say_why) {
    EXPECT_FALSE(parse_synthetic_spec("files=0"));
    EXPECT_FALSE(parse_synthetic_spec("size=lots"));
    EXPECT_FALSE(parse_synthetic_spec("dist=videos"));
    EXPECT_FALSE(parse_synthetic_spec("colour=blue"));
    EXPECT_FALSE(parse_synthetic_spec("files"));
    auto ok = parse_synthetic_spec("dist=binaries,files=10");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->files, 10u);
    EXPECT_EQ(ok->dist, "binaries");
}

} // namespace
} // namespace podpipe::cli
