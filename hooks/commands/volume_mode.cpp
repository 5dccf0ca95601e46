#include "hooks/commands/volume_mode.hpp"

#include "hooks/commands/prepare_job.hpp"

#include "engine/io/snapshot.hpp"
#include "engine/io/tree_reader.hpp"
#include "engine/pipeline/copy_tree.hpp"
#include "hooks/commands/cleanup_job.hpp"
#include "hooks/commands/exec_step.hpp"
#include "hooks/commands/file_commands.hpp"
#include "hooks/commands/log_resume.hpp"
#include "hooks/commands/pod_wait.hpp"
#include "hooks/commands/scripts.hpp"
#include "hooks/commands/step_pull_secret.hpp"
#include "kube/client.hpp"
#include "kube/pod_spec.hpp"
#include "kube/template.hpp"
#include "kube/volume_spec.hpp"
#include "kube/wait.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

namespace podpipe::hook {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

std::chrono::milliseconds prepare_timeout(const hook_session& s) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(s.env.prepare_job_timeout);
}

std::string seconds_text(std::chrono::milliseconds d) {
    return std::to_string(std::chrono::ceil<std::chrono::seconds>(d).count()) + " s"; // 29.98 s left → "30 s"
}

} // namespace

void hand_the_claim_back(hook_session& s, const job_state& state) {
    if (state.job_pod.empty())
        return;
    kube::exec_options o;
    o.ns = s.ns;
    o.pod = state.job_pod;
    o.container = std::string(kube::job_container_name);
    // Symlinks are changed, never followed (-h; chmod -R skips them in both GNU and busybox).
    o.command = {"sh", "-c",
                 "r=0; if [ \"$(id -u)\" = 0 ]; then chown -hR \"$1\" /__w || r=1; fi; "
                 "chmod -R u+rwX /__w || r=1; exit $r",
                 "podpipe-hand-back",
                 std::to_string(::getuid()) + ":" + std::to_string(::getgid())};
    kube::exec_session_options so;
    so.stop = s.stop;
    const std::string what = "the files the job left on the work volume may not all be "
                             "removable by the runner's user: ";
    // chown and chmod to fixed values: running them twice (a session that broke after they
    // ran) gives the same tree, so a broken session is tried again as one that did not open.
    std::string tail;
    auto code = exec_retried(s.client, o, so,
                             one_shot_retry(s, "handing /__w of pod " + state.job_pod + " back",
                                            true),
                             [&tail](kube::exec_session& x) -> result<int, kube::api_error> {
                                 auto c = x.wait();
                                 tail = x.stderr_tail();
                                 return c;
                             });
    if (!code)
        s.log.warning(what + code.error().what());
    else if (*code != 0)
        s.log.warning(what + "exit " + std::to_string(*code) + ": " + tail);
    else
        s.log.debug("the files the job left on the work volume belong to " + o.command.back() +
                    " and are writable by them");
}

