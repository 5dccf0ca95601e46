// The thread that runs one pod, as a kubelet's pod worker does: volumes, then the init
// containers one by one, then the main containers under their restart policy, then the wait for
// the pod's deletion and the teardown. Its stages, top-down:
//   run                 the whole life of the pod
//   prepare_volumes     host directories for the pod's volumes
//   sandbox_for         what one container instance runs: command, environment, mounts
//   supervise           starts due containers, restarts or leaves those that exit, stops all
//                       on a stop request
//   start / act / after_exit / main_phase   one container's steps and the pod's phase
//   wait_for_deletion / tear_down
#include "tools/kubesim/kubelet.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include "tools/kubesim/images.hpp"
#include "tools/kubesim/pod_runtime.hpp"
#include "tools/kubesim/sandbox.hpp"
#include "tools/kubesim/util.hpp"
#include "tools/kubesim/validation.hpp"

namespace podpipe::kubesim {
namespace fs = std::filesystem;

namespace {

// resources.limits of a container (strings like "500m" or bare JSON numbers, as the API
// accepts them); what does not parse is left unenforced (validation answers for it).
container_limits limits_of(const json::object& cs) {
    container_limits l;
    const json::object* res = obj_at(cs, "resources");
    const json::object* lim = res ? obj_at(*res, "limits") : nullptr;
    if (!lim)
        return l;
    auto quantity = [&](const char* key) -> std::optional<double> {
        const json::value* v = lim->if_contains(key);
        if (!v || !(v->is_string() || v->is_number()))
            return std::nullopt;
        auto q = parse_quantity(v->is_string() ? std::string(v->get_string())
                                               : json::serialize(*v),
                                nullptr);
        if (!q)
            return std::nullopt;
        return static_cast<double>(q->value);
    };
    if (auto c = quantity("cpu"); c && *c > 0)
        l.cpus = *c;
    if (auto m = quantity("memory"); m && *m > 0)
        l.memory_bytes = static_cast<std::uint64_t>(std::ceil(*m));
    return l;
}

std::optional<unsigned> sc_int(const json::object& spec, const json::object& ctr, const char* key) {
    for (const json::object* o : {obj_at(ctr, "securityContext"), obj_at(spec, "securityContext")}) {
        if (o && o->contains(key))
            return static_cast<unsigned>(int_at(*o, key, 0));
    }
    return std::nullopt;
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

/// The event field path of a container: spec.containers{NAME} or spec.initContainers{NAME}.
std::string field_of(const container_rt& c) {
    return std::string(c.init ? "spec.initContainers{" : "spec.containers{") + c.name + "}";
}

/// Milliseconds from now until `t` (rounded up, at least 0), for poll().
int ms_until(clock_type::time_point t, clock_type::time_point now) {
    if (t <= now)
        return 0;
    return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(t - now).count()) + 1;
}

} // namespace

class kubelet::pod_worker {
public:
    pod_worker(kubelet& k, std::shared_ptr<pod_runtime> p)
        : k_(k)
        , p_(std::move(p))
        , spec_(p_->pod.at("spec").as_object())
        , restart_policy_(str_at(spec_, "restartPolicy", "Always")) {
        if (auto* sc = obj_at(spec_, "securityContext"); sc && sc->contains("fsGroup"))
            fs_group_ = static_cast<unsigned>(int_at(*sc, "fsGroup", 0));
        std::lock_guard lk(k_.mu_);
        api_host_ = k_.api_host_;
        api_port_ = k_.api_port_;
    }

    void run() {
        std::error_code ec;
        fs::create_directories(p_->dir + "/logs", ec);
        fs::create_directories(p_->dir + "/volumes", ec);
        fs::create_directories(p_->dir + "/roots", ec);
        prepare_volumes();
        const std::string final_phase = run_containers();
        // Exec sessions may still run in a finished pod's namespace; they end with the pod's
        // deletion.
        if (!deleting()) {
            k_.publish(*p_, final_phase);
            wait_for_deletion();
        }
        tear_down();
    }

private:
    using container_set = std::vector<std::pair<container_rt*, const json::object*>>;

    struct volume {
        std::string path;
        bool read_only = false;
    };

