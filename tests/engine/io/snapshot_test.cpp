#include "engine/io/snapshot.hpp"

#include "engine/io/error.hpp"
#include "engine/io/remove.hpp"
#include "engine/io/tree_reader.hpp"
#include "tests/support/tree_fixture.hpp"

#include <algorithm>
#include <climits>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace podpipe::io {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;
using strings = std::vector<std::string>;

// Names that break naive listings and shell lines.
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

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

tree_snapshot snap_ok(const fs::path& root, const strings& leave_out = {}) {
    std::string detail;
    auto s = snapshot_tree(root.string(), leave_out, {}, &detail);
    EXPECT_TRUE(s.has_value()) << detail;
    return s ? std::move(*s) : tree_snapshot{};
}

strings keys_of(const tree_snapshot& s) {
    strings k;
    for (const snapshot_entry e : s)
        k.emplace_back(e.path);
    return k;
}

snapshot_entry at(const tree_snapshot& s, std::string_view path) {
    const auto e = s.find(path);
    EXPECT_TRUE(e.has_value()) << path;
    return e ? *e : snapshot_entry{};
}

/// An entry in the order the hook's tests always wrote them: kind, size, mtime, mode, inode,
/// link target.
snapshot_entry ent(std::string_view path, file_kind kind, std::uint64_t size, std::int64_t mtime,
                   std::uint32_t mode, std::uint64_t ino, std::string_view link = {}) {
    return {path, kind, mode, size, mtime, ino, link};
}

constexpr file_kind file = file_kind::regular;
constexpr file_kind dir = file_kind::directory;
constexpr file_kind link = file_kind::symlink;

/// A runner's _temp as a step sees it, with the awkward names.
void make_temp_tree(const fs::path& root) {
    write_file(root / "step.sh", "echo hi\n");
    write_file(root / "_github_home/.gitconfig", "[user]\n");
    write_file(root / "_github_workflow/event.json", "{}");
    write_file(root / "_runner_file_commands/set_output_1", "");
    write_file(root / "_runner_hook_responses/response.json", "{}");
    write_file(root / "dir with spaces" / newline_name, "nl\n");
    write_file(root / utf8_name / "f", "utf8\n");
    write_file(root / quote_name, "q\n");
    write_file(root / "gone_dir/a/b", "b\n");
    write_file(root / "gone_dir/c", "c\n");
    write_file(root / "kind/was_file", "f\n");
    write_file(root / "kind/was_dir/child", "child\n");
    fs::create_directories(root / "empty");
    fs::create_symlink("step.sh", root / "link");
    fs::create_symlink("does/not/exist", root / "dangling");
    ::chmod((root / "step.sh").c_str(), 0755);
}

// ---------------------------------------------------------------- snapshot_tree

TEST(snapshot_tree, lists_every_kind_with_lstat_fields_and_odd_names) {
    temp_dir t;
    const fs::path root = t / "temp";
    make_temp_tree(root);
    ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0600), 0); // skipped: not transferable
    set_mtime_ns(root / "step.sh", 1'700'000'000'123'456'789);

    const tree_snapshot s = snap_ok(root, {"_runner_hook_responses", "./empty/"});
    const strings want = {"_github_home",
                          "_github_home/.gitconfig",
                          "_github_workflow",
                          "_github_workflow/event.json",
                          "_runner_file_commands",
                          "_runner_file_commands/set_output_1",
                          "dangling",
                          "dir with spaces",
                          "dir with spaces/" + newline_name,
                          "gone_dir",
                          "gone_dir/a",
                          "gone_dir/a/b",
                          "gone_dir/c",
                          quote_name,
                          "kind",
                          "kind/was_dir",
                          "kind/was_dir/child",
                          "kind/was_file",
                          "link",
                          "step.sh",
                          utf8_name,
                          utf8_name + "/f"};
    strings sorted_want = want;
    std::sort(sorted_want.begin(), sorted_want.end());
    EXPECT_EQ(keys_of(s), sorted_want);

    const snapshot_entry script = at(s, "step.sh");
    const struct stat st = lstat_of(root / "step.sh");
    EXPECT_EQ(script.kind, file);
    EXPECT_EQ(script.size, 8u);
    EXPECT_EQ(script.mode, 0755u);
    EXPECT_EQ(script.ino, st.st_ino);
    EXPECT_EQ(script.mtime_ns, 1'700'000'000'123'456'789);
    EXPECT_TRUE(script.link_target.empty());

    EXPECT_EQ(at(s, "link").kind, link);
    EXPECT_EQ(at(s, "link").link_target, "step.sh");
    EXPECT_EQ(at(s, "link").size, 0u);
    EXPECT_EQ(at(s, "dangling").link_target, "does/not/exist");
    EXPECT_EQ(at(s, "gone_dir").kind, dir);
    EXPECT_EQ(at(s, "gone_dir").mode, lstat_of(root / "gone_dir").st_mode & 07777);
    EXPECT_EQ(at(s, "dir with spaces/" + newline_name).size, 3u);
    EXPECT_FALSE(s.find("fifo"));
    EXPECT_FALSE(s.find("_runner_hook_responses/response.json"));
}

