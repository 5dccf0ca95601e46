#include "engine/common/json_writer.hpp"

#include "engine/common/assert.hpp"

#include <charconv>
#include <cmath>

namespace podpipe {

void json_writer::before_value() {
    if (stack_.empty()) {
        PODPIPE_CHECK(!done_, "json_writer: second top-level value");
        done_ = true;
        return;
    }
    frame& f = stack_.back();
    if (f.is_object) {
        PODPIPE_CHECK(f.have_key, "json_writer: value without key in object");
        f.have_key = false;
        return;
    }
    if (!f.first)
        out_.push_back(',');
    f.first = false;
}

void json_writer::key(std::string_view k) {
    PODPIPE_CHECK(!stack_.empty() && stack_.back().is_object && !stack_.back().have_key,
                  "json_writer: key outside object");
    frame& f = stack_.back();
    if (!f.first)
        out_.push_back(',');
    f.first = false;
    f.have_key = true;
    append_escaped(out_, k);
    out_.push_back(':');
}

void json_writer::begin_object() {
    before_value();
    out_.push_back('{');
    stack_.push_back({true});
}

void json_writer::end_object() {
    PODPIPE_CHECK(!stack_.empty() && stack_.back().is_object && !stack_.back().have_key,
                  "json_writer: unbalanced end_object");
    stack_.pop_back();
    out_.push_back('}');
}

void json_writer::begin_array() {
    before_value();
    out_.push_back('[');
    stack_.push_back({false});
}

void json_writer::end_array() {
    PODPIPE_CHECK(!stack_.empty() && !stack_.back().is_object, "json_writer: unbalanced end_array");
    stack_.pop_back();
    out_.push_back(']');
}

void json_writer::value(std::string_view v) {
    before_value();
    append_escaped(out_, v);
}

void json_writer::value(std::int64_t v) {
    before_value();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
}

void json_writer::value(std::uint64_t v) {
    before_value();
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
}

void json_writer::value(double v, int decimals) {
    before_value();
    if (!std::isfinite(v)) {
        out_ += "null";
        return;
    }
    char buf[64];
    auto r = decimals < 0 ? std::to_chars(buf, buf + sizeof buf, v)
                          : std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed,
                                          decimals);
    if (r.ec != std::errc{}) // a fixed form too long for the buffer (|v| > 1e40 or so)
        r = std::to_chars(buf, buf + sizeof buf, v);
    out_.append(buf, r.ptr);
}

void json_writer::value(bool v) {
    before_value();
    out_ += v ? "true" : "false";
}

void json_writer::null() {
    before_value();
    out_ += "null";
}

std::string json_writer::take() {
    PODPIPE_CHECK(stack_.empty() && done_, "json_writer: unbalanced document");
    done_ = false;
    return std::move(out_);
}

namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if invalid (overlongs, surrogates and
// code points above U+10FFFF are invalid).
std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    std::size_t n;
    std::uint32_t cp;
    if (b0 < 0x80)
        return 1;
    if ((b0 & 0xE0) == 0xC0) {
        n = 2;
        cp = b0 & 0x1F;
    } else if ((b0 & 0xF0) == 0xE0) {
        n = 3;
        cp = b0 & 0x0F;
    } else if ((b0 & 0xF8) == 0xF0) {
        n = 4;
        cp = b0 & 0x07;
    } else {
        return 0;
    }
    if (i + n > s.size())
        return 0;
    for (std::size_t k = 1; k < n; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr std::uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

} // namespace

void json_writer::append_escaped(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (std::size_t i = 0; i < s.size();) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            const std::size_t n = utf8_sequence_length(s, i);
            if (n == 0) {
                out += "\\ufffd";
                ++i;
            } else {
                out.append(s.substr(i, n));
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        default:
            if (c < 0x20 || c == 0x7F) {
                out += "\\u00";
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 0xF]);
            } else {
                out.push_back(static_cast<char>(c));
            }
        }
        ++i;
    }
    out.push_back('"');
}

} // namespace podpipe
