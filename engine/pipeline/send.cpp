#include "engine/pipeline/send.hpp"

#include "engine/common/buffer_pool.hpp"
#include "engine/common/limits.hpp"
#include "engine/gzip/gzip.hpp"
#include "engine/io/paths.hpp"
#include "engine/io/tree_reader.hpp"
#include "engine/pipeline/bounded_queue.hpp"
#include "engine/pipeline/entry_convert.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/failure_slot.hpp"
#include "engine/tar/manifest.hpp"
#include "engine/tar/writer.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <sys/stat.h>

namespace podpipe::pipeline {
namespace {

using detail::ns_since;
using detail::to_file_entry;
using detail::to_tar_entry;
using clock_type = std::chrono::steady_clock;

struct chunk_job {
    std::uint64_t seq = 0;
    block raw;    // tar bytes
    block packed; // the gzip member, taken before raw is filled (see send.hpp)
    int level = 0; // the level packed was compressed at
    bool stored = false; // packed holds stored blocks: the chunk did not compress
};

// Frames the reader's entries as tar into chunk blocks and hands full chunks to the workers.
// Runs on the caller's thread, inside io::read_tree's callbacks.
class tar_framer final : public io::tree_consumer {
public:
    tar_framer(buffer_pool& raw_pool, buffer_pool& packed_pool,
               bounded_queue<chunk_job>& out, std::stop_token halt, live_progress* progress)
        : raw_pool_(raw_pool)
        , packed_pool_(packed_pool)
        , out_(out)
        , halt_(std::move(halt))
        , progress_(progress) {}

    /// A resumed send: the first `from.offset` tar bytes are framed and hashed but not sent,
    /// and at that offset the manifest so far must be the receiver's (resume_mismatch if not).
    void resume_from(const resume_offer& from) {
        if (from.offset > 0)
            skip_ = from;
    }

    result<void> on_entry(const io::file_entry& e) override {
        const tar::entry t = to_tar_entry(e);
        header_.clear();
        PODPIPE_TRY(tar::append_header(t, header_));
        PODPIPE_TRY(check_resume_point());
        manifest_.add_entry(t);
        PODPIPE_TRY(put(header_));
        remaining_ = t.size;
        padding_ = tar::padding_for(t.size);
        if (progress_ != nullptr)
            progress_->entries.fetch_add(1, std::memory_order_relaxed);
        return {};
    }

    result<void> on_data(std::span<const std::byte> bytes) override {
        PODPIPE_CHECK(bytes.size() <= remaining_, "reader delivered more than the entry's size");
        if (skip_ && tar_bytes_ < skip_->offset && skip_->offset < tar_bytes_ + bytes.size()) {
            // The resume point is inside this piece: hash and drop up to it, check, go on.
            const std::size_t before = static_cast<std::size_t>(skip_->offset - tar_bytes_);
            manifest_.add_content(bytes.first(before));
            PODPIPE_TRY(put(bytes.first(before)));
            remaining_ -= before;
            bytes = bytes.subspan(before);
            PODPIPE_TRY(check_resume_point());
        }
        manifest_.add_content(bytes);
        PODPIPE_TRY(put(bytes));
        remaining_ -= bytes.size();
        if (progress_ != nullptr)
            progress_->content_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
        if (remaining_ == 0 && padding_ > 0) {
            static constexpr std::byte zeros[512] = {};
            PODPIPE_TRY(put({zeros, padding_}));
            padding_ = 0;
        }
        return {};
    }

    /// The deletions, first in the stream and in the manifest (tar::append_deletions).
    result<void> start(const std::vector<std::string>& deletions) {
        if (deletions.empty())
            return {};
        header_.clear();
        tar::append_deletions(deletions, header_);
        for (const std::string& d : deletions)
            manifest_.add_deletion(d);
        return put(header_);
    }

