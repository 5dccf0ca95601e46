// Path helpers shared by the walker and the writer: GNU-tar-like exclude matching, lexical
// validation of archive paths, and the key that sorts paths in archive (DFS) order.
// Pure functions; thread-safe.
#pragma once

#include "engine/common/result.hpp"

#include <span>
#include <string>
#include <string_view>

namespace podpipe::io {

/// True when any fnmatch(3) pattern matches `rel_path` like GNU tar --exclude (unanchored,
/// wildcards match '/'): the whole relative path, any suffix starting after a '/', or the
/// basename. Callers test every directory on the way down, so ancestors are covered.
bool is_excluded(std::span<const std::string> patterns, std::string_view rel_path);

/// Lexical check + normalisation of an archive path: refuses (errc::unsafe_path) empty paths,
/// absolute paths, any ".." component and embedded NUL; drops "." components, repeated and
/// trailing '/'. Returns "" when the path names the root itself (".", "./").
result<std::string> normalize_entry_path(std::string_view path);

/// Key whose byte order (std::string operator<) is archive order: depth-first, siblings by
/// name bytes, a directory before its contents. ('/' becomes '\0', which sorts first.)
std::string dfs_key(std::string_view rel_path);

} // namespace podpipe::io
