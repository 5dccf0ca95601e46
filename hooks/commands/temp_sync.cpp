#include "hooks/commands/temp_sync.hpp"

#include "engine/common/unique_fd.hpp"
#include "engine/io/paths.hpp"
#include "engine/io/tree_reader.hpp"
#include "kube/pod_spec.hpp"

#include <algorithm>
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
    // The engine's walk (the one send_tree uses); `skip` is left out afterwards.
    std::string detail;
    auto walked = io::walk_tree(root, {}, {}, &detail);
    if (!walked)
        return fail(make_error(errc::temp_sync, "cannot walk the _temp root: " + detail));
    // A directory that could not be listed is an error (its contents would count as
    // deleted); one that vanished meanwhile is simply gone.
    for (const std::string& p : walked->problems)
        if (p.find("vanished before") == std::string::npos)
            return fail(make_error(errc::temp_sync, "in " + root + ": " + p));
    std::vector<std::string> skipped;
    for (const auto& k : skip)
        if (auto n = io::normalize_entry_path(k); n && !n->empty())
            skipped.push_back(std::move(*n));
    const auto is_skipped = [&](const std::string& path) {
        return std::any_of(skipped.begin(), skipped.end(), [&](const std::string& k) {
            return path == k || (path.starts_with(k) && path[k.size()] == '/');
        });
    };
    temp_snapshot out;
    for (io::walked_entry& e : walked->entries) {
        if (is_skipped(e.path))
            continue;
        temp_entry t;
        t.kind = e.kind == io::file_kind::directory ? temp_kind::directory
                 : e.kind == io::file_kind::symlink ? temp_kind::symlink
                                                    : temp_kind::file;
        t.size = e.size;
        t.mtime_ns = e.mtime_sec * 1'000'000'000 + e.mtime_nsec;
        t.mode = e.mode;
        t.inode = e.ino;
        t.link_target = std::move(e.link_target);
        out.emplace(std::move(e.path), std::move(t));
    }
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