    /// Appends the sender's problems (if any), the manifest and end-of-archive, flushes the
    /// last chunk.
    result<tar::manifest> finish(const tar::sender_problems& problems) {
        PODPIPE_TRY(check_resume_point());
        if (skip_)
            return fail(make_error_code(errc::resume_mismatch)); // the point was never reached
        const tar::manifest m = manifest_.finish();
        header_.clear();
        if (problems.count > 0)
            tar::append_problems(problems, header_);
        tar::append_end(m, header_);
        PODPIPE_TRY(put(header_));
        PODPIPE_TRY(flush());
        return m;
    }

    std::uint64_t tar_bytes() const noexcept { return tar_bytes_; }
    std::uint64_t skipped_bytes() const noexcept { return skipped_; }
    std::uint64_t chunks() const noexcept { return seq_; }

    /// The resumed send's check failed: what the sender has there, for the detail.
    const std::optional<tar::manifest>& resume_found() const noexcept { return found_; }

private:
    // At a place where the manifest covers exactly the tar bytes framed so far: when that is
    // the resume point, compare; past it without having compared (the point falls inside a
    // header or padding here), the receiver's stream was another one.
    result<void> check_resume_point() {
        if (!skip_ || tar_bytes_ < skip_->offset)
            return {};
        const tar::manifest here = manifest_.peek();
        if (tar_bytes_ > skip_->offset || !(here == skip_->before)) {
            found_ = here;
            return fail(make_error_code(errc::resume_mismatch));
        }
        skip_.reset();
        return {};
    }

    result<void> put(std::span<const std::byte> bytes) {
        if (skip_) {
            // Before the resume point nothing is sent (the receiver has it).
            const std::uint64_t drop = std::min<std::uint64_t>(
                bytes.size(), skip_->offset > tar_bytes_ ? skip_->offset - tar_bytes_ : 0);
            tar_bytes_ += drop;
            skipped_ += drop;
            bytes = bytes.subspan(static_cast<std::size_t>(drop));
            if (!bytes.empty())
                PODPIPE_TRY(check_resume_point());
        }
        while (!bytes.empty()) {
            if (!raw_.valid())
                PODPIPE_TRY(start_chunk());
            const std::size_t room = raw_.capacity() - raw_.size();
            const std::size_t n = std::min(room, bytes.size());
            std::memcpy(raw_.space().data() + raw_.size(), bytes.data(), n);
            raw_.set_size(raw_.size() + n);
            bytes = bytes.subspan(n);
            tar_bytes_ += n;
            if (raw_.size() == raw_.capacity())
                PODPIPE_TRY(flush());
        }
        return {};
    }

    result<void> start_chunk() {
        // Output first, then input, both in sequence order: see send.hpp.
        auto packed = packed_pool_.acquire(halt_);
        if (!packed)
            return fail(std::make_error_code(std::errc::operation_canceled));
        auto raw = raw_pool_.acquire(halt_);
        if (!raw)
            return fail(std::make_error_code(std::errc::operation_canceled));
        packed_ = std::move(*packed);
        raw_ = std::move(*raw);
        return {};
    }

    result<void> flush() {
        if (!raw_.valid() || raw_.size() == 0)
            return {};
        chunk_job job{seq_++, std::move(raw_), std::move(packed_)};
        if (!out_.push(std::move(job), halt_))
            return fail(std::make_error_code(std::errc::operation_canceled));
        return {};
    }

