#include "engine/io/tree_reader.hpp"

#include "engine/common/log.hpp"
#include "engine/common/unique_fd.hpp"
#include "engine/io/dir_walker.hpp"
#include "engine/io/error.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <utility>

namespace podpipe::io {
namespace {

using steady = std::chrono::steady_clock;

std::uint64_t ns_since(steady::time_point t0) {
    return static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count());
}

constexpr int read_open_flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK;
// Slack read past a small file's statx size, to notice (and keep) modest growth.
constexpr std::size_t small_slack_bytes = 4096;
constexpr unsigned large_reads_in_flight = 2;
constexpr std::size_t max_read_bytes = 1u << 30;

const char* type_name(std::uint32_t type_bits) {
    switch (type_bits) {
    case S_IFSOCK:
        return "socket";
    case S_IFIFO:
        return "fifo";
    case S_IFCHR:
        return "character device";
    case S_IFBLK:
        return "block device";
    default:
        return "file of unknown type";
    }
}

// The snapshot's view of a listed child (sockets, fifos and devices are not part of it).
void add_to_snapshot(const std::string& path, const detail::child& c,
                     std::vector<walked_entry>& out) {
    if (c.kind != file_kind::regular && c.kind != file_kind::directory &&
        c.kind != file_kind::symlink)
        return;
    out.push_back(walked_entry{path, c.kind, c.mode, c.kind == file_kind::regular ? c.size : 0,
                               c.mtime_sec, c.mtime_nsec, c.dev, c.ino, c.link_target});
}

struct item {
    file_entry e;
    std::uint32_t type_bits = 0;
    std::uint32_t nlink = 0;
    std::uint64_t dev = 0, ino = 0;
    bool small = false;          // regular, read whole
    bool link_candidate = false; // (dev, ino) already seen earlier in the archive
    enum class state { idle, opening, reading, done, failed } st = state::idle;
    unique_fd fd;
    std::unique_ptr<std::byte[]> buf;
    std::size_t cap = 0, got = 0, reserved = 0;
    int err = 0;
};

enum class req_kind : std::uint8_t { small_open, small_read, close, large_open, large_statx, large_read };

struct req {
    req_kind kind = req_kind::close;
    item* it = nullptr;
    unsigned chunk = 0;
};

struct large_chunk {
    std::byte* buf = nullptr;
    std::uint64_t off = 0;
    std::size_t len = 0, got = 0;
    bool done = false;
};

struct large_state {
    bool open_done = false, statx_done = false;
    int open_res = 0, statx_res = 0;
    struct ::statx stx {};
    bool eof = false;
    int read_err = 0;
    std::uint64_t read_bytes = 0;
    std::deque<large_chunk> chunks;
    unsigned next_buffer = 0;
    unique_fd fd;
};

struct frame {
    std::string path;
    std::unique_ptr<detail::listing> l;
    std::size_t idx = 0;
};

class reader {
public:
    reader(int root_fd, const read_options& opt, tree_consumer& consumer, std::stop_token stop,
           ring r)
        : root_fd_(root_fd), opt_(opt), consumer_(consumer), stop_(std::move(stop)),
          ring_(std::move(r)), walker_(root_fd, walker_opts(opt)) {
        reqs_.resize(ring_.capacity());
        for (unsigned i = ring_.capacity(); i-- > 0;)
            free_reqs_.push_back(i);
        const std::size_t large_bytes = large_reads_in_flight * large_read_bytes();
        small_budget_ = opt_.window_bytes > 2 * large_bytes ? opt_.window_bytes - large_bytes
                                                             : opt_.window_bytes / 2;
        max_lookahead_ = std::max<std::size_t>(256, 4 * std::size_t{ring_.capacity()});
        // Keep two slots for the head's large-file reads once the ring is big enough.
        small_slot_reserve_ = ring_.capacity() >= 8 ? large_reads_in_flight : 0;
        stack_.push_back(frame{});
        stats_.used_io_uring = ring_.uses_io_uring();
    }

    ~reader() { drain(); }

