#include "hooks/commands/log_resume.hpp"

#include "kube/credentials.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <time.h>

namespace podpipe::hook {
namespace {

// Longer than any RFC 3339 stamp with nanoseconds and an offset (35 bytes): a line whose first
// word is longer is not stamped.
constexpr std::size_t max_prefix_bytes = 40;

} // namespace

std::optional<log_stamp> parse_log_stamp(std::string_view text) {
    auto t = kube::parse_rfc3339(text);
    if (!t)
        return std::nullopt;
    log_stamp st;
    st.seconds = std::chrono::duration_cast<std::chrono::seconds>(t->time_since_epoch()).count();
    if (text.size() > 20 && text[19] == '.') {
        std::size_t digits = 0;
        std::uint32_t nanos = 0;
        for (std::size_t i = 20; i < text.size() && text[i] >= '0' && text[i] <= '9';
             ++i, ++digits) {
            if (digits == 9)
                return std::nullopt; // finer than a nanosecond: not what a kubelet writes
            nanos = nanos * 10 + static_cast<std::uint32_t>(text[i] - '0');
        }
        for (std::size_t i = digits; i < 9; ++i)
            nanos *= 10;
        st.nanos = nanos;
    }
    return st;
}

std::string log_resume::since_time() const {
    if (!newest_)
        return {};
    const auto secs = static_cast<time_t>(newest_->seconds);

    struct tm tm {};

    if (gmtime_r(&secs, &tm) == nullptr)
        return {};
    char buf[80]; // room for any int fields, so the compiler sees no truncation
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return buf;
}

void log_resume::begin_stream() {
    in_prefix_ = true;
    prefix_.clear();
    skip_ = printed_at_newest_;
    catching_up_ = newest_.has_value();
    stream_start_ = true;
}

bool log_resume::start_line(std::string& out) {
    const bool first_of_stream = stream_start_;
    stream_start_ = false;
    auto st = parse_log_stamp(prefix_);
    if (!st && first_of_stream && catching_up_) {
        // A resumed stream that begins inside a line: the kubelet stamps only the first part of
        // a line it stored in parts (over 16 KiB) and serves the parts from sinceTime on. That
        // line began before sinceTime, so before the newest printed line: it was printed whole.
        kind_ = line_kind::drop;
        return true;
    }
    if (!st) {
        // Not a stamp: the prefix is part of the line.
        kind_ = line_kind::unstamped;
        out += prefix_;
        printed_ += prefix_.size();
        return false;
    }
    if (!newest_ || *st > *newest_) {
        newest_ = *st;
        printed_at_newest_ = 0;
        skip_ = 0;
        catching_up_ = false;
        kind_ = line_kind::at_newest;
    } else if (*st == *newest_) {
        kind_ = line_kind::at_newest;
    } else {
        // Older than what was printed: a repeat while catching up after a reconnect; later
        // (a wall clock that stepped back) it is new output.
        kind_ = catching_up_ ? line_kind::drop : line_kind::unstamped;
    }
    return true;
}

void log_resume::content(std::string_view data, std::string& out) {
    switch (kind_) {
    case line_kind::drop:
        return;
    case line_kind::at_newest: {
        const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(skip_, data.size()));
        skip_ -= k;
        data.remove_prefix(k);
        printed_at_newest_ += data.size();
        break;
    }
    case line_kind::unstamped:
        break;
    }
    out.append(data);
    printed_ += data.size();
}

void log_resume::feed(std::string_view chunk, std::string& out) {
    while (!chunk.empty()) {
        if (in_prefix_) {
            const std::size_t stop = std::min(chunk.find(' '), chunk.find('\n'));
            if (stop == std::string_view::npos) {
                prefix_.append(chunk);
                chunk = {};
                if (prefix_.size() > max_prefix_bytes) {
                    (void)start_line(out); // cannot be a stamp: printed as content
                    prefix_.clear();
                    in_prefix_ = false;
                }
                continue;
            }
            prefix_.append(chunk.substr(0, stop));
            if (chunk[stop] == ' ') {
                chunk.remove_prefix(stop + 1);
                if (!start_line(out)) {
                    out += ' '; // the space was the line's own
                    ++printed_;
                }
            } else {
                chunk.remove_prefix(stop); // the '\n' is the line's content
                (void)start_line(out);
            }
            prefix_.clear();
            in_prefix_ = false;
            continue;
        }
        const std::size_t nl = chunk.find('\n');
        const std::size_t n = nl == std::string_view::npos ? chunk.size() : nl + 1;
        content(chunk.substr(0, n), out);
        chunk.remove_prefix(n);
        if (nl != std::string_view::npos)
            in_prefix_ = true;
    }
}

std::string whole_lines::take(std::string_view printed) {
    held_.append(printed);
    std::string out;
    const std::size_t nl = held_.rfind('\n');
    if (held_.size() > max_held_) {
        out.swap(held_);
    } else if (nl != std::string::npos) {
        out = held_.substr(0, nl + 1);
        held_.erase(0, nl + 1);
    }
    return out;
}

std::string whole_lines::rest() {
    std::string out;
    out.swap(held_);
    return out;
}

} // namespace podpipe::hook
