// Helpers for engine/io tests: a temp directory per test, file creation, a recording consumer
// and a warning capture.
#pragma once

#include "engine/common/log.hpp"
#include "engine/io/tree_reader.hpp"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::io::test {

class temp_dir {
public:
    /// A fresh directory under `base` (a tmpfs such as /dev/shm for tests that need one).
    explicit temp_dir(const std::string& base = "/tmp") {
        std::string tmpl = base + "/podpipe_io_test.XXXXXX";
        const char* p = ::mkdtemp(tmpl.data());
        if (p == nullptr)
            std::abort();
        path_ = p;
    }
    ~temp_dir() {
        ::nftw(path_.c_str(), &remove_one, 64, FTW_DEPTH | FTW_PHYS);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const std::string& path() const { return path_; }
    std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

private:
    static int remove_one(const char* p, const struct stat* st, int, struct FTW*) {
        if (S_ISDIR(st->st_mode))
            ::chmod(p, 0700);
        ::remove(p);
        return 0;
    }
    std::string path_;
};

inline void write_file(const std::string& path, const std::string& content, mode_t mode = 0644) {
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    ASSERT_GE(fd, 0) << path << ": " << std::strerror(errno);
    std::size_t off = 0;
    while (off < content.size()) {
        ssize_t n = ::write(fd, content.data() + off, content.size() - off);
        ASSERT_GT(n, 0);
        off += static_cast<std::size_t>(n);
    }
    ::fchmod(fd, mode);
    ::close(fd);
}

inline std::string read_file(const std::string& path) {
    std::string out;
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return "<missing>";
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return out;
}

inline void make_dir(const std::string& path, mode_t mode = 0755) {
    ASSERT_EQ(::mkdir(path.c_str(), mode), 0) << path << ": " << std::strerror(errno);
    ::chmod(path.c_str(), mode);
}

inline std::string pattern(std::size_t n, unsigned seed) {
    std::string s(n, '\0');
    std::uint32_t x = seed * 2654435761u + 1;
    for (std::size_t i = 0; i < n; ++i) {
        x = x * 1103515245u + 12345u;
        s[i] = static_cast<char>(x >> 24);
    }
    return s;
}

struct recorded {
    file_entry e;
    std::string data;
};

/// Records every entry and its content; optional hook runs after each on_entry.
class recording_consumer : public tree_consumer {
public:
    std::vector<recorded> items;
    std::function<result<void>(const file_entry&)> after_entry;

    result<void> on_entry(const file_entry& e) override {
        items.push_back({e, {}});
        if (after_entry)
            return after_entry(e);
        return {};
    }
    result<void> on_data(std::span<const std::byte> bytes) override {
        EXPECT_FALSE(items.empty());
        items.back().data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return {};
    }
    std::vector<std::string> paths() const {
        std::vector<std::string> p;
        for (const auto& i : items)
            p.push_back(i.e.path);
        return p;
    }
    const recorded* find(const std::string& path) const {
        for (const auto& i : items)
            if (i.e.path == path)
                return &i;
        return nullptr;
    }
};

/// Captures podpipe::log::warn lines for its lifetime.
class warning_capture {
public:
    warning_capture() {
        log::set_warning_sink([this](std::string_view line) {
            std::lock_guard lock(mu_);
            lines_.emplace_back(line);
        });
    }
    ~warning_capture() { log::set_warning_sink({}); }
    std::vector<std::string> lines() const {
        std::lock_guard lock(mu_);
        return lines_;
    }
    bool contains(const std::string& needle) const {
        std::lock_guard lock(mu_);
        for (const auto& l : lines_)
            if (l.find(needle) != std::string::npos)
                return true;
        return false;
    }

private:
    mutable std::mutex mu_;
    std::vector<std::string> lines_;
};

/// Test parameter: true = io_uring, false = plain-syscall fallback.
inline bool skip_without_ring(bool want_ring) { return want_ring && !io_uring_available(); }

#define PODPIPE_SKIP_WITHOUT_RING(want)                                                            \
    do {                                                                                           \
        if (::podpipe::io::test::skip_without_ring(want))                                          \
            GTEST_SKIP() << "io_uring unavailable (setup failed or opcode missing from probe)";   \
    } while (0)

inline std::string mode_name(const ::testing::TestParamInfo<bool>& info) {
    return info.param ? "io_uring" : "fallback";
}

} // namespace podpipe::io::test