    result<read_stats> run(std::string* detail) {
        auto r = loop();
        drain();
        stats_.walk_ns = walker_.walk_ns();
        if (!r) {
            if (detail != nullptr)
                *detail = std::move(detail_);
            return fail(r.error());
        }
        return stats_;
    }

private:
    static detail::walker_options walker_opts(const read_options& o) {
        detail::walker_options w;
        w.threads = o.walk_threads == 0 ? 1 : o.walk_threads;
        w.queue_depth = o.queue_depth == 0 ? 1 : o.queue_depth;
        w.ahead_entries = o.walk_ahead_entries == 0 ? 1 : o.walk_ahead_entries;
        w.use_io_uring = o.use_io_uring;
        w.excludes = o.excludes;
        w.selection = o.selection;
        return w;
    }

    std::size_t large_read_bytes() const {
        return std::clamp<std::size_t>(opt_.large_read_bytes, 4096, max_read_bytes);
    }

    // ---- warnings and emission ------------------------------------------------------------

    void warn(const std::string& line) {
        ++stats_.warnings;
        log::warn(line);
    }

    // A warning about an entry that is not sent as it is on disk (read_stats::problems).
    void problem(const std::string& line) {
        warn(line);
        stats_.problems.add(line);
    }

    result<void> emit_entry(const file_entry& e) {
        const auto t0 = steady::now();
        auto r = consumer_.on_entry(e);
        stats_.consumer_ns += ns_since(t0);
        if (!r) {
            detail_ = "consumer failed on entry '" + e.path + "': " + r.error().message();
            return r;
        }
        ++stats_.entries;
        switch (e.kind) {
        case file_kind::regular:
            ++stats_.files;
            break;
        case file_kind::directory:
            ++stats_.directories;
            break;
        case file_kind::symlink:
            ++stats_.symlinks;
            break;
        case file_kind::hardlink:
            ++stats_.hardlinks;
            break;
        case file_kind::other:
            break;
        }
        return {};
    }

    result<void> emit_data(std::span<const std::byte> bytes, const std::string& path) {
        if (bytes.empty())
            return {};
        const auto t0 = steady::now();
        auto r = consumer_.on_data(bytes);
        stats_.consumer_ns += ns_since(t0);
        if (!r) {
            detail_ = "consumer failed on data of '" + path + "': " + r.error().message();
            return r;
        }
        stats_.content_bytes += bytes.size();
        return {};
    }

    void report_open_failure(const item& it, int err) {
        ++stats_.skipped;
        if (err == ENOENT) {
            ++stats_.vanished;
            problem("file '" + it.e.path + "' vanished before it could be read; skipped");
        } else {
            ++stats_.unreadable;
            problem("cannot read '" + it.e.path + "': " + std::strerror(err) + "; skipped");
        }
    }

    // ---- ring plumbing ---------------------------------------------------------------------

    std::uint64_t take_req(req_kind k, item* it, unsigned chunk = 0) {
        PODPIPE_CHECK(!free_reqs_.empty(), "tree_reader: request table exhausted");
        const unsigned slot = free_reqs_.back();
        free_reqs_.pop_back();
        reqs_[slot] = req{k, it, chunk};
        return slot;
    }

    result<void> wait_and_dispatch(unsigned min_complete) {
        done_.clear();
        const auto t0 = steady::now();
        auto r = ring_.submit_and_wait(min_complete, done_);
        stats_.read_ns += ns_since(t0);
        if (!r) {
            detail_ = "io_uring submit/wait failed";
            return r;
        }
        for (const completion& c : done_)
            dispatch(c);
        return {};
    }

