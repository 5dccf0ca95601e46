// tree_writer resume: sync(), suspend(), resume_file() and adopt_directory() on real files, with
// io_uring and with the plain-syscall fallback: a receive cut off after a sync() and continued
// by a later writer comes out byte-exact with its metadata, and nothing the later writer is
// handed (a symlink, a directory, a hard link, a short file) is written through.
#include "engine/io/tree_writer.hpp"

#include "engine/io/error.hpp"
#include "tests/engine/io/test_util.hpp"
#include "tests/engine/io/writer_util.hpp"

#include <dirent.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <algorithm>
#include <functional>

#include <gtest/gtest.h>

namespace podpipe::io {
namespace {

using test::listing;

file_entry dir_entry(std::string p, std::uint32_t mode, std::int64_t mtime) {
    return test::dir_entry(std::move(p), mode, mtime, 5);
}

file_entry reg(std::string p, std::uint64_t size, std::uint32_t mode = 0640) {
    return test::file_entry_of(std::move(p), size, mode, 1600000000, 987654321);
}

result<void> put(tree_writer& w, std::string_view content, std::size_t piece = 7001) {
    return test::put(w, content, piece);
}

result<void> put_file(tree_writer& w, const file_entry& e, std::string_view content) {
    return test::put_file(w, e, content, 7001);
}

struct stat lstat_of(const std::string& p) {
    struct stat s {};
    EXPECT_EQ(::lstat(p.c_str(), &s), 0) << p;
    return s;
}

using tree_writer_resume = test::writer_fixture;

// A first writer: directory d (0750 later), a finished file, then `content` cut after
// `synced` bytes (sync()), `extra` more bytes given but not synced, then suspend().
void cut_after_sync(tree_writer& w, const std::string& content, std::size_t synced,
                    std::size_t extra) {
    ASSERT_TRUE(w.begin_entry(dir_entry("d", 0750, 1111)));
    ASSERT_TRUE(put_file(w, reg("d/done", 5, 0600), "hello"));
    ASSERT_TRUE(w.begin_entry(reg("d/f", content.size(), 0751)));
    ASSERT_TRUE(put(w, std::string_view(content).substr(0, synced)));
    ASSERT_TRUE(w.sync()) << w.last_error_detail();
    ASSERT_TRUE(put(w, std::string_view(content).substr(synced, extra)));
    EXPECT_EQ(w.suspend(), std::vector<std::string>{"d/f"});
}

TEST_P(tree_writer_resume, resumes_at_the_synced_offset_or_before) {
    const std::string content = test::pattern(300000, 3);
    const std::size_t synced = 123457;
    for (std::size_t offset : {synced, std::size_t{50001}, std::size_t{0}, synced}) {
        SCOPED_TRACE(offset);
        ASSERT_EQ(std::system(("rm -rf " + target).c_str()), 0);
        {
            auto w = open_writer();
            cut_after_sync(*w, content, synced, 40000);
        }
        // What the cut left: the synced prefix exactly, directory still 0700, the file 0600.
        const std::string left = test::read_file(target + "/d/f");
        ASSERT_GE(left.size(), synced);
        EXPECT_TRUE(left.substr(0, synced) == content.substr(0, synced));
        EXPECT_EQ(lstat_of(target + "/d").st_mode & 07777, 0700u);
        EXPECT_EQ(lstat_of(target + "/d/f").st_mode & 07777, 0600u);
        EXPECT_EQ(test::read_file(target + "/d/done"), "hello");

        auto w = open_writer();
        ASSERT_TRUE(w->adopt_directory(dir_entry("d", 0750, 2222))) << w->last_error_detail();
        ASSERT_TRUE(w->resume_file(reg("d/f", content.size(), 0751), offset))
            << w->last_error_detail();
        EXPECT_EQ(lstat_of(target + "/d/f").st_size, static_cast<off_t>(offset)); // truncated
        ASSERT_TRUE(put(*w, std::string_view(content).substr(offset), 65536));
        ASSERT_TRUE(w->end_entry()) << w->last_error_detail();
        ASSERT_TRUE(put_file(*w, reg("d/g", 3), "new"));
        auto st = w->finish();
        ASSERT_TRUE(st) << w->last_error_detail();
        EXPECT_EQ(st->content_bytes, content.size() - offset + 3);
        EXPECT_EQ(st->files, 2u);
        EXPECT_EQ(st->directories, 1u);

        EXPECT_TRUE(test::read_file(target + "/d/f") == content);
        const struct stat f = lstat_of(target + "/d/f");
        EXPECT_EQ(f.st_mode & 07777, 0751u);
        EXPECT_EQ(f.st_mtim.tv_sec, 1600000000);
        EXPECT_EQ(f.st_mtim.tv_nsec, 987654321);
        const struct stat d = lstat_of(target + "/d");
        EXPECT_EQ(d.st_mode & 07777, 0750u);
        EXPECT_EQ(d.st_mtim.tv_sec, 2222);
        EXPECT_EQ(test::read_file(target + "/d/g"), "new");
        EXPECT_EQ(listing(target + "/d"),
                  (std::vector<std::string>{".", "..", "done", "f", "g"}));
    }
    expect_outside_untouched();
}

// After sync() every byte given is in the file (read through another descriptor), files that
// ended are closed with their metadata, and the current file takes more content.
TEST_P(tree_writer_resume, sync_puts_every_byte_given_on_disk) {
    write_options o = opts();
    o.window_bytes = 64 * 1024;
    o.queue_depth = 4;
    auto w = open_writer(o);
    for (int i = 0; i < 20; ++i)
        ASSERT_TRUE(put_file(*w, reg("s" + std::to_string(i), 5000, 0604),
                             test::pattern(5000, i)));
    const std::string content = test::pattern(1 << 20, 9);
    ASSERT_TRUE(w->begin_entry(reg("big", content.size())));
    ASSERT_TRUE(w->sync()) << w->last_error_detail(); // nothing written yet: the file exists
    EXPECT_EQ(lstat_of(target + "/big").st_size, 0);
    for (int i = 0; i < 20; ++i) {
        const std::string p = target + "/s" + std::to_string(i);
        EXPECT_TRUE(test::read_file(p) == test::pattern(5000, i)) << p;
        EXPECT_EQ(lstat_of(p).st_mode & 07777, 0604u) << p;
    }
    std::size_t given = 0;
    for (std::size_t step : {1u, 4095u, 70000u, 3u, 200000u, 1u}) {
        ASSERT_TRUE(put(*w, std::string_view(content).substr(given, step), 3000));
        given += step;
        ASSERT_TRUE(w->sync()) << w->last_error_detail();
        const std::string now = test::read_file(target + "/big");
        ASSERT_EQ(now.size(), given);
        EXPECT_TRUE(now == content.substr(0, given));
    }
    ASSERT_TRUE(put(*w, std::string_view(content).substr(given)));
    ASSERT_TRUE(w->end_entry());
    ASSERT_TRUE(w->sync());
    EXPECT_EQ(lstat_of(target + "/big").st_mode & 07777, 0640u); // closed with its metadata
    ASSERT_TRUE(w->finish()) << w->last_error_detail();
    EXPECT_TRUE(test::read_file(target + "/big") == content);
}

// The write submitted by sync() itself fails: sync() returns the error, and it stays.
TEST_P(tree_writer_resume, sync_propagates_a_write_error) {
    write_options o = opts();
    o.fail_ring_op_for_test = 1; // op 0 creates the file, op 1 is its first write
    auto w = open_writer(o);
    ASSERT_TRUE(w->begin_entry(reg("f", 100000)));
    ASSERT_TRUE(put(*w, test::pattern(1000, 1))); // below a chunk: buffered, not submitted
    auto r = w->sync();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::io_failed);
    EXPECT_NE(w->last_error_detail().find("write 'f' failed"), std::string::npos)
        << w->last_error_detail();
    EXPECT_EQ(w->sync().error(), errc::io_failed); // sticky
    EXPECT_FALSE(w->write(std::as_bytes(std::span("x", 1))));

