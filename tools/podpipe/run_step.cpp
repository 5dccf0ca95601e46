#include "tools/podpipe/run_step.hpp"

#include "remote/step_spool.hpp"
#include "tools/podpipe/cli_util.hpp"

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <optional>

namespace podpipe::cli {
namespace {

std::optional<int> parse_signal(const std::string& s) {
    static const std::pair<const char*, int> names[] = {
        {"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT}, {"HUP", SIGHUP}};
    for (const auto& [name, sig] : names)
        if (s == name || s == std::string("SIG") + name)
            return sig;
    auto n = parse_size(s);
    if (n && *n >= 1 && *n <= 64)
        return static_cast<int>(*n);
    return std::nullopt;
}

/// A byte count: decimal digits only (no size suffixes: an offset is exact).
std::optional<std::uint64_t> parse_offset(const std::string& s) {
    if (s.empty() || s.size() > 18)
        return std::nullopt;
    std::uint64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return v;
}

int failed(const std::string& why) {
    std::fprintf(stderr, "podpipe run: %s\n", why.c_str());
    return remote::step::exit_run_failed;
}

} // namespace

CLI::App* add_run_command(CLI::App& app, run_flags& f) {
    auto* run = app.add_subcommand(
        "run", "In-pod: run a step detached from this exec session, its output spooled in "
               "--spool DIR, and print the spool until the step ends (its exit code is ours). "
               "A dropped session loses nothing: --attach prints the rest from byte offsets");
    run->add_option("--spool", f.spool, "The step's spool directory (new, unless --attach, "
                                        "--status or --signal)")
        ->required();
    run->add_flag("--attach", f.attach, "Follow the step of --spool instead of starting one");
    run->add_option("--stdout-from", f.stdout_from,
                    "With --attach: bytes of the step's stdout already printed (default 0)");
    run->add_option("--stderr-from", f.stderr_from,
                    "With --attach: bytes of the step's stderr already printed (default 0)");
    run->add_option("--signal", f.signal,
                    "Send TERM, KILL, INT, HUP (or a number) to the step's process group");
    run->add_flag("--status", f.status,
                  "Print `running`, or how the step ended (`exit N`, `signal S`)");
    run->add_flag("--remove", f.remove,
                  "Remove the spool of a step that has ended (none: success; refused while "
                  "the step runs). Starting a step removes the ended spools beside its own");
    run->add_option("--cwd", f.cwd, "Working directory of the step");
    run->add_option("COMMAND", f.command, "The step's command and arguments, after --");
    run->footer("Exit codes: the step's own (128+N when killed by signal N); 125 with a "
                "`podpipe run:` line on stderr when podpipe itself failed (no such spool, "
                "output closed); 2 bad command line.");
    return run;
}

int run_step(const run_flags& f) {
    const int modes = (f.attach ? 1 : 0) + (f.status ? 1 : 0) + (f.signal.empty() ? 0 : 1) +
                      (f.remove ? 1 : 0);
    if (modes > 1) {
        std::fprintf(stderr, "podpipe run: --attach, --status, --signal and --remove exclude "
                             "each other\n");
        return exit_usage;
    }
    if ((modes == 1) != f.command.empty()) {
        std::fprintf(stderr, "podpipe run: %s\n",
                     modes == 1 ? "no command with --attach, --status, --signal or --remove"
                                : "nothing to run: give the step's command after --");
        return exit_usage;
    }
    if (f.remove) {
        auto r = remote::step::remove(f.spool);
        return r ? exit_ok : failed(r.error());
    }
    if (!f.signal.empty()) {
        const auto sig = parse_signal(f.signal);
        if (!sig) {
            std::fprintf(stderr, "podpipe run: --signal takes TERM, KILL, INT, HUP or 1..64\n");
            return exit_usage;
        }
        auto r = remote::step::signal(f.spool, *sig);
        return r ? exit_ok : failed(r.error());
    }
    if (f.status) {
        auto st = remote::step::status(f.spool);
        if (!st)
            return failed(st.error());
        if (!*st)
            std::printf("running\n");
        else if ((*st)->signalled)
            std::printf("signal %d\n", (*st)->value);
        else
            std::printf("exit %d\n", (*st)->value);
        return std::fflush(stdout) == 0 ? exit_ok : failed("writing the status");
    }
    remote::step::follow_options o;
    const auto out = parse_offset(f.stdout_from), err = parse_offset(f.stderr_from);
    if (!out || !err) {
        std::fprintf(stderr, "podpipe run: --stdout-from and --stderr-from take byte counts\n");
        return exit_usage;
    }
    o.stdout_from = *out;
    o.stderr_from = *err;
    if (!f.attach) {
        if (auto started = remote::step::start(f.spool, f.command, f.cwd); !started)
            return failed(started.error());
        remote::step::remove_ended_siblings(f.spool); // earlier steps' (see step_spool.hpp)
    }
    // A caller that goes away must not kill us mid-write: EPIPE ends the follow instead.
    std::signal(SIGPIPE, SIG_IGN);
    auto st = remote::step::follow(f.spool, o);
    if (!st)
        return failed(st.error());
    return st->exit_code();
}

} // namespace podpipe::cli