    // Each completion queues at most one follow-up, so capacity freed by the completion is
    // always enough.
    void dispatch(const completion& c) {
        const req rq = reqs_[c.user_data];
        free_reqs_.push_back(static_cast<unsigned>(c.user_data));
        switch (rq.kind) {
        case req_kind::close:
            return;
        case req_kind::small_open: {
            item& it = *rq.it;
            if (c.res < 0) {
                it.st = item::state::failed;
                it.err = -c.res;
                return;
            }
            it.fd.reset(c.res);
            if (aborting_) {
                it.st = item::state::failed;
                return;
            }
            it.buf = take_buffer(it.reserved);
            it.st = item::state::reading;
            ring_.read(take_req(req_kind::small_read, &it), it.fd.get(), it.buf.get(),
                       static_cast<unsigned>(it.cap), 0);
            return;
        }
        case req_kind::small_read: {
            item& it = *rq.it;
            if (c.res < 0) {
                it.st = item::state::failed;
                it.err = -c.res;
            } else {
                // A short read of a regular file is its end: no follow-up read.
                it.got = static_cast<std::size_t>(c.res);
                it.st = item::state::done;
            }
            if (!aborting_)
                ring_.close(take_req(req_kind::close, nullptr), it.fd.release());
            return;
        }
        case req_kind::large_open:
            large_.open_done = true;
            large_.open_res = c.res;
            if (c.res >= 0)
                large_.fd.reset(c.res);
            return;
        case req_kind::large_statx:
            large_.statx_done = true;
            large_.statx_res = c.res;
            return;
        case req_kind::large_read: {
            // Chunks are identified by absolute offset order; rq.chunk is the chunk's offset
            // index within the deque at queue time, adjusted by popped count.
            large_chunk* ch = find_chunk(rq.chunk);
            if (ch == nullptr)
                return;
            if (c.res < 0) {
                if (large_.read_err == 0)
                    large_.read_err = -c.res;
                large_.eof = true;
                ch->done = true;
            } else if (c.res == 0) {
                large_.eof = true;
                ch->done = true;
            } else {
                ch->got += static_cast<std::size_t>(c.res);
                large_.read_bytes += static_cast<std::uint64_t>(c.res);
                if (ch->got < ch->len && !aborting_) {
                    // Short read: requeue the remainder (io_uring-cp).
                    ring_.read(take_req(req_kind::large_read, nullptr, rq.chunk),
                               large_.fd.get(), ch->buf + ch->got,
                               static_cast<unsigned>(ch->len - ch->got), ch->off + ch->got);
                } else {
                    ch->done = true;
                }
            }
            return;
        }
        }
    }

    // Large-file chunks carry a running sequence number so completions find them after
    // earlier chunks were delivered and popped.
    large_chunk* find_chunk(unsigned seq) {
        if (seq < chunk_seq_base_)
            return nullptr;
        const std::size_t i = seq - chunk_seq_base_;
        return i < large_.chunks.size() ? &large_.chunks[i] : nullptr;
    }

    void drain() {
        aborting_ = true;
        while (ring_.in_flight() > 0) {
            if (!wait_and_dispatch(1))
                break;
        }
    }

    result<void> wait_for_slot() {
        while (ring_.full())
            PODPIPE_TRY(wait_and_dispatch(1));
        return {};
    }

    // ---- small-file buffers -------------------------------------------------------------------
    //
    // Small files are read whole into a buffer each. Allocating and freeing one per file cost
    // ~5% of pack's CPU in malloc, page faults and page zeroing (perf record on the benchmark
    // tree): glibc returns the churned memory to the kernel and faults it back in. So buffers
    // come in size classes (a quarter of a power of two apart, so at most ~25% rounding) and
    // freed ones are kept for reuse while in-use plus cached bytes stay within small_budget_:
    // the read-ahead window's memory ceiling is unchanged.

    static std::size_t buffer_class_bytes(std::size_t n) {
        constexpr std::size_t min_class = 4096;
        if (n <= min_class)
            return min_class;
        std::size_t p = min_class; // the smallest power of two >= n: n is in (p/2, p]
        while (p < n)
            p <<= 1;
        const std::size_t step = std::max<std::size_t>(p / 8, min_class); // 4 classes in (p/2, p]
        return (n + step - 1) / step * step;
    }

    std::unique_ptr<std::byte[]> take_buffer(std::size_t class_bytes) {
        auto f = free_buffers_.find(class_bytes);
        if (f != free_buffers_.end() && !f->second.empty()) {
            std::unique_ptr<std::byte[]> b = std::move(f->second.back());
            f->second.pop_back();
            cached_bytes_ -= class_bytes;
            return b;
        }
        return std::make_unique_for_overwrite<std::byte[]>(class_bytes);
    }

    void recycle_buffer(std::unique_ptr<std::byte[]> b, std::size_t class_bytes) {
        if (reserved_ + cached_bytes_ + class_bytes > small_budget_)
            return; // freed here
        free_buffers_[class_bytes].push_back(std::move(b));
        cached_bytes_ += class_bytes;
    }

