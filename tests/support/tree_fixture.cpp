#include "tests/support/tree_fixture.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <stdexcept>

namespace fs = std::filesystem;

namespace podpipe::testing {

temp_dir::temp_dir() {
    const char* base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr ? base : "/tmp") + "/podpipe-test-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
        throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    // Make everything writable/searchable again so removal works after mode tests.
    for (auto it = fs::recursive_directory_iterator(path_, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
        if (it->is_directory(ec) && !it->is_symlink(ec))
            ::chmod(it->path().c_str(), 0700);
    }
    fs::remove_all(path_, ec);
}

void write_file(const fs::path& p, const std::string& content) {
    fs::create_directories(p.parent_path());
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << content;
    if (!f)
        throw std::runtime_error("cannot write " + p.string());
}

namespace {

void set_mtime(const fs::path& p, std::int64_t sec) {
    struct timespec ts[2] = {{sec, 0}, {sec, 0}};
    ::utimensat(AT_FDCWD, p.c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

std::string text_blob(std::mt19937_64& rng, std::size_t n) {
    static const char* words[] = {"int ", "return ", "const ", "std::", "value", "(", ")", ";\n",
                                  "{\n", "}\n", "if ", "for ", "auto ", "0x1f", "    ", "// ",
                                  "template", "<T>", "name_", "podpipe"};
    std::string s;
    s.reserve(n);
    while (s.size() < n)
        s += words[rng() % 20];
    s.resize(n);
    return s;
}

} // namespace

void make_awkward_tree(const fs::path& root, int small_files) {
    std::mt19937_64 rng(42);
    fs::create_directories(root / "empty_dir");
    fs::create_directories(root / "nested/empty/deeper");
    write_file(root / "empty_file", "");
    write_file(root / "hello.txt", "hello, world\n");
    // Long names: a 120-byte component, and a path over 255 bytes.
    const std::string long_comp(120, 'L');
    write_file(root / "long" / long_comp / long_comp / "file_with_a_long_path.txt", "deep\n");
    write_file(root / std::string(100, 'n'), "exactly 100\n");
    // Non-ASCII names.
    write_file(root / "unicode/\xC3\xA9t\xC3\xA9 \xE2\x98\x83.txt", "snowman\n");
    write_file(root / "unicode/\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "nihongo\n");
    write_file(root / "spaces and 'quotes'.txt", "q\n");
    // Symlinks: relative, absolute, dangling, to a directory, long target.
    fs::create_symlink("hello.txt", root / "link_to_hello");
    fs::create_symlink("/etc/hostname", root / "abs_link");
    fs::create_symlink("does/not/exist", root / "dangling");
    fs::create_directory_symlink("nested", root / "dir_link");
    fs::create_symlink(std::string(150, 't') + "/x", root / "long_target_link");
    // Hardlinks.
    write_file(root / "hard/original", "linked content\n");
    fs::create_hard_link(root / "hard/original", root / "hard/second");
    fs::create_hard_link(root / "hard/original", root / "hard_third");
    // Modes.
    write_file(root / "modes/setuid", "x");
    ::chmod((root / "modes/setuid").c_str(), 04755);
    write_file(root / "modes/readonly", "r");
    ::chmod((root / "modes/readonly").c_str(), 0400);
    write_file(root / "modes/exec", "#!/bin/sh\n");
    ::chmod((root / "modes/exec").c_str(), 0755);
    fs::create_directories(root / "modes/sticky");
    ::chmod((root / "modes/sticky").c_str(), 01777);
    // Sizes: one larger than a chunk, one that is random (incompressible).
    write_file(root / "big/text.bin", text_blob(rng, 3 * 1024 * 1024 + 17));
    std::string random(1024 * 1024 + 3, '\0');
    for (auto& c : random)
        c = static_cast<char>(rng());
    write_file(root / "big/random.bin", random);
    // Many small files.
    for (int i = 0; i < small_files; ++i) {
        const fs::path p = root / ("src/d" + std::to_string(i % 17)) /
                           ("f" + std::to_string(i) + ".cpp");
        write_file(p, text_blob(rng, static_cast<std::size_t>(rng() % 9000)));
    }
    // mtimes last (creating children changes a directory's mtime).
    set_mtime(root / "hello.txt", 0);
    set_mtime(root / "big/text.bin", 4102444800); // 2100-01-01
    set_mtime(root / "empty_dir", 1000000000);
    set_mtime(root / "link_to_hello", 1234567890);
}

namespace {

struct node {
    char type = '?';
    std::uint32_t mode = 0;
    std::int64_t mtime = 0;
    std::string content; // file content or link target
    std::uint64_t ino = 0;
    std::uint64_t nlink = 0;
};

std::map<std::string, node> scan(const fs::path& root) {
    std::map<std::string, node> out;
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::none, ec);
         !ec && it != fs::end(it); it.increment(ec)) {
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) != 0)
            continue;
        node n;
        n.mode = st.st_mode & 07777;
        n.mtime = st.st_mtim.tv_sec;
        n.ino = st.st_ino;
        n.nlink = st.st_nlink;
        if (S_ISREG(st.st_mode)) {
            n.type = 'f';
            std::ifstream f(it->path(), std::ios::binary);
            n.content.assign(std::istreambuf_iterator<char>(f), {});
        } else if (S_ISDIR(st.st_mode)) {
            n.type = 'd';
        } else if (S_ISLNK(st.st_mode)) {
            n.type = 'l';
            n.content = fs::read_symlink(it->path()).string();
            n.mode = 0; // symlink modes are not portable
            n.mtime = 0;
        } else {
            n.type = 'o';
        }
        out.emplace(fs::relative(it->path(), root).string(), std::move(n));
    }
    return out;
}

} // namespace

