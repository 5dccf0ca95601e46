#include "engine/io/tree_writer.hpp"

#include "engine/io/error.hpp"
#include "tests/engine/io/test_util.hpp"
#include "tests/engine/io/writer_util.hpp"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>

#include <gtest/gtest.h>

namespace podpipe::io {
namespace {

using test::dir_entry;
using test::file_entry_of;
using test::listing;
using test::make_dir;
using test::put_file;
using test::write_file;

file_entry link_entry(std::string p, std::string target, file_kind k) {
    file_entry e;
    e.path = std::move(p);
    e.kind = k;
    e.mode = 0777;
    e.link_target = std::move(target);
    e.mtime_sec = 1234567890;
    return e;
}

class writer_test : public test::writer_fixture {
protected:
    void expect_outside_untouched() {
        writer_fixture::expect_outside_untouched();
        EXPECT_EQ(listing(dir.path()), (std::vector<std::string>{".", "..", "outside", "target"}));
    }
};

TEST_P(writer_test, creates_files_dirs_links_with_metadata) {
    auto w = open_writer(opts());
    ASSERT_TRUE(w->begin_entry(dir_entry("d", 0555, 1111)));
    ASSERT_TRUE(w->end_entry());
    ASSERT_TRUE(put_file(*w, file_entry_of("d/f", 11, 0751), "hello world"));
    ASSERT_TRUE(put_file(*w, file_entry_of("d/empty", 0, 04755), ""));
    ASSERT_TRUE(w->begin_entry(link_entry("d/sl", "f", file_kind::symlink)));
    ASSERT_TRUE(w->begin_entry(link_entry("d/hl", "d/f", file_kind::hardlink)));
    ASSERT_TRUE(put_file(*w, file_entry_of("implicit/parent/x", 1), "x")); // parents created
    auto st = w->finish();
    ASSERT_TRUE(st) << w->last_error_detail();
    EXPECT_EQ(st->files, 3u);
    EXPECT_EQ(st->directories, 1u);
    EXPECT_EQ(st->symlinks, 1u);
    EXPECT_EQ(st->hardlinks, 1u);
    EXPECT_EQ(st->content_bytes, 12u);
    EXPECT_EQ(st->used_io_uring, GetParam());

    struct stat s {};
    ASSERT_EQ(::lstat((target + "/d/f").c_str(), &s), 0);
    EXPECT_EQ(s.st_mode & 07777, 0751u);
    EXPECT_EQ(s.st_mtim.tv_sec, 1500000000);
    EXPECT_EQ(s.st_mtim.tv_nsec, 123456789);
    EXPECT_EQ(s.st_nlink, 2u);
    const ino_t ino = s.st_ino;
    EXPECT_EQ(test::read_file(target + "/d/f"), "hello world");
    ASSERT_EQ(::lstat((target + "/d/hl").c_str(), &s), 0);
    EXPECT_EQ(s.st_ino, ino);
    ASSERT_EQ(::lstat((target + "/d/empty").c_str(), &s), 0);
    EXPECT_EQ(s.st_mode & 07777, 04755u);
    EXPECT_EQ(s.st_size, 0);
    ASSERT_EQ(::lstat((target + "/d/sl").c_str(), &s), 0);
    EXPECT_TRUE(S_ISLNK(s.st_mode));
    EXPECT_EQ(s.st_mtim.tv_sec, 1234567890);
    char buf[16] = {};
    ASSERT_EQ(::readlink((target + "/d/sl").c_str(), buf, sizeof buf), 1);
    EXPECT_STREQ(buf, "f");
    ASSERT_EQ(::lstat((target + "/d").c_str(), &s), 0); // applied after its contents
    EXPECT_EQ(s.st_mode & 07777, 0555u);
    EXPECT_EQ(s.st_mtim.tv_sec, 1111);
    EXPECT_EQ(test::read_file(target + "/implicit/parent/x"), "x");
}

TEST_P(writer_test, replaces_existing_entries_without_following_symlinks) {
    make_dir(target);
    write_file(target + "/file", "old contents that are longer");
    ASSERT_EQ(::symlink((outside + "/passwd").c_str(), (target + "/trap").c_str()), 0);
    make_dir(target + "/emptydir");
    ASSERT_EQ(::symlink(outside.c_str(), (target + "/dirtrap").c_str()), 0);
    auto w = open_writer(opts());
    ASSERT_TRUE(put_file(*w, file_entry_of("file", 3), "new"));
    ASSERT_TRUE(put_file(*w, file_entry_of("trap", 5), "safe!"));
    ASSERT_TRUE(put_file(*w, file_entry_of("emptydir", 1), "f"));
    ASSERT_TRUE(w->begin_entry(dir_entry("dirtrap"))); // symlink replaced by a real directory
    ASSERT_TRUE(put_file(*w, file_entry_of("dirtrap/passwd", 4), "mine"));
    ASSERT_TRUE(w->finish()) << w->last_error_detail();
    EXPECT_EQ(test::read_file(target + "/file"), "new");
    EXPECT_EQ(test::read_file(target + "/trap"), "safe!");
    struct stat s {};
    ASSERT_EQ(::lstat((target + "/trap").c_str(), &s), 0);
    EXPECT_TRUE(S_ISREG(s.st_mode));
    EXPECT_EQ(test::read_file(target + "/emptydir"), "f");
    ASSERT_EQ(::lstat((target + "/dirtrap").c_str(), &s), 0);
    EXPECT_TRUE(S_ISDIR(s.st_mode));
    EXPECT_EQ(test::read_file(target + "/dirtrap/passwd"), "mine");
    expect_outside_untouched();
}

struct hostile_case {
    const char* name;
    std::vector<file_entry> entries; // the last one must be refused
};

TEST_P(writer_test, hostile_entries_are_refused) {
    const std::string out_rel = "../outside";
    std::vector<hostile_case> cases = {
        {"absolute", {file_entry_of(outside + "/passwd", 0)}},
        {"dotdot", {file_entry_of("../outside/passwd", 0)}},
        {"inner_dotdot", {dir_entry("a"), file_entry_of("a/../../outside/x", 0)}},
        {"empty", {file_entry_of("", 0)}},
        {"nul", {file_entry_of(std::string("a\0b", 3), 0)}},
        {"through_abs_symlink",
         {link_entry("evil", outside, file_kind::symlink), file_entry_of("evil/passwd", 0)}},
        {"through_rel_symlink",
         {link_entry("evil", "../outside", file_kind::symlink), file_entry_of("evil/passwd", 0)}},
        {"through_dotdot_symlink",
         {dir_entry("d"), link_entry("d/up", "../..", file_kind::symlink),
          file_entry_of("d/up/outside/x", 0)}},
        {"dir_through_symlink",
         {link_entry("evil", outside, file_kind::symlink), dir_entry("evil/sub")}},
        {"symlink_through_symlink",
         {link_entry("evil", outside, file_kind::symlink),
          link_entry("evil/l", "x", file_kind::symlink)}},
        {"hardlink_out", {link_entry("hl", "../outside/passwd", file_kind::hardlink)}},
        {"hardlink_abs", {link_entry("hl", outside + "/passwd", file_kind::hardlink)}},
        {"hardlink_through_symlink",
         {link_entry("evil", outside, file_kind::symlink),
          link_entry("hl", "evil/passwd", file_kind::hardlink)}},
    };
    for (auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto w = open_writer(opts());
        for (std::size_t i = 0; i + 1 < c.entries.size(); ++i)
            ASSERT_TRUE(w->begin_entry(c.entries[i])) << w->last_error_detail();
        auto r = w->begin_entry(c.entries.back());
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), errc::unsafe_path) << r.error().message();
        EXPECT_EQ(r.error(), condition::unsafe_path);
        EXPECT_NE(w->last_error_detail().find("refusing entry"), std::string::npos)
            << w->last_error_detail();
        EXPECT_FALSE(w->finish()); // sticky
        w.reset();
        expect_outside_untouched();
        test::temp_dir scratch; // reset the target between cases
        ASSERT_EQ(::rename(target.c_str(), (scratch / "old").c_str()), 0);
    }
    auto w = open_writer(opts());
    ASSERT_TRUE(w->begin_entry(file_entry_of("../x", 0)).error() == errc::unsafe_path);
    EXPECT_EQ(w->last_error_detail(), "refusing entry '../x': path escapes the target directory");
}