TEST(snapshot_tree, equals_the_snapshot_a_send_would_yield_from_the_same_walk) {
    temp_dir t;
    podpipe::testing::make_awkward_tree(t / "tree", 50);
    auto walked = walk_tree((t / "tree").string(), {});
    ASSERT_TRUE(walked.has_value());
    EXPECT_EQ(tree_snapshot::from_walk(walked->entries), snap_ok(t / "tree"));
    EXPECT_EQ(snap_ok(t / "tree").size(), walked->entries.size());
}

TEST(snapshot_tree, does_not_follow_a_symlinked_directory) {
    temp_dir t;
    write_file(t / "outside/secret", "s");
    write_file(t / "temp/a", "a");
    fs::create_directory_symlink(t / "outside", t / "temp/out");
    const tree_snapshot s = snap_ok(t / "temp");
    EXPECT_EQ(keys_of(s), (strings{"a", "out"}));
    EXPECT_EQ(at(s, "out").kind, link);
}

TEST(snapshot_tree, missing_root_is_an_error_naming_it) {
    temp_dir t;
    const std::string root = (t / "no_such_temp").string();
    std::string detail;
    auto s = snapshot_tree(root, {}, {}, &detail);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error(), make_error_code(errc::root_not_found));
    EXPECT_NE(detail.find(root), std::string::npos) << detail;
    EXPECT_NE(detail.find("No such file or directory"), std::string::npos) << detail;
}

TEST(snapshot_tree, an_unlistable_directory_is_an_error_not_a_deletion) {
    temp_dir t;
    write_file(t / "temp/locked/f", "x");
    write_file(t / "temp/open/g", "y");
    // Root lists a directory of mode 0000: as root, the walk runs in a child that drops to
    // nobody first (the tree is made readable for it, all but `locked`).
    ::chmod(t.path().c_str(), 0755);
    ::chmod((t / "temp").c_str(), 0755);
    ::chmod((t / "temp/open").c_str(), 0755);
    ::chmod((t / "temp/open/g").c_str(), 0644);
    ::chmod((t / "temp/locked").c_str(), 0);
    const auto walk = [&](std::string& detail) {
        auto s = snapshot_tree((t / "temp").string(), {}, {}, &detail);
        return !s.has_value() && s.error() == make_error_code(errc::io_failed) &&
               detail.find("locked") != std::string::npos;
    };
    bool refused = false;
    std::string detail;
    if (::geteuid() != 0) {
        refused = walk(detail);
    } else {
        const pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            std::string d;
            const bool ok = ::setgid(65534) == 0 && ::setuid(65534) == 0 && walk(d);
            ::_exit(ok ? 0 : 1);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        refused = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        detail = "(in a child as nobody) exit status " + std::to_string(status);
    }
    ::chmod((t / "temp/locked").c_str(), 0700);
    EXPECT_TRUE(refused) << detail;
    // And readable again, the same tree is a snapshot.
    EXPECT_EQ(keys_of(snap_ok(t / "temp")), (strings{"locked", "locked/f", "open", "open/g"}));
}

