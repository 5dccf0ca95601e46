#include "tools/kubesim/kubelet.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tools/kubesim/sandbox.hpp"
#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {
namespace fs = std::filesystem;
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

namespace {

json::object container_status(const container_rt& c) {
    json::object state;
    bool ready = false, started = false;
    switch (c.view.st) {
    case container_view::state::waiting: {
        json::object w{{"reason", c.view.waiting_reason}};
        if (!c.view.waiting_message.empty())
            w["message"] = c.view.waiting_message;
        state["waiting"] = w;
        break;
    }
    case container_view::state::running:
        state["running"] = json::object{{"startedAt", c.started_at}};
        ready = !c.init;
        started = true;
        break;
    case container_view::state::terminated: {
        json::object t{{"exitCode", c.exit_code},
                       {"reason", c.term_reason},
                       {"startedAt", c.started_at},
                       {"finishedAt", c.finished_at},
                       {"containerID", "kubesim://" + c.view.pod_uid + "-" + c.name}};
        if (!c.term_message.empty())
            t["message"] = c.term_message;
        state["terminated"] = t;
        ready = c.init && c.exit_code == 0;
        break;
    }
    }
    json::object s{{"name", c.name},
                   {"image", c.image},
                   {"imageID", ""},
                   {"ready", ready},
                   {"started", started},
                   {"restartCount", c.view.restart_count},
                   {"state", state},
                   {"lastState", c.last_state}};
    if (c.view.st != container_view::state::waiting || !c.last_state.empty())
        s["containerID"] = "kubesim://" + c.view.pod_uid + "-" + c.name;
    return s;
}

json::object condition(const char* type, bool status, std::string_view reason = {},
                       std::string_view message = {}) {
    json::object c{{"type", type},
                   {"status", status ? "True" : "False"},
                   {"lastProbeTime", nullptr},
                   {"lastTransitionTime", now_rfc3339()}};
    if (!reason.empty())
        c["reason"] = reason;
    if (!message.empty())
        c["message"] = message;
    return c;
}

std::optional<unsigned> sc_int(const json::object& spec, const json::object& ctr, const char* key) {
    for (const json::object* o : {obj_at(ctr, "securityContext"), obj_at(spec, "securityContext")}) {
        if (o && o->contains(key))
            return static_cast<unsigned>(int_at(*o, key, 0));
    }
    return std::nullopt;
}

void kill_group(pid_t pgid, int sig) {
    if (pgid > 0)
        ::kill(-pgid, sig);
}

/// Copies a container instance's output (pipe `in`) into its log file (`out`), recording the
/// arrival time of every log part in `index`. Ends at EOF, or once `closing` is set and the pipe has
/// been idle for 100 ms (a daemon that escaped the container's session may hold the pipe open).
void pump_log(int in, int out, std::shared_ptr<log_index> index, std::shared_ptr<std::atomic<bool>> closing) {
    std::vector<char> buf(64 * 1024);
    while (true) {
        pollfd pfd{in, POLLIN, 0};
        int r = ::poll(&pfd, 1, 100);
        if (r == 0) {
            if (closing->load())
                break;
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        ssize_t n = ::read(in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        auto now = std::chrono::system_clock::now();
        index->add(buf.data(), static_cast<std::size_t>(n), now);
        for (ssize_t off = 0; off < n;) {
            ssize_t w = ::write(out, buf.data() + off, static_cast<std::size_t>(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += w;
        }
    }
    ::close(in);
    ::close(out);
}

/// Delay before the restart after the n-th restart-causing exit (n from 0): none for the first,
/// then 1 s doubling up to 8 s (upstream: 10 s doubling up to 5 min).
std::chrono::milliseconds crash_backoff(int n) {
    if (n <= 0)
        return std::chrono::milliseconds(0);
    return std::chrono::milliseconds(1000LL << std::min(n - 1, 3));
}

/// ImagePullBackOff duration after the n-th failed pull (n from 0): 2 s doubling up to 8 s
/// (upstream: 10 s doubling up to 5 min).
std::chrono::milliseconds pull_backoff(int n) { return std::chrono::milliseconds(2000LL << std::min(n, 2)); }

} // namespace

void log_index::add(const char* data, std::size_t n, std::chrono::system_clock::time_point now) {
    std::lock_guard lk(mu);
    for (std::size_t i = 0; i < n; ++i) {
        if (at_line_start || part_used == part_bytes) {
            parts.push_back({size + i, now, at_line_start});
            at_line_start = false;
            part_used = 0;
        }
        ++part_used;
        if (data[i] == '\n')
            at_line_start = true;
    }
    size += n;
}

std::chrono::system_clock::time_point log_index::time_at(std::uint64_t offset) {
    std::lock_guard lk(mu);
    auto it = std::upper_bound(parts.begin(), parts.end(), offset,
                               [](std::uint64_t o, const part& p) { return o < p.offset; });
    // The last line start at or before offset: that line's time.
    while (it != parts.begin()) {
        --it;
        if (it->line_start)
            return it->when;
    }
    return std::chrono::system_clock::now();
}

std::uint64_t log_index::first_since(std::chrono::system_clock::time_point t) {
    std::lock_guard lk(mu);
    for (const auto& p : parts)
        if (p.when >= t)
            return p.offset;
    return size;
}

bool log_index::starts_line(std::uint64_t offset) {
    std::lock_guard lk(mu);
    if (offset == 0 || offset >= size)
        return true;
    auto it = std::lower_bound(parts.begin(), parts.end(), offset,
                               [](const part& p, std::uint64_t o) { return p.offset < o; });
    return it != parts.end() && it->offset == offset && it->line_start;
}

void kubelet::event(const pod_runtime& p, const std::string& field_path, const char* type,
                    const std::string& reason, const std::string& message) {
    if (events_)
        events_->record(involved_object{"Pod", "v1", p.ns, p.name, p.uid, field_path}, type, reason, message,
                        "kubelet", p.node);
}

kubelet::kubelet(object_store& store, const image_map& images, std::vector<sim_node> nodes,
                 std::string state_dir)
    : store_(store), images_(images), nodes_(std::move(nodes)), state_dir_(std::move(state_dir)) {}

kubelet::~kubelet() { shutdown(std::chrono::milliseconds(0)); }

void kubelet::set_api_endpoint(std::string host, int port) {
    std::lock_guard lk(mu_);
    api_host_ = std::move(host);
    api_port_ = port;
}

std::vector<sim_node> kubelet::nodes() const {
    std::lock_guard lk(mu_);
    return nodes_;
}

bool kubelet::set_unschedulable(const std::string& node, bool unschedulable) {
    sim_node changed;
    {
        std::lock_guard lk(mu_);
        auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](const sim_node& n) { return n.name == node; });
        if (it == nodes_.end())
            return false;
        it->unschedulable = unschedulable;
        changed = *it;
    }
    store_.update("nodes", "", node, "", [&](json::object& o) { o["spec"] = node_object(changed).at("spec"); });
    if (unschedulable)
        return true;
    std::uint64_t rv = 0;
    for (const auto& p : store_.list("pods", "", rv)) {
        const auto& meta = p.at("metadata").as_object();
        const auto* spec = obj_at(p, "spec");
        if (!spec || !str_at(*spec, "nodeName").empty() || obj_at(meta, "deletionTimestamp"))
            continue;
        pod_created(str_at(meta, "namespace"), str_at(meta, "name"));
    }
    return true;
}

void kubelet::pod_created(const std::string& ns, const std::string& name) {
    reap_finished();
    auto pod = store_.get("pods", ns, name);
    if (!pod)
        return;
    auto& spec = (*pod)["spec"].as_object();
    std::string uid = str_at((*pod)["metadata"].as_object(), "uid");
    std::string node = str_at(spec, "nodeName");
    if (node.empty()) {
        std::map<std::string, int> counts;
        std::vector<sim_node> nodes;
        {
            std::lock_guard lk(mu_);
            for (const auto& [u, p] : pods_)
                if (!p->finished)
                    ++counts[p->node];
            nodes = nodes_;
        }
        schedule_decision d = schedule_pod(spec, nodes, counts, attached_node(ns, *pod));
        if (!d.scheduled) {
            if (events_)
                events_->record(involved(*pod), "Warning", "FailedScheduling", d.message, "default-scheduler");
            store_.update("pods", ns, name, uid, [&](json::object& o) {
                auto& st = o["status"].as_object();
                st["phase"] = "Pending";
                st["conditions"] = json::array{
                    condition("PodScheduled", false, "Unschedulable", d.message)};
            });
            return;
        }
        node = d.node;
        auto updated = store_.update("pods", ns, name, uid, [&](json::object& o) {
            o["spec"].as_object()["nodeName"] = node;
        });
        if (!updated)
            return;
        pod = updated;
        if (events_)
            events_->record(involved(*pod), "Normal", "Scheduled",
                            "Successfully assigned " + ns + "/" + name + " to " + node, "default-scheduler");
    }
    if (std::string conflict = attach_conflict(ns, *pod, node); !conflict.empty()) {
        wait_for_attach(ns, name, uid, node, conflict);
        return;
    }
    start_runtime(ns, name, *pod, node);
}

namespace {

/// Claim names of the pod's persistentVolumeClaim volumes.
std::vector<std::string> claims_of(const json::object& pod) {
    std::vector<std::string> out;
    if (auto* spec = obj_at(pod, "spec"))
        if (auto* vols = arr_at(*spec, "volumes"))
            for (const auto& v : *vols)
                if (auto* pvc = obj_at(v.as_object(), "persistentVolumeClaim"))
                    out.push_back(str_at(*pvc, "claimName"));
    return out;
}

bool read_write_once(const json::object& claim) {
    bool rwo = false;
    if (auto* spec = obj_at(claim, "spec"))
        if (auto* modes = arr_at(*spec, "accessModes"))
            for (const auto& m : *modes) {
                if (!m.is_string())
                    continue;
                if (m.get_string() == "ReadWriteMany" || m.get_string() == "ReadOnlyMany")
                    return false;
                rwo = rwo || m.get_string() == "ReadWriteOnce" || m.get_string() == "ReadWriteOncePod";
            }
    return rwo;
}

} // namespace

std::string kubelet::attached_node(const std::string& ns, const json::object& pod) {
    std::string pod_uid = str_at(pod.at("metadata").as_object(), "uid");
    for (const auto& claim : claims_of(pod)) {
        auto c = store_.get("persistentvolumeclaims", ns, claim);
        if (!c || !read_write_once(*c))
            continue;
        std::lock_guard lk(mu_);
        for (const auto& [uid, rt] : pods_) {
            if (uid == pod_uid || rt->ns != ns)
                continue;
            std::lock_guard plk(rt->mu);
            if (rt->finished || rt->phase == "Succeeded" || rt->phase == "Failed")
                continue;
            for (const auto& other : claims_of(rt->pod))
                if (other == claim)
                    return rt->node;
        }
    }
    return "";
}

std::string kubelet::attach_conflict(const std::string& ns, const json::object& pod, const std::string& node) {
    std::string pod_uid = str_at(pod.at("metadata").as_object(), "uid");
    for (const auto& claim : claims_of(pod)) {
        auto c = store_.get("persistentvolumeclaims", ns, claim);
        if (!c || !read_write_once(*c))
            continue;
        std::vector<std::string> users;
        {
            std::lock_guard lk(mu_);
            for (const auto& [uid, rt] : pods_) {
                if (uid == pod_uid || rt->ns != ns || rt->node == node)
                    continue;
                std::lock_guard plk(rt->mu);
                if (rt->finished || rt->phase == "Succeeded" || rt->phase == "Failed")
                    continue;
                for (const auto& other : claims_of(rt->pod))
                    if (other == claim)
                        users.push_back(rt->name);
            }
        }
        if (!users.empty()) {
            std::string volume = "pvc-" + str_at(c->at("metadata").as_object(), "uid");
            std::string list;
            for (const auto& u : users)
                list += (list.empty() ? "" : ", ") + u;
            return "Multi-Attach error for volume \"" + volume +
                   "\" Volume is already used by pod(s) " + list;
        }
    }
    return "";
}

void kubelet::wait_for_attach(const std::string& ns, const std::string& name, const std::string& uid,
                              const std::string& node, const std::string& message) {
    auto updated = store_.update("pods", ns, name, uid, [&](json::object& o) {
        auto& st = o["status"].as_object();
        st["phase"] = "Pending";
        json::array cs;
        if (auto* spec = obj_at(o, "spec"))
            if (auto* arr = arr_at(*spec, "containers"))
                for (const auto& c : *arr)
                    cs.push_back(json::object{
                        {"name", str_at(c.as_object(), "name")},
                        {"image", str_at(c.as_object(), "image")},
                        {"imageID", ""},
                        {"ready", false},
                        {"restartCount", 0},
                        {"started", false},
                        {"state", json::object{{"waiting", json::object{{"reason", "ContainerCreating"}}}}}});
        st["containerStatuses"] = cs;
        st["conditions"] = json::array{condition("PodScheduled", true),
                                       condition("PodReadyToStartContainers", false, "FailedAttachVolume", message)};
        st["message"] = message;
        st["reason"] = "FailedAttachVolume";
    });
    if (updated && events_)
        events_->record(involved(*updated), "Warning", "FailedAttachVolume", message, "attachdetach-controller");
    std::lock_guard lk(mu_);
    if (shutting_down_)
        return;
    attach_waiters_.emplace_back([this, ns, name, uid, node](std::stop_token stop) {
        while (!stop.stop_requested()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            auto pod = store_.get("pods", ns, name);
            if (!pod || str_at(pod->at("metadata").as_object(), "uid") != uid ||
                obj_at(pod->at("metadata").as_object(), "deletionTimestamp"))
                return;
            if (!attach_conflict(ns, *pod, node).empty())
                continue;
            store_.update("pods", ns, name, uid, [](json::object& o) {
                auto& st = o["status"].as_object();
                st.erase("message");
                st.erase("reason");
            });
            if (auto fresh = store_.get("pods", ns, name))
                start_runtime(ns, name, *fresh, node);
            return;
        }
    });
}

void kubelet::start_runtime(const std::string& ns, const std::string& name, const json::object& pod,
                            const std::string& node) {
    auto p = std::make_shared<pod_runtime>();
    p->ns = ns;
    p->name = name;
    p->pod = pod;
    p->uid = str_at(pod.at("metadata").as_object(), "uid");
    p->node = node;
    p->wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    p->dir = state_dir_ + "/pods/" + p->uid;
    int node_index = 0;
    for (const auto& n : nodes())
        if (n.name == node) {
            node_index = n.index;
            p->host_ip = n.internal_ip;
        }
    if (p->host_ip.empty())
        p->host_ip = "172.18.0.254"; // nodeName set by the client to an unknown node
    const auto& spec = pod.at("spec").as_object();
    auto add = [&](const json::array* arr, bool init, std::vector<container_rt>& out) {
        if (!arr)
            return;
        for (const auto& c : *arr) {
            container_rt rt;
            rt.name = str_at(c.as_object(), "name");
            rt.image = str_at(c.as_object(), "image");
            rt.init = init;
            rt.view.waiting_reason = init || !arr_at(spec, "initContainers") ||
                                             arr_at(spec, "initContainers")->empty()
                                         ? "ContainerCreating"
                                         : "PodInitializing";
            rt.view.pod_uid = p->uid;
            rt.view.log_path = p->dir + "/logs/" + rt.name + ".log";
            const image_root root = images_.resolve(rt.image);
            rt.pull_fails = root.pull_fails;
            if (!rt.pull_fails && root.needs_auth()) {
                // A private image: one of the pod's imagePullSecrets must carry its credentials
                // (read once, when the pod is admitted; the kubelet re-reads them per pull).
                bool allowed = false;
                if (const auto* refs = arr_at(spec, "imagePullSecrets"))
                    for (const auto& ref : *refs) {
                        if (!ref.is_object())
                            continue;
                        auto sec = store_.get("secrets", p->ns, str_at(ref.as_object(), "name"));
                        if (!sec || str_at(*sec, "type") != "kubernetes.io/dockerconfigjson")
                            continue;
                        const auto* data = obj_at(*sec, "data");
                        const auto* cfg = data ? data->if_contains(".dockerconfigjson") : nullptr;
                        if (cfg && cfg->is_string() &&
                            docker_config_allows(b64decode(cfg->get_string()), rt.image,
                                                 root.auth_username, root.auth_password))
                            allowed = true;
                    }
                rt.pull_fails = rt.pull_unauthorized = !allowed;
            }
            out.push_back(std::move(rt));
        }
    };
    add(arr_at(spec, "initContainers"), true, p->init_containers);
    add(arr_at(spec, "containers"), false, p->containers);
    {
        std::lock_guard lk(mu_);
        if (shutting_down_)
            return;
        p->pod_ip = "10.244." + std::to_string(node_index) + "." + std::to_string(next_ip_++ % 250 + 2);
        pods_[p->uid] = p;
    }
    p->start_time = now_rfc3339();
    publish(*p, "Pending");
    p->thread = std::thread([this, p] { run_pod(p); });
}

void kubelet::publish(pod_runtime& p, const std::string& phase) {
    json::array init_st, main_st;
    bool initialized = true, all_ready = !p.containers.empty();
    {
        std::lock_guard lk(p.mu);
        p.phase = phase;
        for (const auto& c : p.init_containers) {
            init_st.push_back(container_status(c));
            if (!(c.view.st == container_view::state::terminated && c.exit_code == 0))
                initialized = false;
        }
        for (const auto& c : p.containers) {
            main_st.push_back(container_status(c));
            if (c.view.st != container_view::state::running)
                all_ready = false;
        }
    }
    bool finished = phase == "Succeeded" || phase == "Failed";
    store_.update("pods", p.ns, p.name, p.uid, [&](json::object& o) {
        auto& st = o["status"].as_object();
        st["phase"] = phase;
        st["hostIP"] = p.host_ip;
        st["hostIPs"] = json::array{json::object{{"ip", p.host_ip}}};
        st["podIP"] = p.pod_ip;
        st["podIPs"] = json::array{json::object{{"ip", p.pod_ip}}};
        st["startTime"] = p.start_time;
        st["qosClass"] = "BestEffort";
        json::array conds;
        conds.push_back(condition("PodReadyToStartContainers", !finished));
        conds.push_back(condition("Initialized", initialized));
        conds.push_back(condition("Ready", all_ready && !finished,
                                  all_ready ? "" : (finished ? "PodCompleted" : "ContainersNotReady")));
        conds.push_back(condition("ContainersReady", all_ready && !finished,
                                  all_ready ? "" : (finished ? "PodCompleted" : "ContainersNotReady")));
        conds.push_back(condition("PodScheduled", true));
        st["conditions"] = conds;
        if (!init_st.empty())
            st["initContainerStatuses"] = init_st;
        st["containerStatuses"] = main_st;
    });
}

void kubelet::run_pod(const std::shared_ptr<pod_runtime>& p) {
    const json::object spec = p->pod.at("spec").as_object();
    std::error_code ec;
    fs::create_directories(p->dir + "/logs", ec);
    fs::create_directories(p->dir + "/volumes", ec);
    fs::create_directories(p->dir + "/roots", ec);
    auto fs_group = [&]() -> std::optional<unsigned> {
        if (auto* sc = obj_at(spec, "securityContext"); sc && sc->contains("fsGroup"))
            return static_cast<unsigned>(int_at(*sc, "fsGroup", 0));
        return std::nullopt;
    }();

    // Volumes → host paths.
    std::map<std::string, std::pair<std::string, bool>> volumes; // name → (path, read-only)
    if (auto* vols = arr_at(spec, "volumes")) {
        for (const auto& v : *vols) {
            const auto& vo = v.as_object();
            std::string name = str_at(vo, "name");
            std::string path = p->dir + "/volumes/" + name;
            if (auto* hp = obj_at(vo, "hostPath")) {
                path = str_at(*hp, "path");
                if (str_at(*hp, "type") == "DirectoryOrCreate")
                    fs::create_directories(path, ec);
            } else if (auto* pvc = obj_at(vo, "persistentVolumeClaim")) {
                // One directory per claim (STATE/claims/<ns>/<claim>); attach rules are applied
                // before the pod starts (attach_conflict).
                path = state_dir_ + "/claims/" + p->ns + "/" + str_at(*pvc, "claimName");
                fs::create_directories(path, ec);
                ::chmod(path.c_str(), 0777);
            } else if (auto* sec = obj_at(vo, "secret")) {
                fs::create_directories(path, ec);
                if (auto s = store_.get("secrets", p->ns, str_at(*sec, "secretName"))) {
                    if (auto* data = obj_at(*s, "data"))
                        for (const auto& [k, val] : *data)
                            if (val.is_string())
                                std::ofstream(path + "/" + std::string(k), std::ios::binary)
                                    << b64decode(val.get_string());
                }
                volumes[name] = {path, true};
                continue;
            } else {
                fs::create_directories(path, ec); // emptyDir and anything unsupported
                ::chmod(path.c_str(), 0777);
                if (fs_group) {
                    int r = ::chown(path.c_str(), static_cast<uid_t>(-1), *fs_group);
                    (void)r;
                    ::chmod(path.c_str(), 02777);
                }
            }
            volumes[name] = {path, false};
        }
    }

    std::string api_host;
    int api_port;
    {
        std::lock_guard lk(mu_);
        api_host = api_host_;
        api_port = api_port_;
    }

    auto prepare = [&](container_rt& c, const json::object& cs) -> sandbox_spec {
        sandbox_spec s;
        image_root img = images_.resolve(c.image);
        s.root = p->dir + "/roots/" + c.name;
        fs::create_directories(s.root, ec);
        s.image_dir = img.dir;
        s.image_skip = img.skip;
        std::vector<std::string> cmd, args;
        if (auto* a = arr_at(cs, "command"))
            for (const auto& x : *a)
                cmd.emplace_back(x.as_string());
        if (auto* a = arr_at(cs, "args"))
            for (const auto& x : *a)
                args.emplace_back(x.as_string());
        if (cmd.empty())
            cmd = img.default_command.empty() ? std::vector<std::string>{"sh"} : img.default_command;
        if (!args.empty() && arr_at(cs, "command"))
            cmd.insert(cmd.end(), args.begin(), args.end());
        else if (!args.empty())
            cmd = args; // args without command replace the image's CMD
        s.argv = cmd;
        s.env.push_back("HOSTNAME=" + p->name);
        if (api_port) {
            s.env.push_back("KUBERNETES_SERVICE_HOST=" + api_host);
            s.env.push_back("KUBERNETES_SERVICE_PORT=" + std::to_string(api_port));
            s.env.push_back("KUBERNETES_PORT=tcp://" + api_host + ":" + std::to_string(api_port));
        }
        auto put_env = [&](const std::string& k, const std::string& v) {
            std::string prefix = k + "=";
            for (auto& e : s.env)
                if (e.rfind(prefix, 0) == 0) {
                    e = prefix + v;
                    return;
                }
            s.env.push_back(prefix + v);
        };
        if (auto* ef = arr_at(cs, "envFrom")) {
            for (const auto& e : *ef) {
                if (auto* sr = obj_at(e, "secretRef"))
                    if (auto sec = store_.get("secrets", p->ns, str_at(*sr, "name")))
                        if (auto* data = obj_at(*sec, "data"))
                            for (const auto& [k, val] : *data)
                                if (val.is_string())
                                    put_env(str_at(e.as_object(), "prefix") + std::string(k),
                                            b64decode(val.get_string()));
            }
        }
        if (auto* env = arr_at(cs, "env")) {
            for (const auto& e : *env) {
                const auto& eo = e.as_object();
                std::string k = str_at(eo, "name");
                if (eo.contains("value")) {
                    put_env(k, str_at(eo, "value"));
                } else if (auto* vf = obj_at(eo, "valueFrom")) {
                    if (auto* skr = obj_at(*vf, "secretKeyRef")) {
                        if (auto sec = store_.get("secrets", p->ns, str_at(*skr, "name")))
                            if (auto* data = obj_at(*sec, "data"))
                                put_env(k, b64decode(str_at(*data, str_at(*skr, "key"))));
                    } else if (auto* fr = obj_at(*vf, "fieldRef")) {
                        std::string path = str_at(*fr, "fieldPath");
                        if (path == "metadata.name")
                            put_env(k, p->name);
                        else if (path == "metadata.namespace")
                            put_env(k, p->ns);
                        else if (path == "metadata.uid")
                            put_env(k, p->uid);
                        else if (path == "spec.nodeName")
                            put_env(k, p->node);
                        else if (path == "status.podIP")
                            put_env(k, p->pod_ip);
                        else if (path == "status.hostIP")
                            put_env(k, p->host_ip);
                    }
                } else {
                    put_env(k, "");
                }
            }
        }
        s.working_dir = str_at(cs, "workingDir");
        s.uid = sc_int(spec, cs, "runAsUser");
        s.gid = sc_int(spec, cs, "runAsGroup");
        if (fs_group)
            s.supplementary_groups.push_back(*fs_group);
        if (auto* vms = arr_at(cs, "volumeMounts")) {
            for (const auto& vm : *vms) {
                const auto& m = vm.as_object();
                auto it = volumes.find(str_at(m, "name"));
                if (it == volumes.end())
                    continue;
                std::string src = it->second.first;
                std::string sub = str_at(m, "subPath");
                if (!sub.empty()) {
                    src += "/" + sub;
                    fs::create_directories(src, ec);
                }
                bool ro = it->second.second;
                if (auto ro_it = m.find("readOnly"); ro_it != m.end() && ro_it->value().is_bool())
                    ro = ro || ro_it->value().get_bool();
                s.mounts.push_back({src, str_at(m, "mountPath"), ro, false});
            }
        }
        if (!(spec.contains("automountServiceAccountToken") &&
              spec.at("automountServiceAccountToken").is_bool() &&
              !spec.at("automountServiceAccountToken").get_bool()))
            s.mounts.push_back({state_dir_ + "/serviceaccount",
                                "/var/run/secrets/kubernetes.io/serviceaccount", true, true});
        c.view.root = s.root;
        c.view.env = s.env;
        c.view.working_dir = s.working_dir;
        c.view.uid = s.uid;
        c.view.gid = s.gid;
        c.view.groups = s.supplementary_groups;
        return s;
    };

    const std::string restart_policy = str_at(spec, "restartPolicy", "Always");

    // Starts one instance of a container (image already "pulled"). On a spawn failure the
    // container is terminated with reason StartError (exit 128).
    auto start = [&](container_rt& c, const json::object& cs) -> bool {
        sandbox_spec s = prepare(c, cs);
        std::string field = std::string(c.init ? "spec.initContainers{" : "spec.containers{") + c.name + "}";
        if (c.instances > 0) {
            // A restart: keep the previous instance's log for `previous=true`.
            ::rename(c.view.log_path.c_str(), (c.view.log_path.substr(0, c.view.log_path.size() - 4) + ".previous.log").c_str());
        }
        if (str_at(cs, "imagePullPolicy") == "Always") {
            event(*p, field, "Normal", "Pulling", "Pulling image \"" + c.image + "\"");
            event(*p, field, "Normal", "Pulled",
                  "Successfully pulled image \"" + c.image + "\" in 1ms (1ms including waiting). Image size: 0 bytes.");
        } else {
            event(*p, field, "Normal", "Pulled", "Container image \"" + c.image + "\" already present on machine");
        }
        event(*p, field, "Normal", "Created", "Created container: " + c.name);
        int log_fd = ::open(c.view.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        int out[2] = {-1, -1};
        if (log_fd >= 0 && ::pipe2(out, O_CLOEXEC) != 0)
            out[0] = out[1] = -1;
        int ready[2] = {-1, -1};
        if (::pipe2(ready, O_CLOEXEC) != 0)
            ready[0] = ready[1] = -1;
        int child_out = out[1] >= 0 ? out[1] : log_fd;
        auto pid = spawn_sandbox(s, spawn_stdio{-1, child_out, child_out, ready[1]});
        if (out[1] >= 0)
            ::close(out[1]);
        auto index = std::make_shared<log_index>();
        if (out[0] >= 0 && pid) {
            c.pump_closing = std::make_shared<std::atomic<bool>>(false);
            c.pump = std::thread(pump_log, out[0], log_fd, index, c.pump_closing);
        } else {
            if (out[0] >= 0)
                ::close(out[0]);
            if (log_fd >= 0)
                ::close(log_fd);
        }
        if (ready[1] >= 0)
            ::close(ready[1]);
        if (ready[0] >= 0) {
            // "running" only once the helper has built the root and exec'd: an exec arriving
            // earlier would enter the host's namespace instead of the container's.
            if (pid) {
                pollfd pfd{ready[0], POLLIN, 0};
                char b;
                while (::poll(&pfd, 1, 10000) > 0 && ::read(ready[0], &b, 1) > 0) {
                }
            }
            ::close(ready[0]);
        }
        std::lock_guard lk(p->mu);
        if (c.instances > 0) {
            ++c.view.restart_count;
            c.view.previous_index = c.view.index;
        }
        c.view.index = index;
        ++c.instances;
        c.started_at = now_rfc3339();
        c.view.waiting_message.clear();
        if (!pid) {
            c.view.st = container_view::state::terminated;
            c.exit_code = 128;
            c.term_reason = "StartError";
            c.term_message = pid.error().message();
            c.finished_at = c.started_at;
            return false;
        }
        c.view.pid = *pid;
        c.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, *pid, 0));
        c.view.st = container_view::state::running;
        c.term_message.clear();
        return true;
    };

    // After an instance ended: restart now, restart after a CrashLoopBackOff delay, or stay
    // terminated. Upstream restarts the first time at once, then waits 10 s doubling up to 5 min;
    // kubesim waits crash_backoff(n) (1 s doubling up to 8 s).
    auto after_exit = [&](container_rt& c, bool stopping) {
        bool restart = !stopping && (c.init ? (c.exit_code != 0 && restart_policy != "Never")
                                            : (restart_policy == "Always" ||
                                               (restart_policy == "OnFailure" && c.exit_code != 0)));
        std::lock_guard lk(p->mu);
        if (!restart) {
            c.pending = false;
            return;
        }
        c.last_state = json::object{{"terminated", json::object{{"exitCode", c.exit_code},
                                                                {"reason", c.term_reason},
                                                                {"startedAt", c.started_at},
                                                                {"finishedAt", c.finished_at},
                                                                {"containerID", "kubesim://" + c.view.pod_uid + "-" + c.name}}}};
        c.pending = true;
        auto delay = crash_backoff(c.crashes++);
        c.next_action = clock_type::now() + delay;
        if (delay.count() > 0) {
            std::string who = "container=" + c.name + " pod=" + p->name + "_" + p->ns + "(" + p->uid + ")";
            c.view.st = container_view::state::waiting;
            c.view.waiting_reason = "CrashLoopBackOff";
            c.view.waiting_message = "back-off " + std::to_string(delay.count() / 1000) + "s restarting failed " + who;
            c.backoff_event = true;
        }
    };

    // Due actions of a pending container: a pull attempt (which fails for unpullable images,
    // alternating ErrImagePull and ImagePullBackOff) or a (re)start.
    auto act = [&](container_rt& c, const json::object& cs) {
        std::string field = std::string(c.init ? "spec.initContainers{" : "spec.containers{") + c.name + "}";
        if (c.pull_fails) {
            bool was_err = false;
            {
                std::lock_guard lk(p->mu);
                was_err = c.view.waiting_reason == "ErrImagePull";
            }
            std::string err = pull_error_message(c.image, c.pull_unauthorized);
            if (!was_err) {
                event(*p, field, "Normal", "Pulling", "Pulling image \"" + c.image + "\"");
                event(*p, field, "Warning", "Failed", "Failed to pull image \"" + c.image + "\": " + err);
                event(*p, field, "Warning", "Failed", "Error: ErrImagePull");
                std::lock_guard lk(p->mu);
                c.view.waiting_reason = "ErrImagePull";
                c.view.waiting_message = err;
                c.next_action = clock_type::now() + std::chrono::seconds(1);
            } else {
                event(*p, field, "Normal", "BackOff", "Back-off pulling image \"" + c.image + "\"");
                event(*p, field, "Warning", "Failed", "Error: ImagePullBackOff");
                std::lock_guard lk(p->mu);
                c.view.waiting_reason = "ImagePullBackOff";
                c.view.waiting_message = "Back-off pulling image \"" + c.image + "\": ErrImagePull: " + err;
                c.next_action = clock_type::now() + pull_backoff(c.pull_attempts++);
            }
            return;
        }
        {
            std::lock_guard lk(p->mu);
            c.pending = false;
        }
        if (start(c, cs))
            event(*p, field, "Normal", "Started", "Started container " + c.name);
        else
            after_exit(c, false);
    };

    // Pod phase from the container states (upstream getPhase): a waiting container without a
    // previous instance keeps the pod Pending; one restarting counts as stopped.
    auto main_phase = [&]() -> std::string {
        std::lock_guard lk(p->mu);
        int waiting = 0, running = 0, stopped = 0, succeeded = 0;
        for (const auto& c : p->containers) {
            switch (c.view.st) {
            case container_view::state::running:
                ++running;
                break;
            case container_view::state::terminated:
                ++stopped;
                succeeded += c.exit_code == 0 ? 1 : 0;
                break;
            case container_view::state::waiting:
                (c.last_state.empty() ? waiting : stopped)++;
                break;
            }
        }
        if (waiting > 0)
            return "Pending";
        if (running > 0)
            return "Running";
        if (restart_policy == "Always")
            return "Running";
        if (stopped == succeeded)
            return "Succeeded";
        return restart_policy == "Never" ? "Failed" : "Running";
    };

    // Runs `set` until every container in it is finished for good (no restart, no pull pending),
    // or until a stop request has killed all of them.
    auto supervise = [&](const std::vector<std::pair<container_rt*, const json::object*>>& set, bool init) {
        bool termed = false, killed = false;
        while (true) {
            bool stop;
            clock_type::time_point deadline;
            std::set<pid_t> execs;
            {
                std::lock_guard lk(p->mu);
                stop = p->stop;
                deadline = p->kill_deadline;
                execs = p->exec_pgids;
            }
            if (!stop) {
                for (const auto& [c, cs] : set) {
                    bool due;
                    {
                        std::lock_guard lk(p->mu);
                        due = c->pending && clock_type::now() >= c->next_action;
                    }
                    if (due) {
                        act(*c, *cs);
                        publish(*p, init ? "Pending" : main_phase());
                    }
                    bool backoff_event;
                    {
                        std::lock_guard lk(p->mu);
                        backoff_event = c->backoff_event;
                        c->backoff_event = false;
                    }
                    if (backoff_event)
                        event(*p, std::string(init ? "spec.initContainers{" : "spec.containers{") + c->name + "}",
                              "Warning", "BackOff",
                              "Back-off restarting failed container " + c->name + " in pod " + p->name + "_" +
                                  p->ns + "(" + p->uid + ")");
                }
            }
            std::vector<container_rt*> live;
            bool pending = false;
            clock_type::time_point next_due = clock_type::time_point::max();
            {
                std::lock_guard lk(p->mu);
                for (const auto& [c, cs] : set) {
                    if (c->view.st == container_view::state::running)
                        live.push_back(c);
                    if (c->pending) {
                        pending = true;
                        next_due = std::min(next_due, c->next_action);
                    }
                }
            }
            if (live.empty() && (stop || !pending))
                return;
            int timeout_ms = -1;
            auto now = clock_type::now();
            if (stop) {
                if (!termed) {
                    for (auto* c : live) {
                        event(*p, std::string(init ? "spec.initContainers{" : "spec.containers{") + c->name + "}",
                              "Normal", "Killing", "Stopping container " + c->name);
                        kill_group(c->view.pid, SIGTERM);
                    }
                    for (pid_t e : execs)
                        kill_group(e, SIGTERM);
                    termed = true;
                }
                if (now >= deadline && !killed) {
                    for (auto* c : live)
                        kill_group(c->view.pid, SIGKILL);
                    for (pid_t e : execs)
                        kill_group(e, SIGKILL);
                    killed = true;
                }
                timeout_ms = killed ? 200
                                    : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                           deadline - now)
                                                           .count()) +
                                          1;
            } else if (pending) {
                timeout_ms = next_due <= now ? 0
                                             : static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                    next_due - now)
                                                                    .count()) +
                                                   1;
            }
            std::vector<pollfd> fds;
            fds.push_back({p->wake_fd, POLLIN, 0});
            for (auto* c : live)
                fds.push_back({c->pidfd, POLLIN, 0});
            ::poll(fds.data(), fds.size(), timeout_ms);
            if (fds[0].revents) {
                std::uint64_t v;
                ssize_t n = ::read(p->wake_fd, &v, sizeof v);
                (void)n;
            }
            bool exited = false;
            for (std::size_t i = 1; i < fds.size(); ++i) {
                if (!fds[i].revents)
                    continue;
                container_rt* c = live[i - 1];
                int status = 0;
                if (::waitpid(c->view.pid, &status, WNOHANG) != c->view.pid)
                    continue;
                // Leftover processes of the container's session die with it; then the log is
                // drained, so a log follow that sees "terminated" has every byte.
                kill_group(c->view.pid, SIGKILL);
                if (c->pump.joinable()) {
                    c->pump_closing->store(true);
                    c->pump.join();
                }
                {
                    std::lock_guard lk(p->mu);
                    if (WIFEXITED(status))
                        c->exit_code = WEXITSTATUS(status);
                    else if (WIFSIGNALED(status))
                        c->exit_code = 128 + WTERMSIG(status);
                    c->term_reason = c->exit_code == 0 ? "Completed" : "Error";
                    c->finished_at = now_rfc3339();
                    c->view.st = container_view::state::terminated;
                    ::close(c->pidfd);
                    c->pidfd = -1;
                    stop = p->stop;
                }
                after_exit(*c, stop);
                exited = true;
            }
            if (exited)
                publish(*p, init ? "Pending" : main_phase());
        }
    };

    auto stopped = [&] {
        std::lock_guard lk(p->mu);
        return p->stop;
    };

    std::string final_phase;
    const json::array* init_specs = arr_at(spec, "initContainers");
    for (std::size_t i = 0; i < p->init_containers.size() && final_phase.empty(); ++i) {
        if (stopped()) {
            final_phase = "Failed";
            break;
        }
        auto& c = p->init_containers[i];
        supervise({{&c, &(*init_specs)[i].as_object()}}, true);
        if (c.view.st != container_view::state::terminated || c.exit_code != 0)
            final_phase = "Failed";
        publish(*p, "Pending");
    }
    if (final_phase.empty() && !stopped()) {
        const json::array* specs = arr_at(spec, "containers");
        std::vector<std::pair<container_rt*, const json::object*>> all;
        for (std::size_t i = 0; i < p->containers.size(); ++i)
            all.emplace_back(&p->containers[i], &(*specs)[i].as_object());
        supervise(all, false);
        bool ok = true;
        for (auto& c : p->containers)
            if (c.view.st != container_view::state::terminated || c.exit_code != 0)
                ok = false;
        final_phase = ok ? "Succeeded" : "Failed";
    } else if (final_phase.empty()) {
        final_phase = "Failed";
    }
    // Exec sessions may still run in a finished pod's namespace; they end with the pod's deletion.
    bool deleting;
    {
        std::lock_guard lk(p->mu);
        deleting = p->deleting;
    }
    if (!deleting) {
        publish(*p, final_phase);
        // Wait for a deletion (or shutdown) so exec processes still get killed with the pod.
        while (true) {
            {
                std::lock_guard lk(p->mu);
                if (p->stop)
                    break;
            }
            pollfd pfd{p->wake_fd, POLLIN, 0};
            ::poll(&pfd, 1, -1);
            std::uint64_t v;
            ssize_t n = ::read(p->wake_fd, &v, sizeof v);
            (void)n;
        }
    }
    std::set<pid_t> execs;
    {
        std::lock_guard lk(p->mu);
        execs = p->exec_pgids;
        deleting = p->deleting;
    }
    for (pid_t e : execs)
        kill_group(e, SIGKILL);
    if (deleting) {
        fs::remove_all(p->dir, ec);
        store_.remove("pods", p->ns, p->name, p->uid);
    }
    std::lock_guard lk(p->mu);
    p->finished = true;
}

