// kubelet: runs scheduled pods as real processes (one thread per pod) and mirrors what happens to
// them into the pod's status in the object store (spec §3.4 shapes).
//
// Lifecycle per pod: schedule (scheduler.hpp) → volumes prepared under STATE/pods/<uid>/volumes
// → init containers one by one (a non-zero exit fails the pod with restartPolicy Never, else the
// init container restarts) → all main containers, restarted per restartPolicy (Always, OnFailure)
// with CrashLoopBackOff delays; an unpullable image keeps its container waiting in
// ErrImagePull/ImagePullBackOff → phase from the container states (upstream getPhase).
// stdout+stderr of each container instance go to STATE/pods/<uid>/logs/<name>.log (the previous
// instance's to <name>.previous.log). Events for scheduling, pulls, starts, kills and back-offs.
// Deletion: SIGTERM to every process group of the pod (containers and execs), SIGKILL when the
// grace period ends, then the directory (emptyDirs, logs) is removed and the object deleted.
//
// Thread safety: all public members may be called from any thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "tools/kubesim/events.hpp"
#include "tools/kubesim/images.hpp"
#include "tools/kubesim/scheduler.hpp"
#include "tools/kubesim/store.hpp"

namespace podpipe::kubesim {

struct pod_runtime;
struct container_rt;

/// When each part of one container instance's log arrived (for `timestamps`, `sinceSeconds`,
/// `sinceTime`). A part is what a CRI runtime stores as one log entry: a whole line, or up to
/// part_bytes of a longer one (containerd's default max-container-log-line-size), each with
/// its own time. The kubelet filters by the part's time and stamps only a part that starts a
/// line, so a stream from sinceTime can begin in the middle of a line, unstamped.
/// Written by the instance's log pump, read by log requests; entries are added before the bytes
/// reach the file.
struct log_index {
    static constexpr std::uint64_t part_bytes = 16 * 1024;
    struct part {
        std::uint64_t offset;
        std::chrono::system_clock::time_point when;
        bool line_start;
    };
    std::mutex mu;
    std::vector<part> parts;
    std::uint64_t size = 0;
    bool at_line_start = true;
    std::uint64_t part_used = 0; ///< bytes of the current line's last part
    /// Records `n` bytes that arrived `now`.
    void add(const char* data, std::size_t n, std::chrono::system_clock::time_point now);
    /// Arrival time of the line starting at `offset` (now when unknown).
    std::chrono::system_clock::time_point time_at(std::uint64_t offset);
    /// Offset of the first part that arrived at or after `t` (size when none).
    std::uint64_t first_since(std::chrono::system_clock::time_point t);
    /// Whether `offset` starts a line (true at 0 and at the end).
    bool starts_line(std::uint64_t offset);
};

/// What an exec or a log request needs to know about one container.
struct container_view {
    enum class state { waiting, running, terminated };
    state st = state::waiting;
    std::string waiting_reason; ///< ContainerCreating / PodInitializing / ErrImagePull / ImagePullBackOff / CrashLoopBackOff
    std::string waiting_message;
    int restart_count = 0;      ///< instances started minus one (a new instance has a new log)
    pid_t pid = -1;             ///< valid while running
    std::string root;           ///< host path of the container root (mount point in its namespace)
    std::string layer_dir;      ///< its writable layer's tmpfs (mount point in its namespace)
    std::vector<std::string> env;
    std::string working_dir;
    std::optional<unsigned> uid, gid;
    std::vector<unsigned> groups;
    std::vector<std::string> cgroup_procs; ///< the container's cgroups (limits): execs join them
    std::string log_path;
    std::string pod_uid;
    std::shared_ptr<log_index> index, previous_index; ///< current / previous instance's line times
};

class kubelet {
public:
    kubelet(object_store& store, const image_map& images, std::vector<sim_node> nodes,
            std::string state_dir);
    ~kubelet();
    kubelet(const kubelet&) = delete;
    kubelet& operator=(const kubelet&) = delete;

    /// Where pod events (Scheduled, Pulled, Started, Killing, BackOff, ...) go; set before use.
    void set_events(event_recorder* events) { events_ = events; }

    /// host:port exported to pods as KUBERNETES_SERVICE_HOST/PORT.
    void set_api_endpoint(std::string host, int port);
    /// A copy of the node model (cordon state included).
    std::vector<sim_node> nodes() const;

    /// Cordons (`unschedulable`) or uncordons a node: the Node object follows (spec.unschedulable,
    /// the NoSchedule taint); an uncordon re-runs the scheduler for every pod still waiting for a
    /// node (as the real scheduler retries unschedulable pods when a node changes). False when
    /// there is no such node.
    bool set_unschedulable(const std::string& node, bool unschedulable);

    /// A claim was created in `ns`: pods the scheduler left Pending because a claim they name
    /// did not exist are scheduled again (upstream, a PVC add event requeues them). Pods bound
    /// to a node already wait for their claims by themselves.
    void claim_created(const std::string& ns);

