// tar::errc and its "tar" error category. Everything that describes the bytes of an archive
// (bad_checksum, bad_header, truncated, too_large, bad_pax, and unsupported: a tar feature we
// deliberately do not implement, e.g. GNU sparse files, is a stream we cannot extract) maps to
// condition::bad_input (exit 4); invalid_entry (a caller handed the writer an entry tar cannot
// represent) maps to condition::fatal. Retrying the same input cannot help either way.
#pragma once

#include "engine/common/error.hpp"

#include <system_error>

namespace podpipe::tar {

enum class errc {
    bad_checksum = 1, ///< a header block's checksum field does not match its bytes
    bad_header,       ///< a header field is malformed (garbage octal, embedded NUL, empty name)
    truncated,        ///< the stream ended inside a header, extended header or file content
    too_large,        ///< a pax/GNU long-name record or a numeric field exceeds its limit
    unsupported,      ///< a valid tar feature we do not implement (GNU sparse, multi-volume)
    bad_pax,          ///< a pax extended header record is malformed
    invalid_entry,    ///< writer: the entry cannot be written (NUL in a string, size on a non-file)
};

const std::error_category& tar_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), tar_category()};
}

} // namespace podpipe::tar

template <>
struct std::is_error_code_enum<podpipe::tar::errc> : std::true_type {};