TEST_P(writer_test, symlink_entry_may_point_anywhere) {
    auto w = open_writer(opts());
    ASSERT_TRUE(w->begin_entry(link_entry("abs", "/etc/passwd", file_kind::symlink)));
    ASSERT_TRUE(w->begin_entry(link_entry("rel", "../../x", file_kind::symlink)));
    ASSERT_TRUE(w->finish());
    char buf[64] = {};
    ASSERT_GT(::readlink((target + "/rel").c_str(), buf, sizeof buf), 0);
    EXPECT_STREQ(buf, "../../x");
    expect_outside_untouched();
}

TEST_P(writer_test, file_larger_than_window_streams) {
    write_options o = opts();
    o.window_bytes = 64 * 1024;
    o.queue_depth = 4;
    auto w = open_writer(o);
    const std::string big = test::pattern(3 << 20, 17);
    ASSERT_TRUE(put_file(*w, file_entry_of("big", big.size()), big, 100000));
    for (int i = 0; i < 100; ++i)
        ASSERT_TRUE(put_file(*w, file_entry_of("s" + std::to_string(i), 5000),
                             test::pattern(5000, i), 3000));
    ASSERT_TRUE(w->finish()) << w->last_error_detail();
    EXPECT_TRUE(test::read_file(target + "/big") == big);
    for (int i = 0; i < 100; ++i)
        EXPECT_TRUE(test::read_file(target + "/s" + std::to_string(i)) == test::pattern(5000, i));
}

