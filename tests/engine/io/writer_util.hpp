// Helpers for tests of io::tree_writer: entries as the tar layer hands them over, content
// written in pieces (so a file crosses the writer's buffers), and a directory listing.
#pragma once

#include "engine/io/tree_writer.hpp"
#include "tests/engine/io/test_util.hpp"

#include <dirent.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::io::test {

inline file_entry dir_entry(std::string p, std::uint32_t mode = 0755, std::int64_t mtime = 1000000,
                            std::uint32_t nsec = 0) {
    file_entry e;
    e.path = std::move(p);
    e.kind = file_kind::directory;
    e.mode = mode;
    e.mtime_sec = mtime;
    e.mtime_nsec = nsec;
    return e;
}

inline file_entry file_entry_of(std::string p, std::uint64_t size, std::uint32_t mode = 0644,
                                std::int64_t mtime = 1500000000, std::uint32_t nsec = 123456789) {
    file_entry e;
    e.path = std::move(p);
    e.kind = file_kind::regular;
    e.mode = mode;
    e.size = size;
    e.mtime_sec = mtime;
    e.mtime_nsec = nsec;
    return e;
}

/// Writes `content` to the open entry in `piece`-byte calls.
inline result<void> put(tree_writer& w, std::string_view content, std::size_t piece = 7) {
    for (std::size_t off = 0; off < content.size(); off += piece) {
        const std::size_t n = std::min(piece, content.size() - off);
        PODPIPE_TRY(w.write(std::as_bytes(std::span(content.data() + off, n))));
    }
    return {};
}

/// One whole entry: begin, content in `piece`-byte calls, end.
inline result<void> put_file(tree_writer& w, const file_entry& e, std::string_view content,
                             std::size_t piece = 7) {
    PODPIPE_TRY(w.begin_entry(e));
    PODPIPE_TRY(put(w, content, piece));
    return w.end_entry();
}

/// The names in `dir` (with "." and ".."), sorted; empty when it cannot be opened.
inline std::vector<std::string> listing(const std::string& dir) {
    std::vector<std::string> names;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (auto* e = ::readdir(d))
            names.emplace_back(e->d_name);
        ::closedir(d);
    }
    std::sort(names.begin(), names.end());
    return names;
}

/// A writer's target `dir/target` beside `dir/outside/passwd`, which nothing may touch; the
/// parameter is io_uring (true) or plain syscalls.
class writer_fixture : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        PODPIPE_SKIP_WITHOUT_RING(GetParam());
        target = dir / "target";
        outside = dir / "outside";
        make_dir(outside);
        write_file(outside + "/passwd", "original");
    }
    write_options opts() const {
        write_options o;
        o.use_io_uring = GetParam();
        o.io_uring_on_tmpfs = true; // the parameter decides, whatever filesystem /tmp is
        return o;
    }
    std::unique_ptr<tree_writer> open_writer(write_options o) {
        auto w = tree_writer::open(target, o);
        EXPECT_TRUE(w);
        return w ? std::move(*w) : nullptr;
    }
    std::unique_ptr<tree_writer> open_writer() { return open_writer(opts()); }
    void expect_outside_untouched() {
        EXPECT_EQ(read_file(outside + "/passwd"), "original");
        EXPECT_EQ(listing(outside), (std::vector<std::string>{".", "..", "passwd"}));
    }
    temp_dir dir;
    std::string target, outside;
};

} // namespace podpipe::io::test
