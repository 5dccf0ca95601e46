// dir_walker (internal to engine/io): the listing half of read_tree. Worker threads run
// getdents64 loops (there is no io_uring opcode for it) and statx the names through their own
// io::ring with many requests in flight (AT_SYMLINK_NOFOLLOW), then publish a sorted listing.
//
// Memory stays bounded regardless of tree size: directories are listed in archive (DFS)
// priority order, and once the listings not yet taken by the consumer hold `ahead_entries`
// entries, workers list nothing but the directory the consumer is asking for (take()). That
// directory is always listable, so the consumer can never deadlock against the budget.
//
// Thread safety: take() is called by one consumer thread; the walker's own threads are internal.
#pragma once

#include "engine/io/file_entry.hpp"
#include "engine/io/paths.hpp"

#include <condition_variable>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace podpipe::io {
class ring;
}

namespace podpipe::io::detail {

struct child {
    std::string name;
    file_kind kind = file_kind::other; ///< regular, directory, symlink or other
    std::uint32_t type_bits = 0;       ///< st_mode & S_IFMT (names the type of an `other`)
    std::uint32_t mode = 0;
    std::uint64_t size = 0;
    std::int64_t mtime_sec = 0;
    std::uint32_t mtime_nsec = 0;
    std::uint32_t uid = 0, gid = 0;
    std::uint32_t nlink = 0;
    std::uint64_t dev = 0, ino = 0;
    std::string link_target;
};

/// One directory's contents, sorted by name bytes; excluded names are already removed.
struct listing {
    std::vector<child> children;
    /// Problems met while listing, reported by the consumer in archive order.
    std::vector<std::string> warnings;
    std::uint64_t skipped = 0;
};

struct walker_options {
    unsigned threads = 2;
    unsigned queue_depth = 64;
    std::size_t ahead_entries = 1 << 15;
    bool use_io_uring = true;
    std::vector<std::string> excludes;
    /// Only these paths (and what leads to them) are listed; null: everything.
    std::shared_ptr<const path_selection> selection;
};

class dir_walker {
public:
    /// Starts the worker threads and queues the root ("") for listing. `root_fd` must stay
    /// open for the walker's lifetime.
    dir_walker(int root_fd, walker_options opt);
    ~dir_walker(); ///< stops and joins the workers
    dir_walker(const dir_walker&) = delete;
    dir_walker& operator=(const dir_walker&) = delete;

    /// The listing of directory `rel` ("" = root; must be the root or a directory child of a
    /// listing already taken, in archive order). With wait=false returns nullptr when not
    /// listed yet; with wait=true blocks until listed, or returns nullptr on stop.
    std::unique_ptr<listing> take(const std::string& rel, bool wait, std::stop_token stop);

    std::uint64_t walk_ns() const noexcept { return walk_ns_.load(); }

    /// Whether the directory `rel` will be listed (take() may ask for it).
    bool lists(const std::string& rel) const {
        return !opt_.selection || opt_.selection->lists(rel);
    }

private:
    void run();
    std::unique_ptr<listing> list(const std::string& rel, io::ring& r);

    const int root_fd_;
    const walker_options opt_;
    std::mutex mu_;
    std::condition_variable_any work_cv_;  // workers: a job may be takeable
    std::condition_variable_any ready_cv_; // consumer: a listing was published
    std::map<std::string, std::string> pending_; // dfs_key -> rel path, not yet listed
    std::unordered_map<std::string, std::unique_ptr<listing>> ready_;
    std::size_t ready_entries_ = 0;
    std::string wanted_key_;
    bool have_wanted_ = false;
    bool shutdown_ = false;
    std::atomic<std::uint64_t> walk_ns_{0};
    std::vector<std::jthread> threads_;
};

} // namespace podpipe::io::detail
