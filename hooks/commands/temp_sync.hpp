// The hook's side of the incremental sync of the runner's _temp into the job pod
// (spec/hook-behavior.md §4.2 step 3): the engine does the work (io::tree_snapshot,
// io::diff_snapshots, the saved snapshot: engine/io/snapshot.hpp); here is only what is the
// hook's own, in the order run_script_step uses it:
//   scan_temp (the runner's _temp without the runner's own files) + load_temp_record (what
//     the pod has) → io::diff_snapshots
//   the engine sends the selection delta.send + delta.new_dirs with the deletions
//     delta.replaced + delta.removed in the same stream; a pod without podpipe gets
//     removal_script on the stdin of `sh` first
//   save_temp_record(now) once the pod acknowledged the transfer.
// The record's location is prepare_job.hpp's temp_manifest_path. Errors are hook_errors:
// errc::temp_sync (I/O, naming the path and errno text), errc::temp_manifest (an unusable
// record: the caller sends everything). Thread-compatible.
#pragma once

#include "engine/common/result.hpp"
#include "engine/io/snapshot.hpp"
#include "hooks/commands/errors.hpp"

#include <string>
#include <vector>

namespace podpipe::hook {

/// Paths of _temp that are the runner's and never go to the pod: the hook's response files.
extern const std::vector<std::string> temp_skip;

/// io::snapshot_tree of the runner's _temp `root` without temp_skip. A missing or unreadable
/// root, or a directory that could not be listed, is errc::temp_sync.
result<io::tree_snapshot, hook_error> scan_temp(const std::string& root);

/// io::load_snapshot: a missing file is an empty snapshot; an unreadable one errc::temp_sync,
/// a corrupt, truncated or foreign one errc::temp_manifest (both name the file).
result<io::tree_snapshot, hook_error> load_temp_record(const std::string& file);

/// io::save_snapshot (atomic); errc::temp_sync naming the path.
result<void, hook_error> save_temp_record(const std::string& file, const io::tree_snapshot& s);

/// A shell script that deletes `paths` beneath `pod_root` in the pod: lines of
/// "rm -rf -- '<pod_root>/a' '<pod_root>/b'\n", each word single-quoted (' as '\''), at most
/// ~64 KiB per line (a longer list spans several lines); "" for an empty list. Paths that are
/// empty, absolute, contain NUL or an empty, "." or ".." component are skipped.
/// For a pod without podpipe (whose tar ignores the stream's deletions): fed to `sh` on stdin,
/// never as an argument (exec URLs must not grow with the tree).
std::string removal_script(const std::string& pod_root, const std::vector<std::string>& paths);

} // namespace podpipe::hook
