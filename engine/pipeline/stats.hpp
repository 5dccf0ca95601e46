// Counters every stage keeps (bytes in, bytes out, time blocked, time busy) and the summary a
// transfer returns. `live_progress` is updated by the pipeline while it runs and may be read
// from any thread (a progress printer polls it).
#pragma once

#include "engine/io/file_entry.hpp"
#include "engine/tar/manifest.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace podpipe::pipeline {

struct stage_stats {
    std::string name;             ///< walk, read, tar, compress, sink / source, split, decompress, parse, write
    std::uint64_t bytes_in = 0;   ///< bytes the stage consumed
    std::uint64_t bytes_out = 0;  ///< bytes the stage produced
    std::uint64_t busy_ns = 0;    ///< time spent working (summed over the stage's threads)
    std::uint64_t blocked_ns = 0; ///< time spent waiting on a neighbour (full output or empty input)
    unsigned threads = 1;
};

struct transfer_stats {
    std::uint64_t entries = 0;
    std::uint64_t files = 0;
    std::uint64_t directories = 0;
    std::uint64_t symlinks = 0;
    std::uint64_t hardlinks = 0;
    std::uint64_t skipped = 0;        ///< entries not transferred (sockets, fifos, unreadable)
    std::uint64_t content_bytes = 0;  ///< file content bytes
    std::uint64_t tar_bytes = 0;      ///< uncompressed stream bytes
    std::uint64_t wire_bytes = 0;     ///< compressed stream bytes (what crossed the sink/source)
    std::uint64_t chunks = 0;         ///< gzip members
    std::uint64_t warnings = 0;
    double seconds = 0;
    bool manifest_checked = false;    ///< receive: a podpipe manifest was found and matched
    std::array<std::uint64_t, 13> chunks_per_level{}; ///< send: how many chunks each level compressed
    /// send: chunks stored because they did not compress (gzip::member_compressor::last_stored)
    std::uint64_t chunks_stored = 0;
    /// send: the receiver's rate from its acknowledgements (bytes/s), 0 if not probed
    double probed_rate = 0;
    tar::manifest manifest;           ///< send: what was sent; receive: what was received
    /// Entries the sender could not send as they are on its disk (send: found while reading;
    /// receive: reported in the stream). The manifest covers only what was sent, so a copy
    /// with problems is not a verified copy of the sender's tree.
    tar::sender_problems problems;
    /// send: deletions the stream carried (send_options::deletions); receive: deletions
    /// applied (a path already gone counts). A receiver that verified the manifest applied
    /// every deletion the stream carried (they are part of the digest).
    std::uint64_t deletions = 0;
    /// The tar offset this transfer continued an earlier one at (0: from the start). The
    /// manifest covers the whole stream; the entry and byte counts what this one wrote.
    std::uint64_t resumed_at = 0;
    std::uint64_t resume_commits = 0; ///< receive: resume points recorded in the ledger
    /// send with send_options::snapshot: every regular file, directory and symlink the walk
    /// listed, in archive order (io::walked_entry: what a caller keeps to detect change).
    std::vector<io::walked_entry> snapshot;
    std::vector<stage_stats> stages;
};

/// Updated while a transfer runs; read by progress printers on another thread.
struct live_progress {
    std::atomic<std::uint64_t> entries{0};
    std::atomic<std::uint64_t> content_bytes{0};
    std::atomic<std::uint64_t> wire_bytes{0};
};

} // namespace podpipe::pipeline