    buffer_pool& raw_pool_;
    buffer_pool& packed_pool_;
    bounded_queue<chunk_job>& out_;
    std::stop_token halt_;
    live_progress* progress_;
    tar::manifest_builder manifest_;
    std::vector<std::byte> header_;
    block raw_;
    block packed_;
    std::uint64_t seq_ = 0;
    std::uint64_t remaining_ = 0;
    std::size_t padding_ = 0;
    std::uint64_t tar_bytes_ = 0;
    std::optional<resume_offer> skip_; ///< a resumed send until its point is reached
    std::optional<tar::manifest> found_;
    std::uint64_t skipped_ = 0;
};

struct pool_plan {
    std::size_t blocks = 0;
    std::size_t window_bytes = 0;
};

// Splits the memory budget: a read-ahead window for the reader, the rest in chunk blocks
// (one raw + one packed per chunk in flight). 16 MiB is kept for everything else (thread
// stacks, compressor state, tar headers).
pool_plan plan_memory(const send_options& opt, unsigned threads, std::size_t packed_bytes) {
    constexpr std::size_t reserve = 16 << 20;
    const std::size_t usable = opt.memory_bytes > reserve ? opt.memory_bytes - reserve : 0;
    pool_plan plan;
    plan.window_bytes = std::clamp<std::size_t>(usable / 4, 1 << 20, 32 << 20);
    const std::size_t per_chunk = opt.chunk_bytes + packed_bytes;
    const std::size_t left = usable > plan.window_bytes ? usable - plan.window_bytes : 0;
    plan.blocks = std::min<std::size_t>(left / per_chunk, 4 * threads + 4);
    return plan;
}

// Room for one compressed chunk at any level the sender may use.
std::size_t packed_bound(const send_options& opt) {
    if (opt.level != auto_level)
        return gzip::member_compressor(opt.level).bound(opt.chunk_bytes);
    std::size_t most = 0;
    for (int level : auto_level_ladder)
        most = std::max(most, gzip::member_compressor(level).bound(opt.chunk_bytes));
    return most;
}

// Moves the level along auto_level_ladder (see auto_level in send.hpp) from how the writer
// spends its time and how fast the stream drains; at most one decision per window, so the
// level follows sustained conditions rather than noise.
class level_controller {
public:
    level_controller(bool enabled, double climb_below) : enabled_(enabled), climb_below_(climb_below) {}

    int level(int fixed) const {
        return enabled_ ? auto_level_ladder[index_.load(std::memory_order_relaxed)] : fixed;
    }

    // Called by the writer after each chunk with its cumulative sink time and bytes written.
    void chunk_written(std::uint64_t sink_busy_ns, std::uint64_t wire_bytes) {
        if (!enabled_)
            return;
        const auto now = clock_type::now();
        if (window_chunks_++ == 0) {
            window_start_ = now;
            window_busy_start_ = sink_busy_ns;
            window_bytes_start_ = wire_bytes;
            return;
        }
        const auto elapsed = std::chrono::duration_cast<std::chrono::nanoseconds>(now - window_start_).count();
        if (elapsed < 200'000'000 || window_chunks_ < 4)
            return;
        const double seconds = static_cast<double>(elapsed) / 1e9;
        const double busy = static_cast<double>(sink_busy_ns - window_busy_start_) / static_cast<double>(elapsed);
        const double drain = static_cast<double>(wire_bytes - window_bytes_start_) / seconds;
        int i = index_.load(std::memory_order_relaxed);
        if (settling_) {
            // The first window after the probe: the writer filled a larger window at once
            // (little time in the sink, a fast drain), which says nothing about the link.
            settling_ = false;
        }
        else if (busy > 0.85 && drain < climb_below_ && i < top) {
            // Far below the threshold only the stream's size counts: go straight to the top
            // rather than one step per window (which sent the first ~40 MB of a 50 Mbit/s copy
            // below level 7); the step down below walks back if the CPU cannot keep up.
            const bool far_below = drain < climb_below_ * far_below_fraction;
            index_.store(far_below ? top : i + 1, std::memory_order_relaxed);
        }
        else if (busy < 0.5 && i > 0)
            index_.store(i - 1, std::memory_order_relaxed);
        window_chunks_ = 0;
    }

