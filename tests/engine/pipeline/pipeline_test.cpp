#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"

#include "engine/common/error.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/tar/error.hpp"
#include "engine/tar/writer.hpp"
#include "tests/support/tree_fixture.hpp"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <filesystem>
#include <thread>
#include <fstream>

#include <gtest/gtest.h>

namespace fs = std::filesystem;

namespace podpipe::pipeline {
namespace {

using testing::diff_trees;
using testing::run_shell;
using testing::shell_quote;
using testing::temp_dir;

std::string q(const fs::path& p) { return shell_quote(p.string()); }

// Packs `root` into a file; returns the stats.
transfer_stats pack_to(const fs::path& root, const fs::path& out, send_options opt = {}) {
    const int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    EXPECT_GE(fd, 0);
    fd_sink sink(fd);
    auto r = send_tree(root.string(), sink, opt);
    ::close(fd);
    EXPECT_TRUE(r) << r.error().what();
    return r ? *r : transfer_stats{};
}

result<transfer_stats, transfer_error> unpack_from(const fs::path& in, const fs::path& dir, recv_options opt = {}) {
    const int fd = ::open(in.c_str(), O_RDONLY);
    EXPECT_GE(fd, 0);
    fd_source source(fd);
    auto r = recv_tree(source, dir.string(), opt);
    ::close(fd);
    return r;
}

std::string read_all(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

void write_all(const fs::path& p, const std::string& s) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << s;
}

class pipeline_roundtrip : public ::testing::Test {
protected:
    void SetUp() override { testing::make_awkward_tree(src_, 300); }
    temp_dir tmp_;
    fs::path src_ = tmp_ / "src";
};

TEST_F(pipeline_roundtrip, podpipe_to_podpipe_is_identical_and_verified) {
    send_options sopt;
    sopt.chunk_bytes = 64 * 1024; // many members
    const auto sent = pack_to(src_, tmp_ / "s.tgz", sopt);
    EXPECT_GT(sent.chunks, 10u);
    EXPECT_GT(sent.files, 300u);
    recv_options ropt;
    ropt.require_manifest = true;
    auto got = unpack_from(tmp_ / "s.tgz", tmp_ / "dst", ropt);
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_TRUE(got->manifest_checked);
    EXPECT_EQ(got->manifest, sent.manifest);
    EXPECT_EQ(got->content_bytes, sent.content_bytes);
    EXPECT_EQ(diff_trees(src_, tmp_ / "dst"), std::vector<std::string>{});
}

TEST_F(pipeline_roundtrip, root_mode_and_mtime_travel_like_tar_dot) {
    // `tar -C src .` carries the root as "./"; so does podpipe, and both receivers apply it.
    ASSERT_EQ(::chmod(src_.c_str(), 0751), 0);
    const timespec when[2] = {{1600000000, 0}, {1600000000, 0}};
    ASSERT_EQ(::utimensat(AT_FDCWD, src_.c_str(), when, 0), 0);
    pack_to(src_, tmp_ / "s.tgz");
    auto got = unpack_from(tmp_ / "s.tgz", tmp_ / "dst");
    ASSERT_TRUE(got) << got.error().what();
    struct stat st {};
    ASSERT_EQ(::stat((tmp_ / "dst").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0751u);
    EXPECT_EQ(st.st_mtim.tv_sec, 1600000000);
    fs::create_directories(tmp_ / "gnu");
    ASSERT_EQ(run_shell("tar xzf " + q(tmp_ / "s.tgz") + " -C " + q(tmp_ / "gnu")), 0);
    ASSERT_EQ(::stat((tmp_ / "gnu").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0751u);
    // And the root is not counted as an entry of the tree.
    const auto sent = pack_to(src_, tmp_ / "again.tgz");
    EXPECT_EQ(sent.entries, got->entries);
}

TEST_F(pipeline_roundtrip, unprivileged_receiver_into_a_target_it_does_not_own) {
    // A pod running as an arbitrary uid writes into a volume whose root belongs to root: the
    // root's mode cannot be applied, and that must not fail the transfer.
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to switch to an unprivileged uid";
    pack_to(src_, tmp_ / "s.tgz");
    const fs::path target = tmp_ / "shared";
    fs::create_directories(target);
    ASSERT_EQ(::chmod(target.c_str(), 01777), 0);
    ASSERT_EQ(::chmod(tmp_.path().c_str(), 0755), 0);
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::setgid(65534) != 0 || ::setuid(65534) != 0)
            ::_exit(10);
        const int fd = ::open((tmp_ / "s.tgz").c_str(), O_RDONLY);
        fd_source source(fd);
        auto r = recv_tree(source, target.string(), {});
        ::_exit(r ? 0 : 11);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
    struct stat st {};
    ASSERT_EQ(::stat(target.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 01777u); // left as it was
    EXPECT_EQ(diff_trees(src_, target, /*mtimes=*/false), std::vector<std::string>{});
}

TEST_F(pipeline_roundtrip, every_level_and_one_thread) {
    for (int level : {0, 6, 12}) {
        send_options sopt;
        sopt.level = level;
        sopt.threads = 1;
        const auto f = tmp_ / ("l" + std::to_string(level) + ".tgz");
        pack_to(src_, f, sopt);
        const auto dst = tmp_ / ("d" + std::to_string(level));
        auto got = unpack_from(f, dst);
        ASSERT_TRUE(got) << level << ": " << got.error().message();
        EXPECT_EQ(diff_trees(src_, dst), std::vector<std::string>{}) << "level " << level;
    }
}

TEST_F(pipeline_roundtrip, gnu_tar_and_gzip_read_our_stream_silently) {
    pack_to(src_, tmp_ / "s.tgz");
    EXPECT_EQ(run_shell("gzip -t " + q(tmp_ / "s.tgz")), 0);
    fs::create_directories(tmp_ / "gnu");
    std::string out;
    EXPECT_EQ(testing::run_shell_capture("tar --warning=no-timestamp -xzf " + q(tmp_ / "s.tgz") + " -C " + q(tmp_ / "gnu"),
                                         out),
              0);
    EXPECT_EQ(out, "") << "GNU tar printed something";
    EXPECT_EQ(diff_trees(src_, tmp_ / "gnu"), std::vector<std::string>{});
}

TEST_F(pipeline_roundtrip, busybox_tar_reads_our_stream) {
    if (run_shell("busybox tar --help >/dev/null 2>&1") == 127)
        GTEST_SKIP() << "busybox not installed";
    pack_to(src_, tmp_ / "s.tgz");
    fs::create_directories(tmp_ / "bb");
    std::string out;
    EXPECT_EQ(testing::run_shell_capture("cd " + q(tmp_ / "bb") + " && busybox tar -xzf " +
                                             q(tmp_ / "s.tgz"),
                                         out),
              0)
        << out;
    // busybox restores file mtimes but not directory mtimes, and its hardlink handling is
    // by name: compare content, types and modes.
    EXPECT_EQ(diff_trees(src_, tmp_ / "bb", /*compare_mtimes=*/false),
              std::vector<std::string>{});
}

TEST_F(pipeline_roundtrip, reads_gnu_tar_czf_output) {
    ASSERT_EQ(run_shell("tar -C " + q(src_) + " -czf " + q(tmp_ / "gnu.tgz") + " ."), 0);
    auto got = unpack_from(tmp_ / "gnu.tgz", tmp_ / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_FALSE(got->manifest_checked);
    EXPECT_EQ(diff_trees(src_, tmp_ / "dst"), std::vector<std::string>{});
}

TEST_F(pipeline_roundtrip, reads_posix_format_and_plain_tar) {
    ASSERT_EQ(run_shell("tar --format=posix -C " + q(src_) + " -cf " + q(tmp_ / "p.tar") + " ."),
              0);
    auto got = unpack_from(tmp_ / "p.tar", tmp_ / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(diff_trees(src_, tmp_ / "dst"), std::vector<std::string>{});
}

TEST_F(pipeline_roundtrip, reads_busybox_tar_czf_output) {
    if (run_shell("busybox tar --help >/dev/null 2>&1") == 127)
        GTEST_SKIP() << "busybox not installed";
    ASSERT_EQ(run_shell("cd " + q(src_) + " && busybox tar -czf " + q(tmp_ / "bb.tgz") + " ."), 0);
    auto got = unpack_from(tmp_ / "bb.tgz", tmp_ / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(diff_trees(src_, tmp_ / "dst", false), std::vector<std::string>{});
}

TEST_F(pipeline_roundtrip, reads_pigz_multithreaded_output) {
    if (run_shell("command -v pigz >/dev/null") != 0)
        GTEST_SKIP() << "pigz not installed";
    ASSERT_EQ(run_shell("tar -C " + q(src_) + " -cf - . | pigz -p 2 -1 > " + q(tmp_ / "p.tgz")), 0);
    auto got = unpack_from(tmp_ / "p.tgz", tmp_ / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_EQ(diff_trees(src_, tmp_ / "dst"), std::vector<std::string>{});
}

TEST(pipeline, excludes_follow_tar_rules) {
    temp_dir tmp;
    testing::write_file(tmp / "src/keep.txt", "k");
    testing::write_file(tmp / "src/node_modules/x/index.js", "x");
    testing::write_file(tmp / "src/a/b.log", "l");
    send_options opt;
    opt.excludes = {"node_modules", "*.log"};
    pack_to(tmp / "src", tmp / "s.tgz", opt);
    ASSERT_TRUE(unpack_from(tmp / "s.tgz", tmp / "dst"));
    EXPECT_TRUE(fs::exists(tmp / "dst/keep.txt"));
    EXPECT_FALSE(fs::exists(tmp / "dst/node_modules"));
    EXPECT_FALSE(fs::exists(tmp / "dst/a/b.log"));
    EXPECT_TRUE(fs::exists(tmp / "dst/a"));
}

TEST(pipeline, truncated_stream_is_an_error_at_every_cut) {
    temp_dir tmp;
    testing::make_awkward_tree(tmp / "src", 50);
    send_options opt;
    opt.chunk_bytes = 64 * 1024;
    pack_to(tmp / "src", tmp / "s.tgz", opt);
    const std::string full = read_all(tmp / "s.tgz");
    for (std::size_t cut : {std::size_t{1}, std::size_t{15}, std::size_t{30}, full.size() / 3,
                            full.size() / 2, full.size() - 30, full.size() - 1}) {
        write_all(tmp / "cut.tgz", full.substr(0, cut));
        fs::remove_all(tmp / "dst");
        auto got = unpack_from(tmp / "cut.tgz", tmp / "dst");
        EXPECT_FALSE(got) << "cut at " << cut << " of " << full.size() << " was accepted";
        if (!got) {
            EXPECT_EQ(got.error(), condition::bad_input) << got.error().message();
        }
    }
}

// Where each gzip member of a podpipe stream ends: its length is in the FEXTRA subfield, the
// 4 bytes at offset 16 of the member (little-endian).
std::vector<std::size_t> member_ends(const std::string& stream) {
    std::vector<std::size_t> ends;
    for (std::size_t pos = 0; pos + 20 <= stream.size();) {
        std::uint32_t len = 0;
        for (int i = 3; i >= 0; --i)
            len = len << 8 | static_cast<unsigned char>(stream[pos + 16 + i]);
        if (len == 0 || pos + len > stream.size())
            break;
        pos += len;
        ends.push_back(pos);
    }
    return ends;
}

// The reproducer: many 100-byte files, so 64 KiB chunks end on tar header boundaries
// and a cut between members is also a cut between entries.
TEST(pipeline, podpipe_stream_cut_between_members_is_truncated) {
    temp_dir tmp;
    for (int i = 0; i < 600; ++i)
        testing::write_file(tmp / "src/d" / ("f" + std::to_string(10000 + i)),
                            std::string(99, static_cast<char>('a' + i % 26)) + "\n");
    send_options opt;
    opt.chunk_bytes = 64 * 1024;
    pack_to(tmp / "src", tmp / "s.tgz", opt);
    const std::string full = read_all(tmp / "s.tgz");
    const auto ends = member_ends(full);
    ASSERT_GT(ends.size(), 5u);
    ASSERT_EQ(ends.back(), full.size()) << "the last member is the end member";
    const std::string end_member = full.substr(ends[ends.size() - 2]);

    const auto expect_truncated = [&](const std::string& stream, const std::string& what) {
        write_all(tmp / "cut.tgz", stream);
        fs::remove_all(tmp / "dst");
        auto got = unpack_from(tmp / "cut.tgz", tmp / "dst");
        ASSERT_FALSE(got) << what << " was accepted";
        EXPECT_EQ(got.error(), errc::truncated) << what << ": " << got.error().message();
        EXPECT_EQ(exit_status_for(got.error()), exit_bad_input) << what;
        EXPECT_FALSE(got.error().detail.empty()) << what;
    };
    // Every cut at a member boundary, including the one right before the end member.
    for (std::size_t i = 0; i + 1 < ends.size(); ++i)
        expect_truncated(full.substr(0, ends[i]), "a cut after member " + std::to_string(i));
    expect_truncated(end_member, "a stream of only the end member");
    // An end member in the middle: what follows it is never read, so the archive is cut.
    for (std::size_t i : {std::size_t{0}, ends.size() / 2, ends.size() - 3})
        expect_truncated(full.substr(0, ends[i]) + end_member + full.substr(ends[i]),
                         "an end member after member " + std::to_string(i));

    write_all(tmp / "whole.tgz", full);
    fs::remove_all(tmp / "dst");
    auto got = unpack_from(tmp / "whole.tgz", tmp / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_TRUE(got->manifest_checked);
    EXPECT_EQ(diff_trees(tmp / "src", tmp / "dst"), std::vector<std::string>{});
}

// Foreign streams keep tar's rules: a gzip'd tar that simply stops on an entry boundary
// (no zero blocks) is accepted, as GNU tar accepts it.
TEST(pipeline, foreign_tar_without_end_marker_keeps_tar_semantics) {
    temp_dir tmp;
    testing::write_file(tmp / "src/a", std::string(1000, 'a'));
    testing::write_file(tmp / "src/b", std::string(100, 'b'));
    ASSERT_EQ(run_shell("tar -C " + q(tmp / "src") + " -cf " + q(tmp / "t.tar") + " ./a ./b"), 0);
    std::string tar = read_all(tmp / "t.tar");
    // ./a: header + 2 content blocks; ./b: header + 1 block. Drop the zero blocks.
    write_all(tmp / "t.tar", tar.substr(0, 5 * 512));
    ASSERT_EQ(run_shell("gzip -kc " + q(tmp / "t.tar") + " > " + q(tmp / "t.tgz")), 0);
    for (const char* name : {"t.tar", "t.tgz"}) {
        fs::remove_all(tmp / "dst");
        auto got = unpack_from(tmp / name, tmp / "dst");
        ASSERT_TRUE(got) << name << ": " << got.error().what();
        EXPECT_EQ(read_all(tmp / "dst/b"), std::string(100, 'b')) << name;
    }
}

// A plain tar of the given entries (files' content is their size in 'x' bytes).
std::string tar_of(const std::vector<tar::entry>& entries) {
    std::vector<std::byte> out;
    for (const auto& e : entries) {
        EXPECT_TRUE(tar::append_header(e, out)) << e.path;
        out.resize(out.size() + e.size, std::byte{'x'});
        out.resize(out.size() + tar::padding_for(e.size));
    }
    out.resize(out.size() + 1024);
    return {reinterpret_cast<const char*>(out.data()), out.size()};
}

tar::entry tar_entry(std::string path, tar::entry_type type, std::uint64_t size = 0,
                     std::string link = {}) {
    tar::entry e;
    e.path = std::move(path);
    e.type = type;
    e.mode = type == tar::entry_type::directory ? 0755 : 0644;
    e.size = size;
    e.link_target = std::move(link);
    return e;
}

// The writer's own cause reaches the user: the system's reason and the entry it was about,
// not the parser's "stopped by the receiver" at whichever entry it was parsing.
TEST(pipeline, a_write_failure_says_its_cause) {
    temp_dir tmp;
    using tar::entry_type;
    struct failing {
        const char* name;
        std::vector<tar::entry> entries;
        std::string expected;
    } cases[] = {
        {"hardlink to a directory",
         {tar_entry("d", entry_type::directory), tar_entry("h", entry_type::hardlink, 0, "d")},
         "hardlink to 'd' as 'h' failed: " + std::string(std::strerror(EPERM))},
        {"name too long",
         {tar_entry("ok", entry_type::regular, 10),
          tar_entry(std::string(300, 'n'), entry_type::regular, 10)},
         std::string(std::strerror(ENAMETOOLONG))},
    };
    for (const auto& c : cases) {
        write_all(tmp / "t.tar", tar_of(c.entries));
        fs::remove_all(tmp / "dst");
        auto got = unpack_from(tmp / "t.tar", tmp / "dst");
        ASSERT_FALSE(got) << c.name;
        EXPECT_EQ(exit_status_for(got.error()), exit_failure) << c.name;
        const std::string& detail = got.error().detail;
        EXPECT_NE(detail.find(c.expected), std::string::npos) << c.name << ": " << detail;
        EXPECT_EQ(detail.find("stopped by the receiver"), std::string::npos)
            << c.name << ": " << detail;
    }
}

// A full disk: the error names ENOSPC and a file that really failed, and no file is left
// behind that looks complete but is not (those are removed, and the message says so).
TEST(pipeline, a_full_disk_says_so_and_leaves_no_partial_file) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to mount a small tmpfs";
    temp_dir tmp;
    const fs::path small = tmp / "small";
    fs::create_directories(small);
    if (::mount("tmpfs", small.c_str(), "tmpfs", 0, "size=1m") != 0)
        GTEST_SKIP() << "cannot mount a tmpfs: " << std::strerror(errno);
    struct unmount {
        fs::path p;
        ~unmount() { ::umount2(p.c_str(), MNT_DETACH); }
    } guard{small};
    for (int i = 0; i < 40; ++i)
        testing::write_file(tmp / "src" / ("r" + std::to_string(i)),
                            std::string(100 * 1024, static_cast<char>('a' + i % 26)));
    send_options sopt;
    sopt.chunk_bytes = 64 * 1024;
    pack_to(tmp / "src", tmp / "s.tgz", sopt);
    auto got = unpack_from(tmp / "s.tgz", small / "dst");
    ASSERT_FALSE(got);
    EXPECT_EQ(exit_status_for(got.error()), exit_failure);
    const std::string detail = got.error().detail;
    EXPECT_NE(detail.find(std::strerror(ENOSPC)), std::string::npos) << detail;
    EXPECT_EQ(detail.find("stopped by the receiver"), std::string::npos) << detail;
    // Every file left in the target is whole; the one the detail names is gone.
    std::size_t whole = 0;
    for (const auto& e : fs::directory_iterator(small / "dst")) {
        EXPECT_EQ(read_all(e.path()), read_all(tmp / "src" / e.path().filename()))
            << e.path() << " was left partly written; " << detail;
        ++whole;
    }
    EXPECT_LT(whole, 40u);
    EXPECT_NE(detail.find("left unfinished"), std::string::npos) << detail;
    const auto named = detail.find("write '");
    ASSERT_NE(named, std::string::npos) << detail;
    const auto end = detail.find('\'', named + 7);
    const std::string failed_entry = detail.substr(named + 7, end - named - 7);
    EXPECT_TRUE(fs::exists(tmp / "src" / failed_entry)) << detail;
    EXPECT_FALSE(fs::exists(small / "dst" / failed_entry)) << detail;
}

// GNU sparse members are a stream podpipe cannot extract: exit 4 (bad input), as any other
// stream it refuses, not 1 (an I/O error worth retrying).
TEST(pipeline, gnu_sparse_archive_is_bad_input) {
    temp_dir tmp;
    fs::create_directories(tmp / "src");
    ASSERT_EQ(run_shell("cd " + q(tmp / "src") + " && truncate -s 8M holes && printf x >> holes && "
                        "tar -cSzf " + q(tmp / "sparse.tgz") + " holes"),
              0);
    auto got = unpack_from(tmp / "sparse.tgz", tmp / "dst");
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), tar::errc::unsupported) << got.error().message();
    EXPECT_EQ(exit_status_for(got.error()), exit_bad_input);
}

// A mismatch says which part of the manifest differs.
TEST(pipeline, manifest_mismatch_says_what_differs) {
    temp_dir tmp;
    testing::write_file(tmp / "src/a", "hello");
    pack_to(tmp / "src", tmp / "s.tgz", send_options{});
    // Rewrite the stream with one byte of content changed but the manifest kept.
    fs::create_directories(tmp / "x");
    ASSERT_EQ(run_shell("gzip -dc " + q(tmp / "s.tgz") + " | sed 's/hello/hellO/' > " +
                        q(tmp / "x.tar")),
              0);
    auto got = unpack_from(tmp / "x.tar", tmp / "dst");
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), errc::manifest_mismatch);
    EXPECT_NE(got.error().detail.find("the digests differ (same 2 entries"), std::string::npos)
        << got.error().detail;
}

TEST(pipeline, corrupt_member_is_an_error) {
    temp_dir tmp;
    testing::make_awkward_tree(tmp / "src", 50);
    pack_to(tmp / "src", tmp / "s.tgz");
    std::string bytes = read_all(tmp / "s.tgz");
    bytes[bytes.size() / 2] = static_cast<char>(bytes[bytes.size() / 2] ^ 0x55);
    write_all(tmp / "bad.tgz", bytes);
    auto got = unpack_from(tmp / "bad.tgz", tmp / "dst");
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), condition::bad_input) << got.error().message();
}

TEST(pipeline, empty_input_is_an_error) {
    temp_dir tmp;
    write_all(tmp / "empty", "");
    auto got = unpack_from(tmp / "empty", tmp / "dst");
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), condition::bad_input);
}