    /// Volumes -> host paths.
    void prepare_volumes() {
        std::error_code ec;
        auto* vols = arr_at(spec_, "volumes");
        if (!vols)
            return;
        for (const auto& v : *vols) {
            const auto& vo = v.as_object();
            std::string name = str_at(vo, "name");
            std::string path = p_->dir + "/volumes/" + name;
            if (auto* hp = obj_at(vo, "hostPath")) {
                path = str_at(*hp, "path");
                if (str_at(*hp, "type") == "DirectoryOrCreate")
                    fs::create_directories(path, ec);
            } else if (auto* pvc = obj_at(vo, "persistentVolumeClaim")) {
                // One directory per claim (STATE/claims/<ns>/<claim>); attach rules are applied
                // before the pod starts (attach_conflict).
                // The pod starts only once the claim exists, and claim names are validated
                // DNS-1123 subdomains; checked again here since the name becomes a path.
                const std::string claim = str_at(*pvc, "claimName");
                if (claim.empty() || claim == "." || claim == ".." ||
                    claim.find('/') != std::string::npos)
                    k_.warn_once("claim name \"" + claim + "\" is not a path component: the " +
                                 "volume " + name + " is an empty directory instead");
                else
                    path = k_.state_dir_ + "/claims/" + p_->ns + "/" + claim;
                fs::create_directories(path, ec);
                ::chmod(path.c_str(), 0777);
            } else if (auto* sec = obj_at(vo, "secret")) {
                fs::create_directories(path, ec);
                if (auto s = k_.store_.get("secrets", p_->ns, str_at(*sec, "secretName"))) {
                    if (auto* data = obj_at(*s, "data"))
                        for (const auto& [key, val] : *data)
                            if (val.is_string())
                                std::ofstream(path + "/" + std::string(key), std::ios::binary)
                                    << b64decode(val.get_string());
                }
                volumes_[name] = {path, true};
                continue;
            } else {
                fs::create_directories(path, ec); // emptyDir and anything unsupported
                ::chmod(path.c_str(), 0777);
                if (fs_group_) {
                    int r = ::chown(path.c_str(), static_cast<uid_t>(-1), *fs_group_);
                    (void)r;
                    ::chmod(path.c_str(), 02777);
                }
            }
            volumes_[name] = {path, false};
        }
    }

    /// The argv of a container: its command and args over the image's default command.
    static std::vector<std::string> command_of(const json::object& cs, const image_root& img) {
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
        return cmd;
    }

    /// The value of a downward-API fieldRef; nullopt for a field kubesim does not know.
    std::optional<std::string> field_value(const std::string& path) const {
        if (path == "metadata.name")
            return p_->name;
        if (path == "metadata.namespace")
            return p_->ns;
        if (path == "metadata.uid")
            return p_->uid;
        if (path == "spec.nodeName")
            return p_->node;
        if (path == "status.podIP")
            return p_->pod_ip;
        if (path == "status.hostIP")
            return p_->host_ip;
        return std::nullopt;
    }

    /// A container's environment: HOSTNAME, the API server's service variables, envFrom
    /// secrets, then env (a later name replaces an earlier one).
    std::vector<std::string> environment_of(const json::object& cs) const {
        std::vector<std::string> env;
        env.push_back("HOSTNAME=" + p_->name);
        if (api_port_) {
            env.push_back("KUBERNETES_SERVICE_HOST=" + api_host_);
            env.push_back("KUBERNETES_SERVICE_PORT=" + std::to_string(api_port_));
            env.push_back("KUBERNETES_PORT=tcp://" + api_host_ + ":" + std::to_string(api_port_));
        }
        auto put_env = [&](const std::string& k, const std::string& v) {
            std::string prefix = k + "=";
            for (auto& e : env)
                if (e.rfind(prefix, 0) == 0) {
                    e = prefix + v;
                    return;
                }
            env.push_back(prefix + v);
        };
        if (auto* ef = arr_at(cs, "envFrom")) {
            for (const auto& e : *ef) {
                if (auto* sr = obj_at(e, "secretRef"))
                    if (auto sec = k_.store_.get("secrets", p_->ns, str_at(*sr, "name")))
                        if (auto* data = obj_at(*sec, "data"))
                            for (const auto& [k, val] : *data)
                                if (val.is_string())
                                    put_env(str_at(e.as_object(), "prefix") + std::string(k),
                                            b64decode(val.get_string()));
            }
        }
        if (auto* list = arr_at(cs, "env")) {
            for (const auto& e : *list) {
                const auto& eo = e.as_object();
                std::string k = str_at(eo, "name");
                if (eo.contains("value")) {
                    put_env(k, str_at(eo, "value"));
                } else if (auto* vf = obj_at(eo, "valueFrom")) {
                    if (auto* skr = obj_at(*vf, "secretKeyRef")) {
                        if (auto sec = k_.store_.get("secrets", p_->ns, str_at(*skr, "name")))
                            if (auto* data = obj_at(*sec, "data"))
                                put_env(k, b64decode(str_at(*data, str_at(*skr, "key"))));
                    } else if (auto* fr = obj_at(*vf, "fieldRef")) {
                        if (auto v = field_value(str_at(*fr, "fieldPath")))
                            put_env(k, *v);
                    }
                } else {
                    put_env(k, "");
                }
            }
        }
        return env;
    }

