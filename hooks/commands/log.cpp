#include "hooks/commands/log.hpp"

#include <mutex>

namespace podpipe::hook {
namespace {
std::mutex& output_mutex() {
    static std::mutex m;
    return m;
}
} // namespace

std::string escape_command_message(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        if (c == '%')
            out += "%25";
        else if (c == '\r')
            out += "%0D";
        else if (c == '\n')
            out += "%0A";
        else
            out += c;
    }
    return out;
}

void hook_log::command(std::string_view name, std::string_view text) {
    line("::" + std::string(name) + "::" + escape_command_message(text));
}

void hook_log::line(std::string_view text) {
    std::lock_guard lock(output_mutex());
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fputc('\n', out_);
    std::fflush(out_);
}

} // namespace podpipe::hook
