// sandbox: starts a container process (or an exec into one) as a real process in its own mount
// namespace. The parent never forks-and-mounts itself (it is multi-threaded): it posix_spawns
// /proc/self/exe with argv {"kubesim", "__sandbox", <spec JSON>} and a new session (setsid), and
// that fresh single-threaded child sets up the namespace, then execs the command.
//
// create mode: unshare(CLONE_NEWNS); make all mounts private; mount a tmpfs at `root`; bind each
// top-level entry of `image_dir` (minus `image_skip`) read-only; fresh /proc, /dev and /sys
// (rbind), writable /tmp; each mount_spec bind-mounted at its target; chroot(root).
// enter mode (pods/exec): setns into /proc/<enter_pid>/ns/mnt, chroot(root).
// Both: create and chdir to working_dir, set groups/gid/uid, replace the environment, execvp.
// A setup failure prints "kubesim-sandbox: ..." on stderr and exits 127 (126 if exec fails).
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.hpp"

namespace podpipe::kubesim {

struct mount_spec {
    std::string source; ///< host path (file or directory)
    std::string target; ///< absolute path inside the container
    bool read_only = false;
    bool optional = false; ///< skip silently when the target cannot be created
};

struct sandbox_spec {
    bool enter = false;
    int enter_pid = 0;
    std::string root;                    ///< host path of the container root mount point
    std::string image_dir;               ///< create mode
    std::vector<std::string> image_skip; ///< create mode
    std::vector<mount_spec> mounts;      ///< create mode
    std::vector<std::string> argv;
    std::vector<std::string> env; ///< "K=V"; PATH defaulted when missing
    std::string working_dir;      ///< empty = "/"
    std::optional<unsigned> uid, gid;
    std::vector<unsigned> supplementary_groups;
    /// cgroup.procs files the helper joins before anything else (the container's limits,
    /// cgroups.hpp); execs join their container's.
    std::vector<std::string> cgroup_procs;
    /// create mode: an empty host directory where the container's writable layer (a tmpfs
    /// private to its mount namespace: gone with the instance, as a runtime's layer is with
    /// its container) is mounted; the image's directories are overlays over it. Empty, or
    /// `read_only_root`: the image is bind-mounted read-only instead.
    std::string layer_dir;
    bool read_only_root = false; ///< securityContext.readOnlyRootFilesystem
};

/// File descriptors the child gets as 0/1/2; -1 = /dev/null. The caller keeps ownership.
/// `ready` (optional): the write end of a pipe; the helper holds it until it execs the command
/// (or dies), so EOF on the read end means the container's namespace and root are in place.
/// `exec_error` (optional): the write end of a pipe; when the command cannot be executed (not
/// found, not executable), the helper writes the runtime's reason there (exec_error_text)
/// before it exits, so the caller can report what a runtime reports instead of an exit code.
struct spawn_stdio {
    int in = -1, out = -1, err = -1;
    int ready = -1;
    int exec_error = -1;
};

/// What containerd/runc say when an exec's command cannot start, after "OCI runtime exec
/// failed: exec failed: unable to start container process: ", e.g.
/// `exec: "nosuch": executable file not found in $PATH: unknown`.
std::string exec_error_text(const std::string& command, int err);

/// Starts what the helper writes on `exec_error` when the runtime refuses the exec before any
/// process starts (the container is not running: its process is gone and the kubelet has not
/// noticed yet); the rest follows "failed to exec in container: " as containerd's CRI says it.
inline constexpr std::string_view runtime_refusal_mark = "\x01cri: ";

/// Spawns the sandbox helper in a new session (so kill(-pid) reaches everything it starts).
/// Returns its pid; the caller reaps it (waitpid or a pidfd).
result<pid_t> spawn_sandbox(const sandbox_spec& spec, spawn_stdio stdio);

/// Entry point of the helper: called by main() when argv[1] == "__sandbox". Never returns on
/// success (execs the command).
int sandbox_main(int argc, char** argv);

} // namespace podpipe::kubesim
