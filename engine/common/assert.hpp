// Bugs are not errors. PODPIPE_CHECK is always on and aborts with file, line and message;
// PODPIPE_ASSERT is a debug-only invariant. Never use either on bytes from disk, the network
// or an API server: those are errors and travel as result<T>.
#pragma once

namespace podpipe::detail {
[[noreturn]] void check_failed(const char* expr, const char* msg, const char* file, int line) noexcept;
}

#define PODPIPE_CHECK(cond, msg)                                                                   \
    do {                                                                                           \
        if (!(cond)) [[unlikely]]                                                                  \
            ::podpipe::detail::check_failed(#cond, (msg), __FILE__, __LINE__);                    \
    } while (0)

#ifdef NDEBUG
#define PODPIPE_ASSERT(cond) ((void)0)
#else
#define PODPIPE_ASSERT(cond) PODPIPE_CHECK(cond, "assertion")
#endif
