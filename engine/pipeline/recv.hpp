// recv_tree: a byte_source carrying a tar stream → a directory.
//
//   source (one thread: read, split members) ─► N decompress workers ─► in order
//     ─► tar parse + manifest check ─► io::tree_writer (io_uring writes)
//
// Accepts a podpipe stream (gzip members with our length subfield, inflated in parallel),
// any other gzip stream (inflated serially with zlib), or an uncompressed tar.
// Safety lives in io::tree_writer: nothing is written outside root.
#pragma once

#include "engine/common/result.hpp"
#include "engine/pipeline/byte_stream.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/ledger.hpp"
#include "engine/pipeline/stats.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::pipeline {

enum class stream_format { automatic, podpipe_gzip, gzip, tar };

/// A receive that a later one can continue (ledger.hpp): the same `id` for every attempt of one
/// transfer.
struct resume_options {
    std::string id;       ///< ledger.hpp: valid_transfer_id
    /// true: continue from the ledger if it can be trusted (else start over, and say why);
    /// false: a first attempt (a ledger left under this id is discarded, with the file it had
    /// begun).
    bool resume = false;
    /// Tar bytes between commits: each costs a drain of the writer's queue.
    std::uint64_t commit_every = 4 << 20;
    /// ... or this long since the last one (with at least 64 KiB new): a slow link still
    /// leaves a recent point.
    std::chrono::milliseconds commit_interval{1000};
    /// How long to wait for an earlier receiver of this id that still holds the ledger.
    std::chrono::milliseconds lock_wait{30000};
    /// Called once, before the first byte is read: where the sender must start (offset 0:
    /// from the beginning) and, when a resume was asked for and is not possible, why. A root
    /// where no ledger can be written (read-only root directory, no space) is no error: the
    /// receive goes on without one (offer 0 and why, even on a first attempt).
    std::function<void(const resume_offer&, const std::string& why_not)> on_offer;
};

struct recv_options {
    unsigned threads = 0;                  ///< decompress workers; 0 = cores available
    std::size_t memory_bytes = 256 << 20;  ///< budget for all buffers of the transfer
    bool require_manifest = false;         ///< error if the stream carries no podpipe manifest
    bool restore_owner = false;            ///< chown entries (root only)
    /// Entries not to write (GNU tar --exclude rules, as send_options::excludes; an excluded
    /// directory excludes what is below it). They still count for the manifest check.
    std::vector<std::string> excludes;
    live_progress* progress = nullptr;
    /// Keep a ledger so that a later receive continues this one (resume_options).
    std::optional<resume_options> resumable;
};

/// Receives into root (created if missing). On error, the code says what failed and the
/// detail which entry and why (unsafe path, corrupt member, manifest mismatch, truncated
/// stream, the writer's system error) and which unfinished files were removed. A resumable
/// receive that committed a resume point removes nothing: it keeps what it wrote for the next
/// attempt (its detail says so); one that succeeds removes its ledger.
result<transfer_stats, transfer_error> recv_tree(byte_source& source, const std::string& root,
                                                 const recv_options& opt,
                                                 std::stop_token stop = {});

} // namespace podpipe::pipeline
