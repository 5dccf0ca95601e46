// The in-pod side of a step that outlives its exec session (`podpipe run`, issue 21): the step
// runs detached from the session under a small supervisor, its stdout and stderr go to files in
// a spool directory and its end to a status file there, and any number of followers print the
// spool from given byte offsets. A session that drops loses nothing: the next follower starts
// where the caller's count of printed bytes ends, and the step's own exit code is in the spool.
//
// Spool directory (created by start(), 0700; it must not exist):
//   stdout, stderr  the step's output, appended as it writes
//   pgid            the step's process group (written before it runs)
//   status          "exit N\n" or "signal S\n", written atomically (rename) once it ended
//
// Linux only; async-signal-safe between fork and exec. Thread-compatible.
#pragma once

#include "engine/common/result.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::remote::step {

/// How start()'s error (and so `podpipe run`'s line, after "podpipe run: ") begins when the
/// spool could not be made (a read-only /tmp, no space) or no process forked: nothing of the
/// step ran and no spool holds it, so a caller may run it another way. Not for a spool that
/// exists already (a step may run there).
inline constexpr std::string_view not_started = "the step did not start: ";

/// Exit code of `podpipe run` for its own failures (no such spool, output closed, bad offsets),
/// as env(1) and docker use 125: the caller tells them from a step's 125 by the
/// "podpipe run: " prefix on stderr.
inline constexpr int exit_run_failed = 125;

/// How a step ended, as its status file says.
struct step_status {
    bool signalled = false;
    int value = 0; ///< exit code, or the signal number

    /// As a shell reports it: the exit code, or 128 + the signal.
    int exit_code() const { return signalled ? 128 + value : value; }
};

/// Starts `argv` (argv[0] searched in PATH) in `cwd` ("" = ours) detached from this process and
/// its session, stdin from /dev/null, output into a new spool at `dir` (missing parents are
/// made, 0700).
/// Returns once the step runs, or with the reason it could not be started; a program that
/// cannot be executed still leaves a spool whose status is "exit 127", as a shell would.
result<void, std::string> start(const std::string& dir, const std::vector<std::string>& argv,
                                const std::string& cwd = "");

struct follow_options {
    std::uint64_t stdout_from = 0; ///< bytes of stdout the caller has printed already
    std::uint64_t stderr_from = 0;
    std::chrono::milliseconds max_idle_poll{100}; ///< upper bound between looks at the spool
};

/// Writes the spool's stdout to fd 1 and stderr to fd 2 from the offsets on, until the step has
/// ended and everything is written; returns its status. Fails when the spool does not exist, an
/// offset is past what the step wrote, or fd 1/2 cannot be written (the caller is gone: the step
/// goes on).
result<step_status, std::string> follow(const std::string& dir, const follow_options& opts);

/// The status when the step has ended, nullopt while it runs.
result<std::optional<step_status>, std::string> status(const std::string& dir);

/// The spool's status file as start()'s supervisor writes it ("exit N\n", "signal S\n", N and
/// S 0..255); an error naming `path` for anything else (the spool is in a pod anyone there can
/// write to). Exposed for tests and fuzz/remote/spool_fuzz.
result<step_status, std::string> parse_status(std::string_view text, const std::string& path);
/// The pid (or process group) a spool file holds: "N\n" (or "N") as start() writes it, N > 1;
/// nullopt for anything else.
std::optional<long> parse_pid(std::string_view text);

/// Sends `sig` to the step's process group (a step that has ended is left alone).
result<void, std::string> signal(const std::string& dir, int sig);

/// Removes the spool of a step that has ended (its files and the directory; not its parents).
/// A spool that does not exist is success, so a caller cut off mid-way may simply ask again.
/// Refuses while the step runs (no status yet, its supervisor alive): a follower may need it.
/// Its caller asks only once it holds the step's status and printed all its output.
result<void, std::string> remove(const std::string& dir);

/// Removes the spools beside `dir` (the other directories of its parent) whose steps have
/// ended, as remove() does; running ones and anything that is not a spool stay. Returns how
/// many went. start() of the next step calls it (podpipe run): a job's steps run one after
/// another, so when step N+1 starts, the hook that ran step N has returned: with step N's exit
/// code, or without it for good. Its spool serves no one any more, and removing it here costs
/// no exec of its own (one per step on a real cluster is 0.1-0.3 s); the last step's spool
/// goes with the pod.
std::size_t remove_ended_siblings(const std::string& dir);

} // namespace podpipe::remote::step
