// Test support: temp directories, generated trees with the awkward cases, tree comparison,
// and running shell commands. Test-only code; not linked into any product.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace podpipe::testing {

/// A fresh directory under $TMPDIR, removed (recursively) on destruction.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::filesystem::path& path() const noexcept { return path_; }
    std::filesystem::path operator/(const std::string& rel) const { return path_ / rel; }

private:
    std::filesystem::path path_;
};

/// Writes a file with the given content (parents created).
void write_file(const std::filesystem::path& p, const std::string& content);

/// Creates the awkward cases: empty dirs, long and non-ASCII names, symlinks (dangling too),
/// hardlinks, modes (setuid, sticky, 0400), old and future mtimes, empty and large files,
/// and `small_files` small files spread over directories.
void make_awkward_tree(const std::filesystem::path& root, int small_files = 200);

/// Compares two trees: entry set, types, content, permission bits, mtimes (seconds) of
/// files and directories, symlink targets, hardlink groups. Returns the differences (empty if
/// identical); at most 20 lines.
std::vector<std::string> diff_trees(const std::filesystem::path& a, const std::filesystem::path& b,
                                    bool compare_mtimes = true);

/// Runs `sh -c cmd`; returns the exit status (or 128+signal). Output goes where the test's goes.
int run_shell(const std::string& cmd);

/// Runs `sh -c cmd` capturing stdout+stderr into `output`.
int run_shell_capture(const std::string& cmd, std::string& output);

/// Single-quotes a string for sh.
std::string shell_quote(const std::string& s);

} // namespace podpipe::testing
