// Resource limits of a container, enforced as a kubelet with a cgroup driver does: each
// container gets a cgroup of its own (without limits it only tracks the container's processes,
// so that what a process detached from its session leaves behind ends with the container, as
// the end of a real container's PID namespace ends it); with `resources.limits` its CPU quota is
// the CPU limit
// (cpu.max, or cfs_quota_us on cgroup v1, period 100 ms: kubelet's MilliCPUToQuota) and whose
// memory ceiling is the memory limit (memory.max / memory.limit_in_bytes). The container's
// processes and every exec into it run inside; when the kernel's OOM killer ends the main
// process there, the container's termination reason is OOMKilled (exit 137), as the runtime
// reports it. kubesim's own processes never join.
//
// Both cgroup v2 (when the unified hierarchy has the cpu and memory controllers) and v1 (the
// cpu and memory hierarchies) are used; on a machine with neither, limits are not enforced and
// kubesim says so once on stderr. Quantities are read by validation.hpp's parse_quantity.
// Internal to kubesim; thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::kubesim {

struct container_limits {
    std::optional<double> cpus;                 ///< limits.cpu in cores
    std::optional<std::uint64_t> memory_bytes;  ///< limits.memory, rounded up to a byte
    bool any() const { return cpus || memory_bytes; }
};

/// The cgroup(s) of one container. Created once per container and kept across restarts;
/// remove() after its processes are gone.
class container_cgroup {
public:
    /// Creates `<hierarchy>/kubesim/<pod_uid>/<container>` in every hierarchy that the limits
    /// need and sets them. Returns nullopt (and writes `why`) when no usable hierarchy exists.
    static std::optional<container_cgroup> create(const std::string& pod_uid,
                                                  const std::string& container,
                                                  const container_limits& limits,
                                                  std::string* why);

    /// The cgroup.procs files a process writes "0" into to join (sandbox_spec::cgroup_procs).
    const std::vector<std::string>& procs_files() const { return procs_; }

    /// The kernel's count of OOM kills in this cgroup so far (memory.events "oom_kill" on v2,
    /// memory.oom_control "oom_kill" on v1); 0 when unknown.
    std::uint64_t oom_kills() const;

    /// SIGKILLs every process in the cgroup, wherever it moved to (another session or process
    /// group): what the end of a container's PID namespace does to what it leaves behind.
    void kill_all() const;

    /// Removes the cgroup directories (and the pod's directory once it is empty). A cgroup
    /// that still has processes stays (EBUSY); true once none is left.
    bool remove();

private:
    std::vector<std::string> dirs_;  ///< the container's cgroup directories
    std::vector<std::string> procs_;
    std::string memory_dir_;         ///< the one with the memory controller
    bool memory_v2_ = false;
};

} // namespace podpipe::kubesim
