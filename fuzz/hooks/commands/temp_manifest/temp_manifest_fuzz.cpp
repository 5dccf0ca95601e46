// libFuzzer target for the _temp manifest parser (hooks/commands/temp_sync.hpp). The manifest
// lives on the runner's disk, where a crash, a full disk or another program can leave any
// bytes. Each input is parsed twice: as is (which mostly exercises the magic and checksum
// checks), and with a matching checksum appended, so the structural checks behind the
// checksum get fuzzed too. Invariants: nothing crashes; an accepted manifest re-serializes to
// exactly the bytes parsed (the format has one spelling per snapshot); what the diff and the
// removal script make of an accepted snapshot stays within it.
#include "hooks/commands/temp_sync.hpp"

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
    auto parsed = hook::parse_manifest(bytes);
    if (!parsed)
        return;
    if (hook::serialize_manifest(*parsed) != bytes)
        std::abort();
    if (!hook::diff_snapshots(*parsed, *parsed).empty())
        std::abort();
    const hook::temp_delta gone = hook::diff_snapshots(*parsed, {});
    if (!gone.send.empty() || !gone.new_dirs.empty() || gone.removed.size() > parsed->size())
        std::abort();
    const std::string script = hook::removal_script("/__w/_temp", gone.removed);
    if (!gone.removed.empty() && !script.starts_with("rm -rf -- '/__w/_temp/"))
        std::abort();
    const hook::temp_delta all = hook::diff_snapshots({}, *parsed);
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
