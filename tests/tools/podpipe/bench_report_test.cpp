// `podpipe bench --json`: the document json_writer writes parses back to what was measured,
// keeps the fields and number formats of the printf version it replaced, and stays valid JSON
// whatever the pod's name or the tree's path hold.
#include "tools/podpipe/bench_report.hpp"

#include <cstdio>
#include <limits>
#include <string>
#include <string_view>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace podpipe::cli {
namespace {

bench_cell cell(std::string direction, std::string side, std::string level, std::size_t chunk,
                unsigned threads, double seconds, std::uint64_t bytes) {
    bench_cell c;
    c.direction = std::move(direction);
    c.pod_side = std::move(side);
    c.level = std::move(level);
    c.chunk = chunk;
    c.threads = threads;
    c.ok = true;
    c.seconds = seconds;
    c.content_bytes = bytes;
    c.wire_bytes = bytes / 3;
    c.local_cpu_s = 0.4567;
    return c;
}

bench_summary sample() {
    bench_summary s;
    s.pod = "default/bb:main";
    s.pod_binary = true;
    s.protocol = "v5.channel.k8s.io";
    s.tree = "/var/tmp/podpipe-bench.abc/tree";
    s.exec = {812.345, 901.25, 3.04};
    s.local_max_rss_kib = 123456;
    s.cells.push_back(cell("to pod", "podpipe", "1", 1 << 20, 0, 1.23456, 250'000'000));
    s.cells.back().remote_cpu_s = 2.5;
    s.cells.back().remote_rss_mib = 40;
    s.cells.push_back(cell("from pod", "tar", "auto", 256 << 10, 2, 0.5, 1'000'000));
    bench_cell failed = cell("to pod", "tar", "6", 4 << 20, 1, 0.25, 0);
    failed.ok = false;
    failed.error = "exit 1: pod default/bb:main: tar extraction into /x failed (exit 2)";
    s.cells.push_back(failed);
    s.recommended = s.cells.front();
    return s;
}

// The document as the printf code before json_writer wrote it, for names that need no escaping.
std::string printf_reference(const bench_summary& s) {
    char buf[4096];
    std::string out;
    std::snprintf(buf, sizeof buf,
                  "{\"pod\":\"%s\",\"pod_binary\":%s,\"protocol\":\"%s\",\"tree\":\"%s\","
                  "\"exec\":{\"upload_mbps\":%.1f,\"download_mbps\":%.1f,\"rtt_ms\":%.1f},"
                  "\"local_max_rss_kib\":%ld,\"cells\":[",
                  s.pod.c_str(), s.pod_binary ? "true" : "false", s.protocol.c_str(),
                  s.tree.c_str(), s.exec.upload_mbps, s.exec.download_mbps, s.exec.rtt_ms,
                  s.local_max_rss_kib);
    out += buf;
    for (std::size_t i = 0; i < s.cells.size(); ++i) {
        const bench_cell& c = s.cells[i];
        std::snprintf(buf, sizeof buf,
                      "%s{\"direction\":\"%s\",\"pod_side\":\"%s\",\"level\":\"%s\",\"chunk\":%zu,"
                      "\"threads\":%u,\"ok\":%s,\"seconds\":%.3f,\"mbps\":%.2f,"
                      "\"content_bytes\":%llu,\"wire_bytes\":%llu,\"local_cpu_s\":%.3f,"
                      "\"pod_cpu_s\":%.3f}",
                      i ? "," : "", c.direction.c_str(), c.pod_side.c_str(), c.level.c_str(),
                      c.chunk, c.threads, c.ok ? "true" : "false", c.seconds, c.mbps(),
                      static_cast<unsigned long long>(c.content_bytes),
                      static_cast<unsigned long long>(c.wire_bytes), c.local_cpu_s,
                      c.remote_cpu_s.value_or(-1));
        out += buf;
    }
    out += "],\"recommended\":";
    if (const auto& r = s.recommended) {
        std::snprintf(buf, sizeof buf,
                      "{\"level\":\"%s\",\"chunk_size\":\"%s\",\"threads\":%u,"
                      "\"hook_env\":{\"PODPIPE_COMPRESSION_LEVEL\":\"%s\","
                      "\"PODPIPE_CHUNK_SIZE\":\"%s\",\"PODPIPE_THREADS\":\"%u\"}}}\n",
                      r->level.c_str(), size_label(r->chunk).c_str(), r->threads,
                      r->level.c_str(), hook_size(r->chunk).c_str(), r->threads);
        out += buf;
    } else {
        out += "null}\n";
    }
    return out;
}

TEST(bench_report, same_bytes_as_the_printf_document_it_replaced) {
    bench_summary s = sample();
    EXPECT_EQ(bench_json(s), printf_reference(s));
    s.recommended.reset();
    EXPECT_EQ(bench_json(s), printf_reference(s));
}

TEST(bench_report, parses_back_to_what_was_measured) {
    const bench_summary s = sample();
    const std::string text = bench_json(s);
    ASSERT_FALSE(text.empty());
    EXPECT_EQ(text.back(), '\n');
    EXPECT_EQ(text.find('\n'), text.size() - 1) << "one line";

    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
    EXPECT_EQ(std::string_view(doc["pod"]), "default/bb:main");
    EXPECT_TRUE(bool(doc["pod_binary"]));
    EXPECT_EQ(std::string_view(doc["protocol"]), "v5.channel.k8s.io");
    EXPECT_EQ(std::string_view(doc["tree"]), s.tree);
    EXPECT_DOUBLE_EQ(double(doc["exec"]["upload_mbps"]), 812.3);
    EXPECT_DOUBLE_EQ(double(doc["exec"]["download_mbps"]), 901.2); // %.1f rounds 901.25 down
    EXPECT_DOUBLE_EQ(double(doc["exec"]["rtt_ms"]), 3.0);
    EXPECT_EQ(std::int64_t(doc["local_max_rss_kib"]), 123456);

    simdjson::dom::array cells;
    ASSERT_EQ(doc["cells"].get_array().get(cells), simdjson::SUCCESS);
    ASSERT_EQ(cells.size(), s.cells.size());
    std::size_t i = 0;
    for (simdjson::dom::element c : cells) {
        const bench_cell& want = s.cells[i++];
        EXPECT_EQ(std::string_view(c["direction"]), want.direction);
        EXPECT_EQ(std::string_view(c["pod_side"]), want.pod_side);
        EXPECT_EQ(std::string_view(c["level"]), want.level);
        EXPECT_EQ(std::uint64_t(c["chunk"]), want.chunk);
        EXPECT_EQ(std::uint64_t(c["threads"]), want.threads);
        EXPECT_EQ(bool(c["ok"]), want.ok);
        EXPECT_NEAR(double(c["seconds"]), want.seconds, 0.0005);
        EXPECT_NEAR(double(c["mbps"]), want.mbps(), 0.005);
        EXPECT_EQ(std::uint64_t(c["content_bytes"]), want.content_bytes);
        EXPECT_EQ(std::uint64_t(c["wire_bytes"]), want.wire_bytes);
        EXPECT_NEAR(double(c["local_cpu_s"]), want.local_cpu_s, 0.0005);
        EXPECT_DOUBLE_EQ(double(c["pod_cpu_s"]), want.remote_cpu_s.value_or(-1));
    }

    simdjson::dom::object rec;
    ASSERT_EQ(doc["recommended"].get_object().get(rec), simdjson::SUCCESS);
    EXPECT_EQ(std::string_view(rec["level"]), "1");
    EXPECT_EQ(std::string_view(rec["chunk_size"]), "1M");
    EXPECT_EQ(std::uint64_t(rec["threads"]), 0u);
    EXPECT_EQ(std::string_view(rec["hook_env"]["PODPIPE_COMPRESSION_LEVEL"]), "1");
    EXPECT_EQ(std::string_view(rec["hook_env"]["PODPIPE_CHUNK_SIZE"]), "1Mi");
    EXPECT_EQ(std::string_view(rec["hook_env"]["PODPIPE_THREADS"]), "0");
}

// The printf version escaped only quotes and backslashes and dropped control characters; the
// writer keeps every byte, and a rate that is not finite is null instead of `inf`.
TEST(bench_report, stays_valid_json_for_any_name_and_rate) {
    bench_summary s = sample();
    s.pod = "ns/po\"d\\x:c";
    s.tree = std::string("/tmp/a\nb\tc\x01\x7f") + "\xff/tree"; // invalid UTF-8 too
    s.exec.upload_mbps = std::numeric_limits<double>::infinity();
    s.recommended.reset();
    const std::string text = bench_json(s);
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    ASSERT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
    EXPECT_EQ(std::string_view(doc["pod"]), s.pod);
    EXPECT_EQ(std::string_view(doc["tree"]), "/tmp/a\nb\tc\x01\x7f\xef\xbf\xbd/tree");
    EXPECT_TRUE(doc["exec"]["upload_mbps"].is_null());
    EXPECT_TRUE(doc["recommended"].is_null());
}

TEST(bench_report, sizes_as_cp_and_the_hook_take_them) {
    EXPECT_EQ(size_label(1 << 20), "1M");
    EXPECT_EQ(size_label(4 << 20), "4M");
    EXPECT_EQ(size_label(256 << 10), "256K");
    EXPECT_EQ(hook_size(256 << 10), "256Ki");
    EXPECT_EQ(hook_size(1 << 20), "1Mi");
}

} // namespace
} // namespace podpipe::cli
