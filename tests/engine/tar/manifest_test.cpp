#include "engine/tar/manifest.hpp"
#include "engine/tar/parser.hpp"
#include "engine/tar/writer.hpp"

#include "tests/engine/tar/tar_test_util.hpp"

#include <random>
#include <string>

#include <gtest/gtest.h>

namespace podpipe::tar {
namespace {

using testing::as_bytes;

struct logical_entry {
    entry e;
    std::string content;
};

std::vector<logical_entry> sample_stream() {
    std::vector<logical_entry> s;
    std::mt19937 rng(7);
    for (int i = 0; i < 20; ++i) {
        logical_entry le;
        le.e.path = "dir/file" + std::to_string(i);
        le.e.mode = 0644;
        le.e.mtime_sec = 1700000000 + i;
        le.content.resize(static_cast<std::size_t>(rng() % 3000));
        for (auto& c : le.content)
            c = static_cast<char>(rng());
        le.e.size = le.content.size();
        s.push_back(le);
    }
    logical_entry link;
    link.e.path = "dir/link";
    link.e.type = entry_type::symlink;
    link.e.link_target = "file1";
    s.push_back(link);
    return s;
}

// Feeds the stream, splitting content at pieces of `chunk` bytes (0: whole).
manifest digest_of(const std::vector<logical_entry>& s, std::size_t chunk) {
    manifest_builder b;
    for (const auto& le : s) {
        b.add_entry(le.e);
        const auto bytes = as_bytes(le.content);
        if (chunk == 0) {
            b.add_content(bytes);
            continue;
        }
        for (std::size_t at = 0; at < bytes.size(); at += chunk)
            b.add_content(bytes.subspan(at, std::min(chunk, bytes.size() - at)));
    }
    return b.finish();
}

TEST(tar_manifest, independent_of_content_split) {
    const auto s = sample_stream();
    const manifest whole = digest_of(s, 0);
    EXPECT_EQ(whole.entries, s.size());
    std::uint64_t bytes = 0;
    for (const auto& le : s)
        bytes += le.content.size();
    EXPECT_EQ(whole.content_bytes, bytes);
    for (std::size_t chunk : {1, 3, 512, 4096})
        EXPECT_EQ(digest_of(s, chunk), whole) << chunk;
}

// A receiver that resumes continues the builder of an earlier process: the state saved at any
// byte of any entry, restored into a fresh builder, finishes as if nothing had stopped.
TEST(tar_manifest, saved_state_continues_at_every_point) {
    const auto s = sample_stream();
    const manifest whole = digest_of(s, 0);
    // Every (entry, content offset) cut, including before an entry and after its last byte.
    for (std::size_t cut_entry = 0; cut_entry < s.size(); ++cut_entry) {
        const std::size_t size = s[cut_entry].content.size();
        for (std::size_t cut_at : {std::size_t{0}, size / 3, size}) {
            manifest_builder first;
            for (std::size_t i = 0; i < cut_entry; ++i) {
                first.add_entry(s[i].e);
                first.add_content(as_bytes(s[i].content));
            }
            first.add_entry(s[cut_entry].e);
            first.add_content(as_bytes(s[cut_entry].content).first(cut_at));
            const manifest at_cut = first.peek();
            const std::string saved = first.save_state();

            manifest_builder second;
            ASSERT_TRUE(second.restore_state(saved));
            EXPECT_EQ(second.peek(), at_cut);
            second.add_content(as_bytes(s[cut_entry].content).subspan(cut_at));
            for (std::size_t i = cut_entry + 1; i < s.size(); ++i) {
                second.add_entry(s[i].e);
                second.add_content(as_bytes(s[i].content));
            }
            EXPECT_EQ(second.finish(), whole) << cut_entry << " at " << cut_at;
        }
    }
}

// peek() is what a resumed sender compares with the receiver's: any difference in the prefix
// shows, and peeking does not end the entry.
TEST(tar_manifest, peek_tells_prefixes_apart_and_changes_nothing) {
    const auto s = sample_stream();
    manifest_builder a, b;
    a.add_entry(s[0].e);
    b.add_entry(s[0].e);
    a.add_content(as_bytes(s[0].content));
    std::string other = s[0].content;
    other[other.size() / 2] ^= 1;
    b.add_content(as_bytes(other));
    EXPECT_NE(a.peek().digest, b.peek().digest);
    EXPECT_EQ(a.peek().entries, 1u);
    EXPECT_EQ(a.peek(), a.peek());
    manifest_builder c;
    c.add_entry(s[0].e);
    c.add_content(as_bytes(s[0].content));
    (void)c.peek();
    EXPECT_EQ(c.finish(), a.finish());
}

TEST(tar_manifest, restore_refuses_what_it_cannot_continue) {
    const auto s = sample_stream();
    manifest_builder b;
    b.add_entry(s[1].e);
    b.add_content(as_bytes(s[1].content));
    const std::string saved = b.save_state();
    const manifest before = b.peek();
    manifest_builder t;
    EXPECT_TRUE(t.restore_state(saved));
    EXPECT_FALSE(t.restore_state(""));
    EXPECT_FALSE(t.restore_state(saved.substr(0, saved.size() - 1)));
    EXPECT_FALSE(t.restore_state(saved + "x"));
    std::string other_version = saved;
    other_version[other_version.find(" xxh") + 4] ^= 1; // the version number's first byte
    EXPECT_FALSE(t.restore_state(other_version));
    std::string other_tag = saved;
    other_tag[0] = 'P';
    EXPECT_FALSE(t.restore_state(other_tag));
    EXPECT_EQ(t.peek(), before); // the failures left the restored state alone
}

TEST(tar_manifest, any_change_changes_the_digest) {
    const auto s = sample_stream();
    const auto base = digest_of(s, 0).digest;
    auto changed = [&](auto mutate) {
        auto t = s;
        mutate(t);
        return digest_of(t, 0).digest != base;
    };
    EXPECT_TRUE(changed([](auto& t) { t[3].content[10] ^= 1; }));
    EXPECT_TRUE(changed([](auto& t) { t[3].e.mode = 0755; }));
    EXPECT_TRUE(changed([](auto& t) { t[3].e.path = "dir/fileX"; }));
    EXPECT_TRUE(changed([](auto& t) { t[3].e.mtime_sec += 1; }));
    EXPECT_TRUE(changed([](auto& t) { t.back().e.link_target = "file2"; }));
    EXPECT_TRUE(changed([](auto& t) { t.back().e.type = entry_type::hardlink; }));
    EXPECT_TRUE(changed([](auto& t) { std::swap(t[0], t[1]); })) << "order-dependent";
    // Moving a byte from one file's content to the next file's keeps the concatenation equal.
    EXPECT_TRUE(changed([](auto& t) {
        t[1].content.insert(t[1].content.begin(), t[0].content.back());
        t[0].content.pop_back();
    }));
    // Ownership is not part of the digest.
    EXPECT_FALSE(changed([](auto& t) {
        t[2].e.uid = 42;
        t[2].e.gid = 43;
        t[2].e.uname = "x";
        t[2].e.gname = "y";
    }));
    EXPECT_FALSE(changed([](auto& t) { t[2].e.mode |= 0170000; })) << "mode masked to 07777";
}

TEST(tar_manifest, canonical_paths) {
    entry a;
    a.path = "./d";
    a.type = entry_type::directory;
    entry b = a;
    b.path = "d/";
    manifest_builder x, y;
    x.add_entry(a);
    y.add_entry(b);
    EXPECT_EQ(x.finish(), y.finish());
}

TEST(tar_manifest, reset_and_empty) {
    manifest_builder b;
    const manifest empty = b.finish();
    EXPECT_EQ(empty.entries, 0u);
    b.reset();
    entry e;
    e.path = "x";
    b.add_entry(e);
    const manifest one = b.finish();
    EXPECT_NE(one.digest, empty.digest);
    b.reset();
    EXPECT_EQ(b.finish(), empty);
}

TEST(tar_manifest, comment_round_trip) {
    for (manifest m : {manifest{0, 0, 0}, manifest{1, 2, 0xdeadbeefcafef00dULL},
                       manifest{~0ULL, ~0ULL, ~0ULL}}) {
        const std::string text = format_manifest_comment(m);
        auto back = parse_manifest_comment(text);
        ASSERT_TRUE(back) << text;
        EXPECT_EQ(*back, m);
    }
    EXPECT_EQ(format_manifest_comment({3, 10, 0xab}),
              "podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000ab");
}

TEST(tar_manifest, comment_rejects_malformed) {
    for (std::string_view bad : {
             "",
             "made by git",
             "podpipe-manifest v2 entries=3 bytes=10 digest=00000000000000ab",
             "podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000a",   // 15 hex
             "podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000abc", // 17 hex
             "podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000AB",  // uppercase
             "podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000ag",
             "podpipe-manifest v1 entries=-3 bytes=10 digest=00000000000000ab",
             "podpipe-manifest v1 entries=+3 bytes=10 digest=00000000000000ab",
             "podpipe-manifest v1 entries=03 bytes=10 digest=00000000000000ab",
             "podpipe-manifest v1 entries= bytes=10 digest=00000000000000ab",
             "podpipe-manifest v1 entries=18446744073709551616 bytes=1 digest=00000000000000ab",
             "podpipe-manifest v1 bytes=10 entries=3 digest=00000000000000ab",
             "podpipe-manifest v1 entries=3  bytes=10 digest=00000000000000ab",
             "podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000ab ",
             "podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000ab\n",
             " podpipe-manifest v1 entries=3 bytes=10 digest=00000000000000ab",
         }) {
        EXPECT_FALSE(parse_manifest_comment(bad)) << "'" << bad << "'";
    }
}

TEST(tar_problems, comment_round_trip_and_cleaning) {
    sender_problems p;
    p.count = 3;
    p.lines = {"cannot read 'a': Permission denied; skipped", "file 'b' shrank by 5 bytes"};
    auto back = parse_problems_comment(format_problems_comment(p));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->count, 3u);
    EXPECT_EQ(back->lines, p.lines);
    // A hostile sender: terminal escapes, bad UTF-8, a count below its lines, too many lines.
    std::string hostile = "podpipe-problems v1 count=0\n\x1b]0;owned\x07\n\xff\xc3(ok \xc3\xa9";
    for (int i = 0; i < 300; ++i)
        hostile += "\nline";
    back = parse_problems_comment(hostile);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->lines.size(), sender_problems::max_lines);
    EXPECT_GE(back->count, back->lines.size());
    EXPECT_EQ(back->lines[0], "?]0;owned?");
    EXPECT_EQ(back->lines[1], "?" "?(ok \xc3\xa9"); // split: "??(" is a trigraph
    EXPECT_EQ(printable_line(std::string(2000, 'x')).size(), sender_problems::max_line_bytes);
    EXPECT_EQ(printable_line("\xed\xa0\x80 \xe0\x80\x80"), "??? ???"); // surrogate, overlong
    for (std::string_view bad : {"", "podpipe-problems v1 count=", "podpipe-problems v2 count=1",
                                 "podpipe-problems v1 count=1x", "podpipe-manifest v1 count=1"})
        EXPECT_FALSE(parse_problems_comment(bad)) << "'" << bad << "'";
}

// The report travels in its own global header before the manifest; the parser hands it over.
TEST(tar_problems, parser_reports_them_from_the_archive) {
    sender_problems p{2, {"file 'x' vanished before it could be read; skipped"}};
    std::vector<std::byte> out;
    append_problems(p, out);
    append_end(manifest{0, 0, 1}, out);
    struct handler : testing::collector {
        std::vector<sender_problems> got;
        result<void> on_sender_problems(const sender_problems& s) override {
            got.push_back(s);
            return {};
        }
    } h;
    parser parse(h);
    ASSERT_TRUE(testing::parse_all(out, parse));
    ASSERT_EQ(h.got.size(), 1u);
    EXPECT_EQ(h.got[0].count, 2u);
    EXPECT_EQ(h.got[0].lines, p.lines);
    ASSERT_EQ(h.manifests.size(), 1u);
    EXPECT_TRUE(h.entries.empty());
}

} // namespace
} // namespace podpipe::tar