    /// Called after a pod object was stored: schedules it (unless spec.nodeName is set) and starts
    /// it when placed; an unplaceable pod stays Pending with PodScheduled=False/Unschedulable.
    void pod_created(const std::string& ns, const std::string& name);

    /// Called after a PUT/PATCH of a pod was stored: the pod's worker compares each container's
    /// image with the one it runs. A running main container whose image changed is killed
    /// ("Killing": `Container c definition changed, will be restarted`) and started again with
    /// the new image whatever the restartPolicy (kubelet computePodActions: the container's
    /// hash changed); a waiting one takes the new image at its next start or pull. Terminated
    /// containers that will not restart, running init containers and finished pods keep theirs.
    void pod_updated(const std::string& ns, const std::string& name);

    /// DELETE semantics of spec §3.2: nullopt when missing; otherwise the Pod to return (removed
    /// at once for grace 0 / unscheduled / finished pods, else marked with deletionTimestamp).
    std::optional<boost::json::object> delete_pod(const std::string& ns, const std::string& name,
                                                  std::optional<std::int64_t> grace_seconds);

    /// Runtime view of a container (main or init) of a pod by uid; nullopt when the pod has no
    /// runtime (not scheduled) or no such container.
    std::optional<container_view> container(const std::string& pod_uid, const std::string& name);

    /// Exec processes are killed with their pod (and at shutdown).
    void register_exec(const std::string& pod_uid, pid_t pgid);
    void unregister_exec(const std::string& pod_uid, pid_t pgid);
    /// Set once shutdown() began.
    bool shutting_down();

    /// Fault injection: SIGKILLs the pod's container and exec process groups (the object stays;
    /// the containers end as killed, exit 137).
    void kill_pod_processes(const std::string& pod_uid);
    /// Fault injection (diskFull): each running container's root and writable-layer tmpfs get
    /// only `free_bytes` more (remounted with size = used + free_bytes in its mount namespace),
    /// so writes beyond fail with ENOSPC. An error text, or "" on success.
    std::string limit_storage(const std::string& pod_uid, std::uint64_t free_bytes);
    /// Kills every pod's processes (SIGTERM, SIGKILL after `grace`) and joins all pod threads.
    void shutdown(std::chrono::milliseconds grace);

private:
    class pod_worker; // the thread that runs one pod (pod_worker.cpp)
    void run_pod(const std::shared_ptr<pod_runtime>& p);
    /// Whether container `c` (its image) can be pulled for a pod with `spec` in `ns`: sets
    /// c.pull_fails and c.pull_unauthorized from the image map and the pull secrets.
    void resolve_pull(const std::string& ns, const boost::json::object& spec, container_rt& c);
    void start_runtime(const std::string& ns, const std::string& name, const boost::json::object& pod,
                       const std::string& node);
    void publish(pod_runtime& p, const std::string& phase);
    /// A kubelet Event about the pod (field_path "spec.containers{c}" for a container).
    /// A line on kubesim's stderr, once per distinct text (e.g. limits it cannot enforce).
    void warn_once(const std::string& text);

    void event(const pod_runtime& p, const std::string& field_path, const char* type, const std::string& reason,
               const std::string& message);
    void reap_finished(); // joins and erases runtimes whose thread ended after removal
    /// ReadWriteOnce claims of `pod` attached to a node other than `node` (by a running pod):
    /// the Multi-Attach message, or "" when the pod may start there.
    std::string attach_conflict(const std::string& ns, const boost::json::object& pod, const std::string& node);
    /// The node a ReadWriteOnce claim of `pod` is attached to ("" when none).
    std::string attached_node(const std::string& ns, const boost::json::object& pod);
    /// The first persistentVolumeClaim the pod names that does not exist ("" when all do).
    std::string missing_claim(const std::string& ns, const boost::json::object& pod);
    /// Why a pod bound to `node` cannot start yet: a missing claim (kubelet's FailedMount) or a
    /// ReadWriteOnce claim attached elsewhere (FailedAttachVolume); empty when it can start.
    struct start_block {
        std::string reason;  ///< FailedMount | FailedAttachVolume | "" (none)
        std::string message;
    };
    start_block start_blocked(const std::string& ns, const boost::json::object& pod,
                              const std::string& node);
    /// Holds a scheduled pod in ContainerCreating while start_blocked() says so, then starts it.
    void wait_to_start(const std::string& ns, const std::string& name, const std::string& uid,
                       const std::string& node, const start_block& block);
    /// Re-runs the scheduler for every pod without a node (only those in `ns` when non-empty).
    void retry_unscheduled(const std::string& ns);

    object_store& store_;
    event_recorder* events_ = nullptr;
    const image_map& images_;
    std::vector<sim_node> nodes_;
    std::string state_dir_;
    std::string api_host_;
    int api_port_ = 0;
    mutable std::mutex mu_;
    std::map<std::string, std::shared_ptr<pod_runtime>> pods_; // by uid
    int next_ip_ = 2;
    bool shutting_down_ = false;
    std::vector<std::jthread> attach_waiters_;
};

} // namespace podpipe::kubesim