    /// A container's volume mounts (mounts of undeclared volumes are skipped) and the service
    /// account token unless the pod opts out.
    std::vector<mount_spec> mounts_of(const json::object& cs) const {
        std::error_code ec;
        std::vector<mount_spec> mounts;
        if (auto* vms = arr_at(cs, "volumeMounts")) {
            for (const auto& vm : *vms) {
                const auto& m = vm.as_object();
                auto it = volumes_.find(str_at(m, "name"));
                if (it == volumes_.end())
                    continue;
                std::string src = it->second.path;
                std::string sub = str_at(m, "subPath");
                if (!sub.empty()) {
                    src += "/" + sub;
                    fs::create_directories(src, ec);
                }
                bool ro = it->second.read_only;
                if (auto ro_it = m.find("readOnly"); ro_it != m.end() && ro_it->value().is_bool())
                    ro = ro || ro_it->value().get_bool();
                mounts.push_back({src, str_at(m, "mountPath"), ro, false});
            }
        }
        if (!(spec_.contains("automountServiceAccountToken") &&
              spec_.at("automountServiceAccountToken").is_bool() &&
              !spec_.at("automountServiceAccountToken").get_bool()))
            mounts.push_back({k_.state_dir_ + "/serviceaccount",
                              "/var/run/secrets/kubernetes.io/serviceaccount", true, true});
        return mounts;
    }

    /// What one instance of container `c` runs; execs and log requests see the same (c.view).
    sandbox_spec sandbox_for(container_rt& c, const json::object& cs) {
        std::error_code ec;
        sandbox_spec s;
        image_root img = k_.images_.resolve(c.image);
        s.root = p_->dir + "/roots/" + c.name;
        fs::create_directories(s.root, ec);
        s.image_dir = img.dir;
        s.image_skip = img.skip;
        s.argv = command_of(cs, img);
        s.env = environment_of(cs);
        s.working_dir = str_at(cs, "workingDir");
        s.uid = sc_int(spec_, cs, "runAsUser");
        s.gid = sc_int(spec_, cs, "runAsGroup");
        if (fs_group_)
            s.supplementary_groups.push_back(*fs_group_);
        s.mounts = mounts_of(cs);
        s.layer_dir = p_->dir + "/layers/" + c.name;
        fs::create_directories(s.layer_dir, ec);
        if (const json::object* sc = obj_at(cs, "securityContext"))
            if (const json::value* ro = sc->if_contains("readOnlyRootFilesystem"))
                s.read_only_root = ro->is_bool() && ro->get_bool();
        if (!c.cgroup) {
            const container_limits limits = limits_of(cs);
            std::string why;
            c.cgroup = container_cgroup::create(p_->uid, c.name, limits, &why);
            if (!c.cgroup)
                k_.warn_once(limits.any() ? "resource limits are not enforced: " + why
                                          : "no cgroup for containers (" + why +
                                                "): processes that leave their session outlive "
                                                "the container");
        }
        if (c.cgroup) {
            s.cgroup_procs = c.cgroup->procs_files();
            c.oom_kills_seen = c.cgroup->oom_kills();
        }
        c.view.cgroup_procs = s.cgroup_procs;
        c.view.root = s.root;
        c.view.layer_dir = s.layer_dir;
        c.view.env = s.env;
        c.view.working_dir = s.working_dir;
        c.view.uid = s.uid;
        c.view.gid = s.gid;
        c.view.groups = s.supplementary_groups;
        return s;
    }

