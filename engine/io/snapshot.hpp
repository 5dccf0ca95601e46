// tree_snapshot: what a tree held when it was walked (path, kind, mode, size, mtime, inode,
// link target per entry), the delta between two snapshots, and the snapshot's saved form.
// The pieces, as an incremental sender uses them:
//   snapshot_tree(root) (or tree_snapshot::from_walk of transfer_stats::snapshot, the walk a
//     send already made) + load_snapshot(what the receiver is known to hold)
//     → diff_snapshots → tree_delta
//   send the selection delta.send + delta.new_dirs (send_options::only, only_descend = false)
//     with the deletions delta.replaced + delta.removed (send_options::deletions)
//   save_snapshot(now) once the receiver acknowledged the transfer.
//
// Memory: one entry costs 48 bytes plus the bytes of its path and of its link target (about
// 120 bytes for a typical 70-byte path; 1M entries about 120 MB), with no allocation per
// entry: fixed records in one array, the names in one arena. Building from a walk sorts the
// records (O(n log n) comparisons of paths).
//
// Thread safety: a tree_snapshot is a value; const use from several threads is safe.
#pragma once

#include "engine/common/result.hpp"
#include "engine/io/file_entry.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::io {

/// One entry, as a view into its snapshot (valid while the snapshot is neither changed nor
/// destroyed). Kinds: regular, directory, symlink only.
struct snapshot_entry {
    std::string_view path; ///< relative, '/'-separated, no "./", no trailing '/'; never empty
    file_kind kind = file_kind::regular;
    std::uint32_t mode = 0;           ///< st_mode & 07777
    std::uint64_t size = 0;           ///< regular files only (0 for directories and symlinks)
    std::int64_t mtime_ns = 0;        ///< st_mtim in nanoseconds since the epoch (wraps past 2262)
    std::uint64_t ino = 0;            ///< a file replaced by rename (equal size, mtime) differs
    std::string_view link_target;     ///< symlinks only

    bool operator==(const snapshot_entry&) const = default; ///< compares the bytes viewed
};

/// The entries of a tree (the root itself is not one), sorted by path in std::string order
/// (bytes as unsigned char), each path once.
class tree_snapshot {
public:
    tree_snapshot() = default;

    /// From a walk's entries (io::walk_tree, pipeline::transfer_stats::snapshot; any order).
    /// Entries at or below a path of `leave_out` (relative paths, normalised here; a file or
    /// a whole directory, e.g. a receiver's own bookkeeping) are not kept.
    static tree_snapshot from_walk(std::span<const walked_entry> entries,
                                   std::span<const std::string> leave_out = {});
    /// From explicit entries (tests, tools); any order, the last of a repeated path wins.
    /// Nothing is validated here: parse_snapshot refuses what save_snapshot would not accept.
    static tree_snapshot from_entries(std::span<const snapshot_entry> entries);

    std::size_t size() const noexcept { return records_.size(); }
    bool empty() const noexcept { return records_.empty(); }
    /// The i-th entry in path order.
    snapshot_entry operator[](std::size_t i) const;
    /// Binary search; nullopt when the path is not an entry.
    std::optional<snapshot_entry> find(std::string_view path) const;
    /// Drops the entry at `path` (not its children); false when there is none. O(n).
    bool erase(std::string_view path);
    /// Heap bytes held (records and names), for the per-entry cost above.
    std::size_t memory_bytes() const noexcept;

    bool operator==(const tree_snapshot& o) const;

    class iterator {
    public:
        using value_type = snapshot_entry;
        using difference_type = std::ptrdiff_t;
        iterator() = default;
        snapshot_entry operator*() const { return (*s_)[i_]; }
        iterator& operator++() {
            ++i_;
            return *this;
        }
        iterator operator++(int) {
            iterator t = *this;
            ++i_;
            return t;
        }
        bool operator==(const iterator& o) const { return i_ == o.i_; }

    private:
        friend class tree_snapshot;
        iterator(const tree_snapshot* s, std::size_t i)
            : s_(s), i_(i) {}
        const tree_snapshot* s_ = nullptr;
        std::size_t i_ = 0;
    };
    iterator begin() const { return {this, 0}; }
    iterator end() const { return {this, records_.size()}; }

private:
    friend struct snapshot_access; // the parser appends records already in order
    struct record {
        std::uint64_t size;
        std::int64_t mtime_ns;
        std::uint64_t ino;
        std::uint64_t at;       ///< the path's offset in names_; the link target follows it
        std::uint32_t path_len;
        std::uint32_t link_len;
        std::uint16_t mode;
        std::uint8_t kind;      ///< file_kind
    };
    static_assert(sizeof(record) == 48, "the per-entry cost the header states");

