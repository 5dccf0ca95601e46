// failure_slot: where a pipeline's threads put the first error. The first error wins, stops
// every stage (through the shared stop_source) and is what the caller sees.
#pragma once

#include "engine/pipeline/stats.hpp"

#include <chrono>
#include <cstdint>
#include <mutex>
#include <stop_token>
#include <string>
#include <system_error>

namespace podpipe::pipeline::detail {

class failure_slot {
public:
    explicit failure_slot(std::stop_source& halt) : halt_(halt) {}

    /// Records ec (and a detail line) if no error was recorded yet; stops the pipeline.
    void set(std::error_code ec, std::string detail = {}) {
        {
            std::lock_guard lock(mu_);
            if (!ec_) {
                ec_ = ec;
                detail_ = std::move(detail);
            }
        }
        halt_.request_stop();
    }

    std::error_code error() const {
        std::lock_guard lock(mu_);
        return ec_;
    }

    std::string detail() const {
        std::lock_guard lock(mu_);
        return detail_;
    }

private:
    std::stop_source& halt_;
    mutable std::mutex mu_;
    std::error_code ec_;
    std::string detail_;
};

/// Copies the entry counters that the reader's and the writer's stats have in common.
template <class Counts>
void copy_entry_counts(transfer_stats& s, const Counts& c) {
    s.entries = c.entries;
    s.files = c.files;
    s.directories = c.directories;
    s.symlinks = c.symlinks;
    s.hardlinks = c.hardlinks;
    s.skipped = c.skipped;
    s.content_bytes = c.content_bytes;
}

inline std::uint64_t ns_since(std::chrono::steady_clock::time_point t0) {
    return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                          std::chrono::steady_clock::now() - t0)
                                          .count());
}

} // namespace podpipe::pipeline::detail
