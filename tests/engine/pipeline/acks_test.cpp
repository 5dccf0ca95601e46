#include "engine/pipeline/acks.hpp"
#include "tests/support/eventually.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <unistd.h>

namespace podpipe::pipeline {
namespace {

class text_sink final : public byte_sink {
public:
    result<void> write(std::span<const std::byte> bytes) override {
        text.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return {};
    }
    result<void> finish() override {
        finished = true;
        return {};
    }
    std::string text;
    bool finished = false;
};

std::span<const std::byte> bytes_of(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

TEST(ack_splitter, takes_ack_lines_and_passes_everything_else_in_order) {
    ack_counter acks;
    text_sink rest;
    ack_splitter split(acks, rest);
    const std::string in = "podpipe-ack 65536\nhello\npodpipe-ack 131072\n{\"direction\":\"recv\"}";
    ASSERT_TRUE(split.write(bytes_of(in)));
    EXPECT_EQ(acks.value(), 131072u);
    // A line passes as soon as it cannot be an acknowledgement, without waiting for its end.
    EXPECT_EQ(rest.text, "hello\n{\"direction\":\"recv\"}");
    ASSERT_TRUE(split.finish());
    EXPECT_EQ(rest.text, "hello\n{\"direction\":\"recv\"}");
    EXPECT_TRUE(rest.finished);
}

TEST(ack_splitter, same_result_whatever_the_write_boundaries) {
    const std::string in = "pod\npodpipe-ack 100\npodpipe-ack 7x\npodpipe-ack \npodpipe-ack 250\n"
                           "podpipe-acks 1\nxpodpipe-ack 9\n\npodpipe-ack 99999999999999999999999\n"
                           "podpipe-ack 300\ntail";
    const std::string expect_rest = "pod\npodpipe-ack 7x\npodpipe-ack \npodpipe-acks 1\nxpodpipe-ack 9\n\n"
                                    "podpipe-ack 99999999999999999999999\ntail";
    for (std::size_t cut1 = 0; cut1 <= in.size(); ++cut1) {
        for (std::size_t cut2 = cut1; cut2 <= in.size(); cut2 += 7) {
            ack_counter acks;
            text_sink rest;
            ack_splitter split(acks, rest);
            ASSERT_TRUE(split.write(bytes_of(std::string_view(in).substr(0, cut1))));
            ASSERT_TRUE(split.write(bytes_of(std::string_view(in).substr(cut1, cut2 - cut1))));
            ASSERT_TRUE(split.write(bytes_of(std::string_view(in).substr(cut2))));
            ASSERT_TRUE(split.finish());
            EXPECT_EQ(rest.text, expect_rest) << "cuts " << cut1 << ", " << cut2;
            EXPECT_EQ(acks.value(), 300u) << "cuts " << cut1 << ", " << cut2;
        }
    }
}

TEST(ack_counter, never_goes_back_and_wakes_waiters) {
    ack_counter acks;
    acks.advance_to(10);
    acks.advance_to(5);
    EXPECT_EQ(acks.value(), 10u);
    std::jthread later([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        acks.advance_to(100);
    });
    EXPECT_EQ(acks.wait_for(50, std::chrono::seconds(10), {}), 100u);
    // A timeout returns what is there; close() releases a waiter at once.
    EXPECT_EQ(acks.wait_for(1000, std::chrono::milliseconds(1), {}), 100u);
    std::jthread closer([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        acks.close();
    });
    const auto t0 = std::chrono::steady_clock::now();
    EXPECT_EQ(acks.wait_for(1000, std::chrono::seconds(30), {}), 100u);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(20));
    EXPECT_TRUE(acks.closed());
}

class chunk_source final : public byte_source {
public:
    explicit chunk_source(std::size_t total) : left_(total) {}
    result<std::size_t> read(std::span<std::byte> into) override {
        const std::size_t n = std::min({into.size(), left_, std::size_t{10000}});
        left_ -= n;
        return n;
    }

private:
    std::size_t left_;
};

// Reads `src` to its end; the bytes read (0 and a failed test on a read error).
std::size_t read_to_end(byte_source& src) {
    std::array<std::byte, 65536> buf;
    std::size_t total = 0;
    for (;;) {
        auto n = src.read(buf);
        EXPECT_TRUE(n);
        if (!n || *n == 0)
            return total;
        total += *n;
    }
}

TEST(acking_source, acknowledges_finely_at_first_then_coarsely) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    chunk_source inner(600000);
    fd_sink ack_out(fds[1]);
    acking_source src(inner, ack_out, 30000, 100000, 200000);
    const std::size_t total = read_to_end(src);
    ::close(fds[1]);
    EXPECT_EQ(total, 600000u);
    std::string out(4096, '\0');
    const ssize_t got = ::read(fds[0], out.data(), out.size());
    ::close(fds[0]);
    ASSERT_GT(got, 0);
    out.resize(static_cast<std::size_t>(got));
    // Reads of 10000: acks at 30000, 60000, 90000, 120000 (fine until 100000), then every 200000.
    EXPECT_EQ(out, "podpipe-ack 30000\npodpipe-ack 60000\npodpipe-ack 90000\npodpipe-ack 120000\n"
                   "podpipe-ack 320000\npodpipe-ack 520000\n");
}

TEST(acking_source, a_broken_ack_channel_does_not_stop_the_stream) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ::close(fds[0]); // nobody reads the acknowledgements: writes fail with EPIPE
    ::signal(SIGPIPE, SIG_IGN);
    chunk_source inner(200000);
    fd_sink ack_out(fds[1]);
    acking_source src(inner, ack_out, 10000);
    const std::size_t total = read_to_end(src);
    ::close(fds[1]);
    EXPECT_EQ(total, 200000u);
}

TEST(ack_listener, applies_acknowledgements_from_a_pipe_and_closes_at_its_end) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ack_counter acks;
    {
        ack_listener listener(fds[0], acks);
        const std::string first = "podpipe-ack 4096\nnot an ack\npodpipe-ack 81";
        ASSERT_EQ(::write(fds[1], first.data(), first.size()), static_cast<ssize_t>(first.size()));
        EXPECT_EQ(acks.wait_for(4096, std::chrono::seconds(10), {}), 4096u);
        const std::string rest = "92\n"; // the line was cut between two writes
        ASSERT_EQ(::write(fds[1], rest.data(), rest.size()), static_cast<ssize_t>(rest.size()));
        EXPECT_EQ(acks.wait_for(8192, std::chrono::seconds(10), {}), 8192u);
        EXPECT_FALSE(acks.closed());
        ::close(fds[1]);
        podpipe::testing::eventually([&] { return acks.closed(); }, std::chrono::seconds(10),
                                     std::chrono::milliseconds(10));
        EXPECT_TRUE(acks.closed()); // end of file: no more will come
    }
    ::close(fds[0]);
}

TEST(ack_listener, stops_while_the_writer_keeps_its_end_open) {
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    ack_counter acks;
    {
        ack_listener listener(fds[0], acks);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } // nothing was written and fds[1] is still open: the destructor must not wait for it
    EXPECT_TRUE(acks.closed());
    EXPECT_EQ(acks.value(), 0u);
    ::close(fds[0]);
    ::close(fds[1]);
}

} // namespace
} // namespace podpipe::pipeline
