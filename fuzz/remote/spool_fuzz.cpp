// libFuzzer target for the step spool's readers (remote/step_spool.hpp): the status and pgid
// files of `podpipe run`'s spool, which anything in the pod can overwrite. The first byte picks
// the reader. What parse_status accepts is exactly what the supervisor writes ("exit N\n" or
// "signal S\n", 0..255) and the exit code a shell would report; parse_pid accepts only
// decimal digits (up to a newline) whose value is above 1.
#include "remote/step_spool.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

using namespace podpipe::remote::step;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0)
        return 0;
    const std::string_view in(reinterpret_cast<const char*>(data + 1), size - 1);
    if (data[0] & 1) {
        if (auto pid = parse_pid(in)) {
            // Digits up to the first newline (leading zeros allowed), their value above 1.
            long v = 0;
            std::size_t i = 0;
            for (; i < in.size() && in[i] != '\n'; ++i) {
                if (in[i] < '0' || in[i] > '9')
                    std::abort();
                v = v * 10 + (in[i] - '0');
            }
            if (*pid <= 1 || v != *pid)
                std::abort();
        }
        return 0;
    }
    auto st = parse_status(in, "status");
    if (!st) {
        if (st.error().rfind("status: not a step status: ", 0) != 0)
            std::abort();
        return 0;
    }
    const std::string again =
        std::string(st->signalled ? "signal " : "exit ") + std::to_string(st->value) + "\n";
    if (st->value < 0 || st->value > 255)
        std::abort();
    if (st->exit_code() != (st->signalled ? 128 + st->value : st->value))
        std::abort();
    // Leading zeros are the one way two texts mean one status.
    if (again != in && in.find(" 0") == std::string_view::npos)
        std::abort();
    return 0;
}
