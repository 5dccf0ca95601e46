// Errors of the Kubernetes control plane (spec/kube-api.md §3.9). Every kube/ call returns
// result<T, api_error>: an error_code of kube::errc (or a system code) that callers branch on
// through podpipe::condition, plus what the API said (HTTP status, reason, message) and which
// call on which object failed. Credentials never appear in any of these strings.
#pragma once

#include "engine/common/error.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace podpipe::kube {

enum class errc {
    bad_request = 1,     ///< 400 BadRequest (incl. "container ... is waiting to start")
    unauthorized,        ///< 401: bad or expired credentials
    forbidden,           ///< 403: RBAC denial
    not_found,           ///< 404
    method_not_allowed,  ///< 405/406/415: client bug
    already_exists,      ///< 409 AlreadyExists
    conflict,            ///< 409 Conflict (resourceVersion / uid precondition)
    gone,                ///< 410 Expired/Gone: stale continue token or watch resourceVersion
    too_large,           ///< 413
    invalid,             ///< 422 Invalid
    too_many_requests,   ///< 429 (JSON Status or the limiter's plain text)
    server_error,        ///< 500 InternalError
    service_unavailable, ///< 502/503
    timeout,             ///< 504, or a client-side timeout
    unexpected_status,   ///< any other HTTP status
    bad_response,        ///< the response body is not what the API documents
    exec_failed,         ///< exec status channel reported a failure other than an exit code
    missing_status,      ///< exec ended without a status message: outcome unknown
    config_missing,      ///< no usable configuration (no kubeconfig, not in a cluster)
    config_invalid,      ///< kubeconfig / in-cluster files present but unusable
    credential_failed,   ///< token file unreadable, exec plugin failed or printed garbage
    cancelled,           ///< the caller's stop token ended a wait (SIGINT/SIGTERM)
};

const std::error_category& k8s_category() noexcept;

inline std::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), k8s_category()};
}

/// The error of every kube/ call (the hook uses it as its own: hook::hook_error).
struct api_error {
    std::error_code code;
    /// Which call on which object, e.g. "create pod ns1/runner-abc". Never a credential.
    std::string detail;
    int http_status = 0; ///< 0 when no HTTP response was involved
    std::string reason;  ///< metav1.Status reason (NotFound, Invalid, ...), if any
    std::string message; ///< metav1.Status message or the plain-text body (bounded)
    /// From the Retry-After header or Status details.retryAfterSeconds.
    std::optional<std::chrono::seconds> retry_after;

    api_error() = default;

    api_error(std::error_code c, std::string d)
        : code(c)
        , detail(std::move(d)) {}

    api_error(errc e, std::string d)
        : code(make_error_code(e))
        , detail(std::move(d)) {}

    /// One line for users: "<detail>: <message> (HTTP <n> <reason>)", or without a server
    /// message "<code text>: <detail>".
    std::string what() const;

    bool retryable() const { return code == condition::retryable; }

    bool is(errc e) const { return code == make_error_code(e); }
};

/// Turns a non-2xx HTTP response into an api_error. `body` may be a metav1.Status JSON, the
/// apiserver limiter's plain text, or HTML from a proxy or load balancer; other text is kept
/// (truncated to 512 bytes, control characters replaced). An HTML page (`content_type`
/// text/html, or a body that starts like one) becomes a short excerpt instead, "HTML page:
/// <its title, or its text>" (html_excerpt). `retry_after_header` is the raw header value.
api_error error_from_http(int http_status, std::string_view body, std::string call,
                           std::string_view retry_after_header = {},
                           std::string_view content_type = {});

/// The gist of an HTML page in at most `max_bytes` (plus "..."): its <title>, else its text
/// without tags, comments, scripts and styles; the common entities decoded, whitespace and
/// control characters collapsed to single spaces. nullopt when `body` is not HTML (neither
/// `content_type` text/html nor a body starting with a tag such as <html>, <!DOCTYPE html>,
/// <head>, <title> or <body>).
std::optional<std::string> html_excerpt(std::string_view body, std::string_view content_type = {},
                                        std::size_t max_bytes = 200);

/// The errc for an HTTP status and (optional) Status reason: 409 splits on reason.
errc errc_for_http(int http_status, std::string_view reason = {});

/// Retry-After as delta-seconds (RFC 9110 §10.2.3); HTTP-dates and garbage give nullopt.
std::optional<std::chrono::seconds> parse_retry_after(std::string_view header);

/// Replaces control characters and truncates: for quoting server text in error messages.
std::string sanitize_for_message(std::string_view text, std::size_t max_bytes = 512);

} // namespace podpipe::kube

template <>
struct std::is_error_code_enum<podpipe::kube::errc> : std::true_type {};
