// Errors of the pipeline itself (the stages' own errors pass through unchanged).
#pragma once

#include <concepts>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace podpipe::pipeline {

enum class errc {
    manifest_mismatch = 1, ///< the receiver's digest/counts differ from the sender's manifest
    manifest_missing,      ///< require_manifest and the stream had none
    member_too_large,      ///< a gzip member larger than the receiver accepts
    truncated,             ///< the stream ended before the end of the archive
    bad_options,           ///< invalid options (checked before starting)
    stalled,               ///< no byte moved within the stall timeout (the peer stopped)
    /// a resumed send: the source before the resume point is not what the receiver has (it
    /// changed, or the receiver's ledger belongs to another stream); start the copy over
    resume_mismatch,
};

const std::error_category& pipeline_category() noexcept;

/// Process exit statuses of transfer commands (podpipe's CLI, the remote recv/send, cp): a
/// script, or the other end of an exec, branches on them.
enum exit_status : int {
    exit_ok = 0,
    exit_failure = 1,     ///< I/O or system error, or the other side failed
    exit_usage = 2,       ///< bad command line
    exit_unsafe = 3,      ///< an archive entry would have landed outside the target: refused
    exit_bad_input = 4,   ///< corrupt or truncated stream, or verification mismatch
    exit_interrupted = 5, ///< stopped by SIGINT/SIGTERM
};

/// The exit status for a transfer that failed with `ec`.
int exit_status_for(const std::error_code& ec);

/// How a transfer (send_tree, recv_tree) failed: the code to branch on and to pick the exit
/// status, and the detail a person needs (the entry, the path, the system's reason, what was
/// removed). Both travel together in the result, so the detail survives any thread hop.
struct transfer_error {
    std::error_code code;
    std::string detail;

    transfer_error(std::error_code c, std::string d = {}) : code(c), detail(std::move(d)) {}

    /// The code's message (e.g. "stream ended before the end of the archive").
    std::string message() const { return code.message(); }
    /// "message: detail", or the message alone.
    std::string what() const { return detail.empty() ? message() : message() + ": " + detail; }

    /// Compares the code: with an errc, a condition or another std::error_code.
    template <class T>
        requires(!std::is_same_v<T, transfer_error>) &&
                requires(const std::error_code& c, const T& t) {
                    { c == t } -> std::convertible_to<bool>;
                }
    friend bool operator==(const transfer_error& e, const T& t) {
        return e.code == t;
    }
};

inline int exit_status_for(const transfer_error& e) { return exit_status_for(e.code); }

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), pipeline_category()};
}

} // namespace podpipe::pipeline

template <>
struct std::is_error_code_enum<podpipe::pipeline::errc> : std::true_type {};
