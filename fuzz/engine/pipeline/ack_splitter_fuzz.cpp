// libFuzzer target for engine/pipeline's ack_splitter (it parses what a pod's receiver prints).
// The first byte picks write boundaries; whatever the boundaries, the bytes passed through and
// the acknowledged count must be those of one whole write.
#include "engine/pipeline/acks.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace podpipe::pipeline;

void check(bool ok) {
    if (!ok)
        __builtin_trap();
}

class text_sink final : public byte_sink {
public:
    podpipe::result<void> write(std::span<const std::byte> bytes) override {
        text.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return {};
    }
    std::string text;
};

struct outcome {
    std::string rest;
    std::uint64_t acked = 0;
};

outcome split(std::string_view in, std::size_t step) {
    ack_counter acks;
    text_sink rest;
    ack_splitter s(acks, rest);
    for (std::size_t at = 0; at < in.size(); at += step) {
        const std::string_view part = in.substr(at, step);
        check(!!s.write(std::as_bytes(std::span(part.data(), part.size()))));
    }
    check(!!s.finish());
    return {rest.text, acks.value()};
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::size_t step = 1 + data[0] % 17;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    const outcome whole = split(in, in.size() + 1);
    const outcome pieces = split(in, step);
    check(whole.rest == pieces.rest);
    check(whole.acked == pieces.acked);
    // Nothing is invented: the output is never longer than the input, and a count comes only
    // from an acknowledgement line.
    check(whole.rest.size() <= in.size());
    if (whole.acked != 0)
        check(in.find(ack_prefix) != std::string_view::npos);
    return 0;
}
