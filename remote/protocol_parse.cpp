#include "remote/protocol_parse.hpp"

#include "engine/tar/manifest.hpp"

#include <cstdint>
#include <initializer_list>
#include <optional>

#include <simdjson.h>

namespace podpipe::remote::protocol {

namespace {

namespace dom = simdjson::dom;

/// Reads the fields of one object; the first problem is kept and later reads do nothing.
/// `where` prefixes field names in errors ("manifest.digest", "stages[2].name").
class reader {
public:
    reader(const dom::object& o, std::string where, std::string& error)
        : o_(o)
        , where_(std::move(where))
        , error_(error) {}

    bool ok() const { return error_.empty(); }

    /// The member, or nullopt after recording "missing" (required) / nothing (optional).
    std::optional<dom::element> get(std::string_view key, bool required = true) {
        if (!ok())
            return std::nullopt;
        dom::element e;
        if (o_.at_key(key).get(e) != simdjson::SUCCESS) {
            if (required)
                set(key, "missing");
            return std::nullopt;
        }
        return e;
    }

    std::uint64_t u64(std::string_view key, bool required = true) {
        std::uint64_t v = 0;
        if (auto e = get(key, required); e && e->get_uint64().get(v) != simdjson::SUCCESS)
            set(key, "expected an unsigned integer");
        return v;
    }

    std::int64_t i64(std::string_view key) {
        std::int64_t v = 0;
        if (auto e = get(key); e && e->get_int64().get(v) != simdjson::SUCCESS)
            set(key, "expected an integer");
        return v;
    }

    int small_int(std::string_view key, std::int64_t lo, std::int64_t hi) {
        const std::int64_t v = i64(key);
        if (ok() && (v < lo || v > hi))
            set(key, "expected an integer from " + std::to_string(lo) + " to " +
                         std::to_string(hi));
        return static_cast<int>(v);
    }

    double number(std::string_view key, bool required = true) {
        double v = 0;
        if (auto e = get(key, required); e && e->get_double().get(v) != simdjson::SUCCESS)
            set(key, "expected a number");
        return v;
    }

    bool boolean(std::string_view key) {
        bool v = false;
        if (auto e = get(key); e && e->get_bool().get(v) != simdjson::SUCCESS)
            set(key, "expected true or false");
        return v;
    }

    std::string string(std::string_view key) {
        std::string_view v;
        if (auto e = get(key); e && e->get_string().get(v) != simdjson::SUCCESS)
            set(key, "expected a string");
        return std::string(v);
    }

    std::optional<dom::object> object(std::string_view key, bool required = true) {
        dom::object v;
        auto e = get(key, required);
        if (!e)
            return std::nullopt;
        if (e->get_object().get(v) != simdjson::SUCCESS) {
            set(key, "expected an object");
            return std::nullopt;
        }
        return v;
    }

    std::optional<dom::array> array(std::string_view key) {
        dom::array v;
        auto e = get(key);
        if (!e)
            return std::nullopt;
        if (e->get_array().get(v) != simdjson::SUCCESS) {
            set(key, "expected an array");
            return std::nullopt;
        }
        return v;
    }

    /// A reader of `o`, the member `key` of this object, sharing its error.
    reader nested(const dom::object& o, std::string_view key) const {
        return reader(o, path(key), error_);
    }

    std::string path(std::string_view key) const {
        return where_.empty() ? std::string(key) : where_ + "." + std::string(key);
    }

