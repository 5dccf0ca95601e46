#include "hooks/commands/temp_sync.hpp"

#include "engine/io/snapshot.hpp"
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

io::tree_snapshot scan_ok(const fs::path& root) {
    auto s = scan_temp(root.string());
    EXPECT_TRUE(s.has_value()) << (s ? "" : s.error().what());
    return s ? std::move(*s) : io::tree_snapshot{};
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

// The engine's snapshot, diff and saved form are tested in tests/engine/io/snapshot_test.cpp;
// here is what the hook adds: the runner's files left out, its error kinds, the removal
// script for a pod without podpipe, and the whole step against real receivers.

// ---------------------------------------------------------------- scan_temp

TEST(temp_scan, is_the_engines_snapshot_without_the_runners_files) {
    temp_dir t;
    const fs::path root = t / "temp";
    make_temp_tree(root);
    const io::tree_snapshot s = scan_ok(root);
    EXPECT_FALSE(s.find("_runner_hook_responses"));
    EXPECT_FALSE(s.find("_runner_hook_responses/response.json"));
    ASSERT_TRUE(s.find("_runner_file_commands/set_output_1"));
    ASSERT_TRUE(s.find("empty"));
    auto all = io::snapshot_tree(root.string());
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(s.size() + 2, all->size());
    ASSERT_TRUE(all->erase("_runner_hook_responses/response.json"));
    ASSERT_TRUE(all->erase("_runner_hook_responses"));
    EXPECT_EQ(s, *all);
}

TEST(temp_scan, missing_root_is_an_error_naming_it) {
    temp_dir t;
    const std::string root = (t / "no_such_temp").string();
    auto s = scan_temp(root);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().code, make_error_code(errc::temp_sync));
    EXPECT_NE(s.error().what().find(root), std::string::npos) << s.error().what();
    EXPECT_NE(s.error().what().find("No such file or directory"), std::string::npos);
}

// ---------------------------------------------------------------- the record

TEST(temp_record, round_trips_and_a_missing_one_is_empty) {
    temp_dir t;
    make_temp_tree(t / "temp");
    const io::tree_snapshot now = scan_ok(t / "temp");
    const std::string file = (t / "state/pod/temp.manifest").string();
    auto none = load_temp_record(file);
    ASSERT_TRUE(none.has_value()) << none.error().what();
    EXPECT_TRUE(none->empty());
    ASSERT_TRUE(save_temp_record(file, now).has_value());
    auto back = load_temp_record(file);
    ASSERT_TRUE(back.has_value()) << back.error().what();
    EXPECT_EQ(*back, now);
}

TEST(temp_record, unusable_is_temp_manifest_unreadable_is_temp_sync_both_naming_the_file) {
    temp_dir t;
    const fs::path file = t / "manifest";
    for (const std::string& bytes :
         {std::string(), std::string("hello\n"),
          std::string("podpipe temp manifest v2\n") + std::string(16, '\0')}) {
        write_file(file, bytes);
        auto r = load_temp_record(file.string());
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().code, make_error_code(errc::temp_manifest));
        EXPECT_NE(r.error().what().find(file.string()), std::string::npos) << r.error().what();
    }
    fs::create_directories(t / "is_a_dir");
    auto r = load_temp_record((t / "is_a_dir").string());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().code, make_error_code(errc::temp_sync));
    EXPECT_NE(r.error().what().find("is_a_dir"), std::string::npos) << r.error().what();
    auto w = save_temp_record((t / "manifest/below_a_file").string(), {});
    ASSERT_FALSE(w.has_value());
    EXPECT_EQ(w.error().code, make_error_code(errc::temp_sync));
    EXPECT_NE(w.error().what().find("manifest"), std::string::npos) << w.error().what();
}

// ---------------------------------------------------------------- sending

// The delta as the engine sends it: the selection delta.send + delta.new_dirs, not descending.
result<pipeline::transfer_stats, pipeline::transfer_error>
send_delta(const fs::path& root, const io::tree_delta& d, const strings& deletions,
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
                const io::tree_snapshot& pod_has, io::tree_snapshot& now, pod_receiver rx) {
    now = scan_ok(runner);
    const io::tree_delta d = io::diff_snapshots(pod_has, now);
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
        const io::tree_snapshot pod_has = scan_ok(runner);
        fs::create_directories(pod);
        ASSERT_EQ(run_shell("tar -C " + shell_quote(runner.string()) + " -cf - . | tar -C " +
                            shell_quote(pod.string()) + " -xpf -"),
                  0);
        ASSERT_EQ(diff_trees(runner, pod), strings{});

        mutate(runner);
        io::tree_snapshot now;
        sync_round(runner, pod, t.path(), pod_has, now, rx);
        EXPECT_EQ(diff_trees(runner, pod, mtimes), strings{});

        // A second step: the manifest round trip carries what the pod has.
        const std::string manifest = (t / "state/manifest").string();
        ASSERT_TRUE(save_temp_record(manifest, now).has_value());
        auto loaded = load_temp_record(manifest);
        ASSERT_TRUE(loaded.has_value());
        // Nothing changed on the runner since (sending reads, it does not touch): nothing to do.
        EXPECT_TRUE(io::diff_snapshots(*loaded, scan_ok(runner)).empty());
        write_file(runner / "job/_runner_file_commands/set_env_2", "A=1\n");
        fs::remove(runner / "job/step.sh");
        io::tree_snapshot again;
        sync_round(runner, pod, t.path(), *loaded, again, rx);
        EXPECT_EQ(diff_trees(runner, pod, mtimes), strings{});
    }
}

} // namespace
} // namespace podpipe::hook
