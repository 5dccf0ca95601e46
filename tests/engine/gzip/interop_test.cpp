// Interop with the system tools: gzip, pigz, GNU tar and busybox tar read our streams, and we
// read theirs. Skips (never passes silently) when a tool is missing.
#include "engine/gzip/head.hpp"
#include "engine/gzip/member_compressor.hpp"
#include "engine/gzip/member_decompressor.hpp"
#include "engine/gzip/member_splitter.hpp"
#include "engine/gzip/stream_inflater.hpp"
#include "test_util.hpp"

#include <gtest/gtest.h>

namespace podpipe::gzip {
namespace {

using test::as_span;
using test::bytes;
using test::run;

#define REQUIRE_TOOL(name)                                                                         \
    do {                                                                                           \
        if (!test::have_tool(name))                                                                \
            GTEST_SKIP() << name << " not installed";                                              \
    } while (0)

result<bytes> stream_inflate(std::span<const std::byte> gz) {
    stream_inflater inf;
    bytes out;
    bytes window(1 << 16);
    for (;;) {
        auto r = inf.inflate(gz, window);
        if (!r)
            return fail(r.error());
        out.insert(out.end(), window.begin(), window.begin() + static_cast<long>(r->produced));
        gz = gz.subspan(r->consumed);
        if (gz.empty() && r->produced < window.size())
            break;
    }
    if (auto f = inf.finish(); !f)
        return fail(f.error());
    return out;
}

TEST(gzip_interop, gzip_reads_our_multi_member_stream) {
    REQUIRE_TOOL("gzip");
    test::temp_dir dir;
    bytes input = test::text_bytes(3 << 20);
    const bytes rnd = test::random_bytes(300000);
    input.insert(input.end(), rnd.begin(), rnd.end());
    for (int level : {0, 1, 6, 12}) {
        const bytes gz = test::compress_stream(as_span(input), 1 << 20, level);
        test::write_file(dir.file("s.gz"), as_span(gz));
        EXPECT_EQ(run("gzip -t " + dir.file("s.gz")), 0) << level;
        ASSERT_EQ(run("gzip -dc " + dir.file("s.gz") + " > " + dir.file("s.out")), 0);
        EXPECT_EQ(test::read_file(dir.file("s.out")), input) << level;
    }
}

TEST(gzip_interop, pigz_and_busybox_read_our_stream) {
    REQUIRE_TOOL("pigz");
    REQUIRE_TOOL("busybox");
    test::temp_dir dir;
    const bytes input = test::text_bytes(2500000);
    const bytes gz = test::compress_stream(as_span(input), 1 << 20, 6);
    test::write_file(dir.file("s.gz"), as_span(gz));
    ASSERT_EQ(run("pigz -dc " + dir.file("s.gz") + " > " + dir.file("p.out")), 0);
    EXPECT_EQ(test::read_file(dir.file("p.out")), input);
    ASSERT_EQ(run("busybox gzip -dc " + dir.file("s.gz") + " > " + dir.file("b.out")), 0);
    EXPECT_EQ(test::read_file(dir.file("b.out")), input);
}

TEST(gzip_interop, we_read_gzip_and_pigz_output) {
    REQUIRE_TOOL("gzip");
    REQUIRE_TOOL("pigz");
    test::temp_dir dir;
    const bytes input = test::text_bytes(1500000);
    test::write_file(dir.file("in"), as_span(input));
    // gzip with a file name (FNAME), gzip -n without, pigz (one member, many blocks), pigz -i.
    const std::pair<const char*, std::string> producers[] = {
        {"gzip", "gzip -c " + dir.file("in")},
        {"gzip -n -9", "gzip -n -9 -c " + dir.file("in")},
        {"pigz", "pigz -c " + dir.file("in")},
        {"pigz -i -1", "pigz -i -1 -c " + dir.file("in")},
    };
    member_decompressor d;
    for (const auto& [name, cmd] : producers) {
        SCOPED_TRACE(name);
        ASSERT_EQ(run(cmd + " > " + dir.file("in.gz")), 0);
        const bytes gz = test::read_file(dir.file("in.gz"));
        auto h = inspect_head(as_span(gz));
        ASSERT_TRUE(h.has_value());
        EXPECT_EQ(h->kind, head_kind::foreign_gzip);

        auto s = stream_inflate(as_span(gz));
        ASSERT_TRUE(s.has_value()) << s.error().message();
        EXPECT_EQ(*s, input);

        bytes out(input.size());
        auto n = d.decompress(as_span(gz), out);
        ASSERT_TRUE(n.has_value()) << n.error().message();
        EXPECT_EQ(*n, input.size());
        EXPECT_EQ(out, input);
    }
}

TEST(gzip_interop, concatenated_foreign_members) {
    REQUIRE_TOOL("gzip");
    test::temp_dir dir;
    const bytes a = test::text_bytes(200000, 1);
    const bytes b = test::random_bytes(100000, 2);
    test::write_file(dir.file("a"), as_span(a));
    test::write_file(dir.file("b"), as_span(b));
    ASSERT_EQ(run("gzip -c " + dir.file("a") + " > " + dir.file("a.gz")), 0);
    ASSERT_EQ(run("gzip -c " + dir.file("b") + " > " + dir.file("b.gz")), 0);
    ASSERT_EQ(run("cat " + dir.file("a.gz") + " " + dir.file("b.gz") + " > " + dir.file("ab.gz")),
              0);
    const bytes ab = test::read_file(dir.file("ab.gz"));
    bytes expect = a;
    expect.insert(expect.end(), b.begin(), b.end());

    auto s = stream_inflate(as_span(ab));
    ASSERT_TRUE(s.has_value()) << s.error().message();
    EXPECT_EQ(*s, expect);

    // 1 byte at a time too.
    stream_inflater inf;
    bytes out;
    bytes window(1000);
    std::span<const std::byte> in = as_span(ab);
    while (!in.empty()) {
        auto r = inf.inflate(in.first(1), window);
        ASSERT_TRUE(r.has_value());
        out.insert(out.end(), window.begin(), window.begin() + static_cast<long>(r->produced));
        in = in.subspan(r->consumed);
    }
    for (;;) {
        auto r = inf.inflate({}, window);
        ASSERT_TRUE(r.has_value());
        out.insert(out.end(), window.begin(), window.begin() + static_cast<long>(r->produced));
        if (r->produced < window.size())
            break;
    }
    EXPECT_TRUE(inf.finish().has_value());
    EXPECT_EQ(inf.members_completed(), 2u);
    EXPECT_EQ(out, expect);

    // member_decompressor takes exactly one member: the second one is trailing data.
    member_decompressor d;
    bytes big(expect.size());
    auto n = d.decompress(as_span(ab), big);
    ASSERT_FALSE(n.has_value());
    EXPECT_EQ(n.error(), errc::bad_length);
}

class gzip_tar_interop : public ::testing::Test {
protected:
    void SetUp() override {
        if (!test::have_tool("tar"))
            GTEST_SKIP() << "tar not installed";
        std::filesystem::create_directories(dir_.path() / "src" / "sub");
        test::write_file(dir_.file("src/a.txt"), as_span(test::text_bytes(2500000, 5)));
        test::write_file(dir_.file("src/sub/b.bin"), as_span(test::random_bytes(700000, 6)));
        test::write_file(dir_.file("src/sub/empty"), {});
        ASSERT_EQ(run("tar cf " + dir_.file("src.tar") + " -C " + dir_.file("src") + " ."), 0);
        tar_ = test::read_file(dir_.file("src.tar"));
    }

