#include "tools/podpipe/cli_util.hpp"

#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/send.hpp"
#include "remote/protocol.hpp"

#include "engine/common/error.hpp"

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <condition_variable>
#include <fstream>
#include <mutex>

namespace podpipe::cli {

std::optional<int> parse_level(std::string_view text) {
    if (text == "auto")
        return pipeline::auto_level;
    if (text.empty() || text.size() > 2)
        return std::nullopt;
    int v = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (v > 12)
        return std::nullopt;
    return v;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
    if (text.empty())
        return std::nullopt;
    std::uint64_t value = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        if (value > (UINT64_MAX - 9) / 10)
            return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
    }
    if (i == 0)
        return std::nullopt;
    std::string_view unit = text.substr(i);
    std::uint64_t mult = 1;
    if (unit.empty() || unit == "B" || unit == "b") {
        mult = 1;
    } else {
        const char u = unit[0];
        const std::string_view rest = unit.substr(1);
        if (!(rest.empty() || rest == "i" || rest == "iB" || rest == "B"))
            return std::nullopt;
        switch (u) {
        case 'k':
        case 'K':
            mult = 1ULL << 10;
            break;
        case 'm':
        case 'M':
            mult = 1ULL << 20;
            break;
        case 'g':
        case 'G':
            mult = 1ULL << 30;
            break;
        default:
            return std::nullopt;
        }
    }
    if (value > UINT64_MAX / mult)
        return std::nullopt;
    return value * mult;
}

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
    const std::string s(text);
    char* end = nullptr;
    const double v = std::strtod(s.c_str(), &end);
    if (s.empty() || end == s.c_str() || !(v >= 0) || v > 1e9)
        return std::nullopt;
    const std::string_view unit(end);
    double ms = 0;
    if (unit.empty() || unit == "s")
        ms = v * 1000;
    else if (unit == "ms")
        ms = v;
    else if (unit == "m")
        ms = v * 60'000;
    else
        return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

int exit_code_for(const std::error_code& ec) { return pipeline::exit_status_for(ec); }

namespace {

double mb(std::uint64_t bytes) { return static_cast<double>(bytes) / 1e6; }

} // namespace

progress_printer::progress_printer(const pipeline::live_progress& p, bool enabled,
                                   std::string_view verb) {
    if (!enabled)
        return;
    thread_ = std::jthread([&p, verb = std::string(verb)](std::stop_token stop) {
        const auto t0 = std::chrono::steady_clock::now();
        std::mutex mu;
        std::condition_variable_any cv;
        std::unique_lock lock(mu);
        for (;;) {
            // Returns early only when stop is requested (the predicate never holds).
            cv.wait_for(lock, stop, std::chrono::milliseconds(500), [] { return false; });
            if (stop.stop_requested())
                break;
            const double secs =
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const auto bytes = p.content_bytes.load(std::memory_order_relaxed);
            std::fprintf(stderr,
                         "\rpodpipe: %s %" PRIu64 " entries, %.1f MB (%.1f MB wire), %.1f MB/s   ",
                         verb.c_str(), p.entries.load(std::memory_order_relaxed), mb(bytes),
                         mb(p.wire_bytes.load(std::memory_order_relaxed)),
                         secs > 0 ? mb(bytes) / secs : 0.0);
        }
        std::fputc('\n', stderr);
    });
}

progress_printer::~progress_printer() = default;

namespace {

std::atomic<int> signal_seen{0};

extern "C" void on_signal(int sig) { signal_seen.store(sig); }

} // namespace

signal_stop::signal_stop(std::stop_source& source) {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    // Polls the flag the handler sets (a handler cannot wake a waiter safely), but ends as soon
    // as the destructor asks: a plain sleep here held every exit back by up to 50 ms.
    thread_ = std::jthread([&source](std::stop_token stop) {
        std::mutex mutex;
        std::condition_variable_any never_notified;
        std::unique_lock lock(mutex);
        while (!stop.stop_requested()) {
            if (signal_seen.load() != 0) {
                source.request_stop();
                return;
            }
            never_notified.wait_for(lock, stop, std::chrono::milliseconds(50),
                                    [] { return false; });
        }
    });
}

signal_stop::~signal_stop() {
    thread_.request_stop();
    if (thread_.joinable())
        thread_.join();
    std::signal(SIGINT, SIG_DFL);
    std::signal(SIGTERM, SIG_DFL);
}

bool signal_stop::fired() const noexcept { return signal_seen.load() != 0; }

std::string stats_json(std::string_view direction, const pipeline::transfer_stats& s) {
    namespace protocol = remote::protocol;
    return protocol::report_line({std::string(direction), s, protocol::usage_now()});
}

int problems_exit(std::string_view verb, const pipeline::transfer_stats& s, bool allow,
                  bool list) {
    const tar::sender_problems& p = s.problems;
    if (p.count == 0)
        return exit_ok;
    std::fprintf(stderr, "podpipe: %.*s: %" PRIu64 " %s not sent as on the sender's disk%s\n",
                 static_cast<int>(verb.size()), verb.data(), p.count,
                 p.count == 1 ? "entry was" : "entries were", list ? ":" : " (see above)");
    if (const std::string lines = tar::problem_list(p); list && !lines.empty())
        std::fprintf(stderr, "%s\n", lines.c_str());
    if (allow) {
        std::fprintf(stderr, "podpipe: accepted (--allow-incomplete)\n");
        return exit_ok;
    }
    std::fprintf(stderr, "podpipe: the copy is not the sender's tree; --allow-incomplete "
                         "accepts it with these warnings\n");
    return exit_failure;
}

bool write_text_file(const std::string& path, const std::string& text) {
    if (path == "-") {
        return std::fwrite(text.data(), 1, text.size(), stderr) == text.size();
    }
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << text;
    return static_cast<bool>(f);
}

namespace {
// ", N stored: did not compress" when the sender stored chunks (gzip::member_compressor).
std::string stored_note(const pipeline::transfer_stats& s) {
    if (s.chunks_stored == 0)
        return {};
    return ", " + std::to_string(s.chunks_stored) + " stored: did not compress";
}
} // namespace

std::string summary_line(std::string_view verb, const pipeline::transfer_stats& s) {
    char buf[400];
    const double rate = s.seconds > 0 ? mb(s.content_bytes) / s.seconds : 0;
    std::snprintf(buf, sizeof buf,
                  "%.*s %" PRIu64 " files, %" PRIu64 " dirs, %" PRIu64 " links: %.1f MB "
                  "(%.1f MB on the wire, %" PRIu64 " chunks%s) in %.2f s, %.1f MB/s%s",
                  static_cast<int>(verb.size()), verb.data(), s.files, s.directories,
                  s.symlinks + s.hardlinks, mb(s.content_bytes), mb(s.wire_bytes), s.chunks,
                  stored_note(s).c_str(), s.seconds, rate,
                  s.problems.count > 0  ? ""
                  : s.manifest_checked ? ", manifest verified"
                                       : "");
    std::string line = buf;
    if (s.resumed_at > 0) {
        std::snprintf(buf, sizeof buf, " (resumed at stream byte %" PRIu64 ": %.1f MB were "
                      "already there)", s.resumed_at, mb(s.resumed_at));
        line += buf;
    }
    if (s.problems.count > 0)
        line += ", NOT verified: " + std::to_string(s.problems.count) +
                (s.problems.count == 1 ? " entry was" : " entries were") +
                " not copied as they are on the sender's disk";
    return line;
}

} // namespace podpipe::cli
