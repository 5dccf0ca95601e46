// libFuzzer target for engine/pipeline's ledger readers: a resumed receive reads its ledger and
// directory log from the target directory, where anything may have been written since. The
// first byte picks the reader. A record that decodes must encode back to the same bytes (no two
// byte strings mean one record), and its resume point must be one the parser accepts.
#include "engine/pipeline/ledger.hpp"
#include "engine/tar/parser.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace {

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

class no_handler final : public podpipe::tar::parser_handler {
public:
    podpipe::result<void> on_entry(const podpipe::tar::entry&) override { return {}; }
    podpipe::result<void> on_data(std::span<const std::byte>) override { return {}; }
    podpipe::result<void> on_entry_end() override { return {}; }
    podpipe::result<void> on_manifest(const podpipe::tar::manifest&) override { return {}; }
};

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace podpipe::pipeline;
    if (size == 0)
        return 0;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    if (data[0] & 1) {
        auto dirs = decode_dir_log(in);
        if (dirs) {
            std::string again;
            for (const auto& d : *dirs) {
                check(!d.path.empty() && d.mode <= 07777);
                again += encode_dir_record(d);
            }
            check(again == in);
        }
        return 0;
    }
    auto rec = decode_ledger(in);
    if (!rec)
        return 0;
    check(encode_ledger(*rec) == in);
    check(rec->point.offset > 0);
    no_handler h;
    podpipe::tar::parser p(h);
    check(static_cast<bool>(p.resume_at(rec->point)));
    return 0;
}
