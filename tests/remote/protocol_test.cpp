// The pod-side protocol (remote/protocol.hpp, protocol_parse.hpp): what one end writes, the
// other reads back unchanged; another major version, a wrong kind, a missing or mistyped
// field, a second line or trailing bytes are errors that say what was wrong.
#include "remote/protocol_parse.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

namespace podpipe::remote::protocol {
namespace {

hello sample_hello() { return this_hello("libdeflate"); }

report sample_report() {
    report r;
    r.direction = "recv";
    pipeline::transfer_stats& s = r.stats;
    s.entries = 21594;
    s.files = 20075;
    s.directories = 1516;
    s.symlinks = 3;
    s.hardlinks = 2;
    s.skipped = 1;
    s.warnings = 4;
    s.content_bytes = 236766848;
    s.tar_bytes = 253091328;
    s.wire_bytes = 45836357;
    s.chunks = 242;
    s.chunks_stored = 9;
    s.seconds = 2.054910;
    s.manifest = {21595, 236766848, 0x7d371cde04716509};
    s.manifest_checked = true;
    s.chunks_per_level[1] = 200;
    s.chunks_per_level[12] = 42;
    s.probed_rate = 12500000;
    s.problems.count = 3;
    s.problems.lines = {"src/a.txt: changed while being read", "src/b: permission denied"};
    s.stages = {{"source", 45836357, 45836357, 1456846205, 397082581, 1},
                {"decompress", 45836320, 253091328, 337527572, 3714100223, 2}};
    r.usage = {0.358, 0.645, 49124};
    return r;
}

/// The sample report's line with `from` replaced by `to` (which must occur).
std::string edited_report(std::string_view from, std::string_view to) {
    std::string line = report_line(sample_report());
    const std::size_t at = line.find(from);
    EXPECT_NE(at, std::string::npos) << from << " not in " << line;
    if (at != std::string::npos)
        line.replace(at, from.size(), to);
    return line;
}

void expect_error(const result<report, protocol_error>& r, std::string_view says) {
    ASSERT_FALSE(r) << "accepted";
    EXPECT_NE(r.error().what().find(says), std::string::npos) << r.error().what();
}

TEST(protocol, hello_round_trips) {
    const hello h = sample_hello();
    EXPECT_TRUE(h.caps.recv_acks && h.caps.send_acks && h.caps.send_watch_stdin &&
                h.caps.recv_failure_report && h.caps.step_run && h.caps.recv_resume &&
                h.caps.send_resume);
    EXPECT_EQ(h.acks_version, acks_version);
    const std::string line = hello_line(h);
    ASSERT_TRUE(line.ends_with("\n"));
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    auto back = parse_hello(line);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(*back, h);
}

TEST(protocol, hello_without_a_capability_says_so) {
    hello h = sample_hello();
    h.caps.send_acks = false;
    h.caps.send_watch_stdin = false;
    h.acks_version = 0;
    auto back = parse_hello(hello_line(h));
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(*back, h);
}

TEST(protocol, newer_minor_versions_add_fields_and_capabilities_a_reader_ignores) {
    auto back = parse_hello(
        R"({"message":"hello","protocol":1,"protocol_minor":7,"version":"0.9.0",)"
        R"("capabilities":["recv-acks","resume","direct-path"],"acks":1,"level1":"x",)"
        R"("future":{"deep":[1,2,3]}})");
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->protocol_minor, 7);
    EXPECT_TRUE(back->caps.recv_acks);
    EXPECT_FALSE(back->caps.send_acks);
    EXPECT_EQ(back->podpipe_version, "0.9.0");
}

TEST(protocol, another_major_version_is_refused) {
    hello h = sample_hello();
    h.protocol_major = 2;
    auto back = parse_hello(hello_line(h));
    ASSERT_FALSE(back);
    EXPECT_EQ(back.error().what(),
              "podpipe hello: unknown protocol version 2 (this podpipe speaks 1)");
    expect_error(parse_report(edited_report("\"protocol\":1,", "\"protocol\":0,")),
                 "unknown protocol version 0");
    // The version is read first: what else a version 2 message holds may mean anything.
    auto other = parse_hello(R"({"protocol":2,"greeting":"welcome"})");
    ASSERT_FALSE(other);
    EXPECT_EQ(other.error().what(),
              "podpipe hello: unknown protocol version 2 (this podpipe speaks 1)");
    // What a podpipe from before the protocol reported has no version: refused, said so.
    expect_error(parse_report(R"({"direction":"recv","entries":3,"files":3})"),
                 "podpipe report: protocol: missing");
}

TEST(protocol, what_an_older_podpipe_printed_is_not_a_hello) {
    for (std::string_view text :
         {"podpipe 0.3.0 (recv --acks, send --acks, send --watch-stdin)\ngzip level 1: x\n",
          "", "\n", "The following argument was not expected: hello\n"}) {
        auto h = parse_hello(text);
        ASSERT_FALSE(h) << text;
        EXPECT_TRUE(h.error().what().starts_with("podpipe hello: ")) << h.error().what();
    }
}

TEST(protocol, report_round_trips) {
    const report r = sample_report();
    const std::string line = report_line(r);
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    // Today's readers look for these exact forms (tests, scripts over --stats-json).
    EXPECT_NE(line.find("\"checked\":true"), std::string::npos) << line;
    EXPECT_NE(line.find("\"digest\":\"7d371cde04716509\""), std::string::npos) << line;
    EXPECT_NE(line.find("\"seconds\":2.054910,"), std::string::npos) << line;
    EXPECT_NE(line.find("\"levels\":{\"1\":200,\"12\":42}"), std::string::npos) << line;
    auto back = parse_report(line);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->direction, "recv");
    const auto &a = r.stats, &b = back->stats;
    EXPECT_EQ(b.entries, a.entries);
    EXPECT_EQ(b.files, a.files);
    EXPECT_EQ(b.directories, a.directories);
    EXPECT_EQ(b.symlinks, a.symlinks);
    EXPECT_EQ(b.hardlinks, a.hardlinks);
    EXPECT_EQ(b.skipped, a.skipped);
    EXPECT_EQ(b.warnings, a.warnings);
    EXPECT_EQ(b.content_bytes, a.content_bytes);
    EXPECT_EQ(b.tar_bytes, a.tar_bytes);
    EXPECT_EQ(b.wire_bytes, a.wire_bytes);
    EXPECT_EQ(b.chunks, a.chunks);
    EXPECT_EQ(b.chunks_stored, a.chunks_stored);
    EXPECT_DOUBLE_EQ(b.seconds, a.seconds);
    EXPECT_EQ(b.manifest, a.manifest);
    EXPECT_TRUE(b.manifest_checked);
    EXPECT_EQ(b.chunks_per_level, a.chunks_per_level);
    EXPECT_DOUBLE_EQ(b.probed_rate, a.probed_rate);
    EXPECT_EQ(b.problems.count, a.problems.count);
    EXPECT_EQ(b.problems.lines, a.problems.lines);
    ASSERT_EQ(b.stages.size(), a.stages.size());
    for (std::size_t i = 0; i < a.stages.size(); ++i) {
        EXPECT_EQ(b.stages[i].name, a.stages[i].name);
        EXPECT_EQ(b.stages[i].threads, a.stages[i].threads);
        EXPECT_EQ(b.stages[i].bytes_in, a.stages[i].bytes_in);
        EXPECT_EQ(b.stages[i].bytes_out, a.stages[i].bytes_out);
        EXPECT_EQ(b.stages[i].busy_ns, a.stages[i].busy_ns);
        EXPECT_EQ(b.stages[i].blocked_ns, a.stages[i].blocked_ns);
    }
    EXPECT_EQ(back->usage, r.usage);
}

