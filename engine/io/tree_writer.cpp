#include "engine/io/tree_writer.hpp"

#include "engine/common/log.hpp"
#include "engine/common/unique_fd.hpp"
#include "engine/io/error.hpp"
#include "engine/io/paths.hpp"
#include "engine/io/remove.hpp"
#include "engine/io/ring.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <utility>
#include <vector>

namespace podpipe::io {
namespace {

using steady = std::chrono::steady_clock;

constexpr std::size_t max_chunk_bytes = 1 << 20;
constexpr std::size_t dir_cache_limit = 256;
constexpr std::uint64_t resolve_flags = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;

int sys_openat2(int dirfd, const char* path, std::uint64_t flags, std::uint64_t resolve) {
    ::open_how how{};
    how.flags = flags;
    how.resolve = resolve;
    return static_cast<int>(::syscall(SYS_openat2, dirfd, path, &how, sizeof(how)));
}

std::string errno_text(int e) { return std::strerror(e); }

struct wchunk {
    std::unique_ptr<std::byte[]> data;
    std::size_t cap = 0, len = 0, done = 0;
    std::uint64_t off = 0;
};

struct wfile {
    std::uint64_t id = 0;
    std::string path, leaf;
    std::shared_ptr<unique_fd> parent;
    std::uint32_t mode = 0, uid = 0, gid = 0;
    std::int64_t mtime_sec = 0;
    std::uint32_t mtime_nsec = 0;
    std::uint64_t size = 0, received = 0;
    unique_fd fd;
    bool open_submitted = false, opened = false, ended = false, close_submitted = false;
    bool retried = false, actionable = false;
    bool removed = false; // a failed write's file, already unlinked
    std::deque<wchunk> queued;
    unsigned writes_in_flight = 0;
};

enum class wreq_kind : std::uint8_t { open, write, close };

struct wreq {
    wreq_kind kind = wreq_kind::close;
    std::uint64_t file_id = 0;
    wchunk chunk; // write: owned while in flight
};

struct dir_meta {
    std::uint32_t mode = 0, uid = 0, gid = 0;
    std::int64_t mtime_sec = 0;
    std::uint32_t mtime_nsec = 0;
};

timespec to_ts(std::int64_t sec, std::uint32_t nsec) {
    timespec t{};
    t.tv_sec = static_cast<time_t>(sec);
    t.tv_nsec = static_cast<long>(nsec % 1000000000u);
    return t;
}

std::pair<std::string, std::string> split_parent(const std::string& p) {
    const std::size_t slash = p.rfind('/');
    if (slash == std::string::npos)
        return {std::string(), p};
    return {p.substr(0, slash), p.substr(slash + 1)};
}

} // namespace

struct tree_writer::impl {
    write_options opt;
    std::shared_ptr<unique_fd> root;
    ring io;
    write_stats stats;
    std::error_code err;
    std::string detail;

    std::vector<wreq> reqs;
    std::vector<unsigned> free_reqs;
    std::vector<completion> done;
    bool aborting = false;
    std::vector<std::string> removed; // files created here and removed unfinished

    std::unordered_map<std::uint64_t, std::unique_ptr<wfile>> files;
    std::deque<std::uint64_t> actionable;
    std::unordered_map<std::string, unsigned> unopened; // paths whose create is in flight
    std::uint64_t next_id = 1;
    wfile* current = nullptr;
    wchunk tail;
    std::size_t buffered = 0; // content bytes held in chunks (tail, queued, in flight)
    std::size_t chunk_bytes = max_chunk_bytes;
    std::size_t max_active = 256;

    std::unordered_map<std::string, std::shared_ptr<unique_fd>> dir_cache;
    std::unordered_map<std::string, dir_meta> dirs;

    impl(write_options o, unique_fd root_fd, ring r)
        : opt(std::move(o)), root(std::make_shared<unique_fd>(std::move(root_fd))),
          io(std::move(r)) {
        reqs.resize(io.capacity());
        for (unsigned i = io.capacity(); i-- > 0;)
            free_reqs.push_back(i);
        if (opt.window_bytes < 4 * 4096)
            opt.window_bytes = 4 * 4096;
        chunk_bytes = std::clamp<std::size_t>(opt.window_bytes / 4, 4096, max_chunk_bytes);
        max_active = std::max<std::size_t>(16, 4 * std::size_t{io.capacity()});
        stats.used_io_uring = io.uses_io_uring();
    }

    ~impl() { drain(); }

    // Waits for the I/O in flight without starting more.
    void drain() {
        aborting = true;
        while (io.in_flight() > 0) {
            done.clear();
            if (!io.submit_and_wait(1, done))
                break;
            for (const completion& c : done)
                dispatch(c);
        }
    }