    // The same for a resumed file (no create: its first write is op 0).
    test::write_file(target + "/r", "0123456789");
    o.fail_ring_op_for_test = 0;
    auto w2 = open_writer(o);
    ASSERT_TRUE(w2->resume_file(reg("r", 20), 10));
    ASSERT_TRUE(w2->write(std::as_bytes(std::span("abcde", 5))));
    auto r2 = w2->sync();
    ASSERT_FALSE(r2);
    EXPECT_EQ(r2.error(), errc::io_failed);
    EXPECT_EQ(w2->abandon(), std::vector<std::string>{"r"}); // removed when its write failed
    EXPECT_EQ(test::read_file(target + "/r"), "<missing>");
}

// Every way the path of an unfinished file can be wrong: refused, nothing written anywhere.
TEST_P(tree_writer_resume, resume_file_refusals) {
    struct refusal {
        const char* name;
        std::function<void()> setup;
        file_entry e;
        std::uint64_t offset;
        errc want;
        const char* detail;
    };
    const std::string in_target = "inner file content";
    const std::vector<refusal> cases = {
        {"symlink_inside", [&] { ASSERT_EQ(::symlink("real", (target + "/f").c_str()), 0); },
         reg("f", 100), 5, errc::unsafe_path, "a symlink is where"},
        {"symlink_outside",
         [&] { ASSERT_EQ(::symlink((outside + "/passwd").c_str(), (target + "/f").c_str()), 0); },
         reg("f", 100), 5, errc::unsafe_path, "a symlink is where"},
        {"directory", [&] { test::make_dir(target + "/f"); }, reg("f", 100), 0, errc::bad_entry,
         "a directory is there"},
        {"fifo", [&] { ASSERT_EQ(::mkfifo((target + "/f").c_str(), 0600), 0); }, reg("f", 100),
         0, errc::bad_entry, "not a regular file"},
        {"missing", [] {}, reg("f", 100), 0, errc::bad_entry, "it is missing"},
        {"missing_parent", [] {}, reg("nodir/f", 100), 0, errc::bad_entry, "is missing"},
        {"shorter_than_offset", [&] { test::write_file(target + "/f", "0123456789"); },
         reg("f", 100), 11, errc::bad_entry, "fewer than the 11"},
        {"offset_past_size", [&] { test::write_file(target + "/f", "0123456789"); },
         reg("f", 9), 10, errc::bad_entry, "past its size"},
        {"through_symlinked_parent",
         [&] { ASSERT_EQ(::symlink(outside.c_str(), (target + "/evil").c_str()), 0); },
         reg("evil/passwd", 100), 3, errc::unsafe_path, "escapes the target"},
        {"through_dotdot_symlink",
         [&] { ASSERT_EQ(::symlink("..", (target + "/up").c_str()), 0); },
         reg("up/outside/passwd", 100), 3, errc::unsafe_path, "escapes the target"},
        {"hard_link_to_outside",
         [&] {
             ASSERT_EQ(::link((outside + "/passwd").c_str(), (target + "/f").c_str()), 0);
         },
         reg("f", 100), 3, errc::bad_entry, "other hard links"},
        {"dotdot_name", [] {}, reg("../outside/passwd", 100), 3, errc::unsafe_path, "escapes"},
        {"the_root", [] {}, reg(".", 100), 0, errc::unsafe_path, "target directory itself"},
        {"not_regular_entry", [] {}, dir_entry("f", 0755, 1), 0, errc::bad_entry, "not a regular"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        ASSERT_EQ(std::system(("rm -rf " + target).c_str()), 0);
        test::make_dir(target);
        test::write_file(target + "/real", in_target);
        c.setup();
        auto w = open_writer();
        auto r = w->resume_file(c.e, c.offset);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), c.want) << w->last_error_detail();
        EXPECT_NE(w->last_error_detail().find(c.detail), std::string::npos)
            << w->last_error_detail();
        EXPECT_NE(w->last_error_detail().find(c.e.path), std::string::npos)
            << w->last_error_detail();
        EXPECT_FALSE(w->write(std::as_bytes(std::span("x", 1)))); // sticky
        EXPECT_FALSE(w->finish());
        EXPECT_EQ(test::read_file(target + "/real"), in_target);
        expect_outside_untouched();
    }
    // The file itself is left as it was: a refused resume truncates nothing.
    ASSERT_EQ(std::system(("rm -rf " + target).c_str()), 0);
    test::make_dir(target);
    test::write_file(target + "/f", "0123456789");
    auto w = open_writer();
    EXPECT_FALSE(w->resume_file(reg("f", 100), 11));
    EXPECT_EQ(test::read_file(target + "/f"), "0123456789");
}

