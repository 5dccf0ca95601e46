#include "engine/pipeline/recv.hpp"

#include "engine/common/buffer_pool.hpp"
#include "engine/common/limits.hpp"
#include "engine/gzip/gzip.hpp"
#include "engine/io/paths.hpp"
#include "engine/io/tree_writer.hpp"
#include "engine/pipeline/bounded_queue.hpp"
#include "engine/pipeline/entry_convert.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/failure_slot.hpp"
#include "engine/pipeline/send.hpp"
#include "engine/tar/manifest.hpp"
#include "engine/tar/parser.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <thread>

namespace podpipe::pipeline {
namespace {

using detail::ns_since;
using detail::to_file_entry;
using detail::to_tar_entry;
using clock_type = std::chrono::steady_clock;

struct member_job {
    std::uint64_t seq = 0;
    block packed;                   // empty when `plain` already holds the bytes
    block plain;                    // decompressed output (or the bytes themselves)
    std::size_t expected_bytes = 0; // from the member's length subfield
};

// Which part of the manifest differs, in words: the counts when they differ, else the digest.
std::string describe_mismatch(const tar::manifest& sent, const tar::manifest& got) {
    const auto counts = [](const tar::manifest& m) {
        return std::to_string(m.entries) + " entries and " + std::to_string(m.content_bytes) +
               " content bytes";
    };
    std::string what;
    if (sent.entries != got.entries)
        what = "entry counts differ";
    else if (sent.content_bytes != got.content_bytes)
        what = "content byte counts differ";
    else
        return "the digests differ (same " + counts(sent) +
               ": some content or metadata changed on the way)";
    return what + ": the sender's manifest has " + counts(sent) + ", the receiver got " +
           counts(got);
}

// Applies parsed entries to the tree writer and keeps the receiver's side of the manifest.
class extract_handler final : public tar::parser_handler {
public:
    extract_handler(io::tree_writer& writer, live_progress* progress,
                    std::span<const std::string> excludes)
        : writer_(writer), progress_(progress), excludes_(excludes) {}

    result<void> on_entry(const tar::entry& e) override {
        manifest_.add_entry(e);
        current_ = to_file_entry(e);
        skip_ = excluded(current_.path);
        drop_content_ = skip_ || current_.kind != io::file_kind::regular;
        if (skip_)
            return {};
        if (log_dirs_ && current_.kind == io::file_kind::directory && current_.path != ".")
            dir_records_ += encode_dir_record(current_);
        if (progress_ != nullptr)
            progress_->entries.fetch_add(1, std::memory_order_relaxed);
        return writer_.begin_entry(current_);
    }

    result<void> on_data(std::span<const std::byte> bytes) override {
        manifest_.add_content(bytes);
        if (drop_content_)
            return {};
        if (progress_ != nullptr)
            progress_->content_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
        return writer_.write(bytes);
    }

    result<void> on_entry_end() override { return skip_ ? result<void>{} : writer_.end_entry(); }

    result<void> on_manifest(const tar::manifest& sent) override {
        received_ = manifest_.finish();
        sent_ = sent;
        if (!(*received_ == sent)) {
            failure_detail_ = describe_mismatch(sent, *received_);
            return fail(errc::manifest_mismatch);
        }
        return {};
    }

    result<void> on_sender_problems(const tar::sender_problems& p) override {
        problems_ = p;
        return {};
    }

    // Deletions come before the entries (tar::append_deletions): applied at once, in order,
    // and hashed like the sender did. tree_writer::remove refuses unsafe paths.
    result<void> on_deletions(const tar::deletions& d) override {
        for (const std::string& path : d.paths) {
            manifest_.add_deletion(path);
            PODPIPE_TRY(writer_.remove(path));
        }
        return {};
    }

    const tar::sender_problems& problems() const noexcept { return problems_; }

    /// Why the handler itself failed (a manifest mismatch); empty otherwise.
    const std::string& failure_detail() const noexcept { return failure_detail_; }

    /// Resumable receives: directories are logged (take_dir_records) for the ledger.
    void log_directories() noexcept { log_dirs_ = true; }
    std::string take_dir_records() { return std::exchange(dir_records_, {}); }
    std::string save_manifest() const { return manifest_.save_state(); }
    tar::manifest peek_manifest() const { return manifest_.peek(); }
    bool restore_manifest(std::string_view saved) { return manifest_.restore_state(saved); }

