// A tree_delta as the engine sends it: the selection delta.send + delta.new_dirs, not
// descending, carries exactly the delta, with the directories' modes and mtimes.
#include "engine/io/snapshot.hpp"
#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"
#include "tests/support/tree_fixture.hpp"

#include <fcntl.h>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace podpipe::pipeline {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::diff_trees;
using podpipe::testing::run_shell;
using podpipe::testing::shell_quote;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;
using strings = std::vector<std::string>;

const std::string newline_name = "new\nline";
const std::string utf8_name = "\xC3\xA9t\xC3\xA9 \xE2\x98\x83";
const std::string quote_name = "it's \"quoted\" $(touch pwned) `x` *";

struct stat lstat_of(const fs::path& p) {
    struct stat st {};

    EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
    return st;
}

void set_mtime_ns(const fs::path& p, std::int64_t ns) {
    const struct timespec ts[2] = {{0, UTIME_OMIT}, {ns / 1'000'000'000, ns % 1'000'000'000}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << p;
}

io::tree_snapshot snap_ok(const fs::path& root) {
    std::string detail;
    auto s = io::snapshot_tree(root.string(), {}, {}, &detail);
    EXPECT_TRUE(s.has_value()) << detail;
    return s ? std::move(*s) : io::tree_snapshot{};
}

void make_temp_tree(const fs::path& root) {
    write_file(root / "step.sh", "echo hi\n");
    write_file(root / "_github_home/.gitconfig", "[user]\n");
    write_file(root / "_github_workflow/event.json", "{}");
    write_file(root / "dir with spaces" / newline_name, "nl\n");
    write_file(root / utf8_name / "f", "utf8\n");
    write_file(root / quote_name, "q\n");
    fs::create_directories(root / "empty");
    fs::create_symlink("step.sh", root / "link");
    ::chmod((root / "step.sh").c_str(), 0755);
}

/// The expected copy built by GNU tar, independently of the engine: the root, each listed
/// path and its ancestors, nothing else.
void build_expected(const fs::path& root, const io::tree_delta& d, const fs::path& out) {
    std::set<std::string> names{"."};
    for (const auto* list : {&d.send, &d.new_dirs})
        for (const auto& p : *list)
            for (std::size_t i = p.find('/');; i = p.find('/', i + 1)) {
                names.insert("./" + p.substr(0, i));
                if (i == std::string::npos)
                    break;
            }
    std::string list;
    for (const auto& n : names) {
        list += n;
        list += '\0';
    }
    const fs::path list_file = out.parent_path() / "expected.list";
    write_file(list_file, list);
    fs::create_directories(out);
    ASSERT_EQ(run_shell("tar -C " + shell_quote(root.string()) + " --no-recursion --null -T " +
                        shell_quote(list_file.string()) + " -cf - | tar -C " +
                        shell_quote(out.string()) + " -xpf -"),
              0);
}

/// Every directory of `got` has the mode and mtime (seconds: what a ustar header carries) of
/// its counterpart in root.
void expect_dirs_match_root(const fs::path& got, const fs::path& root) {
    const auto sec = [](const struct stat& st) { return st.st_mtim.tv_sec; };
    for (auto it = fs::recursive_directory_iterator(got); it != fs::end(it); ++it) {
        if (!it->is_directory() || it->is_symlink())
            continue;
        const fs::path rel = fs::relative(it->path(), got);
        const struct stat s = lstat_of(it->path());
        const struct stat r = lstat_of(root / rel);
        EXPECT_EQ(s.st_mode & 07777, r.st_mode & 07777) << rel;
        EXPECT_EQ(sec(s), sec(r)) << rel;
    }
    EXPECT_EQ(lstat_of(got).st_mode & 07777, lstat_of(root).st_mode & 07777);
    EXPECT_EQ(sec(lstat_of(got)), sec(lstat_of(root)));
}

TEST(snapshot_send, the_selection_is_exactly_the_delta_with_directory_attributes) {
    temp_dir t;
    const fs::path root = t / "temp";
    make_temp_tree(root);
    const io::tree_snapshot before = snap_ok(root);
    write_file(root / "dir with spaces/added", "added");
    write_file(root / utf8_name / "f", "changed utf8\n");
    write_file(root / "deep/new/dirs/file", "deep");
    fs::create_directories(root / "deep/empty_one");
    ::chmod((root / "deep").c_str(), 0750);
    ::chmod((root / "deep/new").c_str(), 0705);
    set_mtime_ns(root / "deep/new", 1'234'567'890'123'456'789);
    fs::remove(root / "link");
    fs::create_symlink("elsewhere", root / "link");
    ::chmod(root.c_str(), 01777);

    const io::tree_delta d = io::diff_snapshots(before, snap_ok(root));
    send_options opt;
    strings only = d.send;
    only.insert(only.end(), d.new_dirs.begin(), d.new_dirs.end());
    opt.only = only;
    opt.only_descend = false;
    const fs::path stream = t / "delta.tgz";
    {
        const int fd = ::open(stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ASSERT_GE(fd, 0);
        fd_sink sink(fd);
        auto sent = send_tree(root.string(), sink, opt);
        ::close(fd);
        ASSERT_TRUE(sent) << sent.error().what();
        EXPECT_EQ(sent->files + sent->symlinks, d.send.size());
        EXPECT_EQ(sent->content_bytes, d.send_bytes);
    }
    const fs::path got = t / "got";
    {
        const int fd = ::open(stream.c_str(), O_RDONLY);
        ASSERT_GE(fd, 0);
        fd_source source(fd);
        recv_options ro;
        ro.require_manifest = true;
        auto r = recv_tree(source, got.string(), ro);
        ::close(fd);
        ASSERT_TRUE(r) << r.error().what();
    }
    build_expected(root, d, t / "expected");
    EXPECT_EQ(diff_trees(got, t / "expected"), strings{});
    expect_dirs_match_root(got, root);
    // Not in the delta, not sent.
    EXPECT_FALSE(fs::exists(got / "step.sh"));
    EXPECT_FALSE(fs::exists(got / "_github_home"));
}

TEST(snapshot_send, a_sends_own_snapshot_is_the_snapshot_of_the_tree_it_sent) {
    // No second walk: the snapshot the send already made equals a fresh one.
    temp_dir t;
    podpipe::testing::make_awkward_tree(t / "tree", 50);
    send_options opt;
    opt.snapshot = true;
    const fs::path stream = t / "all.tgz";
    const int fd = ::open(stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    fd_sink sink(fd);
    auto sent = send_tree((t / "tree").string(), sink, opt);
    ::close(fd);
    ASSERT_TRUE(sent) << sent.error().what();
    const io::tree_snapshot from_send = io::tree_snapshot::from_walk(sent->snapshot);
    EXPECT_EQ(from_send, snap_ok(t / "tree"));
    EXPECT_TRUE(io::diff_snapshots(from_send, snap_ok(t / "tree")).empty());
}

} // namespace
} // namespace podpipe::pipeline
