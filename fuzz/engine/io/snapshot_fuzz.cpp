// libFuzzer target for the parser of a saved tree snapshot (engine/io/snapshot.hpp). The file
// lives on a disk where a crash, a full disk or another program can leave any bytes. Each
// input is parsed twice: as is (which mostly exercises the magic and checksum checks), and
// with a matching checksum appended, so the structural checks behind the checksum get fuzzed
// too. Invariants: nothing crashes; an accepted snapshot re-serializes to exactly the bytes
// parsed (one spelling per snapshot); what the diff makes of it stays within it.
#include "engine/io/snapshot.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace podpipe;

namespace {

std::uint64_t fnv1a(std::string_view b) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : b) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

void check(std::string_view bytes) {
    auto parsed = io::parse_snapshot(bytes);
    if (!parsed)
        return;
    if (io::serialize_snapshot(*parsed) != bytes)
        std::abort();
    if (!io::diff_snapshots(*parsed, *parsed).empty())
        std::abort();
    const io::tree_snapshot none;
    const io::tree_delta gone = io::diff_snapshots(*parsed, none);
    if (!gone.send.empty() || !gone.new_dirs.empty() || gone.removed.size() > parsed->size())
        std::abort();
    for (const std::string& p : gone.removed) {
        if (!parsed->find(p))
            std::abort();
        // Listed once: not when its parent directory is removed too.
        if (const std::size_t s = p.rfind('/'); s != std::string::npos)
            if (const auto up = parsed->find(std::string_view(p).substr(0, s));
                up && up->kind == io::file_kind::directory)
                std::abort();
    }
    const io::tree_delta all = io::diff_snapshots(none, *parsed);
    if (all.send.size() + all.new_dirs.size() != parsed->size())
        std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    check(in);
    std::uint64_t sum = fnv1a(in);
    for (int i = 0; i < 8; ++i) {
        in += static_cast<char>(sum & 0xff);
        sum >>= 8;
    }
    check(in);
    return 0;
}
