// libFuzzer target for tar::parser. The whole input is the tar stream (so plain .tar files are
// good seeds); its first byte also picks the split point (as a fraction of the size) or, when
// 0xff, byte-at-a-time feeding, so chunk boundaries land everywhere. The handler checks the
// callback protocol and the size contract; the manifest builder consumes what it is given.
#include "engine/tar/manifest.hpp"
#include "engine/tar/parser.hpp"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

namespace {

using namespace podpipe;
using namespace podpipe::tar;

class checking_handler final : public parser_handler {
public:
    result<void> on_entry(const entry& e) override {
        if (in_entry_)
            std::abort(); // on_entry before on_entry_end
        in_entry_ = true;
        expected_ = e.size;
        got_ = 0;
        digest_.add_entry(e);
        return {};
    }
    result<void> on_data(std::span<const std::byte> b) override {
        if (!in_entry_ || b.empty())
            std::abort();
        got_ += b.size();
        if (got_ > expected_)
            std::abort(); // more content than the entry's size
        digest_.add_content(b);
        return {};
    }
    result<void> on_entry_end() override {
        if (!in_entry_ || got_ != expected_)
            std::abort();
        in_entry_ = false;
        return {};
    }
    result<void> on_manifest(const manifest&) override { return {}; }
    result<void> on_deletions(const deletions& d) override {
        if (in_entry_)
            std::abort(); // a pax global header inside an entry
        for (const std::string& p : d.paths) {
            if (p.empty())
                std::abort();
            digest_.add_deletion(p);
        }
        // What the writer would write for them parses back to the same paths.
        auto again = parse_deletions_comment(format_deletions_comment(d.paths));
        if (!again || again->paths != d.paths)
            std::abort();
        return {};
    }

private:
    bool in_entry_ = false;
    std::uint64_t expected_ = 0, got_ = 0;
    manifest_builder digest_;
};

// Copies each piece into its own exactly sized allocation so ASan sees any over-read.
result<void> feed_copy(parser& p, const std::uint8_t* data, std::size_t n) {
    auto piece = std::make_unique<std::byte[]>(n ? n : 1);
    if (n)
        std::memcpy(piece.get(), data, n);
    return p.feed({piece.get(), n});
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::uint8_t control = data[0];
    checking_handler h;
    parser p(h);
    if (control == 0xff) {
        // Byte at a time (kept for small inputs: the slowest feeding pattern).
        for (std::size_t i = 0; i < size && i < 4096; ++i) {
            if (!feed_copy(p, data + i, 1))
                return 0;
        }
        if (size > 4096 && !feed_copy(p, data + 4096, size - 4096))
            return 0;
    } else {
        const std::size_t split = size * control / 255;
        if (!feed_copy(p, data, split))
            return 0;
        if (!feed_copy(p, data + split, size - split))
            return 0;
    }
    const bool ok = static_cast<bool>(p.finish());
    if (ok && !p.ended())
        std::abort(); // a successful finish() means end of archive
    if (p.bytes_consumed() > size)
        std::abort();
    (void)p.last_error_detail();
    return 0;
}
