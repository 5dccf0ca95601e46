#include "tools/podpipe/bench_report.hpp"

#include "engine/common/json_writer.hpp"

namespace podpipe::cli {

std::string size_label(std::size_t bytes) {
    if (bytes % (1u << 20) == 0)
        return std::to_string(bytes >> 20) + "M";
    return std::to_string(bytes >> 10) + "K";
}

std::string hook_size(std::size_t bytes) { return size_label(bytes) + "i"; }

namespace {

void write_cell(json_writer& w, const bench_cell& c) {
    w.begin_object();
    w.field("direction", c.direction);
    w.field("pod_side", c.pod_side);
    w.field("level", c.level);
    w.field("chunk", std::uint64_t{c.chunk});
    w.field("threads", c.threads);
    w.field("ok", c.ok);
    w.field("seconds", c.seconds, 3);
    w.field("mbps", c.mbps(), 2);
    w.field("content_bytes", c.content_bytes);
    w.field("wire_bytes", c.wire_bytes);
    w.field("local_cpu_s", c.local_cpu_s, 3);
    w.field("pod_cpu_s", c.remote_cpu_s.value_or(-1), 3);
    w.end_object();
}

void write_recommended(json_writer& w, const bench_cell& c) {
    w.begin_object();
    w.field("level", c.level);
    w.field("chunk_size", size_label(c.chunk));
    w.field("threads", c.threads);
    w.key("hook_env");
    w.begin_object();
    w.field("PODPIPE_COMPRESSION_LEVEL", c.level);
    w.field("PODPIPE_CHUNK_SIZE", hook_size(c.chunk));
    w.field("PODPIPE_THREADS", std::to_string(c.threads)); // env values are strings
    w.end_object();
    w.end_object();
}

} // namespace

std::string bench_json(const bench_summary& s) {
    json_writer w;
    w.begin_object();
    w.field("pod", s.pod);
    w.field("pod_binary", s.pod_binary);
    w.field("protocol", s.protocol);
    w.field("tree", s.tree);
    w.key("exec");
    w.begin_object();
    w.field("upload_mbps", s.exec.upload_mbps, 1);
    w.field("download_mbps", s.exec.download_mbps, 1);
    w.field("rtt_ms", s.exec.rtt_ms, 1);
    w.end_object();
    w.field("local_max_rss_kib", std::int64_t{s.local_max_rss_kib});
    w.key("cells");
    w.begin_array();
    for (const bench_cell& c : s.cells)
        write_cell(w, c);
    w.end_array();
    w.key("recommended");
    if (s.recommended)
        write_recommended(w, *s.recommended);
    else
        w.null();
    w.end_object();
    return w.take() + "\n";
}

} // namespace podpipe::cli