std::optional<json::object> kubelet::delete_pod(const std::string& ns, const std::string& name,
                                                std::optional<std::int64_t> grace_seconds) {
    reap_finished();
    auto pod = store_.get("pods", ns, name);
    if (!pod)
        return std::nullopt;
    const auto& spec = pod->at("spec").as_object();
    std::string uid = str_at(pod->at("metadata").as_object(), "uid");
    std::int64_t grace = grace_seconds ? *grace_seconds : int_at(spec, "terminationGracePeriodSeconds", 30);
    std::string phase;
    if (auto* st = obj_at(*pod, "status"))
        phase = str_at(*st, "phase");
    if (str_at(spec, "nodeName").empty() || phase == "Succeeded" || phase == "Failed")
        grace = 0;
    if (grace < 0)
        grace = 0;
    std::shared_ptr<pod_runtime> rt;
    {
        std::lock_guard lk(mu_);
        auto it = pods_.find(uid);
        if (it != pods_.end())
            rt = it->second;
    }
    if (!rt)
        return store_.remove("pods", ns, name, uid);
    if (grace == 0) {
        auto removed = store_.remove("pods", ns, name, uid);
        {
            std::lock_guard lk(rt->mu);
            rt->stop = true;
            rt->deleting = true;
            rt->removed = true;
            rt->kill_deadline = clock_type::now();
        }
        rt->poke();
        return removed ? removed : pod;
    }
    auto updated = store_.update("pods", ns, name, uid, [&](json::object& o) {
        auto& md = o["metadata"].as_object();
        md["deletionTimestamp"] = rfc3339(std::chrono::system_clock::now() + std::chrono::seconds(grace));
        md["deletionGracePeriodSeconds"] = grace;
    });
    {
        std::lock_guard lk(rt->mu);
        if (!rt->stop) {
            rt->stop = true;
            rt->kill_deadline = clock_type::now() + std::chrono::seconds(grace);
        }
        rt->deleting = true;
        rt->removed = true;
    }
    rt->poke();
    return updated ? updated : pod;
}

