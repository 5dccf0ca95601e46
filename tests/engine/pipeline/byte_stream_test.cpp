// fd_source / fd_sink: a read or write waiting on a peer that went quiet ends on interrupt()
// from another thread and on the stall timeout; bytes still flow as before.
#include "engine/pipeline/byte_stream.hpp"

#include "engine/pipeline/errors.hpp"
#include "tests/support/child_process.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::pipeline {
namespace {

using namespace std::chrono_literals;

using testing::pipe_pair;

TEST(byte_stream, interrupt_wakes_a_read_on_a_silent_pipe) {
    pipe_pair p;
    fd_source source(p.read_end);
    std::array<std::byte, 16> buf{};
    std::jthread waker([&] {
        std::this_thread::sleep_for(50ms);
        source.interrupt();
    });
    auto r = source.read(buf);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), std::errc::operation_canceled);
    EXPECT_FALSE(source.stalled());
    // Interrupted for good: later reads fail too, even with bytes waiting.
    ASSERT_EQ(::write(p.write_end, "x", 1), 1);
    EXPECT_FALSE(source.read(buf));
}

TEST(byte_stream, interrupt_wakes_a_write_into_a_full_pipe) {
    pipe_pair p;
    fd_sink sink(p.write_end);
    const std::vector<std::byte> big(1 << 20); // far more than the pipe holds
    std::jthread waker([&] {
        std::this_thread::sleep_for(50ms);
        sink.interrupt();
    });
    auto w = sink.write(big);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), std::errc::operation_canceled);
}

TEST(byte_stream, stall_timeout_ends_a_read_and_a_write) {
    pipe_pair in;
    fd_source source(in.read_end, 100ms);
    std::array<std::byte, 16> buf{};
    const auto t0 = std::chrono::steady_clock::now();
    auto r = source.read(buf);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error(), errc::stalled);
    EXPECT_EQ(exit_status_for(r.error()), exit_failure);
    EXPECT_TRUE(source.stalled());
    EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);

    pipe_pair out;
    fd_sink sink(out.write_end, 100ms);
    const std::vector<std::byte> big(1 << 20);
    auto w = sink.write(big);
    ASSERT_FALSE(w);
    EXPECT_EQ(w.error(), errc::stalled);
    EXPECT_TRUE(sink.stalled());
}

// A slow but moving peer is not a stall: the clock restarts with every byte.
TEST(byte_stream, a_slow_reader_is_not_a_stall) {
    pipe_pair p;
    fd_sink sink(p.write_end, 300ms);
    const std::vector<std::byte> data(512 << 10, std::byte{7});
    std::size_t got = 0;
    std::jthread reader([&] {
        std::array<char, 64 << 10> buf{};
        for (;;) {
            std::this_thread::sleep_for(50ms); // 64 KiB per 50 ms: 400 ms for it all
            const ssize_t n = ::read(p.read_end, buf.data(), buf.size());
            if (n <= 0)
                return;
            got += static_cast<std::size_t>(n);
        }
    });
    ASSERT_TRUE(sink.write(data));
    ::close(p.write_end);
    p.write_end = -1;
    reader.join();
    EXPECT_EQ(got, data.size());
}

} // namespace
} // namespace podpipe::pipeline
