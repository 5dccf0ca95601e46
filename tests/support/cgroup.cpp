#include "tests/support/cgroup.hpp"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace fs = std::filesystem;

namespace podpipe::testing {

std::optional<cpu_quota_cgroup> cpu_quota_cgroup::create(double cpus, std::string* why_not) {
    static std::atomic<int> serial{0};
    const std::string name =
        "podpipe-test-" + std::to_string(::getpid()) + "-" + std::to_string(serial++);
    const auto quota = static_cast<long>(cpus * 100000);
    std::error_code ec;
    if (fs::exists("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")) {
        const std::string dir = "/sys/fs/cgroup/cpu/" + name;
        if (!fs::create_directory(dir, ec)) {
            *why_not = "cannot create a v1 cpu cgroup: " + ec.message();
            return std::nullopt;
        }
        cpu_quota_cgroup g(dir);
        std::ofstream(dir + "/cpu.cfs_period_us") << "100000\n";
        std::ofstream quota_file(dir + "/cpu.cfs_quota_us");
        if (!(quota_file << quota << "\n" << std::flush)) {
            *why_not = "cannot set cpu.cfs_quota_us";
            return std::nullopt;
        }
        return g;
    }
    if (fs::exists("/sys/fs/cgroup/cgroup.controllers")) {
        const std::string dir = "/sys/fs/cgroup/" + name;
        if (!fs::create_directory(dir, ec)) {
            *why_not = "cannot create a v2 cgroup: " + ec.message();
            return std::nullopt;
        }
        cpu_quota_cgroup g(dir);
        if (!fs::exists(dir + "/cpu.max")) {
            *why_not = "the v2 cpu controller is not enabled for this cgroup";
            return std::nullopt;
        }
        std::ofstream max_file(dir + "/cpu.max");
        if (!(max_file << quota << " 100000\n" << std::flush)) {
            *why_not = "the v2 cpu controller is not enabled for this cgroup";
            return std::nullopt;
        }
        return g;
    }
    *why_not = "no cgroup cpu controller is mounted at /sys/fs/cgroup";
    return std::nullopt;
}

cpu_quota_cgroup::~cpu_quota_cgroup() {
    if (dir_.empty())
        return;
    // A cgroup can be removed once its processes are gone; tests wait for theirs.
    std::error_code ec;
    fs::remove(dir_, ec);
}

} // namespace podpipe::testing
