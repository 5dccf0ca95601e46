#include "hooks/commands/temp_sync.hpp"

#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"
#include "tests/support/tree_fixture.hpp"

#include <algorithm>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>

namespace podpipe::hook {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::diff_trees;
using podpipe::testing::run_shell;
using podpipe::testing::shell_quote;
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

temp_snapshot scan_ok(const fs::path& root, const strings& skip = {}) {
    auto s = scan_tree(root.string(), skip);
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().what());
    return s ? *s : temp_snapshot{};
}

strings keys_of(const temp_snapshot& s) {
    strings k;
    for (const auto& [p, e] : s)
        k.push_back(p);
    return k;
}

/// The runner's _temp as a step sees it, with the awkward names.
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

// ---------------------------------------------------------------- scan_tree

TEST(temp_scan, lists_every_kind_with_lstat_fields_and_odd_names) {
    temp_dir t;
    const fs::path root = t / "temp";
    make_temp_tree(root);
    ASSERT_EQ(::mkfifo((root / "fifo").c_str(), 0600), 0); // skipped: not transferable
    set_mtime_ns(root / "step.sh", 1'700'000'000'123'456'789);

    const temp_snapshot s = scan_ok(root, {"_runner_hook_responses", "./empty/"});
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

    const temp_entry& script = s.at("step.sh");
    const struct stat st = lstat_of(root / "step.sh");
    EXPECT_EQ(script.kind, temp_kind::file);
    EXPECT_EQ(script.size, 8u);
    EXPECT_EQ(script.mode, 0755u);
    EXPECT_EQ(script.inode, st.st_ino);
    EXPECT_EQ(script.mtime_ns, 1'700'000'000'123'456'789);
    EXPECT_TRUE(script.link_target.empty());

    EXPECT_EQ(s.at("link").kind, temp_kind::symlink);
    EXPECT_EQ(s.at("link").link_target, "step.sh");
    EXPECT_EQ(s.at("link").size, 0u);
    EXPECT_EQ(s.at("dangling").link_target, "does/not/exist");
    EXPECT_EQ(s.at("gone_dir").kind, temp_kind::directory);
    EXPECT_EQ(s.at("gone_dir").mode, lstat_of(root / "gone_dir").st_mode & 07777);
    EXPECT_EQ(s.at("dir with spaces/" + newline_name).size, 3u);
}

TEST(temp_scan, does_not_follow_a_symlinked_directory) {
    temp_dir t;
    write_file(t / "outside/secret", "s");
    write_file(t / "temp/a", "a");
    fs::create_directory_symlink(t / "outside", t / "temp/out");
    const temp_snapshot s = scan_ok(t / "temp");
    EXPECT_EQ(keys_of(s), (strings{"a", "out"}));
    EXPECT_EQ(s.at("out").kind, temp_kind::symlink);
}

TEST(temp_scan, missing_root_is_an_error_naming_it) {
    temp_dir t;
    const std::string root = (t / "no_such_temp").string();
    auto s = scan_tree(root, {});
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, make_error_code(errc::temp_sync));
    EXPECT_NE(s.error().what().find(root), std::string::npos) << s.error().what();
    EXPECT_NE(s.error().what().find("No such file or directory"), std::string::npos);
}

// ---------------------------------------------------------------- diff_snapshots

TEST(temp_diff, unchanged_tree_gives_an_empty_delta) {
    temp_dir t;
    make_temp_tree(t / "temp");
    const temp_snapshot a = scan_ok(t / "temp");
    const temp_snapshot b = scan_ok(t / "temp");
    const temp_delta d = diff_snapshots(a, b);
    EXPECT_TRUE(d.empty());
    EXPECT_EQ(d.send_bytes, 0u);
}

