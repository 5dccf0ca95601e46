// One pod's runtime state, shared by the kubelet (kubelet.cpp: scheduling, status, deletion)
// and the thread that runs the pod (pod_worker.cpp). Internal to kubesim.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "tools/kubesim/cgroups.hpp"
#include "tools/kubesim/kubelet.hpp"
#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {

using clock_type = std::chrono::steady_clock;

struct container_rt {
    std::string name;
    std::string image;
    bool init = false;
    container_view view;
    int pidfd = -1;
    int exit_code = 0;
    std::string started_at, finished_at;
    std::string term_reason;
    std::string term_message;
    bool pull_fails = false;       ///< the image map says this image cannot be pulled
    bool pull_unauthorized = false; ///< ... because it is private and no pull secret fits
    bool pending = true;           ///< needs an action at next_action: a (re)start or a pull retry
    clock_type::time_point next_action{};
    int instances = 0;             ///< instances started so far
    int crashes = 0;               ///< exits that led to a restart (CrashLoopBackOff step)
    int pull_attempts = 0;         ///< ImagePullBackOff step
    bool backoff_event = false;    ///< a CrashLoopBackOff began: record the BackOff event
    json::object last_state;       ///< lastState of the container status ({} or {"terminated": ...})
    /// The image changed on a PUT/PATCH while this instance ran: it is being killed
    /// (SIGKILL at kill_at) and restarts at once with next_image, whatever the restartPolicy.
    bool spec_restart = false;
    std::string next_image;
    clock_type::time_point kill_at{};
    std::optional<container_cgroup> cgroup; ///< with resources.limits: kept across restarts
    std::uint64_t oom_kills_seen = 0;        ///< the cgroup's OOM kill count at the last start
    std::thread pump;              ///< copies the instance's stdout+stderr into the log file
    std::shared_ptr<std::atomic<bool>> pump_closing = std::make_shared<std::atomic<bool>>(false);

    container_rt() = default;
    container_rt(container_rt&&) = default;
    container_rt& operator=(container_rt&&) = default;
    ~container_rt() {
        if (pump.joinable()) {
            pump_closing->store(true);
            pump.join();
        }
    }
};

struct pod_runtime {
    std::string ns, name, uid, node, host_ip, pod_ip, start_time;
    json::object pod; // snapshot at start
    std::string dir;
    std::vector<container_rt> init_containers, containers;
    std::mutex mu;
    int wake_fd = -1; // eventfd poked on stop requests
    bool stop = false;
    bool deleting = false;
    clock_type::time_point kill_deadline{};
    std::set<pid_t> exec_pgids;
    /// Container name -> image of the stored spec, set by kubelet::pod_updated (a PUT/PATCH);
    /// the pod worker takes it and acts on the containers whose image differs.
    std::map<std::string, std::string> desired_images;
    bool finished = false; // thread done (pod processes all gone)
    bool removed = false;  // object deleted; runtime may be erased once the thread ended
    std::thread thread;
    std::string phase = "Pending";

    ~pod_runtime() {
        if (wake_fd >= 0)
            ::close(wake_fd);
    }
    void poke() {
        std::uint64_t one = 1;
        ssize_t n = ::write(wake_fd, &one, sizeof one);
        (void)n;
    }
};

/// Signals a process group (nothing for pgid <= 0).
inline void kill_group(pid_t pgid, int sig) {
    if (pgid > 0)
        ::kill(-pgid, sig);
}

} // namespace podpipe::kubesim
