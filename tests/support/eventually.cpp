#include "tests/support/eventually.hpp"

#include <algorithm>
#include <thread>

namespace podpipe::testing {

bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit,
                std::chrono::milliseconds every) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
        if (cond())
            return true;
        const auto now = std::chrono::steady_clock::now();
        if (now >= until)
            return false;
        using duration = std::chrono::steady_clock::duration;
        std::this_thread::sleep_for(std::min<duration>(every, until - now));
    }
}

} // namespace podpipe::testing
