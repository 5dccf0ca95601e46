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
#include "engine/pipeline/stats.hpp"

#include <cstddef>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::pipeline {

enum class stream_format { automatic, podpipe_gzip, gzip, tar };

struct recv_options {
    unsigned threads = 0;                  ///< decompress workers; 0 = cores available
    std::size_t memory_bytes = 256 << 20;  ///< budget for all buffers of the transfer
    bool require_manifest = false;         ///< error if the stream carries no podpipe manifest
    bool restore_owner = false;            ///< chown entries (root only)
    /// Entries not to write (GNU tar --exclude rules, as send_options::excludes; an excluded
    /// directory excludes what is below it). They still count for the manifest check.
    std::vector<std::string> excludes;
    live_progress* progress = nullptr;
};

/// Receives into root (created if missing). On error, the code says what failed and the
/// detail which entry and why (unsafe path, corrupt member, manifest mismatch, truncated
/// stream, the writer's system error) and which unfinished files were removed.
result<transfer_stats, transfer_error> recv_tree(byte_source& source, const std::string& root,
                                                 const recv_options& opt,
                                                 std::stop_token stop = {});

} // namespace podpipe::pipeline