    /// Continues the regular file an earlier receiver was writing at `point` (its on_entry
    /// came in that receiver): the writer reopens it unless it is excluded.
    result<void> resume_entry(const tar::resume_point& point) {
        current_ = to_file_entry(point.current);
        skip_ = excluded(current_.path);
        drop_content_ = skip_;
        return skip_ ? result<void>{} : writer_.resume_file(current_, point.content_done);
    }

    const std::optional<tar::manifest>& sent() const noexcept { return sent_; }
    const std::optional<tar::manifest>& received() const noexcept { return received_; }
    tar::manifest received_so_far() { return manifest_.finish(); }
    void reset_manifest() { manifest_.reset(); }

private:
    // The receiver's --exclude (for senders that cannot filter, e.g. busybox tar): the entry or
    // any directory above it matches, with the sender's rules (io::is_excluded).
    bool excluded(std::string_view path) const {
        if (excludes_.empty())
            return false;
        while (path.starts_with("./"))
            path.remove_prefix(2);
        while (path.ends_with('/'))
            path.remove_suffix(1);
        if (path.empty() || path == ".")
            return false;
        for (std::size_t slash = path.find('/'); slash != std::string_view::npos;
             slash = path.find('/', slash + 1))
            if (io::is_excluded(excludes_, path.substr(0, slash)))
                return true;
        return io::is_excluded(excludes_, path);
    }

    io::tree_writer& writer_;
    live_progress* progress_;
    std::span<const std::string> excludes_;
    bool skip_ = false;
    tar::manifest_builder manifest_;
    io::file_entry current_;
    bool drop_content_ = false;
    std::optional<tar::manifest> sent_;
    std::optional<tar::manifest> received_;
    std::string failure_detail_;
    tar::sender_problems problems_;
    bool log_dirs_ = false;
    std::string dir_records_;
};

// The receive side's chunk buffers. They are sized when the stream's first member tells the
// sender's chunk size (1 MiB for foreign gzip and plain tar), so the budget buys as many
// chunks in flight as it can hold whatever size the sender chose. Only the splitter thread
// sets them up, before it creates the first job; they outlive every job (declared first).
struct recv_pools {
    std::size_t usable_bytes = 0;
    std::size_t max_blocks = 0;
    std::optional<buffer_pool> packed;
    std::optional<buffer_pool> plain;

    bool ready() const noexcept { return plain.has_value(); }

    result<void> setup(std::size_t chunk_bytes) {
        constexpr std::size_t granule = 64 * 1024;
        std::size_t plain_bytes = std::max<std::size_t>(chunk_bytes, 1 << 20);
        plain_bytes = (plain_bytes + granule - 1) / granule * granule;
        if (plain_bytes > max_chunk_bytes)
            return fail(errc::member_too_large);
        const std::size_t packed_bytes = gzip::member_compressor(0).bound(plain_bytes);
        const std::size_t blocks =
            std::min(usable_bytes / (plain_bytes + packed_bytes), max_blocks);
        if (blocks < 2)
            return fail(errc::bad_options);
        packed.emplace(packed_bytes, blocks);
        plain.emplace(plain_bytes, blocks);
        return {};
    }

    std::uint64_t blocked_ns() const {
        return ready() ? packed->blocked_ns() + plain->blocked_ns() : 0;
    }
};

// Reads the source, recognises the format, and emits member jobs in sequence order.
class splitter_stage {
public:
    splitter_stage(byte_source& source, recv_pools& pools, bounded_queue<member_job>& out,
                   detail::failure_slot& failure, std::stop_token halt, live_progress* progress)
        : source_(source)
        , pools_(pools)
        , out_(out)
        , failure_(failure)
        , halt_(std::move(halt))
        , progress_(progress)
        , splitter_(gzip::member_compressor(0).bound(max_chunk_bytes)) {}