TEST_P(writer_test, content_size_mismatch_is_bad_entry) {
    auto w = open_writer(opts());
    ASSERT_TRUE(w->begin_entry(file_entry_of("f", 3)));
    auto r = w->write(std::as_bytes(std::span("toolong", 7)));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::bad_entry);
    EXPECT_EQ(r.error(), condition::bad_input);

    auto w2 = open_writer(opts());
    ASSERT_TRUE(w2->begin_entry(file_entry_of("g", 3)));
    ASSERT_TRUE(w2->write(std::as_bytes(std::span("a", 1))));
    EXPECT_EQ(w2->end_entry().error(), errc::bad_entry);
    EXPECT_NE(w2->last_error_detail().find("got 1 of 3"), std::string::npos);
}

int count_fds() { return static_cast<int>(listing("/proc/self/fd").size()); }

TEST_P(writer_test, ring_fault_loop_fails_cleanly) {
    const int fds_before = count_fds();
    bool succeeded = false;
    for (std::uint64_t n = 0; n < 200 && !succeeded; ++n) {
        write_options o = opts();
        o.fail_ring_op_for_test = n;
        o.queue_depth = 4;
        o.window_bytes = 16384;
        test::temp_dir t;
        auto w = tree_writer::open(t / "x", o);
        ASSERT_TRUE(w);
        result<void> r;
        for (int i = 0; i < 6 && r; ++i)
            r = put_file(**w, file_entry_of("f" + std::to_string(i), 9000), test::pattern(9000, i),
                         4096);
        if (r) {
            auto st = (*w)->finish();
            succeeded = st.has_value();
            if (!st) {
                EXPECT_EQ(st.error(), errc::io_failed) << "n=" << n;
            }
        } else {
            EXPECT_EQ(r.error(), errc::io_failed) << "n=" << n;
            EXPECT_FALSE((*w)->last_error_detail().empty());
        }
        if (succeeded) {
            for (int i = 0; i < 6; ++i)
                EXPECT_TRUE(test::read_file(t / ("x/f" + std::to_string(i))) ==
                            test::pattern(9000, i));
        }
    }
    EXPECT_TRUE(succeeded);
    EXPECT_EQ(count_fds(), fds_before);
}

