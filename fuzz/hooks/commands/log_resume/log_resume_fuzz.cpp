// libFuzzer target for log_resume (hooks/commands/log_resume.hpp), which parses the pods/log
// stream from the API server. The input is split into two streams (a reconnect) at a point taken
// from its first byte, each fed in chunks of a size from its second byte. Invariants: nothing
// crashes; a stream never prints more bytes than it carried; a stream with no stamps at all
// prints exactly its bytes (when it ends with a newline); sinceTime is empty or one RFC 3339
// second.
#include "hooks/commands/log_resume.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace podpipe;

namespace {

std::string feed(hook::log_resume& r, std::string_view stream, std::size_t piece) {
    r.begin_stream();
    std::string out;
    for (std::size_t i = 0; i < stream.size(); i += piece)
        r.feed(stream.substr(i, piece), out);
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const std::size_t piece = 1 + data[1] % 64;
    std::string_view all(reinterpret_cast<const char*>(data) + 2, size - 2);
    const std::size_t split = all.empty() ? 0 : data[0] % (all.size() + 1);
    hook::log_resume r;
    for (std::string_view s : {all.substr(0, split), all.substr(split)}) {
        const std::string out = feed(r, s, piece);
        if (out.size() > s.size())
            std::abort();
        const std::string since = r.since_time();
        if (!since.empty() && (since.size() != 20 || since.back() != 'Z'))
            std::abort();
    }
    // No digit anywhere: no line can be stamped, so whole lines come out as they went in.
    if (all.find_first_of("0123456789") == std::string_view::npos && !all.empty() &&
        all.back() == '\n') {
        hook::log_resume plain;
        if (feed(plain, all, piece) != all)
            std::abort();
    }
    return 0;
}