TEST(pipeline, require_manifest_rejects_foreign_streams) {
    temp_dir tmp;
    testing::write_file(tmp / "src/a", "a");
    ASSERT_EQ(run_shell("tar -C " + q(tmp / "src") + " -czf " + q(tmp / "g.tgz") + " ."), 0);
    recv_options opt;
    opt.require_manifest = true;
    auto got = unpack_from(tmp / "g.tgz", tmp / "dst", opt);
    ASSERT_FALSE(got);
    EXPECT_EQ(got.error(), errc::manifest_missing);
}

TEST(pipeline, hostile_entries_are_refused_and_nothing_escapes) {
    temp_dir tmp;
    // GNU tar writes what we ask with -P (absolute names) and --transform (dot-dot).
    testing::write_file(tmp / "build/payload", "owned\n");
    fs::create_directories(tmp / "victim");
    const std::string outside = (tmp / "victim/escaped").string();
    struct hostile {
        const char* name;
        std::string make;
    } cases[] = {
        {"dotdot", "tar -C " + q(tmp / "build") + " --transform='s,^,../victim/,' -czf " +
                       q(tmp / "h.tgz") + " payload"},
        {"absolute", "tar -C " + q(tmp / "build") + " -P --transform='s,^," +
                         (tmp / "victim").string() + "/,' -czf " + q(tmp / "h.tgz") + " payload"},
    };
    for (const auto& c : cases) {
        ASSERT_EQ(run_shell(c.make), 0) << c.name;
        fs::remove_all(tmp / "dst");
        auto got = unpack_from(tmp / "h.tgz", tmp / "dst");
        ASSERT_FALSE(got) << c.name << " was accepted";
        EXPECT_EQ(got.error(), condition::unsafe_path) << c.name << ": " << got.error().message();
        EXPECT_FALSE(got.error().detail.empty());
        EXPECT_TRUE(fs::is_empty(tmp / "victim")) << c.name;
        EXPECT_FALSE(fs::exists(tmp / "victim/payload")) << c.name;
    }
    (void)outside;
}

