#include "hooks/commands/temp_sync.hpp"

#include "engine/common/unique_fd.hpp"
#include "kube/pod_spec.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <utility>

namespace podpipe::hook {

namespace {

// ---------------------------------------------------------------- helpers

hook_error sys_error(std::string_view what, std::string_view path, int e) {
    return make_error(errc::temp_sync,
                      std::string(what) + " " + std::string(path) + ": " + std::strerror(e));
}

std::string join(std::string_view a, std::string_view b) {
    if (a.empty())
        return std::string(b);
    std::string s(a);
    if (s.back() != '/')
        s += '/';
    s += b;
    return s;
}

/// A relative path as scan_tree makes them: non-empty, no leading or trailing '/', no empty,
/// "." or ".." component, no NUL.
bool is_clean_relative(std::string_view p) {
    if (p.empty() || p.find('\0') != std::string_view::npos)
        return false;
    std::size_t start = 0;
    while (true) {
        const std::size_t slash = p.find('/', start);
        const std::string_view comp = p.substr(
            start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if (comp.empty() || comp == "." || comp == "..")
            return false;
        if (slash == std::string_view::npos)
            return true;
        start = slash + 1;
    }
}

std::string_view parent_of(std::string_view p) {
    const std::size_t slash = p.rfind('/');
    return slash == std::string_view::npos ? std::string_view() : p.substr(0, slash);
}

std::int64_t mtime_ns_of(const struct stat& st) {
    return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec;
}

/// readlinkat into a string, growing the buffer until the target fits. Returns errno or 0.
int read_link(int dirfd, const char* name, std::size_t size_hint, std::string& out) {
    std::size_t cap = size_hint + 1 < 256 ? 256 : size_hint + 1;
    while (true) {
        out.resize(cap);
        const ssize_t n = ::readlinkat(dirfd, name, out.data(), cap);
        if (n < 0)
            return errno;
        if (static_cast<std::size_t>(n) < cap) {
            out.resize(static_cast<std::size_t>(n));
            return 0;
        }
        cap *= 2;
    }
}

bool vanished_errno(int e) { return e == ENOENT || e == ENOTDIR || e == ELOOP; }

// ---------------------------------------------------------------- scan

class tree_scanner {
public:
    tree_scanner(std::string root, const std::vector<std::string>& skip, temp_snapshot& out)
        : root_(std::move(root))
        , out_(out) {
        for (const auto& s : skip) {
            std::string_view v = s;
            while (v.starts_with("./"))
                v.remove_prefix(2);
            while (v.size() > 1 && v.back() == '/')
                v.remove_suffix(1);
            skip_.emplace(v);
        }
    }

    result<void, hook_error> walk(int dirfd, const std::string& prefix) {
        std::vector<std::string> names;
        {
            // fdopendir takes the descriptor it is given; keep dirfd for the *at calls below.
            const int dup_fd = ::fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
            if (dup_fd < 0)
                return fail(sys_error("cannot duplicate the descriptor of", shown(prefix), errno));
            DIR* dir = ::fdopendir(dup_fd);
            if (dir == nullptr) {
                const int e = errno;
                ::close(dup_fd);
                return fail(sys_error("cannot read directory", shown(prefix), e));
            }
            errno = 0;
            while (const struct dirent* d = ::readdir(dir)) {
                const std::string_view name = d->d_name;
                if (name != "." && name != "..")
                    names.emplace_back(name);
                errno = 0;
            }
            const int e = errno;
            ::closedir(dir);
            if (e != 0)
                return fail(sys_error("cannot read directory", shown(prefix), e));
        }
        for (const auto& name : names) {
            std::string rel = join(prefix, name);
            if (skip_.count(rel) != 0)
                continue;

            struct stat st {};

            if (::fstatat(dirfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
                if (vanished_errno(errno))
                    continue;
                return fail(sys_error("cannot stat", shown(rel), errno));
            }
            temp_entry entry;
            entry.mtime_ns = mtime_ns_of(st);
            entry.mode = st.st_mode & 07777;
            entry.inode = st.st_ino;
            if (S_ISREG(st.st_mode)) {
                entry.kind = temp_kind::file;
                entry.size = static_cast<std::uint64_t>(st.st_size);
                out_.insert_or_assign(std::move(rel), std::move(entry));
            } else if (S_ISLNK(st.st_mode)) {
                entry.kind = temp_kind::symlink;
                const int e = read_link(dirfd, name.c_str(), static_cast<std::size_t>(st.st_size),
                                        entry.link_target);
                if (e != 0) {
                    if (vanished_errno(e) || e == EINVAL) // gone, or no longer a symlink
                        continue;
                    return fail(sys_error("cannot read symlink", shown(rel), e));
                }
                out_.insert_or_assign(std::move(rel), std::move(entry));
            } else if (S_ISDIR(st.st_mode)) {
                entry.kind = temp_kind::directory;
                unique_fd sub(
                    ::openat(dirfd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
                if (!sub) {
                    if (vanished_errno(errno))
                        continue;
                    return fail(sys_error("cannot open directory", shown(rel), errno));
                }
                out_.insert_or_assign(rel, std::move(entry));
                PODPIPE_TRY(walk(sub.get(), rel));
            }
            // sockets, fifos, devices: not part of a transfer.
        }
        return {};
    }

private:
    std::string shown(const std::string& rel) const {
        return rel.empty() ? root_ : join(root_, rel);
    }

    std::string root_;
    std::set<std::string, std::less<>> skip_;
    temp_snapshot& out_;
};

// ---------------------------------------------------------------- manifest format
//
//   "podpipe temp manifest v1\n"
//   u64 entry count
//   per entry, in strictly increasing key order:
//     u8 kind (0 file, 1 directory, 2 symlink) · u32 path length · path bytes
//     u64 size · i64 mtime_ns · u32 mode · u64 inode · u32 link length · link bytes
//   u64 FNV-1a 64 of every byte before it
// Integers little-endian. The checksum catches truncation and stray writes, not malice: the
// file lives on the runner, written only by the hook.

constexpr std::string_view manifest_magic = "podpipe temp manifest v1\n";
constexpr std::size_t min_entry_bytes = 1 + 4 + 8 + 8 + 4 + 8 + 4 + 1; // + a 1-byte path
constexpr std::uint32_t max_name_bytes = 1U << 20;

std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

template <class T>
void put(std::string& out, T v) {
    auto u = static_cast<std::make_unsigned_t<T>>(v);
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        out += static_cast<char>(u & 0xff);
        u = static_cast<decltype(u)>(u >> 8);
    }
}

class byte_reader {
public:
    explicit byte_reader(std::string_view b)
        : b_(b) {}

    template <class T>
    bool get(T& v) {
        using U = std::make_unsigned_t<T>;
        if (b_.size() - pos_ < sizeof(T))
            return false;
        U u = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            u = static_cast<U>(
                u | static_cast<U>(static_cast<U>(static_cast<unsigned char>(b_[pos_ + i]))
                                   << (8 * i)));
        pos_ += sizeof(T);
        v = static_cast<T>(u);
        return true;
    }

    bool get_bytes(std::size_t n, std::string& out) {
        if (b_.size() - pos_ < n)
            return false;
        out.assign(b_.substr(pos_, n));
        pos_ += n;
        return true;
    }

    std::size_t remaining() const { return b_.size() - pos_; }

private:
    std::string_view b_;
    std::size_t pos_ = 0;
};

hook_error bad_manifest(std::string what) {
    return make_error(errc::temp_manifest, "bad _temp manifest: " + std::move(what));
}

// ---------------------------------------------------------------- staging

class stager {
public:
    stager(std::string root, std::string stage, int root_fd, int stage_fd)
        : root_(std::move(root))
        , stage_(std::move(stage))
        , root_fd_(root_fd)
        , stage_fd_(stage_fd) {}

    result<void, hook_error> make_dir(const std::string& rel) {
        if (!made_.insert(rel).second)
            return {};
        if (::mkdirat(stage_fd_, rel.c_str(), 0700) != 0 && errno != EEXIST)
            return fail(sys_error("cannot create stage directory", join(stage_, rel), errno));
        return {};
    }

    result<void, hook_error> make_parents(std::string_view rel) {
        for (std::size_t slash = rel.find('/'); slash != std::string_view::npos;
             slash = rel.find('/', slash + 1))
            PODPIPE_TRY(make_dir(std::string(rel.substr(0, slash))));
        return {};
    }

    /// Copies root/rel to stage/rel keeping mode and mtime (when a hard link is refused).
    /// Returns false in `gone` when the source disappeared.
    result<std::uint64_t, hook_error> copy_file(const std::string& rel, bool& gone) {
        unique_fd in(::openat(root_fd_, rel.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
        if (!in) {
            if (vanished_errno(errno)) {
                gone = true;
                return std::uint64_t{0};
            }
            return fail(sys_error("cannot open", join(root_, rel), errno));
        }

        struct stat st {};

        if (::fstat(in.get(), &st) != 0)
            return fail(sys_error("cannot stat", join(root_, rel), errno));
        unique_fd out(::openat(stage_fd_, rel.c_str(),
                               O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (!out)
            return fail(sys_error("cannot create", join(stage_, rel), errno));
        std::array<char, 1 << 16> buf{};
        std::uint64_t total = 0;
        while (true) {
            const ssize_t n = ::read(in.get(), buf.data(), buf.size());
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                return fail(sys_error("cannot read", join(root_, rel), errno));
            }
            if (n == 0)
                break;
            for (ssize_t done = 0; done < n;) {
                const ssize_t w =
                    ::write(out.get(), buf.data() + done, static_cast<std::size_t>(n - done));
                if (w < 0) {
                    if (errno == EINTR)
                        continue;
                    return fail(sys_error("cannot write", join(stage_, rel), errno));
                }
                done += w;
            }
            total += static_cast<std::uint64_t>(n);
        }
        if (::fchmod(out.get(), st.st_mode & 07777) != 0)
            return fail(sys_error("cannot set the mode of", join(stage_, rel), errno));
        const std::array<struct timespec, 2> times{timespec{0, UTIME_OMIT}, st.st_mtim};
        if (::futimens(out.get(), times.data()) != 0)
            return fail(sys_error("cannot set the mtime of", join(stage_, rel), errno));
        return total;
    }

    /// lstat of a changed entry; false (and `rel` recorded as vanished) when it is gone now.
    result<bool, hook_error> stat_entry(const std::string& rel, struct stat& st, stage_result& res) {
        if (::fstatat(root_fd_, rel.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0)
            return true;
        if (vanished_errno(errno)) {
            res.vanished.push_back(rel);
            return false;
        }
        return fail(sys_error("cannot stat", join(root_, rel), errno));
    }

    result<void, hook_error> stage_entry(const std::string& rel, stage_result& res) {
        struct stat st {};
        auto present = stat_entry(rel, st, res);
        if (!present)
            return fail(present.error());
        if (!*present)
            return {};
        if (S_ISREG(st.st_mode)) {
            PODPIPE_TRY(make_parents(rel));
            if (::linkat(root_fd_, rel.c_str(), stage_fd_, rel.c_str(), 0) == 0) {
                ++res.files;
                res.bytes += static_cast<std::uint64_t>(st.st_size);
                return {};
            }
            const int e = errno;
            if (vanished_errno(e)) {
                res.vanished.push_back(rel);
                return {};
            }
            if (e != EXDEV && e != EPERM && e != EMLINK)
                return fail(sys_error("cannot hard-link " + join(root_, rel) + " as",
                                      join(stage_, rel), e));
            bool gone = false;
            auto copied = copy_file(rel, gone);
            if (!copied)
                return fail(copied.error());
            if (gone) {
                res.vanished.push_back(rel);
                return {};
            }
            ++res.files;
            res.bytes += *copied;
            return {};
        }
        if (S_ISLNK(st.st_mode)) {
            std::string target;
            const int e =
                read_link(root_fd_, rel.c_str(), static_cast<std::size_t>(st.st_size), target);
            if (e != 0) {
                if (vanished_errno(e) || e == EINVAL) {
                    res.vanished.push_back(rel);
                    return {};
                }
                return fail(sys_error("cannot read symlink", join(root_, rel), e));
            }
            PODPIPE_TRY(make_parents(rel));
            if (::symlinkat(target.c_str(), stage_fd_, rel.c_str()) != 0)
                return fail(sys_error("cannot create symlink", join(stage_, rel), errno));
            const std::array<struct timespec, 2> times{timespec{0, UTIME_OMIT}, st.st_mtim};
            // A symlink's own mtime is cosmetic; not every filesystem can set it.
            (void)::utimensat(stage_fd_, rel.c_str(), times.data(), AT_SYMLINK_NOFOLLOW);
            ++res.files;
            return {};
        }
        res.vanished.push_back(rel); // now a directory or a special file: the next scan sees it
        return {};
    }

    result<void, hook_error> stage_new_dir(const std::string& rel, stage_result& res) {
        struct stat st {};
        auto present = stat_entry(rel, st, res);
        if (!present)
            return fail(present.error());
        if (!*present)
            return {};
        if (!S_ISDIR(st.st_mode)) {
            res.vanished.push_back(rel);
            return {};
        }
        PODPIPE_TRY(make_parents(rel));
        return make_dir(rel);
    }

    /// Gives every stage directory its root counterpart's mode and mtime. Runs last: a mode
    /// without u+w would stop the creation of children, and creating a child bumps the
    /// directory's mtime (while chmod/utimensat of a child does not touch its parent).
    result<void, hook_error> fix_directories() {
        for (const auto& rel : made_)
            PODPIPE_TRY(copy_dir_attrs(rel));
        return copy_dir_attrs("");
    }

private:
    result<void, hook_error> copy_dir_attrs(const std::string& rel) {
        struct stat st {};

        const char* root_name = rel.empty() ? "." : rel.c_str();
        if (::fstatat(root_fd_, root_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)) {
            // Gone since it was staged: keep the stage's directory usable with a common mode.
            st.st_mode = S_IFDIR | 0755;
            ::clock_gettime(CLOCK_REALTIME, &st.st_mtim);
        }
        const char* stage_name = rel.empty() ? "." : rel.c_str();
        if (::fchmodat(stage_fd_, stage_name, st.st_mode & 07777, 0) != 0)
            return fail(sys_error("cannot set the mode of", join(stage_, rel), errno));
        const std::array<struct timespec, 2> times{timespec{0, UTIME_OMIT}, st.st_mtim};
        if (::utimensat(stage_fd_, stage_name, times.data(), AT_SYMLINK_NOFOLLOW) != 0)
            return fail(sys_error("cannot set the mtime of", join(stage_, rel), errno));
        return {};
    }

    std::string root_;
    std::string stage_;
    int root_fd_;
    int stage_fd_;
    std::set<std::string> made_; ///< stage directories created so far (relative)
};

// ---------------------------------------------------------------- removal

void note(std::string& errors, std::string text) {
    if (errors.empty())
        errors = std::move(text);
}

/// Empties and removes directory `name` under `parent_fd`. Only unlinks names: never opens a
/// file for writing nor changes anything but stage directories' modes.
void remove_dir_at(int parent_fd, const std::string& name, const std::string& shown,
                   std::string& errors) {
    unique_fd fd(
        ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd && errno == EACCES) {
        // A stage directory that got a root directory's restrictive mode; it was lstat'ed as a
        // directory by the caller, so this chmod does not go through a symlink.
        ::fchmodat(parent_fd, name.c_str(), 0700, 0);
        fd.reset(
            ::openat(parent_fd, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    }
    if (!fd) {
        if (errno != ENOENT)
            note(errors, "cannot open " + shown + ": " + std::strerror(errno));
        return;
    }
    ::fchmod(fd.get(), 0700); // unlinking children needs w+x on this directory
    std::vector<std::pair<std::string, bool>> children; // name, is directory
    {
        const int dup_fd = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 0);
        DIR* dir = dup_fd < 0 ? nullptr : ::fdopendir(dup_fd);
        if (dir == nullptr) {
            note(errors, "cannot read " + shown + ": " + std::strerror(errno));
            if (dup_fd >= 0)
                ::close(dup_fd);
            return;
        }
        while (const struct dirent* d = ::readdir(dir)) {
            const std::string_view n = d->d_name;
            if (n == "." || n == "..")
                continue;

            struct stat st {};

            const bool is_dir = ::fstatat(fd.get(), d->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
                                S_ISDIR(st.st_mode);
            children.emplace_back(std::string(n), is_dir);
        }
        ::closedir(dir);
    }
    for (const auto& [child, is_dir] : children) {
        const std::string child_shown = join(shown, child);
        if (is_dir) {
            remove_dir_at(fd.get(), child, child_shown, errors);
        } else if (::unlinkat(fd.get(), child.c_str(), 0) != 0 && errno != ENOENT) {
            note(errors, "cannot remove " + child_shown + ": " + std::strerror(errno));
        }
    }
    if (::unlinkat(parent_fd, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT)
        note(errors, "cannot remove " + shown + ": " + std::strerror(errno));
}


} // namespace

// ---------------------------------------------------------------- public API

result<temp_snapshot, hook_error> scan_tree(const std::string& root,
                                            const std::vector<std::string>& skip) {
    unique_fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd)
        return fail(sys_error("cannot open _temp root", root, errno));
    temp_snapshot out;
    tree_scanner scanner(root, skip, out);
    PODPIPE_TRY(scanner.walk(fd.get(), std::string()));
    return out;
}

bool temp_delta::empty() const {
    return send.empty() && new_dirs.empty() && replaced.empty() && removed.empty();
}

temp_delta diff_snapshots(const temp_snapshot& pod_has, const temp_snapshot& now) {
    temp_delta d;
    for (const auto& [path, entry] : now) {
        const auto old = pod_has.find(path);
        const bool known = old != pod_has.end();
        if (known && old->second.kind != entry.kind)
            d.replaced.push_back(path);
        const bool same_kind = known && old->second.kind == entry.kind;
        if (entry.kind == temp_kind::directory) {
            if (!same_kind || old->second.mode != entry.mode ||
                old->second.mtime_ns != entry.mtime_ns)
                d.new_dirs.push_back(path);
        } else if (!same_kind || !(old->second == entry)) {
            d.send.push_back(path);
            if (entry.kind == temp_kind::file)
                d.send_bytes += entry.size;
        }
    }
    for (const auto& [path, entry] : pod_has) {
        if (now.count(path) != 0)
            continue;
        // Covered when the parent directory (as the pod has it) is itself removed or replaced.
        const std::string_view parent = parent_of(path);
        if (!parent.empty()) {
            const auto p_old = pod_has.find(std::string(parent));
            const auto p_now = now.find(std::string(parent));
            const bool parent_was_dir =
                p_old != pod_has.end() && p_old->second.kind == temp_kind::directory;
            const bool parent_is_dir =
                p_now != now.end() && p_now->second.kind == temp_kind::directory;
            if (parent_was_dir && !parent_is_dir)
                continue;
        }
        d.removed.push_back(path);
    }
    return d; // each list was filled in map order, so it is sorted
}

std::string serialize_manifest(const temp_snapshot& s) {
    std::string out(manifest_magic);
    put<std::uint64_t>(out, s.size());
    for (const auto& [path, e] : s) {
        put<std::uint8_t>(out, static_cast<std::uint8_t>(e.kind));
        put<std::uint32_t>(out, static_cast<std::uint32_t>(path.size()));
        out += path;
        put<std::uint64_t>(out, e.size);
        put<std::int64_t>(out, e.mtime_ns);
        put<std::uint32_t>(out, e.mode);
        put<std::uint64_t>(out, e.inode);
        put<std::uint32_t>(out, static_cast<std::uint32_t>(e.link_target.size()));
        out += e.link_target;
    }
    put<std::uint64_t>(out, fnv1a(out));
    return out;
}

result<temp_snapshot, hook_error> parse_manifest(std::string_view bytes) {
    if (!bytes.starts_with(manifest_magic))
        return fail(bad_manifest("not a podpipe temp manifest (or another version)"));
    if (bytes.size() < manifest_magic.size() + 16)
        return fail(bad_manifest("truncated"));
    const std::string_view body = bytes.substr(0, bytes.size() - 8);
    byte_reader trailer(bytes.substr(bytes.size() - 8));
    std::uint64_t sum = 0;
    (void)trailer.get(sum);
    if (sum != fnv1a(body))
        return fail(bad_manifest("checksum mismatch (truncated or damaged)"));

    byte_reader r(body.substr(manifest_magic.size()));
    std::uint64_t count = 0;
    (void)r.get(count);
    if (count > r.remaining() / min_entry_bytes)
        return fail(bad_manifest("entry count " + std::to_string(count) + " exceeds the file"));
    temp_snapshot out;
    std::string path;
    for (std::uint64_t i = 0; i < count; ++i) {
        const std::string at = "entry " + std::to_string(i);
        std::uint8_t kind = 0;
        std::uint32_t path_len = 0;
        temp_entry e;
        std::uint32_t link_len = 0;
        if (!r.get(kind) || !r.get(path_len) || path_len > max_name_bytes ||
            !r.get_bytes(path_len, path) || !r.get(e.size) || !r.get(e.mtime_ns) ||
            !r.get(e.mode) || !r.get(e.inode) || !r.get(link_len) || link_len > max_name_bytes ||
            !r.get_bytes(link_len, e.link_target))
            return fail(bad_manifest(at + ": truncated"));
        if (kind > static_cast<std::uint8_t>(temp_kind::symlink))
            return fail(bad_manifest(at + ": unknown kind " + std::to_string(kind)));
        e.kind = static_cast<temp_kind>(kind);
        if (!is_clean_relative(path))
            return fail(bad_manifest(at + ": path is not a clean relative path"));
        if (!out.empty() && !(out.rbegin()->first < path))
            return fail(bad_manifest(at + ": paths out of order or repeated"));
        if (e.mode > 07777)
            return fail(bad_manifest(at + ": mode out of range"));
        if (e.kind != temp_kind::file && e.size != 0)
            return fail(bad_manifest(at + ": size on a non-file"));
        if ((e.kind == temp_kind::symlink) == e.link_target.empty() ||
            e.link_target.find('\0') != std::string::npos)
            return fail(bad_manifest(at + ": bad symlink target"));
        out.emplace_hint(out.end(), std::move(path), std::move(e));
        path.clear();
    }
    if (r.remaining() != 0)
        return fail(bad_manifest("trailing bytes after the last entry"));
    return out;
}

result<void, hook_error> save_manifest(const std::string& file, const temp_snapshot& s) {
    namespace fs = std::filesystem;
    const fs::path target(file);
    fs::path dir = target.parent_path();
    if (dir.empty())
        dir = ".";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        return fail(make_error(errc::temp_sync,
                               "cannot create directory " + dir.string() + ": " + ec.message()));
    const std::string bytes = serialize_manifest(s);
    std::string tmp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
    unique_fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd)
        return fail(sys_error("cannot create a temporary file beside", file, errno));
    auto cleanup_fail = [&](std::string_view what, int e) {
        ::unlink(tmp.c_str());
        return fail(sys_error(what, tmp, e));
    };
    for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cleanup_fail("cannot write", errno);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return cleanup_fail("cannot fsync", errno);
    fd.reset();
    if (::rename(tmp.c_str(), file.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        return fail(sys_error("cannot rename a temporary file over", file, e));
    }
    // Make the rename itself durable; a failure here loses nothing already promised.
    if (unique_fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dfd)
        (void)::fsync(dfd.get());
    return {};
}

result<temp_snapshot, hook_error> load_manifest(const std::string& file) {
    unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT)
            return temp_snapshot{};
        return fail(sys_error("cannot open manifest", file, errno));
    }
    std::string bytes;
    std::array<char, 1 << 16> buf{};
    while (true) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(sys_error("cannot read manifest", file, errno));
        }
        if (n == 0)
            break;
        bytes.append(buf.data(), static_cast<std::size_t>(n));
    }
    auto parsed = parse_manifest(bytes);
    if (!parsed) {
        hook_error err = parsed.error();
        err.message += " (" + file + ")";
        return fail(std::move(err));
    }
    return parsed;
}

result<stage_result, hook_error> stage_delta(const std::string& root, const temp_delta& delta,
                                             const std::string& stage_dir) {
    for (const auto* list : {&delta.send, &delta.new_dirs})
        for (const auto& p : *list)
            if (!is_clean_relative(p))
                return fail(
                    make_error(errc::temp_sync,
                               "refusing to stage a path that is not a clean relative path: " + p));
    unique_fd root_fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!root_fd)
        return fail(sys_error("cannot open _temp root", root, errno));
    if (::mkdir(stage_dir.c_str(), 0700) != 0)
        return fail(sys_error("cannot create stage directory", stage_dir, errno));
    unique_fd stage_fd(::open(stage_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!stage_fd)
        return fail(sys_error("cannot open stage directory", stage_dir, errno));

    stager st(root, stage_dir, root_fd.get(), stage_fd.get());
    stage_result res;
    for (const auto& p : delta.new_dirs)
        PODPIPE_TRY(st.stage_new_dir(p, res));
    for (const auto& p : delta.send)
        PODPIPE_TRY(st.stage_entry(p, res));
    PODPIPE_TRY(st.fix_directories());
    return res;
}

std::string remove_stage(const std::string& stage_dir) {
    struct stat st {};

    if (::lstat(stage_dir.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return {};
        return "cannot stat " + stage_dir + ": " + std::strerror(errno);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (::unlink(stage_dir.c_str()) != 0 && errno != ENOENT)
            return "cannot remove " + stage_dir + ": " + std::strerror(errno);
        return {};
    }
    std::string errors;
    remove_dir_at(AT_FDCWD, stage_dir, stage_dir, errors);
    return errors;
}

std::string removal_script(const std::string& pod_root, const std::vector<std::string>& paths) {
    constexpr std::size_t max_line_bytes = std::size_t{64} * 1024;
    constexpr std::string_view command = "rm -rf --";
    std::string script;
    if (pod_root.empty() || pod_root.find('\0') != std::string::npos)
        return script; // a relative or unusable root would delete beneath the shell's cwd
    std::string line;
    for (const auto& p : paths) {
        if (!is_clean_relative(p))
            continue;
        const std::string word = kube::single_quote(join(pod_root, p));
        if (!line.empty() && line.size() + 1 + word.size() + 1 > max_line_bytes) {
            script += line;
            script += '\n';
            line.clear();
        }
        if (line.empty())
            line = command;
        line += ' ';
        line += word;
    }
    if (!line.empty()) {
        script += line;
        script += '\n';
    }
    return script;
}

} // namespace podpipe::hook