    void run() {
        std::vector<std::byte> buf(256 * 1024);
        enum class mode { detect, members, gzip_serial, tar } m = mode::detect;
        std::vector<std::byte> head; // bytes seen before the format is known
        gzip::stream_inflater inflater;
        for (;;) {
            const auto t0 = clock_type::now();
            auto n = source_.read(buf);
            read_ns_ += ns_since(t0);
            if (!n && keep_what_came_) {
                // The link dropped: the members already queued are whole; a resumable receive
                // parses and commits them before it fails, so the next attempt has less to do.
                cut_ = n.error();
                cut_detail_ = "reading the stream";
                out_.close();
                return;
            }
            if (!n) {
                failure_.set(n.error(), "reading the stream");
                return;
            }
            if (halt_.stop_requested())
                return;
            std::span<const std::byte> in(buf.data(), *n);
            wire_bytes_ += *n;
            if (progress_ != nullptr)
                progress_->wire_bytes.fetch_add(*n, std::memory_order_relaxed);
            const bool eof = *n == 0;

            if (m == mode::detect) {
                head.insert(head.end(), in.begin(), in.end());
                auto h = gzip::inspect_head(head);
                if (!h) {
                    failure_.set(h.error(), "reading the stream header");
                    return;
                }
                if (h->kind == gzip::head_kind::need_more && !eof)
                    continue;
                if (h->kind == gzip::head_kind::need_more && head.empty()) {
                    failure_.set(errc::truncated, "the stream is empty");
                    return;
                }
                switch (h->kind) {
                case gzip::head_kind::podpipe_member:
                    m = mode::members;
                    break;
                case gzip::head_kind::foreign_gzip:
                case gzip::head_kind::need_more: // short gzip-looking input: let zlib say why
                    m = (head.size() >= 2 && head[0] == std::byte{0x1f} &&
                         head[1] == std::byte{0x8b})
                            ? mode::gzip_serial
                            : mode::tar;
                    break;
                case gzip::head_kind::not_gzip:
                    m = mode::tar;
                    break;
                }
                const std::size_t chunk =
                    h->kind == gzip::head_kind::podpipe_member ? h->uncompressed_bytes : 0;
                if (auto p = pools_.setup(chunk); !p) {
                    failure_.set(p.error(), p.error() == errc::member_too_large
                                                ? "the sender's chunks are larger than 8 MiB"
                                                : "memory budget too small for the sender's "
                                                  "chunk size; raise --memory");
                    return;
                }
                format_ = m == mode::members       ? "podpipe-gzip"
                          : m == mode::gzip_serial ? "gzip"
                                                   : "tar";
                in = head;
            }

            bool ok = true;
            switch (m) {
            case mode::members: {
                auto r = feed_members(in);
                if (!r) {
                    ok = false;
                } else if (*r == members_state::ended) {
                    // The sender's end member: the stream is complete even if the channel
                    // never reports EOF. Whatever follows it is not read. recv_tree checks
                    // that the archive before it is whole (end-of-archive marker, manifest).
                    end_member_seen_ = true;
                    out_.close();
                    return;
                } else if (*r == members_state::foreign) {
                    // A foreign member follows ours: continue serially from there.
                    m = mode::gzip_serial;
                    std::vector<std::byte> rest(splitter_.pending().begin(),
                                                splitter_.pending().end());
                    ok = feed_serial(inflater, rest) && feed_serial(inflater, in);
                    if (ok && eof && (ok = drain_serial(inflater))) {
                        if (auto f = inflater.finish(); !f) {
                            failure_.set(f.error(), "the gzip stream");
                            ok = false;
                        }
                    }
                } else if (eof && keep_what_came_) {
                    // Cut (the session closed our input): what came is parsed and committed
                    // first, then the receive fails (resumable receives).
                    cut_ = make_error_code(errc::truncated);
                    cut_detail_ = "the podpipe stream was cut after " +
                                  std::to_string(wire_bytes_) + " bytes, without its end member";
                    out_.close();
                    return;
                } else if (eof) {
                    // podpipe's sender always ends with an empty member: a stream without it
                    // was cut, even where the cut falls between members and tar entries.
                    if (auto f = splitter_.finish(); !f) {
                        failure_.set(f.error(), "the stream ends inside gzip member " +
                                                    std::to_string(seq_));
                    } else {
                        failure_.set(errc::truncated,
                                     "the podpipe stream ends after " + std::to_string(seq_) +
                                         (seq_ == 1 ? " member (" : " members (") +
                                         std::to_string(wire_bytes_) +
                                         " bytes) without its end member: the sender did not "
                                         "finish");
                    }
                    ok = false;
                }
                break;
            }
            case mode::gzip_serial:
                ok = feed_serial(inflater, in);
                if (ok && eof && (ok = drain_serial(inflater))) {
                    if (auto f = inflater.finish(); !f) {
                        failure_.set(f.error(), "the gzip stream");
                        ok = false;
                    }
                }
                break;
            case mode::tar:
                ok = feed_plain(in);
                break;
            case mode::detect:
                break;
            }
            if (m != mode::detect)
                head.clear();
            if (!ok)
                return;
            if (eof) {
                ok = flush_plain();
                out_.close();
                return;
            }
        }
    }

