#include "engine/io/tree_reader.hpp"

#include "engine/io/error.hpp"
#include "tests/engine/io/test_util.hpp"

#include <dirent.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <grp.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include <gtest/gtest.h>

namespace podpipe::io {
namespace {

using test::make_dir;
using test::write_file;

// Reference order: recursive readdir, names sorted bytewise, dir before contents.
void reference_walk(const std::string& root, const std::string& rel, std::vector<std::string>& out) {
    DIR* d = ::opendir(rel.empty() ? root.c_str() : (root + "/" + rel).c_str());
    ASSERT_NE(d, nullptr);
    std::vector<std::string> names;
    while (auto* e = ::readdir(d)) {
        std::string n = e->d_name;
        if (n != "." && n != "..")
            names.push_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
        const std::string p = rel.empty() ? n : rel + "/" + n;
        out.push_back(p);
        struct stat st {};
        ::lstat((root + "/" + p).c_str(), &st);
        if (S_ISDIR(st.st_mode))
            reference_walk(root, p, out);
    }
}

class reader_test : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override { PODPIPE_SKIP_WITHOUT_RING(GetParam()); }
    read_options opts() const {
        read_options o;
        o.use_io_uring = GetParam();
        return o;
    }
    test::temp_dir dir;
};

TEST_P(reader_test, order_is_sorted_dfs_with_dirs_first) {
    const std::string& r = dir.path();
    make_dir(r + "/a");
    make_dir(r + "/a/b");
    make_dir(r + "/empty");
    make_dir(r + "/a.b");
    write_file(r + "/a/b/z", "z");
    write_file(r + "/a/b/A", "A");
    write_file(r + "/a.b/x", "x");
    write_file(r + "/a0", "0");
    write_file(r + "/B", "B");
    write_file(r + "/\xc3\xa9", "e-acute"); // high bytes sort last (unsigned)
    test::recording_consumer c;
    auto st = read_tree(r, opts(), c);
    ASSERT_TRUE(st) << st.error().message();
    EXPECT_EQ(c.paths(), (std::vector<std::string>{"B", "a", "a/b", "a/b/A", "a/b/z", "a.b",
                                                   "a.b/x", "a0", "empty", "\xc3\xa9"}));
    EXPECT_EQ(st->entries, 10u);
    EXPECT_EQ(st->directories, 4u);
    EXPECT_EQ(st->files, 6u);
    EXPECT_EQ(st->used_io_uring, GetParam());
    const auto* e = c.find("a/b/A");
    ASSERT_NE(e, nullptr);
    EXPECT_EQ(e->data, "A");
    EXPECT_EQ(e->e.size, 1u);
    EXPECT_EQ(e->e.mode, 0644u);
}

TEST_P(reader_test, bounded_walk_ahead_is_deterministic_and_deadlock_free) {
    // A wide and deep tree walked with a tiny listing budget must give the reference order.
    const std::string& r = dir.path();
    for (int i = 0; i < 12; ++i) {
        const std::string d = r + "/d" + std::to_string(i % 3) + "_" + std::to_string(i);
        make_dir(d);
        std::string deep = d;
        for (int j = 0; j < 4; ++j) {
            deep += "/s" + std::to_string(j);
            make_dir(deep);
            for (int k = 0; k < 5; ++k)
                write_file(deep + "/f" + std::to_string(k), std::to_string(i * 100 + j * 10 + k));
        }
    }
    std::vector<std::string> expected;
    reference_walk(r, "", expected);
    for (unsigned threads : {1u, 2u, 4u}) {
        for (std::size_t ahead : {std::size_t{1}, std::size_t{7}, std::size_t{1} << 15}) {
            read_options o = opts();
            o.walk_threads = threads;
            o.walk_ahead_entries = ahead;
            o.queue_depth = 3;
            test::recording_consumer c;
            auto st = read_tree(r, o, c);
            ASSERT_TRUE(st);
            EXPECT_EQ(c.paths(), expected) << threads << " threads, ahead " << ahead;
        }
    }
}

TEST_P(reader_test, excludes_skip_entries_and_subtrees) {
    const std::string& r = dir.path();
    make_dir(r + "/src");
    make_dir(r + "/src/build");
    make_dir(r + "/keep");
    write_file(r + "/src/build/obj", "o");
    write_file(r + "/src/main.c", "m");
    write_file(r + "/src/debug.log", "l");
    write_file(r + "/keep/x.log", "l");
    write_file(r + "/keep/y", "y");
    read_options o = opts();
    o.excludes = {"*.log", "build", "keep/y"};
    test::recording_consumer c;
    auto st = read_tree(r, o, c);
    ASSERT_TRUE(st);
    EXPECT_EQ(c.paths(), (std::vector<std::string>{"keep", "src", "src/main.c"}));
}

TEST_P(reader_test, symlinks_are_entries_with_targets) {
    const std::string& r = dir.path();
    write_file(r + "/file", "data");
    ASSERT_EQ(::symlink("file", (r + "/link").c_str()), 0);
    ASSERT_EQ(::symlink("/nonexistent/elsewhere", (r + "/dangling").c_str()), 0);
    make_dir(r + "/d");
    ASSERT_EQ(::symlink("../d", (r + "/d/up").c_str()), 0);
    test::recording_consumer c;
    auto st = read_tree(r, opts(), c);
    ASSERT_TRUE(st);
    EXPECT_EQ(c.paths(), (std::vector<std::string>{"d", "d/up", "dangling", "file", "link"}));
    EXPECT_EQ(c.find("link")->e.kind, file_kind::symlink);
    EXPECT_EQ(c.find("link")->e.link_target, "file");
    EXPECT_EQ(c.find("link")->e.size, 0u);
    EXPECT_EQ(c.find("dangling")->e.link_target, "/nonexistent/elsewhere");
    EXPECT_EQ(c.find("d/up")->e.link_target, "../d");
    EXPECT_EQ(st->symlinks, 3u);
}

TEST_P(reader_test, hardlinks_point_to_first_occurrence) {
    const std::string& r = dir.path();
    make_dir(r + "/sub");
    write_file(r + "/a_first", "shared content");
    ASSERT_EQ(::link((r + "/a_first").c_str(), (r + "/b_second").c_str()), 0);
    ASSERT_EQ(::link((r + "/a_first").c_str(), (r + "/sub/third").c_str()), 0);
    const std::string big = test::pattern(300 * 1024, 3); // above small_file_bytes
    write_file(r + "/big", big);
    ASSERT_EQ(::link((r + "/big").c_str(), (r + "/big2").c_str()), 0);
    test::recording_consumer c;
    auto st = read_tree(r, opts(), c);
    ASSERT_TRUE(st);
    EXPECT_EQ(c.find("a_first")->e.kind, file_kind::regular);
    EXPECT_EQ(c.find("a_first")->data, "shared content");
    for (const char* p : {"b_second", "sub/third"}) {
        EXPECT_EQ(c.find(p)->e.kind, file_kind::hardlink) << p;
        EXPECT_EQ(c.find(p)->e.link_target, "a_first") << p;
        EXPECT_EQ(c.find(p)->e.size, 0u);
        EXPECT_TRUE(c.find(p)->data.empty());
    }
    EXPECT_EQ(c.find("big")->data, big);
    EXPECT_EQ(c.find("big2")->e.kind, file_kind::hardlink);
    EXPECT_EQ(c.find("big2")->e.link_target, "big");
    EXPECT_EQ(st->hardlinks, 3u);
    EXPECT_EQ(st->files, 2u);
}

TEST_P(reader_test, fifo_and_socket_are_skipped_with_warning) {
    const std::string& r = dir.path();
    ASSERT_EQ(::mkfifo((r + "/pipe").c_str(), 0644), 0);
    const int s = ::socket(AF_UNIX, SOCK_STREAM, 0);
    ASSERT_GE(s, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    const std::string sp = r + "/sock";
    ASSERT_LT(sp.size(), sizeof addr.sun_path);
    std::strcpy(addr.sun_path, sp.c_str());
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    write_file(r + "/regular", "r");
    test::warning_capture w;
    test::recording_consumer c;
    auto st = read_tree(r, opts(), c);
    ::close(s);
    ASSERT_TRUE(st);
    EXPECT_EQ(c.paths(), (std::vector<std::string>{"regular"}));
    EXPECT_EQ(st->skipped, 2u);
    EXPECT_TRUE(w.contains("skipping fifo 'pipe'")) << ::testing::PrintToString(w.lines());
    EXPECT_TRUE(w.contains("skipping socket 'sock'"));
    EXPECT_EQ(st->warnings, 2u);
}

TEST_P(reader_test, unreadable_file_is_skipped_and_counted) {
    // As root, permission bits do not stop us: run the walk in a child that drops to nobody.
    const std::string& r = dir.path();
    ASSERT_EQ(::chmod(r.c_str(), 0755), 0);
    make_dir(r + "/d");
    write_file(r + "/d/secret", "top secret", 0000);
    write_file(r + "/d/public", "hello", 0644);
    make_dir(r + "/locked", 0000);
    write_file(r + "/big_secret", test::pattern(400 * 1024, 1), 0000);
    const bool ring = GetParam();
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        if (::geteuid() == 0 && (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
                                 ::setresuid(65534, 65534, 65534) != 0))
            ::_exit(10);
        test::warning_capture w;
        test::recording_consumer c;
        read_options o;
        o.use_io_uring = ring;
        auto st = read_tree(r, o, c);
        int code = 0;
        if (!st)
            code = 11;
        else if (c.paths() != std::vector<std::string>{"d", "d/public", "locked"})
            code = 12;
        else if (st->unreadable != 3 || st->skipped != 3)
            code = 13;
        else if (!w.contains("cannot read 'd/secret': Permission denied") ||
                 !w.contains("cannot read 'big_secret'") ||
                 !w.contains("cannot open directory 'locked'"))
            code = 14;
        else if (c.find("d/public")->data != "hello")
            code = 15;
        if (code != 0) {
            for (const auto& l : w.lines())
                std::fprintf(stderr, "warning: %s\n", l.c_str());
            for (const auto& p : c.paths())
                std::fprintf(stderr, "entry: %s\n", p.c_str());
        }
        ::_exit(code);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_P(reader_test, large_file_shrinking_while_read_is_padded) {
    const std::string& r = dir.path();
    const std::size_t size = 8 << 20, keep = 3 << 20;
    const std::string content = test::pattern(size, 9);
    write_file(r + "/big", content);
    write_file(r + "/next", "after");
    read_options o = opts();
    o.large_read_bytes = 1 << 20;
    test::warning_capture w;
    test::recording_consumer c;
    c.after_entry = [&](const file_entry& e) -> result<void> {
        if (e.path == "big") {
            EXPECT_EQ(::truncate((r + "/big").c_str(), keep), 0);
        }
        return {};
    };
    auto st = read_tree(r, o, c);
    ASSERT_TRUE(st);
    const auto* big = c.find("big");
    ASSERT_NE(big, nullptr);
    EXPECT_EQ(big->e.size, size);
    ASSERT_EQ(big->data.size(), size);
    EXPECT_EQ(big->data.substr(0, keep), content.substr(0, keep));
    EXPECT_EQ(big->data.substr(keep), std::string(size - keep, '\0'));
    EXPECT_TRUE(w.contains("file 'big' shrank by " + std::to_string(size - keep) +
                           " bytes while being read; padded with zeros"))
        << ::testing::PrintToString(w.lines());
    EXPECT_EQ(c.find("next")->data, "after");
    EXPECT_EQ(st->content_bytes, size + 5);
}

TEST_P(reader_test, large_file_growing_while_read_is_cut_at_announced_size) {
    const std::string& r = dir.path();
    const std::string content = test::pattern(1 << 20, 4);
    write_file(r + "/big", content);
    read_options o = opts();
    o.small_file_bytes = 4096;
    o.large_read_bytes = 64 * 1024;
    test::warning_capture w;
    test::recording_consumer c;
    c.after_entry = [&](const file_entry&) -> result<void> {
        const int fd = ::open((r + "/big").c_str(), O_WRONLY | O_APPEND);
        EXPECT_EQ(::write(fd, "more", 4), 4);
        ::close(fd);
        return {};
    };
    auto st = read_tree(r, o, c);
    ASSERT_TRUE(st);
    EXPECT_EQ(c.find("big")->data, content);
    EXPECT_TRUE(w.contains("file 'big' grew by 4 bytes")) << ::testing::PrintToString(w.lines());
}

TEST_P(reader_test, vanished_file_is_skipped_with_warning) {
    const std::string& r = dir.path();
    write_file(r + "/a", "first");
    write_file(r + "/b_gone", test::pattern(100, 1));
    write_file(r + "/c", "last");
    read_options o = opts();
    o.small_file_bytes = 0; // opened only when it is next, so the removal below is seen
    test::warning_capture w;
    test::recording_consumer c;
    c.after_entry = [&](const file_entry& e) -> result<void> {
        if (e.path == "a") {
            EXPECT_EQ(::unlink((r + "/b_gone").c_str()), 0);
        }
        return {};
    };
    auto st = read_tree(r, o, c);
    ASSERT_TRUE(st);
    EXPECT_EQ(c.paths(), (std::vector<std::string>{"a", "c"}));
    EXPECT_EQ(st->vanished, 1u);
    EXPECT_EQ(st->skipped, 1u);
    EXPECT_TRUE(w.contains("file 'b_gone' vanished")) << ::testing::PrintToString(w.lines());
}

TEST_P(reader_test, contents_at_size_boundaries_with_tight_window) {
    const std::string& r = dir.path();
    read_options o = opts();
    o.small_file_bytes = 8192;
    o.large_read_bytes = 4096;
    o.window_bytes = 64 * 1024;
    o.queue_depth = 8;
    std::vector<std::pair<std::string, std::string>> files;
    const std::size_t sizes[] = {0, 1, 4095, 4096, 4097, 8191, 8192, 8193, 12288, 100000, 70000};
    unsigned i = 0;
    for (std::size_t s : sizes) {
        char name[16];
        std::snprintf(name, sizeof name, "f%02u", i);
        files.emplace_back(name, test::pattern(s, i++));
        write_file(r + "/" + name, files.back().second);
    }
    test::recording_consumer c;
    auto st = read_tree(r, o, c);
    ASSERT_TRUE(st);
    ASSERT_EQ(c.items.size(), files.size());
    std::uint64_t total = 0;
    for (std::size_t k = 0; k < files.size(); ++k) {
        EXPECT_EQ(c.items[k].e.path, files[k].first);
        EXPECT_EQ(c.items[k].e.size, files[k].second.size());
        EXPECT_TRUE(c.items[k].data == files[k].second) << files[k].first;
        total += files[k].second.size();
    }
    EXPECT_EQ(st->content_bytes, total);
}

// Small-file buffers are recycled between files (by size class, within the window): many
// files of mixed sizes through a tight window must each arrive with exactly their own bytes,
// never a neighbour's or a previous file's left in a reused buffer.
TEST_P(reader_test, recycled_read_buffers_never_mix_contents) {
    const std::string& r = dir.path();
    read_options o = opts();
    // A window much larger than what 8 requests keep in flight, so freed buffers are cached
    // and handed out again while other reads are still in flight.
    o.small_file_bytes = 32 * 1024;
    o.window_bytes = 1 << 20;
    o.queue_depth = 8;
    const std::size_t sizes[] = {20000, 0, 1, 100, 4095, 5000, 9000, 3000, 31000, 12000};
    std::vector<std::pair<std::string, std::string>> files;
    for (unsigned i = 0; i < 600; ++i) {
        char name[16];
        std::snprintf(name, sizeof name, "f%03u", i);
        files.emplace_back(name, test::pattern(sizes[i % std::size(sizes)], i));
        write_file(r + "/" + name, files.back().second);
    }
    test::recording_consumer c;
    auto st = read_tree(r, o, c);
    ASSERT_TRUE(st);
    ASSERT_EQ(c.items.size(), files.size());
    for (std::size_t k = 0; k < files.size(); ++k) {
        EXPECT_EQ(c.items[k].e.path, files[k].first);
        EXPECT_TRUE(c.items[k].data == files[k].second) << files[k].first;
    }
}

TEST_P(reader_test, root_errors_name_the_path) {
    test::recording_consumer c;
    std::string detail;
    auto st = read_tree(dir / "missing", opts(), c, {}, &detail);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error(), errc::root_not_found);
    EXPECT_NE(detail.find(dir / "missing"), std::string::npos) << detail;
    write_file(dir / "plain", "x");
    st = read_tree(dir / "plain", opts(), c, {}, &detail);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error(), errc::not_a_directory);
    EXPECT_NE(detail.find("plain"), std::string::npos);
}

TEST_P(reader_test, consumer_error_and_stop_abort_the_walk) {
    const std::string& r = dir.path();
    for (int i = 0; i < 50; ++i)
        write_file(r + "/f" + std::to_string(i), test::pattern(1000, i));
    test::recording_consumer c;
    c.after_entry = [&](const file_entry&) -> result<void> {
        if (c.items.size() == 10)
            return fail(std::make_error_code(std::errc::no_space_on_device));
        return {};
    };
    auto st = read_tree(r, opts(), c);
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error(), std::errc::no_space_on_device);
    EXPECT_EQ(c.items.size(), 10u);

