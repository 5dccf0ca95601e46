// The pod-side protocol: what the local side of a copy and the in-pod `podpipe` say to each
// other, as typed, versioned messages. Both ends use this header: the in-pod binary writes them
// (it links no Kubernetes client and no JSON parser), the local side reads them with
// protocol_parse.hpp. remote/README.md, "The pod-side protocol", has the messages and the rules.
//
// Every message is one JSON object on one line (json_writer never writes a raw newline) that
// carries "message" (its kind), "protocol" (the major version) and "protocol_minor". A reader
// refuses another major version; a higher minor version only adds fields, which a reader
// ignores.
#pragma once

#include "engine/common/json_writer.hpp"
#include "engine/pipeline/stats.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podpipe::remote::protocol {

/// Messages change meaning only with a new major version; a minor one adds fields or capability
/// names a reader may ignore.
inline constexpr int version_major = 1;
/// 1: the step-run capability; 2: recv-resume, send-resume and the `resume` message
inline constexpr int version_minor = 2;

/// The "podpipe-ack BYTES" lines of `recv --acks` / `send --acks`. They are engine framing
/// (engine/pipeline/acks.hpp writes and reads them, interleaved with the stream); the protocol
/// only names the capability and the version of that line format, in `hello`.
inline constexpr int acks_version = 1;

/// Capability names as `hello` lists them (unknown names are ignored by a reader).
namespace capability {
inline constexpr std::string_view recv_acks = "recv-acks";       ///< recv --acks
inline constexpr std::string_view send_acks = "send-acks";       ///< send --acks
/// send --watch-stdin (stdin's end stops the send); send and recv take --stall-timeout
inline constexpr std::string_view send_watch_stdin = "send-watch-stdin";
/// recv --report ends with a `failure` line when the receive fails
inline constexpr std::string_view recv_failure_report = "recv-failure-report";
/// `podpipe run`: a step detached from its exec session, followed from byte offsets
/// (remote/step_spool.hpp)
inline constexpr std::string_view step_run = "step-run";
/// `recv --resumable ID [--resume]`: a receive that a later one continues from its ledger
/// (engine/pipeline/ledger.hpp); with --resume its first stdout line is a `resume` message
inline constexpr std::string_view recv_resume = "recv-resume";
/// `send --resume-from OFFER`: a send that starts at a receiver's resume point
inline constexpr std::string_view send_resume = "send-resume";
} // namespace capability

struct capabilities {
    bool recv_acks = false;
    bool send_acks = false;
    bool send_watch_stdin = false;
    bool recv_failure_report = false;
    bool step_run = false;
    bool recv_resume = false;
    bool send_resume = false;

    bool operator==(const capabilities&) const = default;
};

/// `podpipe hello`: what an in-pod podpipe says about itself (the local side's probe).
struct hello {
    int protocol_major = version_major;
    int protocol_minor = version_minor;
    std::string podpipe_version; ///< "0.3.0"
    capabilities caps;
    int acks_version = 0;        ///< 0: no acknowledgement lines
    std::string level1_codec;    ///< what compresses gzip level 1: "ISA-L igzip", "libdeflate"

    bool operator==(const hello&) const = default;
};

/// What this build of podpipe says (every capability it has), `level1_codec` as measured.
hello this_hello(std::string level1_codec);

/// CPU time of all threads and the peak resident set of the process.
struct process_usage {
    double cpu_user_s = 0;
    double cpu_sys_s = 0;
    std::int64_t max_rss_kib = 0;

    bool operator==(const process_usage&) const = default;
};

/// The calling process's usage so far (getrusage).
process_usage usage_now();

/// The final report of a transfer: recv's `--report` line (what the local side counts and
/// checks), and `--stats-json` of pack, unpack and cp (the local one, a pod's inside as
/// "remote").
struct report {
    std::string direction;        ///< "recv", "packed", "unpacked", "cp"
    pipeline::transfer_stats stats;
    process_usage usage;
};

/// A failed receive, as `recv --report` ends it: the exit code and the message it printed.
struct failure_report {
    int exit_code = 1;
    std::string message;

    bool operator==(const failure_report&) const = default;
};

/// `recv --resumable ID --resume`, first line on stdout: where the sender starts (offset 0:
/// from the beginning, `why_not` says why a resume was not possible).
struct resume {
    std::uint64_t offset = 0;
    tar::manifest before; ///< the receiver's manifest of the stream before offset
    std::string why_not;

    bool operator==(const resume&) const = default;
};

/// The message as one line, newline-terminated.
std::string hello_line(const hello& h);
std::string report_line(const report& r);
std::string failure_line(const failure_report& f);
std::string resume_line(const resume& r);

/// `send --resume-from` takes the offer as one word: "OFFSET:ENTRIES:BYTES:DIGEST" (decimal,
/// the digest 16 lowercase hex digits).
std::string resume_word(const resume& r);
/// nullopt unless `word` is exactly what resume_word() writes (and offset > 0).
std::optional<resume> parse_resume_word(std::string_view word);

/// The report as one object written into `w` (cp nests the pod's report in its own).
/// `remote`: a report nested inside this one, or null.
void write_report(json_writer& w, const report& r, const report* remote = nullptr);

} // namespace podpipe::remote::protocol