    /// The probe's verdict (see ack_window): the receiver takes `rate` bytes/s. Below the
    /// threshold go straight to the top; either way a new window starts (the probe's waits
    /// are not the sink's time).
    /// Returns whether the link is that slow.
    bool link_rate(double rate) {
        if (!enabled_)
            return false;
        // The whole threshold, not far_below_fraction of it: a short probe over-reads a
        // bursty link (a 50 Mbit/s one measured 6-11 MB/s), and the step down corrects a
        // link that turns out fast enough for the CPU to be the limit.
        const bool slow = rate < climb_below_;
        if (slow)
            index_.store(top, std::memory_order_relaxed);
        window_chunks_ = 0;
        settling_ = slow;
        return slow;
    }

private:
    static constexpr double far_below_fraction = 0.6;
    static constexpr int top = static_cast<int>(std::size(auto_level_ladder)) - 1; ///< index
    bool enabled_;
    double climb_below_;
    std::atomic<int> index_{auto_level_start};
    clock_type::time_point window_start_{};
    std::uint64_t window_busy_start_ = 0;
    std::uint64_t window_bytes_start_ = 0;
    std::uint64_t window_chunks_ = 0;
    bool settling_ = false;
};

// Flow control from the receiver's acknowledgements, for auto levels (see auto_level). First a
// probe: at most auto_probe_window bytes unacknowledged while it measures the rate at which
// acknowledgements advance, from the first one (the receiver's start-up does not count) over
// probe_span bytes or probe_time, whichever comes first. If that rate is slow, the window stays
// (auto_hold_window) for the rest of the transfer: buffers along the path then never fill, so
// the level controller sees the link's rate rather than a buffer taking megabytes at once;
// if it is fast, flow control ends there. A receiver that stops acknowledging for
// ack_timeout ends flow control: the stream never waits on a lost side channel.
class ack_window {
public:
    explicit ack_window(ack_counter* acks) : acks_(acks) {}
    bool active() const { return acks_ != nullptr; }
    /// The window stays after a slow verdict: the link, not the CPU, sets the pace.
    bool holding() const { return acks_ != nullptr && !probing_; }
    std::uint64_t unacknowledged(std::uint64_t wire_bytes) const {
        const std::uint64_t acked = acks_ != nullptr ? acks_->value() : wire_bytes;
        return wire_bytes > acked ? wire_bytes - acked : 0;
    }

    /// Waits until the next write fits the window; returns the probe's rate when it is known.
    std::optional<double> before_write(std::uint64_t wire_bytes, std::stop_token stop) {
        const std::uint64_t window = probing_ ? auto_probe_window : auto_hold_window;
        const std::uint64_t need = wire_bytes > window ? wire_bytes - window : 0;
        const std::uint64_t acked = acks_->wait_for(need, ack_timeout, stop);
        const bool timed_out = acked < need && !acks_->closed() && !stop.stop_requested();
        if (acks_->closed() || timed_out)
            acks_ = nullptr;
        if (!probing_)
            return std::nullopt;
        const auto now = clock_type::now();
        if (!seen_first_) {
            if (acked > 0) {
                seen_first_ = true;
                first_at_ = now;
                first_ = acked;
                return std::nullopt;
            }
            return timed_out ? finish(0) : std::nullopt; // nothing within a window: slow
        }
        const double seconds = std::chrono::duration<double>(now - first_at_).count();
        const std::uint64_t moved = acked - first_;
        if (moved >= probe_span || (seconds >= probe_time && moved > 0) || timed_out)
            return finish(seconds > 0 ? static_cast<double>(moved) / seconds : 0);
        if (!acks_)
            probing_ = false; // the receiver stopped reporting: no verdict
        return std::nullopt;
    }

    /// After the probe: keep the window (slow link) or drop it.
    void keep_window(bool keep) {
        if (!keep)
            acks_ = nullptr;
    }

private:
    static constexpr std::uint64_t probe_span = 512 << 10;
    static constexpr double probe_time = 0.1;
    static constexpr std::chrono::seconds ack_timeout{1};

