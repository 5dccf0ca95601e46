// A process-wide sink for warnings and progress lines. The engine reports what a user must
// know but that is not an error (a file vanished while being read, a fifo skipped) through
// warn(); the tool decides where it goes (stderr by default, `::warning::` in the hook).
#pragma once

#include <functional>
#include <string_view>

namespace podpipe::log {

using sink = std::function<void(std::string_view line)>;

/// Replaces the warning sink; an empty function restores the default (stderr). Thread-safe.
void set_warning_sink(sink s);

/// Reports a warning line (no trailing newline needed). Thread-safe.
void warn(std::string_view line);

} // namespace podpipe::log
