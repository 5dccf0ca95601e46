// The hook's own output in the runner's workflow-command form (spec/hook-behavior.md §2.5):
// `::debug::`, `::warning::`, `::error::`, `::group::`/`::endgroup::`, one line each, on
// stdout, with the message escaped (% → %25, CR → %0D, LF → %0A) so that a multi-line text stays
// one command. Unescaped plain lines go out as they are. Thread-safe (one mutex per process),
// so transfer progress from a worker thread never splits a line of the main thread.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace podpipe::hook {

/// `text` with %, CR and LF escaped for a workflow command's message.
std::string escape_command_message(std::string_view text);

class hook_log {
public:
    explicit hook_log(std::FILE* out = stdout) : out_(out) {}

    void debug(std::string_view text) { command("debug", text); }
    void warning(std::string_view text) { command("warning", text); }
    void error(std::string_view text) { command("error", text); }
    void group(std::string_view title) { command("group", title); }
    void end_group() { line("::endgroup::"); }
    /// A plain line (no escaping: it may contain workflow commands on purpose).
    void info(std::string_view text) { line(text); }

    std::FILE* stream() const { return out_; }

private:
    void command(std::string_view name, std::string_view text);
    void line(std::string_view text);

    std::FILE* out_;
};

} // namespace podpipe::hook
