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
#include "engine/pipeline/byte_stream.hpp"
#include "engine/pipeline/stats.hpp"

#include <cstddef>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::pipeline {

/// Limits of the chunk size both sides accept (the receiver sizes its blocks from the max).
inline constexpr std::size_t min_chunk_bytes = 64 * 1024;
inline constexpr std::size_t max_chunk_bytes = 8 * 1024 * 1024;
inline constexpr int default_level = 1;
/// send_options::level value that lets the sender pick the level per chunk: it starts at 1 and
/// moves along a ladder (0, 1, 2, 4, 6, 7; libdeflate 9 ran at 8 MB/s on 2 cores, too slow even
/// for 50 Mbit/s, while 7 gives a smaller stream than pigz -6): up while the sink is the bottleneck (the writer
/// spends most of its time inside sink.write, so the link, not the CPU, sets the pace), down
/// when compression makes the writer wait (down to 0, stored, on links faster than the CPU).
inline constexpr int auto_level = -1;
inline constexpr int auto_level_ladder[] = {0, 1, 2, 4, 6, 7};
inline constexpr int auto_level_start = 1; ///< index into auto_level_ladder

struct send_options {
    int level = default_level;             ///< 0 (stored) .. 12, or auto_level
    unsigned threads = 0;                  ///< compress workers; 0 = cores available
    std::size_t chunk_bytes = 1 << 20;     ///< uncompressed bytes per gzip member
    std::size_t memory_bytes = 256 << 20;  ///< budget for all buffers of the transfer
    std::vector<std::string> excludes;     ///< fnmatch patterns (GNU tar --exclude rules)
    live_progress* progress = nullptr;     ///< optional, updated while running
};

/// Sends the tree under root. Errors carry the first failure of any stage; the sink may have
/// received a partial stream (the receiver detects that: no manifest, truncated member).
result<transfer_stats> send_tree(const std::string& root, byte_sink& sink,
                                 const send_options& opt, std::stop_token stop = {});

/// Validates options (ranges of level, chunk size, memory); a message for the user on error.
result<void, std::string> check_send_options(const send_options& opt);

} // namespace podpipe::pipeline
