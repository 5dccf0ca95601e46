#include "hooks/commands/log_resume.hpp"

#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::hook {
namespace {

// Feeds `stream` in pieces of `piece` bytes (0: whole) and returns what is printed.
std::string feed(log_resume& r, std::string_view stream, std::size_t piece = 0) {
    r.begin_stream();
    std::string out;
    if (piece == 0)
        piece = stream.size() + 1;
    for (std::size_t i = 0; i < stream.size(); i += piece)
        r.feed(stream.substr(i, piece), out);
    return out;
}

const std::string log3 = "2024-05-01T10:00:00.1Z one\n"
                         "2024-05-01T10:00:00.25Z two\n"
                         "2024-05-01T10:00:01Z three\n";

TEST(log_stamp, parses_what_kubelets_write) {
    auto a = parse_log_stamp("2024-05-01T10:00:00.123456789Z");
    ASSERT_TRUE(a);
    EXPECT_EQ(a->nanos, 123456789u);
    auto b = parse_log_stamp("2024-05-01T10:00:00.5Z");
    ASSERT_TRUE(b);
    EXPECT_EQ(b->nanos, 500000000u);
    EXPECT_EQ(b->seconds, a->seconds);
    auto c = parse_log_stamp("2024-05-01T12:00:00+02:00");
    ASSERT_TRUE(c);
    EXPECT_EQ(c->seconds, a->seconds);
    EXPECT_EQ(c->nanos, 0u);
    EXPECT_FALSE(parse_log_stamp("2024-05-01T10:00:00.1234567891Z"));
    EXPECT_FALSE(parse_log_stamp("hello"));
    EXPECT_FALSE(parse_log_stamp(""));
}

TEST(log_resume, strips_the_stamps_in_any_chunking) {
    for (std::size_t piece : {0, 1, 2, 7, 30}) {
        log_resume r;
        EXPECT_EQ(feed(r, log3, piece), "one\ntwo\nthree\n") << piece;
        EXPECT_EQ(r.since_time(), "2024-05-01T10:00:01Z");
    }
    log_resume fresh;
    EXPECT_EQ(fresh.since_time(), "");
}

// Every cut point of the stream (clean or in the middle of a stamp or a line), then a new
// stream from the second of the newest printed line: the output is the log, once.
TEST(log_resume, a_cut_anywhere_then_a_resumed_stream_prints_every_line_once) {
    for (std::size_t cut = 0; cut <= log3.size(); ++cut) {
        log_resume r;
        std::string out = feed(r, log3.substr(0, cut));
        const std::string since = r.since_time();
        // What a server sends from sinceTime (second precision): lines from that second on.
        std::string again = log3;
        if (since == "2024-05-01T10:00:01Z")
            again = log3.substr(log3.find("2024-05-01T10:00:01Z"));
        out += feed(r, again, 3);
        EXPECT_EQ(out, "one\ntwo\nthree\n") << "cut at " << cut;
    }
}

// A line the kubelet stored in two parts (over 16 KiB; shortened here): the first part stamped
// 10:00:00.9, the rest arriving at 10:00:01.1 and served unstamped. From sinceTime 10:00:01 the
// server begins with that rest. Cut anywhere, then resumed: the line is printed once.
TEST(log_resume, a_resumed_stream_that_begins_inside_a_line_does_not_repeat_it) {
    const std::string head = "2024-05-01T10:00:00.9Z " + std::string(40, 'x');
    const std::string rest = "tail\n2024-05-01T10:00:01.1Z after\n";
    const std::string whole = head + rest;
    const std::string expected = std::string(40, 'x') + "tail\nafter\n";
    for (std::size_t cut = 0; cut <= whole.size(); ++cut) {
        for (std::size_t piece : {0, 1, 3}) {
            log_resume r;
            std::string out = feed(r, whole.substr(0, cut), piece);
            const std::string again = r.since_time() == "2024-05-01T10:00:01Z" ? rest : whole;
            out += feed(r, again, piece);
            EXPECT_EQ(out, expected) << "cut at " << cut << ", pieces of " << piece;
        }
    }
    // Only a resumed stream drops it: a first stream prints unstamped text as it is.
    log_resume fresh;
    EXPECT_EQ(feed(fresh, rest), "tail\nafter\n");
}

// Lines with the very same stamp: the printed bytes of that stamp are skipped in order.
TEST(log_resume, equal_stamps_resume_by_bytes) {
    const std::string same =
        "2024-05-01T10:00:00Z a\n2024-05-01T10:00:00Z b\n2024-05-01T10:00:00Z c\n";
    for (std::size_t cut = 0; cut <= same.size(); ++cut) {
        log_resume r;
        std::string out = feed(r, same.substr(0, cut));
        out += feed(r, same);
        EXPECT_EQ(out, "a\nb\nc\n") << "cut at " << cut;
    }
}

// After a rotation the server has lost the older lines: the new ones are printed, not skipped
// by a byte count of the old file.
TEST(log_resume, a_rotated_log_loses_nothing_new) {
    log_resume r;
    std::string out = feed(r, log3);
    out += feed(r, "2024-05-01T10:00:02Z four\n2024-05-01T10:00:03Z five\n");
    EXPECT_EQ(out, "one\ntwo\nthree\nfour\nfive\n");
}

TEST(log_resume, unstamped_text_is_printed_as_it_is) {
    log_resume r;
    EXPECT_EQ(feed(r, "plain words here\n\nx\n"), "plain words here\n\nx\n");
    log_resume long_word;
    const std::string w(100, 'w');
    EXPECT_EQ(feed(long_word, w + " end\n", 9), w + " end\n");
}

// A stamp older than the newest printed one is new output once the resumed stream has moved
// past the catch-up (a wall clock stepped back), and a repeat before that.
TEST(log_resume, older_stamps_are_dropped_only_while_catching_up) {
    log_resume r;
    std::string out = feed(r, "2024-05-01T10:00:05Z a\n2024-05-01T10:00:01Z b\n");
    EXPECT_EQ(out, "a\nb\n");
    out = feed(r, "2024-05-01T10:00:05Z a\n2024-05-01T10:00:01Z b\n2024-05-01T10:00:06Z "
                  "c\n2024-05-01T10:00:02Z d\n");
    EXPECT_EQ(out, "c\nd\n");
}

// A stamp after 2262 (the end of system_clock's nanoseconds; log_resume_fuzz's find) is newer
// than every earlier line: clamped to that end, not wrapped into the past. sinceTime is the
// clamped second, and a server resuming from it repeats the line without it printing twice.
TEST(log_resume, a_stamp_after_2262_is_the_newest) {
    auto far = parse_log_stamp("6665-05-01T10:00:01Z");
    ASSERT_TRUE(far);
    EXPECT_EQ(far->seconds, 9223372036);
    log_resume r;
    EXPECT_EQ(feed(r, "2024-05-01T10:00:00Z one\n6665-05-01T10:00:01Z two\n"), "one\ntwo\n");
    EXPECT_EQ(r.since_time(), "2262-04-11T23:47:16Z");
    EXPECT_EQ(feed(r, "6665-05-01T10:00:01Z two\n2024-05-01T10:00:00Z one\n"), "");
}

// The loss seen once under load in volume_mode_test (container_step_log_survives_cut_streams_
// without_repeats, "uick-2"): a stream cut 70 bytes in, where a stamp one byte shorter than
// usual (trailing zeros of the fraction are not written) puts the cut one byte into the second
// line. log_resume printed that "q" and the rest "uick-2\n" from the next stream, as it must;
// but the follower wrote the "q" at once and the hook's "reconnecting" debug line after it, so
// the job log read "quick-1", "q::debug::...", "uick-2". whole_lines holds the "q" back: the
// hook's line goes between whole lines of the step, wherever the cut lands.
TEST(whole_lines, a_line_cut_between_streams_is_never_split_by_the_hooks_own_lines) {
    const std::string stream = "2024-05-01T10:00:00.1Z quick-1\n"
                               "2024-05-01T10:00:00.2Z quick-2\n"
                               "2024-05-01T10:00:00.3Z quick-3\n";
    const std::string debug = "::debug::the log stream ended while the step runs; reconnecting\n";
    for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
        log_resume r;
        whole_lines lines;
        std::string job_log;
        std::string out;
        r.begin_stream();
        r.feed(std::string_view(stream).substr(0, cut), out);
        job_log += lines.take(out);
        job_log += debug; // what follow_step_log says between the streams
        out.clear();
        r.begin_stream();
        r.feed(stream, out); // the server from sinceTime 10:00:00: everything again
        job_log += lines.take(out);
        job_log += lines.rest();
        std::string no_debug = job_log;
        no_debug.erase(no_debug.find(debug), debug.size());
        EXPECT_EQ(no_debug, "quick-1\nquick-2\nquick-3\n") << "cut at " << cut;
        const std::size_t at = job_log.find(debug);
        EXPECT_TRUE(at == 0 || job_log[at - 1] == '\n') << "cut at " << cut << ":\n" << job_log;
    }
}

TEST(whole_lines, holds_an_unfinished_line_until_its_end_or_the_cap) {
    whole_lines lines(8);
    EXPECT_EQ(lines.take("ab"), "");
    EXPECT_EQ(lines.take("c\nde"), "abc\n");
    EXPECT_EQ(lines.take("fgh"), "");
    EXPECT_EQ(lines.take("ijkl"), "defghijkl"); // over 8 bytes held: out in parts
    EXPECT_EQ(lines.take("m"), "");
    EXPECT_EQ(lines.rest(), "m");
    EXPECT_EQ(lines.rest(), "");
}

} // namespace
} // namespace podpipe::hook
