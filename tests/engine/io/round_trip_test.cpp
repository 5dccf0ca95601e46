// read_tree -> tree_writer over a few thousand files: identical content, modes, mtimes,
// symlinks and hardlinks (same inode).
#include "engine/io/tree_reader.hpp"
#include "engine/io/tree_writer.hpp"

#include "tests/engine/io/test_util.hpp"

#include <dirent.h>

#include <algorithm>
#include <map>

#include <gtest/gtest.h>

namespace podpipe::io {
namespace {

class writer_consumer : public tree_consumer {
public:
    explicit writer_consumer(tree_writer& w) : w_(w) {}
    result<void> on_entry(const file_entry& e) override {
        if (open_)
            PODPIPE_TRY(w_.end_entry());
        PODPIPE_TRY(w_.begin_entry(e));
        open_ = true;
        return {};
    }
    result<void> on_data(std::span<const std::byte> b) override { return w_.write(b); }
    result<void> done() { return open_ ? w_.end_entry() : result<void>(); }

private:
    tree_writer& w_;
    bool open_ = false;
};

struct node {
    mode_t mode = 0;
    off_t size = 0;
    timespec mtime{};
    ino_t ino = 0;
    std::string content; // file contents or symlink target
};

void snapshot(const std::string& root, const std::string& rel, std::map<std::string, node>& out) {
    const std::string here = rel.empty() ? root : root + "/" + rel;
    DIR* d = ::opendir(here.c_str());
    ASSERT_NE(d, nullptr) << here;
    std::vector<std::string> names;
    while (auto* e = ::readdir(d))
        if (std::string n = e->d_name; n != "." && n != "..")
            names.push_back(n);
    ::closedir(d);
    for (const auto& n : names) {
        const std::string p = rel.empty() ? n : rel + "/" + n;
        struct stat st {};
        ASSERT_EQ(::lstat((root + "/" + p).c_str(), &st), 0);
        node nd;
        nd.mode = st.st_mode;
        nd.size = S_ISDIR(st.st_mode) ? 0 : st.st_size;
        nd.mtime = st.st_mtim;
        nd.ino = st.st_ino;
        if (S_ISREG(st.st_mode))
            nd.content = test::read_file(root + "/" + p);
        if (S_ISLNK(st.st_mode)) {
            char buf[4096];
            const ssize_t k = ::readlink((root + "/" + p).c_str(), buf, sizeof buf);
            nd.content.assign(buf, static_cast<std::size_t>(k));
        }
        out.emplace(p, std::move(nd));
        if (S_ISDIR(st.st_mode))
            snapshot(root, p, out);
    }
}

void set_mtime(const std::string& p, std::int64_t sec, long nsec) {
    const timespec ts[2] = {{sec, nsec}, {sec, nsec}};
    ASSERT_EQ(::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0);
}

class round_trip : public ::testing::TestWithParam<bool> {};

TEST_P(round_trip, five_thousand_files_and_some_large) {
    PODPIPE_SKIP_WITHOUT_RING(GetParam());
    test::temp_dir dir;
    const std::string src = dir / "src", dst = dir / "dst";
    test::make_dir(src);
    const mode_t modes[] = {0644, 0600, 0755, 0444, 0640, 04755};
    for (int d = 0; d < 50; ++d) {
        const std::string dd = src + "/dir" + std::to_string(d);
        test::make_dir(dd, d % 7 == 0 ? 0555 : 0755);
        for (int f = 0; f < 100; ++f) {
            const int i = d * 100 + f;
            const std::string p = dd + "/file" + std::to_string(f);
            test::write_file(p, test::pattern(static_cast<std::size_t>((i * 37) % 9000), i),
                             modes[i % 6]);
            set_mtime(p, 1600000000 + i, i * 1000 + 7);
        }
        if (d % 7 == 0)
            ::chmod(dd.c_str(), 0755); // writable while populating; restored below
    }
    test::make_dir(src + "/large");
    for (int i = 0; i < 4; ++i) {
        const std::string p = src + "/large/big" + std::to_string(i);
        test::write_file(p, test::pattern((3u << 20) + i * 12345, 100 + i), 0640);
        set_mtime(p, 1700000000, i);
    }
    ASSERT_EQ(::link((src + "/large/big0").c_str(), (src + "/large/hl_big0").c_str()), 0);
    ASSERT_EQ(::link((src + "/dir3/file3").c_str(), (src + "/dir9/hl_small").c_str()), 0);
    ASSERT_EQ(::symlink("../large/big1", (src + "/dir1/sym_rel").c_str()), 0);
    ASSERT_EQ(::symlink("/etc/hostname", (src + "/dir2/sym_abs").c_str()), 0);
    set_mtime(src + "/dir2/sym_abs", 1234, 5);
    test::make_dir(src + "/empty", 0700);
    for (int d = 0; d < 50; ++d) {
        const std::string dd = src + "/dir" + std::to_string(d);
        if (d % 7 == 0)
            ::chmod(dd.c_str(), 0555);
        set_mtime(dd, 1500000000 + d, 0);
    }
    set_mtime(src + "/large", 1500000100, 1);

    write_options wo;
    wo.use_io_uring = GetParam();
    auto w = tree_writer::open(dst, wo);
    ASSERT_TRUE(w);
    writer_consumer c(**w);
    read_options ro;
    ro.use_io_uring = GetParam();
    auto rs = read_tree(src, ro, c);
    ASSERT_TRUE(rs) << rs.error().message() << " / " << (*w)->last_error_detail();
    ASSERT_TRUE(c.done());
    auto ws = (*w)->finish();
    ASSERT_TRUE(ws) << (*w)->last_error_detail();
    EXPECT_EQ(rs->files, 5004u);
    EXPECT_EQ(rs->hardlinks, 2u);
    EXPECT_EQ(rs->symlinks, 2u);
    EXPECT_EQ(rs->directories, 52u);
    EXPECT_EQ(ws->files, rs->files);
    EXPECT_EQ(ws->content_bytes, rs->content_bytes);

    std::map<std::string, node> a, b;
    snapshot(src, "", a);
    snapshot(dst, "", b);
    ASSERT_EQ(a.size(), b.size());
    for (const auto& [p, na] : a) {
        SCOPED_TRACE(p);
        auto it = b.find(p);
        ASSERT_NE(it, b.end());
        const node& nb = it->second;
        EXPECT_EQ(na.mode, nb.mode);
        EXPECT_EQ(na.size, nb.size);
        EXPECT_TRUE(na.content == nb.content);
        EXPECT_EQ(na.mtime.tv_sec, nb.mtime.tv_sec);
        EXPECT_EQ(na.mtime.tv_nsec, nb.mtime.tv_nsec);
    }
    EXPECT_EQ(b["large/big0"].ino, b["large/hl_big0"].ino);
    EXPECT_EQ(b["dir3/file3"].ino, b["dir9/hl_small"].ino);
    EXPECT_NE(b["dir3/file3"].ino, b["dir3/file4"].ino);
}

INSTANTIATE_TEST_SUITE_P(modes, round_trip, ::testing::Bool(), test::mode_name);

} // namespace
} // namespace podpipe::io
