// Interop with real tar implementations: we parse what GNU tar writes (gnu, posix and ustar
// formats), and GNU tar and busybox tar extract what we write, silently and identically.
#include "engine/tar/parser.hpp"

#include "engine/tar/writer.hpp"
#include "tests/engine/tar/tar_test_util.hpp"
#include "tests/engine/tar/tar_fs_util.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

namespace podpipe::tar {
namespace {

namespace fs = std::filesystem;
using testing::have_tool;
using testing::make_tree;
using testing::read_file;
using testing::scratch_dir;
using testing::as_bytes;
using testing::collector;
using testing::parse_all;

std::vector<std::byte> read_bytes(const fs::path& p) {
    const std::string s = read_file(p);
    auto b = as_bytes(s);
    return {b.begin(), b.end()};
}

// Our writer over a directory tree: pre-order walk, hardlinks for repeated inodes.
std::vector<std::byte> write_tree(const fs::path& root, manifest* m_out = nullptr) {
    std::vector<std::byte> out;
    manifest_builder mb;
    std::map<std::pair<dev_t, ino_t>, std::string> seen;
    std::vector<fs::path> paths{root}; // the root itself is entry "." (GNU tar writes "./")
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
        paths.push_back(it->path());
    for (const auto& p : paths) {
        struct stat st {};
        EXPECT_EQ(::lstat(p.c_str(), &st), 0) << p;
        entry e;
        e.path = p == root ? "." : p.lexically_relative(root).generic_string();
        e.mode = st.st_mode & 07777;
        e.mtime_sec = st.st_mtim.tv_sec;
        e.uid = st.st_uid;
        e.gid = st.st_gid;
        std::string content;
        if (S_ISDIR(st.st_mode)) {
            e.type = entry_type::directory;
        } else if (S_ISLNK(st.st_mode)) {
            e.type = entry_type::symlink;
            e.link_target = fs::read_symlink(p).string();
        } else if (S_ISREG(st.st_mode)) {
            auto [it, fresh] = seen.emplace(std::pair{st.st_dev, st.st_ino}, e.path);
            if (!fresh && st.st_nlink > 1) {
                e.type = entry_type::hardlink;
                e.link_target = it->second;
            } else {
                content = read_file(p);
                e.size = content.size();
            }
        } else {
            continue;
        }
        auto r = append_header(e, out);
        EXPECT_TRUE(r) << e.path;
        mb.add_entry(e);
        out.insert(out.end(), as_bytes(content).begin(), as_bytes(content).end());
        mb.add_content(as_bytes(content));
        out.resize(out.size() + padding_for(content.size()));
    }
    const manifest m = mb.finish();
    if (m_out)
        *m_out = m;
    append_end(m, out);
    return out;
}

// Checks every parsed entry against the file system, and that every file system entry came.
void check_against_tree(const collector& c, const fs::path& root) {
    std::set<std::string> parsed;
    for (const auto& pe : c.entries) {
        const entry& e = pe.e;
        SCOPED_TRACE(e.path);
        parsed.insert(e.path);
        const fs::path p = e.path == "." ? root : root / e.path;
        struct stat st {};
        ASSERT_EQ(::lstat(p.c_str(), &st), 0);
        EXPECT_EQ(e.mode, st.st_mode & 07777);
        EXPECT_EQ(e.mtime_sec, st.st_mtim.tv_sec);
        EXPECT_EQ(e.uid, st.st_uid);
        switch (e.type) {
        case entry_type::regular:
            ASSERT_TRUE(S_ISREG(st.st_mode));
            EXPECT_EQ(pe.content, read_file(p));
            break;
        case entry_type::directory:
            EXPECT_TRUE(S_ISDIR(st.st_mode));
            break;
        case entry_type::symlink:
            ASSERT_TRUE(S_ISLNK(st.st_mode));
            EXPECT_EQ(e.link_target, fs::read_symlink(p).string());
            break;
        case entry_type::hardlink: {
            struct stat target {};
            ASSERT_EQ(::lstat((root / e.link_target).c_str(), &target), 0) << e.link_target;
            EXPECT_EQ(target.st_ino, st.st_ino);
            break;
        }
        default:
            ADD_FAILURE() << "unexpected type " << static_cast<char>(e.type);
        }
    }
    std::set<std::string> on_disk{"."};
    for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it)
        on_disk.insert(it->path().lexically_relative(root).generic_string());
    EXPECT_EQ(parsed, on_disk);
}

class tar_interop : public ::testing::Test {
protected:
    void SetUp() override {
        if (!have_tool("tar"))
            GTEST_SKIP() << "GNU tar not installed";
    }
    scratch_dir tmp_;
};

TEST_F(tar_interop, parses_gnu_tar_output_in_gnu_and_posix_formats) {
    const fs::path src = tmp_ / "src";
    make_tree(src, 40);
    for (const char* format : {"gnu", "posix", "oldgnu"}) {
        SCOPED_TRACE(format);
        const fs::path archive = tmp_ / (std::string(format) + ".tar");
        std::string output;
        ASSERT_EQ(testing::run_capture("tar --format=" + std::string(format) + " -C " +
                                        testing::quote(src.string()) + " -cf " +
                                        testing::quote(archive.string()) + " .",
                                    output),
                  0)
            << output;
        const auto bytes = read_bytes(archive);
        for (std::size_t chunk : {std::size_t{0}, std::size_t{1000}, std::size_t{1}}) {
            if (chunk == 1 && bytes.size() > (8u << 20))
                continue;
            collector c;
            parser p(c);
            auto r = parse_all(bytes, p, chunk);
            ASSERT_TRUE(r) << r.error().message() << ": " << p.last_error_detail();
            EXPECT_TRUE(p.ended());
            EXPECT_TRUE(c.manifests.empty());
            check_against_tree(c, src);
        }
    }
}

TEST_F(tar_interop, parses_gnu_tar_ustar_format) {
    // ustar cannot hold the awkward tree's longest names, so a tree within its limits.
    const fs::path src = tmp_ / "src";
    const std::string comp(60, 'c');
    testing::put_file(src / comp / comp / "near_the_255_limit_with_prefix_split.txt", "split\n");
    testing::put_file(src / std::string(100, 'n'), "exactly 100\n");
    testing::put_file(src / "caf\xC3\xA9/\xE6\x97\xA5.txt", "utf8\n");
    testing::put_file(src / "empty", "");
    fs::create_symlink(std::string(100, 't'), src / "link100");
    fs::create_hard_link(src / "empty", src / "empty_hard");
    fs::create_directories(src / "sticky");
    ::chmod((src / "sticky").c_str(), 01777);
    const fs::path archive = tmp_ / "ustar.tar";
    std::string output;
    ASSERT_EQ(testing::run_capture("tar --format=ustar -C " + testing::quote(src.string()) + " -cf " +
                                    testing::quote(archive.string()) + " .",
                                output),
              0)
        << output;
    collector c;
    parser p(c);
    auto r = parse_all(read_bytes(archive), p, 100);
    ASSERT_TRUE(r) << p.last_error_detail();
    check_against_tree(c, src);
}

// Extracts `archive` with `command_prefix` into a fresh dir; expects silence and exit 0.
fs::path extract(const fs::path& dir, const std::string& command) {
    fs::create_directories(dir);
    std::string output;
    EXPECT_EQ(testing::run_capture("cd " + testing::quote(dir.string()) + " && " + command, output), 0)
        << output;
    EXPECT_EQ(output, "") << "the extractor must print nothing (comment header silent)";
    return dir;
}

TEST_F(tar_interop, gnu_tar_extracts_our_output_silently_and_identically) {
    const fs::path src = tmp_ / "src";
    make_tree(src, 40);
    manifest m;
    const auto bytes = write_tree(src, &m);
    const fs::path archive = tmp_ / "ours.tar";
    {
        std::ofstream out(archive, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    const fs::path dst = extract(tmp_ / "gnu", "tar -xpf " + testing::quote(archive.string()));
    const auto diffs = testing::tree_diff(src, dst, /*dir_mtimes=*/true, /*symlink_mtimes=*/true);
    EXPECT_TRUE(diffs.empty()) << [&] {
        std::string s;
        for (const auto& d : diffs)
            s += d + "\n";
        return s;
    }();
    std::string listing;
    EXPECT_EQ(testing::run_capture("tar -tf " + testing::quote(archive.string()) + " 2>&1 >/dev/null", listing), 0);
    EXPECT_EQ(listing, "") << "tar -t must not warn";

    // And we read it back with the manifest matching.
    collector c;
    parser p(c);
    ASSERT_TRUE(parse_all(bytes, p, 65536));
    ASSERT_EQ(c.manifests.size(), 1u);
    EXPECT_EQ(c.manifests[0], m);
    EXPECT_EQ(c.digest.finish(), m);
    check_against_tree(c, src);
}

TEST_F(tar_interop, gnu_tar_reads_our_pax_numbers) {
    // mtimes outside ustar's octal range travel in pax records (and base-256 in the header).
    const std::vector<std::pair<std::string, std::int64_t>> times{
        {"old", -86400}, {"far", (std::int64_t{1} << 33) + 5}, {"normal", 1700000000}};
    std::vector<testing::item> items;
    for (const auto& [name, t] : times) {
        entry e;
        e.path = name;
        e.mode = 0640;
        e.mtime_sec = t;
        e.size = name.size();
        e.uid = ::getuid();
        e.gid = ::getgid();
        items.push_back({e, name});
    }
    const auto bytes = testing::build_archive(items);
    const fs::path archive = tmp_ / "times.tar";
    testing::put_file(archive, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
    const fs::path dst =
        extract(tmp_ / "x", "tar --warning=no-timestamp -xf " + testing::quote(archive.string()));
    for (const auto& [name, t] : times) {
        struct stat st {};
        ASSERT_EQ(::stat((dst / name).c_str(), &st), 0) << name;
        EXPECT_EQ(st.st_mtim.tv_sec, t) << name;
        EXPECT_EQ(st.st_mode & 07777, 0640u);
        EXPECT_EQ(read_file(dst / name), name);
    }
}

TEST_F(tar_interop, busybox_tar_extracts_our_output_silently) {
    if (!have_tool("busybox"))
        GTEST_SKIP() << "busybox not installed";
    const fs::path src = tmp_ / "src";
    make_tree(src, 40);
    const auto bytes = write_tree(src);
    const fs::path archive = tmp_ / "ours.tar";
    {
        std::ofstream out(archive, std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    }
    const fs::path dst = extract(tmp_ / "bb", "busybox tar -xf " + testing::quote(archive.string()));
    // busybox sets a directory's mtime when it creates it, before its children change it, and
    // does not set symlink mtimes at all.
    const auto diffs = testing::tree_diff(src, dst, /*dir_mtimes=*/false,
                                           /*symlink_mtimes=*/false);
    EXPECT_TRUE(diffs.empty()) << [&] {
        std::string s;
        for (const auto& d : diffs)
            s += d + "\n";
        return s;
    }();
}

} // namespace
} // namespace podpipe::tar
