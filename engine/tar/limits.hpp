// Format constants and limits shared by the tar writer and parser.
#pragma once

#include <cstddef>
#include <cstdint>

namespace podpipe::tar {

/// The tar record unit: every header and every content run is padded to a multiple of this.
inline constexpr std::size_t block_bytes = 512;

/// The largest pax extended header (typeflag 'x'/'g') or GNU long name/link ('L'/'K') payload
/// the parser buffers, and the writer produces. Real paths are at most PATH_MAX (4096) bytes;
/// 1 MiB leaves room for exotic records while bounding what a hostile archive can make us hold.
inline constexpr std::uint64_t max_extended_header_bytes = std::uint64_t{1} << 20;

} // namespace podpipe::tar