TEST(pipeline, symlink_escape_is_refused) {
    temp_dir tmp;
    fs::create_directories(tmp / "victim");
    // An archive holding `evil -> <victim>` and then `evil/payload`.
    fs::create_directories(tmp / "a");
    fs::create_directory_symlink(tmp / "victim", tmp / "a/evil");
    fs::create_directories(tmp / "b/evil");
    testing::write_file(tmp / "b/evil/payload", "owned\n");
    ASSERT_EQ(run_shell("tar -cf " + q(tmp / "h.tar") + " -C " + q(tmp / "a") + " evil -C " +
                        q(tmp / "b") + " evil/payload"),
              0);
    auto got = unpack_from(tmp / "h.tar", tmp / "dst");
    ASSERT_FALSE(got) << "write through an escaping symlink was accepted";
    EXPECT_EQ(got.error(), condition::unsafe_path) << got.error().message();
    EXPECT_TRUE(fs::is_empty(tmp / "victim"));
}

TEST(pipeline, real_tree_nobody_here_wrote) {
    // Debian's installed headers: thousands of files we did not write.
    const fs::path real = "/usr/include/linux";
    if (!fs::is_directory(real))
        GTEST_SKIP() << real << " missing";
    temp_dir tmp;
    const auto sent = pack_to(real, tmp / "s.tgz");
    EXPECT_GT(sent.files, 500u);
    auto got = unpack_from(tmp / "s.tgz", tmp / "dst");
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_TRUE(got->manifest_checked);
    EXPECT_EQ(diff_trees(real, tmp / "dst"), std::vector<std::string>{});
}

