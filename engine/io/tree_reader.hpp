// read_tree: the send side of engine/io. Walks a directory tree in deterministic archive order
// and streams every entry plus the content of regular files to a tree_consumer.
//
// Order: depth-first; the entries of each directory sorted by name bytes (memcmp); a
// directory's entry before its contents; the root itself is not emitted.
//
// How: `walk_threads` threads list directories (getdents64 + statx through io_uring) ahead of
// the consumer in DFS priority, bounded by `walk_ahead_entries`; the calling thread opens and
// reads file contents through its own io_uring: files up to small_file_bytes are read whole with
// many in flight (up to queue_depth requests) inside the window_bytes read-ahead budget; bigger
// files are read in large_read_bytes pieces, two in flight. Without io_uring (see
// io_uring_available()) the same code runs on plain syscalls.
//
// Consistency under concurrent modification:
//  - small file: the entry's size is the number of bytes actually read (a file that grew past
//    its statx size by more than a page is cut there, with a warning);
//  - large file: the size comes from statx on the open fd; if it shrinks while being read the
//    rest is zero-padded ("file 'x' shrank by N bytes while being read; padded with zeros"),
//    if it grows only the announced size is sent (warning);
//  - vanished before its entry was emitted (ENOENT on open): skipped with a warning;
//  - cannot be opened (EACCES, ...): skipped with a warning, counted in `unreadable`;
//  - sockets, fifos, devices: skipped with a warning ("skipping fifo 'x'");
//  - regular files with nlink > 1: the first occurrence (archive order) carries the content,
//    later ones become file_kind::hardlink with link_target = the first path and size 0.
// Warnings go to podpipe::log::warn (from the calling thread, in archive order).
//
// Thread safety: read_tree may run concurrently on different trees/consumers. The consumer is
// called only on the calling thread and may modify the tree (tests do).
#pragma once

#include "engine/common/result.hpp"
#include "engine/common/sender_problems.hpp"
#include "engine/io/file_entry.hpp"
#include "engine/io/paths.hpp"
#include "engine/io/ring.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::io {

class tree_consumer {
public:
    virtual ~tree_consumer() = default;
    /// Called in archive order. An error aborts read_tree with that error.
    virtual result<void> on_entry(const file_entry& e) = 0;
    /// Content of the last regular entry, in order; exactly e.size bytes in total, any split.
    /// The span is valid only during the call.
    virtual result<void> on_data(std::span<const std::byte> bytes) = 0;
};

struct read_options {
    unsigned walk_threads = 2;                 ///< parallel directory listing (>= 1)
    unsigned queue_depth = 64;                 ///< io_uring requests in flight, per ring
    std::size_t small_file_bytes = 256 * 1024; ///< files up to this are read whole, many in flight
    /// Read-ahead memory ceiling for content; small-file buffers kept for reuse count in it.
    std::size_t window_bytes = 32 << 20;
    std::size_t large_read_bytes = 1 << 20;    ///< read size for big files
    /// fnmatch patterns, matched like GNU tar --exclude against the relative path, any suffix
    /// after a '/' and the basename; an excluded directory is neither emitted nor descended.
    std::vector<std::string> excludes;
    /// Only the selected paths and the directories on the way to them; null: the whole tree.
    std::shared_ptr<const path_selection> selection;
    /// Fill read_stats::snapshot with every regular file, directory and symlink listed.
    bool keep_snapshot = false;
    // Additions:
    /// Listed-but-not-yet-consumed directory entries the walkers may hold (memory bound).
    std::size_t walk_ahead_entries = 1 << 15;
    /// false forces the plain-syscall fallback (benchmarks, tests).
    bool use_io_uring = true;
    /// Fault injection on the content ring: its n-th operation fails with EIO. ~0 = off.
    std::uint64_t fail_ring_op_for_test = ~std::uint64_t{0};
};

struct read_stats {
    std::uint64_t entries = 0, files = 0, directories = 0, symlinks = 0, hardlinks = 0;
    /// Not emitted: sockets/fifos/devices, vanished and unreadable files, unlistable dirs.
    std::uint64_t skipped = 0;
    std::uint64_t content_bytes = 0; ///< bytes passed to on_data (padding included)
    std::uint64_t warnings = 0;
    std::uint64_t walk_ns = 0;     ///< summed over walker threads
    std::uint64_t read_ns = 0;     ///< calling thread: submitting and waiting for file I/O
    std::uint64_t consumer_ns = 0; ///< inside consumer callbacks = downstream backpressure
    // Additions:
    std::uint64_t unreadable = 0;  ///< files/dirs skipped because they could not be opened
    std::uint64_t vanished = 0;    ///< files gone (ENOENT) before their entry was emitted
    std::uint64_t walk_wait_ns = 0; ///< calling thread waiting for directory listings
    bool used_io_uring = false;
    /// Entries not sent as they are on disk: unreadable, vanished, changed type, shrank, grew
    /// or failed while being read, directories not listed. (Sockets, fifos and devices are
    /// skipped by design, as tar does, and are not problems.) Each is also a warning.
    sender_problems problems;
    /// With read_options::keep_snapshot: the entries as listed, in archive order (a file that
    /// vanished or was unreadable when read is still listed; its problem says so).
    std::vector<walked_entry> snapshot;
};

/// Walks `root` (a directory; symlinks on the way to it are followed) and feeds `consumer`.
/// Errors: root_not_found / not_a_directory / io_failed for the root (detail names the path),
/// cancelled when `stop` is triggered, io_failed when the ring itself fails, or the consumer's
/// own error unchanged. Per-file problems are warnings, not errors (see above). When
/// `error_detail` is not null it receives a one-line description of a returned error.
result<read_stats> read_tree(const std::string& root, const read_options& opt,
                             tree_consumer& consumer, std::stop_token stop = {},
                             std::string* error_detail = nullptr);

struct walk_options {
    unsigned threads = 2;
    std::vector<std::string> excludes; ///< as read_options::excludes
    std::shared_ptr<const path_selection> selection;
    bool use_io_uring = true;
};

struct walk_result {
    std::vector<walked_entry> entries; ///< archive order
    /// Directories that could not be listed (their contents are missing from entries).
    std::vector<std::string> problems;
};

/// The listing half of read_tree alone: the snapshot of `root` without reading any content
/// (parallel getdents64 + statx). Errors as read_tree's for the root; cancelled on stop.
result<walk_result> walk_tree(const std::string& root, const walk_options& opt,
                              std::stop_token stop = {}, std::string* error_detail = nullptr);

/// walk_tree without keeping the entries: `visit` gets each one in archive order (it may move
/// from it) on the calling thread. Returns the problems (as walk_result::problems).
result<std::vector<std::string>> walk_tree_visit(const std::string& root,
                                                 const walk_options& opt,
                                                 const std::function<void(walked_entry&)>& visit,
                                                 std::stop_token stop = {},
                                                 std::string* error_detail = nullptr);

} // namespace podpipe::io
