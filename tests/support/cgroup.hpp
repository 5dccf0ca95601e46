// A throwaway cgroup with a CPU quota, for tests that prove podpipe sizes itself by the quota
// (engine/common/limits.hpp). Needs root and a cpu controller this process may write: the
// cgroup v1 cpu hierarchy, or cgroup v2 with the cpu controller. create() says why not
// otherwise (the test skips with that reason).
#pragma once

#include <optional>
#include <string>

namespace podpipe::testing {

class cpu_quota_cgroup {
public:
    /// A cgroup allowed `cpus` CPUs (quota = cpus × 100 ms per 100 ms period).
    static std::optional<cpu_quota_cgroup> create(double cpus, std::string* why_not);
    cpu_quota_cgroup(cpu_quota_cgroup&& o) noexcept : dir_(std::move(o.dir_)) { o.dir_.clear(); }
    cpu_quota_cgroup& operator=(cpu_quota_cgroup&&) = delete;
    ~cpu_quota_cgroup();

    /// Write a pid here to move that process in: `echo $$ > procs_file()` in a shell.
    std::string procs_file() const { return dir_ + "/cgroup.procs"; }

private:
    explicit cpu_quota_cgroup(std::string dir) : dir_(std::move(dir)) {}
    std::string dir_;
};

} // namespace podpipe::testing
