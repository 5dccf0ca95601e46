// What this process may use of the machine: cores (CPU affinity and the cgroup CPU quota) and
// memory (the cgroup memory limit). A container limited to 1 CPU on a 64-core host must run
// as a 1-CPU program (64 threads sharing one CPU's quota get throttled in turn and are slower
// than one), and a transfer's buffers must fit in the container's memory limit.
//
// Both cgroup versions are read: v2 (`cpu.max`, `memory.max`) and v1 (`cpu.cfs_quota_us` /
// `cpu.cfs_period_us`, `memory.limit_in_bytes`). A limit set on an ancestor of the process's
// cgroup also applies, so the tightest one from the process's cgroup up to the hierarchy's
// mount is taken. Missing or unreadable files mean "no limit" (never an error).
// Thread-safe; the process-wide answers are computed once.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podpipe {

struct cgroup_limits {
    /// CPU quota in CPUs (quota / period, fractional), when one is set.
    std::optional<double> cpus;
    std::optional<std::uint64_t> memory_bytes;
    std::string cpu_source;    ///< the file the quota came from, for -v and tests
    std::string memory_source; ///< the file the memory limit came from
};

/// Reads the limits from the texts of /proc/self/mountinfo and /proc/self/cgroup, with the
/// cgroup files under `fs_prefix` + the mount point (fs_prefix is "" for the real system; a
/// test points it at a directory that mimics /sys/fs/cgroup).
cgroup_limits read_cgroup_limits(std::string_view mountinfo, std::string_view proc_cgroup,
                                 const std::string& fs_prefix = {});

/// This process's limits (read once).
const cgroup_limits& process_cgroup_limits();

/// Cores this process may run on: the CPUs of its affinity mask, capped by the cgroup CPU
/// quota rounded up (a quota of 1.5 CPUs → 2). At least 1. Computed once.
unsigned usable_cores() noexcept;

/// The default memory budget for a transfer's buffers, for every caller (the CLI's --memory,
/// the hook's PODPIPE_MEMORY_BUDGET): 256 MiB, or a quarter of the cgroup memory limit when
/// that is smaller (the rest is the program, its threads and the page cache the kernel
/// charges to the cgroup), but never below 32 MiB.
std::size_t default_memory_budget();

/// The rule of default_memory_budget for a given limit (nullopt: none).
std::size_t memory_budget_for(std::size_t wanted, std::size_t floor,
                              std::optional<std::uint64_t> limit);

} // namespace podpipe
