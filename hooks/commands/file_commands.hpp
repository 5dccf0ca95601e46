// The runner's file commands (GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_STATE,
// GITHUB_STEP_SUMMARY) are regular files the runner creates in W/_temp/_runner_file_commands
// before a step and reads after it. The step decides what is left at those names, and the
// runner follows symlinks when it reads: a step that ran `ln -sf /runner/secret "$GITHUB_OUTPUT"`
// would have the runner read a runner-side file into the step's outputs or summary. So only
// regular files with one name reach the runner; anything else in their place (a symlink, a
// hard link, a directory, a fifo, a device, a socket) is refused with a warning naming the
// file. Runner-side files only: no Kubernetes, no tar. Thread-compatible.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/errors.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace podpipe::hook {

/// The runner's variable for a file command file ("set_output_<guid>" -> "GITHUB_OUTPUT"), or
/// "" for a name the runner does not give its file commands.
std::string_view file_command_variable(std::string_view file_name);

/// Stream mode. `stage` holds what came back from the pod's file commands directory: a fresh
/// directory that only this process writes. Each regular file with one link directly in
/// `stage` is renamed into `dest` (replacing what `dest` has under that name) and made 0644, so
/// the runner can read it whatever mode the pod gave it. Every other entry stays in `stage`
/// (the caller removes it) and `dest` keeps what it had under that name, the runner's own file.
/// Returns one warning per refused entry (and per file that could not be moved). Errors
/// (errc::transfer): `stage` or `dest` cannot be opened as a directory (`dest` not through a
/// symlink).
result<std::vector<std::string>, hook_error> adopt_file_commands(const std::string& stage,
                                                                 const std::string& dest);

/// Volume mode. The pods write `dir` (on the claim the runner shares with them) in place, so
/// every entry of `dir` that is not a regular file with one link is removed and replaced by an
/// empty regular file, as if the step had written nothing there. `dir` itself, when it is no
/// longer a directory (a symlink to elsewhere), is removed and created again. Returns one
/// warning per refused entry, and one per entry that could not be removed.
std::vector<std::string> refuse_irregular_file_commands(const std::string& dir);

} // namespace podpipe::hook
