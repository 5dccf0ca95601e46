// log_resume: prints a container's log exactly once across reconnected pods/log follow streams.
//
// A follow stream ends early when a proxy cuts an idle connection or the API server restarts
// (spec/kube-api.md §3.5); the caller reopens it. Counting bytes and skipping that many on the
// next stream would work only while the kubelet serves the log from its first byte: after a
// rotation (containerLogMaxSize, 10 MiB by default) it serves the current file only, and the
// skipped bytes would be new output. So every stream is requested with `timestamps=true` and
// `sinceTime` (the newest printed line's second: the API server passes sinceTime on with
// second precision), and this class strips the "RFC3339Nano " prefix the kubelet puts before
// each line and drops what was printed before:
//   - a line stamped before the newest printed stamp was printed (or rotated away: either way
//     it is not printed again);
//   - lines stamped exactly the newest printed stamp come back in the same order, so the first
//     `printed_at_newest` content bytes of them are skipped (this also resumes a line that was
//     cut in the middle);
//   - anything newer is printed.
// A line whose prefix is not a timestamp is printed as it is, except at the start of a resumed
// stream: the kubelet stores a line over 16 KiB in parts with a time each, stamps only the
// first and serves the parts from sinceTime on, so a resumed stream can begin with the
// unstamped rest of a line that started before sinceTime; that line was printed whole before
// the newest printed one, and the rest is dropped up to its newline.
//
// Pure: no I/O. Not thread-safe; one object per followed container.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podpipe::hook {

/// A log timestamp: seconds since the epoch (UTC) and nanoseconds within the second.
struct log_stamp {
    std::int64_t seconds = 0;
    std::uint32_t nanos = 0;
    friend bool operator==(const log_stamp&, const log_stamp&) = default;
    friend auto operator<=>(const log_stamp&, const log_stamp&) = default;
};

/// "2024-05-01T10:00:00.123456789Z" (fraction optional, up to 9 digits; numeric offsets
/// accepted) → stamp; nullopt for anything else.
std::optional<log_stamp> parse_log_stamp(std::string_view text);

class log_resume {
public:
    /// The sinceTime for the next stream ("2024-05-01T10:00:00Z"), empty before anything
    /// stamped was printed (then the stream starts at the log's beginning).
    std::string since_time() const;

    /// Call before feeding a new stream: a line cut in the middle of its prefix is forgotten.
    void begin_stream();

    /// Feeds the next bytes of a `timestamps=true` stream; appends what to print to `out`.
    void feed(std::string_view chunk, std::string& out);

    /// Content bytes printed so far (prefixes excluded).
    std::uint64_t printed_bytes() const { return printed_; }

private:
    bool start_line(std::string& out); ///< false: prefix_ was no stamp (printed as content)
    void content(std::string_view data, std::string& out);

    std::optional<log_stamp> newest_;     ///< stamp of the newest line printed
    std::uint64_t printed_at_newest_ = 0; ///< content bytes printed of lines stamped newest_
    std::uint64_t skip_ = 0;              ///< this stream: bytes stamped newest_ still to skip
    bool in_prefix_ = true;               ///< reading a line's "TIMESTAMP " prefix
    std::string prefix_;
    bool catching_up_ = false; ///< after a reconnect, until a line newer than newest_
    bool stream_start_ = true; ///< no line of this stream has started yet
    enum class line_kind { drop, at_newest, unstamped } kind_ = line_kind::unstamped;
    std::uint64_t printed_ = 0;
};

/// What a log follower writes to the job log: whole lines only. A stream can end in the middle
/// of a line (log_resume prints its rest from the next stream); what the hook says meanwhile on
/// the same output (a reconnect's debug line) must not land inside that line, as it once did
/// ("q::debug::... reconnecting" then "uick-2"). A line longer than `max_held` bytes goes out
/// in parts. Pure: no I/O.
class whole_lines {
public:
    explicit whole_lines(std::size_t max_held = std::size_t{64} * 1024) : max_held_(max_held) {}

    /// Adds `printed` and returns what may be written now: through the last newline (all of
    /// it once more than `max_held` bytes wait).
    std::string take(std::string_view printed);

    /// The unfinished line held back (at the end of the log: the step's last bytes).
    std::string rest();

private:
    std::size_t max_held_;
    std::string held_;
};

} // namespace podpipe::hook
