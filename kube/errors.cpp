#include "kube/errors.hpp"

#include "kube/json.hpp"

#include <charconv>

namespace podpipe::kube {

namespace {

class k8s_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "k8s"; }

    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
        case errc::bad_request:
            return "bad request";
        case errc::unauthorized:
            return "unauthorized (credentials rejected)";
        case errc::forbidden:
            return "forbidden";
        case errc::not_found:
            return "not found";
        case errc::method_not_allowed:
            return "request not supported by the server";
        case errc::already_exists:
            return "already exists";
        case errc::conflict:
            return "conflict";
        case errc::gone:
            return "resource version expired";
        case errc::too_large:
            return "request entity too large";
        case errc::invalid:
            return "invalid object";
        case errc::too_many_requests:
            return "too many requests";
        case errc::server_error:
            return "API server internal error";
        case errc::service_unavailable:
            return "API server unavailable";
        case errc::timeout:
            return "timeout";
        case errc::unexpected_status:
            return "unexpected HTTP status";
        case errc::bad_response:
            return "malformed API response";
        case errc::exec_failed:
            return "exec failed";
        case errc::missing_status:
            return "exec ended without a status: outcome unknown";
        case errc::config_missing:
            return "no Kubernetes configuration found";
        case errc::config_invalid:
            return "invalid Kubernetes configuration";
        case errc::credential_failed:
            return "cannot obtain credentials";
        case errc::cancelled:
            return "interrupted";
        }
        return "unknown k8s error";
    }

    std::error_condition default_error_condition(int c) const noexcept override {
        switch (static_cast<errc>(c)) {
        case errc::too_many_requests:
        case errc::server_error:
        case errc::service_unavailable:
        case errc::timeout:
            return condition::retryable;
        case errc::bad_response:
        case errc::missing_status:
            return condition::bad_input;
        case errc::unauthorized:
        case errc::forbidden:
        case errc::invalid:
        case errc::bad_request:
        case errc::method_not_allowed:
        case errc::too_large:
        case errc::config_missing:
        case errc::config_invalid:
        case errc::credential_failed:
        case errc::unexpected_status:
        case errc::cancelled:
            return condition::fatal;
        default:
            // not_found, already_exists, conflict, gone, exec_failed: the caller decides.
            return {c, *this};
        }
    }
};

} // namespace

const std::error_category& k8s_category() noexcept {
    static const k8s_category_impl instance;
    return instance;
}

std::string api_error::what() const {
    std::string s;
    if (message.empty()) {
        s = code.message();
        if (!detail.empty())
            s += ": " + detail;
    } else {
        s = detail.empty() ? message : detail + ": " + message;
    }
    if (http_status != 0) {
        s += " (HTTP " + std::to_string(http_status);
        if (!reason.empty())
            s += " " + reason;
        s += ")";
    }
    return s;
}

errc errc_for_http(int http_status, std::string_view reason) {
    switch (http_status) {
    case 400:
        return errc::bad_request;
    case 401:
        return errc::unauthorized;
    case 403:
        return errc::forbidden;
    case 404:
        return errc::not_found;
    case 405:
    case 406:
    case 415:
        return errc::method_not_allowed;
    case 409:
        return reason == "AlreadyExists" ? errc::already_exists : errc::conflict;
    case 410:
        return errc::gone;
    case 413:
        return errc::too_large;
    case 422:
        return errc::invalid;
    case 429:
        return errc::too_many_requests;
    case 500:
        return errc::server_error;
    case 502:
    case 503:
        return errc::service_unavailable;
    case 504:
        return errc::timeout;
    default:
        return errc::unexpected_status;
    }
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view header) {
    while (!header.empty() && (header.front() == ' ' || header.front() == '\t'))
        header.remove_prefix(1);
    while (!header.empty() && (header.back() == ' ' || header.back() == '\t'))
        header.remove_suffix(1);
    if (header.empty())
        return std::nullopt;
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(header.data(), header.data() + header.size(), v);
    if (ec != std::errc() || ptr != header.data() + header.size() || v < 0)
        return std::nullopt;
    return std::chrono::seconds(v);
}

std::string sanitize_for_message(std::string_view text, std::size_t max_bytes) {
    std::string out;
    const bool truncated = text.size() > max_bytes;
    if (truncated)
        text = text.substr(0, max_bytes);
    out.reserve(text.size() + 3);
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        out.push_back(c < 0x20 || c == 0x7F ? ' ' : ch);
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    if (truncated)
        out += "...";
    return out;
}

api_error error_from_http(int http_status, std::string_view body, std::string call,
                           std::string_view retry_after_header) {
    api_error e;
    e.detail = std::move(call);
    e.http_status = http_status;
    e.retry_after = parse_retry_after(retry_after_header);
    bool parsed = false;
    if (!body.empty() && body.size() <= (1u << 20)) {
        if (auto st = parse_status(body); st && (!st->status.empty() || !st->reason.empty())) {
            parsed = true;
            e.reason = st->reason;
            e.message = sanitize_for_message(st->message, 2048);
            if (!e.retry_after && st->retry_after_seconds && *st->retry_after_seconds >= 0)
                e.retry_after = std::chrono::seconds(*st->retry_after_seconds);
        }
    }
    if (!parsed)
        e.message = sanitize_for_message(body);
    e.code = make_error_code(errc_for_http(http_status, e.reason));
    return e;
}

} // namespace podpipe::kube
