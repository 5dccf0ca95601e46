// Incremental sync of the runner's _temp into the job pod (spec/hook-behavior.md §4.2 step 3):
// instead of the whole W/_temp before every script step, only what changed since the pod last
// saw it. The pieces, in the order run_script_step uses them:
//   scan_tree (the engine's walk of the runner's _temp) + load_manifest (what the pod has)
//     → diff_snapshots → delta
//   the engine sends the selection delta.send + delta.new_dirs with the deletions
//     delta.replaced + delta.removed in the same stream (pipeline::send_options::only,
//     ::deletions); a pod without podpipe gets removal_script on the stdin of `sh` first
//   save_manifest(now) once the pod acknowledged the transfer.
// Everything here runs on the runner and touches only local files; no Kubernetes, no tar.
// Functions are thread-compatible (no shared state).
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/errors.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::hook {

enum class temp_kind : std::uint8_t { file, directory, symlink };

/// One entry of a tree as lstat'ed on the runner (symlinks are never followed).
struct temp_entry {
    temp_kind kind = temp_kind::file;
    std::uint64_t size = 0;    ///< regular files only (0 for directories and symlinks)
    std::int64_t mtime_ns = 0; ///< st_mtim in nanoseconds since the epoch
    std::uint32_t mode = 0;    ///< st_mode & 07777
    /// st_ino: a file replaced by rename with equal size and mtime still counts as changed.
    std::uint64_t inode = 0;
    std::string link_target; ///< symlinks only

    bool operator==(const temp_entry&) const = default;
};

/// Key: path relative to the root, '/'-separated, no "./", no trailing '/'. The root itself is
/// not an entry.
using temp_snapshot = std::map<std::string, temp_entry>;

/// Walks `root` with the engine (io::walk_tree: lstat semantics; sockets, fifos and devices
/// are skipped). `skip` holds relative paths (files or whole directories, e.g.
/// "_runner_hook_responses") that are never listed nor descended into. Entries that vanish
/// during the walk are left out. Errors (errc::temp_sync) name the path and the errno text:
/// a missing or unreadable root, an unreadable subdirectory.
result<temp_snapshot, hook_error> scan_tree(const std::string& root,
                                            const std::vector<std::string>& skip);

/// What has to happen to the pod's copy (described by `pod_has`) so it equals `now`.
/// Every list is sorted (std::string order). Apply it as: delete `replaced` and `removed`
/// (the stream's deletions, or removal_script), then extract the selection of `send` and
/// `new_dirs`. Deleting `removed` after the extraction is also correct; deleting `replaced`
/// after it is not (it would delete the new entries).
struct temp_delta {
    /// Files and symlinks that are new, or whose kind-equal entry differs in any field.
    std::vector<std::string> send;
    /// Directories not in `pod_has` (so empty directories reach the pod), and directories whose
    /// mode or mtime changed: the stream carries directory modes and mtimes, so after the
    /// extraction the pod's directories match the runner's (a directory's entry costs one
    /// header; its unchanged children are not sent: the selection does not descend).
    std::vector<std::string> new_dirs;
    /// In `pod_has` and in `now`, but with another kind (file ↔ directory ↔ symlink): must be
    /// deleted in the pod before extraction (tar cannot put a file where a directory is).
    /// They also appear in `send` or `new_dirs`.
    std::vector<std::string> replaced;
    /// In `pod_has` but gone now. A removed (or replaced) directory is listed once; its
    /// children are not.
    std::vector<std::string> removed;
    std::uint64_t send_bytes = 0; ///< sum of the sizes of the files in `send`

    bool empty() const;
};

temp_delta diff_snapshots(const temp_snapshot& pod_has, const temp_snapshot& now);

/// The manifest file: what the pod is known to have. Binary, versioned by its first line
/// ("podpipe temp manifest v1\n"), entries in key order, a checksum trailer. Written atomically
/// (mkstemp beside it, fsync, rename, fsync of the directory); parent directories are created.
result<void, hook_error> save_manifest(const std::string& file, const temp_snapshot& s);

/// A missing file → an empty snapshot (nothing known: everything is sent). An unreadable file
/// → errc::temp_sync; a corrupt, truncated or foreign one → errc::temp_manifest. Either way
/// the caller falls back to a full send.
result<temp_snapshot, hook_error> load_manifest(const std::string& file);

/// The parser on its own (the fuzz target's entry): bytes → snapshot or errc::temp_manifest.
/// Accepts exactly what save_manifest writes: paths normalised as scan_tree makes them, in
/// strictly increasing order, known kinds, modes ≤ 07777, the checksum matching.
result<temp_snapshot, hook_error> parse_manifest(std::string_view bytes);

/// The manifest's bytes (what save_manifest writes).
std::string serialize_manifest(const temp_snapshot& s);

/// rm -rf of a private directory (the file commands' landing place): never follows symlinks,
/// unlinks names only; its directories are made writable as needed.
/// Returns "" on success, else a one-line description of what could not be removed (for a
/// warning). A missing stage_dir is success.
std::string remove_stage(const std::string& stage_dir);

/// A shell script that deletes `paths` beneath `pod_root` in the pod: lines of
/// "rm -rf -- '<pod_root>/a' '<pod_root>/b'\n", each word single-quoted (' as '\''), at most
/// ~64 KiB per line (a longer list spans several lines); "" for an empty list. Paths that are
/// empty, absolute, contain NUL or an empty, "." or ".." component are skipped.
/// For a pod without podpipe (whose tar ignores the stream's deletions): fed to `sh` on stdin,
/// never as an argument (exec URLs must not grow with the tree).
std::string removal_script(const std::string& pod_root, const std::vector<std::string>& paths);

} // namespace podpipe::hook