namespace {

void prune(hook_session& s) {
    auto done = cleanup_job(s.client, s.ns, s.env.runner_pod_name, rest_retry_of(s));
    if (!done)
        s.log.warning("could not remove the job's pods and secrets: " + done.error().what());
}

// Old PVC releases pinned pods with spec.nodeName unless told otherwise; their knobs do nothing
// here, and an operator who still sets them expects something they will not get.
void warn_about_old_scheduler_knobs(hook_session& s) {
    for (const auto& var : s.env.old_scheduler_knobs) {
        s.log.warning(var + " is ignored: podpipe never sets spec.nodeName, pods are "
                                         "placed by the scheduler with node affinity to the "
                                         "runner's node. Remove it; for a ReadWriteOnce work "
                                         "volume set ACTIONS_RUNNER_HOOK_RWO=true instead.");
    }
}

// What the pods of this job share: claim, runner node, affinity strength.
struct volume_context {
    kube::volume_pod_options pod;
    bool template_affinity = false; ///< the template's spec.affinity replaced ours
    std::string claim_modes;        ///< "ReadWriteOnce", ... when the claim could be read
};

// `deadline`: one prepare timeout covers the whole start (runner node, then the pod).
result<volume_context, hook_error> make_context(hook_session& s, const kube::pod_template_extension* tmpl,
                                                clock_type::time_point deadline) {
    volume_context c;
    c.pod.claim_name = s.env.claim_name;
    c.pod.rwo = s.env.rwo;
    auto node = runner_node_name(s, std::max(std::chrono::milliseconds(0),
                                             std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 deadline - clock_type::now())));
    if (!node)
        return fail(node.error());
    c.pod.node_name = *node;
    c.template_affinity = tmpl != nullptr && tmpl->spec.affinity.has_value();
    // Reading the claim is not part of the reference's permissions, so a denial only costs the
    // early warning; a missing claim is certain to fail later, so it fails now.
    if (auto claim = s.client.get_pvc(s.ns, c.pod.claim_name); claim) {
        for (const auto& m : claim->access_modes)
            c.claim_modes += (c.claim_modes.empty() ? "" : ",") + m;
        const bool single_node = std::any_of(claim->access_modes.begin(), claim->access_modes.end(), [](const std::string& m) {
            return m == "ReadWriteOnce" || m == "ReadWriteOncePod";
        });
        const bool many = std::any_of(claim->access_modes.begin(), claim->access_modes.end(), [](const std::string& m) {
            return m == "ReadWriteMany";
        });
        if (single_node && !many && !c.pod.rwo)
            s.log.warning("the work volume claim " + c.pod.claim_name + " is " + c.claim_modes +
                          " but ACTIONS_RUNNER_HOOK_RWO is not \"true\": job pods only prefer the "
                          "runner's node " + c.pod.node_name + " and fail with Multi-Attach "
                          "wherever else they land. Set ACTIONS_RUNNER_HOOK_RWO=true or use a "
                          "ReadWriteMany claim.");
    } else if (claim.error().is(kube::errc::not_found)) {
        return fail(make_error(errc::job_pod,
                               "the work volume claim " + s.ns + "/" + c.pod.claim_name +
                                   " does not exist: set ACTIONS_RUNNER_CLAIM_NAME to the claim "
                                   "mounted at the runner's work directory (default <runner "
                                   "pod>-work)"));
    } else {
        s.log.debug("could not read the claim " + c.pod.claim_name + " (" + claim.error().what() +
                    "); continuing without its access modes");
    }
    return c;
}

void log_placement(hook_session& s, const volume_context& c, const std::string& what) {
    if (c.template_affinity)
        s.log.debug("the template's spec.affinity replaces podpipe's node affinity for " + what +
                    " (runner node " + c.pod.node_name + ", claim " + c.pod.claim_name + ")");
    else
        s.log.debug(what + ": claim " + c.pod.claim_name + ", node affinity " +
                    (c.pod.rwo ? "required" : "preferred") + " to the runner's node " + c.pod.node_name);
}

// The operator's next move for a pod that does not start.
std::string placement_advice(const volume_context& c, const std::string& why) {
    const std::string node = c.pod.node_name;
    if (why.empty())
        return {};
    if (why.find("Multi-Attach") != std::string::npos)
        return "the work volume claim " + c.pod.claim_name + " can be attached to one node only "
               "and is in use on the runner's node " + node + ", but the pod was placed on "
               "another node. Set ACTIONS_RUNNER_HOOK_RWO=true so pods must run on the runner's "
               "node, or give the runner a ReadWriteMany claim";
    if (why.find("ImagePull") != std::string::npos || why.find("ErrImage") != std::string::npos)
        return "check the image name, that the registry is reachable from the nodes, and its "
               "credentials";
    if (why.find("not scheduled") == std::string::npos)
        return "the reason above comes from the kubelet (kubectl describe pod shows its events)";
    if (c.template_affinity)
        return "the template's spec.affinity replaced podpipe's affinity to the runner's node " + node +
               "; check that it allows a node that can mount the claim " + c.pod.claim_name;
    if (c.pod.rwo)
        return "ACTIONS_RUNNER_HOOK_RWO=true requires the runner's node " + node +
               ", which cannot take the pod: uncordon it or free capacity there (CPU, memory, "
               "pods), or use a ReadWriteMany claim without ACTIONS_RUNNER_HOOK_RWO so pods may "
               "run on other nodes";
    return "no node can take the pod; check the cluster's capacity, taints and the template's "
           "nodeSelector/tolerations";
}

