// Errors of the hook's own edge: the runner's stdin JSON, the environment, the response file.
// They travel as kube::api_error (the one error type of hooks/), with the user-facing text in
// `message` so that what() is exactly what the hook prints after ::error::.
#pragma once

#include "kube/errors.hpp"

#include <string>
#include <system_error>

namespace podpipe::hook {

using hook_error = kube::api_error;

enum class errc {
    bad_input = 1,   ///< stdin is not the JSON the runner sends (names the field)
    unknown_command, ///< "Command not recognized: <x>"
    bad_env,         ///< a variable of §2.6 is missing or invalid
    response_file,   ///< the response file path is empty, missing, or cannot be written
    permissions,     ///< the service account lacks a permission the hook needs (§2.7)
    job_pod,         ///< the job pod could not be created or did not come online
    transfer,        ///< moving files between the runner and a pod failed
    step,            ///< a step could not be run (not: the step's own non-zero exit)
    temp_sync,       ///< scanning, staging or manifest I/O for the _temp sync failed (names path, errno)
    temp_manifest,   ///< the _temp manifest file is corrupt, truncated or not ours: send everything
};

const std::error_category& hook_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), hook_category()};
}

/// A hook_error whose what() is exactly `message`.
hook_error make_error(errc e, std::string message);

} // namespace podpipe::hook

template <>
struct std::is_error_code_enum<podpipe::hook::errc> : std::true_type {};
