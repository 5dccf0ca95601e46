#include "engine/common/limits.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <sched.h>
#include <vector>

namespace podpipe {
namespace {

struct hierarchy {
    std::string mount_root;  ///< the cgroup path the mount shows at its mount point
    std::string mount_point; ///< where it is mounted (unescaped)
};

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> out;
    std::size_t start = 0;
    while (start <= s.size()) {
        const std::size_t end = std::min(s.find(sep, start), s.size());
        out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape(std::string_view s) {
    std::string out;
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() &&
            s.substr(i + 1, 3).find_first_not_of("01234567") == std::string_view::npos) {
            out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 +
                                     (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

bool has_word(std::string_view list, std::string_view word) {
    for (std::string_view w : split(list, ','))
        if (w == word)
            return true;
    return false;
}

struct mounts {
    std::optional<hierarchy> v2;
    std::optional<hierarchy> v1_cpu;
    std::optional<hierarchy> v1_memory;
};

mounts parse_mountinfo(std::string_view text) {
    mounts m;
    for (std::string_view line : split(text, '\n')) {
        const std::size_t dash = line.find(" - ");
        if (dash == std::string_view::npos)
            continue;
        const auto head = split(line.substr(0, dash), ' ');
        const auto tail = split(line.substr(dash + 3), ' ');
        if (head.size() < 5 || tail.size() < 3)
            continue;
        hierarchy h{unescape(head[3]), unescape(head[4])};
        if (tail[0] == "cgroup2") {
            if (!m.v2)
                m.v2 = std::move(h);
        } else if (tail[0] == "cgroup") {
            if (has_word(tail[2], "cpu") && !m.v1_cpu)
                m.v1_cpu = h;
            if (has_word(tail[2], "memory") && !m.v1_memory)
                m.v1_memory = h;
        }
    }
    return m;
}

struct memberships {
    std::optional<std::string> v2;
    std::optional<std::string> v1_cpu;
    std::optional<std::string> v1_memory;
};

memberships parse_proc_cgroup(std::string_view text) {
    memberships m;
    for (std::string_view line : split(text, '\n')) {
        const std::size_t a = line.find(':');
        const std::size_t b = a == std::string_view::npos ? a : line.find(':', a + 1);
        if (b == std::string_view::npos)
            continue;
        const std::string_view controllers = line.substr(a + 1, b - a - 1);
        const std::string path(line.substr(b + 1));
        if (line.substr(0, a) == "0" && controllers.empty())
            m.v2 = path;
        if (has_word(controllers, "cpu"))
            m.v1_cpu = path;
        if (has_word(controllers, "memory"))
            m.v1_memory = path;
    }
    return m;
}

// The directories from the process's cgroup up to the hierarchy's mount point, innermost
// first. A cgroup path outside the mount's root (another cgroup namespace's view) maps to the
// mount point alone.
std::vector<std::string> cgroup_dirs(const hierarchy& h, const std::string& path,
                                     const std::string& prefix) {
    std::string rel;
    if (path.find("/..") != std::string::npos) // outside this cgroup namespace's view
        rel = "/";
    else if (h.mount_root == "/")
        rel = path;
    else if (path == h.mount_root)
        rel = "/";
    else if (path.size() > h.mount_root.size() && path.starts_with(h.mount_root) &&
             path[h.mount_root.size()] == '/')
        rel = path.substr(h.mount_root.size());
    else
        rel = "/";
    std::vector<std::string> dirs;
    const std::string base = prefix + (h.mount_point == "/" ? std::string() : h.mount_point);
    while (true) {
        while (rel.size() > 1 && rel.back() == '/')
            rel.pop_back();
        dirs.push_back(rel == "/" || rel.empty() ? base : base + rel);
        if (rel == "/" || rel.empty())
            break;
        rel.erase(rel.rfind('/'));
        if (rel.empty())
            rel = "/";
    }
    return dirs;
}

std::optional<std::string> first_line(const std::string& file) {
    std::ifstream in(file);
    std::string line;
    if (!in || !std::getline(in, line))
        return std::nullopt;
    return line;
}

std::optional<std::uint64_t> to_u64(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size())
        return std::nullopt;
    return v;
}

std::optional<std::int64_t> to_i64(std::string_view s) {
    std::int64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || end != s.data() + s.size())
        return std::nullopt;
    return v;
}

// Above this a v1 memory limit means "none" (the kernel reports PAGE_COUNTER_MAX pages).
constexpr std::uint64_t v1_unlimited = std::uint64_t{1} << 62;

void take_cpus(cgroup_limits& out, double cpus, const std::string& file) {
    if (cpus > 0 && (!out.cpus || cpus < *out.cpus)) {
        out.cpus = cpus;
        out.cpu_source = file;
    }
}

void take_memory(cgroup_limits& out, std::uint64_t bytes, const std::string& file) {
    if (!out.memory_bytes || bytes < *out.memory_bytes) {
        out.memory_bytes = bytes;
        out.memory_source = file;
    }
}

void read_v2(cgroup_limits& out, const std::vector<std::string>& dirs) {
    for (const std::string& d : dirs) {
        // cpu.max: "$MAX $PERIOD", MAX being "max" when there is no quota.
        if (auto line = first_line(d + "/cpu.max")) {
            const auto words = split(*line, ' ');
            const auto quota = words.size() == 2 ? to_u64(words[0]) : std::nullopt;
            const auto period = words.size() == 2 ? to_u64(words[1]) : std::nullopt;
            if (quota && period && *period > 0)
                take_cpus(out, static_cast<double>(*quota) / static_cast<double>(*period),
                          d + "/cpu.max");
        }
        if (auto line = first_line(d + "/memory.max"))
            if (auto bytes = to_u64(*line))
                take_memory(out, *bytes, d + "/memory.max");
    }
}

void read_v1_cpu(cgroup_limits& out, const std::vector<std::string>& dirs) {
    for (const std::string& d : dirs) {
        const auto quota = first_line(d + "/cpu.cfs_quota_us");
        const auto period = first_line(d + "/cpu.cfs_period_us");
        if (!quota || !period)
            continue;
        const auto q = to_i64(*quota); // -1: no quota
        const auto p = to_u64(*period);
        if (q && *q > 0 && p && *p > 0)
            take_cpus(out, static_cast<double>(*q) / static_cast<double>(*p),
                      d + "/cpu.cfs_quota_us");
    }
}

void read_v1_memory(cgroup_limits& out, const std::vector<std::string>& dirs) {
    for (const std::string& d : dirs)
        if (auto line = first_line(d + "/memory.limit_in_bytes"))
            if (auto bytes = to_u64(*line); bytes && *bytes < v1_unlimited)
                take_memory(out, *bytes, d + "/memory.limit_in_bytes");
}

std::string slurp(const char* file) {
    std::ifstream in(file);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

unsigned affinity_cores() noexcept {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0)
            return static_cast<unsigned>(n);
    }
    return 1;
}

} // namespace

cgroup_limits read_cgroup_limits(std::string_view mountinfo, std::string_view proc_cgroup,
                                 const std::string& fs_prefix) {
    const mounts m = parse_mountinfo(mountinfo);
    const memberships in = parse_proc_cgroup(proc_cgroup);
    cgroup_limits out;
    if (m.v2 && in.v2)
        read_v2(out, cgroup_dirs(*m.v2, *in.v2, fs_prefix));
    if (m.v1_cpu && in.v1_cpu)
        read_v1_cpu(out, cgroup_dirs(*m.v1_cpu, *in.v1_cpu, fs_prefix));
    if (m.v1_memory && in.v1_memory)
        read_v1_memory(out, cgroup_dirs(*m.v1_memory, *in.v1_memory, fs_prefix));
    return out;
}

const cgroup_limits& process_cgroup_limits() {
    static const cgroup_limits limits =
        read_cgroup_limits(slurp("/proc/self/mountinfo"), slurp("/proc/self/cgroup"));
    return limits;
}

unsigned usable_cores() noexcept {
    static const unsigned cores = [] {
        unsigned n = affinity_cores();
        try {
            if (const auto& q = process_cgroup_limits().cpus)
                n = std::min(n, static_cast<unsigned>(std::max(1.0, std::ceil(*q))));
        } catch (...) { // reading the limits allocates; without them the affinity decides
        }
        return n;
    }();
    return cores;
}

std::size_t memory_budget_for(std::size_t wanted, std::size_t floor,
                              std::optional<std::uint64_t> limit) {
    if (!limit)
        return wanted;
    const std::uint64_t quarter = *limit / 4;
    return static_cast<std::size_t>(
        std::max<std::uint64_t>(floor, std::min<std::uint64_t>(wanted, quarter)));
}

std::size_t default_memory_budget() {
    return memory_budget_for(std::size_t{256} << 20, std::size_t{32} << 20,
                             process_cgroup_limits().memory_bytes);
}

} // namespace podpipe