// ---------------------------------------------------------------- the type

TEST(tree_snapshot, entries_are_sorted_unique_and_cost_what_the_header_says) {
    const std::string long_path(200, 'p');
    const snapshot_entry in[] = {ent("b", file, 1, 1, 0644, 1), ent("a/x", file, 2, 2, 0644, 2),
                                 ent("a", dir, 0, 3, 0755, 3), ent("a-b", link, 0, 4, 0777, 4, "t"),
                                 ent("b", file, 9, 9, 0600, 9), ent(long_path, file, 0, 0, 0, 5)};
    tree_snapshot s = tree_snapshot::from_entries(in);
    EXPECT_EQ(keys_of(s), (strings{"a", "a-b", "a/x", "b", long_path})); // "-" < "/"
    EXPECT_EQ(at(s, "b").size, 9u); // the last of a repeated path wins
    EXPECT_EQ(at(s, "a-b").link_target, "t");
    EXPECT_FALSE(s.find("a/"));
    EXPECT_FALSE(s.find(""));
    // 48 bytes per entry plus its names, nothing allocated per entry.
    const std::size_t names = 1 + 3 + 1 + 3 + 1 + 1 + 1 + long_path.size();
    EXPECT_LE(s.memory_bytes(), 6 * 48 + names + 64);
    EXPECT_TRUE(s.erase("a/x"));
    EXPECT_FALSE(s.erase("a/x"));
    EXPECT_EQ(keys_of(s), (strings{"a", "a-b", "b", long_path}));
    EXPECT_NE(s, tree_snapshot::from_entries(in));
}

// ---------------------------------------------------------------- diff_snapshots

TEST(snapshot_diff, unchanged_tree_gives_an_empty_delta) {
    temp_dir t;
    make_temp_tree(t / "temp");
    const tree_snapshot a = snap_ok(t / "temp");
    const tree_snapshot b = snap_ok(t / "temp");
    const tree_delta d = diff_snapshots(a, b);
    EXPECT_TRUE(d.empty());
    EXPECT_EQ(d.send_bytes, 0u);
}

TEST(snapshot_diff, everything_is_new_against_an_empty_snapshot) {
    temp_dir t;
    make_temp_tree(t / "temp");
    const tree_snapshot now = snap_ok(t / "temp");
    const tree_delta d = diff_snapshots({}, now);
    std::uint64_t bytes = 0;
    std::size_t files = 0, dirs = 0;
    for (const snapshot_entry e : now) {
        if (e.kind == dir)
            ++dirs;
        else
            ++files;
        bytes += e.size;
    }
    EXPECT_EQ(d.send.size(), files);
    EXPECT_EQ(d.new_dirs.size(), dirs);
    EXPECT_TRUE(d.removed.empty());
    EXPECT_TRUE(d.replaced.empty());
    EXPECT_EQ(d.send_bytes, bytes);
}

