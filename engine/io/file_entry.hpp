// file_entry: one archive member as engine/io sees it, shared by the send side (read_tree) and
// the receive side (tree_writer). Plain value type.
#pragma once

#include <cstdint>
#include <string>

namespace podpipe::io {

enum class file_kind { regular, directory, symlink, hardlink, other };

struct file_entry {
    /// Relative to the root, '/'-separated, no leading "./", no trailing '/'; never empty.
    /// "." is the root directory itself (read_tree emits it first, carrying the root's mode).
    std::string path;
    file_kind kind = file_kind::regular;
    std::uint32_t mode = 0; ///< st_mode & 07777
    /// regular: exactly the number of content bytes delivered after this entry; else 0.
    std::uint64_t size = 0;
    std::int64_t mtime_sec = 0;
    std::uint32_t mtime_nsec = 0;
    std::uint32_t uid = 0, gid = 0;
    /// symlink: the target text; hardlink: the path (relative to root) of the first entry of
    /// the archive with the same dev/inode.
    std::string link_target;
};

/// One entry as the walk listed it (statx, symlinks not followed): what a caller keeps to tell
/// later whether the tree changed (read_options::keep_snapshot, walk_tree). Regular files,
/// directories and symlinks only; a file with several names appears under each (same ino).
struct walked_entry {
    std::string path; ///< as file_entry::path; the root itself is not listed
    file_kind kind = file_kind::regular; ///< regular, directory or symlink
    std::uint32_t mode = 0;              ///< st_mode & 07777
    std::uint64_t size = 0;              ///< regular files only
    std::int64_t mtime_sec = 0;
    std::uint32_t mtime_nsec = 0;
    std::uint64_t dev = 0, ino = 0;
    std::string link_target; ///< symlinks only

    bool operator==(const walked_entry&) const = default;
};

} // namespace podpipe::io
