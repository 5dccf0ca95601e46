// Path helpers shared by the walker and the writer: GNU-tar-like exclude matching, lexical
// validation of archive paths, and the key that sorts paths in archive (DFS) order.
// Pure functions; thread-safe.
#pragma once

#include "engine/common/result.hpp"

#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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

/// A selection of paths beneath a root (what send_options::only names): the walk lists only
/// the directories on the way to a selected path (and, with `descend`, a selected
/// directory's contents) and keeps only the entries the selection covers.
class path_selection {
public:
    /// `paths` are normalised (normalize_entry_path); unsafe ones are an error, and one naming
    /// the root itself selects the whole tree. `descend`: a selected directory brings its
    /// contents; false: only its own entry (its mode and mtime).
    static result<path_selection> make(std::span<const std::string> paths, bool descend);

    /// The entry at `rel` is sent: it is selected, on the way to a selected path, or (with
    /// descend) below a selected directory.
    bool keeps(std::string_view rel) const;
    /// The directory at `rel` ("" = root) is listed.
    bool lists(std::string_view rel) const;

private:
    bool below_selected(std::string_view rel) const;
    std::set<std::string, std::less<>> selected_;
    std::set<std::string, std::less<>> on_the_way_; ///< strict ancestors of selected paths
    bool descend_ = true;
    bool all_ = false;
};

} // namespace podpipe::io
