// send_tree: directory → gzip'd tar stream into a byte_sink.
//
//   walk+read (caller's thread, io::read_tree) ─► tar framing into chunk blocks
//     ─► N compress workers (one libdeflate member per chunk) ─► in-order writer ─► sink
//
// Memory: chunk blocks come from two fixed pools (raw and compressed) sized from
// memory_bytes, plus the reader's read-ahead window; nothing grows with the tree or with a
// slow sink. A chunk's output block is taken before its input is filled, in sequence order,
// so the writer's next chunk always has its block and the reorder window cannot deadlock.
#pragma once

#include "engine/common/result.hpp"
#include "engine/pipeline/acks.hpp"
#include "engine/pipeline/byte_stream.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/ledger.hpp"
#include "engine/pipeline/stats.hpp"

#include <cstddef>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::pipeline {

/// Limits of the chunk size both sides accept (the receiver sizes its blocks from the max).
inline constexpr std::size_t min_chunk_bytes = 64 * 1024;
inline constexpr std::size_t max_chunk_bytes = 8 * 1024 * 1024;
inline constexpr int default_level = 1;
/// send_options::level value that lets the sender pick the level per chunk. It starts at 1 and
/// moves along a ladder (1, 2, 4, 6, 7), deciding once per window (>= 200 ms and >= 4 chunks):
/// up while the sink is the bottleneck (the writer spends > 85% of the window inside
/// sink.write) *and* the compressed stream drains slower than auto_climb_below (then only the
/// size of the stream counts and the CPU has time to spare) — one step, or straight to the top
/// when it drains slower than 60% of auto_climb_below; down one step when compression makes
/// the writer wait (< 50% inside sink.write). With send_options::acks the sender first probes
/// the link: at most auto_probe_window bytes unacknowledged until the acknowledgements have
/// moved 512 KiB past the first one (or 100 ms passed); below auto_climb_below it goes
/// straight to the top (buffers along the path would otherwise take the first ~10 MB at
/// level 1 before a slow link shows), keeps at most auto_hold_window bytes unacknowledged
/// from then on (the controller sees the link, not buffers filling) and recompresses chunks
/// still queued at the start level. Measured end to end (BENCHMARKS.md, issue 7
/// suite): level 1 is fastest from 200 Mbit/s up, 6-7 at 50 Mbit/s; stored (0) lost at every
/// link (the exec path costs more CPU per byte than level 1), libdeflate 9 compresses at
/// 8-45 MB/s on 2 cores (too slow even for 50 Mbit/s) while 7 makes a smaller stream than
/// pigz -6. The drain-rate condition keeps a busy but fast sink (an exec proxy or a receiver on
/// shared cores at 1 Gbit/s or more) at level 1.
inline constexpr int auto_level = -1;
inline constexpr int auto_level_ladder[] = {1, 2, 4, 6, 7};
inline constexpr int auto_level_start = 0; ///< index into auto_level_ladder
/// Compressed bytes/s below which a sink-bound transfer raises the level (100 Mbit/s).
inline constexpr double auto_climb_below_default = 12.5e6;
/// Unacknowledged bytes the sender allows while it probes the link's rate (see auto_level),
/// and for the rest of the transfer when the probe found the link slow.
inline constexpr std::uint64_t auto_probe_window = 512 << 10;
inline constexpr std::uint64_t auto_hold_window = 2 << 20;

struct send_options {
    int level = default_level;             ///< 0 (stored) .. 12, or auto_level
    unsigned threads = 0;                  ///< compress workers; 0 = cores available
    std::size_t chunk_bytes = 1 << 20;     ///< uncompressed bytes per gzip member
    std::size_t memory_bytes = 256 << 20;  ///< budget for all buffers of the transfer
    double auto_climb_below = auto_climb_below_default; ///< see auto_level (bytes/s)
    std::vector<std::string> excludes;     ///< fnmatch patterns (GNU tar --exclude rules)
    /// A selection: only these paths beneath root (relative, as io::file_entry::path), with
    /// the directories on the way to them; nullopt: the whole tree; empty: the root's entry
    /// alone (a stream of deletions). A selected path that does not exist is not sent
    /// (compare the snapshot to find it). "." selects everything.
    std::optional<std::vector<std::string>> only;
    /// With `only`: a selected directory brings its contents; false: its own entry only.
    bool only_descend = true;
    /// Paths (relative) the receiver deletes beneath its root before it extracts anything:
    /// carried first in the stream (tar::append_deletions) and in the manifest's digest, so a
    /// podpipe receiver that verifies applied them; a plain tar ignores them (the caller
    /// deletes some other way). Unsafe paths (absolute, "..", the root) are bad_options.
    std::vector<std::string> deletions;
    /// Fill transfer_stats::snapshot with what the walk listed.
    bool snapshot = false;
    live_progress* progress = nullptr;     ///< optional, updated while running
    ack_counter* acks = nullptr;           ///< the receiver's acknowledgements, if it sends them
    /// Continue a transfer a resumable receiver has part of (recv_options::resumable; its
    /// on_offer says where): the tree is walked and read from the start (the manifest covers
    /// all of it) but nothing before the offset is sent; the stream starts there. Fails with
    /// errc::resume_mismatch, before sending anything, when the manifest at the offset is not
    /// the receiver's (the source changed): the caller starts the copy over.
    std::optional<resume_offer> resume_from;
};

/// Sends the tree under root. Errors carry the first failure of any stage with its detail; the
/// sink may have received a partial stream (the receiver detects that: no end member).
result<transfer_stats, transfer_error> send_tree(const std::string& root, byte_sink& sink,
                                                 const send_options& opt,
                                                 std::stop_token stop = {});

/// Validates options (ranges of level, chunk size, memory); a message for the user on error.
result<void, std::string> check_send_options(const send_options& opt);

} // namespace podpipe::pipeline
