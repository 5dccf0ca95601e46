#include "engine/pipeline/errors.hpp"

#include "engine/common/error.hpp"
#include "engine/pipeline/failure_slot.hpp"
#include "engine/pipeline/recv.hpp"


#include <string>

namespace podpipe::pipeline {
namespace {

class category final : public std::error_category {
public:
    const char* name() const noexcept override { return "pipeline"; }

    std::string message(int c) const override {
        switch (static_cast<errc>(c)) {
        case errc::manifest_mismatch:
            return "verification failed: received tree differs from the sender's manifest";
        case errc::manifest_missing:
            return "verification failed: the stream carries no podpipe manifest";
        case errc::member_too_large:
            return "gzip member larger than the receiver accepts";
        case errc::truncated:
            return "stream ended before the end of the archive";
        case errc::bad_options:
            return "invalid options";
        case errc::stalled:
            return "the stream stalled: no data moved within the stall timeout";
        case errc::resume_mismatch:
            return "cannot resume: the source before the resume point differs from what the "
                   "receiver has";
        }
        return "unknown pipeline error";
    }

    std::error_condition default_error_condition(int c) const noexcept override {
        switch (static_cast<errc>(c)) {
        case errc::bad_options:
            return condition::fatal;
        case errc::stalled: // an I/O failure (exit 1): the bytes that came are not at fault
            return std::errc::timed_out;
        default:
            return condition::bad_input;
        }
    }
};

} // namespace

const std::error_category& pipeline_category() noexcept {
    static const category instance;
    return instance;
}

int exit_status_for(const std::error_code& ec) {
    if (ec == std::errc::operation_canceled)
        return exit_interrupted;
    if (ec == condition::unsafe_path)
        return exit_unsafe;
    if (ec == condition::bad_input)
        return exit_bad_input;
    return exit_failure;
}

} // namespace podpipe::pipeline
