// Decoding of a watch response body (spec/kube-api.md §3.6): newline-delimited JSON events
// whose chunk boundaries fall anywhere. The decoder buffers at most one partial line
// (bounded by max_line_bytes) and parses each complete line once into a watch_event.
// Not thread-safe: one decoder per watch stream.
#pragma once

#include "engine/common/result.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"
#include "kube/json.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace podpipe::kube {

class watch_decoder {
public:
    /// Receives each event; an error stops decoding and is returned from feed()/finish().
    using event_sink = std::function<result<void, api_error>(watch_event&&)>;

    explicit watch_decoder(std::size_t max_line_bytes = max_body_bytes)
        : max_line_(max_line_bytes) {}

    /// Consumes `chunk`, delivering every event completed by it. Blank lines are skipped.
    /// Errors: bad_response for an unparsable line or one longer than max_line_bytes.
    result<void, api_error> feed(std::string_view chunk, const event_sink& sink);

    /// End of the body: a final event without a trailing newline is delivered; a partial
    /// line that does not parse is an error (the stream was cut).
    result<void, api_error> finish(const event_sink& sink);

    /// Bytes buffered for an incomplete line.
    std::size_t buffered() const { return partial_.size(); }

private:
    result<void, api_error> deliver(std::string_view line, const event_sink& sink);

    std::size_t max_line_;
    std::string partial_;
};

} // namespace podpipe::kube
