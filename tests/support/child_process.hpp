// A child process the test drives by signals: started with posix_spawn (no shell between the
// test and it, so a signal reaches the program itself), stdin/stdout chosen by the test,
// stdout (unless redirected) and stderr captured to a file. Test-only code.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace podpipe::testing {

class child_process {
public:
    /// Starts argv[0] (a path) with `argv`. `stdin_fd` / `stdout_fd` (-1: /dev/null for
    /// stdin, the capture file for stdout) are dup'ed into the child; `env` entries
    /// ("NAME=VALUE") are added to the test's environment.
    child_process(const std::vector<std::string>& argv, const std::filesystem::path& capture,
                  int stdin_fd = -1, int stdout_fd = -1, const std::vector<std::string>& env = {});
    /// Kills (SIGKILL) and reaps a child still running.
    ~child_process();
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;

    pid_t pid() const noexcept { return pid_; }
    bool started() const noexcept { return pid_ > 0; }
    /// Polls until the child has a handler for `sig` (SigCgt in /proc/PID/status), so a signal
    /// sent after this is handled, not the default action. false at the deadline or exit.
    bool wait_handles(int sig, std::chrono::milliseconds deadline) const;
    /// Polls for the exit until `deadline`: the exit code (128 + N when killed by signal N), or
    /// nullopt when still running.
    std::optional<int> wait_exit(std::chrono::milliseconds deadline);
    /// What the child wrote to the capture file so far.
    std::string output() const;

private:
    pid_t pid_ = -1;
    std::optional<int> code_;
    std::filesystem::path capture_;
};

/// A pipe the test holds both ends of (close-on-exec; a child gets an end by dup): an end left
/// open and unused is a peer that stalls.
struct pipe_pair {
    pipe_pair();
    ~pipe_pair();
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    int read_end = -1;
    int write_end = -1;
};

/// The command line of `pid`, arguments joined by spaces ("" once it is gone).
std::string process_cmdline(pid_t pid);

/// The pids of processes whose command line (arguments joined by spaces) contains `needle`,
/// or whose working directory's path does. Processes that end while /proc is read are skipped.
std::vector<pid_t> processes_mentioning(const std::string& needle);

/// Polls until no process mentions `needle` (see processes_mentioning) or the deadline passes;
/// returns the command lines of those left.
std::vector<std::string> wait_no_process_mentioning(const std::string& needle,
                                                    std::chrono::milliseconds deadline);

} // namespace podpipe::testing
