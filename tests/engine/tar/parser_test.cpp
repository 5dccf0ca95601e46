#include "engine/tar/parser.hpp"

#include "engine/tar/error.hpp"
#include "tests/engine/tar/tar_test_util.hpp"

#include <string>

#include <gtest/gtest.h>

namespace podpipe::tar {
namespace {

using testing::append_data;
using testing::append_zero_blocks;
using testing::as_bytes;
using testing::collector;
using testing::parse_all;
using testing::pax_record;
using testing::raw_header;

struct outcome {
    result<void> r;
    std::string detail;
    collector c;
};

// Parses at once and one byte at a time; both must agree on success/error.
std::unique_ptr<outcome> parse(const std::vector<std::byte>& data) {
    auto whole = std::make_unique<outcome>();
    {
        parser p(whole->c);
        whole->r = parse_all(data, p);
        whole->detail = p.last_error_detail();
    }
    collector c1;
    parser p1(c1);
    auto r1 = parse_all(data, p1, 1);
    EXPECT_EQ(static_cast<bool>(r1), static_cast<bool>(whole->r));
    if (!r1 && !whole->r) {
        EXPECT_EQ(r1.error(), whole->r.error());
    }
    EXPECT_EQ(c1.entries.size(), whole->c.entries.size());
    return whole;
}

void expect_error(const std::vector<std::byte>& data, errc want, std::string_view detail_has = {}) {
    auto o = parse(data);
    ASSERT_FALSE(o->r) << "expected " << make_error_code(want).message();
    EXPECT_EQ(o->r.error(), make_error_code(want)) << o->r.error().message() << ": " << o->detail;
    EXPECT_FALSE(o->detail.empty());
    if (!detail_has.empty()) {
        EXPECT_NE(o->detail.find(detail_has), std::string::npos) << o->detail;
    }
}

std::vector<std::byte> one_file(std::string_view name, std::string_view content) {
    std::vector<std::byte> out;
    raw_header::ustar(name, '0', content.size()).finish().append_to(out);
    append_data(out, content);
    return out;
}

TEST(tar_parser, errors_map_to_conditions) {
    EXPECT_EQ(make_error_code(errc::bad_checksum), condition::bad_input);
    EXPECT_EQ(make_error_code(errc::truncated), condition::bad_input);
    EXPECT_EQ(make_error_code(errc::bad_pax), condition::bad_input);
    EXPECT_EQ(make_error_code(errc::too_large), condition::bad_input);
    EXPECT_EQ(make_error_code(errc::unsupported), condition::bad_input); // exit 4, a stream problem
    EXPECT_STREQ(tar_category().name(), "tar");
    EXPECT_FALSE(make_error_code(errc::bad_header).message().empty());
}

TEST(tar_parser, minimal_archive_and_end_markers) {
    auto data = one_file("./dir/file.txt", "hello");
    append_zero_blocks(data);
    data.resize(data.size() + 1000, std::byte{0x5a}); // ignored after the end
    collector c;
    parser p(c);
    ASSERT_TRUE(p.feed(data));
    EXPECT_TRUE(p.ended());
    EXPECT_EQ(p.bytes_consumed(), 512u * 4);
    ASSERT_TRUE(p.finish());
    ASSERT_EQ(c.entries.size(), 1u);
    const entry& e = c.entries[0].e;
    EXPECT_EQ(e.path, "dir/file.txt");
    EXPECT_EQ(e.type, entry_type::regular);
    EXPECT_EQ(e.mode, 0644u);
    EXPECT_EQ(e.uid, 1000u);
    EXPECT_EQ(e.uname, "user");
    EXPECT_EQ(e.gname, "group");
    EXPECT_EQ(e.mtime_sec, 1700000000);
    EXPECT_EQ(c.entries[0].content, "hello");
}

TEST(tar_parser, clean_eof_without_zero_blocks_and_lone_zero_block) {
    auto data = one_file("a", "x");
    EXPECT_TRUE(parse(data)->r);
    append_zero_blocks(data, 1);
    auto o = parse(data);
    EXPECT_TRUE(o->r);
    EXPECT_EQ(o->c.entries.size(), 1u);
    EXPECT_TRUE(parse({})->r) << "an empty stream is an empty archive";
    // A lone zero block followed by another header: carry on like GNU tar.
    auto more = one_file("b", "y");
    data.insert(data.end(), more.begin(), more.end());
    EXPECT_EQ(parse(data)->c.entries.size(), 2u);
}

TEST(tar_parser, bad_checksum) {
    auto data = one_file("a", "x");
    data[3] = std::byte{'z'}; // name changed after the checksum was computed
    expect_error(data, errc::bad_checksum, "offset 0");
    // In a later header: the offset and the previous entry are named.
    auto data2 = one_file("first", "1");
    auto second = one_file("second", "2");
    second[100] = std::byte{'7'};
    data2.insert(data2.end(), second.begin(), second.end());
    expect_error(data2, errc::bad_checksum, "offset 1024 (after entry 'first')");
}

TEST(tar_parser, signed_checksum_accepted) {
    std::vector<std::byte> out;
    raw_header::ustar("caf\xE9", '0', 0).finish(true).append_to(out);
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    EXPECT_EQ(o->c.entries[0].e.path, "caf\xE9");
}

TEST(tar_parser, garbage_octal_is_bad_header) {
    for (std::size_t off : {100u, 108u, 116u, 124u, 136u}) {
        std::vector<std::byte> out;
        raw_header::ustar("a", '0', 0).set(off, "12x4").finish().append_to(out);
        SCOPED_TRACE(off);
        expect_error(out, errc::bad_header, "field");
    }
    std::vector<std::byte> out;
    raw_header::ustar("a", '0', 0).set(148, "zzzzzz").append_to(out);
    expect_error(out, errc::bad_header, "checksum field");
    // Leading spaces and space/NUL terminators are fine.
    std::vector<std::byte> ok;
    raw_header::ustar("a", '0', 0).set(100, "   644 \0").set(108, "      \0\0").finish().append_to(ok);
    auto o = parse(ok);
    ASSERT_TRUE(o->r) << o->detail;
    EXPECT_EQ(o->c.entries[0].e.mode, 0644u);
    EXPECT_EQ(o->c.entries[0].e.uid, 0u);
}

TEST(tar_parser, truncated_in_header_content_pax_and_padding) {
    auto data = one_file("a", std::string(100, 'c'));
    expect_error({data.begin(), data.begin() + 300}, errc::truncated, "header");
    expect_error({data.begin(), data.begin() + 512 + 10}, errc::truncated, "'a'");
    expect_error({data.begin(), data.begin() + 512 + 100}, errc::truncated, "padding");

    std::vector<std::byte> pax;
    const std::string rec = pax_record("path", std::string(300, 'p'));
    raw_header::ustar("PaxHeaders/x", 'x', rec.size()).finish().append_to(pax);
    append_data(pax, rec);
    expect_error({pax.begin(), pax.begin() + 512 + 50}, errc::truncated, "extended header");
    expect_error(pax, errc::truncated, "before its entry");
}

TEST(tar_parser, pax_records) {
    std::vector<std::byte> out;
    std::string recs = pax_record("path", "./p\xC3\xA9/" + std::string(200, 'q')) +
                       pax_record("linkpath", std::string(150, 'l')) +
                       pax_record("mtime", "1700000000.987654321") + pax_record("uid", "4000000000") +
                       pax_record("gid", "7") + pax_record("uname", "someone") +
                       pax_record("gname", "") + pax_record("atime", "1.5") +
                       pax_record("SCHILY.xattr.user.x", std::string("bin\0ary", 7)) +
                       pax_record("size", "3");
    raw_header::ustar("PaxHeaders/x", 'x', recs.size()).finish().append_to(out);
    append_data(out, recs);
    raw_header::ustar("short", '0', 999).set(157, "short_link").finish().append_to(out);
    append_data(out, "abc");
    append_zero_blocks(out);
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    ASSERT_EQ(o->c.entries.size(), 1u);
    const entry& e = o->c.entries[0].e;
    EXPECT_EQ(e.path, "p\xC3\xA9/" + std::string(200, 'q'));
    EXPECT_EQ(e.link_target, std::string(150, 'l'));
    EXPECT_EQ(e.mtime_sec, 1700000000);
    EXPECT_EQ(e.uid, 4000000000u);
    EXPECT_EQ(e.gid, 7u);
    EXPECT_EQ(e.uname, "someone");
    EXPECT_EQ(e.gname, "group") << "an empty pax value falls back to the header";
    EXPECT_EQ(e.size, 3u);
    EXPECT_EQ(o->c.entries[0].content, "abc");
}

TEST(tar_parser, pax_negative_fractional_mtime_floors) {
    for (auto [text, want] : {std::pair<const char*, std::int64_t>{"-1.5", -2}, {"-1.0", -1},
                              {"-3", -3}, {"0.999", 0}, {"12", 12}}) {
        std::vector<std::byte> out;
        const std::string rec = pax_record("mtime", text);
        raw_header::ustar("h", 'x', rec.size()).finish().append_to(out);
        append_data(out, rec);
        raw_header::ustar("f", '0', 0).finish().append_to(out);
        auto o = parse(out);
        ASSERT_TRUE(o->r) << text << ": " << o->detail;
        EXPECT_EQ(o->c.entries[0].e.mtime_sec, want) << text;
    }
}

TEST(tar_parser, bad_pax_records) {
    auto with_pax = [](std::string data) {
        std::vector<std::byte> out;
        raw_header::ustar("h", 'x', data.size()).finish().append_to(out);
        append_data(out, data);
        raw_header::ustar("f", '0', 0).finish().append_to(out);
        return out;
    };
    expect_error(with_pax("99 path=x\n"), errc::bad_pax, "length");
    expect_error(with_pax("12 path=xy\n"), errc::bad_pax);        // length 12 but 11 bytes
    expect_error(with_pax("10 path=xyz"), errc::bad_pax);          // no newline
    expect_error(with_pax("9 pathxyz\n"), errc::bad_pax);           // no '='
    expect_error(with_pax("x path=a\n"), errc::bad_pax);
    expect_error(with_pax("0 \n"), errc::bad_pax);
    expect_error(with_pax(pax_record("size", "12a")), errc::bad_pax, "size");
    expect_error(with_pax(pax_record("size", "-1")), errc::bad_pax);
    expect_error(with_pax(pax_record("size", "99999999999999999999999")), errc::bad_pax);
    expect_error(with_pax(pax_record("mtime", "1e9")), errc::bad_pax);
    expect_error(with_pax(pax_record("mtime", "1.")), errc::bad_pax);
    expect_error(with_pax(pax_record("uid", "4294967296")), errc::bad_pax);
    expect_error(with_pax(pax_record("path", std::string("a\0b", 3))), errc::bad_header, "NUL");
    expect_error(with_pax(pax_record("GNU.sparse.major", "1")), errc::unsupported);
}

TEST(tar_parser, oversized_extended_headers_are_refused_before_reading_them) {
    for (char type : {'x', 'g', 'L', 'K'}) {
        std::vector<std::byte> out;
        raw_header::ustar("h", type, (1u << 20) + 1).finish().append_to(out);
        collector c;
        parser p(c);
        auto r = p.feed(out); // the header alone is enough to refuse
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(errc::too_large));
        EXPECT_NE(p.last_error_detail().find("limit"), std::string::npos);
        // Sticky.
        auto r2 = p.feed(out);
        ASSERT_FALSE(r2);
        EXPECT_EQ(r2.error(), make_error_code(errc::too_large));
        EXPECT_FALSE(p.finish());
    }
    // Base-256 sizes beyond 64 bits are refused too.
    std::vector<std::byte> out;
    auto h = raw_header::ustar("f", '0', 0);
    h.b[124] = std::byte{0x80};
    for (int i = 125; i < 136; ++i)
        h.b[i] = std::byte{0xff};
    h.finish().append_to(out);
    expect_error(out, errc::too_large);
}

TEST(tar_parser, gnu_long_name_and_link) {
    std::vector<std::byte> out;
    const std::string name = "./" + std::string(300, 'n') + "/";
    const std::string link = std::string(200, 'k');
    auto gnu = [](std::string_view n, char type, std::size_t size) {
        auto h = raw_header::ustar(n, type, size);
        h.set(257, std::string_view("ustar  \0", 8));
        h.set(345, "\x01\x02garbage in GNU atime/ctime area");
        return h.finish();
    };
    gnu("././@LongLink", 'L', name.size() + 1).append_to(out);
    append_data(out, name + std::string(1, '\0'));
    gnu("././@LongLink", 'K', link.size() + 1).append_to(out);
    append_data(out, link + std::string(1, '\0'));
    gnu(name.substr(0, 100), '5', 0).set(157, link.substr(0, 100)).finish().append_to(out);
    gnu("plain", '0', 2).append_to(out);
    append_data(out, "hi");
    append_zero_blocks(out);
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    ASSERT_EQ(o->c.entries.size(), 2u);
    EXPECT_EQ(o->c.entries[0].e.path, std::string(300, 'n'));
    EXPECT_EQ(o->c.entries[0].e.type, entry_type::directory);
    EXPECT_EQ(o->c.entries[0].e.link_target, link);
    EXPECT_EQ(o->c.entries[1].e.path, "plain") << "GNU headers: no prefix, overrides reset";
    EXPECT_EQ(o->c.entries[1].e.link_target, "");
    EXPECT_EQ(o->c.entries[1].e.uname, "user");

    std::vector<std::byte> bad;
    gnu("././@LongLink", 'L', 4).append_to(bad);
    append_data(bad, std::string("a\0b\0", 4));
    gnu("x", '0', 0).append_to(bad);
    expect_error(bad, errc::bad_header, "NUL");
}

TEST(tar_parser, base256_numbers) {
    std::vector<std::byte> out;
    auto h = raw_header::ustar("b", '0', 0);
    // uid 0x80 00 00 00 12 34 56 78 -> 0x12345678
    const unsigned char uid[8] = {0x80, 0, 0, 0, 0x12, 0x34, 0x56, 0x78};
    std::memcpy(h.b + 108, uid, 8);
    // mtime -1 (all 0xff), size 5
    std::memset(h.b + 136, 0xff, 12);
    unsigned char size[12] = {0x80};
    size[11] = 5;
    std::memcpy(h.b + 124, size, 12);
    h.finish().append_to(out);
    append_data(out, "12345");
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    EXPECT_EQ(o->c.entries[0].e.uid, 0x12345678u);
    EXPECT_EQ(o->c.entries[0].e.mtime_sec, -1);
    EXPECT_EQ(o->c.entries[0].content, "12345");
}

TEST(tar_parser, v7_header_and_old_directory_convention) {
    std::vector<std::byte> out;
    raw_header h;
    h.set(0, "olddir/").octal(100, 8, 0755).octal(108, 8, 0).octal(116, 8, 0);
    h.octal(124, 12, 0).octal(136, 12, 1);
    h.set(345, "prefix ignored without magic");
    h.finish().append_to(out);
    raw_header f;
    f.set(0, "olddir/f").octal(100, 8, 0100644).octal(108, 8, 0).octal(116, 8, 0);
    f.octal(124, 12, 3).octal(136, 12, 1);
    f.b[156] = std::byte{'7'};
    f.finish().append_to(out);
    append_data(out, "abc");
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    ASSERT_EQ(o->c.entries.size(), 2u);
    EXPECT_EQ(o->c.entries[0].e.path, "olddir");
    EXPECT_EQ(o->c.entries[0].e.type, entry_type::directory);
    EXPECT_EQ(o->c.entries[0].e.uname, "");
    EXPECT_EQ(o->c.entries[1].e.path, "olddir/f");
    EXPECT_EQ(o->c.entries[1].e.type, entry_type::regular);
    EXPECT_EQ(o->c.entries[1].e.mode, 0644u) << "file type bits masked off";
}

TEST(tar_parser, ustar_prefix_and_path_normalisation) {
    std::vector<std::byte> out;
    raw_header::ustar("name", '0', 0).set(345, "some/prefix").finish().append_to(out);
    raw_header::ustar("./", '5', 0).finish().append_to(out);
    raw_header::ustar("./x/y//", '5', 0).finish().append_to(out);
    raw_header::ustar("../escape", '0', 0).finish().append_to(out);
    raw_header::ustar("/etc/passwd", '0', 0).finish().append_to(out);
    raw_header::ustar("h", '1', 0).set(157, "./name").finish().append_to(out);
    raw_header::ustar("s", '2', 0).set(157, "./rel").finish().append_to(out);
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    ASSERT_EQ(o->c.entries.size(), 7u);
    EXPECT_EQ(o->c.entries[0].e.path, "some/prefix/name");
    EXPECT_EQ(o->c.entries[1].e.path, ".");
    EXPECT_EQ(o->c.entries[2].e.path, "x/y");
    EXPECT_EQ(o->c.entries[3].e.path, "../escape");
    EXPECT_EQ(o->c.entries[4].e.path, "/etc/passwd");
    EXPECT_EQ(o->c.entries[5].e.link_target, "name") << "hardlink targets are archive paths";
    EXPECT_EQ(o->c.entries[6].e.link_target, "./rel") << "symlink targets are raw";

    std::vector<std::byte> empty;
    raw_header::ustar("", '0', 0).finish().append_to(empty);
    expect_error(empty, errc::bad_header, "empty name");
}

TEST(tar_parser, types_without_data_and_unknown_types) {
    std::vector<std::byte> out;
    // A directory with a bogus size: POSIX stores no data for it, so the next header follows.
    raw_header::ustar("d", '5', 1000).finish().append_to(out);
    raw_header::ustar("fifo", '6', 0).finish().append_to(out);
    raw_header::ustar("dump", 'D', 4).finish().append_to(out);
    append_data(out, std::string_view("a\0b\0", 4));
    raw_header::ustar("vendor", 'Q', 2).finish().append_to(out);
    append_data(out, "qq");
    raw_header::ustar("hl", '1', 3).set(157, "dump").finish().append_to(out);
    append_data(out, "hld");
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    ASSERT_EQ(o->c.entries.size(), 5u);
    EXPECT_EQ(o->c.entries[0].e.size, 0u);
    EXPECT_EQ(o->c.entries[1].e.type, entry_type::fifo);
    EXPECT_EQ(o->c.entries[2].e.type, entry_type::gnu_dumpdir);
    EXPECT_EQ(o->c.entries[2].content, std::string("a\0b\0", 4));
    EXPECT_EQ(static_cast<char>(o->c.entries[3].e.type), 'Q');
    EXPECT_EQ(o->c.entries[3].content, "qq");
    EXPECT_EQ(o->c.entries[4].e.type, entry_type::hardlink);
    EXPECT_EQ(o->c.entries[4].content, "hld");
}

TEST(tar_parser, sparse_is_unsupported) {
    std::vector<std::byte> out;
    raw_header::ustar("sparse", 'S', 0).finish().append_to(out);
    expect_error(out, errc::unsupported, "sparse");
}

TEST(tar_parser, extended_header_then_end_marker) {
    std::vector<std::byte> out;
    const std::string rec = pax_record("path", "x");
    raw_header::ustar("h", 'x', rec.size()).finish().append_to(out);
    append_data(out, rec);
    append_zero_blocks(out);
    expect_error(out, errc::bad_header, "extended header");
}

TEST(tar_parser, global_headers_other_than_ours_are_ignored) {
    std::vector<std::byte> out;
    const std::string recs = pax_record("comment", "made by git") +
                             pax_record("path", "not/applied") +
                             pax_record("comment", "podpipe-manifest v2 entries=1");
    raw_header::ustar("pax_global_header", 'g', recs.size()).finish().append_to(out);
    append_data(out, recs);
    raw_header::ustar("f", '0', 0).finish().append_to(out);
    auto o = parse(out);
    ASSERT_TRUE(o->r) << o->detail;
    EXPECT_TRUE(o->c.manifests.empty());
    ASSERT_EQ(o->c.entries.size(), 1u);
    EXPECT_EQ(o->c.entries[0].e.path, "f");
}

class failing_handler : public collector {
public:
    int fail_at_call = 0;
    int calls = 0;
    result<void> step() {
        if (calls++ == fail_at_call)
            return fail(std::make_error_code(std::errc::no_space_on_device));
        return {};
    }
    result<void> on_entry(const entry& e) override {
        PODPIPE_TRY(step());
        return collector::on_entry(e);
    }
    result<void> on_data(std::span<const std::byte> b) override {
        PODPIPE_TRY(step());
        return collector::on_data(b);
    }
    result<void> on_entry_end() override {
        PODPIPE_TRY(step());
        return collector::on_entry_end();
    }
    result<void> on_manifest(const manifest& m) override {
        PODPIPE_TRY(step());
        return collector::on_manifest(m);
    }
};

TEST(tar_parser, handler_errors_stop_the_parser_at_every_callback) {
    std::vector<testing::item> items{{entry{"a", entry_type::regular, 0644, 3}, "abc"},
                                     {entry{"b", entry_type::regular, 0644, 0}, ""}};
    const auto archive = testing::build_archive(items);
    // Callbacks: entry a, data, end, entry b, end, manifest = 6. Fail each in turn (fail_count).
    for (int n = 0;; ++n) {
        failing_handler h;
        h.fail_at_call = n;
        parser p(h);
        auto r = parse_all(archive, p);
        if (r) {
            EXPECT_EQ(n, 6);
            break;
        }
        EXPECT_EQ(r.error(), std::make_error_code(std::errc::no_space_on_device));
        EXPECT_NE(p.last_error_detail().find("receiver"), std::string::npos);
        EXPECT_FALSE(p.feed(archive));
        ASSERT_LT(n, 10);
    }
}

// A resumed receive: one parser reads the stream up to some byte and says where it stands; a
// fresh parser takes over there with the rest of the stream. At every byte where where() has a
// point, the two together report exactly what one parser reports for the whole stream; and
// where() has a point between entries and inside regular content only.
TEST(tar_parser, a_second_parser_takes_over_at_every_resume_point) {
    std::vector<testing::item> items;
    auto file = [&](std::string path, std::size_t size) {
        testing::item it;
        it.e.path = std::move(path);
        it.e.mode = 0640;
        it.e.mtime_sec = 1700000000;
        it.e.size = size;
        for (std::size_t i = 0; i < size; ++i)
            it.content.push_back(static_cast<char>('a' + (i * 7 + size) % 26));
        items.push_back(it);
    };
    testing::item dir;
    dir.e.path = "d";
    dir.e.type = entry_type::directory;
    dir.e.mode = 0755;
    items.push_back(dir);
    file("d/empty", 0);
    file("d/one", 1);
    file("d/" + std::string(150, 'n'), 700); // a pax path header
    file("d/block", 512);
    file("d/big", 3000);
    testing::item link;
    link.e.path = "d/link";
    link.e.type = entry_type::symlink;
    link.e.link_target = "big";
    items.push_back(link);
    file("d/last", 1025);
    const std::vector<std::byte> data = testing::build_archive(items);

    collector whole;
    parser full(whole);
    ASSERT_TRUE(parse_all(data, full));

    std::size_t between = 0, inside = 0;
    for (std::size_t k = 0; k <= data.size(); ++k) {
        collector first;
        parser p1(first);
        ASSERT_TRUE(p1.feed(std::span(data).first(k)));
        const auto point = p1.where();
        if (!point)
            continue;
        ASSERT_EQ(point->offset, k);
        collector second;
        if (point->in_content) {
            ++inside;
            ASSERT_TRUE(first.in_entry);
            ASSERT_EQ(point->current.type, entry_type::regular);
            ASSERT_EQ(point->current.path, first.entries.back().e.path);
            ASSERT_EQ(point->content_done, first.entries.back().content.size());
            // The second handler continues the entry the first one began.
            second.entries.push_back(first.entries.back());
            second.in_entry = true;
            first.entries.pop_back();
        } else {
            ++between;
            ASSERT_FALSE(first.in_entry) << k;
        }
        parser p2(second);
        ASSERT_TRUE(p2.resume_at(*point)) << k;
        ASSERT_TRUE(parse_all(std::span(data).subspan(k), p2)) << k << p2.last_error_detail();
        EXPECT_EQ(p2.bytes_consumed(), full.bytes_consumed()) << k;
        std::vector<testing::parsed_entry> joined = first.entries;
        joined.insert(joined.end(), second.entries.begin(), second.entries.end());
        ASSERT_EQ(joined.size(), whole.entries.size()) << k;
        for (std::size_t i = 0; i < joined.size(); ++i) {
            EXPECT_EQ(joined[i].e.path, whole.entries[i].e.path) << k;
            EXPECT_EQ(joined[i].content, whole.entries[i].content) << k << " " << i;
        }
        std::vector<manifest> manifests = first.manifests;
        manifests.insert(manifests.end(), second.manifests.begin(), second.manifests.end());
        EXPECT_EQ(manifests, whole.manifests) << k;
    }
    // Every entry boundary (before the first header, after each entry, after the manifest's
    // global header) and every content byte of the five non-empty files but their last.
    EXPECT_EQ(between, items.size() + 2);
    EXPECT_EQ(inside, 1 + 700 + 512 + 3000 + 1025 - 5);
}

TEST(tar_parser, resume_at_refuses_points_where_cannot_return) {
    collector c;
    resume_point p;
    p.offset = 100; // not on a block, between entries
    EXPECT_FALSE(parser(c).resume_at(p));
    p.offset = 1024;
    p.in_content = true;
    p.current.path = "x";
    p.current.type = entry_type::symlink;
    p.current.size = 10;
    p.content_done = 5;
    EXPECT_FALSE(parser(c).resume_at(p)); // not a regular file
    p.current.type = entry_type::regular;
    p.content_done = 10;
    EXPECT_FALSE(parser(c).resume_at(p)); // nothing left of it
    p.content_done = 5;
    parser fed(c);
    ASSERT_TRUE(fed.feed(as_bytes(std::string(512, '\0'))));
    EXPECT_FALSE(fed.resume_at(p)); // already read a stream
    parser fresh(c);
    EXPECT_TRUE(fresh.resume_at(p));
    EXPECT_EQ(fresh.where()->content_done, 5u);
}

} // namespace
} // namespace podpipe::tar
