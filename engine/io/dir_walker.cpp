#include "engine/io/dir_walker.hpp"

#include "engine/common/unique_fd.hpp"
#include "engine/io/paths.hpp"
#include "engine/io/ring.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace podpipe::io::detail {
namespace {

constexpr std::size_t dirent_buffer_bytes = 64 * 1024;
constexpr unsigned statx_mask = STATX_TYPE | STATX_MODE | STATX_NLINK | STATX_UID | STATX_GID |
                                STATX_MTIME | STATX_INO | STATX_SIZE;

std::string errno_text(int e) { return std::strerror(e); }

std::string join(const std::string& dir, std::string_view name) {
    if (dir.empty())
        return std::string(name);
    std::string p;
    p.reserve(dir.size() + 1 + name.size());
    p.append(dir).push_back('/');
    p.append(name);
    return p;
}

file_kind kind_of(std::uint32_t type_bits) {
    switch (type_bits) {
    case S_IFREG:
        return file_kind::regular;
    case S_IFDIR:
        return file_kind::directory;
    case S_IFLNK:
        return file_kind::symlink;
    default:
        return file_kind::other;
    }
}

bool read_link(int dirfd, const char* name, std::size_t size_hint, std::string& out) {
    std::size_t cap = size_hint + 1 < 256 ? 256 : size_hint + 1;
    for (;;) {
        out.resize(cap);
        const ssize_t n = ::readlinkat(dirfd, name, out.data(), cap);
        if (n < 0)
            return false;
        if (static_cast<std::size_t>(n) < cap) {
            out.resize(static_cast<std::size_t>(n));
            return true;
        }
        cap *= 2;
    }
}

} // namespace

dir_walker::dir_walker(int root_fd, walker_options opt) : root_fd_(root_fd), opt_(std::move(opt)) {
    pending_.emplace(std::string(), std::string());
    const unsigned n = opt_.threads == 0 ? 1 : opt_.threads;
    threads_.reserve(n);
    for (unsigned i = 0; i < n; ++i)
        threads_.emplace_back([this] { run(); });
}

dir_walker::~dir_walker() {
    {
        std::lock_guard lock(mu_);
        shutdown_ = true;
    }
    work_cv_.notify_all();
    ready_cv_.notify_all();
    threads_.clear(); // joins
}

std::unique_ptr<listing> dir_walker::take(const std::string& rel, bool wait, std::stop_token stop) {
    std::unique_lock lock(mu_);
    // Whatever the consumer asks for next is listable even over budget: that is what keeps the
    // bounded read-ahead deadlock-free.
    std::string key = dfs_key(rel);
    if (!have_wanted_ || wanted_key_ != key) {
        wanted_key_ = std::move(key);
        have_wanted_ = true;
        work_cv_.notify_all();
    }
    auto it = ready_.find(rel);
    if (it == ready_.end()) {
        if (!wait)
            return nullptr;
        ready_cv_.wait(lock, stop, [&] { return ready_.count(rel) != 0; });
        it = ready_.find(rel);
        if (it == ready_.end())
            return nullptr;
    }
    std::unique_ptr<listing> l = std::move(it->second);
    ready_.erase(it);
    ready_entries_ -= l->children.size();
    lock.unlock();
    work_cv_.notify_all();
    return l;
}

void dir_walker::run() {
    auto r = ring::create(opt_.queue_depth, opt_.use_io_uring);
    if (!r)
        r = ring::create(opt_.queue_depth, false); // the fallback cannot fail
    ring& walk_ring = *r;
    for (;;) {
        std::string rel;
        {
            std::unique_lock lock(mu_);
            std::map<std::string, std::string>::iterator job;
            work_cv_.wait(lock, [&] {
                if (shutdown_)
                    return true;
                if (pending_.empty())
                    return false;
                if (ready_entries_ < opt_.ahead_entries) {
                    job = pending_.begin();
                    return true;
                }
                if (have_wanted_) {
                    job = pending_.find(wanted_key_);
                    return job != pending_.end();
                }
                return false;
            });
            if (shutdown_)
                return;
            rel = std::move(job->second);
            pending_.erase(job);
        }
        const auto t0 = std::chrono::steady_clock::now();
        std::unique_ptr<listing> l = list(rel, walk_ring);
        walk_ns_ += static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                   std::chrono::steady_clock::now() - t0)
                                                   .count());
        {
            std::lock_guard lock(mu_);
            for (const child& c : l->children) {
                if (c.kind == file_kind::directory) {
                    std::string p = join(rel, c.name);
                    if (!lists(p))
                        continue; // a selection that does not reach below it
                    std::string k = dfs_key(p);
                    pending_.emplace(std::move(k), std::move(p));
                }
            }
            ready_entries_ += l->children.size();
            ready_.emplace(std::move(rel), std::move(l));
        }
        ready_cv_.notify_all();
        work_cv_.notify_all();
    }
}

