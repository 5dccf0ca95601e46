// What callers other than `podpipe pack`/`cp` need from the engine (issue 19, "one filesystem
// engine"): sending a selection of paths, the snapshot of what was walked, deletions carried in
// the stream (applied safely by a podpipe receiver, harmless to a plain tar), a local tree copy.
#include "engine/pipeline/copy_tree.hpp"
#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"

#include "engine/io/error.hpp"
#include "engine/io/tree_reader.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/tar/manifest.hpp"
#include "engine/tar/writer.hpp"
#include "tests/support/tree_fixture.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace podpipe::pipeline {
namespace {

using testing::diff_trees;
using testing::run_shell;
using testing::run_shell_capture;
using testing::shell_quote;
using testing::temp_dir;
using testing::write_file;

std::string q(const fs::path& p) { return shell_quote(p.string()); }

result<transfer_stats, transfer_error> pack(const fs::path& root, const fs::path& out,
                                            const send_options& opt) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    fd_sink sink(fd);
    auto r = send_tree(root.string(), sink, opt);
    ::close(fd);
    return r;
}

result<transfer_stats, transfer_error> unpack(const fs::path& in, const fs::path& dir,
                                              bool require_manifest = true) {
    const int fd = ::open(in.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    fd_source source(fd);
    recv_options opt;
    opt.require_manifest = require_manifest;
    auto r = recv_tree(source, dir.string(), opt);
    ::close(fd);
    return r;
}

// Every path below root, '/'-separated, relative, sorted (directories too).
std::set<std::string> listing(const fs::path& root) {
    std::set<std::string> out;
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
         ++it)
        out.insert(it->path().lexically_relative(root).string());
    return out;
}

std::string read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

class fs_engine : public ::testing::Test {
protected:
    void SetUp() override {
        write_file(src_ / "a/x", "ax");
        write_file(src_ / "a/y", "ay");
        write_file(src_ / "a/deep/z", "z");
        write_file(src_ / "b/w", "bw");
        write_file(src_ / "top", "top");
        fs::create_directories(src_ / "empty");
        fs::create_symlink("a/x", src_ / "link");
        ::chmod((src_ / "a").c_str(), 0750);
    }
    temp_dir tmp_;
    fs::path src_ = tmp_ / "src";
};

