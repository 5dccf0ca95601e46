#include "engine/io/remove.hpp"

#include "engine/common/unique_fd.hpp"
#include "engine/io/error.hpp"

#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string_view>
#include <sys/stat.h>
#include <unistd.h>
#include <utility>
#include <vector>

namespace podpipe::io {
namespace {

result<void> io_error(std::string* detail, const char* op, const std::string& path, int e) {
    if (detail != nullptr)
        *detail = std::string(op) + " '" + path + "' failed: " + std::strerror(e);
    return fail(errc::io_failed);
}

// Empties the directory `dir` (an fd it owns) recursively.
result<void> empty_directory(unique_fd dir, const std::string& path, std::string* detail) {
    const int list_fd = ::fcntl(dir.get(), F_DUPFD_CLOEXEC, 0);
    DIR* d = list_fd < 0 ? nullptr : ::fdopendir(list_fd);
    if (d == nullptr) {
        const int e = errno;
        if (list_fd >= 0)
            ::close(list_fd);
        return io_error(detail, "list directory to delete", path, e);
    }
    std::vector<std::string> names;
    while (const struct dirent* ent = ::readdir(d)) {
        const std::string_view n = ent->d_name;
        if (n != "." && n != "..")
            names.emplace_back(n);
    }
    ::closedir(d);
    for (const std::string& n : names)
        PODPIPE_TRY(detail::remove_at(dir.get(), n, path + "/" + n, detail));
    return {};
}

} // namespace

namespace detail {

result<void> remove_at(int parent_fd, const std::string& leaf, const std::string& shown,
                       std::string* error_detail) {
    if (::unlinkat(parent_fd, leaf.c_str(), 0) == 0 || errno == ENOENT)
        return {};
    if (errno == EACCES && ::fchmod(parent_fd, 0700) == 0 &&
        (::unlinkat(parent_fd, leaf.c_str(), 0) == 0 || errno == ENOENT))
        return {};
    if (errno != EISDIR && errno != EPERM)
        return io_error(error_detail, "delete", shown, errno);
    constexpr int dir_flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    unique_fd sub(::openat(parent_fd, leaf.c_str(), dir_flags));
    if (!sub && errno == EACCES) {
        // A directory without read permission (not for root): 0700 on the name itself, never
        // through a symlink put there meanwhile (AT_SYMLINK_NOFOLLOW fails on one).
        if (::fchmodat(parent_fd, leaf.c_str(), 0700, AT_SYMLINK_NOFOLLOW) == 0)
            sub.reset(::openat(parent_fd, leaf.c_str(), dir_flags));
        else
            errno = EACCES;
    }
    if (!sub)
        return io_error(error_detail, "open directory to delete", shown, errno);
    struct stat st {};
    if (::fstat(sub.get(), &st) == 0 && (st.st_mode & 0700) != 0700)
        ::fchmod(sub.get(), 0700);
    PODPIPE_TRY(empty_directory(std::move(sub), shown, error_detail));
    if (::unlinkat(parent_fd, leaf.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        return io_error(error_detail, "delete directory", shown, errno);
    return {};
}

} // namespace detail

result<void> remove_tree(const std::string& path, std::string* error_detail) {
    if (path.empty())
        return io_error(error_detail, "delete", path, ENOENT);
    std::string p = path;
    while (p.size() > 1 && p.back() == '/')
        p.pop_back();
    const std::size_t slash = p.rfind('/');
    const std::string dir = slash == std::string::npos ? "."
                            : slash == 0               ? "/"
                                                       : p.substr(0, slash);
    const std::string leaf = slash == std::string::npos ? p : p.substr(slash + 1);
    if (leaf.empty() || leaf == "." || leaf == "..")
        return io_error(error_detail, "delete", path, EINVAL);
    unique_fd parent(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!parent) {
        if (errno == ENOENT)
            return {};
        return io_error(error_detail, "open directory", dir, errno);
    }
    return detail::remove_at(parent.get(), leaf, path, error_detail);
}

} // namespace podpipe::io
