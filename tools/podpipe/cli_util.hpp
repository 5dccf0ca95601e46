// Small helpers shared by podpipe's subcommands: size parsing, exit codes, progress, stats.
#pragma once

#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/stats.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

namespace podpipe::cli {

/// `podpipe --version`, for people. What a pod's copy can do, `podpipe cp` asks with
/// `podpipe hello` (remote/protocol.hpp), not by reading this line.
inline constexpr const char* version_line =
    "podpipe 0.3.0 (recv --acks, send --acks, send --watch-stdin)";

/// Documented in `podpipe --help` and README.md (the values of pipeline::exit_status).
enum exit_code : int {
    exit_ok = pipeline::exit_ok,
    exit_failure = pipeline::exit_failure,
    exit_usage = pipeline::exit_usage,
    exit_unsafe = pipeline::exit_unsafe,
    exit_bad_input = pipeline::exit_bad_input,
    exit_interrupted = pipeline::exit_interrupted,
};

/// Maps an error to the exit code a script can branch on.
int exit_code_for(const std::error_code& ec);

/// "0".."12" → that level, "auto" → pipeline::auto_level; nullopt otherwise.
std::optional<int> parse_level(std::string_view text);

/// "1048576", "1M", "1MiB", "512k", "2G" → bytes; nullopt when malformed.
std::optional<std::uint64_t> parse_size(std::string_view text);

/// "60s", "1.5s", "500ms", "2m", "90" (seconds) → that duration, "0" → zero; nullopt when
/// malformed or negative.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);

/// The default of --stall-timeout: far longer than a live peer stays silent (a sender emits a
/// compressed chunk every few seconds even on slow disks and links), short enough that a
/// stopped one does not hold a job for long.
inline constexpr const char* default_stall_timeout = "60s";

/// Prints "files, bytes, MB/s" lines to stderr every half second while alive, if enabled.
class progress_printer {
public:
    progress_printer(const pipeline::live_progress& p, bool enabled, std::string_view verb);
    ~progress_printer();
    progress_printer(const progress_printer&) = delete;
    progress_printer& operator=(const progress_printer&) = delete;

private:
    std::jthread thread_;
};

/// Requests stop on `source` when SIGINT or SIGTERM arrives (for the life of the guard).
class signal_stop {
public:
    explicit signal_stop(std::stop_source& source);
    ~signal_stop();
    signal_stop(const signal_stop&) = delete;
    signal_stop& operator=(const signal_stop&) = delete;
    bool fired() const noexcept;

private:
    std::jthread thread_;
};

/// After a transfer that went through: if the sender reported entries it could not send as
/// they are on its disk, says so on stderr (with the sender's lines when `list`: a local
/// sender has printed them already as warnings) and returns exit_failure, or exit_ok when
/// `allow` (--allow-incomplete). exit_ok when there were none.
int problems_exit(std::string_view verb, const pipeline::transfer_stats& s, bool allow,
                  bool list);

/// The transfer as one JSON line (per-stage counters included), for --stats-json and recv's
/// --report: the protocol's report (remote/protocol.hpp) with this process's CPU time and RSS.
std::string stats_json(std::string_view direction, const pipeline::transfer_stats& s);

/// Writes text to a path ("-" = stderr). false on failure.
bool write_text_file(const std::string& path, const std::string& text);

/// One summary line: "1234 files, 250.1 MB (62.3 MB on the wire) in 1.23 s, 203.4 MB/s".
std::string summary_line(std::string_view verb, const pipeline::transfer_stats& s);

} // namespace podpipe::cli
