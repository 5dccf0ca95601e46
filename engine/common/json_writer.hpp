// A small streaming JSON writer: the one way podpipe produces JSON text (API bodies, the hook's
// responses, the remote protocol's messages and --stats-json). Strings are escaped per
// RFC 8259 §7; invalid UTF-8 is replaced with U+FFFD (as Go's encoding/json does) so the output
// is always valid JSON. Numbers are written locale-free (std::to_chars); a double that is not
// finite is written as null (JSON has no NaN or infinity). Misuse (a value without a key inside
// an object, unbalanced end_*) is a bug and trips PODPIPE_CHECK.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe {

class json_writer {
public:
    void begin_object();
    void end_object();
    void begin_array();
    void end_array();
    void key(std::string_view k);

    void value(std::string_view v);

    void value(const char* v) { value(std::string_view(v)); }

    void value(const std::string& v) { value(std::string_view(v)); }

    void value(std::int64_t v);

    void value(int v) { value(static_cast<std::int64_t>(v)); }

    void value(std::uint64_t v);

    void value(unsigned v) { value(static_cast<std::uint64_t>(v)); }

    /// `decimals` < 0: the shortest text that reads back as `v`; else fixed, that many digits
    /// after the point (e.g. 6 for seconds).
    void value(double v, int decimals = -1);

    void value(bool v);
    void null();

    /// key + value in one call.
    template <class V>
    void field(std::string_view k, const V& v) {
        key(k);
        value(v);
    }

    /// key + a double with `decimals` fixed digits.
    void field(std::string_view k, double v, int decimals) {
        key(k);
        value(v, decimals);
    }

    /// The finished document; the writer must be balanced.
    std::string take();

    /// Appends `s` as a quoted, escaped JSON string.
    static void append_escaped(std::string& out, std::string_view s);

private:
    void before_value();

    struct frame {
        bool is_object;
        bool first = true;
        bool have_key = false;
    };

    std::string out_;
    std::vector<frame> stack_;
    bool done_ = false;
};

} // namespace podpipe
