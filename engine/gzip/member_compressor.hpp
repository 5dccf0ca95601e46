// member_compressor: turns one chunk of the tar stream into one complete gzip member in the
// podpipe format (see head.hpp), with libdeflate.
//
// Thread safety: one instance per thread. An instance holds a libdeflate compressor, which
// must not be used by two threads at once; different instances are independent.
#pragma once

#include "engine/common/result.hpp"
#include "engine/gzip/head.hpp"

#include <cstddef>
#include <memory>
#include <span>

struct libdeflate_compressor;

namespace podpipe::gzip {

struct compressor_deleter {
    void operator()(libdeflate_compressor* c) const noexcept;
};

class member_compressor {
public:
    static constexpr int min_level = 0; ///< stored blocks only (slight expansion)
    static constexpr int max_level = 12;
    static constexpr int default_level = 6;

    /// level in [0, 12] (libdeflate scale: 1 fastest, 6 default, 9 slow, 12 slowest; 0 stores).
    /// An out-of-range level is a bug (PODPIPE_CHECK); allocation failure throws std::bad_alloc.
    explicit member_compressor(int level);

    int level() const noexcept { return level_; }

    /// Largest member compress() can produce for any input of at most in_bytes bytes:
    /// libdeflate_deflate_compress_bound + podpipe_header_bytes + trailer_bytes. An output
    /// buffer of this size never gets errc::output_too_small.
    std::size_t bound(std::size_t in_bytes) const noexcept;

    /// Writes one complete member for `in` (which may be empty) to the front of `out` and
    /// returns its size. Errors: errc::too_large if in.size() > max_chunk_bytes;
    /// errc::output_too_small if the member does not fit in `out` (it always fits in
    /// bound(in.size()) bytes); errc::compress_failed if libdeflate fails anyway. On error the
    /// contents of `out` are unspecified. Output bytes are not stable across libdeflate
    /// versions: never compare them with golden data.
    result<std::size_t> compress(std::span<const std::byte> in, std::span<std::byte> out);

private:
    std::unique_ptr<libdeflate_compressor, compressor_deleter> handle_;
    int level_;
};

} // namespace podpipe::gzip