// Waits until the pod runs (or, with `accept_finished`, has already run to completion). Unlike
// wait_for_running, a Multi-Attach caused by the runner pod itself fails at once: the runner
// holds the claim for the whole job, so it will never clear.
result<kube::pod, hook_error> wait_volume_pod(hook_session& s, const std::string& name,
                                             const volume_context& c, bool accept_finished,
                                             clock_type::time_point deadline) {
    const auto timeout = prepare_timeout(s);
    std::string last_why;
    std::string where;
    std::optional<hook_error> verdict;
    kube::pod_wait_options w;
    w.deadline = deadline;
    w.stop = s.stop;
    auto p = kube::wait_for_pod(s.client, s.ns, name, [&](const kube::pod& p) {
        const std::string& phase = p.status.phase;
        if (phase == "Running" || (accept_finished && (phase == "Succeeded" || phase == "Failed")))
            return kube::pod_check::done;
        const pod_outlook o = assess_pod(p);
        if (o.state == pod_outlook::verdict::failed) {
            verdict = make_error(errc::job_pod, "pod " + name + " failed to come online: " + o.why);
            return kube::pod_check::fail;
        }
        if (!o.why.empty() && o.why != last_why) {
            s.log.debug("pod " + name + ": " + o.why);
            last_why = o.why;
        }
        where = p.spec.node_name.empty() ? std::string() : " (on node " + p.spec.node_name + ")";
        if (o.why.find("Multi-Attach") != std::string::npos &&
            o.why.find(s.env.runner_pod_name) != std::string::npos) {
            verdict = make_error(errc::job_pod, "pod " + name + where + " cannot start: " + o.why +
                                                    ". " + placement_advice(c, o.why));
            return kube::pod_check::fail;
        }
        return kube::pod_check::wait;
    }, w);
    if (p)
        return p;
    if (verdict)
        return fail(std::move(*verdict));
    if (p.error().is(kube::errc::cancelled))
        return fail(make_error(errc::job_pod, "cancelled while waiting for pod " + name));
    if (p.error().is(kube::errc::timeout) && clock_type::now() >= deadline) {
        std::string why;
        if (!last_why.empty())
            why = ": " + last_why + ". " + placement_advice(c, last_why);
        return fail(make_error(errc::job_pod, "pod " + name + where + " did not start within " +
                                                  seconds_text(timeout) + why));
    }
    return fail(make_error(errc::job_pod,
                           "pod " + name + " failed to come online: " + p.error().what()));
}

// FNV-1a, 64 bits: the marker needs change detection, not collision resistance.
struct fnv64 {
    std::uint64_t h = 1469598103934665603ull;
    void add(std::string_view s) {
        for (unsigned char c : s) {
            h ^= c;
            h *= 1099511628211ull;
        }
        h ^= 0xff; // separator
        h *= 1099511628211ull;
    }
};

bool is_directory(const std::string& p) {
    struct stat st {};
    return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

std::string read_small_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text;
}

// The runner reads the step's file commands straight from the claim the pods write: what a
// step left there that is not a regular file goes before the runner looks (file_commands.hpp).
void check_file_commands_on_claim(hook_session& s) {
    auto work = s.env.work_root();
    if (!work)
        return;
    for (const auto& w : refuse_irregular_file_commands(*work + "/_temp/_runner_file_commands"))
        s.log.warning(w);
}

} // namespace