TEST(pipeline, bad_options_are_rejected_before_starting) {
    send_options opt;
    opt.level = 13;
    EXPECT_FALSE(check_send_options(opt));
    opt.level = 1;
    opt.chunk_bytes = 1000;
    EXPECT_FALSE(check_send_options(opt));
    opt.chunk_bytes = 8 << 20;
    opt.memory_bytes = 32 << 20;
    opt.threads = 8;
    EXPECT_FALSE(check_send_options(opt));
}

// Serves `data` and then, instead of EOF, an error: models a channel that never reports the
// end (an exec stdin on v4.channel.k8s.io, where the sender cannot half-close).
class no_eof_source final : public byte_source {
public:
    explicit no_eof_source(std::string data) : data_(std::move(data)) {}
    result<std::size_t> read(std::span<std::byte> into) override {
        if (pos_ == data_.size()) {
            read_past_end_ = true;
            return fail(std::make_error_code(std::errc::timed_out));
        }
        const std::size_t n = std::min(into.size(), std::min<std::size_t>(data_.size() - pos_, 7000));
        std::memcpy(into.data(), data_.data() + pos_, n);
        pos_ += n;
        return n;
    }
    bool read_past_end_ = false;

private:
    std::string data_;
    std::size_t pos_ = 0;
};

