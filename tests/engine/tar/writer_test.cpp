#include "engine/tar/writer.hpp"

#include "engine/tar/error.hpp"
#include "engine/tar/parser.hpp"
#include "tests/engine/tar/tar_test_util.hpp"

#include <string>

#include <gtest/gtest.h>

namespace podpipe::tar {
namespace {

using testing::as_bytes;
using testing::build_archive;
using testing::collector;
using testing::item;
using testing::parse_all;

entry file(std::string path, std::uint64_t size = 0) {
    entry e;
    e.path = std::move(path);
    e.type = entry_type::regular;
    e.mode = 0644;
    e.size = size;
    e.mtime_sec = 1700000000;
    e.uid = 1000;
    e.gid = 1000;
    e.uname = "user";
    e.gname = "group";
    return e;
}

item file_item(std::string path, std::string content) {
    item it{file(std::move(path), content.size()), std::move(content)};
    return it;
}

// A path of exactly n bytes made of 9-byte components "ddddddd/" style when slashes is true.
std::string path_of(std::size_t n, bool slashes) {
    std::string p;
    while (p.size() < n) {
        if (slashes && p.size() % 10 == 9 && p.size() + 1 < n)
            p.push_back('/');
        else
            p.push_back(static_cast<char>('a' + p.size() % 26));
    }
    return p;
}

void expect_same(const entry& want, const entry& got) {
    EXPECT_EQ(want.path, got.path);
    EXPECT_EQ(want.type, got.type);
    EXPECT_EQ(want.mode & 07777, got.mode);
    EXPECT_EQ(want.size, got.size);
    EXPECT_EQ(want.mtime_sec, got.mtime_sec);
    EXPECT_EQ(want.uid, got.uid);
    EXPECT_EQ(want.gid, got.gid);
    EXPECT_EQ(want.uname, got.uname);
    EXPECT_EQ(want.gname, got.gname);
    EXPECT_EQ(want.link_target, got.link_target);
}

// Round-trips items through writer and parser at several feeding granularities.
void round_trip(const std::vector<item>& items) {
    manifest sent;
    const auto archive = build_archive(items, true, &sent);
    ASSERT_EQ(archive.size() % 512, 0u);
    for (std::size_t chunk : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{511},
                              std::size_t{513}, std::size_t{4096}}) {
        SCOPED_TRACE("chunk " + std::to_string(chunk));
        collector c;
        parser p(c);
        auto r = parse_all(archive, p, chunk);
        ASSERT_TRUE(r) << r.error().message() << ": " << p.last_error_detail();
        EXPECT_TRUE(p.ended());
        EXPECT_EQ(p.bytes_consumed(), archive.size());
        ASSERT_EQ(c.entries.size(), items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
            SCOPED_TRACE(items[i].e.path.substr(0, 60));
            expect_same(items[i].e, c.entries[i].e);
            EXPECT_EQ(items[i].content, c.entries[i].content);
        }
        EXPECT_EQ(c.entry_ends, static_cast<int>(items.size()));
        ASSERT_EQ(c.manifests.size(), 1u);
        EXPECT_EQ(c.manifests[0], sent);
        EXPECT_EQ(c.digest.finish(), sent);
    }
}

std::size_t header_bytes(const entry& e) {
    std::vector<std::byte> out;
    EXPECT_TRUE(append_header(e, out));
    return out.size();
}

TEST(tar_writer, padding_for) {
    EXPECT_EQ(padding_for(0), 0u);
    EXPECT_EQ(padding_for(1), 511u);
    EXPECT_EQ(padding_for(511), 1u);
    EXPECT_EQ(padding_for(512), 0u);
    EXPECT_EQ(padding_for(513), 511u);
    EXPECT_EQ(padding_for(std::uint64_t{1} << 40), 0u);
}

TEST(tar_writer, path_lengths_round_trip) {
    std::vector<item> items;
    for (std::size_t n : {1, 99, 100, 101, 155, 156, 255, 256, 257, 300, 4000}) {
        items.push_back(file_item(path_of(n, false), "flat " + std::to_string(n)));
        items.push_back(file_item(path_of(n, true), "nested " + std::to_string(n)));
    }
    items.push_back(file_item(std::string(155, 'p') + "/" + std::string(100, 'n'), "split"));
    items.push_back(file_item(std::string(1, 'p') + "/" + std::string(100, 'n'), "split1"));
    round_trip(items);
}

TEST(tar_writer, pax_only_when_needed) {
    EXPECT_EQ(header_bytes(file(path_of(100, false))), 512u);
    EXPECT_GT(header_bytes(file(path_of(101, false))), 512u); // no slash to split at
    const std::string split_max = std::string(155, 'p') + "/" + std::string(100, 'n');
    EXPECT_EQ(header_bytes(file(split_max)), 512u); // prefix/name split, 256 bytes
    EXPECT_GT(header_bytes(file(std::string(156, 'p') + "/" + std::string(99, 'n'))), 512u);
    EXPECT_GT(header_bytes(file(std::string(154, 'p') + "/" + std::string(101, 'n'))), 512u);
    EXPECT_GT(header_bytes(file(path_of(300, true))), 512u);
    EXPECT_EQ(header_bytes(file("\xC3\xA9t\xC3\xA9/\xE2\x98\x83")), 512u); // raw UTF-8 fits
    entry big = file("big", std::uint64_t{8} << 30);
    EXPECT_GT(header_bytes(big), 512u);
    big.size = (std::uint64_t{8} << 30) - 1;
    EXPECT_EQ(header_bytes(big), 512u);
}

TEST(tar_writer, awkward_entries_round_trip) {
    std::vector<item> items;
    items.push_back(file_item("\xC3\xA9t\xC3\xA9 \xE2\x98\x83.txt", "snow"));
    items.push_back(file_item(std::string(40, 'x') + "/\xE6\x97\xA5\xE6\x9C\xAC" +
                                  std::string(200, '\xE8'),
                              "long non-ascii"));
    item empty = file_item("empty", "");
    items.push_back(empty);
    entry dir = file("a/dir");
    dir.type = entry_type::directory;
    dir.mode = 01777;
    items.push_back({dir, ""});
    entry sym = file("a/link");
    sym.type = entry_type::symlink;
    sym.mode = 0777;
    sym.link_target = std::string(300, 't') + "/target";
    items.push_back({sym, ""});
    entry sym_short = sym;
    sym_short.path = "a/short";
    sym_short.link_target = "../x";
    items.push_back({sym_short, ""});
    entry hard = file("a/hard");
    hard.type = entry_type::hardlink;
    hard.link_target = "empty";
    items.push_back({hard, ""});
    item suid = file_item("suid", "#!/bin/sh\n");
    suid.e.mode = 04755;
    items.push_back(suid);
    item t0 = file_item("epoch", "0");
    t0.e.mtime_sec = 0;
    items.push_back(t0);
    item future = file_item("future", "f");
    future.e.mtime_sec = (std::int64_t{1} << 33) + 5;
    items.push_back(future);
    item past = file_item("past", "p");
    past.e.mtime_sec = -86400;
    items.push_back(past);
    item ids = file_item("ids", "i");
    ids.e.uid = 3000000000u;
    ids.e.gid = 07777777 + 1;
    ids.e.uname = std::string(40, 'u');
    ids.e.gname = std::string(31, 'g');
    items.push_back(ids);
    entry fifo = file("fifo");
    fifo.type = entry_type::fifo;
    items.push_back({fifo, ""});
    entry chr = file("null");
    chr.type = entry_type::char_device;
    items.push_back({chr, ""});
    items.push_back(file_item("block_sized", std::string(512, 'b')));
    items.push_back(file_item("odd_sized", std::string(1025, 'o')));
    round_trip(items);
}

TEST(tar_writer, directory_root_and_trailing_slash) {
    entry root = file(".");
    root.type = entry_type::directory;
    entry d = file("x/");
    d.type = entry_type::directory;
    std::vector<item> items{{root, ""}, {d, ""}};
    const auto archive = build_archive(items);
    collector c;
    parser p(c);
    ASSERT_TRUE(parse_all(archive, p));
    ASSERT_EQ(c.entries.size(), 2u);
    EXPECT_EQ(c.entries[0].e.path, ".");
    EXPECT_EQ(c.entries[1].e.path, "x");
    ASSERT_EQ(c.manifests.size(), 1u);
    EXPECT_EQ(c.digest.finish(), c.manifests[0]) << "manifest canonicalizes like the parser";
}

TEST(tar_writer, size_of_8_gib_and_more_header_only) {
    for (std::uint64_t size : {std::uint64_t{8} << 30, (std::uint64_t{8} << 30) + 1,
                               std::uint64_t{1} << 40, ~std::uint64_t{0}}) {
        std::vector<std::byte> out;
        ASSERT_TRUE(append_header(file("huge", size), out));
        collector c;
        parser p(c);
        ASSERT_TRUE(p.feed(out)) << p.last_error_detail();
        ASSERT_EQ(c.entries.size(), 1u);
        EXPECT_EQ(c.entries[0].e.size, size);
        // Some content, then the stream ends: truncated, with the entry named.
        const std::string some(1000, 'z');
        ASSERT_TRUE(p.feed(as_bytes(some)));
        auto r = p.finish();
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(errc::truncated));
        EXPECT_NE(p.last_error_detail().find("huge"), std::string::npos) << p.last_error_detail();
    }
}