TEST(protocol, a_report_nests_the_remote_one) {
    report local = sample_report();
    local.direction = "cp";
    json_writer w;
    const report remote = sample_report();
    write_report(w, local, &remote);
    const std::string text = w.take();
    EXPECT_NE(text.find(",\"remote\":{\"direction\":\"recv\""), std::string::npos) << text;
    EXPECT_TRUE(text.ends_with("\"message\":\"report\",\"protocol\":1,\"protocol_minor\":" +
                               std::to_string(version_minor) + ",\"ok\":true}}"))
        << text;
    auto back = parse_report(text);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->direction, "cp");
}

TEST(protocol, report_without_optional_parts) {
    report r;
    r.direction = "recv";
    auto back = parse_report(report_line(r));
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->stats.chunks_per_level, (std::array<std::uint64_t, 13>{}));
    EXPECT_EQ(back->stats.probed_rate, 0);
    EXPECT_TRUE(back->stats.stages.empty());
    // A report of a podpipe from before chunks_stored reads as none stored.
    auto old = parse_report(edited_report(",\"chunks_stored\":9", ""));
    ASSERT_TRUE(old) << old.error().what();
    EXPECT_EQ(old->stats.chunks_stored, 0u);
    EXPECT_EQ(back->stats.problems.count, 0u);
}

