// Error conditions shared by every component. Each component defines its own `enum class errc`
// with a std::error_category whose default_error_condition() maps onto these conditions, so
// callers branch on "is this retryable / bad input / a closed peer" without knowing specifics.
#pragma once

#include <cerrno>
#include <string>
#include <system_error>

namespace podpipe {

enum class condition {
    retryable = 1,   ///< try again later may succeed (EAGAIN, 429, 503, a dropped connection)
    peer_closed,     ///< the other side went away (EPIPE, ECONNRESET, a closed channel)
    bad_input,       ///< the bytes we were given are wrong: corrupt, truncated, hostile
    unsafe_path,     ///< an archive entry would land outside the target directory
    fatal,           ///< nothing to retry: configuration, permissions, programming limits
};

const std::error_category& condition_category() noexcept;

inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

/// An errno value as an error_code (system category).
inline std::error_code errno_code(int e) noexcept { return {e, std::system_category()}; }

/// The current errno as an error_code.
inline std::error_code last_errno() noexcept { return errno_code(errno); }

} // namespace podpipe

template <>
struct std::is_error_condition_enum<podpipe::condition> : std::true_type {};
