// File-system helpers for the tar interop tests: a temp dir, an awkward tree, a shell runner and
// a tree comparison. Test-only; self-contained so this suite depends on nothing but the tar lib.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace podpipe::tar::testing {

namespace fs = std::filesystem;

class scratch_dir {
public:
    scratch_dir() {
        std::string tmpl = (fs::temp_directory_path() / "tar_test.XXXXXX").string();
        if (::mkdtemp(tmpl.data()) == nullptr)
            std::abort();
        path_ = tmpl;
    }
    ~scratch_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& rel) const { return path_ / rel; }

private:
    fs::path path_;
};

inline std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

inline void put_file(const fs::path& p, const std::string& content) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

inline void set_mtime(const fs::path& p, std::int64_t sec) {
    const struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    ::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

inline std::string quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out.push_back(c);
    }
    return out + "'";
}

// Runs `sh -c cmd` with stdout+stderr captured; returns the exit status.
inline int run_capture(const std::string& cmd, std::string& output) {
    output.clear();
    FILE* f = ::popen(("(" + cmd + ") 2>&1").c_str(), "r");
    if (!f)
        return -1;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0)
        output.append(buf, n);
    const int st = ::pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

inline bool have_tool(const std::string& tool) {
    std::string out;
    return run_capture("command -v " + tool, out) == 0;
}

// Long and non-ASCII names, long symlink targets, hardlinks, odd modes, old/future mtimes,
// empty and multi-block files, `small_files` small files.
inline void make_tree(const fs::path& root, int small_files = 30) {
    fs::create_directories(root / "empty_dir");
    fs::create_directories(root / "nested/empty/deeper");
    put_file(root / "empty_file", "");
    put_file(root / "hello.txt", "hello, world\n");
    const std::string comp(120, 'L');
    put_file(root / "long" / comp / comp / "file_with_a_long_path.txt", "deep\n");
    put_file(root / std::string(100, 'n'), "exactly 100\n");
    put_file(root / std::string(101, 'm'), "101\n");
    put_file(root / "unicode/\xC3\xA9t\xC3\xA9 \xE2\x98\x83.txt", "snowman\n");
    put_file(root / "unicode/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "nihongo\n");
    put_file(root / "spaces and 'quotes'.txt", "q\n");
    fs::create_symlink("hello.txt", root / "link_to_hello");
    fs::create_symlink("/etc/hostname", root / "abs_link");
    fs::create_symlink("does/not/exist", root / "dangling");
    fs::create_symlink(std::string(150, 't') + "/x", root / "long_target_link");
    put_file(root / "hard/original", "linked content\n");
    fs::create_hard_link(root / "hard/original", root / "hard/second");
    fs::create_hard_link(root / "hard/original", root / "hard_third");
    put_file(root / "modes/setuid", "x");
    ::chmod((root / "modes/setuid").c_str(), 04755);
    put_file(root / "modes/readonly", "r");
    ::chmod((root / "modes/readonly").c_str(), 0400);
    fs::create_directories(root / "modes/sticky");
    ::chmod((root / "modes/sticky").c_str(), 01777);
    std::string big(200 * 1024 + 17, '\0');
    unsigned x = 1;
    for (auto& c : big)
        c = static_cast<char>((x = x * 1103515245u + 12345u) >> 24);
    put_file(root / "big.bin", big);
    for (int i = 0; i < small_files; ++i)
        put_file(root / ("src/d" + std::to_string(i % 7)) / ("f" + std::to_string(i) + ".cpp"),
                 std::string(static_cast<std::size_t>(i * 37 % 2000), static_cast<char>('a' + i % 26)));
    set_mtime(root / "hello.txt", 0);
    set_mtime(root / "big.bin", 946684800); // GNU tar warns on future or pre-1970 times
    set_mtime(root / "link_to_hello", 1234567890);
    set_mtime(root / "empty_dir", 1000000000);
}

// Differences between two trees (types, content, permission bits, mtimes of files and
// optionally of directories and symlinks, symlink targets, hardlink groups); empty if identical.
inline std::vector<std::string> tree_diff(const fs::path& a, const fs::path& b, bool dir_mtimes,
                                          bool symlink_mtimes) {
    struct node {
        struct stat st;
        std::string link;
    };
    auto scan = [](const fs::path& root) {
        std::map<std::string, node> m;
        for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
            node n{};
            ::lstat(it->path().c_str(), &n.st);
            if (S_ISLNK(n.st.st_mode))
                n.link = fs::read_symlink(it->path()).string();
            m[it->path().lexically_relative(root).generic_string()] = n;
        }
        return m;
    };
    const auto ma = scan(a), mb = scan(b);
    std::vector<std::string> d;
    std::map<ino_t, ino_t> inode_map; // a's inode -> b's inode: hardlink groups must match
    for (const auto& [path, na] : ma) {
        auto it = mb.find(path);
        if (it == mb.end()) {
            d.push_back("missing: " + path);
            continue;
        }
        const node& nb = it->second;
        if ((na.st.st_mode & S_IFMT) != (nb.st.st_mode & S_IFMT))
            d.push_back("type: " + path);
        else if (!S_ISLNK(na.st.st_mode) && (na.st.st_mode & 07777) != (nb.st.st_mode & 07777))
            d.push_back("mode: " + path);
        if (S_ISREG(na.st.st_mode)) {
            if (read_file(a / path) != read_file(b / path))
                d.push_back("content: " + path);
            auto [im, fresh] = inode_map.emplace(na.st.st_ino, nb.st.st_ino);
            if (!fresh && im->second != nb.st.st_ino)
                d.push_back("hardlink group: " + path);
        }
        if (na.link != nb.link)
            d.push_back("link target: " + path);
        const bool check_mtime = S_ISDIR(na.st.st_mode)   ? dir_mtimes
                                 : S_ISLNK(na.st.st_mode) ? symlink_mtimes
                                                          : true;
        if (check_mtime && na.st.st_mtim.tv_sec != nb.st.st_mtim.tv_sec)
            d.push_back("mtime: " + path);
    }
    for (const auto& [path, nb] : mb) {
        if (!ma.count(path))
            d.push_back("extra: " + path);
    }
    return d;
}

} // namespace podpipe::tar::testing