// A symlink to a directory that stays inside the root is followed on the way, as begin_entry
// follows it; the file itself is the one under the real directory.
TEST_P(tree_writer_resume, parent_symlink_inside_the_root_is_followed_like_begin_entry) {
    test::make_dir(target);
    test::make_dir(target + "/real");
    test::write_file(target + "/real/f", "abcdef");
    ASSERT_EQ(::symlink("real", (target + "/alias").c_str()), 0);
    auto w = open_writer();
    ASSERT_TRUE(w->resume_file(reg("alias/f", 6), 3)) << w->last_error_detail();
    ASSERT_TRUE(put(*w, "XYZ"));
    ASSERT_TRUE(w->end_entry());
    ASSERT_TRUE(w->finish()) << w->last_error_detail();
    EXPECT_EQ(test::read_file(target + "/real/f"), "abcXYZ");
}

TEST_P(tree_writer_resume, adopt_directory_applies_metadata_at_finish) {
    {
        auto w = open_writer();
        ASSERT_TRUE(w->begin_entry(dir_entry("a", 0750, 1000)));
        ASSERT_TRUE(w->begin_entry(dir_entry("a/b", 0555, 1000)));
        ASSERT_TRUE(put_file(*w, reg("a/b/f", 2), "hi"));
        ASSERT_TRUE(w->sync()); // without it a/b/f could still be unwritten, and unfinished
        EXPECT_EQ(w->suspend(), std::vector<std::string>{});
    }
    EXPECT_EQ(lstat_of(target + "/a").st_mode & 07777, 0700u); // made 0700 until finish()
    EXPECT_EQ(lstat_of(target + "/a/b").st_mode & 07777, 0700u);
    auto w = open_writer();
    ASSERT_TRUE(w->adopt_directory(dir_entry("a", 0750, 3000))) << w->last_error_detail();
    ASSERT_TRUE(w->adopt_directory(dir_entry("a/b/", 0555, 4000))) << w->last_error_detail();
    ASSERT_TRUE(w->adopt_directory(dir_entry("./", 0751, 5000))) << w->last_error_detail();
    // Adopted directories keep their mode until finish(): a new file still lands in b.
    ASSERT_TRUE(put_file(*w, reg("a/b/g", 3), "new"));
    auto st = w->finish();
    ASSERT_TRUE(st) << w->last_error_detail();
    EXPECT_EQ(st->directories, 2u);
    const struct stat a = lstat_of(target + "/a"), b = lstat_of(target + "/a/b");
    EXPECT_EQ(a.st_mode & 07777, 0750u);
    EXPECT_EQ(a.st_mtim.tv_sec, 3000);
    EXPECT_EQ(a.st_mtim.tv_nsec, 5);
    EXPECT_EQ(b.st_mode & 07777, 0555u);
    EXPECT_EQ(b.st_mtim.tv_sec, 4000);
    EXPECT_EQ(lstat_of(target).st_mode & 07777, 0751u);
    EXPECT_EQ(lstat_of(target).st_mtim.tv_sec, 5000);
    EXPECT_EQ(test::read_file(target + "/a/b/f"), "hi");
    EXPECT_EQ(test::read_file(target + "/a/b/g"), "new");
}