TEST(protocol, each_missing_or_mistyped_report_field_is_named) {
    expect_error(parse_report(edited_report("\"files\":20075,", "")), "files: missing");
    expect_error(parse_report(edited_report("\"files\":20075", "\"files\":\"20075\"")),
                 "files: expected an unsigned integer");
    expect_error(parse_report(edited_report("\"files\":20075", "\"files\":-1")),
                 "files: expected an unsigned integer");
    expect_error(parse_report(edited_report("\"files\":20075", "\"files\":1.5")),
                 "files: expected an unsigned integer");
    expect_error(parse_report(edited_report("\"seconds\":2.054910", "\"seconds\":null")),
                 "seconds: expected a number");
    expect_error(parse_report(edited_report("\"checked\":true", "\"checked\":1")),
                 "manifest.checked: expected true or false");
    expect_error(parse_report(edited_report("7d371cde04716509", "7d371cde0471650")),
                 "manifest.digest: expected 16 lowercase hex digits");
    expect_error(parse_report(edited_report("7d371cde04716509", "7d371cde0471650X")),
                 "manifest.digest");
    expect_error(parse_report(edited_report("\"manifest\":{", "\"manifest\":[{")),
                 "not one JSON value");
    expect_error(parse_report(edited_report("\"problem_lines\":[", "\"problem_lines\":[1,")),
                 "problem_lines: expected an array of strings");
    expect_error(parse_report(edited_report("\"problem_lines\":[\"src",
                                            "\"problem_lines\":{\"x\":\"src")),
                 "not one JSON value");
    expect_error(parse_report(edited_report("\"name\":\"decompress\"", "\"name\":7")),
                 "stages[1].name: expected a string");
    expect_error(parse_report(edited_report("\"threads\":2", "\"threads\":-2")),
                 "stages[1].threads: expected an integer from 0");
    expect_error(parse_report(edited_report("\"levels\":{\"1\":200", "\"levels\":{\"13\":200")),
                 "levels: expected levels 0 to 12");
    expect_error(parse_report(edited_report("\"levels\":{\"1\":200", "\"levels\":{\"1\":true")),
                 "levels: expected unsigned integers");
    expect_error(parse_report(edited_report("\"ok\":true", "\"ok\":false")),
                 "ok: false in a report");
    expect_error(parse_report(edited_report("\"protocol\":1,", "")), "protocol: missing");
    expect_error(parse_report(edited_report("\"protocol\":1,", "\"protocol\":\"1\",")),
                 "protocol: expected an integer");
    expect_error(parse_report(edited_report("\"message\":\"report\"", "\"message\":\"hello\"")),
                 "a \"hello\" message, expected \"report\"");
    expect_error(parse_report("[1,2]"), "not a JSON object");
}

TEST(protocol, trailing_garbage_and_second_lines_are_refused) {
    const std::string line = report_line(sample_report());
    expect_error(parse_report(line + "garbage"), "more than one line");
    std::string glued = line;
    glued.pop_back();
    expect_error(parse_report(glued + " {}"), "not one JSON value");
    expect_error(parse_report(glued + "}"), "not one JSON value");
    expect_error(parse_report(line + line), "more than one line");
    expect_error(parse_report(line.substr(0, line.size() / 2)), "not one JSON value");
    expect_error(parse_report(std::string(max_message_bytes + 1, ' ') + "x"), "longer than");
    // Trailing line ends are how the line arrives: accepted.
    EXPECT_TRUE(parse_report(glued + "\r\n"));
}

TEST(protocol, problems_with_hostile_bytes_come_out_printable_and_bounded) {
    // A count below the lines is raised to their number; control bytes become '?'.
    std::string text = report_line(sample_report());
    const std::string from = "\"problem_count\":3,\"problem_lines\":[";
    const std::size_t at = text.find(from);
    ASSERT_NE(at, std::string::npos);
    std::string lines;
    for (int i = 0; i < 150; ++i)
        lines += "\"\\u001b[31mred\\u0007\\t" + std::string(600, 'x') + "\",";
    text.replace(at, from.size(), "\"problem_count\":0,\"problem_lines\":[" + lines);
    auto back = parse_report(text);
    ASSERT_TRUE(back) << back.error().what();
    const auto& p = back->stats.problems;
    EXPECT_EQ(p.lines.size(), tar::sender_problems::max_lines);
    EXPECT_GE(p.count, p.lines.size());
    for (const std::string& l : p.lines) {
        EXPECT_EQ(l, tar::printable_line(l));
        EXPECT_LE(l.size(), tar::sender_problems::max_line_bytes);
        EXPECT_EQ(l.find('\x1b'), std::string::npos);
    }
    // The writer side cleans too: what it writes is one line whatever the lines hold.
    report r = sample_report();
    r.stats.problems.lines = {std::string("new\nline\r\x1b[2J\xff\"\\")};
    const std::string out = report_line(r);
    EXPECT_EQ(out.find('\n'), out.size() - 1);
    auto again = parse_report(out);
    ASSERT_TRUE(again) << again.error().what();
    ASSERT_EQ(again->stats.problems.lines.size(), 1u);
    EXPECT_EQ(again->stats.problems.lines[0], tar::printable_line(r.stats.problems.lines[0]));
}

