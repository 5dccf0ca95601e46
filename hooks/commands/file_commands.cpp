#include "hooks/commands/file_commands.hpp"

#include "engine/common/unique_fd.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <sys/stat.h>
#include <system_error>
#include <unistd.h>

namespace podpipe::hook {
namespace {

// The runner reads them; nothing runs them.
constexpr mode_t file_command_mode = 0644;

struct file_command_kind {
    std::string_view prefix;
    std::string_view variable;
};

// The runner names each step's files <prefix><guid> (actions/runner FileCommandManager).
constexpr std::array<file_command_kind, 5> kinds = {{{"set_env_", "GITHUB_ENV"},
                                                     {"add_path_", "GITHUB_PATH"},
                                                     {"set_output_", "GITHUB_OUTPUT"},
                                                     {"save_state_", "GITHUB_STATE"},
                                                     {"step_summary_", "GITHUB_STEP_SUMMARY"}}};

// "" for an entry that may reach the runner, else what the entry is instead of a file.
std::string_view refusal(const struct stat& st) {
    if (S_ISREG(st.st_mode))
        return st.st_nlink == 1 ? "" : "a hard link (a file with more than one name)";
    if (S_ISLNK(st.st_mode))
        return "a symbolic link";
    if (S_ISDIR(st.st_mode))
        return "a directory";
    if (S_ISFIFO(st.st_mode))
        return "a fifo";
    if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode))
        return "a device";
    if (S_ISSOCK(st.st_mode))
        return "a socket";
    return "something other than a regular file";
}

std::string describe(std::string_view name) {
    std::string s = "'" + std::string(name) + "'";
    if (const auto v = file_command_variable(name); !v.empty())
        s += " (" + std::string(v) + ")";
    return s;
}

std::string refused(std::string_view name, std::string_view what, std::string_view outcome) {
    return "the step left " + std::string(what) + " at its file command file " + describe(name) +
           ": refused, " + std::string(outcome) + " (file commands must be regular files)";
}

std::string errno_text(int err) { return std::error_code(err, std::system_category()).message(); }

// The names in `dir`, listed by path: what is done with each name goes through a descriptor.
result<std::vector<std::string>, std::error_code> list_names(const std::string& dir) {
    std::error_code ec;
    std::vector<std::string> names;
    for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
        names.push_back(it->path().filename().string());
    if (ec)
        return fail(ec);
    return names;
}

unique_fd open_directory(const std::string& path) {
    return unique_fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
}

} // namespace

std::string_view file_command_variable(std::string_view file_name) {
    for (const auto& k : kinds)
        if (file_name.size() > k.prefix.size() && file_name.starts_with(k.prefix))
            return k.variable;
    return {};
}

result<std::vector<std::string>, hook_error> adopt_file_commands(const std::string& stage,
                                                                 const std::string& dest) {
    const unique_fd from = open_directory(stage);
    if (!from) {
        const int err = errno;
        return fail(make_error(errc::transfer, "opening " + stage + ": " + errno_text(err)));
    }
    const unique_fd to = open_directory(dest);
    if (!to) {
        const int err = errno;
        return fail(make_error(errc::transfer, "opening " + dest + ": " + errno_text(err)));
    }
    auto names = list_names(stage);
    if (!names)
        return fail(
            make_error(errc::transfer, "listing " + stage + ": " + names.error().message()));
    std::vector<std::string> warnings;
    for (const auto& name : *names) {
        struct stat st {};

        if (::fstatat(from.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            const int err = errno;
            warnings.push_back("could not read the file command file " + describe(name) +
                               " that came back: " + errno_text(err));
            continue;
        }
        if (const auto what = refusal(st); !what.empty()) {
            warnings.push_back(refused(name, what, "not copied back to the runner"));
            continue;
        }
        // The stage is this process's own: what was checked is what is moved.
        if (::fchmodat(from.get(), name.c_str(), file_command_mode, 0) != 0 ||
            ::renameat(from.get(), name.c_str(), to.get(), name.c_str()) != 0) {
            const int err = errno;
            warnings.push_back("could not move the file command file " + describe(name) + " into " +
                               dest + ": " + errno_text(err));
        }
    }
    return warnings;
}

std::vector<std::string> refuse_irregular_file_commands(const std::string& dir) {
    std::vector<std::string> warnings;
    const unique_fd d = open_directory(dir);
    if (!d) {
        const int err = errno;

        struct stat st {};

        if (err == ENOENT || ::lstat(dir.c_str(), &st) != 0 || S_ISDIR(st.st_mode)) {
            if (err != ENOENT)
                warnings.push_back("cannot check the file commands in " + dir + ": " +
                                   errno_text(err));
            return warnings;
        }
        // The directory itself was replaced (by a symlink to elsewhere, say): the runner would
        // read and create its file commands there.
        const std::string what(refusal(st));
        if (::unlink(dir.c_str()) != 0 || ::mkdir(dir.c_str(), 0755) != 0) {
            const int replace_err = errno;
            warnings.push_back("the step left " + what + " at the file commands directory " + dir +
                               " and it could not be replaced: " + errno_text(replace_err));
        } else {
            warnings.push_back("the step left " + what + " at the file commands directory " + dir +
                               ": removed and created again, empty");
        }
        return warnings;
    }
    auto names = list_names(dir);
    if (!names) {
        warnings.push_back("cannot list the file commands in " + dir + ": " +
                           names.error().message());
        return warnings;
    }
    for (const auto& name : *names) {
        struct stat st {};

        if (::fstatat(d.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; // gone meanwhile
        const auto what = refusal(st);
        if (what.empty())
            continue;
        std::error_code ec;
        if (S_ISDIR(st.st_mode))
            std::filesystem::remove_all(dir + "/" + name, ec); // never follows symlinks
        else if (::unlinkat(d.get(), name.c_str(), 0) != 0)
            ec.assign(errno, std::system_category());
        if (ec) {
            warnings.push_back(refused(name, what, "but it could not be removed: " + ec.message()));
            continue;
        }
        // A name the runner reads gets an empty file back: the step wrote nothing there.
        if (!file_command_variable(name).empty()) {
            const unique_fd f(::openat(d.get(), name.c_str(),
                                       O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                                       file_command_mode));
            if (!f) {
                const int err = errno;
                warnings.push_back(
                    refused(name, what, "removed, but not created again: " + errno_text(err)));
                continue;
            }
        }
        warnings.push_back(refused(name, what, "removed"));
    }
    return warnings;
}

} // namespace podpipe::hook