TEST(tar_writer, rejects_invalid_entries_without_writing) {
    std::vector<std::byte> out;
    auto expect_invalid = [&](const entry& e) {
        auto r = append_header(e, out);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), make_error_code(errc::invalid_entry));
        EXPECT_EQ(r.error(), condition::fatal);
        EXPECT_TRUE(out.empty());
    };
    expect_invalid(file(""));
    expect_invalid(file(std::string("a\0b", 3)));
    entry d = file("d", 4096);
    d.type = entry_type::directory;
    expect_invalid(d);
    entry s = file("s");
    s.type = entry_type::symlink;
    expect_invalid(s);
    entry u = file("u");
    u.uname = std::string("a\0", 2);
    expect_invalid(u);
    entry odd = file("odd");
    odd.type = entry_type::gnu_dumpdir;
    expect_invalid(odd);
    entry huge = file(std::string(2 << 20, 'p'));
    auto r = append_header(huge, out);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), make_error_code(errc::too_large));
    EXPECT_TRUE(out.empty());
}

TEST(tar_writer, end_is_parsed_as_manifest) {
    manifest m{18000, 250u << 20, 0x0123456789abcdefULL};
    std::vector<std::byte> out;
    append_end(m, out);
    EXPECT_EQ(out.size() % 512, 0u);
    EXPECT_EQ(out.size(), 512u * 4); // header, one data block, two zero blocks
    collector c;
    parser p(c);
    ASSERT_TRUE(parse_all(out, p, 1));
    EXPECT_TRUE(c.entries.empty());
    ASSERT_EQ(c.manifests.size(), 1u);
    EXPECT_EQ(c.manifests[0], m);
}

} // namespace
} // namespace podpipe::tar