TEST(protocol, failure_round_trips_and_is_told_from_a_report) {
    const failure_report f{4, "recv failed: no podpipe manifest in the stream \"x\"\n"};
    const std::string line = failure_line(f);
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    auto back = parse_failure(line);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(*back, f);

    auto fin = parse_final(line);
    ASSERT_TRUE(fin) << fin.error().what();
    ASSERT_TRUE(std::holds_alternative<failure_report>(*fin));
    EXPECT_EQ(std::get<failure_report>(*fin), f);
    auto ok = parse_final(report_line(sample_report()));
    ASSERT_TRUE(ok) << ok.error().what();
    ASSERT_TRUE(std::holds_alternative<report>(*ok));
    EXPECT_EQ(std::get<report>(*ok).stats.files, 20075u);

    EXPECT_FALSE(parse_report(line));
    EXPECT_FALSE(parse_failure(report_line(sample_report())));
    auto hello_as_final = parse_final(hello_line(sample_hello()));
    ASSERT_FALSE(hello_as_final);
    EXPECT_NE(hello_as_final.error().what().find("expected \"report\" or \"failure\""),
              std::string::npos)
        << hello_as_final.error().what();
    std::string zero = line;
    zero.replace(zero.find("\"exit_code\":4"), 13, "\"exit_code\":0");
    auto z = parse_failure(zero);
    ASSERT_FALSE(z);
    EXPECT_NE(z.error().what().find("exit_code: expected an integer from 1 to 255"),
              std::string::npos)
        << z.error().what();
    std::string ok_true = line;
    ok_true.replace(ok_true.find("\"ok\":false"), 10, "\"ok\":true");
    EXPECT_FALSE(parse_failure(ok_true));
}

// A resuming receiver's first line, and the same offer as `send --resume-from`'s one word.
TEST(protocol, resume_offers_round_trip_as_a_line_and_as_a_word) {
    resume r;
    r.offset = 8u << 20;
    r.before = {12, 8000000, 0x0123456789abcdefu};
    const std::string line = resume_line(r);
    ASSERT_TRUE(line.ends_with("\n"));
    auto back = parse_resume(line);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(*back, r);
    EXPECT_EQ(parse_resume_word(resume_word(r)), r);
    EXPECT_EQ(resume_word(r), "8388608:12:8000000:0123456789abcdef");

    resume none;
    none.why_not = "the receiver has no resume point for this transfer";
    auto told = parse_resume(resume_line(none));
    ASSERT_TRUE(told);
    EXPECT_EQ(told->offset, 0u);
    EXPECT_EQ(told->why_not, none.why_not);
    EXPECT_FALSE(parse_report(line)) << "a resume line is not a report";
}

TEST(protocol, malformed_resume_offers_are_refused) {
    for (const char* word : {"", "0:1:2:0123456789abcdef", "1:2:3", "1:2:3:0123456789ABCDEF",
                             "01:2:3:0123456789abcdef", "1:2:3:0123456789abcde",
                             "1:2:3:0123456789abcdef0", "1:-2:3:0123456789abcdef",
                             "99999999999999999999999:2:3:0123456789abcdef", " 1:2:3:0123456789abcdef"})
        EXPECT_FALSE(parse_resume_word(word)) << word;
    resume r;
    r.offset = 512;
    std::string line = resume_line(r);
    EXPECT_FALSE(parse_resume(line + line));
    const auto at = line.find("\"digest\":\"") + 10;
    line[at] = 'X';
    auto bad = parse_resume(line);
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().what().find("digest"), std::string::npos) << bad.error().what();
    r.why_not = std::string("evil\x1b[31m\n") + std::string(10, 'x');
    auto cleaned = parse_resume(resume_line(r));
    ASSERT_TRUE(cleaned);
    EXPECT_EQ(cleaned->why_not.find('\x1b'), std::string::npos);
    EXPECT_EQ(cleaned->why_not.find('\n'), std::string::npos);
}

} // namespace
} // namespace podpipe::remote::protocol