TEST(snapshot_diff, detects_each_kind_of_change) {
    temp_dir t;
    const fs::path root = t / "temp";
    make_temp_tree(root);
    write_file(root / "size", "12345");
    write_file(root / "rewrite", "abcde");
    write_file(root / "mode", "m");
    write_file(root / "renamed_over", "same");
    write_file(root / "untouched", "u");
    fs::create_directories(root / "dir_mode");
    for (const char* p : {"size", "rewrite", "mode", "renamed_over", "untouched"})
        set_mtime_ns(root / p, 1'600'000'000'000'000'000);
    const tree_snapshot before = snap_ok(root);

    write_file(root / "new_file", "new!");                      // new
    write_file(root / "size", "123456");                        // size
    write_file(root / "rewrite", "ABCDE");                      // same size, content
    set_mtime_ns(root / "rewrite", 1'600'000'000'000'000'001);  //   with a new mtime
    ::chmod((root / "mode").c_str(), 0600);                     // mode
    write_file(t / "replacement", "same");                      // same size and mtime,
    set_mtime_ns(t / "replacement", 1'600'000'000'000'000'000); //   another inode
    ASSERT_NE(lstat_of(t / "replacement").st_ino, lstat_of(root / "renamed_over").st_ino);
    fs::rename(t / "replacement", root / "renamed_over");
    fs::remove(root / "link"); // symlink retarget
    fs::create_symlink("_github_home/.gitconfig", root / "link");
    fs::remove(root / "step.sh");                      // removed file
    fs::remove_all(root / "gone_dir");                 // removed dir, once
    fs::create_directories(root / "new_empty/deeper"); // new empty dirs
    ::chmod((root / "dir_mode").c_str(), 0700);        // directory mode
    fs::remove(root / "kind/was_file");                // file -> directory
    write_file(root / "kind/was_file/inside", "in");
    fs::remove_all(root / "kind/was_dir"); // directory -> file
    write_file(root / "kind/was_dir", "now a file");
    // Restore the directory mtimes the changes above bumped, so only the intended ones differ.
    for (const snapshot_entry e : before)
        if (e.kind == dir && fs::is_directory(root / e.path) && e.path != "dir_mode" &&
            e.path != "kind")
            set_mtime_ns(root / e.path, e.mtime_ns);
    set_mtime_ns(root / "kind", at(before, "kind").mtime_ns);
    set_mtime_ns(root / "_github_home", at(before, "_github_home").mtime_ns + 1); // dir mtime

    const tree_snapshot now = snap_ok(root);
    ASSERT_EQ(at(now, "untouched"), at(before, "untouched"));
    const tree_delta d = diff_snapshots(before, now);
    EXPECT_EQ(d.send, (strings{"kind/was_dir", "kind/was_file/inside", "link", "mode", "new_file",
                               "renamed_over", "rewrite", "size"}));
    EXPECT_EQ(d.new_dirs, (strings{"_github_home", "dir_mode", "kind/was_file", "new_empty",
                                   "new_empty/deeper"}));
    EXPECT_EQ(d.replaced, (strings{"kind/was_dir", "kind/was_file"}));
    EXPECT_EQ(d.removed, (strings{"gone_dir", "step.sh"}));
    EXPECT_EQ(d.send_bytes, 10u + 2 + 1 + 4 + 4 + 5 + 6); // link is a symlink: no bytes
    EXPECT_FALSE(d.empty());
}

TEST(snapshot_diff, kind_changes_between_all_three_kinds) {
    const snapshot_entry before_in[] = {
        ent("d2f", dir, 0, 1, 0755, 1), ent("d2f/child", file, 1, 1, 0644, 2),
        ent("d2l", dir, 0, 1, 0755, 3), ent("f2d", file, 1, 1, 0644, 4),
        ent("f2l", file, 1, 1, 0644, 5), ent("l2d", link, 0, 1, 0777, 6, "x"),
        ent("l2f", link, 0, 1, 0777, 7, "x")};
    const snapshot_entry now_in[] = {
        ent("d2f", file, 3, 1, 0644, 1),      ent("d2l", link, 0, 1, 0777, 3, "y"),
        ent("f2d", dir, 0, 1, 0755, 4),       ent("f2d/new", file, 2, 1, 0644, 8),
        ent("f2l", link, 0, 1, 0777, 5, "z"), ent("l2d", dir, 0, 1, 0755, 6),
        ent("l2f", file, 4, 1, 0644, 7)};
    const tree_delta d = diff_snapshots(tree_snapshot::from_entries(before_in),
                                        tree_snapshot::from_entries(now_in));
    EXPECT_EQ(d.replaced, (strings{"d2f", "d2l", "f2d", "f2l", "l2d", "l2f"}));
    EXPECT_EQ(d.send, (strings{"d2f", "d2l", "f2d/new", "f2l", "l2f"}));
    EXPECT_EQ(d.new_dirs, (strings{"f2d", "l2d"}));
    EXPECT_TRUE(d.removed.empty()); // d2f/child goes with its replaced directory
    EXPECT_EQ(d.send_bytes, 3u + 2 + 4);
}