TEST_P(tree_writer_resume, adopt_directory_refusals) {
    test::make_dir(target);
    test::make_dir(target + "/d", 0700);
    test::write_file(target + "/file", "x");
    ASSERT_EQ(::symlink("d", (target + "/to_d").c_str()), 0);
    ASSERT_EQ(::symlink(outside.c_str(), (target + "/to_out").c_str()), 0);
    const struct {
        const char* name;
        file_entry e;
        errc want;
    } cases[] = {
        {"symlink_to_directory_inside", dir_entry("to_d", 0755, 1), errc::unsafe_path},
        {"symlink_to_directory_outside", dir_entry("to_out", 0755, 1), errc::unsafe_path},
        {"through_symlink_outside", dir_entry("to_out/x", 0755, 1), errc::unsafe_path},
        {"dotdot", dir_entry("../outside", 0755, 1), errc::unsafe_path},
        {"a_file", dir_entry("file", 0755, 1), errc::bad_entry},
        {"missing", dir_entry("none", 0755, 1), errc::bad_entry},
        {"missing_parent", dir_entry("none/sub", 0755, 1), errc::bad_entry},
        {"not_a_directory_entry", reg("d", 0), errc::bad_entry},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.name);
        auto w = open_writer();
        auto r = w->adopt_directory(c.e);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error(), c.want) << w->last_error_detail();
        EXPECT_FALSE(w->last_error_detail().empty());
        EXPECT_FALSE(w->finish()); // sticky: no directory metadata applied
    }
    EXPECT_EQ(lstat_of(target + "/d").st_mode & 07777, 0700u);
    EXPECT_EQ(lstat_of(outside).st_mode & 07777, 0755u);
    expect_outside_untouched();
}