std::string tree_marker(const std::string& dir) {
    if (!is_directory(dir))
        return {};
    // The engine's walk as a snapshot, hashed as the lines "path\0st_mode size mtime" in its
    // path order: the lines and the order (a path sorts as its line does) the marker always
    // had, so existing markers stay valid.
    auto walked = io::walk_tree(dir, {});
    if (!walked)
        return {};
    const std::string own[] = {externals_marker_name};
    const io::tree_snapshot snap = io::tree_snapshot::from_walk(walked->entries, own);
    fnv64 h;
    for (const io::snapshot_entry e : snap) {
        const std::uint32_t type = e.kind == io::file_kind::directory ? S_IFDIR
                                   : e.kind == io::file_kind::symlink ? S_IFLNK
                                                                      : S_IFREG;
        // st_mtim again (nanoseconds floor-divided: the seconds of a pre-1970 time are
        // negative, its nanoseconds not).
        const std::int64_t ns = e.mtime_ns;
        const std::int64_t sec = ns / 1'000'000'000 - (ns % 1'000'000'000 < 0 ? 1 : 0);
        const std::int64_t nsec = ns - sec * 1'000'000'000;
        h.add(std::string(e.path) + '\0' + std::to_string(type | e.mode) + ' ' +
              std::to_string(e.size) + ' ' + std::to_string(sec) + '.' + std::to_string(nsec));
    }
    char buf[64];
    std::snprintf(buf, sizeof buf, "v1 %zu %016llx", snap.size(),
                  static_cast<unsigned long long>(h.h));
    return buf;
}

result<externals_sync, hook_error> sync_externals(const std::string& source, const std::string& dest,
                                                  unsigned threads, std::size_t memory_bytes,
                                                  std::stop_token stop) {
    externals_sync out;
    const auto t0 = clock_type::now();
    out.marker = tree_marker(source);
    out.marker_seconds = seconds_since(t0);
    if (out.marker.empty())
        return fail(make_error(errc::transfer, "the runner's externals " + source + " are not a directory"));
    const std::string marker_path = dest + "/" + externals_marker_name;
    if (read_small_file(marker_path) == out.marker + "\n")
        return out;

    const auto t1 = clock_type::now();
    std::error_code ec;
    fs::remove_all(dest, ec); // older versions' files must not linger under /__e
    if (ec)
        return fail(make_error(errc::transfer, "removing the old externals " + dest + ": " + ec.message()));
    // Stored (level 0): both ends are local disks, compression would only cost CPU.
    pipeline::send_options so;
    so.level = 0;
    so.threads = threads;
    so.memory_bytes = memory_bytes / 2;
    pipeline::recv_options ro;
    ro.threads = threads;
    ro.memory_bytes = memory_bytes / 2;
    auto copied = pipeline::copy_tree(source, dest, so, ro, stop);
    const std::string what = "copying the externals " + source + " -> " + dest;
    if (!copied)
        return fail(make_error(errc::transfer, what + ": " + copied.error().what()));
    if (copied->received.problems.count > 0) // no marker: the next job copies them again
        return fail(make_error(errc::transfer,
                               what + ": " + remote::problems_text(copied->received.problems)));
    out.files = copied->received.files;
    out.bytes = copied->received.content_bytes;
    // The marker last (written beside, then renamed): only a complete copy carries it.
    const std::string tmp = marker_path + ".tmp";
    {
        std::ofstream m(tmp, std::ios::binary | std::ios::trunc);
        m << out.marker << "\n";
        if (!m.flush())
            return fail(make_error(errc::transfer, "writing " + tmp));
    }
    if (::rename(tmp.c_str(), marker_path.c_str()) != 0)
        return fail(make_error(errc::transfer, "renaming " + tmp + ": " + std::strerror(errno)));
    out.copied = true;
    out.copy_seconds = seconds_since(t1);
    return out;
}