TEST(snapshot_diff, a_directory_counts_only_its_mode_and_mtime) {
    const snapshot_entry before_in[] = {ent("m", dir, 0, 1, 0755, 1), ent("t", dir, 0, 1, 0755, 2),
                                        ent("i", dir, 0, 1, 0755, 3)};
    const snapshot_entry now_in[] = {ent("m", dir, 0, 1, 0700, 1), ent("t", dir, 0, 2, 0755, 2),
                                     ent("i", dir, 0, 1, 0755, 99)}; // a new inode alone: same
    const tree_delta d = diff_snapshots(tree_snapshot::from_entries(before_in),
                                        tree_snapshot::from_entries(now_in));
    EXPECT_EQ(d.new_dirs, (strings{"m", "t"}));
    EXPECT_TRUE(d.send.empty());
    EXPECT_TRUE(d.replaced.empty());
}

TEST(snapshot_diff, removed_directory_is_listed_once_even_with_interleaving_siblings) {
    // "a-b" and "a.c" sort between "a" and "a/x": a prefix walk would get this wrong.
    const snapshot_entry before_in[] = {
        ent("a", dir, 0, 1, 0755, 1),   ent("a-b", file, 1, 1, 0644, 2),
        ent("a.c", file, 1, 1, 0644, 3), ent("a/x", file, 1, 1, 0644, 4),
        ent("a/y", dir, 0, 1, 0755, 5), ent("a/y/z", file, 1, 1, 0644, 6)};
    const tree_snapshot before = tree_snapshot::from_entries(before_in);
    tree_snapshot now = before;
    for (const char* p : {"a", "a/x", "a/y", "a/y/z", "a.c"})
        ASSERT_TRUE(now.erase(p));
    const tree_delta d = diff_snapshots(before, now);
    EXPECT_EQ(d.removed, (strings{"a", "a.c"}));
    EXPECT_TRUE(d.send.empty());
    EXPECT_TRUE(d.new_dirs.empty());
}