TEST(pipeline, podpipe_stream_ends_at_its_end_member_without_eof) {
    temp_dir tmp;
    testing::make_awkward_tree(tmp / "src", 50);
    send_options opt;
    opt.chunk_bytes = 64 * 1024;
    const auto sent = pack_to(tmp / "src", tmp / "s.tgz", opt);
    no_eof_source source(read_all(tmp / "s.tgz"));
    recv_options ropt;
    ropt.require_manifest = true;
    auto got = recv_tree(source, (tmp / "dst").string(), ropt);
    ASSERT_TRUE(got) << got.error().what();
    EXPECT_FALSE(source.read_past_end_);
    EXPECT_EQ(got->manifest, sent.manifest);
    EXPECT_EQ(diff_trees(tmp / "src", tmp / "dst"), std::vector<std::string>{});

    // Without the end member (a stream cut right before it) the receiver keeps reading and
    // reports the channel's error rather than claiming success.
    const std::string full = read_all(tmp / "s.tgz");
    std::size_t last = full.rfind("\x1f\x8b\x08", std::string::npos);
    ASSERT_NE(last, std::string::npos);
    no_eof_source cut(full.substr(0, last));
    fs::remove_all(tmp / "dst2");
    auto got2 = recv_tree(cut, (tmp / "dst2").string(), ropt);
    EXPECT_FALSE(got2);
    EXPECT_TRUE(cut.read_past_end_);
}