    // ---- archive-order generator over the walker's listings ----------------------------------

    enum class gen { got, not_ready, end, stopped };

    gen next(item& out, bool wait) {
        while (!stack_.empty()) {
            frame& f = stack_.back();
            if (!f.l) {
                const auto t0 = steady::now();
                f.l = walker_.take(f.path, wait, stop_);
                stats_.walk_wait_ns += ns_since(t0);
                if (!f.l)
                    return wait ? gen::stopped : gen::not_ready;
                for (const std::string& w : f.l->warnings)
                    problem(w);
                stats_.skipped += f.l->skipped;
                stats_.unreadable += f.l->skipped;
            }
            if (f.idx == f.l->children.size()) {
                stack_.pop_back();
                continue;
            }
            detail::child& c = f.l->children[f.idx++];
            out.e.path = f.path.empty() ? std::move(c.name) : f.path + "/" + c.name;
            if (opt_.keep_snapshot)
                add_to_snapshot(out.e.path, c, stats_.snapshot);
            out.e.kind = c.kind;
            out.e.mode = c.mode;
            out.e.size = c.size;
            out.e.mtime_sec = c.mtime_sec;
            out.e.mtime_nsec = c.mtime_nsec;
            out.e.uid = c.uid;
            out.e.gid = c.gid;
            out.e.link_target = std::move(c.link_target);
            out.type_bits = c.type_bits;
            out.nlink = c.nlink;
            out.dev = c.dev;
            out.ino = c.ino;
            if (c.kind == file_kind::directory && walker_.lists(out.e.path))
                stack_.push_back(frame{out.e.path, nullptr, 0}); // f is invalid from here
            return gen::got;
        }
        return gen::end;
    }

    // Pulls entries into the lookahead (blocking only when it is empty) and starts small-file
    // reads in archive order within the window budget. Returns false on stop.
    bool pump_lookahead(bool wait_if_empty) {
        while (!gen_done_ && lookahead_.size() < max_lookahead_) {
            auto it = std::make_unique<item>();
            const gen g = next(*it, wait_if_empty && lookahead_.empty());
            if (g == gen::not_ready)
                break;
            if (g == gen::stopped)
                return false;
            if (g == gen::end) {
                gen_done_ = true;
                break;
            }
            if (it->e.kind == file_kind::regular) {
                it->small = it->e.size <= opt_.small_file_bytes;
                if (it->nlink > 1) {
                    const auto key = std::make_pair(it->dev, it->ino);
                    if (links_.count(key) != 0)
                        it->link_candidate = true;
                    else
                        links_.emplace(key, link_info{it->e.path, false});
                }
            }
            lookahead_.push_back(std::move(it));
        }
        for (; start_cursor_ < lookahead_.size(); ++start_cursor_) {
            item& it = *lookahead_[start_cursor_];
            if (!it.small || it.link_candidate || it.st != item::state::idle)
                continue;
            const std::size_t cap = buffer_class_bytes(it.e.size + small_slack_bytes);
            if (reserved_ + cap > small_budget_ && start_cursor_ != 0)
                break;
            if (ring_.in_flight() + small_slot_reserve_ >= ring_.capacity())
                break;
            start_small(it);
        }
        return true;
    }

    void start_small(item& it) {
        it.cap = it.e.size + small_slack_bytes;
        it.reserved = buffer_class_bytes(it.cap);
        reserved_ += it.reserved;
        it.st = item::state::opening;
        ring_.openat(take_req(req_kind::small_open, &it), root_fd_, it.e.path.c_str(),
                     read_open_flags, 0);
    }

    void pop_head() {
        item& it = *lookahead_.front();
        reserved_ -= it.reserved;
        if (it.buf)
            recycle_buffer(std::move(it.buf), it.reserved);
        lookahead_.pop_front();
        if (start_cursor_ > 0)
            --start_cursor_;
    }

    void mark_emitted(const item& it) {
        if (it.nlink <= 1)
            return;
        auto f = links_.find(std::make_pair(it.dev, it.ino));
        if (f != links_.end() && f->second.path == it.e.path)
            f->second.emitted = true;
    }

    // ---- head processing -------------------------------------------------------------------