TEST_F(fs_engine, a_selection_sends_the_paths_and_the_directories_on_the_way) {
    send_options opt;
    opt.only = std::vector<std::string>{"a/deep/z", "link", "b", "missing/file"};
    opt.snapshot = true;
    auto sent = pack(src_, tmp_ / "s.tgz", opt);
    ASSERT_TRUE(sent) << sent.error().what();
    auto got = unpack(tmp_ / "s.tgz", tmp_ / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_TRUE(got->manifest_checked);
    EXPECT_EQ(listing(tmp_ / "dst"),
              (std::set<std::string>{"a", "a/deep", "a/deep/z", "b", "b/w", "link"}));
    // Directories on the way carry their own mode, as the whole tree would.
    struct stat st {};
    ASSERT_EQ(::stat((tmp_ / "dst/a").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0750u);
    EXPECT_EQ(read_all(tmp_ / "dst/a/deep/z"), "z");
    std::vector<std::string> snap;
    for (const auto& e : sent->snapshot)
        snap.push_back(e.path);
    EXPECT_EQ(snap, (std::vector<std::string>{"a", "a/deep", "a/deep/z", "b", "b/w", "link"}));
}

TEST_F(fs_engine, a_selected_directory_without_descend_is_its_entry_alone) {
    send_options opt;
    opt.only = std::vector<std::string>{"a", "b/w"};
    opt.only_descend = false;
    ASSERT_TRUE(pack(src_, tmp_ / "s.tgz", opt));
    auto got = unpack(tmp_ / "s.tgz", tmp_ / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(listing(tmp_ / "dst"), (std::set<std::string>{"a", "b", "b/w"}));
}

TEST_F(fs_engine, an_empty_selection_sends_the_root_alone_and_the_deletions) {
    const fs::path dst = tmp_ / "dst";
    write_file(dst / "old", "old");
    send_options opt;
    opt.only = std::vector<std::string>{};
    opt.deletions = {"old"};
    auto sent = pack(src_, tmp_ / "s.tgz", opt);
    ASSERT_TRUE(sent) << sent.error().what();
    EXPECT_EQ(sent->entries, 0u);
    auto got = unpack(tmp_ / "s.tgz", dst);
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(got->deletions, 1u);
    EXPECT_EQ(listing(dst), std::set<std::string>{});
}

TEST_F(fs_engine, an_unsafe_selection_is_bad_options) {
    for (const char* bad : {"../x", "/etc", "a/../../x"}) {
        send_options opt;
        opt.only = std::vector<std::string>{bad};
        auto sent = pack(src_, tmp_ / "s.tgz", opt);
        ASSERT_FALSE(sent) << bad;
        EXPECT_EQ(sent.error(), errc::bad_options) << bad;
    }
}

TEST_F(fs_engine, the_snapshot_is_what_the_walk_listed_and_equals_walk_tree) {
    send_options opt;
    opt.snapshot = true;
    auto sent = pack(src_, tmp_ / "s.tgz", opt);
    ASSERT_TRUE(sent) << sent.error().what();
    auto walked = io::walk_tree(src_.string(), {});
    ASSERT_TRUE(walked);
    EXPECT_TRUE(walked->problems.empty());
    EXPECT_EQ(sent->snapshot, walked->entries);
    ASSERT_EQ(walked->entries.size(), 10u);
    struct stat st {};
    ASSERT_EQ(::lstat((src_ / "a/x").c_str(), &st), 0);
    const auto it = std::find_if(walked->entries.begin(), walked->entries.end(),
                                 [](const io::walked_entry& e) { return e.path == "a/x"; });
    ASSERT_NE(it, walked->entries.end());
    EXPECT_EQ(it->kind, io::file_kind::regular);
    EXPECT_EQ(it->size, 2u);
    EXPECT_EQ(it->ino, st.st_ino);
    EXPECT_EQ(it->dev, st.st_dev);
    EXPECT_EQ(it->mode, st.st_mode & 07777);
    EXPECT_EQ(it->mtime_sec, st.st_mtim.tv_sec);
    EXPECT_EQ(it->mtime_nsec, static_cast<std::uint32_t>(st.st_mtim.tv_nsec));
    const auto link = std::find_if(walked->entries.begin(), walked->entries.end(),
                                   [](const io::walked_entry& e) { return e.path == "link"; });
    ASSERT_NE(link, walked->entries.end());
    EXPECT_EQ(link->kind, io::file_kind::symlink);
    EXPECT_EQ(link->link_target, "a/x");
    // A file replaced by rename with the same size and mtime shows as another inode.
    write_file(src_ / "a/x.new", "AX");
    const timespec when[2] = {st.st_mtim, st.st_mtim};
    ASSERT_EQ(::utimensat(AT_FDCWD, (src_ / "a/x.new").c_str(), when, 0), 0);
    fs::rename(src_ / "a/x.new", src_ / "a/x");
    auto again = io::walk_tree(src_.string(), {});
    ASSERT_TRUE(again);
    EXPECT_NE(again->entries, walked->entries);
}

TEST_F(fs_engine, walk_tree_of_a_missing_root_says_so) {
    std::string detail;
    auto w = io::walk_tree((tmp_ / "nope").string(), {}, {}, &detail);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), io::errc::root_not_found);
    EXPECT_NE(detail.find("nope"), std::string::npos);
}

TEST_F(fs_engine, deletions_are_applied_before_the_entries_and_verified) {
    // The receiver's older copy: a file and a directory gone since, and "top" that is now a
    // directory on the sender (a kind change: deleted first, then extracted).
    const fs::path dst = tmp_ / "dst";
    write_file(dst / "gone", "old");
    write_file(dst / "olddir/sub/f", "old");
    ::chmod((dst / "olddir/sub").c_str(), 0500); // deleting must still work
    write_file(dst / "keep", "keep");
    fs::remove(src_ / "top");
    write_file(src_ / "top/inner", "now a directory");
    send_options opt;
    opt.only = std::vector<std::string>{"top"};
    opt.deletions = {"gone", "olddir", "top", "never/was"};
    auto sent = pack(src_, tmp_ / "s.tgz", opt);
    ASSERT_TRUE(sent) << sent.error().what();
    EXPECT_EQ(sent->deletions, 4u);
    auto got = unpack(tmp_ / "s.tgz", dst);
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_TRUE(got->manifest_checked);
    EXPECT_EQ(got->deletions, 4u);
    EXPECT_EQ(listing(dst), (std::set<std::string>{"keep", "top", "top/inner"}));
    EXPECT_EQ(got->manifest, sent->manifest);
}

TEST_F(fs_engine, deletions_are_part_of_the_manifest) {
    // A receiver that ignored them would not verify: the digest covers them.
    tar::manifest_builder with, without;
    tar::entry e;
    e.path = "a";
    with.add_deletion("x");
    with.add_entry(e);
    without.add_entry(e);
    const auto m1 = with.finish(), m2 = without.finish();
    EXPECT_NE(m1.digest, m2.digest);
    EXPECT_EQ(m1.entries, m2.entries);
}

TEST_F(fs_engine, the_sender_refuses_unsafe_deletions) {
    for (const char* bad : {"../x", "/etc/passwd", ".", "", "a/../.."}) {
        send_options opt;
        opt.deletions = {bad};
        auto sent = pack(src_, tmp_ / "s.tgz", opt);
        ASSERT_FALSE(sent) << bad;
        EXPECT_EQ(sent.error(), errc::bad_options) << bad;
    }
}

// A hostile stream: deletions a podpipe sender would never write.
void write_hostile(const fs::path& out, const std::vector<std::string>& paths) {
    std::vector<std::byte> tar;
    tar::append_deletions(paths, tar);
    tar::manifest_builder m;
    for (const auto& p : paths)
        m.add_deletion(p);
    tar::append_end(m.finish(), tar);
    std::ofstream f(out, std::ios::binary);
    f.write(reinterpret_cast<const char*>(tar.data()), static_cast<std::streamsize>(tar.size()));
}

TEST_F(fs_engine, the_receiver_refuses_deletions_outside_or_through_a_symlink) {
    const fs::path dst = tmp_ / "dst";
    write_file(tmp_ / "outside/victim", "v");
    write_file(dst / "inside/f", "f");
    fs::create_symlink(tmp_ / "outside", dst / "out");
    fs::create_symlink("inside", dst / "in");
    struct tc {
        std::string path;
        const char* why;
    };
    for (const tc& c : {tc{"../outside/victim", "not a path beneath"},
                        tc{"/" + (tmp_ / "outside/victim").relative_path().string(),
                           "not a path beneath"},
                        tc{"out/victim", "through a symlink"},
                        tc{"in/f", "through a symlink"}, tc{".", "itself"}}) {
        write_hostile(tmp_ / "h.tar", {c.path});
        auto got = unpack(tmp_ / "h.tar", dst, false);
        ASSERT_FALSE(got) << c.path;
        EXPECT_EQ(got.error(), io::errc::unsafe_path) << c.path << ": " << got.error().what();
        EXPECT_NE(got.error().detail.find(c.why), std::string::npos) << got.error().what();
        EXPECT_TRUE(fs::exists(tmp_ / "outside/victim")) << c.path;
        EXPECT_TRUE(fs::exists(dst / "inside/f")) << c.path;
    }
    // The symlink itself is a name in the tree: deleting it removes the link, not its target.
    write_hostile(tmp_ / "h.tar", {"out"});
    ASSERT_TRUE(unpack(tmp_ / "h.tar", dst, false));
    EXPECT_FALSE(fs::is_symlink(dst / "out"));
    EXPECT_TRUE(fs::exists(tmp_ / "outside/victim"));
}

TEST_F(fs_engine, a_path_with_a_newline_or_backslash_round_trips) {
    const std::vector<std::string> paths = {"a\nb", "c\\d", "e\\n", "plain"};
    auto d = tar::parse_deletions_comment(tar::format_deletions_comment(paths));
    ASSERT_TRUE(d);
    EXPECT_EQ(d->paths, paths);
    EXPECT_FALSE(tar::parse_deletions_comment("podpipe-deletions v1 count=2\na"));
    EXPECT_FALSE(tar::parse_deletions_comment("podpipe-deletions v1 count=1\na\\x"));
    EXPECT_FALSE(tar::parse_deletions_comment("podpipe-deletions v1 count=1\n"));
    // Long lists span several headers, each under the parser's limit.
    std::vector<std::string> many;
    for (int i = 0; i < 40000; ++i)
        many.push_back("dir/" + std::string(20, 'p') + std::to_string(i));
    const fs::path dst = tmp_ / "many";
    fs::create_directories(dst / "dir");
    write_file(dst / ("dir/" + std::string(20, 'p') + "39999"), "x");
    write_file(dst / "dir/kept", "x");
    send_options opt;
    opt.deletions = many;
    opt.only = std::vector<std::string>{"top"};
    ASSERT_TRUE(pack(src_, tmp_ / "m.tgz", opt));
    auto got = unpack(tmp_ / "m.tgz", dst);
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(got->deletions, many.size());
    EXPECT_EQ(listing(dst), (std::set<std::string>{"dir", "dir/kept", "top"}));
}

TEST_F(fs_engine, plain_tar_extracts_a_stream_with_deletions_and_ignores_them) {
    send_options opt;
    opt.deletions = {"keep", "a"};
    ASSERT_TRUE(pack(src_, tmp_ / "s.tgz", opt));
    for (const char* tar_cmd : {"tar --warning=no-timestamp", "busybox tar"}) {
        const std::string tar = tar_cmd;
        if (tar == "busybox tar" && run_shell("busybox tar --help >/dev/null 2>&1") == 127)
            continue;
        const fs::path dst = tmp_ / ("plain-" + tar.substr(0, 4));
        write_file(dst / "keep", "keep");
        std::string out;
        ASSERT_EQ(run_shell_capture("cd " + q(dst) + " && " + tar + " -xzf " + q(tmp_ / "s.tgz"),
                                    out),
                  0)
            << tar << ": " << out;
        EXPECT_EQ(out, "") << tar << " printed something";
        EXPECT_EQ(read_all(dst / "keep"), "keep") << tar;
        fs::remove(dst / "keep");
        EXPECT_EQ(diff_trees(src_, dst, /*compare_mtimes=*/false), std::vector<std::string>{})
            << tar;
    }
}

TEST_F(fs_engine, copy_tree_copies_locally_and_verifies) {
    testing::make_awkward_tree(src_ / "awk", 100);
    send_options so;
    so.level = 0;
    so.snapshot = true;
    auto c = copy_tree(src_.string(), (tmp_ / "copy").string(), so, {});
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_TRUE(c->received.manifest_checked);
    EXPECT_EQ(c->sent.manifest, c->received.manifest);
    EXPECT_FALSE(c->sent.snapshot.empty());
    EXPECT_EQ(diff_trees(src_, tmp_ / "copy"), std::vector<std::string>{});
    // Deletions and a selection, as over any link.
    write_file(tmp_ / "copy/stale", "s");
    so.only = std::vector<std::string>{"top"};
    so.deletions = {"stale", "b"};
    c = copy_tree(src_.string(), (tmp_ / "copy").string(), so, {});
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->received.deletions, 2u);
    EXPECT_FALSE(fs::exists(tmp_ / "copy/stale"));
    EXPECT_FALSE(fs::exists(tmp_ / "copy/b"));
    EXPECT_TRUE(fs::exists(tmp_ / "copy/a/x"));
}

TEST_F(fs_engine, copy_tree_names_the_side_that_failed) {
    auto c = copy_tree((tmp_ / "nope").string(), (tmp_ / "copy").string(), {}, {});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().detail.rfind("reading: ", 0), 0u) << c.error().what();
    write_file(tmp_ / "file", "not a directory");
    c = copy_tree(src_.string(), (tmp_ / "file").string(), {}, {});
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error().detail.rfind("writing: ", 0), 0u) << c.error().what();
}

} // namespace
} // namespace podpipe::pipeline
