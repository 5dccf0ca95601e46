#include "engine/gzip/member_compressor.hpp"

#include "engine/common/assert.hpp"
#include "engine/gzip/detail/header.hpp"

#include <cstdint>
#include <new>
#include <vector>

#include <libdeflate.h>
#ifdef PODPIPE_HAVE_ISAL
#include <isa-l/igzip_lib.h>
// Weak: a binary linked without libisal (the fully static podpipe for containers when no static
// ISA-L was built from Debian's source: Debian ships none) still links, and then compresses
// level 1 with libdeflate.
#pragma weak isal_deflate_stateless
#pragma weak isal_deflate_stateless_init
#endif

namespace podpipe::gzip {

void compressor_deleter::operator()(libdeflate_compressor* c) const noexcept {
    libdeflate_free_compressor(c);
}

bool isal_available() noexcept {
#ifdef PODPIPE_HAVE_ISAL
    return &isal_deflate_stateless != nullptr && &isal_deflate_stateless_init != nullptr;
#else
    return false;
#endif
}

#ifdef PODPIPE_HAVE_ISAL
// igzip's level 2 at level 1's speed: on the benchmark tree it is as fast as igzip level 1
// (both ~2.4x libdeflate level 1 per core) with ~1% smaller output (gzip_bench,
// compress_members_isal). Its "large" level buffer (~260 KiB) holds the hash table; allocated
// once per compressor.
struct member_compressor::isal_state {
    static constexpr std::uint32_t igzip_level = 2;
    static constexpr std::uint32_t level_buf_bytes = ISAL_DEF_LVL2_DEFAULT;
    std::vector<std::uint8_t> level_buf = std::vector<std::uint8_t>(level_buf_bytes);
    isal_zstream stream{};
};
#else
struct member_compressor::isal_state {};
#endif

member_compressor::member_compressor(int level, deflate_engine engine)
    : level_(level)
    , engine_(engine) {
    PODPIPE_CHECK(level >= min_level && level <= max_level, "gzip level outside [0, 12]");
    if (engine_ == deflate_engine::automatic)
        engine_ = level == 1 && isal_available() ? deflate_engine::isal
                                                 : deflate_engine::libdeflate;
    PODPIPE_CHECK(engine_ != deflate_engine::isal || (level == 1 && isal_available()),
                  "the ISA-L engine is only for level 1, and only when built with ISA-L");
    // igzip keeps a libdeflate level-0 handle for its stored-block fallback.
    handle_.reset(libdeflate_alloc_compressor(engine_ == deflate_engine::isal ? 0 : level));
    if (!handle_)
        throw std::bad_alloc();
    if (engine_ == deflate_engine::isal)
        isal_ = std::make_unique<isal_state>();
}

member_compressor::~member_compressor() = default;
member_compressor::member_compressor(member_compressor&&) noexcept = default;
member_compressor& member_compressor::operator=(member_compressor&&) noexcept = default;

std::size_t member_compressor::bound(std::size_t in_bytes) const noexcept {
    return libdeflate_deflate_compress_bound(handle_.get(), in_bytes) + podpipe_header_bytes +
           trailer_bytes;
}

// Raw DEFLATE of `in` into `out`; 0 when it does not fit.
std::size_t member_compressor::deflate_libdeflate(std::span<const std::byte> in,
                                                  std::span<std::byte> out) {
    return libdeflate_deflate_compress(handle_.get(), in.data(), in.size(), out.data(),
                                       out.size());
}

// Three samples (start, middle, end) at level 1; true when none saves incompressible_saving.
bool member_compressor::probe_says_incompressible(std::span<const std::byte> in) {
    if (!probe_handle_) {
        probe_handle_.reset(libdeflate_alloc_compressor(1));
        store_handle_.reset(libdeflate_alloc_compressor(0));
        if (!probe_handle_ || !store_handle_)
            throw std::bad_alloc();
        probe_out_ = std::make_unique<std::byte[]>(probe_sample_bytes);
    }
    // Output room below the sample's size: a sample that does not fit in it saved too little.
    const auto room = static_cast<std::size_t>(double(probe_sample_bytes) *
                                               (1.0 - incompressible_saving));
    const std::size_t starts[] = {0, (in.size() - probe_sample_bytes) / 2,
                                  in.size() - probe_sample_bytes};
    for (std::size_t at : starts) {
        if (libdeflate_deflate_compress(probe_handle_.get(), in.data() + at, probe_sample_bytes,
                                        probe_out_.get(), room) != 0)
            return false;
    }
    return true;
}

result<std::size_t> member_compressor::compress(std::span<const std::byte> in,
                                                std::span<std::byte> out) {
    if (in.size() > max_chunk_bytes)
        return fail(errc::too_large);
    // The smallest DEFLATE stream is 2 bytes (an empty fixed-Huffman block).
    if (out.size() < podpipe_header_bytes + 2 + trailer_bytes)
        return fail(errc::output_too_small);

    std::byte* const o = out.data();
    const std::span<std::byte> body =
        out.subspan(podpipe_header_bytes, out.size() - podpipe_header_bytes - trailer_bytes);
    std::size_t deflate_bytes = 0;
    bool trailer_written = false;
    last_stored_ = false;
    if (probe_next_ && level_ > 0 && in.size() >= probe_min_chunk &&
        probe_says_incompressible(in)) {
        deflate_bytes = libdeflate_deflate_compress(store_handle_.get(), in.data(), in.size(),
                                                    body.data(), body.size());
        if (deflate_bytes == 0)
            return fail(out.size() >= bound(in.size()) ? errc::compress_failed
                                                       : errc::output_too_small);
        last_stored_ = true;
    }
#ifdef PODPIPE_HAVE_ISAL
    if (engine_ == deflate_engine::isal && !last_stored_) {
        // IGZIP_GZIP_NO_HDR: igzip writes the DEFLATE data and the gzip trailer (CRC32 with
        // its own folded-CRC code, ISIZE); the header is ours.
        isal_zstream& s = isal_->stream;
        isal_deflate_stateless_init(&s);
        s.level = isal_state::igzip_level;
        s.level_buf = isal_->level_buf.data();
        s.level_buf_size = isal_state::level_buf_bytes;
        s.gzip_flag = IGZIP_GZIP_NO_HDR;
        s.flush = NO_FLUSH;
        s.end_of_stream = 1;
        // igzip does not write through next_in; the cast only meets its non-const field.
        s.next_in = const_cast<std::uint8_t*>(reinterpret_cast<const std::uint8_t*>(in.data()));
        s.avail_in = static_cast<std::uint32_t>(in.size());
        s.next_out = reinterpret_cast<std::uint8_t*>(body.data());
        s.avail_out = static_cast<std::uint32_t>(body.size() + trailer_bytes);
        const int rc = isal_deflate_stateless(&s);
        if (rc == COMP_OK && s.total_out >= trailer_bytes + 2) {
            deflate_bytes = s.total_out - trailer_bytes;
            trailer_written = true;
        } else if (rc != STATELESS_OVERFLOW) {
            return fail(errc::compress_failed);
        }
        // STATELESS_OVERFLOW: incompressible input or a small buffer; stored blocks below.
    }
#endif
    if (!trailer_written && !last_stored_) {
        deflate_bytes = deflate_libdeflate(in, body);
        if (deflate_bytes == 0)
            return fail(out.size() >= bound(in.size()) ? errc::compress_failed
                                                       : errc::output_too_small);
    }
    const std::size_t member_bytes = podpipe_header_bytes + deflate_bytes + trailer_bytes;
    // A stored chunk keeps the probe on; a compressed one turns it on when it saved too little.
    probe_next_ = last_stored_ || (level_ > 0 && in.size() >= probe_min_chunk &&
                                   double(deflate_bytes) >=
                                       double(in.size()) * (1.0 - incompressible_saving));

    // RFC 1952 2.3.1; XFL as gzip and libdeflate set it: 4 = fastest, 2 = maximum compression.
    unsigned char xfl = 0;
    if (level_ < 2)
        xfl = 4;
    else if (level_ >= 8)
        xfl = 2;
    const unsigned char fixed[12] = {0x1f, 0x8b, 8,   detail::flg_fextra,         0, 0, 0,
                                     0,    xfl,  255, 4 + subfield_payload_bytes, 0};
    for (std::size_t i = 0; i < sizeof fixed; ++i)
        o[i] = static_cast<std::byte>(fixed[i]);
    o[12] = std::byte{subfield_si1};
    o[13] = std::byte{subfield_si2};
    o[14] = std::byte{subfield_payload_bytes};
    o[15] = std::byte{0};
    detail::store_le32(o + 16, static_cast<std::uint32_t>(member_bytes));
    detail::store_le32(o + 20, static_cast<std::uint32_t>(in.size()));

    if (!trailer_written) {
        std::byte* const trailer = o + podpipe_header_bytes + deflate_bytes;
        detail::store_le32(trailer, libdeflate_crc32(0, in.data(), in.size()));
        detail::store_le32(trailer + 4, static_cast<std::uint32_t>(in.size()));
    }
    return member_bytes;
}

} // namespace podpipe::gzip
