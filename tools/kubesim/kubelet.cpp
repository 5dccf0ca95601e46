#include "tools/kubesim/kubelet.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/magic.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <cstdio>
#include <cstring>
#include <set>
#include <thread>

#include "tools/kubesim/pod_runtime.hpp"
#include "tools/kubesim/sandbox.hpp"
#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {
namespace fs = std::filesystem;

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

void kubelet::warn_once(const std::string& text) {
    static std::mutex mu;
    static std::set<std::string> said;
    std::lock_guard lk(mu);
    if (said.insert(text).second)
        std::fprintf(stderr, "kubesim: warning: %s\n", text.c_str());
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
    if (!unschedulable)
        retry_unscheduled("");
    return true;
}

void kubelet::retry_unscheduled(const std::string& ns) {
    std::uint64_t rv = 0;
    for (const auto& p : store_.list("pods", ns, rv)) {
        const auto& meta = p.at("metadata").as_object();
        const auto* spec = obj_at(p, "spec");
        if (!spec || !str_at(*spec, "nodeName").empty() || obj_at(meta, "deletionTimestamp"))
            continue;
        pod_created(str_at(meta, "namespace"), str_at(meta, "name"));
    }
}

void kubelet::claim_created(const std::string& ns) {
    retry_unscheduled(ns);
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
        schedule_decision d;
        if (std::string claim = missing_claim(ns, *pod); !claim.empty()) {
            // The VolumeBinding plugin's PreFilter rejects the pod on every node
            // (UnschedulableAndUnresolvable), so preemption cannot help either.
            const std::string n = std::to_string(nodes.size());
            d.message = "0/" + n + " nodes are available: persistentvolumeclaim \"" + claim +
                        "\" not found. preemption: 0/" + n + " nodes are available: " + n +
                        " Preemption is not helpful for scheduling.";
        } else {
            d = schedule_pod(spec, nodes, counts, attached_node(ns, *pod));
        }
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
    if (start_block block = start_blocked(ns, *pod, node); !block.reason.empty()) {
        wait_to_start(ns, name, uid, node, block);
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

std::string kubelet::missing_claim(const std::string& ns, const json::object& pod) {
    for (const auto& claim : claims_of(pod))
        if (!store_.get("persistentvolumeclaims", ns, claim))
            return claim;
    return "";
}

kubelet::start_block kubelet::start_blocked(const std::string& ns, const json::object& pod,
                                            const std::string& node) {
    if (std::string claim = missing_claim(ns, pod); !claim.empty()) {
        // A pod bound to a node by its creator skips the scheduler's check; the kubelet's volume
        // manager then cannot find the claim and retries until it appears.
        std::string volume;
        if (const auto* spec = obj_at(pod, "spec"))
            if (const auto* vols = arr_at(*spec, "volumes"))
                for (const auto& v : *vols)
                    if (const auto* pvc = obj_at(v.as_object(), "persistentVolumeClaim"))
                        if (str_at(*pvc, "claimName") == claim && volume.empty())
                            volume = str_at(v.as_object(), "name");
        return {"FailedMount",
                "Unable to attach or mount volumes: unmounted volumes=[" + volume +
                    "], unattached volumes=[" + volume + "], failed to process volumes=[" + volume +
                    "]: error processing PVC " + ns + "/" + claim +
                    ": failed to fetch PVC from API server: persistentvolumeclaims \"" + claim +
                    "\" not found"};
    }
    if (std::string conflict = attach_conflict(ns, pod, node); !conflict.empty())
        return {"FailedAttachVolume", conflict};
    return {};
}

void kubelet::wait_to_start(const std::string& ns, const std::string& name,
                            const std::string& uid, const std::string& node,
                            const start_block& block) {
    const std::string& message = block.message;
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
        st["conditions"] = json::array{
            condition("PodScheduled", true),
            condition("PodReadyToStartContainers", false, block.reason, message)};
        st["message"] = message;
        st["reason"] = block.reason;
    });
    if (updated && events_)
        events_->record(involved(*updated), "Warning", block.reason, message,
                        block.reason == "FailedMount" ? "kubelet" : "attachdetach-controller");
    std::lock_guard lk(mu_);
    if (shutting_down_)
        return;
    attach_waiters_.emplace_back([this, ns, name, uid, node, block](std::stop_token stop) {
        while (!stop.stop_requested()) {
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
            auto pod = store_.get("pods", ns, name);
            if (!pod || str_at(pod->at("metadata").as_object(), "uid") != uid ||
                obj_at(pod->at("metadata").as_object(), "deletionTimestamp"))
                return;
            if (start_block now = start_blocked(ns, *pod, node); !now.reason.empty()) {
                if (now.reason != block.reason) { // e.g. the claim appeared, held by another node
                    wait_to_start(ns, name, uid, node, now);
                    return;
                }
                continue;
            }
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

void kubelet::resolve_pull(const std::string& ns, const json::object& spec, container_rt& c) {
    const image_root root = images_.resolve(c.image);
    c.pull_fails = root.pull_fails;
    c.pull_unauthorized = false;
    if (c.pull_fails || !root.needs_auth())
        return;
    // A private image: one of the pod's imagePullSecrets must carry its credentials (read when
    // the pod is admitted or its image changes; the kubelet re-reads them per pull).
    bool allowed = false;
    if (const auto* refs = arr_at(spec, "imagePullSecrets"))
        for (const auto& ref : *refs) {
            if (!ref.is_object())
                continue;
            auto sec = store_.get("secrets", ns, str_at(ref.as_object(), "name"));
            if (!sec || str_at(*sec, "type") != "kubernetes.io/dockerconfigjson")
                continue;
            const auto* data = obj_at(*sec, "data");
            const auto* cfg = data ? data->if_contains(".dockerconfigjson") : nullptr;
            if (cfg && cfg->is_string() &&
                docker_config_allows(b64decode(cfg->get_string()), c.image, root.auth_username,
                                     root.auth_password))
                allowed = true;
        }
    c.pull_fails = c.pull_unauthorized = !allowed;
}

void kubelet::pod_updated(const std::string& ns, const std::string& name) {
    auto pod = store_.get("pods", ns, name);
    if (!pod)
        return;
    std::shared_ptr<pod_runtime> rt;
    {
        std::lock_guard lk(mu_);
        auto it = pods_.find(str_at(pod->at("metadata").as_object(), "uid"));
        if (it == pods_.end())
            return;
        rt = it->second;
    }
    const json::object* spec = obj_at(*pod, "spec");
    if (!spec)
        return;
    bool changed = false;
    {
        std::lock_guard lk(rt->mu);
        for (const char* key : {"initContainers", "containers"}) {
            const json::array* specs = arr_at(*spec, key);
            if (!specs)
                continue;
            for (const auto& cs : *specs) {
                if (!cs.is_object())
                    continue;
                const std::string cname = str_at(cs.as_object(), "name");
                const std::string image = str_at(cs.as_object(), "image");
                rt->desired_images[cname] = image;
                changed = true;
            }
        }
    }
    if (changed)
        rt->poke();
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
            resolve_pull(ns, spec, rt);
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

namespace {

// In a child of fork(): only system calls from here to _exit. Remounts the tmpfs at `path` (in
// the current mount namespace) with size = used + free_bytes; 0 or an errno.
int shrink_tmpfs(const char* path, std::uint64_t free_bytes) {
    struct statfs st{};
    if (::statfs(path, &st) != 0)
        return errno;
    if (st.f_type != TMPFS_MAGIC)
        return 0; // not a tmpfs (an overlay that could not be set up): nothing to limit
    if ((st.f_flags & ST_RDONLY) != 0)
        return 0; // readOnlyRootFilesystem: nothing to write; a remount would make it writable
    const std::uint64_t bs = static_cast<std::uint64_t>(st.f_bsize);
    const std::uint64_t used = (static_cast<std::uint64_t>(st.f_blocks) - st.f_bfree) * bs;
    const std::uint64_t size = std::max<std::uint64_t>(used + free_bytes, bs);
    char data[40] = "size=";
    char digits[24];
    int n = 0;
    for (std::uint64_t v = size; v > 0 || n == 0; v /= 10)
        digits[n++] = static_cast<char>('0' + v % 10);
    for (int i = 0; i < n; ++i)
        data[5 + i] = digits[n - 1 - i];
    data[5 + n] = 0;
    if (::mount(nullptr, path, nullptr, MS_REMOUNT, data) != 0)
        return errno;
    return 0;
}

} // namespace

std::string kubelet::limit_storage(const std::string& pod_uid, std::uint64_t free_bytes) {
    std::vector<container_view> views;
    {
        std::shared_ptr<pod_runtime> rt;
        {
            std::lock_guard lk(mu_);
            auto it = pods_.find(pod_uid);
            if (it == pods_.end())
                return "the pod has no running containers";
            rt = it->second;
        }
        std::lock_guard lk(rt->mu);
        for (auto* list : {&rt->init_containers, &rt->containers})
            for (auto& c : *list)
                if (c.view.st == container_view::state::running && c.view.pid > 0)
                    views.push_back(c.view);
    }
    if (views.empty())
        return "the pod has no running containers";
    for (const auto& v : views) {
        // setns(CLONE_NEWNS) is refused to a multi-threaded process: a child does it.
        const std::string ns = "/proc/" + std::to_string(v.pid) + "/ns/mnt";
        const int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return "open " + ns + ": " + std::strerror(errno);
        const std::string root = v.root, layer = v.layer_dir;
        const pid_t child = ::fork();
        if (child == 0) {
            if (::setns(fd, CLONE_NEWNS) != 0)
                ::_exit(errno);
            int err = shrink_tmpfs(root.c_str(), free_bytes);
            if (err == 0 && !layer.empty())
                err = shrink_tmpfs(layer.c_str(), free_bytes);
            ::_exit(err);
        }
        ::close(fd);
        if (child < 0)
            return std::string("fork: ") + std::strerror(errno);
        int status = 0;
        while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return "remount of " + v.root + " failed: " +
                   std::strerror(WIFEXITED(status) ? WEXITSTATUS(status) : EIO);
    }
    return "";
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
