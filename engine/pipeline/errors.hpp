// Errors of the pipeline itself (the stages' own errors pass through unchanged).
#pragma once

#include <system_error>

namespace podpipe::pipeline {

enum class errc {
    manifest_mismatch = 1, ///< the receiver's digest/counts differ from the sender's manifest
    manifest_missing,      ///< require_manifest and the stream had none
    member_too_large,      ///< a gzip member larger than the receiver accepts
    truncated,             ///< the stream ended before the end of the archive
    bad_options,           ///< invalid options (checked before starting)
};

const std::error_category& pipeline_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), pipeline_category()};
}

} // namespace podpipe::pipeline

template <>
struct std::is_error_code_enum<podpipe::pipeline::errc> : std::true_type {};