    /// Starts one instance of a container (image already "pulled"). On a spawn failure the
    /// container is terminated with reason StartError (exit 128).
    bool start(container_rt& c, const json::object& cs) {
        sandbox_spec s = sandbox_for(c, cs);
        const std::string field = field_of(c);
        if (c.instances > 0) {
            // A restart: keep the previous instance's log for `previous=true`.
            ::rename(c.view.log_path.c_str(),
                     (c.view.log_path.substr(0, c.view.log_path.size() - 4) + ".previous.log").c_str());
        }
        if (str_at(cs, "imagePullPolicy") == "Always") {
            k_.event(*p_, field, "Normal", "Pulling", "Pulling image \"" + c.image + "\"");
            k_.event(*p_, field, "Normal", "Pulled",
                     "Successfully pulled image \"" + c.image +
                         "\" in 1ms (1ms including waiting). Image size: 0 bytes.");
        } else {
            k_.event(*p_, field, "Normal", "Pulled",
                     "Container image \"" + c.image + "\" already present on machine");
        }
        k_.event(*p_, field, "Normal", "Created", "Created container: " + c.name);
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
        std::lock_guard lk(p_->mu);
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
    }

    /// After an instance ended: restart now, restart after a CrashLoopBackOff delay, or stay
    /// terminated. Upstream restarts the first time at once, then waits 10 s doubling up to
    /// 5 min; kubesim waits crash_backoff(n) (1 s doubling up to 8 s).
    void after_exit(container_rt& c, bool stopping) {
        bool spec_restart;
        {
            std::lock_guard lk(p_->mu);
            spec_restart = c.spec_restart;
            c.spec_restart = false;
        }
        // A container killed because its image changed restarts whatever the policy says
        // (computePodActions: "Restart regardless of the restart policy because the container
        // spec changed").
        bool restart = !stopping &&
                       (spec_restart ||
                        (c.init ? (c.exit_code != 0 && restart_policy_ != "Never")
                                : (restart_policy_ == "Always" ||
                                   (restart_policy_ == "OnFailure" && c.exit_code != 0))));
        if (restart && spec_restart) {
            {
                std::lock_guard lk(p_->mu);
                c.image = c.next_image;
            }
            k_.resolve_pull(p_->ns, spec_, c);
            c.pull_attempts = 0;
        }
        std::lock_guard lk(p_->mu);
        c.next_image.clear();
        if (!restart) {
            c.pending = false;
            return;
        }
        c.last_state = json::object{
            {"terminated", json::object{{"exitCode", c.exit_code},
                                        {"reason", c.term_reason},
                                        {"startedAt", c.started_at},
                                        {"finishedAt", c.finished_at},
                                        {"containerID", "kubesim://" + c.view.pod_uid + "-" + c.name}}}};
        c.pending = true;
        // The new image's instance starts at once: the back-off is kept per container hash
        // (GetStableKey), and the hash changed with the image.
        auto delay = spec_restart ? std::chrono::milliseconds(0) : crash_backoff(c.crashes++);
        c.next_action = clock_type::now() + delay;
        if (delay.count() > 0) {
            std::string who = "container=" + c.name + " pod=" + p_->name + "_" + p_->ns + "(" + p_->uid + ")";
            c.view.st = container_view::state::waiting;
            c.view.waiting_reason = "CrashLoopBackOff";
            c.view.waiting_message =
                "back-off " + std::to_string(delay.count() / 1000) + "s restarting failed " + who;
            c.backoff_event = true;
        }
    }

