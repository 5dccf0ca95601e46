// Acknowledgements: how far the receiving end has read the stream, reported back on a side
// channel (for `podpipe recv`, its stdout, beside the final report; for a remote
// `podpipe send --acks`, its stdin, written by the receiving `podpipe cp`). Buffers along the way
// (socket buffers, proxies) accept megabytes at once, so the sender's own writes say nothing
// about the link's rate until they are full; acknowledgements say it within the first few
// hundred kilobytes, which lets send_tree pick its compression level before it has sent much.
//
// Wire format: one line per report, "podpipe-ack <bytes read so far, decimal>\n". Any other
// line on the channel is passed through untouched.
#pragma once

#include "engine/pipeline/byte_stream.hpp"

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

namespace podpipe::pipeline {

inline constexpr std::string_view ack_prefix = "podpipe-ack ";

/// One acknowledgement line: the prefix, `bytes` in decimal, a newline.
std::string ack_line(std::uint64_t bytes);

/// The receiver's latest acknowledgement, shared between the thread reading the side channel
/// and the sender. Thread-safe.
class ack_counter {
public:
    /// Raises the count to `bytes` (acknowledgements never go back).
    void advance_to(std::uint64_t bytes);
    /// No more acknowledgements will come (the receiver ended or stopped reporting).
    void close();
    std::uint64_t value() const;
    bool closed() const;
    /// Waits until value() >= at_least, close(), a stop request or `timeout`; returns value().
    std::uint64_t wait_for(std::uint64_t at_least, std::chrono::nanoseconds timeout,
                           std::stop_token stop);

private:
    mutable std::mutex mutex_;
    std::condition_variable_any changed_;
    std::uint64_t value_ = 0;
    bool closed_ = false;
};

/// The receiver's end: reads through `inner` and writes an acknowledgement to `acks` each
/// time another `first_every` bytes have been read during the first `fine_until` bytes (where
/// the sender measures the rate), then each `every` bytes. A failed acknowledgement write
/// stops further ones and nothing else: they are advisory (a sender stops waiting for them
/// after a second).
class acking_source final : public byte_source {
public:
    acking_source(byte_source& inner, byte_sink& acks, std::uint64_t first_every = 32 << 10,
                  std::uint64_t fine_until = 1 << 20, std::uint64_t every = 256 << 10) noexcept
        : inner_(inner)
        , acks_(&acks)
        , acks_out_(acks)
        , first_every_(first_every)
        , fine_until_(fine_until)
        , every_(every)
        , next_(first_every) {}
    result<std::size_t> read(std::span<std::byte> into) override;
    /// Wakes a read waiting for the stream or for an acknowledgement's write.
    void interrupt() noexcept override {
        inner_.interrupt();
        acks_out_.interrupt();
    }

private:
    byte_source& inner_;
    byte_sink* acks_; ///< null once a write failed
    byte_sink& acks_out_;
    std::uint64_t first_every_;
    std::uint64_t fine_until_;
    std::uint64_t every_;
    std::uint64_t next_;
    std::uint64_t total_ = 0;
};

/// The sender's end of the side channel: takes the receiver's output, applies its
/// acknowledgement lines to `acks` and passes every other byte, in order, to `rest`. A line
/// that only starts like an acknowledgement (bad digits, too long) is passed through.
class ack_splitter final : public byte_sink {
public:
    ack_splitter(ack_counter& acks, byte_sink& rest) noexcept : acks_(acks), rest_(rest) {}
    result<void> write(std::span<const std::byte> bytes) override;
    /// Passes on a pending partial line, then finishes `rest`.
    result<void> finish() override;

private:
    result<void> flush_pending();
    ack_counter& acks_;
    byte_sink& rest_;
    std::string pending_;   ///< the current line while it may still be an acknowledgement
    bool passing_ = false;  ///< the current line is not one: bytes go straight to rest_
};

/// The sender's end when the acknowledgements arrive on a file descriptor of their own (the
/// remote end `podpipe send --acks` reads them from stdin): a thread reads `fd` through an
/// ack_splitter into `acks` (other bytes are dropped) and closes `acks` at end of file or on a
/// read error. The destructor stops the thread without waiting for `fd` (a receiver may keep
/// its end open after the stream is done). Does not own `fd`. `on_end`, when set, is called on
/// the thread at that end of file or read error (not when the destructor stops it): a sender
/// whose receiver holds `fd` open for the whole stream learns with it that the receiver is gone.
class ack_listener {
public:
    ack_listener(int fd, ack_counter& acks, std::function<void()> on_end = {});
    ~ack_listener();
    ack_listener(const ack_listener&) = delete;
    ack_listener& operator=(const ack_listener&) = delete;

private:
    void run(int fd);
    ack_counter& acks_;
    std::function<void()> on_end_;
    int wake_[2] = {-1, -1}; ///< a pipe: the destructor writes to end the thread's poll
    std::thread thread_;
};

} // namespace podpipe::pipeline