std::unique_ptr<listing> dir_walker::list(const std::string& rel, ring& r) {
    auto l = std::make_unique<listing>();
    const char* shown = rel.empty() ? "." : rel.c_str();
    unique_fd dfd(::openat(root_fd_, rel.empty() ? "." : rel.c_str(),
                           O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!dfd) {
        const int e = errno;
        if (e == ENOENT)
            l->warnings.push_back("directory '" + std::string(shown) +
                                  "' vanished before it could be listed; skipped its contents");
        else
            l->warnings.push_back("cannot open directory '" + std::string(shown) +
                                  "': " + errno_text(e) + "; skipped its contents");
        l->skipped = 1;
        return l;
    }

    // 1. Names (getdents64 loop), excludes applied.
    std::vector<std::string> names;
    {
        auto buf = std::make_unique<std::byte[]>(dirent_buffer_bytes);
        for (;;) {
            const ssize_t n = ::getdents64(dfd.get(), buf.get(), dirent_buffer_bytes);
            if (n == 0)
                break;
            if (n < 0) {
                l->warnings.push_back("cannot list directory '" + std::string(shown) +
                                      "': " + errno_text(errno) + "; listing is incomplete");
                break;
            }
            for (ssize_t off = 0; off < n;) {
                const auto* d = reinterpret_cast<const struct dirent64*>(buf.get() + off);
                off += d->d_reclen;
                const char* nm = d->d_name;
                if (nm[0] == '.' && (nm[1] == '\0' || (nm[1] == '.' && nm[2] == '\0')))
                    continue;
                if (!opt_.excludes.empty() && is_excluded(opt_.excludes, join(rel, nm)))
                    continue;
                if (opt_.selection && !opt_.selection->keeps(join(rel, nm)))
                    continue;
                names.emplace_back(nm);
            }
        }
    }
    std::sort(names.begin(), names.end());

    // 2. statx every name through the ring, queue_depth in flight.
    std::vector<struct ::statx> stx(names.size());
    std::vector<int> res(names.size(), 0);
    std::vector<completion> done;
    std::size_t next = 0, completed = 0;
    while (completed < names.size()) {
        while (next < names.size() && !r.full()) {
            r.statx(next, dfd.get(), names[next].c_str(),
                    AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT | AT_STATX_SYNC_AS_STAT, statx_mask,
                    &stx[next]);
            ++next;
        }
        done.clear();
        if (auto s = r.submit_and_wait(1, done); !s)
            break; // the ring broke: finish below with plain syscalls so the walk stays complete

        for (const completion& c : done) {
            res[c.user_data] = c.res < 0 ? c.res : 1;
            ++completed;
        }
    }
    if (completed < names.size()) {
        // Only after a ring failure: wait out what is in flight, then stat synchronously.
        while (r.in_flight() > 0) {
            done.clear();
            if (!r.submit_and_wait(1, done))
                break;
            for (const completion& c : done)
                res[c.user_data] = c.res < 0 ? c.res : 1;
        }
        for (std::size_t i = 0; i < names.size(); ++i)
            if (res[i] == 0)
                res[i] = ::statx(dfd.get(), names[i].c_str(), AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                                 statx_mask, &stx[i]) == 0
                             ? 1
                             : -errno;
    }

    // 3. Children (names are sorted already).
    l->children.reserve(names.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (res[i] < 0) {
            if (res[i] != -ENOENT) // gone between getdents and statx: nothing to report
                l->warnings.push_back("cannot stat '" + join(rel, names[i]) +
                                      "': " + errno_text(-res[i]) + "; skipped");
            continue;
        }
        const struct ::statx& s = stx[i];
        child c;
        c.type_bits = s.stx_mode & S_IFMT;
        c.kind = kind_of(c.type_bits);
        c.mode = s.stx_mode & 07777;
        c.size = c.kind == file_kind::regular ? s.stx_size : 0;
        c.mtime_sec = s.stx_mtime.tv_sec;
        c.mtime_nsec = s.stx_mtime.tv_nsec;
        c.uid = s.stx_uid;
        c.gid = s.stx_gid;
        c.nlink = s.stx_nlink;
        c.dev = makedev(s.stx_dev_major, s.stx_dev_minor);
        c.ino = s.stx_ino;
        if (c.kind == file_kind::symlink &&
            !read_link(dfd.get(), names[i].c_str(), s.stx_size, c.link_target)) {
            const int e = errno;
            if (e != ENOENT)
                l->warnings.push_back("cannot read symlink '" + join(rel, names[i]) +
                                      "': " + errno_text(e) + "; skipped");
            continue;
        }
        c.name = std::move(names[i]);
        l->children.push_back(std::move(c));
    }
    return l;
}

} // namespace podpipe::io::detail