    test::temp_dir dir_;
    bytes tar_;
};

TEST_F(gzip_tar_interop, gnu_and_busybox_tar_extract_our_stream) {
    const bytes gz = test::compress_stream(as_span(tar_), 256 << 10, 6);
    test::write_file(dir_.file("ours.tar.gz"), as_span(gz));
    std::filesystem::create_directories(dir_.path() / "gnu");
    ASSERT_EQ(run("tar xzf - -C " + dir_.file("gnu") + " < " + dir_.file("ours.tar.gz")), 0);
    EXPECT_EQ(run("diff -r " + dir_.file("src") + " " + dir_.file("gnu")), 0);
    if (!test::have_tool("busybox"))
        GTEST_SKIP() << "busybox not installed";
    std::filesystem::create_directories(dir_.path() / "bb");
    ASSERT_EQ(run("busybox tar xzf - -C " + dir_.file("bb") + " < " + dir_.file("ours.tar.gz")), 0);
    EXPECT_EQ(run("diff -r " + dir_.file("src") + " " + dir_.file("bb")), 0);
}

TEST_F(gzip_tar_interop, we_read_tar_czf_output) {
    ASSERT_EQ(run("tar czf " + dir_.file("src.tgz") + " -C " + dir_.file("src") + " ."), 0);
    ASSERT_EQ(run("gzip -dc " + dir_.file("src.tgz") + " > " + dir_.file("ref.tar")), 0);
    const bytes tgz = test::read_file(dir_.file("src.tgz"));
    // The splitter hands it to the serial path...
    member_splitter sp;
    std::span<const std::byte> in = as_span(tgz);
    auto k = sp.feed(in, [](std::span<const std::byte>, const head_info&) { ADD_FAILURE(); });
    ASSERT_TRUE(k.has_value());
    EXPECT_EQ(*k, head_kind::foreign_gzip);
    EXPECT_EQ(in.size(), tgz.size());
    // ...which decodes it.
    auto s = stream_inflate(in);
    ASSERT_TRUE(s.has_value()) << s.error().message();
    EXPECT_EQ(*s, test::read_file(dir_.file("ref.tar")));
}

} // namespace
} // namespace podpipe::gzip