    /// A pull attempt of an image that cannot be pulled: ErrImagePull and ImagePullBackOff in
    /// turn, with their events.
    void fail_pull(container_rt& c) {
        const std::string field = field_of(c);
        bool was_err = false;
        {
            std::lock_guard lk(p_->mu);
            was_err = c.view.waiting_reason == "ErrImagePull";
        }
        std::string err = pull_error_message(c.image, c.pull_unauthorized);
        if (!was_err) {
            k_.event(*p_, field, "Normal", "Pulling", "Pulling image \"" + c.image + "\"");
            k_.event(*p_, field, "Warning", "Failed", "Failed to pull image \"" + c.image + "\": " + err);
            k_.event(*p_, field, "Warning", "Failed", "Error: ErrImagePull");
            std::lock_guard lk(p_->mu);
            c.view.waiting_reason = "ErrImagePull";
            c.view.waiting_message = err;
            c.next_action = clock_type::now() + std::chrono::seconds(1);
        } else {
            k_.event(*p_, field, "Normal", "BackOff", "Back-off pulling image \"" + c.image + "\"");
            k_.event(*p_, field, "Warning", "Failed", "Error: ImagePullBackOff");
            std::lock_guard lk(p_->mu);
            c.view.waiting_reason = "ImagePullBackOff";
            c.view.waiting_message = "Back-off pulling image \"" + c.image + "\": ErrImagePull: " + err;
            c.next_action = clock_type::now() + pull_backoff(c.pull_attempts++);
        }
    }

    /// The due action of a pending container: a pull attempt or a (re)start.
    void act(container_rt& c, const json::object& cs) {
        if (c.pull_fails) {
            fail_pull(c);
            return;
        }
        {
            std::lock_guard lk(p_->mu);
            c.pending = false;
        }
        if (start(c, cs))
            k_.event(*p_, field_of(c), "Normal", "Started", "Started container " + c.name);
        else
            after_exit(c, false);
    }