    std::optional<double> finish(double rate) {
        probing_ = false;
        return rate;
    }

    ack_counter* acks_;
    bool probing_ = true;
    bool seen_first_ = false;
    clock_type::time_point first_at_{};
    std::uint64_t first_ = 0;
};

// Chunks compressed before a slow link showed (queued behind the probe) are still at the
// start level; while the link has recompress_slack bytes to drain, the writer inflates such a
// chunk and compresses it again at the current level. Scratch buffers come on first use.
constexpr std::uint64_t recompress_slack = 512 << 10;

class recompressor {
public:
    explicit recompressor(std::size_t chunk_bytes) : chunk_bytes_(chunk_bytes) {}

    /// Replaces `packed` with the member at `level` if that is smaller; returns the bytes saved
    /// (0: kept as it was, also when anything fails: the original member is valid).
    std::size_t recompress(block& packed, int level) {
        if (!inflater_) {
            inflater_.emplace();
            raw_.resize(chunk_bytes_);
        }
        if (!compressor_ || compressor_->level() != level) {
            compressor_.emplace(level);
            out_.resize(compressor_->bound(chunk_bytes_));
        }
        auto n = inflater_->decompress(packed.data(), raw_);
        if (!n)
            return 0;
        auto m = compressor_->compress(std::span(raw_).first(*n), out_);
        if (!m || *m >= packed.size() || *m > packed.space().size())
            return 0;
        const std::size_t saved = packed.size() - *m;
        std::memcpy(packed.space().data(), out_.data(), *m);
        packed.set_size(*m);
        return saved;
    }

private:
    std::size_t chunk_bytes_;
    std::optional<gzip::member_decompressor> inflater_;
    std::optional<gzip::member_compressor> compressor_;
    std::vector<std::byte> raw_;
    std::vector<std::byte> out_;
};

// The root itself goes first as "./" (what `tar -C DIR .` writes), so its mode, owner and
// mtime reach the receiver; nullopt when it cannot be stat'ed (read_tree reports that).
std::optional<io::file_entry> root_entry(const std::string& root) {
    struct stat st {};
    if (::stat(root.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
        return std::nullopt;
    io::file_entry top;
    top.path = ".";
    top.kind = io::file_kind::directory;
    top.mode = st.st_mode & 07777;
    top.mtime_sec = st.st_mtim.tv_sec;
    top.mtime_nsec = static_cast<std::uint32_t>(st.st_mtim.tv_nsec);
    top.uid = st.st_uid;
    top.gid = st.st_gid;
    return top;
}

std::string resume_mismatch_detail(const resume_offer& offer,
                                   const std::optional<tar::manifest>& found) {
    const auto says = [](const tar::manifest& m) {
        return std::to_string(m.entries) + " entries, " + std::to_string(m.content_bytes) +
               " content bytes, digest " + tar::format_manifest_comment(m).substr(
                                                   tar::format_manifest_comment(m).rfind('=') + 1);
    };
    std::string d = "at stream offset " + std::to_string(offer.offset) + " the receiver has " +
                    says(offer.before);
    if (found)
        d += ", this source " + says(*found);
    else
        d += ", this source's stream ends before that offset";
    return d;
}

struct framed_tree {
    io::read_stats read;
    tar::manifest manifest;
};

// The producing stage, on the caller's thread: the deletions, the root's entry, the walk and
// read of the tree (or of the selection), then the sender's problems and the end of the
// archive, all framed as tar into chunks for the compress workers.
result<framed_tree, transfer_error> frame_tree(const std::string& root, const send_options& opt,
                                               std::size_t window_bytes, tar_framer& framer,
                                               std::stop_token halt) {
    io::read_options ropt;
    ropt.window_bytes = window_bytes;
    ropt.excludes = opt.excludes;
    ropt.keep_snapshot = opt.snapshot;
    if (opt.only) {
        auto sel = io::path_selection::make(*opt.only, opt.only_descend);
        if (!sel)
            return fail(transfer_error(make_error_code(errc::bad_options),
                                       "a selected path is not a path beneath the root"));
        ropt.selection = std::make_shared<const io::path_selection>(std::move(*sel));
    }
    // A resume refused is said the same way wherever the framer found it.
    const auto failed = [&](std::error_code ec, std::string detail) {
        if (ec == errc::resume_mismatch && opt.resume_from)
            detail = resume_mismatch_detail(*opt.resume_from, framer.resume_found());
        return transfer_error(ec, std::move(detail));
    };
    if (opt.resume_from)
        framer.resume_from(*opt.resume_from);
    if (auto r = framer.start(opt.deletions); !r)
        return fail(failed(r.error(), "writing the deletions"));
    if (auto top = root_entry(root))
        if (auto r = framer.on_entry(*top); !r)
            return fail(failed(r.error(), "writing the root entry"));
    std::string read_detail;
    auto read = io::read_tree(root, ropt, framer, halt, &read_detail);
    if (!read)
        return fail(failed(read.error(), read_detail));
    auto m = framer.finish(read->problems);
    if (!m)
        return fail(failed(m.error(), "finishing the archive"));
    return framed_tree{std::move(*read), *m};
}

} // namespace

result<void, std::string> check_send_options(const send_options& opt) {
    if ((opt.level < 0 || opt.level > 12) && opt.level != auto_level)
        return fail(std::string("compression level must be 0 (stored) to 12, or auto"));
    if (opt.chunk_bytes < min_chunk_bytes || opt.chunk_bytes > max_chunk_bytes)
        return fail(std::string("chunk size must be between 64 KiB and 8 MiB"));
    if (opt.threads > 256)
        return fail(std::string("at most 256 threads"));
    for (const std::string& d : opt.deletions) {
        auto n = io::normalize_entry_path(d);
        if (!n || n->empty())
            return fail("refusing to send the deletion of '" + d +
                        "': not a path beneath the root");
    }
    const unsigned threads = opt.threads == 0 ? usable_cores() : opt.threads;
    const pool_plan plan = plan_memory(opt, threads, packed_bound(opt));
    if (plan.blocks < threads + 2)
        return fail(std::string("memory budget too small for this chunk size and thread "
                                "count; raise --memory or lower --chunk-size/--threads"));
    return {};
}

result<transfer_stats, transfer_error> send_tree(const std::string& root, byte_sink& sink,
                                                 const send_options& opt, std::stop_token stop) {
    const auto t_start = clock_type::now();
    if (auto ok = check_send_options(opt); !ok)
        return fail(transfer_error(make_error_code(errc::bad_options), ok.error()));
    const unsigned threads = opt.threads == 0 ? usable_cores() : opt.threads;
    const std::size_t packed_bytes = packed_bound(opt);
    level_controller levels(opt.level == auto_level, opt.auto_climb_below);
    std::array<std::atomic<std::uint64_t>, 13> chunks_per_level{};
    const pool_plan plan = plan_memory(opt, threads, packed_bytes);

    // Declaration order matters: pools outlive the queues (whose jobs hold blocks), and the
    // threads (declared last) are joined first.
    buffer_pool raw_pool(opt.chunk_bytes, plan.blocks);
    buffer_pool packed_pool(packed_bytes, plan.blocks);
    bounded_queue<chunk_job> to_compress(plan.blocks);
    // With auto levels, few compressed chunks may wait for the sink: a level is chosen when a
    // chunk is compressed, and a deep queue filled at level 1 before a slow link shows would
    // send tens of MB at the wrong level (measured: 50 Mbit/s, synthetic tree).
    const std::size_t write_ahead =
        opt.level == auto_level ? std::min<std::size_t>(plan.blocks, std::max(4U, 2 * threads)) : plan.blocks;
    bounded_queue<chunk_job> to_write(write_ahead);
    std::stop_source halt;
    std::stop_callback forward_stop(stop, [&] { halt.request_stop(); });
    detail::failure_slot failure(halt);
    // A stop or a failure wakes a write blocked on a receiver that stopped reading.
    std::stop_callback wake_sink(halt.get_token(), [&] { sink.interrupt(); });

    std::atomic<unsigned> workers_left{threads};
    std::atomic<std::uint64_t> compress_busy_ns{0};
    std::atomic<std::uint64_t> compress_in{0};
    std::atomic<std::uint64_t> compress_out{0};
    std::atomic<std::uint64_t> chunks_stored{0};
    std::uint64_t sink_busy_ns = 0;
    std::uint64_t wire_bytes = 0;
    double probed_rate = 0;

    std::vector<std::jthread> workers;
    workers.reserve(threads);
    for (unsigned i = 0; i < threads; ++i) {
        workers.emplace_back([&] {
            std::array<std::optional<gzip::member_compressor>, 13> compressors;
            while (auto job = to_compress.pop(halt.get_token())) {
                const auto t0 = clock_type::now();
                const int level = levels.level(opt.level);
                auto& compressor = compressors[static_cast<std::size_t>(level)];
                if (!compressor)
                    compressor.emplace(level);
                chunks_per_level[static_cast<std::size_t>(level)].fetch_add(1, std::memory_order_relaxed);
                auto n = compressor->compress(job->raw.data(), job->packed.space());
                if (!n) {
                    failure.set(n.error(), "compressing chunk " + std::to_string(job->seq));
                    break;
                }
                job->packed.set_size(*n);
                job->level = level;
                job->stored = compressor->last_stored();
                if (job->stored)
                    chunks_stored.fetch_add(1, std::memory_order_relaxed);
                compress_in.fetch_add(job->raw.size(), std::memory_order_relaxed);
                compress_out.fetch_add(*n, std::memory_order_relaxed);
                job->raw.reset();
                compress_busy_ns.fetch_add(ns_since(t0), std::memory_order_relaxed);
                if (!to_write.push(std::move(*job), halt.get_token()))
                    break;
            }
            if (workers_left.fetch_sub(1) == 1)
                to_write.close();
        });
    }

    std::jthread writer([&] {
        std::map<std::uint64_t, chunk_job> early; // at most plan.blocks entries
        std::uint64_t next = 0;
        ack_window window(opt.level == auto_level ? opt.acks : nullptr);
        recompressor redo(opt.chunk_bytes);
        while (auto job = to_write.pop(halt.get_token())) {
            early.emplace(job->seq, std::move(*job));
            while (!early.empty() && early.begin()->first == next) {
                block packed = std::move(early.begin()->second.packed);
                const int packed_level = early.begin()->second.level;
                const bool packed_stored = early.begin()->second.stored;
                early.erase(early.begin());
                const auto t0 = clock_type::now();
                // Waiting for acknowledgements is waiting for the link: it counts as sink time,
                // and so does recompressing for it.
                if (window.active()) {
                    if (auto rate = window.before_write(wire_bytes, halt.get_token())) {
                        window.keep_window(levels.link_rate(*rate));
                        probed_rate = *rate;
                    }
                }
                const int level_now = levels.level(opt.level);
                const bool queued_early = packed_level == auto_level_ladder[auto_level_start];
                // A stored chunk did not compress at all: a higher level would not shrink it.
                if (window.holding() && queued_early && !packed_stored &&
                    packed_level < level_now &&
                    window.unacknowledged(wire_bytes) >= recompress_slack) {
                    if (auto smaller = redo.recompress(packed, level_now); smaller > 0) {
                        const auto from = static_cast<std::size_t>(packed_level);
                        const auto to = static_cast<std::size_t>(level_now);
                        chunks_per_level[from].fetch_sub(1, std::memory_order_relaxed);
                        chunks_per_level[to].fetch_add(1, std::memory_order_relaxed);
                        compress_out.fetch_sub(smaller, std::memory_order_relaxed);
                    }
                }
                if (auto w = sink.write(packed.data()); !w) {
                    failure.set(w.error(), "writing the stream");
                    return;
                }
                sink_busy_ns += ns_since(t0);
                wire_bytes += packed.size();
                levels.chunk_written(sink_busy_ns, wire_bytes);
                if (opt.progress != nullptr)
                    opt.progress->wire_bytes.fetch_add(packed.size(), std::memory_order_relaxed);
                ++next;
            }
        }
        if (!failure.error()) {
            // An empty member ends the stream: receivers stop there without waiting for EOF,
            // which some channels cannot deliver (a remote-exec stdin that cannot be half-closed). Any
            // gzip reader inflates it to nothing.
            std::array<std::byte, 64> end_member{};
            auto n = gzip::member_compressor(0).compress({}, end_member);
            if (!n) {
                failure.set(n.error(), "writing the end of the stream");
                return;
            }
            if (auto w = sink.write(std::span(end_member).first(*n)); !w) {
                failure.set(w.error(), "writing the stream");
                return;
            }
            wire_bytes += *n;
            if (auto f = sink.finish(); !f)
                failure.set(f.error(), "closing the stream");
        }
    });

    tar_framer framer(raw_pool, packed_pool, to_compress, halt.get_token(), opt.progress);
    auto framed = frame_tree(root, opt, plan.window_bytes, framer, halt.get_token());
    if (!framed)
        failure.set(framed.error().code, framed.error().detail);
    to_compress.close();
    for (auto& w : workers)
        w.join();
    writer.join();

    if (const auto ec = failure.error())
        return fail(transfer_error(ec, failure.detail()));
    if (stop.stop_requested())
        return fail(std::make_error_code(std::errc::operation_canceled));

    transfer_stats s;
    io::read_stats& r = framed->read;
    detail::copy_entry_counts(s, r);
    s.warnings = r.warnings;
    s.problems = std::move(r.problems);
    s.deletions = opt.deletions.size();
    s.snapshot = std::move(r.snapshot);
    s.tar_bytes = framer.tar_bytes() - framer.skipped_bytes();
    s.resumed_at = opt.resume_from ? opt.resume_from->offset : 0;
    s.wire_bytes = wire_bytes;
    s.chunks = framer.chunks();
    for (std::size_t l = 0; l < chunks_per_level.size(); ++l)
        s.chunks_per_level[l] = chunks_per_level[l].load();
    s.chunks_stored = chunks_stored.load();
    s.probed_rate = probed_rate;
    s.manifest = framed->manifest;
    s.seconds = static_cast<double>(ns_since(t_start)) / 1e9;
    s.stages.push_back({"walk", 0, r.entries, r.walk_ns, 0, 1});
    s.stages.push_back({"read", r.content_bytes, r.content_bytes, r.read_ns, r.consumer_ns, 1});
    // The framer runs inside the reader's callbacks: its time is the reader's consumer time,
    // of which the waits for free blocks and queue room are backpressure from compression.
    const std::uint64_t tar_blocked =
        to_compress.push_blocked_ns() + raw_pool.blocked_ns() + packed_pool.blocked_ns();
    s.stages.push_back({"tar", r.content_bytes, s.tar_bytes,
                        r.consumer_ns > tar_blocked ? r.consumer_ns - tar_blocked : 0,
                        tar_blocked, 1});
    s.stages.push_back({"compress", compress_in.load(), compress_out.load(),
                        compress_busy_ns.load(), to_compress.pop_blocked_ns() +
                            to_write.push_blocked_ns(),
                        threads});
    s.stages.push_back({"sink", wire_bytes, wire_bytes, sink_busy_ns, to_write.pop_blocked_ns(), 1});
    return s;
}

} // namespace podpipe::pipeline