TEST(temp_diff, everything_is_new_against_an_empty_manifest) {
    temp_dir t;
    make_temp_tree(t / "temp");
    const temp_snapshot now = scan_ok(t / "temp");
    const temp_delta d = diff_snapshots({}, now);
    std::uint64_t bytes = 0;
    std::size_t files = 0, dirs = 0;
    for (const auto& [p, e] : now) {
        if (e.kind == temp_kind::directory)
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

TEST(temp_diff, detects_each_kind_of_change) {
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
    const temp_snapshot before = scan_ok(root);

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
    for (const auto& [p, e] : before)
        if (e.kind == temp_kind::directory && fs::is_directory(root / p) && p != "dir_mode" &&
            p != "kind")
            set_mtime_ns(root / p, e.mtime_ns);
    set_mtime_ns(root / "kind", before.at("kind").mtime_ns);
    set_mtime_ns(root / "_github_home", before.at("_github_home").mtime_ns + 1); // dir mtime

    const temp_snapshot now = scan_ok(root);
    ASSERT_EQ(now.at("untouched"), before.at("untouched"));
    const temp_delta d = diff_snapshots(before, now);
    EXPECT_EQ(d.send, (strings{"kind/was_dir", "kind/was_file/inside", "link", "mode", "new_file",
                               "renamed_over", "rewrite", "size"}));
    EXPECT_EQ(d.new_dirs, (strings{"_github_home", "dir_mode", "kind/was_file", "new_empty",
                                   "new_empty/deeper"}));
    EXPECT_EQ(d.replaced, (strings{"kind/was_dir", "kind/was_file"}));
    EXPECT_EQ(d.removed, (strings{"gone_dir", "step.sh"}));
    EXPECT_EQ(d.send_bytes, 10u + 2 + 1 + 4 + 4 + 5 + 6); // link is a symlink: no bytes
    EXPECT_FALSE(d.empty());
}

TEST(temp_diff, removed_directory_is_listed_once_even_with_interleaving_siblings) {
    // "a-b" and "a.c" sort between "a" and "a/x": a prefix walk would get this wrong.
    temp_snapshot before;
    before["a"] = {temp_kind::directory, 0, 1, 0755, 1, {}};
    before["a-b"] = {temp_kind::file, 1, 1, 0644, 2, {}};
    before["a.c"] = {temp_kind::file, 1, 1, 0644, 3, {}};
    before["a/x"] = {temp_kind::file, 1, 1, 0644, 4, {}};
    before["a/y"] = {temp_kind::directory, 0, 1, 0755, 5, {}};
    before["a/y/z"] = {temp_kind::file, 1, 1, 0644, 6, {}};
    temp_snapshot now = before;
    now.erase("a");
    now.erase("a/x");
    now.erase("a/y");
    now.erase("a/y/z");
    now.erase("a.c");
    const temp_delta d = diff_snapshots(before, now);
    EXPECT_EQ(d.removed, (strings{"a", "a.c"}));
    EXPECT_TRUE(d.send.empty());
    EXPECT_TRUE(d.new_dirs.empty());
}

TEST(temp_diff, a_thousand_files_with_three_changed_gives_exactly_three) {
    temp_dir t;
    const fs::path root = t / "temp";
    for (int i = 0; i < 1000; ++i)
        write_file(root / ("d" + std::to_string(i % 10)) / ("f" + std::to_string(i)),
                   std::string(static_cast<std::size_t>(i % 97), 'x'));
    const temp_snapshot before = scan_ok(root);
    ASSERT_EQ(before.size(), 1010u);

    // Change file contents in place; keep each directory's mtime (it does not change for an
    // in-place rewrite anyway, but a new file would bump it).
    write_file(root / "d3/f3", std::string(1234, 'a'));
    write_file(root / "d7/f517", "short");
    write_file(root / "d9/f999", std::string(99, 'z'));
    set_mtime_ns(root / "d3/f3", before.at("d3/f3").mtime_ns + 1'000'000'000);
    set_mtime_ns(root / "d9/f999", before.at("d9/f999").mtime_ns + 1'000'000'000);
    set_mtime_ns(root / "d7/f517", before.at("d7/f517").mtime_ns + 1'000'000'000);

    const temp_delta d = diff_snapshots(before, scan_ok(root));
    EXPECT_EQ(d.send, (strings{"d3/f3", "d7/f517", "d9/f999"}));
    EXPECT_EQ(d.send_bytes, 1234u + 5 + 99);
    EXPECT_TRUE(d.new_dirs.empty());
    EXPECT_TRUE(d.removed.empty());
}

// ---------------------------------------------------------------- manifest

std::uint64_t fnv1a_for_test(std::string_view b) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : b) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

/// Replaces the trailer of `bytes` (manifest body + 8) with a checksum that matches, so a test
/// reaches the structural checks behind it.
std::string reseal(std::string body_without_trailer) {
    std::uint64_t h = fnv1a_for_test(body_without_trailer);
    for (int i = 0; i < 8; ++i) {
        body_without_trailer += static_cast<char>(h & 0xff);
        h >>= 8;
    }
    return body_without_trailer;
}

temp_snapshot weird_snapshot() {
    temp_snapshot s;
    std::string every_byte;
    for (int c = 1; c < 256; ++c)
        if (c != '/')
            every_byte += static_cast<char>(c);
    s["a"] = {temp_kind::directory, 0, -1'000'000'001, 01777, 1, {}};
    s["a/" + every_byte] = {temp_kind::file, ~std::uint64_t{0}, INT64_MIN,
                            04755,           ~std::uint64_t{0}, {}};
    s[newline_name] = {temp_kind::file, 0, 0, 0, 0, {}};
    s[quote_name] = {temp_kind::symlink, 0, INT64_MAX, 0777, 7, "target with\nnewline"};
    s[utf8_name] = {temp_kind::symlink, 0, 5, 0777, 8, "../../" + every_byte};
    return s;
}

TEST(temp_manifest, round_trips_a_scanned_tree_and_weird_values) {
    temp_dir t;
    make_temp_tree(t / "temp");
    podpipe::testing::make_awkward_tree(t / "temp/awkward", 50);
    const temp_snapshot scanned = scan_ok(t / "temp");
    const std::string file = (t / "state/deeper/manifest").string(); // parents created
    ASSERT_TRUE(save_manifest(file, scanned).has_value());
    auto back = load_manifest(file);
    ASSERT_TRUE(back.has_value()) << back.error().what();
    EXPECT_EQ(*back, scanned);
    // Atomic replace leaves nothing beside it.
    ASSERT_TRUE(save_manifest(file, weird_snapshot()).has_value());
    EXPECT_EQ(std::distance(fs::directory_iterator(t / "state/deeper"), fs::directory_iterator()),
              1);
    back = load_manifest(file);
    ASSERT_TRUE(back.has_value()) << back.error().what();
    EXPECT_EQ(*back, weird_snapshot());
    // And an empty snapshot is a valid manifest too (not the same as a missing file).
    ASSERT_TRUE(save_manifest(file, {}).has_value());
    back = load_manifest(file);
    ASSERT_TRUE(back.has_value());
    EXPECT_TRUE(back->empty());
}

TEST(temp_manifest, missing_file_is_an_empty_snapshot) {
    temp_dir t;
    auto s = load_manifest((t / "nothing/here").string());
    ASSERT_TRUE(s.has_value()) << s.error().what();
    EXPECT_TRUE(s->empty());
}

TEST(temp_manifest, unreadable_file_is_an_error_not_empty) {
    temp_dir t;
    fs::create_directories(t / "is_a_dir");
    auto s = load_manifest((t / "is_a_dir").string());
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, make_error_code(errc::temp_sync));
    EXPECT_NE(s.error().what().find("is_a_dir"), std::string::npos) << s.error().what();
}

TEST(temp_manifest, every_truncation_and_every_flipped_byte_is_rejected) {
    const std::string good = serialize_manifest(weird_snapshot());
    ASSERT_TRUE(parse_manifest(good).has_value());
    for (std::size_t n = 0; n < good.size(); ++n) {
        auto r = parse_manifest(std::string_view(good).substr(0, n));
        ASSERT_FALSE(r.has_value()) << "accepted a truncation to " << n << " bytes";
        EXPECT_EQ(r.error().code, make_error_code(errc::temp_manifest));
    }
    for (std::size_t i = 0; i < good.size(); ++i) {
        std::string bad = good;
        bad[i] = static_cast<char>(bad[i] ^ 0x20);
        ASSERT_FALSE(parse_manifest(bad).has_value()) << "accepted a flip at byte " << i;
    }
    EXPECT_FALSE(parse_manifest(good + "x").has_value());
}

TEST(temp_manifest, garbage_and_foreign_files_are_rejected) {
    temp_dir t;
    const fs::path file = t / "manifest";
    for (const std::string& bytes :
         {std::string(), std::string("hello\n"), std::string(4096, '\0'),
          std::string("podpipe temp manifest v2\n") + std::string(16, '\0'),
          std::string("{\"send\":[]}")}) {
        write_file(file, bytes);
        auto r = load_manifest(file.string());
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, make_error_code(errc::temp_manifest));
        EXPECT_NE(r.error().what().find(file.string()), std::string::npos) << r.error().what();
    }
}

TEST(temp_manifest, structurally_bad_content_is_rejected_even_with_a_valid_checksum) {
    const temp_entry f{temp_kind::file, 1, 1, 0644, 1, {}};
    // Unsafe or non-canonical paths (serialize_manifest writes whatever it is given).
    for (const std::string& p :
         {std::string(), std::string("/abs"), std::string(".."), std::string("a/../b"),
          std::string("a//b"), std::string("a/"), std::string("./a"), std::string("a\0b", 3)}) {
        temp_snapshot s;
        s[p] = f;
        EXPECT_FALSE(parse_manifest(serialize_manifest(s)).has_value()) << p;
    }
    // Field checks.
    auto rejects = [](temp_entry e) {
        temp_snapshot s;
        s["x"] = std::move(e);
        return !parse_manifest(serialize_manifest(s)).has_value();
    };
    EXPECT_TRUE(rejects({temp_kind::file, 1, 1, 010000, 1, {}}));         // mode
    EXPECT_TRUE(rejects({temp_kind::directory, 5, 1, 0755, 1, {}}));      // size on a directory
    EXPECT_TRUE(rejects({temp_kind::symlink, 0, 1, 0777, 1, {}}));        // symlink, no target
    EXPECT_TRUE(rejects({temp_kind::file, 1, 1, 0644, 1, "target"}));     // target on a file
    EXPECT_TRUE(rejects({static_cast<temp_kind>(3), 0, 1, 0644, 1, {}})); // unknown kind
    // Entries out of order: splice "b" before "a" and reseal.
    temp_snapshot two;
    two["a"] = f;
    two["b"] = f;
    const std::string ok = serialize_manifest(two);
    const std::size_t header = std::string_view("podpipe temp manifest v1\n").size() + 8;
    const std::size_t entry = (ok.size() - header - 8) / 2;
    const std::string swapped =
        ok.substr(0, header) + ok.substr(header + entry, entry) + ok.substr(header, entry);
    ASSERT_TRUE(parse_manifest(reseal(ok.substr(0, ok.size() - 8))).has_value());
    EXPECT_FALSE(parse_manifest(reseal(swapped)).has_value());
    // A count larger than the entries present.
    std::string big = ok.substr(0, ok.size() - 8);
    big[header - 8] = 3;
    EXPECT_FALSE(parse_manifest(reseal(big)).has_value());
}

TEST(temp_manifest, fuzz_seeds_from_an_independent_encoder_parse_as_written) {
    // fuzz/.../corpus was written by a separate Python encoder of the documented format.
    const fs::path dir = fs::path(PODPIPE_SOURCE_DIR) / "fuzz/engine/io/corpus";
    auto typical = parse_manifest(read_file(dir / "typical.manifest"));
    ASSERT_TRUE(typical.has_value()) << typical.error().what();
    EXPECT_EQ(keys_of(*typical),
              (strings{"_github_home", "_github_home/.gitconfig", "_runner_file_commands",
                       "_runner_file_commands/set_output_1", "link", "step.sh"}));
    EXPECT_EQ(typical->at("_github_home").mtime_ns, 1'700'000'000'123'456'789);
    EXPECT_EQ(typical->at("link"),
              (temp_entry{temp_kind::symlink, 0, 5, 0777, 15, "_github_home/.gitconfig"}));
    EXPECT_EQ(typical->at("step.sh"),
              (temp_entry{temp_kind::file, 120, 1'700'000'002'000'000'000, 0755, 16, {}}));
    auto odd = parse_manifest(read_file(dir / "odd_names.manifest"));
    ASSERT_TRUE(odd.has_value()) << odd.error().what();
    EXPECT_EQ(odd->at(newline_name).mtime_ns, -1);
    EXPECT_EQ(odd->at("\xC3\xA9t\xC3\xA9/f").size, ~std::uint64_t{0});
    EXPECT_EQ(odd->at("\xC3\xA9t\xC3\xA9/f").mtime_ns, INT64_MAX);
    auto empty = parse_manifest(read_file(dir / "empty.manifest"));
    ASSERT_TRUE(empty.has_value());
    EXPECT_TRUE(empty->empty());
    // The .body seeds lack the trailer (the fuzz target appends one).
    EXPECT_FALSE(parse_manifest(read_file(dir / "typical.body")).has_value());
    EXPECT_TRUE(parse_manifest(reseal(read_file(dir / "typical.body"))).has_value());
    EXPECT_FALSE(parse_manifest(reseal(read_file(dir / "bad_order.body"))).has_value());
}

// ---------------------------------------------------------------- stage_delta

/// The expected stage built by GNU tar, independently of stage_delta: the root, each listed
/// path and its ancestors, nothing else.
void build_expected(const fs::path& root, const temp_delta& d, const fs::path& out) {
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

// The delta as the engine sends it: the selection delta.send + delta.new_dirs, not descending.
result<pipeline::transfer_stats, pipeline::transfer_error>
send_delta(const fs::path& root, const temp_delta& d, const strings& deletions,
           const fs::path& stream) {
    pipeline::send_options opt;
    strings only = d.send;
    only.insert(only.end(), d.new_dirs.begin(), d.new_dirs.end());
    opt.only = only;
    opt.only_descend = false;
    opt.deletions = deletions;
    const int fd = ::open(stream.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    pipeline::fd_sink sink(fd);
    auto r = pipeline::send_tree(root.string(), sink, opt);
    ::close(fd);
    return r;
}

result<pipeline::transfer_stats, pipeline::transfer_error> recv_delta(const fs::path& stream,
                                                                      const fs::path& dir) {
    const int fd = ::open(stream.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    pipeline::fd_source source(fd);
    pipeline::recv_options opt;
    opt.require_manifest = true;
    auto r = pipeline::recv_tree(source, dir.string(), opt);
    ::close(fd);
    return r;
}

TEST(temp_send, the_selection_is_exactly_the_delta_with_directory_attributes) {
    temp_dir t;
    const fs::path root = t / "temp";
    make_temp_tree(root);
    const temp_snapshot before = scan_ok(root);
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

    const temp_delta d = diff_snapshots(before, scan_ok(root));
    auto sent = send_delta(root, d, {}, t / "delta.tgz");
    ASSERT_TRUE(sent) << sent.error().what();
    EXPECT_EQ(sent->files + sent->symlinks, d.send.size());
    EXPECT_EQ(sent->content_bytes, d.send_bytes);
    const fs::path got = t / "got";
    auto r = recv_delta(t / "delta.tgz", got);
    ASSERT_TRUE(r) << r.error().what();

    build_expected(root, d, t / "expected");
    EXPECT_EQ(diff_trees(got, t / "expected"), strings{});
    expect_dirs_match_root(got, root);
    // Not in the delta, not sent.
    EXPECT_FALSE(fs::exists(got / "step.sh"));
    EXPECT_FALSE(fs::exists(got / "_github_home"));
}

TEST(temp_stage, remove_stage_unlinks_names_only) {
    temp_dir t;
    const fs::path stage = t / "stage";
    write_file(t / "kept", "keep me");
    write_file(stage / "locked/file", "x");
    fs::create_hard_link(t / "kept", stage / "locked/linked");
    ::chmod((stage / "locked").c_str(), 0500);
    write_file(t / "outside/precious", "p");
    fs::create_directory_symlink(t / "outside", stage / "to_outside");

    EXPECT_EQ(remove_stage(stage.string()), "");
    EXPECT_FALSE(fs::exists(fs::symlink_status(stage)));
    EXPECT_EQ(lstat_of(t / "kept").st_nlink, 1u);
    EXPECT_EQ(read_file(t / "kept"), "keep me");
    EXPECT_EQ(read_file(t / "outside/precious"), "p");
    EXPECT_EQ(remove_stage(stage.string()), ""); // already gone: fine
}

// ---------------------------------------------------------------- removal_script

TEST(temp_removal, script_deletes_exactly_the_listed_paths_with_sh) {
    temp_dir t;
    const fs::path pod = t / "pod temp";
    write_file(t / "escape_target", "must survive");
    write_file(t / "abs_target", "must survive too");
    write_file(pod / "sp ace", "1");
    write_file(pod / newline_name, "2");
    write_file(pod / quote_name, "3");
    write_file(pod / "dir with/child", "4");
    write_file(pod / "dir with/sub/grandchild", "5");
    write_file(pod / utf8_name, "6");
    write_file(pod / "keep", "7");
    write_file(pod / "dir2/keep", "8");
    write_file(pod / "b", "9");
    const std::string script =
        removal_script(pod.string(), {"sp ace", newline_name, quote_name, "dir with", utf8_name,
                                      "../escape_target", (t / "abs_target").string(), "a/../b", "",
                                      "./b", "dir2/", "dir2//keep", "not_there"});
    EXPECT_EQ(script.find("escape_target"), std::string::npos);
    EXPECT_EQ(script.find("abs_target"), std::string::npos);
    write_file(t / "rm.sh", script);
    ASSERT_EQ(run_shell("cd " + shell_quote(t.path().string()) + " && sh rm.sh"), 0) << script;
    std::set<std::string> left;
    for (auto it = fs::recursive_directory_iterator(pod); it != fs::end(it); ++it)
        left.insert(fs::relative(it->path(), pod).string());
    EXPECT_EQ(left, (std::set<std::string>{"keep", "dir2", "dir2/keep", "b"}));
    EXPECT_EQ(read_file(t / "escape_target"), "must survive");
    EXPECT_EQ(read_file(t / "abs_target"), "must survive too");
    EXPECT_FALSE(fs::exists(t / "pwned"));
}

TEST(temp_removal, long_lists_span_several_lines_under_64k) {
    temp_dir t;
    const fs::path pod = t / "pod";
    strings paths;
    for (int i = 0; i < 3000; ++i) {
        paths.push_back("d/" + std::string(60, 'p') + std::to_string(i));
        write_file(pod / paths.back(), "");
    }
    write_file(pod / "d/keep", "");
    const std::string script = removal_script(pod.string(), paths);
    std::size_t lines = 0;
    std::istringstream in(script);
    for (std::string line; std::getline(in, line); ++lines) {
        EXPECT_LE(line.size(), 64u * 1024);
        EXPECT_TRUE(line.starts_with("rm -rf -- '"));
    }
    EXPECT_GE(lines, 3u);
    write_file(t / "rm.sh", script);
    ASSERT_EQ(run_shell("sh " + shell_quote((t / "rm.sh").string())), 0);
    EXPECT_EQ(std::distance(fs::directory_iterator(pod / "d"), fs::directory_iterator()), 1);
    EXPECT_EQ(removal_script(pod.string(), {}), "");
    EXPECT_EQ(removal_script("", {"x"}), "");
}

// ---------------------------------------------------------------- end to end

/// The receivers a job pod may have: podpipe (the deletions in the stream), or a pod's tar
/// that ignores them (removal_script through sh first, as apply_temp_sync does).
enum class pod_receiver { podpipe, gnu_tar, busybox_tar };

/// The whole step as run_script_step does it: the pod's copy of the OLD tree receives the
/// deletions and the selection, and must equal the NEW tree.
void sync_round(const fs::path& runner, const fs::path& pod, const fs::path& work,
                const temp_snapshot& pod_has, temp_snapshot& now, pod_receiver rx) {
    now = scan_ok(runner);
    const temp_delta d = diff_snapshots(pod_has, now);
    strings gone = d.replaced;
    gone.insert(gone.end(), d.removed.begin(), d.removed.end());
    auto sent = send_delta(runner, d, gone, work / "delta.tgz");
    ASSERT_TRUE(sent) << sent.error().what();
    if (rx == pod_receiver::podpipe) {
        auto got = recv_delta(work / "delta.tgz", pod);
        ASSERT_TRUE(got) << got.error().what();
        EXPECT_EQ(got->deletions, gone.size());
        return;
    }
    write_file(work / "pre.sh", removal_script(pod.string(), gone));
    ASSERT_EQ(run_shell("sh < " + shell_quote((work / "pre.sh").string())), 0);
    const std::string tar = rx == pod_receiver::gnu_tar ? "tar" : "busybox tar";
    std::string out;
    ASSERT_EQ(podpipe::testing::run_shell_capture("cd " + shell_quote(pod.string()) + " && " +
                                                      tar + " -xpzf " +
                                                      shell_quote((work / "delta.tgz").string()),
                                                  out),
              0)
        << out;
}

void mutate(const fs::path& root) {
    write_file(root / "brand/new/file", "new");
    fs::create_directories(root / "brand/empty");
    write_file(root / "hello.txt", "hello, changed world\n");
    write_file(root / "src/d3/f3.cpp", "rewritten");
    ::chmod((root / "modes/exec").c_str(), 0700);
    fs::remove(root / "link_to_hello");
    fs::create_symlink("empty_file", root / "link_to_hello");
    fs::remove_all(root / "src/d5");
    fs::remove(root / "empty_file");
    fs::remove_all(root / "nested/empty");
    write_file(root / "nested/empty", "was a directory");
    fs::remove(root / "spaces and 'quotes'.txt");
    write_file(root / ("spaces and 'quotes'.txt/" + newline_name), "was a file");
    write_file(root / "tmp.swap", "replacement");
    fs::rename(root / "tmp.swap", root / "hard/second"); // splits the hardlink group
    ::chmod((root / "modes/sticky").c_str(), 0755);
    write_file(root / utf8_name / quote_name, "odd");
    // Directories whose only change is their mtime (nothing inside them is sent): a removed
    // child, or a touch. Old values, so a seconds-resolution comparison sees them.
    ASSERT_TRUE(fs::remove(root / "unicode/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E"));
    set_mtime_ns(root / "unicode", 1'000'000'000'000'000'000);
    set_mtime_ns(root / "long", 1'100'000'000'000'000'000);
}

TEST(temp_sync_e2e, the_delta_over_the_old_copy_gives_the_new_tree) {
    for (const pod_receiver rx :
         {pod_receiver::podpipe, pod_receiver::gnu_tar, pod_receiver::busybox_tar}) {
        if (rx == pod_receiver::busybox_tar && run_shell("busybox tar --help >/dev/null 2>&1") != 0)
            continue;
        SCOPED_TRACE(rx == pod_receiver::podpipe ? "podpipe receiver"
                     : rx == pod_receiver::gnu_tar ? "GNU tar receiver"
                                                   : "busybox tar receiver");
        // busybox restores file mtimes but not directory mtimes.
        const bool mtimes = rx != pod_receiver::busybox_tar;
        temp_dir t;
        const fs::path runner = t / "runner_temp";
        const fs::path pod = t / "pod_temp";
        podpipe::testing::make_awkward_tree(runner, 300);
        make_temp_tree(runner / "job");
        const temp_snapshot pod_has = scan_ok(runner);
        fs::create_directories(pod);
        ASSERT_EQ(run_shell("tar -C " + shell_quote(runner.string()) + " -cf - . | tar -C " +
                            shell_quote(pod.string()) + " -xpf -"),
                  0);
        ASSERT_EQ(diff_trees(runner, pod), strings{});

        mutate(runner);
        temp_snapshot now;
        sync_round(runner, pod, t.path(), pod_has, now, rx);
        EXPECT_EQ(diff_trees(runner, pod, mtimes), strings{});

        // A second step: the manifest round trip carries what the pod has.
        const std::string manifest = (t / "state/manifest").string();
        ASSERT_TRUE(save_manifest(manifest, now).has_value());
        auto loaded = load_manifest(manifest);
        ASSERT_TRUE(loaded.has_value());
        // Nothing changed on the runner since (sending reads, it does not touch): nothing to do.
        EXPECT_TRUE(diff_snapshots(*loaded, scan_ok(runner)).empty());
        write_file(runner / "job/_runner_file_commands/set_env_2", "A=1\n");
        fs::remove(runner / "job/step.sh");
        temp_snapshot again;
        sync_round(runner, pod, t.path(), *loaded, again, rx);
        EXPECT_EQ(diff_trees(runner, pod, mtimes), strings{});
    }
}

} // namespace
} // namespace podpipe::hook