// `d/`, files in d, then `d -> ../outside`: the directory cannot be replaced (it is not
// empty), and that is what the error says every time, not a failed create of a file in it
// whose directory was removed under it (the creates are still in flight when the symlink
// entry comes).
TEST_P(writer_test, symlink_over_a_directory_with_creates_in_flight_fails_one_way) {
    for (int round = 0; round < 30; ++round) {
        ASSERT_EQ(std::system(("rm -rf " + target).c_str()), 0);
        auto w = tree_writer::open(target, opts());
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->begin_entry(dir_entry("d")));
        for (int i = 0; i < 20; ++i)
            ASSERT_TRUE(put_file(**w, file_entry_of("d/f" + std::to_string(i), 3), "abc"));
        auto r = (*w)->begin_entry(link_entry("d", "../../outside", file_kind::symlink));
        ASSERT_FALSE(r) << "round " << round;
        EXPECT_EQ(r.error(), errc::io_failed);
        EXPECT_EQ((*w)->last_error_detail(),
                  "replace existing directory 'd' failed: " + std::string(strerror(ENOTEMPTY)))
            << "round " << round;
        (*w)->abandon();
        struct stat st {};
        ASSERT_EQ(::lstat((target + "/d").c_str(), &st), 0);
        EXPECT_TRUE(S_ISDIR(st.st_mode));
        EXPECT_EQ(listing(target + "/d").size(), 22u); // the 20 files (and . ..) are whole
        EXPECT_EQ(test::read_file(target + "/d/f19"), "abc");
    }
    expect_outside_untouched();
}

// abandon() removes the files it did not finish and keeps those it did.
TEST_P(writer_test, abandon_removes_only_unfinished_files) {
    auto w = open_writer(opts());
    ASSERT_TRUE(put_file(*w, file_entry_of("done", 5), "hello"));
    ASSERT_TRUE(w->begin_entry(file_entry_of("half", 10)));
    ASSERT_TRUE(w->write(std::as_bytes(std::span("abcd", 4))));
    const auto removed = w->abandon();
    EXPECT_EQ(removed, std::vector<std::string>{"half"});
    EXPECT_EQ(test::read_file(target + "/done"), "hello");
    EXPECT_EQ(listing(target), (std::vector<std::string>{".", "..", "done"}));
}

INSTANTIATE_TEST_SUITE_P(modes, writer_test, ::testing::Bool(), test::mode_name);

// On a tmpfs the writer uses plain syscalls unless told otherwise (see io_uring_on_tmpfs), and
// the files come out the same either way.
TEST(tree_writer_tmpfs, plain_syscalls_by_default_on_tmpfs) {
    struct statfs fs {};
    if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC || !io_uring_available())
        GTEST_SKIP() << "needs a tmpfs at /dev/shm and io_uring";
    for (bool on_tmpfs : {false, true}) {
        test::temp_dir shm("/dev/shm");
        const std::string target = shm / "out";
        write_options o;
        o.io_uring_on_tmpfs = on_tmpfs;
        auto w = tree_writer::open(target, o);
        ASSERT_TRUE(w);
        ASSERT_TRUE(put_file(**w, file_entry_of("a/f", 5, 0640), "hello"));
        auto st = (*w)->finish();
        ASSERT_TRUE(st) << (*w)->last_error_detail();
        EXPECT_EQ(st->used_io_uring, on_tmpfs);
        struct stat s {};
        ASSERT_EQ(::lstat((target + "/a/f").c_str(), &s), 0);
        EXPECT_EQ(s.st_mode & 07777, 0640u);
        EXPECT_EQ(s.st_size, 5);
    }
}

} // namespace
} // namespace podpipe::io