    // Returns true when the head advanced (emitted or skipped), false when it must wait for I/O.
    result<bool> process_head() {
        item& it = *lookahead_.front();
        switch (it.e.kind) {
        case file_kind::directory:
        case file_kind::symlink:
            PODPIPE_TRY(emit_entry(it.e));
            pop_head();
            return true;
        case file_kind::other:
        case file_kind::hardlink:
            ++stats_.skipped;
            warn(std::string("skipping ") + type_name(it.type_bits) + " '" + it.e.path + "'");
            pop_head();
            return true;
        case file_kind::regular:
            break;
        }
        if (it.link_candidate) {
            const auto key = std::make_pair(it.dev, it.ino);
            auto f = links_.find(key);
            if (f != links_.end() && f->second.emitted) {
                file_entry e = std::move(it.e);
                e.kind = file_kind::hardlink;
                e.size = 0;
                e.link_target = f->second.path;
                PODPIPE_TRY(emit_entry(e));
                pop_head();
                return true;
            }
            // The first occurrence was never emitted (vanished, unreadable): this one is first.
            links_[key] = link_info{it.e.path, false};
            it.link_candidate = false;
        }
        if (!it.small) {
            PODPIPE_TRY(process_large(it));
            pop_head();
            return true;
        }
        switch (it.st) {
        case item::state::idle:
            if (ring_.full())
                return false;
            start_small(it);
            return false;
        case item::state::opening:
        case item::state::reading:
            return false;
        case item::state::failed:
            report_open_failure(it, it.err);
            pop_head();
            return true;
        case item::state::done:
            break;
        }
        if (it.got == it.cap)
            problem("file '" + it.e.path + "' grew while being read; stored the first " +
                 std::to_string(it.got) + " bytes");
        it.e.size = it.got;
        PODPIPE_TRY(emit_entry(it.e));
        mark_emitted(it);
        PODPIPE_TRY(emit_data({it.buf.get(), it.got}, it.e.path));
        pop_head();
        return true;
    }

    template <class Pred>
    result<void> wait_until(Pred pred) {
        while (!pred()) {
            if (stop_.stop_requested())
                return cancelled();
            if (!pump_lookahead(false))
                return cancelled();
            PODPIPE_TRY(wait_and_dispatch(1));
        }
        return {};
    }

    result<void> cancelled() {
        detail_ = "read_tree cancelled";
        return fail(make_error_code(errc::cancelled));
    }