result<std::string, hook_error> runner_node_name(hook_session& s, std::chrono::milliseconds timeout) {
    bool said = false;
    kube::pod_wait_options w;
    w.deadline = clock_type::now() + timeout;
    w.stop = s.stop;
    w.first_poll = w.max_poll = std::chrono::milliseconds(500);
    auto p = kube::wait_for_pod(s.client, s.ns, s.env.runner_pod_name, [&](const kube::pod& p) {
        if (!p.spec.node_name.empty())
            return kube::pod_check::done;
        if (!said) {
            s.log.debug("the runner pod " + s.env.runner_pod_name +
                        " is not scheduled yet (no spec.nodeName); waiting up to " + seconds_text(timeout));
            said = true;
        }
        return kube::pod_check::wait;
    }, w);
    if (p)
        return p->spec.node_name;
    if (p.error().is(kube::errc::not_found))
        return fail(make_error(errc::job_pod,
                               "the runner pod " + s.ns + "/" + s.env.runner_pod_name +
                                   " does not exist: volume mode reads it to find the "
                                   "runner's node; ACTIONS_RUNNER_POD_NAME and "
                                   "ACTIONS_RUNNER_KUBERNETES_NAMESPACE must name the pod "
                                   "this runner runs in"));
    if (!p.error().is(kube::errc::timeout) && !p.error().is(kube::errc::cancelled))
        return fail(make_error(errc::job_pod, "reading the runner pod " + s.env.runner_pod_name +
                                                  " (needs get on pods): " + p.error().what()));
    return fail(make_error(errc::job_pod,
                           "the runner pod " + s.ns + "/" + s.env.runner_pod_name +
                               " has no node after " + seconds_text(timeout) +
                               " (spec.nodeName is empty), so the job pod cannot be placed "
                               "next to the work volume; check why the runner pod is "
                               "Pending (kubectl describe pod " + s.env.runner_pod_name + ")"));
}

result<prepare_job_response, hook_error> prepare_job_volume(hook_session& s, const prepare_job_args& args,
                                                            const std::string& response_file) {
    PODPIPE_TRY(check_response_file(response_file));
    PODPIPE_TRY(check_permissions(s, true));
    if (!args.container)
        return fail(make_error(errc::bad_input, "Job Container is required."));
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    auto tmpl = kube::load_template(s.env.template_path);
    if (!tmpl)
        return fail(tmpl.error());
    warn_about_old_scheduler_knobs(s);

    // The pod builders refuse bad input before anything is created or copied.
    kube::job_pod_options popt;
    popt.runner_pod_name = s.env.runner_pod_name;
    auto planned = plan_job_pod(s.env, args, popt);
    if (!planned)
        return fail(planned.error());
    std::optional<kube::secret>& pull_secret = planned->pull_secret;
    popt.pull_secret_name = pull_secret ? pull_secret->metadata.name : std::string();
    kube::job_pod_result* built = &planned->built;
    std::vector<kube::volume_mount> user_mounts;
    for (const auto& m : args.container->user_mount_volumes) {
        auto vm = kube::user_volume_mount(*work, m.source_volume_path, m.target_volume_path, m.read_only);
        if (!vm)
            return fail(vm.error());
        user_mounts.push_back(std::move(*vm));
    }

    const auto deadline = clock_type::now() + prepare_timeout(s);
    auto ctx = make_context(s, *tmpl ? &**tmpl : nullptr, deadline);
    if (!ctx)
        return fail(ctx.error());
    kube::make_volume_job_pod(built->job_pod, ctx->pod);
    for (auto& ct : built->job_pod.spec.containers)
        if (ct.name == kube::job_container_name)
            ct.volume_mounts.insert(ct.volume_mounts.end(), user_mounts.begin(), user_mounts.end());
    if (*tmpl) {
        auto warnings = kube::apply_template(**tmpl, built->job_pod);
        if (!warnings)
            return fail(warnings.error());
        for (const auto& w : *warnings)
            s.log.warning(w);
    }
    log_placement(s, *ctx, "the job pod");

    // The sub-paths the pod mounts must exist, owned by the runner: a kubelet creates missing
    // ones as root, which a non-root job image cannot write.
    for (const char* d : {"_temp/_github_home", "_temp/_github_workflow", "_temp/_runner_file_commands"}) {
        std::error_code ec;
        fs::create_directories(*work + "/" + d, ec);
        if (ec)
            return fail(make_error(errc::job_pod, "creating " + *work + "/" + d + ": " + ec.message()));
    }
    // Externals (/__e): the runner install's externals, beside its _work (the reference's
    // RUNNER_WORKSPACE/../../externals), copied onto the claim only when they changed.
    const std::string externals_src = fs::path(*work).parent_path().string() + "/externals";
    if (is_directory(externals_src)) {
        auto synced = sync_externals(externals_src, *work + "/" + std::string(kube::externals_sub_path),
                                     s.env.threads, s.env.memory_budget_bytes, s.stop);
        if (!synced)
            return fail(synced.error());
        char buf[256];
        if (synced->copied)
            std::snprintf(buf, sizeof buf, "externals copied onto the work volume: %llu files, %.1f MB, %.2f s (marker %.3f s)",
                          static_cast<unsigned long long>(synced->files), static_cast<double>(synced->bytes) / 1e6,
                          synced->copy_seconds, synced->marker_seconds);
        else
            std::snprintf(buf, sizeof buf, "externals on the work volume are current (marker checked in %.3f s), nothing copied",
                          synced->marker_seconds);
        s.log.info(buf);
    } else {
        s.log.warning("the runner's externals " + externals_src + " do not exist: /__e in the job "
                      "pod stays empty (JavaScript actions need node from there)");
    }

    auto created = create_job_pod(s, pull_secret, built->job_pod);
    if (!created)
        return fail(created.error());
    const std::string pod_name = created->metadata.name;
    auto running = wait_volume_pod(s, pod_name, *ctx, false, deadline);
    if (!running) {
        prune(s);
        return fail(make_error(errc::job_pod, "pod failed to come online with error: " + running.error().what()));
    }
    s.log.debug("job pod " + pod_name + " runs on node " + running->spec.node_name +
                " (runner node " + ctx->pod.node_name + ")");

    return finish_prepare(s, *created, *built, popt.pull_secret_name, response_file);
}

