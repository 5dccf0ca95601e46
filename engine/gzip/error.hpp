// gzip::errc and its "gzip" error category. Input errors (bad_header, bad_crc, bad_length,
// truncated, corrupt_deflate) map to podpipe::condition::bad_input; limits and caller
// mistakes (too_large, output_too_small, compress_failed) map to podpipe::condition::fatal.
#pragma once

#include "engine/common/error.hpp"
#include "engine/common/result.hpp"

#include <system_error>

namespace podpipe::gzip {

enum class errc {
    bad_header =
        1,   ///< not a gzip header (bad magic, CM != 8, reserved flags), or our subfield is absurd
    bad_crc, ///< CRC32 in the trailer (or the header CRC16) does not match the data
    bad_length,       ///< ISIZE / our subfield disagree with the data, or bytes follow the member
    truncated,        ///< the input ends inside a member (or no member was seen at all)
    too_large,        ///< a chunk or member exceeds a configured or format limit
    corrupt_deflate,  ///< the DEFLATE stream itself is invalid
    output_too_small, ///< the caller's output buffer cannot hold the result
    compress_failed,  ///< libdeflate failed although the output had bound() bytes (a bug)
};

const std::error_category& gzip_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), gzip_category()};
}

// engine/common's fail(E&&) and fail(Enum) are equally good for an errc prvalue (ambiguous on
// GCC 12 and clang 14); this non-template overload wins over both, here and through ADL.
using podpipe::fail;

inline failure<std::error_code> fail(errc e) noexcept { return {make_error_code(e)}; }

} // namespace podpipe::gzip

template <>
struct std::is_error_code_enum<podpipe::gzip::errc> : std::true_type {};