    result<void> process_large(item& it) {
        large_ = large_state{};
        PODPIPE_TRY(wait_for_slot());
        ring_.openat(take_req(req_kind::large_open, &it), root_fd_, it.e.path.c_str(),
                     read_open_flags, 0);
        PODPIPE_TRY(wait_until([&] { return large_.open_done; }));
        if (large_.open_res < 0) {
            report_open_failure(it, -large_.open_res);
            return {};
        }
        PODPIPE_TRY(wait_for_slot());
        ring_.statx(take_req(req_kind::large_statx, &it), large_.fd.get(), "", AT_EMPTY_PATH,
                    STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME, &large_.stx);
        PODPIPE_TRY(wait_until([&] { return large_.statx_done; }));
        if (large_.statx_res < 0 || (large_.stx.stx_mode & S_IFMT) != S_IFREG) {
            ++stats_.skipped;
            problem("file '" + it.e.path + "' changed type or could not be examined; skipped");
            close_large();
            return {};
        }
        file_entry& e = it.e;
        e.size = large_.stx.stx_size;
        e.mode = large_.stx.stx_mode & 07777;
        e.mtime_sec = large_.stx.stx_mtime.tv_sec;
        e.mtime_nsec = large_.stx.stx_mtime.tv_nsec;
        PODPIPE_TRY(emit_entry(e));
        mark_emitted(it);

        // Stream: at most two reads in flight, delivered strictly in order, exactly e.size bytes.
        const std::size_t piece = large_read_bytes();
        for (auto& b : large_buffers_)
            if (!b)
                b = std::make_unique_for_overwrite<std::byte[]>(piece);
        std::uint64_t next_off = 0, delivered = 0;
        chunk_seq_base_ = 0;
        unsigned next_seq = 0;
        while (delivered < e.size) {
            while (large_.chunks.size() < large_reads_in_flight && next_off < e.size) {
                large_chunk ch;
                ch.buf = large_buffers_[large_.next_buffer].get();
                large_.next_buffer = (large_.next_buffer + 1) % large_reads_in_flight;
                ch.off = next_off;
                ch.len = static_cast<std::size_t>(std::min<std::uint64_t>(piece, e.size - next_off));
                next_off += ch.len;
                if (large_.eof) {
                    ch.done = true; // nothing more to read: pure padding
                    large_.chunks.push_back(ch);
                } else {
                    large_.chunks.push_back(ch);
                    PODPIPE_TRY(wait_for_slot());
                    ring_.read(take_req(req_kind::large_read, nullptr, next_seq), large_.fd.get(),
                               ch.buf, static_cast<unsigned>(ch.len), ch.off);
                }
                ++next_seq;
            }
            PODPIPE_TRY(wait_until([&] { return large_.chunks.front().done; }));
            large_chunk& head = large_.chunks.front();
            if (head.got < head.len)
                std::memset(head.buf + head.got, 0, head.len - head.got);
            PODPIPE_TRY(emit_data({head.buf, head.len}, e.path));
            delivered += head.len;
            large_.chunks.pop_front();
            ++chunk_seq_base_;
        }
        if (large_.read_err != 0) {
            problem("read error in '" + e.path + "': " + std::strerror(large_.read_err) + "; " +
                 std::to_string(e.size - std::min(e.size, large_.read_bytes)) +
                 " bytes padded with zeros");
        } else if (large_.read_bytes < e.size) {
            problem("file '" + e.path + "' shrank by " +
                    std::to_string(e.size - large_.read_bytes) +
                    " bytes while being read; padded with zeros");
        } else {
            // Did it grow? One more statx on the fd (cheap next to the reads of a large file).
            large_.statx_done = false;
            PODPIPE_TRY(wait_for_slot());
            ring_.statx(take_req(req_kind::large_statx, &it), large_.fd.get(), "", AT_EMPTY_PATH,
                        STATX_SIZE, &large_.stx);
            PODPIPE_TRY(wait_until([&] { return large_.statx_done; }));
            if (large_.statx_res >= 0 && large_.stx.stx_size > e.size)
                problem("file '" + e.path + "' grew by " +
                     std::to_string(large_.stx.stx_size - e.size) +
                     " bytes while being read; stored the first " + std::to_string(e.size) +
                     " bytes");
        }
        close_large();
        return {};
    }

    void close_large() {
        if (!large_.fd)
            return;
        if (ring_.full()) {
            large_.fd.reset(); // plain close rather than waiting for a slot
            return;
        }
        ring_.close(take_req(req_kind::close, nullptr), large_.fd.release());
    }

    result<void> loop() {
        for (;;) {
            if (stop_.stop_requested())
                return cancelled();
            const std::size_t before = ring_.in_flight();
            if (!pump_lookahead(true))
                return cancelled();
            if (lookahead_.empty()) {
                if (gen_done_)
                    break;
                continue;
            }
            if (ring_.in_flight() != before)
                PODPIPE_TRY(wait_and_dispatch(0)); // get the new opens going now
            auto p = process_head();
            if (!p)
                return fail(p.error());
            if (!*p)
                PODPIPE_TRY(wait_and_dispatch(1));
        }
        return {};
    }

    struct link_info {
        std::string path;
        bool emitted = false;
    };

    const int root_fd_;
    const read_options& opt_;
    tree_consumer& consumer_;
    std::stop_token stop_;
    ring ring_;
    detail::dir_walker walker_;
    read_stats stats_;
    std::string detail_;

    std::vector<req> reqs_;
    std::vector<unsigned> free_reqs_;
    std::vector<completion> done_;
    bool aborting_ = false;

    std::vector<frame> stack_;
    bool gen_done_ = false;
    std::deque<std::unique_ptr<item>> lookahead_;
    std::size_t start_cursor_ = 0;
    std::size_t max_lookahead_ = 256;
    std::size_t reserved_ = 0, small_budget_ = 0;
    std::map<std::size_t, std::vector<std::unique_ptr<std::byte[]>>> free_buffers_;
    std::size_t cached_bytes_ = 0;
    unsigned small_slot_reserve_ = 0;
    std::map<std::pair<std::uint64_t, std::uint64_t>, link_info> links_;

