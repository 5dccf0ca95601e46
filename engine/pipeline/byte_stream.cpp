#include "engine/pipeline/byte_stream.hpp"

#include "engine/common/error.hpp"

#include <cerrno>
#include <unistd.h>

namespace podpipe::pipeline {

result<void> fd_sink::write(std::span<const std::byte> bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd_, bytes.data(), bytes.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return fail(last_errno());
        }
        bytes = bytes.subspan(static_cast<std::size_t>(n));
    }
    return {};
}

result<std::size_t> fd_source::read(std::span<std::byte> into) {
    for (;;) {
        const ssize_t n = ::read(fd_, into.data(), into.size());
        if (n >= 0)
            return static_cast<std::size_t>(n);
        if (errno != EINTR)
            return fail(last_errno());
    }
}

} // namespace podpipe::pipeline