    /// Pod phase from the container states (upstream getPhase): a waiting container without a
    /// previous instance keeps the pod Pending; one restarting counts as stopped.
    std::string main_phase() {
        std::lock_guard lk(p_->mu);
        int waiting = 0, running = 0, stopped = 0, succeeded = 0;
        for (const auto& c : p_->containers) {
            switch (c.view.st) {
            case container_view::state::running:
                ++running;
                break;
            case container_view::state::terminated:
                if (c.pending) { // restarting at once (the same phase as a running one)
                    ++running;
                    break;
                }
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
        if (restart_policy_ == "Always")
            return "Running";
        if (stopped == succeeded)
            return "Succeeded";
        return restart_policy_ == "Never" ? "Failed" : "Running";
    }

    std::string phase_of(bool init) { return init ? "Pending" : main_phase(); }

    /// Image changes a PUT/PATCH stored (kubelet::pod_updated), as the kubelet's
    /// computePodActions sees a changed container hash: a running main container is killed
    /// (SIGTERM, SIGKILL after the grace period) and restarts with the new image
    /// (after_exit); a container waiting to start, to pull or in CrashLoopBackOff takes the
    /// new image at once. A running init container (not restartable), or a terminated
    /// container that will not restart, keeps its image.
    void apply_image_updates() {
        std::map<std::string, std::string> desired;
        {
            std::lock_guard lk(p_->mu);
            desired.swap(p_->desired_images);
        }
        if (desired.empty())
            return;
        const auto now = clock_type::now();
        const auto grace = std::chrono::seconds(
            std::max<std::int64_t>(0, int_at(spec_, "terminationGracePeriodSeconds", 30)));
        for (auto* list : {&p_->init_containers, &p_->containers}) {
            for (container_rt& c : *list) {
                auto it = desired.find(c.name);
                if (it == desired.end() || it->second.empty())
                    continue;
                bool kill = false, repull = false;
                {
                    std::lock_guard lk(p_->mu);
                    const std::string& current = c.spec_restart ? c.next_image : c.image;
                    if (it->second == current)
                        continue;
                    switch (c.view.st) {
                    case container_view::state::running:
                        if (c.init)
                            break;
                        c.next_image = it->second;
                        if (!c.spec_restart) {
                            c.spec_restart = true;
                            c.kill_at = now + grace;
                            kill = true;
                        }
                        break;
                    case container_view::state::waiting:
                    case container_view::state::terminated:
                        if (c.view.st == container_view::state::terminated && !c.pending)
                            break;
                        c.image = it->second;
                        repull = true;
                        if (c.pending)
                            c.next_action = now;
                        break;
                    }
                }
                if (repull) {
                    k_.resolve_pull(p_->ns, spec_, c);
                    c.pull_attempts = 0;
                }
                if (kill) {
                    k_.event(*p_, field_of(c), "Normal", "Killing",
                             "Container " + c.name + " definition changed, will be restarted");
                    kill_group(c.view.pid, SIGTERM);
                }
            }
        }
    }

    /// Acts on the containers of `set` whose action is due, and records a BackOff event for
    /// each that began a CrashLoopBackOff.
    void act_on_due(const container_set& set, bool init) {
        for (const auto& [c, cs] : set) {
            bool due;
            {
                std::lock_guard lk(p_->mu);
                due = c->pending && clock_type::now() >= c->next_action;
            }
            if (due) {
                act(*c, *cs);
                k_.publish(*p_, phase_of(init));
            }
            bool backoff_event;
            {
                std::lock_guard lk(p_->mu);
                backoff_event = c->backoff_event;
                c->backoff_event = false;
            }
            if (backoff_event)
                k_.event(*p_, field_of(*c), "Warning", "BackOff",
                         "Back-off restarting failed container " + c->name + " in pod " + p_->name +
                             "_" + p_->ns + "(" + p_->uid + ")");
        }
    }

    /// Collects the exit of each container of `live` whose pidfd fired (`fired[i]`): its
    /// leftover processes die, its log is drained, then restart or not. True when any exited.
    bool reap(const std::vector<container_rt*>& live, const std::vector<bool>& fired) {
        bool exited = false;
        for (std::size_t i = 0; i < live.size(); ++i) {
            if (!fired[i])
                continue;
            container_rt* c = live[i];
            int status = 0;
            if (::waitpid(c->view.pid, &status, WNOHANG) != c->view.pid)
                continue;
            // Leftover processes of the container die with it (its session, and whatever left
            // it but not the cgroup); then the log is drained, so a log follow that sees
            // "terminated" has every byte.
            kill_group(c->view.pid, SIGKILL);
            if (c->cgroup)
                c->cgroup->kill_all();
            if (c->pump.joinable()) {
                c->pump_closing->store(true);
                c->pump.join();
            }
            bool stop;
            {
                std::lock_guard lk(p_->mu);
                if (WIFEXITED(status))
                    c->exit_code = WEXITSTATUS(status);
                else if (WIFSIGNALED(status))
                    c->exit_code = 128 + WTERMSIG(status);
                c->term_reason = c->exit_code == 0 ? "Completed" : "Error";
                // The kernel's OOM killer in the container's memory cgroup: the runtime
                // reports OOMKilled (exit 137), and so does the kubelet.
                if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && c->cgroup &&
                    c->cgroup->oom_kills() > c->oom_kills_seen)
                    c->term_reason = "OOMKilled";
                c->finished_at = now_rfc3339();
                c->view.st = container_view::state::terminated;
                ::close(c->pidfd);
                c->pidfd = -1;
                stop = p_->stop;
            }
            after_exit(*c, stop);
            exited = true;
        }
        return exited;
    }

    /// Runs `set` until every container in it is finished for good (no restart, no pull
    /// pending), or until a stop request has killed all of them: SIGTERM to the containers and
    /// the pod's execs at once, SIGKILL at the pod's kill deadline.
    void supervise(const container_set& set, bool init) {
        bool termed = false, killed = false;
        while (true) {
            bool stop;
            clock_type::time_point deadline;
            std::set<pid_t> execs;
            {
                std::lock_guard lk(p_->mu);
                stop = p_->stop;
                deadline = p_->kill_deadline;
                execs = p_->exec_pgids;
            }
            if (!stop) {
                apply_image_updates();
                act_on_due(set, init);
            }
            std::vector<container_rt*> live;
            bool pending = false;
            clock_type::time_point next_due = clock_type::time_point::max();
            {
                std::lock_guard lk(p_->mu);
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
            const auto now = clock_type::now();
            if (stop) {
                if (!termed) {
                    for (auto* c : live) {
                        k_.event(*p_, field_of(*c), "Normal", "Killing", "Stopping container " + c->name);
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
                timeout_ms = killed ? 200 : ms_until(deadline, now);
            } else {
                // Containers killed for an image change: SIGKILL once their grace ends.
                clock_type::time_point kill_due = clock_type::time_point::max();
                {
                    std::lock_guard lk(p_->mu);
                    for (auto* c : live) {
                        if (!c->spec_restart)
                            continue;
                        if (now >= c->kill_at) {
                            kill_group(c->view.pid, SIGKILL);
                            c->kill_at = clock_type::time_point::max();
                        }
                        kill_due = std::min(kill_due, c->kill_at);
                    }
                }
                if (pending)
                    next_due = std::min(next_due, kill_due);
                else
                    next_due = kill_due;
                if (next_due != clock_type::time_point::max())
                    timeout_ms = ms_until(next_due, now);
            }
            std::vector<pollfd> fds;
            fds.push_back({p_->wake_fd, POLLIN, 0});
            for (auto* c : live)
                fds.push_back({c->pidfd, POLLIN, 0});
            ::poll(fds.data(), fds.size(), timeout_ms);
            if (fds[0].revents)
                drain_wake_fd();
            std::vector<bool> fired(live.size());
            for (std::size_t i = 0; i < live.size(); ++i)
                fired[i] = fds[i + 1].revents != 0;
            if (reap(live, fired))
                k_.publish(*p_, phase_of(init));
        }
    }

    bool stopped() {
        std::lock_guard lk(p_->mu);
        return p_->stop;
    }

    bool deleting() {
        std::lock_guard lk(p_->mu);
        return p_->deleting;
    }

    /// Init containers one by one, then all main containers: the pod's final phase.
    std::string run_containers() {
        const json::array* init_specs = arr_at(spec_, "initContainers");
        for (std::size_t i = 0; i < p_->init_containers.size(); ++i) {
            if (stopped())
                return "Failed";
            auto& c = p_->init_containers[i];
            supervise({{&c, &(*init_specs)[i].as_object()}}, true);
            const bool failed = c.view.st != container_view::state::terminated || c.exit_code != 0;
            k_.publish(*p_, "Pending");
            if (failed)
                return "Failed";
        }
        if (stopped())
            return "Failed";
        const json::array* specs = arr_at(spec_, "containers");
        container_set all;
        for (std::size_t i = 0; i < p_->containers.size(); ++i)
            all.emplace_back(&p_->containers[i], &(*specs)[i].as_object());
        supervise(all, false);
        for (auto& c : p_->containers)
            if (c.view.st != container_view::state::terminated || c.exit_code != 0)
                return "Failed";
        return "Succeeded";
    }

    void drain_wake_fd() {
        std::uint64_t v;
        ssize_t n = ::read(p_->wake_fd, &v, sizeof v);
        (void)n;
    }

    /// Waits for a deletion (or shutdown), so exec processes still get killed with the pod.
    void wait_for_deletion() {
        while (!stopped()) {
            pollfd pfd{p_->wake_fd, POLLIN, 0};
            ::poll(&pfd, 1, -1);
            drain_wake_fd();
        }
    }

    /// Kills what still runs in the pod (execs) and, for a deletion, removes its directory and
    /// its object.
    /// A cgroup goes once its last process has: the killed execs may take a moment to exit.
    void remove_cgroups() {
        for (auto* list : {&p_->init_containers, &p_->containers})
            for (container_rt& c : *list) {
                if (!c.cgroup)
                    continue;
                for (int attempt = 0; attempt < 100 && !c.cgroup->remove(); ++attempt)
                    std::this_thread::sleep_for(std::chrono::milliseconds(20));
                c.cgroup.reset();
            }
    }

    void tear_down() {
        std::set<pid_t> execs;
        bool deleting;
        {
            std::lock_guard lk(p_->mu);
            execs = p_->exec_pgids;
            deleting = p_->deleting;
        }
        for (pid_t e : execs)
            kill_group(e, SIGKILL);
        for (auto* list : {&p_->init_containers, &p_->containers})
            for (container_rt& c : *list)
                if (c.cgroup)
                    c.cgroup->kill_all(); // execs that left their process group, too
        remove_cgroups();
        if (deleting) {
            std::error_code ec;
            fs::remove_all(p_->dir, ec);
            k_.store_.remove("pods", p_->ns, p_->name, p_->uid);
        }
        std::lock_guard lk(p_->mu);
        p_->finished = true;
    }

    kubelet& k_;
    std::shared_ptr<pod_runtime> p_;
    const json::object spec_;
    const std::string restart_policy_;
    std::optional<unsigned> fs_group_;
    std::string api_host_;
    int api_port_ = 0;
    std::map<std::string, volume> volumes_; // by name
};

void kubelet::run_pod(const std::shared_ptr<pod_runtime>& p) { pod_worker(*this, p).run(); }

} // namespace podpipe::kubesim