    std::uint64_t wire_bytes() const noexcept { return wire_bytes_; }
    std::uint64_t read_ns() const noexcept { return read_ns_; }
    std::uint64_t members() const noexcept { return seq_; }
    const char* format() const noexcept { return format_; }
    /// The stream was podpipe's and reached the sender's end member.
    bool end_member_seen() const noexcept { return end_member_seen_; }
    /// A read failure ends the stream like an end of file, the error kept for cut_error():
    /// what came before it is parsed (resumable receives).
    void keep_what_came() noexcept { keep_what_came_ = true; }
    std::error_code cut_error() const noexcept { return cut_; }
    const std::string& cut_detail() const noexcept { return cut_detail_; }

private:
    enum class members_state {
        need_more, ///< all of `in` consumed
        foreign,   ///< stopped at a member that is not ours (`in` starts there, after pending())
        ended,     ///< reached the sender's empty end member
    };

    // Cuts members out of `in` and queues them.
    result<members_state> feed_members(std::span<const std::byte>& in) {
        for (;;) {
            auto r = splitter_.next(in);
            if (!r) {
                failure_.set(r.error(), "splitting gzip members");
                return fail(r.error());
            }
            switch (r->kind) {
            case gzip::head_kind::need_more:
                return members_state::need_more;
            case gzip::head_kind::foreign_gzip:
                return members_state::foreign;
            case gzip::head_kind::not_gzip:
                failure_.set(gzip::errc::bad_header, "data after the last gzip member is not gzip");
                return fail(make_error_code(gzip::errc::bad_header));
            case gzip::head_kind::podpipe_member:
                break;
            }
            const auto member = r->member;
            const gzip::head_info& h = r->info;
            if (h.uncompressed_bytes == 0)
                return members_state::ended;
            if (h.uncompressed_bytes > pools_.plain->block_bytes() ||
                member.size() > pools_.packed->block_bytes()) {
                failure_.set(errc::member_too_large,
                             "member " + std::to_string(seq_) + " of " +
                                 std::to_string(h.uncompressed_bytes) + " bytes");
                return fail(make_error_code(errc::member_too_large));
            }
            auto plain = pools_.plain->acquire(halt_);
            auto packed = plain ? pools_.packed->acquire(halt_) : std::nullopt;
            if (!plain || !packed)
                return fail(std::make_error_code(std::errc::operation_canceled));
            std::memcpy(packed->space().data(), member.data(), member.size());
            packed->set_size(member.size());
            member_job job{seq_++, std::move(*packed), std::move(*plain), h.uncompressed_bytes};
            if (!out_.push(std::move(job), halt_))
                return fail(std::make_error_code(std::errc::operation_canceled));
        }
    }

    bool feed_serial(gzip::stream_inflater& inflater, std::span<const std::byte> in) {
        while (!in.empty()) {
            if (!plain_.valid() && !take_plain())
                return false;
            auto space = plain_.space().subspan(plain_.size(), plain_fill_ - plain_.size());
            auto step = inflater.inflate(in, space);
            if (!step) {
                failure_.set(step.error(), "inflating the gzip stream");
                return false;
            }
            in = in.subspan(step->consumed);
            plain_.set_size(plain_.size() + step->produced);
            if (plain_.size() == plain_fill_ && !flush_plain())
                return false;
            if (step->consumed == 0 && step->produced == 0)
                break; // the inflater is done with this input (e.g. trailing padding)
        }
        return true;
    }

    // End of input: collect what zlib still holds.
    bool drain_serial(gzip::stream_inflater& inflater) {
        for (;;) {
            if (!plain_.valid() && !take_plain())
                return false;
            auto space = plain_.space().subspan(plain_.size(), plain_fill_ - plain_.size());
            auto step = inflater.inflate({}, space);
            if (!step) {
                failure_.set(step.error(), "inflating the gzip stream");
                return false;
            }
            plain_.set_size(plain_.size() + step->produced);
            if (step->produced < space.size())
                return true;
            if (!flush_plain())
                return false;
        }
    }