result<int, hook_error> run_script_step_volume(hook_session& s, const job_state& state,
                                               const run_script_step_args& args) {
    if (state.job_pod.empty())
        return fail(make_error(errc::bad_input, "run_script_step: the state names no job pod (did prepare_job run?)"));
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    // W/_temp is on the claim: the pod sees the file at /__w/_temp at once, nothing is copied.
    const std::string name = script_file_name();
    const std::string local = *work + "/_temp/" + name;
    struct remove_on_exit {
        std::string path;
        ~remove_on_exit() { ::unlink(path.c_str()); }
    } cleanup{local};
    // The script notes its pid so a cancelled step can be stopped (see step_stopper).
    const step_stopper stopper(name);
    auto text = run_script(args, stopper.record_line());
    if (!text)
        return fail(text.error());
    PODPIPE_TRY(write_script(local, *text));
    step_target job{s.ns, state.job_pod, std::string(kube::job_container_name)};
    // prepare_job asked the job pod's podpipe whether it has `run` (state.podpipe.stepRun).
    auto code = exec_script_step(s, job, {"sh", "-e", "/__w/_temp/" + name}, name, state.step_run,
                                 "prepare_job found no podpipe with `run` in the job pod");
    check_file_commands_on_claim(s);
    if (!code && s.stop.stop_requested()) // cancelled: SIGINT/SIGTERM from the runner
        return fail(stopper.stop(s.client, job, s.out_fd, s.err_fd));
    if (!code)
        return fail(make_error(errc::step, step_failure_message(code.error(), job)));
    return *code;
}

