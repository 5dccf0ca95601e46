// stream_inflater: serial, streaming gzip decoder (zlib, windowBits 15+16) for streams that
// are not podpipe members: `tar czf`, gzip, pigz, any multi-member concatenation. Podpipe
// streams decode here too (the subfield is just ignored), only without parallelism.
//
// Stream grammar accepted: member+ zero-byte*. After each member's trailer the next byte
// must be 1f (another member) or 00 (tar/record padding: zeros only, to the end).
//
// Thread safety: none; one instance per stream. Not copyable; movable.
#pragma once

#include "engine/common/result.hpp"
#include "engine/gzip/error.hpp"

#include <cstddef>
#include <memory>
#include <span>

namespace podpipe::gzip {

class stream_inflater {
public:
    struct step {
        std::size_t consumed = 0; ///< bytes of `in` used
        std::size_t produced = 0; ///< bytes written to the front of `out`
    };

    /// Allocation failure throws std::bad_alloc.
    stream_inflater();
    ~stream_inflater();
    stream_inflater(stream_inflater&&) noexcept;
    stream_inflater& operator=(stream_inflater&&) noexcept;

    /// Consumes a prefix of `in` and writes a prefix of `out`; call repeatedly, passing the
    /// unconsumed rest of `in` again. Returns consumed == 0 && produced == 0 only if `in` or
    /// `out` is empty (an empty `out` may still consume padding or header bytes). Crosses
    /// member boundaries within one call.
    /// Errors: errc::bad_header (not gzip, bad header, or garbage after a member),
    /// errc::bad_crc, errc::bad_length (ISIZE), errc::corrupt_deflate. After an error every
    /// further call returns the same error.
    result<step> inflate(std::span<const std::byte> in, std::span<std::byte> out);

    /// The input is over. Call it once inflate() has consumed all input and returned
    /// produced < out.size() (so zlib holds no pending output; loop inflate() with an empty
    /// `in` to drain). Ok after complete members, optionally followed by zero bytes.
    /// errc::truncated if the input ended inside a member (or pending output was never
    /// drained) or before any member at all. Returns the stored error after a failed inflate().
    result<void> finish();

    /// Forgets everything; the next byte is the start of a new stream.
    void reset();

    /// Complete members decoded so far (CRC and ISIZE verified).
    std::size_t members_completed() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::gzip
