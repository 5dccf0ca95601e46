#include "engine/common/log.hpp"

#include <cstdio>
#include <mutex>
#include <string>

namespace podpipe::log {
namespace {

std::mutex& mu() {
    static std::mutex m;
    return m;
}

sink& current() {
    static sink s;
    return s;
}

} // namespace

void set_warning_sink(sink s) {
    std::lock_guard lock(mu());
    current() = std::move(s);
}

void warn(std::string_view line) {
    std::lock_guard lock(mu());
    if (current()) {
        current()(line);
        return;
    }
    std::string out = "podpipe: warning: ";
    out.append(line);
    out.push_back('\n');
    std::fwrite(out.data(), 1, out.size(), stderr);
}

} // namespace podpipe::log
