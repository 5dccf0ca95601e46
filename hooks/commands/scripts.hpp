// The shell scripts the hook writes for steps (spec/hook-behavior.md §3.9). They are executed
// as `sh -e /__w/_temp/<name>.sh` in the job pod and delete themselves first (they may hold
// secrets from the step's env).
//
// Differences from the reference, on purpose:
//   - env values are single-quoted (nothing in them is ever expanded) instead of double-quoted
//     with four escapes; keys are validated (no '=', no NUL, not empty; quotes and `$` refused
//     as the reference does);
//   - the working directory and PATH entries are quoted (the reference splices them bare, so a
//     space breaks the step);
//   - entryPointArgs stay raw: the runner relies on the shell re-parsing them
//     (`"/__w/_actions/.../index.js"`).
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/errors.hpp"
#include "hooks/commands/input.hpp"

#include <string>
#include <vector>

namespace podpipe::hook {

/// `env 'K=V' 'K2=V2' ` (with the trailing space), or "" for an empty list. Error text as the
/// reference: "environment key <k> is invalid - the key must not contain =, $, ', or \"".
result<std::string, hook_error> env_prefix(const env_list& env);

/// The run script of run_script_step. `extra_lines` run after `rm "$0"` and before the step
/// (e.g. removing files the runner deleted from _temp since the last step).
result<std::string, hook_error> run_script(const run_script_step_args& args,
                                           const std::string& extra_lines = {});

/// A fresh script file name: "podpipe-<32 hex>.sh".
std::string script_file_name();

/// Writes `text` to `path` with mode 0600 (it may hold secrets), replacing nothing: the name
/// is fresh. errc::step on failure.
result<void, hook_error> write_script(const std::string& path, const std::string& text);

} // namespace podpipe::hook