std::optional<container_view> kubelet::container(const std::string& pod_uid, const std::string& name) {
    std::shared_ptr<pod_runtime> rt;
    {
        std::lock_guard lk(mu_);
        auto it = pods_.find(pod_uid);
        if (it == pods_.end())
            return std::nullopt;
        rt = it->second;
    }
    std::lock_guard lk(rt->mu);
    for (auto* list : {&rt->containers, &rt->init_containers})
        for (const auto& c : *list)
            if (c.name == name)
                return c.view;
    return std::nullopt;
}

bool kubelet::shutting_down() {
    std::lock_guard lk(mu_);
    return shutting_down_;
}

void kubelet::register_exec(const std::string& pod_uid, pid_t pgid) {
    std::lock_guard lk(mu_);
    auto it = pods_.find(pod_uid);
    if (it == pods_.end())
        return;
    std::lock_guard pl(it->second->mu);
    it->second->exec_pgids.insert(pgid);
}

void kubelet::unregister_exec(const std::string& pod_uid, pid_t pgid) {
    std::lock_guard lk(mu_);
    auto it = pods_.find(pod_uid);
    if (it == pods_.end())
        return;
    std::lock_guard pl(it->second->mu);
    it->second->exec_pgids.erase(pgid);
}

void kubelet::reap_finished() {
    std::vector<std::shared_ptr<pod_runtime>> done;
    {
        std::lock_guard lk(mu_);
        for (auto it = pods_.begin(); it != pods_.end();) {
            bool gone;
            {
                std::lock_guard pl(it->second->mu);
                gone = it->second->removed && it->second->finished;
            }
            if (gone) {
                done.push_back(it->second);
                it = pods_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto& p : done)
        if (p->thread.joinable())
            p->thread.join();
}

void kubelet::kill_pod_processes(const std::string& pod_uid) {
    std::shared_ptr<pod_runtime> rt;
    {
        std::lock_guard lk(mu_);
        auto it = pods_.find(pod_uid);
        if (it == pods_.end())
            return;
        rt = it->second;
    }
    std::lock_guard lk(rt->mu);
    for (auto* list : {&rt->init_containers, &rt->containers})
        for (auto& c : *list)
            if (c.view.st == container_view::state::running && c.view.pid > 0)
                ::kill(-c.view.pid, SIGKILL);
    for (pid_t pg : rt->exec_pgids)
        ::kill(-pg, SIGKILL);
}

void kubelet::shutdown(std::chrono::milliseconds grace) {
    std::vector<std::jthread> waiters;
    {
        std::lock_guard lk(mu_);
        shutting_down_ = true;
        waiters.swap(attach_waiters_);
    }
    waiters.clear(); // request_stop + join
    std::map<std::string, std::shared_ptr<pod_runtime>> pods;
    {
        std::lock_guard lk(mu_);
        pods.swap(pods_);
    }
    for (auto& [uid, p] : pods) {
        {
            std::lock_guard lk(p->mu);
            if (!p->stop) {
                p->stop = true;
                p->kill_deadline = clock_type::now() + grace;
            }
        }
        p->poke();
    }
    for (auto& [uid, p] : pods)
        if (p->thread.joinable())
            p->thread.join();
}

} // namespace podpipe::kubesim