TEST(snapshot_diff, a_thousand_files_with_three_changed_gives_exactly_three) {
    temp_dir t;
    const fs::path root = t / "temp";
    for (int i = 0; i < 1000; ++i)
        write_file(root / ("d" + std::to_string(i % 10)) / ("f" + std::to_string(i)),
                   std::string(static_cast<std::size_t>(i % 97), 'x'));
    const tree_snapshot before = snap_ok(root);
    ASSERT_EQ(before.size(), 1010u);

    // Change file contents in place; keep each directory's mtime (it does not change for an
    // in-place rewrite anyway, but a new file would bump it).
    write_file(root / "d3/f3", std::string(1234, 'a'));
    write_file(root / "d7/f517", "short");
    write_file(root / "d9/f999", std::string(99, 'z'));
    set_mtime_ns(root / "d3/f3", at(before, "d3/f3").mtime_ns + 1'000'000'000);
    set_mtime_ns(root / "d9/f999", at(before, "d9/f999").mtime_ns + 1'000'000'000);
    set_mtime_ns(root / "d7/f517", at(before, "d7/f517").mtime_ns + 1'000'000'000);

    const tree_delta d = diff_snapshots(before, snap_ok(root));
    EXPECT_EQ(d.send, (strings{"d3/f3", "d7/f517", "d9/f999"}));
    EXPECT_EQ(d.send_bytes, 1234u + 5 + 99);
    EXPECT_TRUE(d.new_dirs.empty());
    EXPECT_TRUE(d.removed.empty());
}

// ---------------------------------------------------------------- saved form

std::uint64_t fnv1a_for_test(std::string_view b) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : b) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

/// Appends a checksum that matches, so a test reaches the structural checks behind it.
std::string reseal(std::string body_without_trailer) {
    std::uint64_t h = fnv1a_for_test(body_without_trailer);
    for (int i = 0; i < 8; ++i) {
        body_without_trailer += static_cast<char>(h & 0xff);
        h >>= 8;
    }
    return body_without_trailer;
}

tree_snapshot weird_snapshot() {
    std::string every_byte;
    for (int c = 1; c < 256; ++c)
        if (c != '/')
            every_byte += static_cast<char>(c);
    const std::string every_path = "a/" + every_byte;
    const std::string every_link = "../../" + every_byte;
    const snapshot_entry in[] = {
        ent("a", dir, 0, -1'000'000'001, 01777, 1),
        ent(every_path, file, ~std::uint64_t{0}, INT64_MIN, 04755, ~std::uint64_t{0}),
        ent(newline_name, file, 0, 0, 0, 0),
        ent(quote_name, link, 0, INT64_MAX, 0777, 7, "target with\nnewline"),
        ent(utf8_name, link, 0, 5, 0777, 8, every_link)};
    return tree_snapshot::from_entries(in);
}

TEST(snapshot_file, round_trips_a_walked_tree_and_weird_values) {
    temp_dir t;
    make_temp_tree(t / "temp");
    podpipe::testing::make_awkward_tree(t / "temp/awkward", 50);
    const tree_snapshot walked = snap_ok(t / "temp");
    const std::string file = (t / "state/deeper/snapshot").string(); // parents created
    ASSERT_TRUE(save_snapshot(file, walked).has_value());
    std::string detail;
    auto back = load_snapshot(file, &detail);
    ASSERT_TRUE(back.has_value()) << detail;
    EXPECT_EQ(*back, walked);
    // Atomic replace leaves nothing beside it.
    ASSERT_TRUE(save_snapshot(file, weird_snapshot()).has_value());
    EXPECT_EQ(std::distance(fs::directory_iterator(t / "state/deeper"), fs::directory_iterator()),
              1);
    back = load_snapshot(file, &detail);
    ASSERT_TRUE(back.has_value()) << detail;
    EXPECT_EQ(*back, weird_snapshot());
    // And an empty snapshot is a valid file too (not the same as a missing file).
    ASSERT_TRUE(save_snapshot(file, {}).has_value());
    back = load_snapshot(file);
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(back->empty());
}

TEST(snapshot_file, save_into_an_unwritable_place_fails_naming_it) {
    temp_dir t;
    write_file(t / "a_file", "x");
    std::string detail;
    auto r = save_snapshot((t / "a_file/snapshot").string(), {}, &detail);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error(), make_error_code(errc::io_failed));
    EXPECT_NE(detail.find("a_file"), std::string::npos) << detail;
}

TEST(snapshot_file, missing_file_is_an_empty_snapshot) {
    temp_dir t;
    std::string detail;
    auto s = load_snapshot((t / "nothing/here").string(), &detail);
    ASSERT_TRUE(s.has_value()) << detail;
    EXPECT_TRUE(s->empty());
}

TEST(snapshot_file, unreadable_file_is_an_error_not_empty) {
    temp_dir t;
    fs::create_directories(t / "is_a_dir");
    std::string detail;
    auto s = load_snapshot((t / "is_a_dir").string(), &detail);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error(), make_error_code(errc::io_failed));
    EXPECT_NE(detail.find("is_a_dir"), std::string::npos) << detail;
}

TEST(snapshot_file, every_truncation_and_every_flipped_byte_is_rejected) {
    const std::string good = serialize_snapshot(weird_snapshot());
    ASSERT_TRUE(parse_snapshot(good).has_value());
    for (std::size_t n = 0; n < good.size(); ++n) {
        auto r = parse_snapshot(std::string_view(good).substr(0, n));
        ASSERT_FALSE(r.has_value()) << "accepted a truncation to " << n << " bytes";
        EXPECT_EQ(r.error(), make_error_code(errc::bad_snapshot));
        EXPECT_EQ(r.error(), condition::bad_input);
    }
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x20);
        ASSERT_FALSE(parse_snapshot(bad).has_value()) << "accepted a flip at byte " << i;
    }
    EXPECT_FALSE(parse_snapshot(good + "x").has_value());
}

