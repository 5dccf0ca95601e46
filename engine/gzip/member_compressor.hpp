// member_compressor: turns one chunk of the tar stream into one complete gzip member in the
// podpipe format (see head.hpp).
//
// Two DEFLATE engines sit behind one level scale (libdeflate's: 0 stores, 1 fastest, 12
// smallest): levels 0 and 2-12 always use libdeflate; level 1 uses ISA-L's igzip when podpipe
// was built with it (PODPIPE_HAVE_ISAL), else libdeflate level 1. Why: on the benchmark tree
// (source headers, 1 MiB chunks) igzip compresses ~2.4x faster per core than libdeflate level 1
// at ~5% larger output, still smaller than pigz -1's (see BENCHMARKS.md, gzip_bench); at every
// other level libdeflate gives the better size for the time.
//
// Incompressible chunks (git packfiles, media, archives: already compressed) are stored
// instead of compressed, so they cost a copy and a CRC, not a DEFLATE pass that saves nothing.
// No probe while chunks compress: only after a chunk of this instance saved less than
// incompressible_saving does the next one get a probe first (three 16 KiB samples at level 1);
// when none of them saves that much the chunk is stored, else compressed as usual. So a stream
// that compresses pays nothing, and a run of incompressible chunks costs one wasted DEFLATE per
// instance, then a probe of ~5% of each chunk. The stream stays standard gzip either way.
//
// Thread safety: one instance per thread. An instance holds compressor state that must not be
// used by two threads at once; different instances are independent.
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

/// Which DEFLATE implementation compresses. `automatic` picks as described above.
enum class deflate_engine {
    automatic,
    libdeflate, ///< any level
    isal,       ///< level 1 only; needs isal_available()
};

/// True when this build links ISA-L (so level 1 can use igzip).
bool isal_available() noexcept;

class member_compressor {
public:
    static constexpr int min_level = 0; ///< stored blocks only (slight expansion)
    static constexpr int max_level = 12;
    static constexpr int default_level = 6;

    /// level in [0, 12] (libdeflate scale: 1 fastest, 6 default, 9 slow, 12 slowest; 0 stores).
    /// An out-of-range level, or deflate_engine::isal with a level other than 1 or without
    /// isal_available(), is a bug (PODPIPE_CHECK); allocation failure throws std::bad_alloc.
    explicit member_compressor(int level, deflate_engine engine = deflate_engine::automatic);
    ~member_compressor();
    member_compressor(member_compressor&&) noexcept;
    member_compressor& operator=(member_compressor&&) noexcept;

    int level() const noexcept { return level_; }
    /// The engine actually used (never `automatic`).
    deflate_engine engine() const noexcept { return engine_; }

    /// Largest member compress() can produce for any input of at most in_bytes bytes:
    /// libdeflate_deflate_compress_bound + podpipe_header_bytes + trailer_bytes, for either
    /// engine (igzip falls back to libdeflate's stored blocks when its output would not fit).
    /// An output buffer of this size never gets errc::output_too_small.
    std::size_t bound(std::size_t in_bytes) const noexcept;

    /// Writes one complete member for `in` (which may be empty) to the front of `out` and
    /// returns its size. Errors: errc::too_large if in.size() > max_chunk_bytes;
    /// errc::output_too_small if the member does not fit in `out` (it always fits in
    /// bound(in.size()) bytes); errc::compress_failed if the engine fails anyway. On error the
    /// contents of `out` are unspecified. Output bytes are deterministic for one build on one
    /// CPU but not stable across library versions or (igzip) CPU features: never compare them
    /// with golden data.
    result<std::size_t> compress(std::span<const std::byte> in, std::span<std::byte> out);

    /// Whether the last successful compress() stored its chunk because a probe found it
    /// incompressible (see above).
    bool last_stored() const noexcept { return last_stored_; }

    /// A chunk saving less than this fraction of its size counts as incompressible (1.5%).
    static constexpr double incompressible_saving = 0.015;
    /// The probe's samples, and the smallest chunk that is probed (smaller ones compress).
    static constexpr std::size_t probe_sample_bytes = 16 << 10;
    static constexpr std::size_t probe_min_chunk = 8 * probe_sample_bytes;

private:
    struct isal_state;

    std::size_t deflate_libdeflate(std::span<const std::byte> in, std::span<std::byte> out);
    bool probe_says_incompressible(std::span<const std::byte> in);

    std::unique_ptr<libdeflate_compressor, compressor_deleter> handle_;
    std::unique_ptr<isal_state> isal_;
    /// Made on the first probe: libdeflate level 1 (the probe), level 0 (the stored member).
    std::unique_ptr<libdeflate_compressor, compressor_deleter> probe_handle_;
    std::unique_ptr<libdeflate_compressor, compressor_deleter> store_handle_;
    std::unique_ptr<std::byte[]> probe_out_;
    int level_;
    deflate_engine engine_;
    bool probe_next_ = false;
    bool last_stored_ = false;
};

} // namespace podpipe::gzip