    bool feed_plain(std::span<const std::byte> in) {
        while (!in.empty()) {
            if (!plain_.valid() && !take_plain())
                return false;
            const std::size_t n = std::min(in.size(), plain_fill_ - plain_.size());
            std::memcpy(plain_.space().data() + plain_.size(), in.data(), n);
            plain_.set_size(plain_.size() + n);
            in = in.subspan(n);
            if (plain_.size() == plain_fill_ && !flush_plain())
                return false;
        }
        return true;
    }

    bool take_plain() {
        auto b = pools_.plain->acquire(halt_);
        if (!b)
            return false;
        plain_ = std::move(*b);
        plain_fill_ = std::min<std::size_t>(plain_.capacity(), 1 << 20);
        return true;
    }

    bool flush_plain() {
        if (!plain_.valid() || plain_.size() == 0)
            return true;
        member_job job{seq_++, block{}, std::move(plain_), 0};
        return out_.push(std::move(job), halt_);
    }

    byte_source& source_;
    recv_pools& pools_;
    bounded_queue<member_job>& out_;
    detail::failure_slot& failure_;
    std::stop_token halt_;
    live_progress* progress_;
    gzip::member_splitter splitter_;
    block plain_;
    std::size_t plain_fill_ = 0;
    std::uint64_t seq_ = 0;
    std::uint64_t wire_bytes_ = 0;
    std::uint64_t read_ns_ = 0;
    const char* format_ = "unknown";
    bool end_member_seen_ = false;
    bool keep_what_came_ = false;
    std::error_code cut_;
    std::string cut_detail_;
};

// What a failed receive removed (tree_writer::abandon), for the failure's detail.
std::string describe_removed(const std::vector<std::string>& paths) {
    if (paths.empty())
        return {};
    std::string s = "; removed " + std::to_string(paths.size()) +
                    (paths.size() == 1 ? " file" : " files") + " left unfinished (";
    constexpr std::size_t named = 3;
    for (std::size_t i = 0; i < std::min(paths.size(), named); ++i)
        s += (i == 0 ? "'" : ", '") + paths[i] + "'";
    if (paths.size() > named)
        s += ", ...";
    return s + ")";
}

// The ledger side of a resumable receive (ledger.hpp): restores an earlier receiver's state
// when asked to and trusted, then records a resume point every commit_every bytes of tar.
class resume_keeper {
public:
    resume_keeper(ledger_files files, const resume_options& opt)
        : files_(std::move(files)), opt_(opt) {}

    // Before the first byte: continue from the ledger, or start over (discarding what a
    // first attempt under this id left, and a ledger that cannot be trusted). Tells on_offer.
    std::optional<transfer_error> start(extract_handler& handler, tar::parser& parser,
                                       io::tree_writer& writer) {
        handler.log_directories();
        auto rec = files_.read_record();
        resume_offer offer;
        std::string why;
        if (opt_.resume && !rec) {
            why = "the receiver has no resume point for this transfer";
        } else if (opt_.resume) {
            auto dirs = decode_dir_log(files_.read_dir_log(rec->dirs_bytes));
            if (!handler.restore_manifest(rec->manifest_state) ||
                !(handler.peek_manifest() == rec->before))
                why = "the receiver's ledger does not match its own manifest state";
            else if (!dirs)
                why = "the receiver's directory log is damaged";
            else if (!parser.resume_at(rec->point))
                why = "the receiver's ledger names an impossible resume point";
            if (why.empty()) {
                if (auto e = take_over(*rec, *dirs, handler, writer))
                    return e;
                offer = {rec->point.offset, rec->before};
                point_ = rec->point.offset;
            }
        } else if (rec && rec->point.in_content) {
            // A new first attempt: the file an earlier one left unfinished is not a copy.
            (void)writer.remove(rec->point.current.path);
        }
        if (offer.offset == 0) {
            if (!why.empty())
                handler.reset_manifest();
            if (auto r = files_.reset(); !r)
                return transfer_error(r.error(), "resetting the resume ledger");
        }
        if (opt_.on_offer)
            opt_.on_offer(offer, why);
        return std::nullopt;
    }