TEST(snapshot_file, garbage_and_foreign_files_are_rejected) {
    temp_dir t;
    const fs::path file = t / "snapshot";
    for (const std::string& bytes :
         {std::string(), std::string("hello\n"), std::string(4096, '\0'),
          std::string("podpipe temp manifest v2\n") + std::string(16, '\0'),
          std::string("{\"send\":[]}")}) {
        write_file(file, bytes);
        std::string detail;
        auto r = load_snapshot(file.string(), &detail);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error(), make_error_code(errc::bad_snapshot));
        EXPECT_NE(detail.find(file.string()), std::string::npos) << detail;
    }
}

TEST(snapshot_file, structurally_bad_content_is_rejected_even_with_a_valid_checksum) {
    // Unsafe or non-canonical paths (serialize_snapshot writes whatever it is given).
    for (const std::string& p :
         {std::string(), std::string("/abs"), std::string(".."), std::string("a/../b"),
          std::string("a//b"), std::string("a/"), std::string("./a"), std::string("a\0b", 3)}) {
        const snapshot_entry one[] = {ent(p, file, 1, 1, 0644, 1)};
        std::string detail;
        EXPECT_FALSE(parse_snapshot(serialize_snapshot(tree_snapshot::from_entries(one)), &detail)
                         .has_value())
            << p;
        EXPECT_FALSE(detail.empty()) << p;
    }
    // Field checks.
    const auto rejects = [](const snapshot_entry& e) {
        const snapshot_entry one[] = {e};
        return !parse_snapshot(serialize_snapshot(tree_snapshot::from_entries(one))).has_value();
    };
    EXPECT_TRUE(rejects(ent("x", file, 1, 1, 010000, 1)));    // mode
    EXPECT_TRUE(rejects(ent("x", dir, 5, 1, 0755, 1)));       // size on a directory
    EXPECT_TRUE(rejects(ent("x", link, 0, 1, 0777, 1)));      // symlink, no target
    EXPECT_TRUE(rejects(ent("x", file, 1, 1, 0644, 1, "t"))); // target on a file
    EXPECT_FALSE(rejects(ent("x", file, 1, 1, 0644, 1)));
    // An unknown kind: byte 3 where the kind goes, resealed.
    const snapshot_entry xf[] = {ent("x", file, 1, 1, 0644, 1)};
    std::string unknown = serialize_snapshot(tree_snapshot::from_entries(xf));
    const std::size_t header = std::string_view("podpipe temp manifest v1\n").size() + 8;
    unknown[header] = 3;
    EXPECT_FALSE(parse_snapshot(reseal(unknown.substr(0, unknown.size() - 8))).has_value());
    // Entries out of order: splice "b" before "a" and reseal.
    const snapshot_entry ab[] = {ent("a", file, 1, 1, 0644, 1), ent("b", file, 1, 1, 0644, 1)};
    const std::string ok = serialize_snapshot(tree_snapshot::from_entries(ab));
    const std::size_t entry = (ok.size() - header - 8) / 2;
    const std::string swapped =
        ok.substr(0, header) + ok.substr(header + entry, entry) + ok.substr(header, entry);
    ASSERT_TRUE(parse_snapshot(reseal(ok.substr(0, ok.size() - 8))).has_value());
    EXPECT_FALSE(parse_snapshot(reseal(swapped)).has_value());
    // A count larger than the entries present.
    std::string big = ok.substr(0, ok.size() - 8);
    big[header - 8] = 3;
    EXPECT_FALSE(parse_snapshot(reseal(big)).has_value());
}

