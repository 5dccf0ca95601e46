// Reading the pod-side protocol's messages (protocol.hpp) on the local side, strictly: one JSON
// object on one line (a trailing newline allowed), of the expected kind, of this major version,
// with every required field present and of its type. Anything else is an error naming what was
// wrong. Fields a newer minor version adds are ignored. simdjson stays in protocol_parse.cpp; the
// in-pod binary does not link this (Debian has no static simdjson).
#pragma once

#include "engine/common/result.hpp"
#include "remote/protocol.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <variant>

namespace podpipe::remote::protocol {

/// Why a message was refused, e.g. "podpipe report: manifest.digest: expected 16 hex digits".
struct protocol_error {
    std::string message;
    const std::string& what() const { return message; }
};

/// A message longer than this is refused unread (a report with 100 problem lines of 512 bytes
/// and a few dozen stages is under 64 KiB).
inline constexpr std::size_t max_message_bytes = 1u << 20;

result<hello, protocol_error> parse_hello(std::string_view text);
/// A report's problem lines are cleaned for a terminal (tar::clean_problems).
result<report, protocol_error> parse_report(std::string_view text);
result<failure_report, protocol_error> parse_failure(std::string_view text);
result<resume, protocol_error> parse_resume(std::string_view text);

/// The last line of `recv --report`: a report when it went through, a failure when it did not.
using final_message = std::variant<report, failure_report>;
result<final_message, protocol_error> parse_final(std::string_view text);

} // namespace podpipe::remote::protocol