// suspend() keeps the unfinished file that abandon() removes; both keep finished ones.
TEST_P(tree_writer_resume, suspend_keeps_what_abandon_removes) {
    for (bool suspend : {true, false}) {
        SCOPED_TRACE(suspend);
        ASSERT_EQ(std::system(("rm -rf " + target).c_str()), 0);
        auto w = open_writer();
        ASSERT_TRUE(put_file(*w, reg("done", 5), "hello"));
        ASSERT_TRUE(w->begin_entry(reg("half", 10)));
        ASSERT_TRUE(put(*w, "abcd"));
        ASSERT_TRUE(w->sync());
        const auto left = suspend ? w->suspend() : w->abandon();
        EXPECT_EQ(left, std::vector<std::string>{"half"});
        EXPECT_EQ(test::read_file(target + "/done"), "hello");
        EXPECT_EQ(test::read_file(target + "/half"), suspend ? "abcd" : "<missing>");
    }
}

// A resumed file is this writer's own unfinished file: abandon() removes it, unless another
// writer has replaced the name since (the inode check).
TEST_P(tree_writer_resume, abandon_removes_a_resumed_file_it_did_not_finish) {
    test::make_dir(target);
    test::write_file(target + "/f", "0123");
    test::write_file(target + "/g", "0123");
    auto w = open_writer();
    ASSERT_TRUE(w->resume_file(reg("f", 10), 4));
    ASSERT_TRUE(put(*w, "45"));
    EXPECT_EQ(w->abandon(), std::vector<std::string>{"f"});
    EXPECT_EQ(test::read_file(target + "/f"), "<missing>");

    auto w2 = open_writer();
    ASSERT_TRUE(w2->resume_file(reg("g", 10), 2));
    ASSERT_TRUE(::rename((target + "/g").c_str(), (target + "/g.old").c_str()) == 0);
    test::write_file(target + "/g", "someone else's");
    EXPECT_EQ(w2->abandon(), std::vector<std::string>{});
    EXPECT_EQ(test::read_file(target + "/g"), "someone else's");
}

// All the content was on disk, only the metadata missing: resumed at its size, no write.
TEST_P(tree_writer_resume, resume_at_the_full_size_only_applies_metadata) {
    test::make_dir(target);
    test::write_file(target + "/f", "0123456789", 0600);
    auto w = open_writer();
    ASSERT_TRUE(w->resume_file(reg("f", 10, 0444), 10));
    ASSERT_TRUE(w->end_entry());
    auto st = w->finish();
    ASSERT_TRUE(st) << w->last_error_detail();
    EXPECT_EQ(st->content_bytes, 0u);
    EXPECT_EQ(test::read_file(target + "/f"), "0123456789");
    const struct stat f = lstat_of(target + "/f");
    EXPECT_EQ(f.st_mode & 07777, 0444u);
    EXPECT_EQ(f.st_mtim.tv_sec, 1600000000);
}