    // A file this writer created and will not finish: it goes, so that nothing on disk looks
    // like a complete copy that is not one. The name is never followed (unlinkat without flags
    // removes a symlink, not its target).
    // Only the file this writer made: another writer (a retried copy into the same tree) may
    // have replaced the name since, and its file stays.
    void remove_unfinished(wfile& f) {
        if (f.removed || !f.opened)
            return;
        f.removed = true;
        if (f.fd.valid()) {
            struct stat ours {}, now {};
            if (::fstat(f.fd.get(), &ours) == 0 &&
                (::fstatat(f.parent->get(), f.leaf.c_str(), &now, AT_SYMLINK_NOFOLLOW) != 0 ||
                 now.st_ino != ours.st_ino || now.st_dev != ours.st_dev))
                return;
        }
        if (::unlinkat(f.parent->get(), f.leaf.c_str(), 0) == 0)
            removed.push_back(f.path);
    }

    // Files whose content all arrived are written and closed as usual (bounded by the
    // window); the rest, and any whose write failed, are removed.
    std::vector<std::string> abandon() {
        current = nullptr; // never ended: removed below
        aborting = false;
        for (;;) {
            pump();
            if (io.in_flight() == 0)
                break;
            done.clear();
            if (!io.submit_and_wait(1, done)) {
                drain();
                break;
            }
            for (const completion& c : done)
                dispatch(c);
        }
        for (auto& [id, f] : files)
            remove_unfinished(*f);
        files.clear();
        return std::move(removed);
    }

    // ---- errors ----------------------------------------------------------------------------

    result<void> failure(errc e, std::string what) {
        if (!err) {
            err = make_error_code(e);
            detail = std::move(what);
        }
        return fail(err);
    }

    result<void> refuse(const std::string& path, const char* why) {
        return failure(errc::unsafe_path, "refusing entry '" + path + "': " + why);
    }

    result<void> io_error(const char* op, const std::string& path, int e) {
        return failure(errc::io_failed,
                       std::string(op) + " '" + path + "' failed: " + errno_text(e));
    }

    // ---- ring ------------------------------------------------------------------------------

    std::uint64_t take_req(wreq_kind k, std::uint64_t file_id) {
        PODPIPE_CHECK(!free_reqs.empty(), "tree_writer: request table exhausted");
        const unsigned slot = free_reqs.back();
        free_reqs.pop_back();
        reqs[slot].kind = k;
        reqs[slot].file_id = file_id;
        return slot;
    }

    void make_actionable(wfile& f) {
        if (!f.actionable) {
            f.actionable = true;
            actionable.push_back(f.id);
        }
    }

    void submit_write(wfile& f, wchunk c) {
        const std::uint64_t ud = take_req(wreq_kind::write, f.id);
        wreq& rq = reqs[ud];
        rq.chunk = std::move(c);
        ++f.writes_in_flight;
        io.write(ud, f.fd.get(), rq.chunk.data.get() + rq.chunk.done,
                 static_cast<unsigned>(rq.chunk.len - rq.chunk.done), rq.chunk.off + rq.chunk.done);
    }