    std::string_view path_of(const record& r) const { return {names_.data() + r.at, r.path_len}; }
    snapshot_entry view(const record& r) const;
    void append(const snapshot_entry& e);
    /// Sorts the records by path; repeated paths keep the last appended.
    void sort_unique();
    /// Gives back what growing by appends over-allocated.
    void shrink() {
        records_.shrink_to_fit();
        names_.shrink_to_fit();
    }

    std::vector<record> records_;
    std::string names_;
};

/// What has to happen to a copy of the tree described by `before` so it equals `now`.
/// Every list is sorted (std::string order). Apply it as: delete `replaced` and `removed`
/// (send_options::deletions, or some other way for a receiver that ignores them), then
/// extract the selection of `send` and `new_dirs` (not descending). Deleting `removed` after
/// the extraction is also correct; deleting `replaced` after it is not (it would delete the
/// new entries).
struct tree_delta {
    /// Files and symlinks that are new, or whose kind-equal entry differs in any field (size,
    /// mtime, mode, inode, link target).
    std::vector<std::string> send;
    /// Directories not in `before` (so empty directories arrive), and directories whose mode
    /// or mtime changed: the stream carries directory modes and mtimes, so after extraction
    /// the copy's directories match (one header each; the selection does not descend).
    std::vector<std::string> new_dirs;
    /// In both, with another kind (file, directory, symlink): delete before extraction (tar
    /// cannot put a file where a directory is). They also appear in `send` or `new_dirs`.
    std::vector<std::string> replaced;
    /// In `before` but gone now. A removed (or replaced) directory is listed once; its
    /// children are not.
    std::vector<std::string> removed;
    std::uint64_t send_bytes = 0; ///< sum of the sizes of the regular files in `send`

    bool empty() const;
};

/// One merge pass over both snapshots (O(n), plus a binary search per removed entry).
tree_delta diff_snapshots(const tree_snapshot& before, const tree_snapshot& now);

/// walk_tree of `root` into a snapshot, leaving out `leave_out` (as from_walk). A directory
/// that could not be listed, or an entry that could not be stat'ed or read, is an error
/// (io_failed): its contents would look deleted. One that vanished meanwhile is simply gone.
/// Errors as walk_tree's otherwise; `error_detail` names the path and the cause.
result<tree_snapshot> snapshot_tree(const std::string& root,
                                    std::span<const std::string> leave_out = {},
                                    std::stop_token stop = {},
                                    std::string* error_detail = nullptr);

// The saved form. Binary, versioned by its first line, entries in path order, a checksum:
//   "podpipe temp manifest v1\n"   (the line of the format's first user, kept for its files)
//   u64 entry count
//   per entry: u8 kind (0 file, 1 directory, 2 symlink) · u32 path length · path bytes
//     · u64 size · i64 mtime_ns · u32 mode · u64 inode · u32 link length · link bytes
//   u64 FNV-1a 64 of every byte before it
// Integers little-endian. The checksum catches truncation and stray writes, not malice.
// One spelling per snapshot: parse(serialize(s)) == s and serialize(parse(b)) == b.

/// The saved form's bytes.
std::string serialize_snapshot(const tree_snapshot& s);

/// The parser (untrusted input: fuzz/engine/io/snapshot). Accepts exactly what
/// serialize_snapshot writes of a walked tree: clean relative paths (no empty, "." or ".."
/// component, no NUL) in strictly increasing order, known kinds, modes <= 07777, sizes on
/// files only, a link target exactly on symlinks, the checksum matching. Anything else is
/// errc::bad_snapshot; `error_detail` says what (e.g. "entry 3: paths out of order").
result<tree_snapshot> parse_snapshot(std::string_view bytes, std::string* error_detail = nullptr);

/// Writes the saved form atomically: a temporary file beside `file` (mkstemp), fsync,
/// rename over `file`, fsync of the directory; missing parent directories are created.
/// Errors: io_failed, `error_detail` naming the path and errno text.
result<void> save_snapshot(const std::string& file, const tree_snapshot& s,
                           std::string* error_detail = nullptr);

/// A missing file is an empty snapshot (nothing known: everything is new). An unreadable one
/// is io_failed; a corrupt, truncated or foreign one is bad_snapshot. `error_detail` names
/// the file.
result<tree_snapshot> load_snapshot(const std::string& file, std::string* error_detail = nullptr);

} // namespace podpipe::io