// Compressible but not trivially so: text-like lines, at least `bytes` of them.
std::string text_lines(std::size_t bytes) {
    std::string text;
    for (long long i = 0; text.size() < bytes; ++i)
        text += "line " + std::to_string(i * 7919 % 100003) + " of some source file\n";
    return text;
}

// The stream unpacks (manifest required) to a tree whose a.txt is `text`.
void expect_stream_unpacks_to(const fs::path& tmp, const std::string& stream, const std::string& text) {
    write_all(tmp / "s.tgz", stream);
    recv_options ropt;
    ropt.require_manifest = true;
    auto got = unpack_from(tmp / "s.tgz", tmp / "dst", ropt);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(read_all(tmp / "dst/a.txt"), text);
}

// Content that does not compress (a packfile) is stored once a chunk saved nothing: the
// stream is still one verified gzip stream that GNU tar reads, about the size of the tar.
TEST(pipeline, incompressible_chunks_are_stored_and_the_stream_stays_standard) {
    temp_dir tmp;
    std::string noise(12u << 20, '\0');
    std::uint64_t x = 88172645463325252ULL;
    for (auto& c : noise) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c = static_cast<char>(x >> 56);
    }
    testing::write_file(tmp / "src/.git/objects/pack/pack-1.pack", noise);
    const std::string text = text_lines(1u << 20);
    testing::write_file(tmp / "src/README", text);
    send_options opt;
    opt.level = 6;
    opt.threads = 2;
    const auto sent = pack_to(tmp / "src", tmp / "s.tgz", opt);
    // Each worker compresses its first incompressible chunk; of 12 the others are stored.
    EXPECT_GE(sent.chunks_stored, 8u);
    EXPECT_LT(sent.chunks_stored, sent.chunks);
    EXPECT_LT(sent.wire_bytes, sent.tar_bytes); // the text still compressed
    recv_options ropt;
    ropt.require_manifest = true;
    auto got = unpack_from(tmp / "s.tgz", tmp / "dst", ropt);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_TRUE(got->manifest_checked);
    EXPECT_EQ(diff_trees(tmp / "src", tmp / "dst"), std::vector<std::string>{});
    fs::create_directories(tmp / "gnu");
    EXPECT_EQ(run_shell("tar -xzf " + q(tmp / "s.tgz") + " -C " + q(tmp / "gnu")), 0);
    EXPECT_EQ(diff_trees(tmp / "src", tmp / "gnu"), std::vector<std::string>{});
}

