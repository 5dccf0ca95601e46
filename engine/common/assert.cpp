#include "engine/common/assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace podpipe::detail {

void check_failed(const char* expr, const char* msg, const char* file, int line) noexcept {
    std::fprintf(stderr, "podpipe: internal error: %s (%s) at %s:%d\n", msg, expr, file, line);
    std::abort();
}

} // namespace podpipe::detail
