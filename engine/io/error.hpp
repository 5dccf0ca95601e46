// io::errc: errors of engine/io (tree walker, content reader, tree writer). Each maps onto a
// podpipe::condition so callers branch without knowing the specifics. The failing path and the
// errno text travel separately as a detail string (read_tree's error_detail, tree_writer's
// last_error_detail()), because std::error_code carries no payload.
#pragma once

#include "engine/common/error.hpp"

#include <system_error>

namespace podpipe::io {

enum class errc {
    unsafe_path = 1,  ///< entry path (or a hardlink target) would land outside the target -> unsafe_path
    io_failed,        ///< a syscall / ring operation failed; detail names the call, path, errno -> fatal
    root_not_found,   ///< the tree root does not exist -> fatal
    not_a_directory,  ///< the tree root is not a directory -> fatal
    bad_entry,        ///< entry is malformed (NUL in a name, content size mismatch, ...) -> bad_input
    cancelled,        ///< the stop_token was triggered -> fatal
    bad_snapshot,     ///< a saved tree snapshot is corrupt, truncated or foreign -> bad_input
};

const std::error_category& io_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), io_category()};
}

} // namespace podpipe::io

template <>
struct std::is_error_code_enum<podpipe::io::errc> : std::true_type {};
