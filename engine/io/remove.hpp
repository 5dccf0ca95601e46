// Deleting a tree, names only: what tree_writer::remove does beneath its target, and
// remove_tree for a whole directory of the caller's own (a private stage, a scratch copy).
// Symlinks are never followed (a symlink is unlinked, not what it points at); a directory
// without write or search permission gets 0700 so its children can go. Thread-compatible.
#pragma once

#include "engine/common/result.hpp"

#include <string>

namespace podpipe::io {

/// rm -rf of `path` itself: a file or symlink is unlinked, a directory emptied depth-first then
/// removed. Missing is success. Stops at the first failure: io_failed, `error_detail` naming
/// the operation, the path and errno text. `path` itself is resolved like any path (symlinks
/// on the way to it are followed), its last component is not.
result<void> remove_tree(const std::string& path, std::string* error_detail = nullptr);

namespace detail {
/// Deletes `leaf` (one name) in the directory `parent_fd` as remove_tree does; `shown` is the
/// path used in the error detail.
result<void> remove_at(int parent_fd, const std::string& leaf, const std::string& shown,
                       std::string* error_detail);
} // namespace detail

} // namespace podpipe::io