// A 5 MiB file through a 1 MiB window, cut in the middle and resumed in the middle.
TEST_P(tree_writer_resume, large_file_through_a_small_window_resumed_in_the_middle) {
    write_options o = opts();
    o.window_bytes = 1 << 20;
    o.queue_depth = 8;
    const std::string content = test::pattern(5 << 20, 21);
    const std::size_t synced = (5 << 20) / 2 + 12345;
    {
        auto w = open_writer(o);
        ASSERT_TRUE(w->begin_entry(reg("big", content.size(), 0604)));
        ASSERT_TRUE(put(*w, std::string_view(content).substr(0, synced / 2), 100000));
        ASSERT_TRUE(w->sync());
        ASSERT_TRUE(put(*w, std::string_view(content).substr(synced / 2, synced - synced / 2),
                        100000));
        ASSERT_TRUE(w->sync());
        ASSERT_TRUE(put(*w, std::string_view(content).substr(synced, 1 << 20), 100000));
        EXPECT_EQ(w->suspend(), std::vector<std::string>{"big"});
    }
    const std::size_t offset = synced - 4097; // a little before the point, across chunk edges
    auto w = open_writer(o);
    ASSERT_TRUE(w->resume_file(reg("big", content.size(), 0604), offset));
    ASSERT_TRUE(put(*w, std::string_view(content).substr(offset), 100000));
    ASSERT_TRUE(w->end_entry());
    auto st = w->finish();
    ASSERT_TRUE(st) << w->last_error_detail();
    EXPECT_EQ(st->content_bytes, content.size() - offset);
    EXPECT_TRUE(test::read_file(target + "/big") == content);
    EXPECT_EQ(lstat_of(target + "/big").st_mode & 07777, 0604u);
}

INSTANTIATE_TEST_SUITE_P(modes, tree_writer_resume, ::testing::Bool(), test::mode_name);

// On a tmpfs, with io_uring (io_uring_on_tmpfs) and without: the same cut and resume.
TEST(tree_writer_resume_tmpfs, cut_and_resume_on_tmpfs) {
    struct statfs fs {};
    if (::statfs("/dev/shm", &fs) != 0 || fs.f_type != TMPFS_MAGIC)
        GTEST_SKIP() << "needs a tmpfs at /dev/shm";
    for (bool on_tmpfs : {false, true}) {
        SCOPED_TRACE(on_tmpfs);
        test::temp_dir shm("/dev/shm");
        const std::string target = shm / "out";
        write_options o;
        o.io_uring_on_tmpfs = on_tmpfs;
        o.window_bytes = 256 * 1024;
        const std::string content = test::pattern(1 << 20, 5);
        {
            auto w = tree_writer::open(target, o);
            ASSERT_TRUE(w);
            cut_after_sync(**w, content, 600000, 100000);
        }
        auto w = tree_writer::open(target, o);
        ASSERT_TRUE(w);
        ASSERT_TRUE((*w)->adopt_directory(dir_entry("d", 0750, 2222)));
        ASSERT_TRUE((*w)->resume_file(reg("d/f", content.size(), 0751), 600000));
        ASSERT_TRUE(put(**w, std::string_view(content).substr(600000)));
        ASSERT_TRUE((*w)->end_entry());
        auto st = (*w)->finish();
        ASSERT_TRUE(st) << (*w)->last_error_detail();
        EXPECT_EQ(st->used_io_uring, on_tmpfs && io_uring_available());
        EXPECT_TRUE(test::read_file(target + "/d/f") == content);
        EXPECT_EQ(lstat_of(target + "/d/f").st_mode & 07777, 0751u);
        EXPECT_EQ(lstat_of(target + "/d").st_mode & 07777, 0750u);
    }
}

} // namespace
} // namespace podpipe::io
