#include "remote/protocol.hpp"

#include <sys/resource.h>

#include <charconv>
#include <cstdio>
#include <utility>

namespace podpipe::remote::protocol {

namespace {

void message_fields(json_writer& w, std::string_view kind) {
    w.field("message", kind);
    w.field("protocol", version_major);
    w.field("protocol_minor", version_minor);
}

std::string line(json_writer& w) {
    std::string s = w.take();
    s += '\n';
    return s;
}

std::string hex16(std::uint64_t v) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

double seconds(const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

} // namespace

hello this_hello(std::string level1_codec) {
    hello h;
    h.podpipe_version = PODPIPE_VERSION;
    h.caps.recv_acks = true;
    h.caps.send_acks = true;
    h.caps.send_watch_stdin = true;
    h.caps.recv_failure_report = true;
    h.caps.step_run = true;
    h.caps.recv_resume = true;
    h.caps.send_resume = true;
    h.acks_version = acks_version;
    h.level1_codec = std::move(level1_codec);
    return h;
}

process_usage usage_now() {
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    return {seconds(ru.ru_utime), seconds(ru.ru_stime), static_cast<std::int64_t>(ru.ru_maxrss)};
}

std::string hello_line(const hello& h) {
    json_writer w;
    w.begin_object();
    w.field("message", "hello");
    w.field("protocol", h.protocol_major);
    w.field("protocol_minor", h.protocol_minor);
    w.field("version", h.podpipe_version);
    w.key("capabilities");
    w.begin_array();
    const std::pair<bool, std::string_view> caps[] = {
        {h.caps.recv_acks, capability::recv_acks},
        {h.caps.send_acks, capability::send_acks},
        {h.caps.send_watch_stdin, capability::send_watch_stdin},
        {h.caps.recv_failure_report, capability::recv_failure_report},
        {h.caps.step_run, capability::step_run},
        {h.caps.recv_resume, capability::recv_resume},
        {h.caps.send_resume, capability::send_resume},
    };
    for (const auto& [has, name] : caps)
        if (has)
            w.value(name);
    w.end_array();
    w.field("acks", h.acks_version);
    w.field("level1", h.level1_codec);
    w.end_object();
    return line(w);
}

void write_report(json_writer& w, const report& r, const report* remote) {
    const pipeline::transfer_stats& s = r.stats;
    // The fields in the order --stats-json has always had them (scripts read it), the
    // protocol's own after them.
    w.begin_object();
    w.field("direction", r.direction);
    w.field("entries", s.entries);
    w.field("files", s.files);
    w.field("directories", s.directories);
    w.field("symlinks", s.symlinks);
    w.field("hardlinks", s.hardlinks);
    w.field("skipped", s.skipped);
    w.field("warnings", s.warnings);
    w.field("content_bytes", s.content_bytes);
    w.field("tar_bytes", s.tar_bytes);
    w.field("wire_bytes", s.wire_bytes);
    w.field("chunks", s.chunks);
    w.field("chunks_stored", s.chunks_stored);
    w.field("seconds", s.seconds, 6);
    w.key("manifest");
    w.begin_object();
    w.field("entries", s.manifest.entries);
    w.field("content_bytes", s.manifest.content_bytes);
    w.field("digest", hex16(s.manifest.digest));
    w.field("checked", s.manifest_checked);
    w.end_object();
    // What the sender could not send as it is on its disk: a pod's report carries it to the
    // caller. Lines are cleaned for a terminal (the writer would escape anything anyway).
    w.field("problem_count", s.problems.count);
    w.key("problem_lines");
    w.begin_array();
    for (const std::string& l : s.problems.lines)
        w.value(tar::printable_line(l));
    w.end_array();
    w.field("cpu_user_s", r.usage.cpu_user_s, 3);
    w.field("cpu_sys_s", r.usage.cpu_sys_s, 3);
    w.field("max_rss_kib", r.usage.max_rss_kib);
    bool any_level = false;
    for (std::size_t l = 0; l < s.chunks_per_level.size(); ++l) {
        if (s.chunks_per_level[l] == 0)
            continue;
        if (!any_level) {
            w.key("levels");
            w.begin_object();
            any_level = true;
        }
        w.field(std::to_string(l), s.chunks_per_level[l]);
    }
    if (any_level)
        w.end_object();
    if (s.probed_rate > 0)
        w.field("probed_bytes_per_s", s.probed_rate, 0);
    w.key("stages");
    w.begin_array();
    for (const pipeline::stage_stats& st : s.stages) {
        w.begin_object();
        w.field("name", st.name);
        w.field("threads", st.threads);
        w.field("bytes_in", st.bytes_in);
        w.field("bytes_out", st.bytes_out);
        w.field("busy_ns", st.busy_ns);
        w.field("blocked_ns", st.blocked_ns);
        w.end_object();
    }
    w.end_array();
    message_fields(w, "report");
    w.field("ok", true);
    if (remote != nullptr) {
        w.key("remote");
        write_report(w, *remote);
    }
    w.end_object();
}

std::string report_line(const report& r) {
    json_writer w;
    write_report(w, r);
    return line(w);
}

std::string failure_line(const failure_report& f) {
    json_writer w;
    w.begin_object();
    message_fields(w, "failure");
    w.field("ok", false);
    w.field("exit_code", f.exit_code);
    w.field("error", f.message);
    w.end_object();
    return line(w);
}

std::string resume_line(const resume& r) {
    json_writer w;
    w.begin_object();
    message_fields(w, "resume");
    w.field("offset", r.offset);
    w.field("entries", r.before.entries);
    w.field("content_bytes", r.before.content_bytes);
    w.field("digest", hex16(r.before.digest));
    w.field("why_not", r.why_not);
    w.end_object();
    return line(w);
}

std::string resume_word(const resume& r) {
    return std::to_string(r.offset) + ":" + std::to_string(r.before.entries) + ":" +
           std::to_string(r.before.content_bytes) + ":" + hex16(r.before.digest);
}

std::optional<resume> parse_resume_word(std::string_view word) {
    const auto number = [&](std::uint64_t& v) {
        std::size_t n = 0;
        while (n < word.size() && word[n] >= '0' && word[n] <= '9')
            ++n;
        if (n == 0 || n > 20 || (n > 1 && word[0] == '0'))
            return false;
        auto [end, ec] = std::from_chars(word.data(), word.data() + n, v);
        if (ec != std::errc() || end != word.data() + n)
            return false;
        word.remove_prefix(n);
        return true;
    };
    const auto colon = [&] {
        if (word.empty() || word[0] != ':')
            return false;
        word.remove_prefix(1);
        return true;
    };
    resume r;
    if (!number(r.offset) || !colon() || !number(r.before.entries) || !colon() ||
        !number(r.before.content_bytes) || !colon() || word.size() != 16 || r.offset == 0)
        return std::nullopt;
    std::uint64_t d = 0;
    for (const char c : word) {
        const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (v < 0)
            return std::nullopt;
        d = d << 4 | static_cast<std::uint64_t>(v);
    }
    r.before.digest = d;
    return r;
}

} // namespace podpipe::remote::protocol