// send_options for the auto-level tests: small chunks, so a few MB make many windows.
send_options auto_options() {
    send_options opt;
    opt.level = auto_level;
    opt.chunk_bytes = 64 * 1024;
    return opt;
}

// A sink much slower than compression: the link sets the pace.
class slow_sink final : public byte_sink {
public:
    result<void> write(std::span<const std::byte> bytes) override {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return {};
    }
    std::string data;
};

TEST(pipeline, auto_level_climbs_while_the_sink_is_the_bottleneck) {
    temp_dir tmp;
    const std::string text = text_lines(4u << 20);
    testing::write_file(tmp / "src/a.txt", text);
    send_options opt = auto_options();
    slow_sink sink;
    auto sent = send_tree((tmp / "src").string(), sink, opt);
    ASSERT_TRUE(sent) << sent.error().what();
    std::uint64_t above_one = 0, total = 0;
    for (std::size_t l = 0; l < sent->chunks_per_level.size(); ++l) {
        total += sent->chunks_per_level[l];
        if (l > 1)
            above_one += sent->chunks_per_level[l];
    }
    EXPECT_EQ(total, sent->chunks);
    EXPECT_EQ(sent->chunks_per_level[0] + sent->chunks_per_level[1] + above_one, total);
    EXPECT_GT(above_one, 0u) << "the level never rose although the sink was the bottleneck";
    // Mixed levels are still one valid stream.
    expect_stream_unpacks_to(tmp.path(), sink.data, text);
}

// Far below the climb threshold the level goes straight to the top of the ladder instead of
// spending windows on the rungs between (each one sent tens of MB too large on a slow link).
TEST(pipeline, auto_level_jumps_to_the_top_on_a_far_slower_sink) {
    temp_dir tmp;
    testing::write_file(tmp / "src/a.txt", text_lines(4u << 20));
    send_options opt = auto_options();
    opt.threads = 2;
    slow_sink sink; // 50 ms per chunk: well under 1 MB/s against the default 12.5 MB/s
    auto sent = send_tree((tmp / "src").string(), sink, opt);
    ASSERT_TRUE(sent) << sent.error().what();
    constexpr int top = auto_level_ladder[std::size(auto_level_ladder) - 1];
    EXPECT_GT(sent->chunks_per_level[top], 0u);
    for (int rung : auto_level_ladder) {
        if (rung != auto_level_ladder[0] && rung != top) {
            EXPECT_EQ(sent->chunks_per_level[static_cast<std::size_t>(rung)], 0u)
                << "auto stopped at level " << rung << " on its way to " << top;
        }
    }
}

// A slow link behind a deep buffer (socket buffers and proxies along an exec path): writes go
// into the buffer at once until it holds `buffer_bytes`; a drain thread empties it at `rate`
// bytes/s and, as the receiver would, acknowledges what it drained when asked to.
class buffered_link_sink final : public byte_sink {
public:
    buffered_link_sink(std::size_t buffer_bytes, double rate, ack_counter* acks)
        : buffer_bytes_(buffer_bytes), rate_(rate), acks_(acks) {
        drain_ = std::jthread([this](std::stop_token stop) { drain(stop); });
    }
    ~buffered_link_sink() override {
        drain_.request_stop();
        cv_.notify_all();
    }
    result<void> write(std::span<const std::byte> bytes) override {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return buffered_ + bytes.size() <= buffer_bytes_ || buffered_ == 0; });
        buffered_ += bytes.size();
        data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        cv_.notify_all();
        return {};
    }
    std::string data;