    void set(std::string_view key, const std::string& what) {
        if (ok())
            error_ = path(key) + ": " + what;
    }

private:
    const dom::object& o_;
    std::string where_;
    std::string& error_;
};

/// Parses `text` as one line holding one JSON object of this major version whose "message" is
/// one of `kinds`, then calls `fill(reader&, kind)`. `what` names the message in errors.
template <class Fill>
result<void, protocol_error> parse_message(std::string_view text, std::string_view what,
                                           std::initializer_list<std::string_view> kinds,
                                           Fill&& fill) {
    auto error = [&](const std::string& why) {
        return fail(protocol_error{"podpipe " + std::string(what) + ": " + why});
    };
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' '))
        text.remove_suffix(1);
    if (text.empty())
        return error("empty");
    if (text.size() > max_message_bytes)
        return error("longer than " + std::to_string(max_message_bytes) + " bytes");
    if (text.find('\n') != std::string_view::npos)
        return error("more than one line");
    dom::parser parser;
    dom::element root;
    if (auto err = parser.parse(text.data(), text.size()).get(root); err != simdjson::SUCCESS)
        return error(std::string("not one JSON value (") + simdjson::error_message(err) + ")");
    dom::object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS)
        return error("not a JSON object");
    std::string problem;
    reader r(obj, "", problem);
    // The version before anything else: another major version may mean anything.
    const std::int64_t major = r.i64("protocol");
    if (r.ok() && major != version_major)
        return error("unknown protocol version " + std::to_string(major) +
                     " (this podpipe speaks " + std::to_string(version_major) + ")");
    const std::string kind = r.string("message");
    if (!r.ok())
        return error(problem);
    bool known = false;
    std::string expected;
    for (std::string_view k : kinds) {
        known = known || kind == k;
        expected += (expected.empty() ? "\"" : " or \"") + std::string(k) + "\"";
    }
    if (!known)
        return error("a \"" + tar::printable_line(std::string_view(kind).substr(0, 32)) +
                     "\" message, expected " + expected);
    if (r.ok())
        fill(r, kind);
    if (!r.ok())
        return error(problem);
    return {};
}

/// parse_message for one kind into a T filled by `read`.
template <class T>
result<T, protocol_error> parse_one(std::string_view text, std::string_view kind,
                                    void (*read)(reader&, T&)) {
    T out{};
    auto ok = parse_message(text, kind, {kind}, [&](reader& r, const std::string&) {
        read(r, out);
    });
    if (!ok)
        return fail(std::move(ok.error()));
    return out;
}

void read_hello(reader& r, hello& h) {
    h.protocol_major = version_major;
    h.protocol_minor = r.small_int("protocol_minor", 0, 1 << 20);
    h.podpipe_version = r.string("version");
    auto caps = r.array("capabilities");
    if (caps) {
        for (dom::element e : *caps) {
            std::string_view name;
            if (e.get_string().get(name) != simdjson::SUCCESS)
                return r.set("capabilities", "expected an array of strings");
            if (name == capability::recv_acks)
                h.caps.recv_acks = true;
            else if (name == capability::send_acks)
                h.caps.send_acks = true;
            else if (name == capability::send_watch_stdin)
                h.caps.send_watch_stdin = true;
            else if (name == capability::recv_failure_report)
                h.caps.recv_failure_report = true;
            else if (name == capability::step_run)
                h.caps.step_run = true;
            else if (name == capability::recv_resume)
                h.caps.recv_resume = true;
            else if (name == capability::send_resume)
                h.caps.send_resume = true;
            // else: a capability of a newer minor version, not ours to use
        }
    }
    h.acks_version = r.small_int("acks", 0, 1 << 20);
    h.level1_codec = r.string("level1");
}

std::optional<std::uint64_t> hex64(std::string_view s) {
    if (s.size() != 16)
        return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return std::nullopt;
        v = v << 4 | static_cast<std::uint64_t>(d);
    }
    return v;
}