    // After each parsed chunk: a commit when commit_every bytes passed and the parser stands
    // where a later one can take over (not after the manifest: the check is done by then).
    std::optional<transfer_error> after_chunk(std::uint64_t fed, extract_handler& handler,
                                             const tar::parser& parser,
                                             io::tree_writer& writer) {
        since_ += fed;
        const auto now = std::chrono::steady_clock::now();
        const bool due = since_ >= opt_.commit_every ||
                         (since_ >= (64 << 10) && now - last_commit_ >= opt_.commit_interval);
        if (!due || handler.sent() || parser.ended() || broken_)
            return std::nullopt;
        const auto point = parser.where();
        if (!point || point->offset == 0)
            return std::nullopt;
        // The bytes before the point are on disk before the ledger says they are.
        if (auto r = writer.sync(); !r)
            return transfer_error(r.error(), writer.last_error_detail());
        ledger_record rec{*point, handler.save_manifest(), handler.peek_manifest(), 0};
        auto w = files_.append_dirs(handler.take_dir_records());
        if (w) {
            rec.dirs_bytes = files_.dir_log_bytes();
            w = files_.commit(rec);
        }
        if (!w) {
            // A full disk or a read-only ledger costs the resume, not the transfer.
            broken_ = true;
            return std::nullopt;
        }
        point_ = point->offset;
        ++commits_;
        since_ = 0;
        last_commit_ = now;
        return std::nullopt;
    }

    // A resume point is recorded: a failed receive keeps what it wrote.
    bool has_point() const noexcept { return point_ > 0 && !broken_; }
    std::uint64_t point() const noexcept { return point_; }
    std::uint64_t commits() const noexcept { return commits_; }
    std::uint64_t resumed_at() const noexcept { return resumed_at_; }
    void completed() { files_.remove(); }

private:
    std::optional<transfer_error> take_over(const ledger_record& rec,
                                           const std::vector<io::file_entry>& dirs,
                                           extract_handler& handler, io::tree_writer& writer) {
        const auto failed = [&](std::error_code ec, const std::string& what) {
            // The next attempt must not trust this ledger again.
            (void)files_.reset();
            return transfer_error(ec, "resuming: " + what + ": " + writer.last_error_detail());
        };
        if (auto r = files_.keep_dirs(rec.dirs_bytes); !r)
            return failed(r.error(), "the directory log");
        for (const io::file_entry& d : dirs)
            if (auto r = writer.adopt_directory(d); !r)
                return failed(r.error(), "directory '" + d.path + "'");
        if (rec.point.in_content)
            if (auto r = handler.resume_entry(rec.point); !r)
                return failed(r.error(), "file '" + rec.point.current.path + "'");
        resumed_at_ = rec.point.offset;
        return std::nullopt;
    }