namespace {

// Follows the step container's log to out_fd until the container ended and its log is drained.
// A stream that ends early (a proxy's idle cut, an API server restart) or breaks is reopened
// from the newest printed line's second (timestamps=true + sinceTime, spec/kube-api.md §3.5);
// log_resume drops what was printed already, so the job log neither loses nor repeats output,
// also after the kubelet rotated the log. A stream only proves the log complete when the pod had
// ended before it was opened: one that ends (cut) just before the container exits would lose
// the rest, so after any stream that finds the pod ended, one more (from the last second only)
// drains it.
void follow_step_log(hook_session& s, const std::string& pod_name) {
    log_resume resume;
    whole_lines lines; // the debug lines between streams never split a step's line
    int failures = 0;
    bool ended_before = false;
    std::string out;
    auto write_out = [&s](std::string_view fresh) {
        while (!fresh.empty()) {
            const ssize_t n = ::write(s.out_fd, fresh.data(), fresh.size());
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            fresh.remove_prefix(static_cast<std::size_t>(n));
        }
    };
    // Whatever ends the follow: the step's unfinished last line goes out too.
    struct flush_rest {
        whole_lines& lines;
        const decltype(write_out)& write;
        ~flush_rest() { write(lines.rest()); }
    } at_end{lines, write_out};
    for (;;) {
        kube::log_options lo;
        lo.container = std::string(kube::job_container_name);
        lo.follow = true;
        lo.timestamps = true;
        lo.since_time = resume.since_time();
        resume.begin_stream();
        const std::uint64_t printed_before = resume.printed_bytes();
        auto r = s.client.follow_pod_log(s.ns, pod_name, lo, [&](std::string_view chunk) {
            out.clear();
            resume.feed(chunk, out);
            write_out(lines.take(out));
            return !s.stop.stop_requested();
        });
        if (s.stop.stop_requested())
            return;
        if (r && ended_before)
            return;
        if (resume.printed_bytes() > printed_before)
            failures = 0; // progress: only consecutive fruitless attempts count
        auto p = s.client.get_pod(s.ns, pod_name);
        const bool ended = p && (p->status.phase == "Succeeded" || p->status.phase == "Failed");
        if (!r) {
            if (++failures > 5) {
                s.log.warning("following the log of " + pod_name + " failed, waiting for the step "
                              "without it: " + r.error().what());
                return;
            }
            s.log.debug("the log stream of " + pod_name + " broke (" + r.error().what() + "); reconnecting");
        } else if (!ended) {
            s.log.debug("the log stream of " + pod_name + " ended while the step runs; reconnecting");
        }
        if (ended) {
            ended_before = true;
            if (r)
                continue; // the draining stream, at once
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(500));
    }
}

// Container steps run as a bare pod, not as a batch/v1 Job (the reference's choice):
//   - the step must run exactly once (backoffLimit 0 in the reference too): an action that
//     half-ran on the shared workspace is not safely repeatable, so the Job's retry is unused;
//   - a Job creates its pod asynchronously, so the reference has to find it by the job-name label
//     (another polling loop and timeout) and its pod lacks the runner-pod label, leaving it to the
//     Job's TTL instead of cleanup_job;
//   - the exit code is the pod's containerStatuses[job].state.terminated.exitCode either way; the
//     Job adds only a second status to reconcile.
// The pod carries runner-pod (so a cancelled step is still removed by cleanup_job) and is deleted
// with its env Secret as soon as the step ends.
result<int, hook_error> run_step_pod(hook_session& s, const container_request& req) {
    if (req.dockerfile)
        return fail(make_error(errc::bad_input, "Building container actions is not currently supported"));
    if (req.image.empty())
        return fail(make_error(errc::bad_input, "run_container_step: the request names no image"));
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    auto rel = kube::workspace_sub_path(*work, s.env.github_workspace);
    if (!rel)
        return fail(rel.error());
    auto tmpl = kube::load_template(s.env.template_path);
    if (!tmpl)
        return fail(tmpl.error());
    const kube::container_source src = to_container_source(req);
    auto env = kube::container_env(src.environment);
    if (!env)
        return fail(env.error());
    const std::string suffix = kube::random_name_suffix();
    auto sec = kube::build_step_env_secret(s.env.runner_pod_name, suffix, *env);
    if (!sec)
        return fail(sec.error());
    const auto deadline = clock_type::now() + prepare_timeout(s);
    auto ctx = make_context(s, *tmpl ? &**tmpl : nullptr, deadline);
    if (!ctx)
        return fail(ctx.error());
    auto step = kube::build_volume_step_pod(s.env.runner_pod_name, suffix, src, sec->metadata.name, *rel, ctx->pod);
    if (!step)
        return fail(step.error());
    for (const auto& m : req.user_mount_volumes) {
        auto vm = kube::user_volume_mount(*work, m.source_volume_path, m.target_volume_path, m.read_only);
        if (!vm)
            return fail(vm.error());
        step->spec.containers.front().volume_mounts.push_back(std::move(*vm));
    }
    if (*tmpl) {
        auto warnings = kube::apply_template(**tmpl, *step);
        if (!warnings)
            return fail(warnings.error());
        for (const auto& w : *warnings)
            s.log.warning(w);
    }
    log_placement(s, *ctx, "the step pod");
    for (const char* d : {"_temp/_github_home", "_temp/_github_workflow", "_temp/_runner_file_commands"}) {
        std::error_code ec;
        fs::create_directories(*work + "/" + d, ec);
    }

    // Destroyed after `cleanup` below: the pull secret goes once the pod is gone.
    step_pull_secret pull(s.client, s.ns, [&s](const std::string& w) { s.log.warning(w); });
    if (auto ps = pull.create_for(*step, s.env.runner_pod_name, req.registry); !ps)
        return fail(make_error(errc::step, "failed to create the registry pull secret of the step: " + ps.error().what()));
    auto made = s.client.create_secret(*sec, s.ns);
    if (!made)
        return fail(make_error(errc::step, "failed to create script environment: " + made.error().what()));
    const std::string pod_name = step->metadata.name;
    struct delete_on_exit {
        hook_session& s;
        std::string secret;
        std::string pod;
        ~delete_on_exit() {
            if (!pod.empty()) {
                kube::delete_options now;
                now.grace_period_seconds = 0;
                if (auto d = s.client.delete_pod(s.ns, pod, now); !d && !d.error().is(kube::errc::not_found))
                    s.log.warning("could not delete the step pod " + pod + ": " + d.error().what());
            }
            if (auto d = s.client.delete_secret(s.ns, secret); !d && !d.error().is(kube::errc::not_found))
                s.log.warning("could not delete the step secret " + secret + ": " + d.error().what());
        }
    } cleanup{s, sec->metadata.name, {}};
    auto created = s.client.create_pod(*step, s.ns);
    if (!created)
        return fail(make_error(errc::step, "failed to create the container step pod: " + created.error().what()));
    cleanup.pod = pod_name;
    auto started = wait_volume_pod(s, pod_name, *ctx, true, deadline);
    if (!started)
        return fail(started.error());
    s.log.debug("step pod " + pod_name + " runs on node " + started->spec.node_name);

    follow_step_log(s, pod_name);

    // The container's end, whatever the log stream did. No timeout: the step runs as long as the
    // action does (the runner's job timeout cancels the hook, which stops this wait).
    std::optional<int> code;
    std::optional<std::string> failed;
    kube::pod_wait_options w;
    w.stop = s.stop;
    w.first_poll = std::chrono::milliseconds(100);
    w.max_poll = std::chrono::milliseconds(1000);
    auto p = kube::wait_for_pod(s.client, s.ns, pod_name, [&](const kube::pod& p) {
        const bool ended = p.status.phase == "Succeeded" || p.status.phase == "Failed";
        for (const auto& c : p.status.container_statuses)
            if (c.name == kube::job_container_name && c.state.terminated && ended) {
                code = c.state.terminated->exit_code;
                return kube::pod_check::done;
            }
        if (p.status.phase == "Succeeded") {
            code = 0;
            return kube::pod_check::done;
        }
        if (p.status.phase == "Failed") {
            failed = p.status.reason + " " + p.status.message;
            return kube::pod_check::fail;
        }
        return kube::pod_check::wait;
    }, w);
    if (p)
        return code.value_or(0); // done always sets it
    if (failed)
        return fail(make_error(errc::step,
                               "the container step pod " + pod_name + " failed: " + *failed));
    if (p.error().is(kube::errc::cancelled))
        return fail(make_error(errc::step,
                               "cancelled while the container step " + pod_name + " ran"));
    return fail(make_error(errc::step,
                           "reading the step pod " + pod_name + ": " + p.error().what()));
}

} // namespace

result<int, hook_error> run_container_step_volume(hook_session& s, const job_state& state,
                                                  const container_request& req) {
    (void)state;
    auto code = run_step_pod(s, req);
    check_file_commands_on_claim(s);
    return code;
}

} // namespace podpipe::hook
