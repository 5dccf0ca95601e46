// libFuzzer target for engine/gzip's parsers: inspect_head, member_splitter (over splits derived
// from the input), member_decompressor and stream_inflater with bounded output, and a
// compress -> decompress round trip that must reproduce the input.
#include "engine/gzip/head.hpp"
#include "engine/gzip/member_compressor.hpp"
#include "engine/gzip/member_decompressor.hpp"
#include "engine/gzip/member_splitter.hpp"
#include "engine/gzip/stream_inflater.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace {

using namespace podpipe::gzip;

constexpr std::size_t max_out_bytes = std::size_t{4} << 20; // bounds inflate work per input

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

// Decompresses a member the splitter produced; lengths come from its (validated) subfield.
void decompress_member(member_decompressor& d, std::span<const std::byte> member,
                       const head_info& h, std::vector<std::byte>& out) {
    check(member.size() == h.member_bytes);
    out.resize(std::min(h.uncompressed_bytes, max_out_bytes));
    auto n = d.decompress(member, out);
    if (n)
        check(*n == h.uncompressed_bytes);
}

void run_stream_inflater(std::span<const std::byte> in, std::size_t step,
                         std::vector<std::byte>& window) {
    stream_inflater inf;
    std::size_t produced_total = 0;
    for (;;) {
        const auto piece = in.first(std::min(step, in.size()));
        auto r = inf.inflate(piece, window);
        if (!r)
            return;
        check(r->consumed <= piece.size() && r->produced <= window.size());
        check(piece.empty() || r->consumed != 0 || r->produced != 0);
        produced_total += r->produced;
        in = in.subspan(r->consumed);
        if (produced_total > max_out_bytes)
            return;
        if (in.empty() && r->produced < window.size())
            break;
    }
    (void)inf.finish();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static member_decompressor decompressor;
    static std::vector<std::byte> out;
    static std::vector<std::byte> window(4096);
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data), size);

    // 1. inspect_head on every prefix length up to the subfield, and the whole input.
    for (std::size_t n = 0; n <= std::min<std::size_t>(size, 40); ++n)
        (void)inspect_head(in.first(n));
    if (auto h = inspect_head(in); h && h->kind == head_kind::podpipe_member)
        check(h->member_bytes <= max_member_bytes && h->uncompressed_bytes <= max_member_bytes);

    // 2. member_decompressor on the whole input, bounded output.
    out.resize(std::min<std::size_t>(max_out_bytes, 64 << 10));
    if (auto n = decompressor.decompress(in, out); n)
        check(*n <= out.size());

    // 3. splitter over pseudo-random splits; members are decompressed; on a foreign/not-gzip
    //    boundary the rest goes to the serial inflater, as the receive pipeline does.
    {
        member_splitter splitter(std::size_t{1} << 20);
        std::uint32_t rng = static_cast<std::uint32_t>(size) * 2654435761u + 1;
        std::size_t off = 0;
        std::size_t emitted = 0;
        while (off < size) {
            rng = rng * 1103515245u + 12345u;
            const std::size_t step = 1 + (rng >> 16) % ((rng & 1) ? 7 : 4096);
            std::span<const std::byte> piece = in.subspan(off, std::min(step, size - off));
            const std::size_t piece_bytes = piece.size();
            auto k = splitter.feed(piece, [&](std::span<const std::byte> m, const head_info& h) {
                ++emitted;
                decompress_member(decompressor, m, h, out);
            });
            if (!k)
                break;
            if (*k == head_kind::foreign_gzip || *k == head_kind::not_gzip) {
                std::vector<std::byte> rest(splitter.pending().begin(), splitter.pending().end());
                rest.insert(rest.end(), piece.begin(), piece.end());
                rest.insert(rest.end(), in.begin() + static_cast<long>(off + piece_bytes),
                            in.end());
                if (*k == head_kind::foreign_gzip)
                    run_stream_inflater(rest, 1 + (rng >> 8) % 5000, window);
                else
                    check(!rest.empty());
                break;
            }
            check(*k == head_kind::need_more && piece.empty());
            off += piece_bytes;
        }
        check(emitted == splitter.members());
        (void)splitter.finish();
    }

    // 4. stream_inflater over the whole input in small and large steps.
    run_stream_inflater(in, 1 + (size % 17), window);
    run_stream_inflater(in, size, window);

    // 5. Round trip: whatever we compress, we decompress to the same bytes.
    if (size <= (64 << 10)) {
        const int level = size <= 4096 ? (size > 0 ? data[0] % 13 : 6) : (size % 4);
        static std::unique_ptr<member_compressor> compressors[13];
        auto& c = compressors[level];
        if (!c)
            c = std::make_unique<member_compressor>(level);
        std::vector<std::byte> member(c->bound(size));
        auto m = c->compress(in, member);
        check(m.has_value());
        member.resize(*m);
        auto h = inspect_head(member);
        check(h && h->kind == head_kind::podpipe_member && h->member_bytes == *m &&
              h->uncompressed_bytes == size);
        std::vector<std::byte> back(size);
        auto n = decompressor.decompress(member, back);
        // std::ranges::equal, not memcmp: for an empty input both pointers may be null, and
        // memcmp's arguments must not be null even for a length of 0.
        check(n && *n == size && std::ranges::equal(back, in));
    }
    return 0;
}