    ledger_files files_;
    const resume_options& opt_;
    std::uint64_t since_ = 0;
    std::chrono::steady_clock::time_point last_commit_ = std::chrono::steady_clock::now();
    std::uint64_t point_ = 0;
    std::uint64_t commits_ = 0;
    std::uint64_t resumed_at_ = 0;
    bool broken_ = false;
};

// A podpipe stream is whole only with all three of its ends: the tar end-of-archive marker and
// the manifest before it (both in the last data member), then the empty end member. Plain tar
// and foreign gzip streams keep tar's rules (parser::finish).
void check_podpipe_end(const tar::parser& parser, bool manifest_seen,
                       detail::failure_slot& failure) {
    if (!parser.end_marker_seen())
        failure.set(errc::truncated,
                    "the podpipe stream's end member comes after " +
                        std::to_string(parser.bytes_consumed()) +
                        " bytes of tar, before the archive's end-of-archive marker: the rest "
                        "of the archive is missing");
    else if (!manifest_seen)
        failure.set(errc::truncated, "the podpipe stream ends without the sender's manifest");
}

} // namespace

result<transfer_stats, transfer_error> recv_tree(byte_source& source, const std::string& root,
                                                 const recv_options& opt, std::stop_token stop) {
    const auto t_start = clock_type::now();
    const unsigned threads = opt.threads == 0 ? usable_cores() : opt.threads;

    constexpr std::size_t reserve = 16 << 20;
    const std::size_t usable = opt.memory_bytes > reserve ? opt.memory_bytes - reserve : 0;
    const std::size_t window = std::clamp<std::size_t>(usable / 4, 1 << 20, 32 << 20);
    // Declared before the queues: jobs in the queues hold blocks of these pools.
    recv_pools pools;
    pools.usable_bytes = usable - std::min(usable, window);
    pools.max_blocks = 4 * threads + 4;

    io::write_options wopt;
    wopt.window_bytes = window;
    wopt.restore_owner = opt.restore_owner;
    std::string open_detail;
    auto writer = io::tree_writer::open(root, wopt, &open_detail);
    if (!writer) {
        return fail(transfer_error(writer.error(),
                                   open_detail.empty()
                                       ? "cannot open target directory '" + root + "'"
                                       : open_detail));
    }

    // Parse and write happen on the caller's thread (below); a resumed receive restores them
    // before anything is read.
    extract_handler handler(**writer, opt.progress, opt.excludes);
    tar::parser parser(handler);
    std::optional<resume_keeper> keeper;
    if (opt.resumable) {
        auto files = ledger_files::open(root, opt.resumable->id, opt.resumable->lock_wait);
        if (!files && files.error() == std::errc::timed_out)
            return fail(transfer_error(files.error(), "another receive of this transfer still "
                                                      "holds its resume ledger in '" +
                                                          root + "'"));
        if (files) {
            keeper.emplace(std::move(*files), *opt.resumable);
            if (auto e = keeper->start(handler, parser, **writer)) {
                (*writer)->abandon();
                return fail(std::move(*e));
            }
        } else if (opt.resumable->on_offer) {
            // A root the receiver can write entries below but not a ledger into (read-only
            // root directory, no space): the transfer goes on, it just cannot be resumed.
            opt.resumable->on_offer({}, "cannot keep a resume ledger in '" + root +
                                            "': " + files.error().message());
        }
    }

    bounded_queue<member_job> to_inflate(pools.max_blocks);
    bounded_queue<member_job> to_parse(pools.max_blocks);
    std::stop_source halt;
    std::stop_callback forward_stop(stop, [&] { halt.request_stop(); });
    detail::failure_slot failure(halt);
    // A stop or a failure wakes a read blocked on a sender that went quiet: the joins below
    // must not wait for it.
    std::stop_callback wake_source(halt.get_token(), [&] { source.interrupt(); });

    std::atomic<unsigned> workers_left{threads};
    std::atomic<std::uint64_t> inflate_busy_ns{0};
    std::atomic<std::uint64_t> inflate_in{0};
    std::atomic<std::uint64_t> inflate_out{0};

    splitter_stage splitter(source, pools, to_inflate, failure, halt.get_token(), opt.progress);
    if (keeper)
        splitter.keep_what_came();

    std::vector<std::jthread> threads_v;
    threads_v.reserve(threads + 1);
    for (unsigned i = 0; i < threads; ++i) {
        threads_v.emplace_back([&] {
            gzip::member_decompressor inflater;
            while (auto job = to_inflate.pop(halt.get_token())) {
                if (job->packed.valid()) {
                    const auto t0 = clock_type::now();
                    auto n = inflater.decompress(job->packed.data(), job->plain.space());
                    if (!n) {
                        failure.set(n.error(), "gzip member " + std::to_string(job->seq));
                        break;
                    }
                    if (*n != job->expected_bytes) {
                        failure.set(gzip::errc::bad_length,
                                    "gzip member " + std::to_string(job->seq) +
                                        ": length differs from its header");
                        break;
                    }
                    inflate_in.fetch_add(job->packed.size(), std::memory_order_relaxed);
                    inflate_out.fetch_add(*n, std::memory_order_relaxed);
                    job->plain.set_size(*n);
                    job->packed.reset();
                    inflate_busy_ns.fetch_add(ns_since(t0), std::memory_order_relaxed);
                }
                if (!to_parse.push(std::move(*job), halt.get_token()))
                    break;
            }
            if (workers_left.fetch_sub(1) == 1)
                to_parse.close();
        });
    }
    threads_v.emplace_back([&] { splitter.run(); });

    // Parse and write on the caller's thread, in sequence order.
    std::map<std::uint64_t, member_job> early;
    std::uint64_t next = 0;
    std::uint64_t tar_bytes = 0;
    std::uint64_t parse_ns = 0;
    bool parse_failed = false;
    while (auto job = to_parse.pop(halt.get_token())) {
        early.emplace(job->seq, std::move(*job));
        while (!early.empty() && early.begin()->first == next) {
            block plain = std::move(early.begin()->second.plain);
            early.erase(early.begin());
            ++next;
            if (parser.ended())
                continue; // bytes after the end of the archive (record padding) are ignored
            const auto t0 = clock_type::now();
            auto r = parser.feed(plain.data());
            parse_ns += ns_since(t0);
            tar_bytes += plain.size();
            if (!r) {
                // The writer's cause wins: its I/O completes asynchronously, so the parser only
                // sees the error at some later entry and knows nothing of the errno.
                std::string detail = (*writer)->last_error_detail();
                if (detail.empty())
                    detail = handler.failure_detail();
                if (detail.empty())
                    detail = parser.last_error_detail();
                failure.set(r.error(), std::move(detail));
                parse_failed = true;
                break;
            }
            if (keeper) {
                if (auto e = keeper->after_chunk(plain.size(), handler, parser, **writer)) {
                    failure.set(e->code, e->detail);
                    parse_failed = true;
                    break;
                }
            }
        }
        if (parse_failed)
            break;
    }
    if (parse_failed)
        halt.request_stop(); // wakes the splitter and workers waiting on full queues
    for (auto& t : threads_v)
        t.join();

    if (!failure.error() && splitter.cut_error())
        failure.set(splitter.cut_error(), splitter.cut_detail());
    if (!failure.error() && !stop.stop_requested()) {
        if (auto f = parser.finish(); !f)
            failure.set(f.error(), parser.last_error_detail());
        else if (splitter.end_member_seen())
            check_podpipe_end(parser, handler.sent().has_value(), failure);
    }
    result<io::write_stats> written = fail(std::make_error_code(std::errc::operation_canceled));
    if (!failure.error() && !stop.stop_requested()) {
        written = (*writer)->finish();
        if (!written)
            failure.set(written.error(), (*writer)->last_error_detail());
    }
    if (!failure.error() && opt.require_manifest && !handler.sent())
        failure.set(errc::manifest_missing, {});

    if (failure.error() || stop.stop_requested()) {
        std::string removed;
        if (keeper && keeper->has_point()) {
            const auto left = (*writer)->suspend();
            removed = "; kept for a resume at stream offset " + std::to_string(keeper->point()) +
                      " (" + std::to_string(left.size()) +
                      (left.size() == 1 ? " file" : " files") + " unfinished)";
        } else {
            removed = describe_removed((*writer)->abandon());
            if (keeper)
                keeper->completed(); // nothing to resume from: no ledger left behind
        }
        if (const auto ec = failure.error())
            return fail(transfer_error(ec, failure.detail() + removed));
        return fail(transfer_error(std::make_error_code(std::errc::operation_canceled),
                                   "interrupted" + removed));
    }

    transfer_stats s;
    if (keeper) {
        keeper->completed();
        s.resumed_at = keeper->resumed_at();
        s.resume_commits = keeper->commits();
    }
    const io::write_stats& w = *written;
    detail::copy_entry_counts(s, w);
    s.tar_bytes = tar_bytes;
    s.wire_bytes = splitter.wire_bytes();
    s.chunks = splitter.members();
    s.manifest_checked = handler.sent().has_value();
    s.problems = handler.problems();
    s.deletions = w.deleted;
    s.manifest = handler.received() ? *handler.received() : handler.received_so_far();
    s.seconds = static_cast<double>(ns_since(t_start)) / 1e9;
    s.stages.push_back({"source", s.wire_bytes, s.wire_bytes, splitter.read_ns(),
                        pools.blocked_ns() +
                            to_inflate.push_blocked_ns(),
                        1});
    s.stages.push_back({"decompress", inflate_in.load(), inflate_out.load(),
                        inflate_busy_ns.load(),
                        to_inflate.pop_blocked_ns() + to_parse.push_blocked_ns(), threads});
    s.stages.push_back({"parse+write", tar_bytes, s.content_bytes, parse_ns,
                        to_parse.pop_blocked_ns(), 1});
    return s;
}

} // namespace podpipe::pipeline