    large_state large_;
    std::unique_ptr<std::byte[]> large_buffers_[large_reads_in_flight];
    unsigned chunk_seq_base_ = 0;
};

// The tree's root directory, or the error a missing, non-directory or unreadable root is.
result<unique_fd> open_root(const std::string& root, std::string* error_detail) {
    unique_fd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (fd)
        return fd;
    const int e = errno;
    if (error_detail != nullptr)
        *error_detail = "cannot open tree root '" + root + "': " + std::strerror(e);
    if (e == ENOENT)
        return fail(make_error_code(errc::root_not_found));
    if (e == ENOTDIR)
        return fail(make_error_code(errc::not_a_directory));
    return fail(make_error_code(errc::io_failed));
}

} // namespace

result<read_stats> read_tree(const std::string& root, const read_options& opt,
                             tree_consumer& consumer, std::stop_token stop,
                             std::string* error_detail) {
    auto opened = open_root(root, error_detail);
    if (!opened)
        return fail(opened.error());
    unique_fd root_fd = std::move(*opened);
    auto r = ring::create(opt.queue_depth == 0 ? 1 : opt.queue_depth, opt.use_io_uring);
    if (!r)
        r = ring::create(opt.queue_depth == 0 ? 1 : opt.queue_depth, false);
    r->fail_op_for_test(opt.fail_ring_op_for_test);
    reader rd(root_fd.get(), opt, consumer, std::move(stop), std::move(*r));
    return rd.run(error_detail);
}

result<std::vector<std::string>> walk_tree_visit(const std::string& root,
                                                 const walk_options& opt,
                                                 const std::function<void(walked_entry&)>& visit,
                                                 std::stop_token stop,
                                                 std::string* error_detail) {
    auto opened = open_root(root, error_detail);
    if (!opened)
        return fail(opened.error());
    unique_fd root_fd = std::move(*opened);
    detail::walker_options w;
    w.threads = opt.threads == 0 ? 1 : opt.threads;
    w.excludes = opt.excludes;
    w.selection = opt.selection;
    w.use_io_uring = opt.use_io_uring;
    detail::dir_walker walker(root_fd.get(), w);
    std::vector<std::string> problems;
    std::vector<walked_entry> one; // add_to_snapshot's output, one entry at a time
    // Depth-first in archive order, as read_tree: a directory's listing is taken right after
    // its entry, which is what the walker lists ahead for.
    std::vector<std::pair<std::string, std::unique_ptr<detail::listing>>> stack;
    stack.emplace_back(std::string(), nullptr);
    std::vector<std::size_t> next_child{0};
    while (!stack.empty()) {
        auto& [dir, l] = stack.back();
        if (!l) {
            l = walker.take(dir, true, stop);
            if (!l) {
                if (error_detail != nullptr)
                    *error_detail = "walk of '" + root + "' cancelled";
                return fail(make_error_code(errc::cancelled));
            }
            for (const std::string& p : l->warnings)
                problems.push_back(p);
        }
        if (next_child.back() == l->children.size()) {
            stack.pop_back();
            next_child.pop_back();
            continue;
        }
        const detail::child& c = l->children[next_child.back()++];
        std::string path = dir.empty() ? c.name : dir + "/" + c.name;
        add_to_snapshot(path, c, one);
        if (!one.empty()) {
            visit(one.back());
            one.clear();
        }
        if (c.kind == file_kind::directory && walker.lists(path)) {
            stack.emplace_back(std::move(path), nullptr); // dir and l are invalid from here
            next_child.push_back(0);
        }
    }
    return problems;
}

result<walk_result> walk_tree(const std::string& root, const walk_options& opt,
                              std::stop_token stop, std::string* error_detail) {
    walk_result out;
    auto problems = walk_tree_visit(
        root, opt, [&out](walked_entry& e) { out.entries.push_back(std::move(e)); },
        std::move(stop), error_detail);
    if (!problems)
        return fail(problems.error());
    out.problems = std::move(*problems);
    return out;
}

} // namespace podpipe::io