private:
    void drain(std::stop_token stop) {
        constexpr std::size_t step = 16 << 10;
        std::uint64_t drained = 0;
        while (!stop.stop_requested()) {
            {
                std::unique_lock lock(mutex_);
                cv_.wait_for(lock, std::chrono::milliseconds(5), [&] { return buffered_ > 0 || stop.stop_requested(); });
                if (buffered_ == 0)
                    continue;
            }
            std::size_t n = 0;
            {
                std::lock_guard lock(mutex_);
                n = std::min(step, buffered_);
            }
            std::this_thread::sleep_for(std::chrono::duration<double>(static_cast<double>(n) / rate_));
            {
                std::lock_guard lock(mutex_);
                buffered_ -= n;
            }
            drained += n;
            if (acks_ != nullptr)
                acks_->advance_to(drained);
            cv_.notify_all();
        }
    }

    std::size_t buffer_bytes_;
    double rate_;
    ack_counter* acks_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::size_t buffered_ = 0;
    std::jthread drain_;
};

// Incompressible enough that a few MB of input make MBs on the wire (hex of a hash chain).
std::string hex_lines(std::size_t bytes) {
    std::string text;
    std::uint64_t x = 88172645463325252ULL;
    char buf[40];
    while (text.size() < bytes) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::snprintf(buf, sizeof buf, "%016llx %08llx\n", static_cast<unsigned long long>(x),
                      static_cast<unsigned long long>(x % 1000));
        text += buf;
    }
    return text;
}

// Behind a deep buffer, a slow link only shows once the buffer is full: without
// acknowledgements most of a stream that fits in it goes at the start level. With them, the
// probe finds the link's rate within the first window and the rest goes at the top of the
// ladder (queued chunks recompressed); the stream stays one valid stream.
TEST(pipeline, acknowledgements_find_a_slow_link_behind_a_deep_buffer) {
    temp_dir tmp;
    const std::string text = hex_lines(12u << 20);
    testing::write_file(tmp / "src/a.txt", text);
    constexpr int top = auto_level_ladder[std::size(auto_level_ladder) - 1];
    send_options opt = auto_options();
    opt.threads = 2;
    opt.chunk_bytes = 256 << 10;

    buffered_link_sink blind(16 << 20, 4e6, nullptr);
    auto without = send_tree((tmp / "src").string(), blind, opt);
    ASSERT_TRUE(without) << without.error().what();
    EXPECT_EQ(without->probed_rate, 0.0);

    ack_counter acks;
    buffered_link_sink acked(16 << 20, 4e6, &acks);
    opt.acks = &acks;
    auto with = send_tree((tmp / "src").string(), acked, opt);
    ASSERT_TRUE(with) << with.error().what();
    EXPECT_GT(with->probed_rate, 0.0);
    EXPECT_LT(with->probed_rate, opt.auto_climb_below);
    EXPECT_GT(with->chunks_per_level[top], with->chunks / 2) << "the probe did not take the level to the top";
    EXPECT_GT(with->chunks_per_level[top], without->chunks_per_level[top] + with->chunks / 4);
    EXPECT_LT(with->wire_bytes, without->wire_bytes);

    expect_stream_unpacks_to(tmp.path(), acked.data, text);
}

// A receiver that was asked for acknowledgements but sends none (a broken side channel) costs
// at most a second of waiting; the stream is complete.
TEST(pipeline, missing_acknowledgements_do_not_hold_the_stream) {
    temp_dir tmp;
    const std::string text = hex_lines(4u << 20);
    testing::write_file(tmp / "src/a.txt", text);
    send_options opt = auto_options();
    ack_counter silent;
    opt.acks = &silent;
    buffered_link_sink sink(64 << 20, 1e9, nullptr);
    auto sent = send_tree((tmp / "src").string(), sink, opt);
    ASSERT_TRUE(sent) << sent.error().what();
    expect_stream_unpacks_to(tmp.path(), sink.data, text);
}

// A sink that is the bottleneck but drains fast (an exec proxy or a receiver sharing the
// sender's cores on a fast link): the level stays at 1, raising it would only cost CPU.
class busy_fast_sink final : public byte_sink {
public:
    result<void> write(std::span<const std::byte> bytes) override {
        // 4 MB/s, far above the test's climb threshold even if sleeps overshoot several-fold.
        std::this_thread::sleep_for(std::chrono::microseconds(bytes.size() / 4));
        data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return {};
    }
    std::string data;
};

TEST(pipeline, auto_level_stays_at_one_while_a_busy_sink_drains_fast) {
    temp_dir tmp;
    testing::write_file(tmp / "src/a.txt", text_lines(8u << 20));
    send_options opt = auto_options();
    opt.auto_climb_below = 0.5e6;
    busy_fast_sink sink;
    auto sent = send_tree((tmp / "src").string(), sink, opt);
    ASSERT_TRUE(sent) << sent.error().what();
    EXPECT_EQ(sent->chunks_per_level[1], sent->chunks) << "auto left level 1 on a fast-draining sink";
}

TEST(pipeline, fixed_level_is_used_for_every_chunk) {
    temp_dir tmp;
    testing::make_awkward_tree(tmp / "src", 50);
    send_options opt;
    opt.level = 4;
    opt.chunk_bytes = 64 * 1024;
    const auto sent = pack_to(tmp / "src", tmp / "s.tgz", opt);
    EXPECT_EQ(sent.chunks_per_level[4], sent.chunks);
}

} // namespace
} // namespace podpipe::pipeline
