#include "tools/kubesim/cgroups.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>

namespace podpipe::kubesim {
namespace {

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

std::string read_all(const std::string& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

bool write_file(const std::string& file, const std::string& text, std::string* why) {
    std::ofstream out(file);
    out << text << std::flush;
    if (!out) {
        if (why)
            *why = "cannot write '" + text + "' to " + file + ": " + std::strerror(errno);
        return false;
    }
    return true;
}

bool make_dir(const std::string& dir, std::string* why) {
    if (::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST)
        return true;
    if (why)
        *why = "cannot create " + dir + ": " + std::strerror(errno);
    return false;
}

bool has_word(const std::string& text, std::string_view word) {
    std::istringstream in(text);
    std::string w;
    while (in >> w)
        if (w == word)
            return true;
    return false;
}

// "key N" lines (memory.events, memory.oom_control).
std::uint64_t counter(const std::string& text, std::string_view key) {
    std::istringstream in(text);
    std::string k;
    std::uint64_t v = 0;
    while (in >> k >> v)
        if (k == key)
            return v;
    return 0;
}

// The unified hierarchy when it offers both controllers kubesim needs.
std::optional<std::string> v2_root() {
    for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        const std::string controllers = read_all(std::string(dir) + "/cgroup.controllers");
        if (has_word(controllers, "cpu") && has_word(controllers, "memory"))
            return std::string(dir);
    }
    return std::nullopt;
}

std::optional<std::string> v1_dir(const char* file, std::initializer_list<const char*> dirs) {
    for (const char* d : dirs)
        if (exists(std::string(d) + "/" + file))
            return std::string(d);
    return std::nullopt;
}

// kubelet's MilliCPUToQuota: period 100 ms, quota = milli-CPUs × period / 1000, at least 1 ms.
constexpr long cpu_period_us = 100000;
long cpu_quota_us(double cpus) {
    const auto q = static_cast<long>(std::ceil(cpus * 1000.0) * cpu_period_us / 1000);
    return std::max(q, 1000L);
}

} // namespace

std::optional<container_cgroup> container_cgroup::create(const std::string& pod_uid,
                                                         const std::string& container,
                                                         const container_limits& limits,
                                                         std::string* why) {
    container_cgroup g;
    const std::string rel = "/kubesim/" + pod_uid + "/" + container;
    if (auto root = v2_root()) {
        // Controllers reach a child only through its parents' subtree_control.
        std::string path = *root;
        bool ok = true;
        for (const std::string& part : {std::string("kubesim"), pod_uid}) {
            ok = ok && write_file(path + "/cgroup.subtree_control", "+cpu +memory", why);
            path += "/" + part;
            ok = ok && make_dir(path, why);
        }
        ok = ok && write_file(path + "/cgroup.subtree_control", "+cpu +memory", why);
        path += "/" + container;
        ok = ok && make_dir(path, why);
        if (ok) {
            g.dirs_.push_back(path);
            if (limits.cpus)
                ok = write_file(path + "/cpu.max",
                                std::to_string(cpu_quota_us(*limits.cpus)) + " " +
                                    std::to_string(cpu_period_us),
                                why);
            if (ok && limits.memory_bytes)
                ok = write_file(path + "/memory.max", std::to_string(*limits.memory_bytes), why);
            if (ok) {
                g.procs_.push_back(path + "/cgroup.procs");
                g.memory_dir_ = path;
                g.memory_v2_ = true;
                return g;
            }
            g.remove();
            g = container_cgroup{};
        }
    }
    // cgroup v1: one hierarchy per controller.
    bool ok = true;
    if (limits.cpus) {
        auto cpu = v1_dir("cpu.cfs_quota_us", {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"});
        if (!cpu) {
            if (why && why->empty())
                *why = "no cgroup cpu controller (v2 or v1) is mounted";
            return std::nullopt;
        }
        const std::string path = *cpu + rel;
        ok = make_dir(*cpu + "/kubesim", why) && make_dir(*cpu + "/kubesim/" + pod_uid, why) &&
             make_dir(path, why) &&
             write_file(path + "/cpu.cfs_period_us", std::to_string(cpu_period_us), why) &&
             write_file(path + "/cpu.cfs_quota_us", std::to_string(cpu_quota_us(*limits.cpus)),
                        why);
        if (exists(path))
            g.dirs_.push_back(path);
        if (ok)
            g.procs_.push_back(path + "/cgroup.procs");
    }
    // The memory hierarchy also holds a container without limits: its processes are tracked
    // (kill_all) wherever they move.
    if (ok && (limits.memory_bytes || !limits.cpus)) {
        auto mem = v1_dir("memory.limit_in_bytes", {"/sys/fs/cgroup/memory"});
        if (!mem) {
            if (why)
                *why = "no cgroup memory controller (v2 or v1) is mounted";
            g.remove();
            return std::nullopt;
        }
        const std::string path = *mem + rel;
        ok = make_dir(*mem + "/kubesim", why) && make_dir(*mem + "/kubesim/" + pod_uid, why) &&
             make_dir(path, why) &&
             (!limits.memory_bytes ||
              write_file(path + "/memory.limit_in_bytes", std::to_string(*limits.memory_bytes),
                         why));
        if (exists(path))
            g.dirs_.push_back(path);
        if (ok) {
            g.procs_.push_back(path + "/cgroup.procs");
            g.memory_dir_ = path;
        }
    }
    if (!ok) {
        g.remove();
        return std::nullopt;
    }
    return g;
}

std::uint64_t container_cgroup::oom_kills() const {
    if (memory_dir_.empty())
        return 0;
    return counter(read_all(memory_dir_ + (memory_v2_ ? "/memory.events" : "/memory.oom_control")),
                   "oom_kill");
}

void container_cgroup::kill_all() const {
    for (const std::string& d : dirs_) {
        // cgroup v2 since Linux 5.14: one write kills every process, forks in flight included.
        if (exists(d + "/cgroup.kill") && write_file(d + "/cgroup.kill", "1", nullptr))
            continue;
        for (int round = 0; round < 50; ++round) {
            std::istringstream procs(read_all(d + "/cgroup.procs"));
            bool any = false;
            for (long pid; procs >> pid;) {
                any = true;
                if (pid > 1)
                    ::kill(static_cast<pid_t>(pid), SIGKILL);
            }
            if (!any)
                break;
            ::usleep(10'000);
        }
    }
}

bool container_cgroup::remove() {
    std::vector<std::string> left;
    for (const std::string& d : dirs_) {
        if (::rmdir(d.c_str()) != 0 && errno != ENOENT) {
            left.push_back(d);
            continue;
        }
        ::rmdir(d.substr(0, d.rfind('/')).c_str()); // the pod's, once its last container went
    }
    dirs_ = std::move(left);
    if (dirs_.empty())
        procs_.clear();
    return dirs_.empty();
}

} // namespace podpipe::kubesim
