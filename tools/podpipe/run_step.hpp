// `podpipe run`: the in-pod supervisor of a step that outlives its exec session
// (remote/step_spool.hpp). Start a step and follow it, follow it again from byte offsets after a
// dropped session, ask how it ended, or signal it.
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace podpipe::cli {

struct run_flags {
    std::string spool;                ///< the step's spool directory
    bool attach = false;              ///< follow a running (or ended) step; start nothing
    std::string stdout_from = "0";    ///< bytes of stdout the caller printed already
    std::string stderr_from = "0";
    std::string signal;               ///< TERM, KILL, INT, HUP or a number: signal the step
    bool status = false;              ///< print "running" or the status line
    bool remove = false;              ///< remove the spool of a step that has ended
    std::string cwd;                  ///< working directory of the step
    std::vector<std::string> command; ///< after `--`
};

/// Adds the `run` subcommand to `app`, filling `flags`.
CLI::App* add_run_command(CLI::App& app, run_flags& flags);

/// Runs it; returns the step's exit code, or remote::step::exit_run_failed (125) with a
/// "podpipe run: " line on stderr for its own failures, or exit_usage (2).
int run_step(const run_flags& flags);

} // namespace podpipe::cli