TEST(snapshot_file, fuzz_seeds_from_an_independent_encoder_parse_as_written) {
    // fuzz/engine/io/corpus was written by a separate Python encoder of the documented format
    // (when the format was the hook's _temp manifest: the bytes are unchanged).
    const fs::path d = fs::path(PODPIPE_SOURCE_DIR) / "fuzz/engine/io/corpus";
    std::string detail;
    auto typical = parse_snapshot(read_file(d / "typical.manifest"), &detail);
    ASSERT_TRUE(typical.has_value()) << detail;
    EXPECT_EQ(keys_of(*typical),
              (strings{"_github_home", "_github_home/.gitconfig", "_runner_file_commands",
                       "_runner_file_commands/set_output_1", "link", "step.sh"}));
    EXPECT_EQ(at(*typical, "_github_home").mtime_ns, 1'700'000'000'123'456'789);
    EXPECT_EQ(at(*typical, "link"),
              ent("link", link, 0, 5, 0777, 15, "_github_home/.gitconfig"));
    EXPECT_EQ(at(*typical, "step.sh"), ent("step.sh", file, 120, 1'700'000'002'000'000'000,
                                           0755, 16));
    auto odd = parse_snapshot(read_file(d / "odd_names.manifest"), &detail);
    ASSERT_TRUE(odd.has_value()) << detail;
    EXPECT_EQ(at(*odd, newline_name).mtime_ns, -1);
    EXPECT_EQ(at(*odd, "\xC3\xA9t\xC3\xA9/f").size, ~std::uint64_t{0});
    EXPECT_EQ(at(*odd, "\xC3\xA9t\xC3\xA9/f").mtime_ns, INT64_MAX);
    auto empty = parse_snapshot(read_file(d / "empty.manifest"));
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(empty->empty());
    // The .body seeds lack the trailer (the fuzz target appends one).
    EXPECT_FALSE(parse_snapshot(read_file(d / "typical.body")).has_value());
    EXPECT_TRUE(parse_snapshot(reseal(read_file(d / "typical.body"))).has_value());
    EXPECT_FALSE(parse_snapshot(reseal(read_file(d / "bad_order.body"))).has_value());
}

// ---------------------------------------------------------------- remove_tree

TEST(remove_tree, unlinks_names_only) {
    temp_dir t;
    const fs::path stage = t / "stage";
    write_file(t / "kept", "keep me");
    write_file(stage / "locked/file", "x");
    fs::create_hard_link(t / "kept", stage / "locked/linked");
    ::chmod((stage / "locked").c_str(), 0500);
    write_file(stage / "unreadable/file", "x");
    ::chmod((stage / "unreadable").c_str(), 0);
    write_file(t / "outside/precious", "p");
    fs::create_directory_symlink(t / "outside", stage / "to_outside");

    std::string detail;
    EXPECT_TRUE(remove_tree(stage.string(), &detail).has_value()) << detail;
    EXPECT_FALSE(fs::exists(fs::symlink_status(stage)));
    EXPECT_EQ(lstat_of(t / "kept").st_nlink, 1u);
    EXPECT_EQ(read_file(t / "kept"), "keep me");
    EXPECT_EQ(read_file(t / "outside/precious"), "p");
    EXPECT_TRUE(remove_tree(stage.string()).has_value()); // already gone: fine
}

TEST(remove_tree, a_symlink_as_the_path_is_unlinked_not_followed) {
    temp_dir t;
    write_file(t / "outside/precious", "p");
    fs::create_directory_symlink(t / "outside", t / "link");
    EXPECT_TRUE(remove_tree((t / "link").string()).has_value());
    EXPECT_FALSE(fs::exists(fs::symlink_status(t / "link")));
    EXPECT_EQ(read_file(t / "outside/precious"), "p");
    write_file(t / "plain", "x");
    EXPECT_TRUE(remove_tree((t / "plain").string()).has_value());
    EXPECT_FALSE(fs::exists(t / "plain"));
    EXPECT_FALSE(remove_tree("/").has_value());
    EXPECT_FALSE(remove_tree("").has_value());
}

} // namespace
} // namespace podpipe::io