std::vector<std::string> diff_trees(const fs::path& a, const fs::path& b, bool compare_mtimes) {
    std::vector<std::string> diffs;
    auto add = [&](std::string s) {
        if (diffs.size() < 20)
            diffs.push_back(std::move(s));
    };
    const auto ta = scan(a);
    const auto tb = scan(b);
    std::map<std::uint64_t, std::string> group_a; // inode in a -> first path
    std::map<std::string, std::uint64_t> ino_b;
    for (const auto& [path, na] : ta) {
        auto it = tb.find(path);
        if (it == tb.end()) {
            add("missing in copy: " + path);
            continue;
        }
        const node& nb = it->second;
        if (na.type != nb.type) {
            add("type differs: " + path);
            continue;
        }
        if (na.content != nb.content)
            add("content differs: " + path);
        if (na.mode != nb.mode)
            add("mode differs: " + path + " " + std::to_string(na.mode) + " vs " +
                std::to_string(nb.mode));
        if (compare_mtimes && na.mtime != nb.mtime)
            add("mtime differs: " + path + " " + std::to_string(na.mtime) + " vs " +
                std::to_string(nb.mtime));
        if (na.type == 'f' && na.nlink > 1) {
            auto [g, fresh] = group_a.emplace(na.ino, path);
            if (!fresh && tb.at(g->second).ino != nb.ino)
                add("hardlink lost: " + path + " and " + g->second);
        }
    }
    for (const auto& [path, nb] : tb)
        if (!ta.count(path))
            add("extra in copy: " + path);
    return diffs;
}

int run_shell(const std::string& cmd) {
    const int st = std::system(cmd.c_str());
    if (st == -1)
        return -1;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    if (WIFSIGNALED(st))
        return 128 + WTERMSIG(st);
    return -1;
}

int run_shell_capture(const std::string& cmd, std::string& output) {
    output.clear();
    FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
    if (p == nullptr)
        return -1;
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0)
        output.append(buf.data(), n);
    const int st = ::pclose(p);
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    out += "'";
    return out;
}

} // namespace podpipe::testing
