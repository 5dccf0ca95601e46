// byte_sink / byte_source: where a pipeline's compressed stream goes to and comes from. The
// pipelines call them from one thread at a time; an implementation need not be thread-safe.
// fd_sink / fd_source wrap a file descriptor (file, pipe, socket); later transports (the exec
// WebSocket's stdin/stdout channels) implement the same two interfaces.
#pragma once

#include "engine/common/result.hpp"

#include <cstddef>
#include <span>

namespace podpipe::pipeline {

class byte_sink {
public:
    virtual ~byte_sink() = default;
    /// Writes all of `bytes` (blocking: a slow sink is the pipeline's backpressure).
    virtual result<void> write(std::span<const std::byte> bytes) = 0;
    /// No more bytes follow (flush, half-close).
    virtual result<void> finish() { return {}; }
};

class byte_source {
public:
    virtual ~byte_source() = default;
    /// Reads up to into.size() bytes; 0 means end of stream.
    virtual result<std::size_t> read(std::span<std::byte> into) = 0;
};

/// Writes to a file descriptor it does not own; retries EINTR and short writes.
class fd_sink final : public byte_sink {
public:
    explicit fd_sink(int fd) noexcept : fd_(fd) {}
    result<void> write(std::span<const std::byte> bytes) override;

private:
    int fd_;
};

/// Reads from a file descriptor it does not own; retries EINTR.
class fd_source final : public byte_source {
public:
    explicit fd_source(int fd) noexcept : fd_(fd) {}
    result<std::size_t> read(std::span<std::byte> into) override;

private:
    int fd_;
};

} // namespace podpipe::pipeline