    // Submits what `f` can do now; returns true when it still has work waiting for capacity.
    bool step(wfile& f) {
        if (!f.open_submitted) {
            if (io.full())
                return true;
            f.open_submitted = true;
            io.openat(take_req(wreq_kind::open, f.id), f.parent->get(), f.leaf.c_str(),
                      O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
            return false;
        }
        if (!f.opened)
            return false;
        while (!f.queued.empty()) {
            if (io.full())
                return true;
            wchunk c = std::move(f.queued.front());
            f.queued.pop_front();
            submit_write(f, std::move(c));
        }
        if (f.ended && f.writes_in_flight == 0 && !f.close_submitted) {
            if (io.full())
                return true;
            // No io_uring opcodes for these; plain syscalls on the open fd. chown first: it
            // clears set-id bits that fchmod then restores.
            if (opt.restore_owner && ::fchown(f.fd.get(), f.uid, f.gid) != 0)
                (void)io_error("chown", f.path, errno);
            if (::fchmod(f.fd.get(), f.mode) != 0)
                (void)io_error("chmod", f.path, errno);
            const timespec ts[2] = {to_ts(f.mtime_sec, f.mtime_nsec),
                                    to_ts(f.mtime_sec, f.mtime_nsec)};
            if (::futimens(f.fd.get(), ts) != 0)
                (void)io_error("set mtime of", f.path, errno);
            f.close_submitted = true;
            io.close(take_req(wreq_kind::close, f.id), f.fd.release());
        }
        return false;
    }

    void pump() {
        while (!actionable.empty() && !io.full()) {
            auto it = files.find(actionable.front());
            if (it == files.end()) {
                actionable.pop_front();
                continue;
            }
            wfile& f = *it->second;
            if (step(f))
                break;
            f.actionable = false;
            actionable.pop_front();
        }
    }

    void opened_or_failed(wfile& f) {
        auto u = unopened.find(f.path);
        if (u != unopened.end() && --u->second == 0)
            unopened.erase(u);
    }

    void drop_file(std::uint64_t id) {
        auto it = files.find(id);
        if (it == files.end())
            return;
        for (const wchunk& c : it->second->queued)
            buffered -= c.cap;
        if (current == it->second.get())
            current = nullptr;
        files.erase(it);
    }

    void dispatch(const completion& c) {
        wreq& rq = reqs[c.user_data];
        const wreq_kind kind = rq.kind;
        const std::uint64_t id = rq.file_id;
        wchunk chunk = std::move(rq.chunk);
        free_reqs.push_back(static_cast<unsigned>(c.user_data));
        auto fit = files.find(id);
        wfile* f = fit == files.end() ? nullptr : fit->second.get();
        switch (kind) {
        case wreq_kind::open:
            if (f == nullptr) {
                if (c.res >= 0)
                    ::close(c.res);
                return;
            }
            if (c.res >= 0) {
                opened_or_failed(*f);
                f->fd.reset(c.res);
                f->opened = true;
                if (!aborting)
                    make_actionable(*f);
                return;
            }
            if (c.res == -EEXIST && !f->retried && !aborting) {
                // Like tar: replace what is there (never following it), then create again.
                f->retried = true;
                if (auto r = remove_existing(*f->parent, f->leaf, f->path); !r) {
                    opened_or_failed(*f);
                    drop_file(id);
                    return;
                }
                f->open_submitted = false;
                make_actionable(*f);
                return;
            }
            opened_or_failed(*f);
            (void)io_error("create", f->path, -c.res);
            drop_file(id);
            return;
        case wreq_kind::write:
            if (f == nullptr) {
                buffered -= chunk.cap;
                return;
            }
            if (c.res < 0 || (c.res == 0 && chunk.len > chunk.done)) {
                --f->writes_in_flight;
                buffered -= chunk.cap;
                (void)io_error("write", f->path, c.res < 0 ? -c.res : EIO);
                remove_unfinished(*f);
                return;
            }
            chunk.done += static_cast<std::size_t>(c.res);
            --f->writes_in_flight;
            if (chunk.done < chunk.len && !aborting) {
                submit_write(*f, std::move(chunk)); // short write: requeue the rest
                return;
            }
            buffered -= chunk.cap;
            if (!aborting)
                make_actionable(*f);
            return;
        case wreq_kind::close:
            if (f != nullptr) {
                if (c.res < 0)
                    (void)io_error("close", f->path, -c.res);
                files.erase(fit);
            }
            return;
        }
    }

    result<void> wait_one() {
        done.clear();
        if (auto r = io.submit_and_wait(io.in_flight() > 0 ? 1 : 0, done); !r)
            return failure(errc::io_failed, "io_uring submit/wait failed");
        for (const completion& c : done)
            dispatch(c);
        pump();
        if (err)
            return fail(err);
        return {};
    }

    result<void> wait_until_created(const std::string& path) {
        while (unopened.count(path) != 0)
            PODPIPE_TRY(wait_one());
        return {};
    }

    result<void> wait_until_created_below(const std::string& dir) {
        const std::string prefix = dir + '/';
        const auto pending = [&] {
            return std::any_of(unopened.begin(), unopened.end(),
                               [&](const auto& u) { return u.first.starts_with(prefix); });
        };
        while (pending())
            PODPIPE_TRY(wait_one());
        return {};
    }

    // ---- path resolution -------------------------------------------------------------------

    result<void> resolve_failure(const std::string& entry, const std::string& dir, int e) {
        if (e == EXDEV || e == ELOOP)
            return refuse(entry, "path escapes the target directory");
        return io_error("open directory", dir, e);
    }

    // The directory `dir` (normalised, relative; "" = root) resolved beneath the root;
    // created (0755, with parents) when missing and `create`.
    result<std::shared_ptr<unique_fd>> resolve_dir(const std::string& dir, bool create,
                                                   const std::string& entry) {
        if (dir.empty())
            return root;
        if (auto it = dir_cache.find(dir); it != dir_cache.end())
            return it->second;
        const std::uint64_t flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC;
        int fd = sys_openat2(root->get(), dir.c_str(), flags, resolve_flags);
        if (fd < 0 && errno == ENOENT && create) {
            // Create the missing parents one component at a time, each resolved from the root.
            std::size_t pos = 0;
            unique_fd prev(::fcntl(root->get(), F_DUPFD_CLOEXEC, 0));
            for (;;) {
                const std::size_t slash = dir.find('/', pos);
                const std::string prefix = dir.substr(0, slash);
                const std::string comp =
                    dir.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
                int cfd = sys_openat2(root->get(), prefix.c_str(), flags, resolve_flags);
                if (cfd < 0 && errno == ENOENT) {
                    if (::mkdirat(prev.get(), comp.c_str(), 0755) != 0 && errno != EEXIST)
                        return fail(io_error("create directory", prefix, errno).error());
                    cfd = sys_openat2(root->get(), prefix.c_str(), flags, resolve_flags);
                }
                if (cfd < 0)
                    return fail(resolve_failure(entry, prefix, errno).error());
                prev.reset(cfd);
                if (slash == std::string::npos)
                    break;
                pos = slash + 1;
            }
            fd = prev.release();
        }
        if (fd < 0)
            return fail(resolve_failure(entry, dir, errno).error());
        if (dir_cache.size() >= dir_cache_limit)
            dir_cache.clear();
        auto p = std::make_shared<unique_fd>(fd);
        dir_cache.emplace(dir, p);
        return p;
    }

    // Removes whatever is at parent/leaf (a file, a symlink - never followed - or an empty
    // directory). Missing is fine.
    result<void> remove_existing(const unique_fd& parent, const std::string& leaf,
                                 const std::string& path) {
        if (::unlinkat(parent.get(), leaf.c_str(), 0) == 0 || errno == ENOENT)
            return {};
        if (errno != EISDIR && errno != EPERM)
            return io_error("remove existing", path, errno);
        // A directory: files being created in it must land first, or whether rmdir fails
        // (not empty) or their create does (no such directory) would depend on timing.
        PODPIPE_TRY(wait_until_created_below(path));
        if (::unlinkat(parent.get(), leaf.c_str(), AT_REMOVEDIR) != 0)
            return io_error("replace existing directory", path, errno);
        dir_cache.clear();
        dirs.erase(path);
        return {};
    }

    // ---- deletions -------------------------------------------------------------------------

    // Deletes parent/leaf: a file or symlink is unlinked, a directory emptied then removed
    // (io::detail::remove_at, the code remove_tree uses).
    result<void> delete_at(const unique_fd& parent, const std::string& leaf,
                           const std::string& path) {
        std::string why;
        if (auto r = detail::remove_at(parent.get(), leaf, path, &why); !r)
            return failure(errc::io_failed, std::move(why));
        return {};
    }

    result<void> remove(const std::string& raw) {
        if (err)
            return fail(err);
        if (current != nullptr)
            return failure(errc::bad_entry,
                           "deletion of '" + raw + "' inside entry '" + current->path + "'");
        const auto refuse_deletion = [&](const char* why) {
            return failure(errc::unsafe_path, "refusing to delete '" + raw + "': " + why);
        };
        auto norm = normalize_entry_path(raw);
        if (!norm)
            return refuse_deletion("not a path beneath the target directory");
        const std::string& path = *norm;
        if (path.empty())
            return refuse_deletion("names the target directory itself");
        const std::size_t slash = path.rfind('/');
        const std::string dir = slash == std::string::npos ? std::string() : path.substr(0, slash);
        const std::string leaf = slash == std::string::npos ? path : path.substr(slash + 1);
        PODPIPE_TRY(wait_until_created_below(path));
        // No symlink on the way, not even one that stays inside: what is deleted is exactly
        // the path the sender named in its own tree.
        unique_fd parent(dir.empty() ? ::fcntl(root->get(), F_DUPFD_CLOEXEC, 0)
                                     : sys_openat2(root->get(), dir.c_str(),
                                                   O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                                   resolve_flags | RESOLVE_NO_SYMLINKS));
        if (!parent) {
            if (errno == ENOENT || errno == ENOTDIR) {
                ++stats.deleted; // nothing there to delete
                return {};
            }
            if (errno == EXDEV || errno == ELOOP)
                return refuse_deletion("its path passes through a symlink");
            return io_error("open directory", dir, errno);
        }
        PODPIPE_TRY(delete_at(parent, leaf, path));
        dir_cache.clear();
        std::erase_if(dirs, [&](const auto& d) {
            return d.first == path || d.first.starts_with(path + '/');
        });
        ++stats.deleted;
        return {};
    }

    // ---- entries ---------------------------------------------------------------------------

    result<void> make_directory(const std::string& path, const file_entry& e) {
        auto [parent_path, leaf] = split_parent(path);
        auto parent = resolve_dir(parent_path, true, e.path);
        if (!parent)
            return fail(parent.error());
        PODPIPE_TRY(wait_until_created(path));
        if (::mkdirat((*parent)->get(), leaf.c_str(), 0700) != 0) {
            if (errno != EEXIST)
                return io_error("create directory", path, errno);
            struct stat st {};
            if (::fstatat((*parent)->get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0)
                return io_error("stat", path, errno);
            if (!S_ISDIR(st.st_mode)) {
                PODPIPE_TRY(remove_existing(**parent, leaf, path));
                dir_cache.clear();
                if (::mkdirat((*parent)->get(), leaf.c_str(), 0700) != 0)
                    return io_error("create directory", path, errno);
            }
        }
        dirs[path] = dir_meta{e.mode & 07777, e.uid, e.gid, e.mtime_sec, e.mtime_nsec};
        ++stats.directories;
        return {};
    }

    result<void> make_symlink(const std::string& path, const file_entry& e) {
        if (e.link_target.empty() || e.link_target.find('\0') != std::string::npos)
            return failure(errc::bad_entry, "entry '" + e.path + "': invalid symlink target");
        auto [parent_path, leaf] = split_parent(path);
        auto parent = resolve_dir(parent_path, true, e.path);
        if (!parent)
            return fail(parent.error());
        PODPIPE_TRY(wait_until_created(path));
        PODPIPE_TRY(remove_existing(**parent, leaf, path));
        // A cached directory reached through an older symlink must not outlive its change.
        dir_cache.clear();
        if (::symlinkat(e.link_target.c_str(), (*parent)->get(), leaf.c_str()) != 0)
            return io_error("create symlink", path, errno);
        if (opt.restore_owner &&
            ::fchownat((*parent)->get(), leaf.c_str(), e.uid, e.gid, AT_SYMLINK_NOFOLLOW) != 0)
            return io_error("chown", path, errno);
        const timespec ts[2] = {to_ts(e.mtime_sec, e.mtime_nsec), to_ts(e.mtime_sec, e.mtime_nsec)};
        if (::utimensat((*parent)->get(), leaf.c_str(), ts, AT_SYMLINK_NOFOLLOW) != 0)
            return io_error("set mtime of", path, errno);
        ++stats.symlinks;
        return {};
    }

    result<void> make_hardlink(const std::string& path, const file_entry& e) {
        auto target = normalize_entry_path(e.link_target);
        if (!target || target->empty())
            return refuse(e.path, ("hardlink target '" + e.link_target +
                                   "' escapes the target directory")
                                      .c_str());
        auto [tparent_path, tleaf] = split_parent(*target);
        auto tparent = resolve_dir(tparent_path, false, e.path);
        if (!tparent)
            return fail(tparent.error());
        auto [parent_path, leaf] = split_parent(path);
        auto parent = resolve_dir(parent_path, true, e.path);
        if (!parent)
            return fail(parent.error());
        PODPIPE_TRY(wait_until_created(*target));
        PODPIPE_TRY(wait_until_created(path));
        PODPIPE_TRY(remove_existing(**parent, leaf, path));
        // flags 0: a symlink target is linked itself, never followed.
        if (::linkat((*tparent)->get(), tleaf.c_str(), (*parent)->get(), leaf.c_str(), 0) != 0)
            return io_error(("hardlink to '" + *target + "' as").c_str(), path, errno);
        ++stats.hardlinks;
        return {};
    }

    // A file this writer is about to write: named, under its parent, with e's metadata.
    std::unique_ptr<wfile> new_file(const std::string& path, std::string leaf,
                                    std::shared_ptr<unique_fd> parent, const file_entry& e) {
        auto f = std::make_unique<wfile>();
        f->id = next_id++;
        f->path = path;
        f->leaf = std::move(leaf);
        f->parent = std::move(parent);
        f->mode = e.mode & 07777;
        f->uid = e.uid;
        f->gid = e.gid;
        f->mtime_sec = e.mtime_sec;
        f->mtime_nsec = e.mtime_nsec;
        f->size = e.size;
        return f;
    }

    result<void> start_file(const std::string& path, const file_entry& e) {
        auto [parent_path, leaf] = split_parent(path);
        auto parent = resolve_dir(parent_path, true, e.path);
        if (!parent)
            return fail(parent.error());
        while (files.size() >= max_active)
            PODPIPE_TRY(wait_one());
        PODPIPE_TRY(wait_until_created(path));
        auto f = new_file(path, std::move(leaf), std::move(*parent), e);
        ++unopened[path];
        current = f.get();
        make_actionable(*f);
        files.emplace(f->id, std::move(f));
        pump();
        ++stats.files;
        return {};
    }

    // e.path normalised ("" = the root itself), or the refusal (sticky) saying why not.
    result<std::string> entry_path(const file_entry& e) {
        auto norm = normalize_entry_path(e.path);
        if (norm)
            return std::move(*norm);
        if (e.path.empty())
            return fail(refuse(e.path, "empty name").error());
        if (e.path.find('\0') != std::string::npos)
            return fail(refuse(e.path, "name contains NUL").error());
        return fail(refuse(e.path, "path escapes the target directory").error());
    }

    result<void> begin_entry(const file_entry& e) {
        if (err)
            return fail(err);
        if (current != nullptr)
            return failure(errc::bad_entry,
                           "entry '" + e.path + "' begins before '" + current->path + "' ended");
        auto norm = entry_path(e);
        if (!norm)
            return fail(norm.error());
        const std::string& path = *norm;
        if (path.empty()) {
            if (e.kind == file_kind::directory) {
                // "./": the target itself; its mode and mtime are applied last, like tar's.
                dirs[""] = dir_meta{e.mode & 07777, e.uid, e.gid, e.mtime_sec, e.mtime_nsec};
                return {};
            }
            return refuse(e.path, "names the target directory itself");
        }
        ++stats.entries;
        switch (e.kind) {
        case file_kind::directory:
            return make_directory(path, e);
        case file_kind::symlink:
            return make_symlink(path, e);
        case file_kind::hardlink:
            return make_hardlink(path, e);
        case file_kind::regular:
            return start_file(path, e);
        case file_kind::other:
            ++stats.skipped;
            log::warn("skipping '" + e.path + "': unsupported entry type");
            return {};
        }
        return {};
    }

    void queue_tail() {
        if (tail.len == 0) {
            if (tail.data) {
                buffered -= tail.cap;
                tail = wchunk{};
            }
            return;
        }
        current->queued.push_back(std::move(tail));
        tail = wchunk{};
        make_actionable(*current);
        pump();
    }

    result<void> write(std::span<const std::byte> bytes) {
        if (err)
            return fail(err);
        if (current == nullptr)
            return failure(errc::bad_entry, "content outside a regular file entry");
        wfile& f = *current;
        if (bytes.size() > f.size - f.received)
            return failure(errc::bad_entry, "entry '" + f.path + "': more content than its size " +
                                                std::to_string(f.size));
        while (!bytes.empty()) {
            if (!tail.data) {
                const std::size_t cap = static_cast<std::size_t>(
                    std::min<std::uint64_t>(chunk_bytes, f.size - f.received));
                // Window full: let the disk catch up (io_uring-cp: reap, then queue more).
                while (buffered + cap > opt.window_bytes && io.in_flight() > 0)
                    PODPIPE_TRY(wait_one());
                tail.data = std::make_unique_for_overwrite<std::byte[]>(cap);
                tail.cap = cap;
                tail.len = 0;
                tail.off = f.received;
                buffered += cap;
            }
            const std::size_t n = std::min(bytes.size(), tail.cap - tail.len);
            std::memcpy(tail.data.get() + tail.len, bytes.data(), n);
            tail.len += n;
            f.received += n;
            stats.content_bytes += n;
            bytes = bytes.subspan(n);
            if (tail.len == tail.cap)
                queue_tail();
        }
        return err ? result<void>(fail(err)) : result<void>();
    }

    result<void> end_entry() {
        if (err)
            return fail(err);
        if (current == nullptr)
            return {};
        wfile& f = *current;
        if (f.received != f.size)
            return failure(errc::bad_entry, "entry '" + f.path + "': got " +
                                                std::to_string(f.received) + " of " +
                                                std::to_string(f.size) + " content bytes");
        queue_tail();
        f.ended = true;
        make_actionable(f);
        current = nullptr;
        pump();
        return {};
    }

    // ---- resume ----------------------------------------------------------------------------

    // True while something given to this writer is not yet on disk: a create, write or close
    // in flight or queued, a file not yet closed. The current file only needs to be open with
    // no content waiting (it stays open for more).
    bool unsynced() const {
        if (io.in_flight() > 0)
            return true;
        return std::any_of(files.begin(), files.end(), [&](const auto& kv) {
            const wfile& f = *kv.second;
            if (f.removed) // its write failed: the error is sticky
                return false;
            if (&f != current) // ended, not closed yet
                return true;
            return !f.opened || !f.queued.empty() || f.writes_in_flight > 0;
        });
    }

    result<void> sync() {
        if (err)
            return fail(err);
        if (current != nullptr)
            queue_tail(); // the partial chunk goes now; the next write() starts another
        while (unsynced()) {
            const bool idle = io.in_flight() == 0;
            PODPIPE_TRY(wait_one());
            PODPIPE_CHECK(!(idle && io.in_flight() == 0 && unsynced()),
                          "tree_writer: sync() found files without pending work");
        }
        return err ? result<void>(fail(err)) : result<void>();
    }

    // The directory `dir` of an entry that an earlier writer made: resolved beneath the root
    // like begin_entry's parents, never created. Missing is bad_entry.
    result<std::shared_ptr<unique_fd>> existing_dir(const std::string& dir,
                                                    const std::string& entry) {
        if (dir.empty())
            return root;
        if (auto it = dir_cache.find(dir); it != dir_cache.end())
            return it->second;
        const int fd = sys_openat2(root->get(), dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC,
                                   resolve_flags);
        if (fd < 0) {
            if (errno == ENOENT || errno == ENOTDIR)
                return fail(failure(errc::bad_entry, "cannot resume entry '" + entry +
                                                         "': its directory '" + dir +
                                                         "' is missing")
                                .error());
            return fail(resolve_failure(entry, dir, errno).error());
        }
        if (dir_cache.size() >= dir_cache_limit)
            dir_cache.clear();
        auto p = std::make_shared<unique_fd>(fd);
        dir_cache.emplace(dir, p);
        return p;
    }

    result<void> cannot_resume(const file_entry& e, const std::string& why) {
        return failure(errc::bad_entry, "cannot resume entry '" + e.path + "': " + why);
    }

    // What is at parent/leaf, never followed; a symlink is refused (unsafe_path), a missing
    // name is bad_entry.
    result<struct stat> existing_leaf(const unique_fd& parent, const std::string& leaf,
                                      const file_entry& e) {
        struct stat st {};
        if (::fstatat(parent.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                return fail(cannot_resume(e, "it is missing").error());
            return fail(io_error("stat", e.path, errno).error());
        }
        if (S_ISLNK(st.st_mode))
            return fail(refuse(e.path, "a symlink is where the unfinished entry was").error());
        return st;
    }

    // The checks resume_file and adopt_directory share: no error so far, no entry open, the
    // kind they take over; then the entry's normalised path.
    result<std::string> taken_over_path(const file_entry& e, file_kind kind, const char* verb,
                                        const char* kind_name) {
        if (err)
            return fail(err);
        if (current != nullptr)
            return fail(failure(errc::bad_entry, "entry '" + e.path + "' " + verb +
                                                     " before '" + current->path + "' ended")
                            .error());
        if (e.kind != kind)
            return fail(cannot_resume(e, std::string("not a ") + kind_name + " entry").error());
        return entry_path(e);
    }

    result<void> resume_file(const file_entry& e, std::uint64_t offset) {
        auto norm = taken_over_path(e, file_kind::regular, "resumes", "regular file");
        if (!norm)
            return fail(norm.error());
        const std::string path = std::move(*norm);
        if (path.empty())
            return refuse(e.path, "names the target directory itself");
        if (offset > e.size)
            return cannot_resume(e, "offset " + std::to_string(offset) + " is past its size " +
                                        std::to_string(e.size));
        auto [parent_path, leaf] = split_parent(path);
        auto parent = existing_dir(parent_path, e.path);
        if (!parent)
            return fail(parent.error());
        while (files.size() >= max_active)
            PODPIPE_TRY(wait_one());
        PODPIPE_TRY(wait_until_created(path));
        auto before = existing_leaf(**parent, leaf, e);
        if (!before)
            return fail(before.error());
        if (!S_ISREG(before->st_mode))
            return cannot_resume(e, S_ISDIR(before->st_mode) ? "a directory is there"
                                                             : "not a regular file there");
        // O_NONBLOCK: a FIFO swapped in since the stat must not block the open; cleared after.
        unique_fd fd(::openat((*parent)->get(), leaf.c_str(),
                              O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
        if (!fd) {
            if (errno == ELOOP)
                return refuse(e.path, "a symlink is where the unfinished entry was");
            if (errno == ENOENT)
                return cannot_resume(e, "it is missing");
            if (errno == EISDIR || errno == ENXIO)
                return cannot_resume(e, "not a regular file there");
            return io_error("open", path, errno);
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0)
            return io_error("stat", path, errno);
        if (!S_ISREG(st.st_mode))
            return cannot_resume(e, "not a regular file there");
        // Another name for the same inode (perhaps outside the target) would see the writes.
        if (st.st_nlink != 1)
            return cannot_resume(e, "the file has other hard links");
        if (static_cast<std::uint64_t>(st.st_size) < offset)
            return cannot_resume(e, "it has " + std::to_string(st.st_size) +
                                        " bytes, fewer than the " + std::to_string(offset) +
                                        " to resume from");
        if (::ftruncate(fd.get(), static_cast<off_t>(offset)) != 0)
            return io_error("truncate", path, errno);
        const int fl = ::fcntl(fd.get(), F_GETFL);
        if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0)
            return io_error("fcntl", path, errno);
        auto f = new_file(path, std::move(leaf), std::move(*parent), e);
        f->received = offset;
        f->fd = std::move(fd);
        f->open_submitted = f->opened = true; // created by the earlier writer, opened here
        current = f.get();
        files.emplace(f->id, std::move(f));
        ++stats.entries;
        ++stats.files;
        return {};
    }

    result<void> adopt_directory(const file_entry& e) {
        auto norm = taken_over_path(e, file_kind::directory, "adopted", "directory");
        if (!norm)
            return fail(norm.error());
        const std::string& path = *norm;
        const dir_meta meta{e.mode & 07777, e.uid, e.gid, e.mtime_sec, e.mtime_nsec};
        if (path.empty()) {
            dirs[""] = meta; // the target itself, as begin_entry("./")
            return {};
        }
        auto [parent_path, leaf] = split_parent(path);
        auto parent = existing_dir(parent_path, e.path);
        if (!parent)
            return fail(parent.error());
        auto st = existing_leaf(**parent, leaf, e);
        if (!st)
            return fail(st.error());
        if (!S_ISDIR(st->st_mode))
            return cannot_resume(e, "not a directory there");
        dirs[path] = meta;
        ++stats.entries;
        ++stats.directories;
        return {};
    }

    // Waits for the I/O in flight, starts no more, and keeps every file as it is.
    std::vector<std::string> suspend() {
        current = nullptr;
        drain();
        std::vector<std::string> left;
        for (const auto& [id, f] : files)
            if (f->opened && !f->removed)
                left.push_back(f->path);
        std::sort(left.begin(), left.end());
        files.clear(); // closes their descriptors; nothing else changes on disk
        return left;
    }

    result<write_stats> finish() {
        if (err)
            return fail(err);
        if (current != nullptr)
            return fail(failure(errc::bad_entry,
                                "finish() while entry '" + current->path + "' is open")
                            .error());
        while (!files.empty() || io.in_flight() > 0) {
            if (auto r = wait_one(); !r)
                return fail(r.error());
            if (io.in_flight() == 0 && !files.empty() && actionable.empty())
                PODPIPE_CHECK(false, "tree_writer: files left without pending work");
        }
        if (err)
            return fail(err);
        std::vector<std::pair<std::string, dir_meta>> order(dirs.begin(), dirs.end());
        std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
            const auto da = std::count(a.first.begin(), a.first.end(), '/');
            const auto db = std::count(b.first.begin(), b.first.end(), '/');
            return da != db ? da > db : a.first > b.first;
        });
        dir_cache.clear();
        for (const auto& [path, m] : order) {
            // Never follow: the name may have become a symlink since (then it is left alone).
            unique_fd fd(path.empty()
                             ? ::fcntl(root->get(), F_DUPFD_CLOEXEC, 0)
                             : sys_openat2(root->get(), path.c_str(),
                                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC,
                                           resolve_flags));
            if (!fd)
                continue;
            // The target, or a directory that existed before, may belong to someone else (a
            // volume's root owned by root, a workspace directory made by an init container,
            // written by an unprivileged user): its metadata is then left as it is (EPERM
            // cannot happen on a directory this writer created: it owns those).
            const bool target = path.empty();
            auto not_ours = [&](int e) {
                return e == EPERM || (target && (e == EACCES || e == EROFS));
            };
            if (opt.restore_owner && ::fchown(fd.get(), m.uid, m.gid) != 0 && !not_ours(errno))
                return fail(io_error("chown", path, errno).error());
            if (::fchmod(fd.get(), m.mode) != 0) {
                if (not_ours(errno))
                    continue;
                return fail(io_error("chmod", path, errno).error());
            }
            const timespec ts[2] = {to_ts(m.mtime_sec, m.mtime_nsec),
                                    to_ts(m.mtime_sec, m.mtime_nsec)};
            if (::futimens(fd.get(), ts) != 0 && !not_ours(errno))
                return fail(io_error("set mtime of", path, errno).error());
        }
        return stats;
    }
};

tree_writer::tree_writer(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
tree_writer::~tree_writer() = default;

result<std::unique_ptr<tree_writer>> tree_writer::open(const std::string& root,
                                                       const write_options& opt,
                                                       std::string* error_detail) {
    auto set_detail = [&](std::string s) {
        if (error_detail != nullptr)
            *error_detail = std::move(s);
    };
    if (root.empty()) {
        set_detail("empty target directory name");
        return fail(make_error_code(errc::io_failed));
    }
    // mkdir -p
    for (std::size_t pos = 1; pos <= root.size(); ++pos) {
        if (pos != root.size() && root[pos] != '/')
            continue;
        const std::string prefix = root.substr(0, pos);
        if (::mkdir(prefix.c_str(), 0755) != 0 && errno != EEXIST) {
            set_detail("cannot create directory '" + prefix + "': " + errno_text(errno));
            return fail(make_error_code(errc::io_failed));
        }
    }
    unique_fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd) {
        const int e = errno;
        set_detail("cannot open target directory '" + root + "': " + errno_text(e));
        return fail(make_error_code(e == ENOTDIR ? errc::not_a_directory : errc::io_failed));
    }
    const unsigned depth = opt.queue_depth == 0 ? 1 : opt.queue_depth;
    struct statfs fs {};
    const bool tmpfs = ::fstatfs(fd.get(), &fs) == 0 && fs.f_type == TMPFS_MAGIC;
    auto r = ring::create(depth, opt.use_io_uring && (opt.io_uring_on_tmpfs || !tmpfs));
    if (!r)
        r = ring::create(depth, false);
    r->fail_op_for_test(opt.fail_ring_op_for_test);
    return std::unique_ptr<tree_writer>(
        new tree_writer(std::make_unique<impl>(opt, std::move(fd), std::move(*r))));
}

result<void> tree_writer::begin_entry(const file_entry& e) {
    const auto t0 = steady::now();
    auto r = impl_->begin_entry(e);
    impl_->stats.write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

result<void> tree_writer::remove(const std::string& path) {
    const auto t0 = steady::now();
    auto r = impl_->remove(path);
    impl_->stats.write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

result<void> tree_writer::write(std::span<const std::byte> bytes) {
    const auto t0 = steady::now();
    auto r = impl_->write(bytes);
    impl_->stats.write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

result<void> tree_writer::end_entry() {
    const auto t0 = steady::now();
    auto r = impl_->end_entry();
    impl_->stats.write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

result<write_stats> tree_writer::finish() {
    const auto t0 = steady::now();
    auto r = impl_->finish();
    if (!r)
        return r;
    r->write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

result<void> tree_writer::sync() {
    const auto t0 = steady::now();
    auto r = impl_->sync();
    impl_->stats.write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

result<void> tree_writer::resume_file(const file_entry& e, std::uint64_t offset) {
    const auto t0 = steady::now();
    auto r = impl_->resume_file(e, offset);
    impl_->stats.write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

result<void> tree_writer::adopt_directory(const file_entry& e) {
    const auto t0 = steady::now();
    auto r = impl_->adopt_directory(e);
    impl_->stats.write_ns += static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
    return r;
}

std::vector<std::string> tree_writer::suspend() { return impl_->suspend(); }

std::string tree_writer::last_error_detail() const { return impl_->detail; }
std::vector<std::string> tree_writer::abandon() { return impl_->abandon(); }

} // namespace podpipe::io