    std::stop_source src;
    test::recording_consumer c2;
    c2.after_entry = [&](const file_entry&) -> result<void> {
        if (c2.items.size() == 5)
            src.request_stop();
        return {};
    };
    st = read_tree(r, opts(), c2, src.get_token());
    ASSERT_FALSE(st);
    EXPECT_EQ(st.error(), errc::cancelled);
}

TEST_P(reader_test, ring_fault_loop_never_breaks_consistency) {
    const std::string& r = dir.path();
    make_dir(r + "/d");
    write_file(r + "/d/small", "small content");
    write_file(r + "/d/big", test::pattern(40000, 5));
    write_file(r + "/z", "zz");
    for (std::uint64_t n = 0; n < 40; ++n) { // past the last ring operation of this walk
        read_options o = opts();
        o.small_file_bytes = 16384;
        o.large_read_bytes = 8192;
        o.fail_ring_op_for_test = n;
        test::warning_capture w;
        test::recording_consumer c;
        auto st = read_tree(r, o, c);
        ASSERT_TRUE(st) << "n=" << n;
        for (const auto& it : c.items)
            EXPECT_EQ(it.data.size(), it.e.size) << it.e.path << " n=" << n;
        if (st->warnings == 0) {
            EXPECT_EQ(c.paths(), (std::vector<std::string>{"d", "d/big", "d/small", "z"}));
        }
    }
}

INSTANTIATE_TEST_SUITE_P(modes, reader_test, ::testing::Bool(), test::mode_name);

} // namespace
} // namespace podpipe::io
