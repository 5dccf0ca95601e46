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

namespace {

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool starts_with_ci(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size())
        return false;
    for (std::size_t i = 0; i < prefix.size(); ++i)
        if (lower(s[i]) != prefix[i])
            return false;
    return true;
}

/// Position of `needle` (lower case) in `s` from `from`, case-insensitively; npos if none.
std::size_t find_ci(std::string_view s, std::string_view needle, std::size_t from = 0) {
    if (needle.size() > s.size())
        return std::string_view::npos;
    for (std::size_t i = from; i + needle.size() <= s.size(); ++i)
        if (starts_with_ci(s.substr(i), needle))
            return i;
    return std::string_view::npos;
}

bool looks_like_html(std::string_view body, std::string_view content_type) {
    while (!content_type.empty() && content_type.front() == ' ')
        content_type.remove_prefix(1);
    if (starts_with_ci(content_type, "text/html") ||
        starts_with_ci(content_type, "application/xhtml+xml"))
        return true;
    std::size_t i = 0;
    while (i < body.size() && (body[i] == ' ' || body[i] == '\t' || body[i] == '\r' ||
                               body[i] == '\n'))
        ++i;
    const std::string_view rest = body.substr(i);
    for (std::string_view tag : {"<!doctype html", "<html", "<head", "<title", "<body"})
        if (starts_with_ci(rest, tag))
            return true;
    return false;
}

/// `text` with &amp; &lt; &gt; &quot; &#39; &apos; &nbsp; and decimal &#N; (ASCII) decoded.
std::string decode_entities(std::string_view text) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '&') {
            out.push_back(text[i]);
            continue;
        }
        const std::size_t semi = text.find(';', i);
        if (semi == std::string_view::npos || semi - i > 8) {
            out.push_back('&');
            continue;
        }
        const std::string_view name = text.substr(i + 1, semi - i - 1);
        char c = 0;
        if (name == "amp")
            c = '&';
        else if (name == "lt")
            c = '<';
        else if (name == "gt")
            c = '>';
        else if (name == "quot")
            c = '"';
        else if (name == "apos" || name == "#39")
            c = '\'';
        else if (name == "nbsp")
            c = ' ';
        else if (name.size() > 1 && name[0] == '#') {
            int v = 0;
            auto [p, ec] = std::from_chars(name.data() + 1, name.data() + name.size(), v);
            if (ec == std::errc() && p == name.data() + name.size() && v >= 0x20 && v < 0x7F)
                c = static_cast<char>(v);
        }
        if (c == 0) {
            out.push_back('&');
            continue;
        }
        out.push_back(c);
        i = semi;
    }
    return out;
}

/// Whitespace and control characters collapsed to single spaces, trimmed, then truncated
/// to `max_bytes` (on a UTF-8 boundary) with "..." when longer.
std::string collapse(std::string_view text, std::size_t max_bytes) {
    std::string out;
    for (char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (c <= 0x20 || c == 0x7F) {
            if (!out.empty() && out.back() != ' ')
                out.push_back(' ');
        } else {
            out.push_back(ch);
        }
    }
    while (!out.empty() && out.back() == ' ')
        out.pop_back();
    if (out.size() > max_bytes) {
        std::size_t cut = max_bytes;
        while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80)
            --cut; // not inside a UTF-8 sequence
        out.resize(cut);
        while (!out.empty() && out.back() == ' ')
            out.pop_back();
        out += "...";
    }
    return out;
}

} // namespace

std::optional<std::string> html_excerpt(std::string_view body, std::string_view content_type,
                                        std::size_t max_bytes) {
    if (!looks_like_html(body, content_type))
        return std::nullopt;
    if (body.size() > (1u << 20))
        body = body.substr(0, 1u << 20);
    // The title says it best ("503 Service Temporarily Unavailable").
    if (std::size_t t = find_ci(body, "<title"); t != std::string_view::npos) {
        const std::size_t open_end = body.find('>', t);
        const std::size_t close = open_end == std::string_view::npos
                                      ? std::string_view::npos
                                      : find_ci(body, "</title", open_end);
        if (close != std::string_view::npos) {
            std::string title = collapse(decode_entities(body.substr(open_end + 1,
                                                                     close - open_end - 1)),
                                         max_bytes);
            if (!title.empty())
                return title;
        }
    }
    // Else the page's text: tags, comments, scripts and styles dropped.
    std::string text;
    std::size_t i = 0;
    while (i < body.size() && text.size() <= 4 * max_bytes) {
        if (body[i] != '<') {
            const std::size_t next = body.find('<', i);
            const std::size_t end = next == std::string_view::npos ? body.size() : next;
            text += body.substr(i, end - i);
            i = end;
            continue;
        }
        std::size_t end;
        if (body.substr(i, 4) == "<!--") {
            end = body.find("-->", i + 4);
            end = end == std::string_view::npos ? body.size() : end + 3;
        } else if (starts_with_ci(body.substr(i), "<script") ||
                   starts_with_ci(body.substr(i), "<style")) {
            const bool script = starts_with_ci(body.substr(i), "<script");
            end = find_ci(body, script ? "</script" : "</style", i + 1);
            end = end == std::string_view::npos ? body.size() : body.find('>', end);
            end = end == std::string_view::npos ? body.size() : end + 1;
        } else {
            end = body.find('>', i);
            end = end == std::string_view::npos ? body.size() : end + 1;
        }
        text.push_back(' '); // a tag separates words
        i = end;
    }
    std::string out = collapse(decode_entities(text), max_bytes);
    if (out.empty())
        return std::string("(no text)");
    return out;
}

api_error error_from_http(int http_status, std::string_view body, std::string call,
                           std::string_view retry_after_header, std::string_view content_type) {
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
    if (!parsed) {
        // A proxy's or load balancer's error page: its gist, not kilobytes of markup.
        if (auto html = html_excerpt(body, content_type))
            e.message = "HTML page: " + *html;
        else
            e.message = sanitize_for_message(body);
    }
    e.code = make_error_code(errc_for_http(http_status, e.reason));
    return e;
}

} // namespace podpipe::kube