void read_report(reader& r, report& out) {
    pipeline::transfer_stats& s = out.stats;
    if (!r.boolean("ok") && r.ok())
        return r.set("ok", "false in a report (a failure is its own message)");
    out.direction = r.string("direction");
    s.entries = r.u64("entries");
    s.files = r.u64("files");
    s.directories = r.u64("directories");
    s.symlinks = r.u64("symlinks");
    s.hardlinks = r.u64("hardlinks");
    s.skipped = r.u64("skipped");
    s.warnings = r.u64("warnings");
    s.content_bytes = r.u64("content_bytes");
    s.tar_bytes = r.u64("tar_bytes");
    s.wire_bytes = r.u64("wire_bytes");
    s.chunks = r.u64("chunks");
    s.chunks_stored = r.u64("chunks_stored", false); // an older podpipe does not send it
    s.seconds = r.number("seconds");
    if (auto m = r.object("manifest")) {
        reader mr = r.nested(*m, "manifest");
        s.manifest.entries = mr.u64("entries");
        s.manifest.content_bytes = mr.u64("content_bytes");
        const std::string digest = mr.string("digest");
        if (auto d = hex64(digest))
            s.manifest.digest = *d;
        else
            mr.set("digest", "expected 16 lowercase hex digits");
        s.manifest_checked = mr.boolean("checked");
    }
    s.problems.count = r.u64("problem_count");
    if (auto lines = r.array("problem_lines")) {
        for (dom::element e : *lines) {
            std::string_view line;
            if (e.get_string().get(line) != simdjson::SUCCESS)
                return r.set("problem_lines", "expected an array of strings");
            if (s.problems.lines.size() < tar::sender_problems::max_lines)
                s.problems.lines.emplace_back(line);
        }
    }
    tar::clean_problems(s.problems); // shown to people: no control bytes, bounded
    out.usage.cpu_user_s = r.number("cpu_user_s");
    out.usage.cpu_sys_s = r.number("cpu_sys_s");
    out.usage.max_rss_kib = r.i64("max_rss_kib");
    if (auto levels = r.object("levels", false)) {
        for (auto [key, value] : *levels) {
            std::size_t level = s.chunks_per_level.size();
            if (key.size() == 1 && key[0] >= '0' && key[0] <= '9')
                level = static_cast<std::size_t>(key[0] - '0');
            else if (key.size() == 2 && key[0] == '1' && key[1] >= '0' && key[1] <= '9')
                level = static_cast<std::size_t>(10 + key[1] - '0');
            if (level >= s.chunks_per_level.size())
                return r.set("levels", "expected levels 0 to 12 as keys");
            if (value.get_uint64().get(s.chunks_per_level[level]) != simdjson::SUCCESS)
                return r.set("levels", "expected unsigned integers");
        }
    }
    s.probed_rate = r.number("probed_bytes_per_s", false);
    if (auto stages = r.array("stages")) {
        std::size_t i = 0;
        for (dom::element e : *stages) {
            const std::string where = "stages[" + std::to_string(i++) + "]";
            dom::object o;
            if (e.get_object().get(o) != simdjson::SUCCESS)
                return r.set(where, "expected an object");
            reader sr = r.nested(o, where);
            pipeline::stage_stats st;
            st.name = sr.string("name");
            st.threads = static_cast<unsigned>(sr.small_int("threads", 0, 1 << 20));
            st.bytes_in = sr.u64("bytes_in");
            st.bytes_out = sr.u64("bytes_out");
            st.busy_ns = sr.u64("busy_ns");
            st.blocked_ns = sr.u64("blocked_ns");
            if (!sr.ok())
                return;
            s.stages.push_back(std::move(st));
        }
    }
}

void read_failure(reader& r, failure_report& f) {
    if (r.boolean("ok") && r.ok())
        return r.set("ok", "true in a failure");
    f.exit_code = r.small_int("exit_code", 1, 255);
    f.message = r.string("error");
}

void read_resume(reader& r, resume& m) {
    m.offset = r.u64("offset");
    m.before.entries = r.u64("entries");
    m.before.content_bytes = r.u64("content_bytes");
    const std::string digest = r.string("digest");
    if (!r.ok())
        return;
    if (auto d = hex64(digest))
        m.before.digest = *d;
    else
        return r.set("digest", "expected 16 lowercase hex digits");
    m.why_not = r.string("why_not");
    if (m.why_not.size() > 1024)
        return r.set("why_not", "longer than 1024 bytes");
    m.why_not = tar::printable_line(m.why_not);
}

} // namespace

result<resume, protocol_error> parse_resume(std::string_view text) {
    return parse_one<resume>(text, "resume", read_resume);
}

result<hello, protocol_error> parse_hello(std::string_view text) {
    return parse_one<hello>(text, "hello", read_hello);
}

result<report, protocol_error> parse_report(std::string_view text) {
    return parse_one<report>(text, "report", read_report);
}

result<failure_report, protocol_error> parse_failure(std::string_view text) {
    return parse_one<failure_report>(text, "failure", read_failure);
}

result<final_message, protocol_error> parse_final(std::string_view text) {
    final_message out;
    auto ok = parse_message(text, "recv result", {"report", "failure"},
                            [&](reader& r, const std::string& kind) {
                                if (kind == "failure")
                                    read_failure(r, out.emplace<failure_report>());
                                else
                                    read_report(r, out.emplace<report>());
                            });
    if (!ok)
        return fail(std::move(ok.error()));
    return out;
}

} // namespace podpipe::remote::protocol
