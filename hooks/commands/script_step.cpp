#include "hooks/commands/script_step.hpp"

#include "hooks/commands/exec_step.hpp"
#include "hooks/commands/file_commands.hpp"
#include "hooks/commands/prepare_job.hpp"
#include "hooks/commands/scripts.hpp"
#include "hooks/commands/temp_sync.hpp"
#include "kube/client.hpp"
#include "kube/pod_spec.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <unistd.h>

namespace podpipe::hook {
namespace {

const std::string pod_temp = "/__w/_temp";

result<std::string, hook_error> runner_temp(const hook_session& s) {
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    return *work + "/_temp";
}

remote::pod_dir job_dir(const hook_session& s, const std::string& pod, std::string path) {
    return {s.ns, pod, std::string(kube::job_container_name), std::move(path)};
}

} // namespace

result<temp_plan, hook_error> plan_temp_sync(hook_session& s, const std::string& job_pod) {
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    temp_plan plan;
    plan.work = *work;
    auto now = scan_tree(*work + "/_temp", {"_runner_hook_responses"});
    if (!now)
        return fail(now.error());
    plan.now = std::move(*now);
    auto pod_has = load_manifest(temp_manifest_path(*work, job_pod));
    if (!pod_has) {
        s.log.warning("the record of what the job pod's _temp holds is unusable (" +
                      pod_has.error().what() + "): sending all of _temp");
        pod_has = temp_snapshot{};
    }
    plan.delta = diff_snapshots(*pod_has, plan.now);
    // Deletions (and kind changes) happen in the pod before anything new lands there.
    std::vector<std::string> gone = plan.delta.replaced;
    gone.insert(gone.end(), plan.delta.removed.begin(), plan.delta.removed.end());
    plan.removals = removal_script(pod_temp, gone);
    return plan;
}

result<void, hook_error> apply_temp_sync(hook_session& s, const std::string& job_pod,
                                         temp_plan& plan, bool removals_done,
                                         const std::string& transient) {
    const std::string temp = plan.work + "/_temp";
    const temp_delta& delta = plan.delta;
    if (!plan.removals.empty() && !removals_done) {
        // `sh -c` takes the script as one argument, which the kernel caps at 128 KiB: long
        // lists go in several execs (removal_script's lines are at most 64 KiB each).
        step_target job{s.ns, job_pod, std::string(kube::job_container_name)};
        std::vector<std::string> batches(1);
        for (std::size_t pos = 0; pos < plan.removals.size();) {
            std::size_t nl = plan.removals.find('\n', pos);
            nl = nl == std::string::npos ? plan.removals.size() : nl + 1;
            if (!batches.back().empty() && batches.back().size() + (nl - pos) > (96u << 10))
                batches.emplace_back();
            batches.back().append(plan.removals, pos, nl - pos);
            pos = nl;
        }
        for (const auto& batch : batches) {
            auto rm = exec_step(s.client, job, {"sh", "-c", batch}, s.out_fd, s.err_fd, s.stop);
            if (!rm || *rm != 0)
                return fail(make_error(errc::transfer,
                                       "removing deleted files from the job pod's _temp failed: " +
                                           (rm ? "exit " + std::to_string(*rm) : rm.error().what())));
        }
    }
    if (delta.send.empty() && delta.new_dirs.empty()) {
        s.log.debug("_temp: nothing new since the job pod last saw it (" +
                    std::to_string(delta.removed.size()) + " removed)");
    } else {
        const std::string stage = plan.work + "/" + state_dir_name + "/" + job_pod + "/stage-" +
                                  kube::random_name_suffix();
        struct stage_guard {
            hook_log& log;
            std::string dir;
            ~stage_guard() {
                if (auto left = remove_stage(dir); !left.empty())
                    log.warning("could not remove the staging directory: " + left);
            }
        } guard{s.log, stage};
        auto staged = stage_delta(temp, delta, stage);
        if (!staged)
            return fail(staged.error());
        for (const auto& v : staged->vanished)
            s.log.debug("_temp/" + v + " vanished before it could be sent");
        remote::copy_options copt = copy_options_for(s);
        remote::pod_copier copier(s.client, copt, s.stop);
        auto end = probe_job_pod(s, copier, job_dir(s, job_pod, pod_temp));
        if (!end)
            return fail(make_error(errc::transfer, end.error()));
        auto copied = grouped_copy(s, "Copying _temp changes into the job pod",
                                   "_temp (" + std::to_string(delta.send.size()) + " new or changed, " +
                                       std::to_string(delta.removed.size()) + " removed) -> " + pod_temp,
                                   [&] { return copier.local_to_pod(stage, *end); });
        if (!copied)
            return fail(copied.error());
    }
    // The pod now holds what was scanned, minus `transient` (the step script deletes itself).
    if (!transient.empty())
        plan.now.erase(transient);
    if (auto saved = save_manifest(temp_manifest_path(plan.work, job_pod), plan.now); !saved)
        s.log.warning("could not record what the job pod's _temp holds (the next step sends all "
                      "of it): " + saved.error().what());
    return {};
}

result<void, hook_error> sync_temp_to_pod(hook_session& s, const std::string& job_pod) {
    auto plan = plan_temp_sync(s, job_pod);
    if (!plan)
        return fail(plan.error());
    return apply_temp_sync(s, job_pod, *plan, false, {});
}

result<void, hook_error> record_temp(hook_session& s, const std::string& job_pod) {
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    auto now = scan_tree(*work + "/_temp", {"_runner_hook_responses"});
    if (!now)
        return fail(now.error());
    return save_manifest(temp_manifest_path(*work, job_pod), *now);
}

result<void, hook_error> copy_file_commands_back(hook_session& s, const std::string& job_pod) {
    auto temp = runner_temp(s);
    if (!temp)
        return fail(temp.error());
    remote::copy_options copt = copy_options_for(s);
    remote::pod_copier copier(s.client, copt, s.stop);
    const std::string from = pod_temp + "/_runner_file_commands";
    auto end = probe_job_pod(s, copier, job_dir(s, job_pod, from));
    if (!end)
        return fail(make_error(errc::transfer, end.error()));
    // Into a directory of the hook's own first: only regular files go on to the runner's
    // (file_commands.hpp), so a symlink the step left at $GITHUB_OUTPUT never exists where the
    // runner reads. Beside the target, so that the files move with a rename.
    std::string stage = *temp + "/_runner_file_commands.podpipe-XXXXXX";
    if (::mkdtemp(stage.data()) == nullptr)
        return fail(make_error(errc::transfer, "creating a directory for the file commands in " +
                                                   *temp + ": " + std::strerror(errno)));
    struct remove_on_exit {
        hook_session& s;
        std::string path;
        ~remove_on_exit() {
            if (const std::string left = remove_stage(path); !left.empty())
                s.log.warning(left);
        }
    } cleanup{s, stage};
    auto copied = grouped_copy(s, "Copying the file commands back", from + " -> runner",
                               [&] { return copier.pod_to_local(*end, stage); });
    if (!copied)
        return fail(copied.error());
    auto refused = adopt_file_commands(stage, *temp + "/_runner_file_commands");
    if (!refused)
        return fail(refused.error());
    for (const auto& w : *refused)
        s.log.warning(w);
    return {};
}

result<int, hook_error> run_script_step(hook_session& s, const job_state& state,
                                        const run_script_step_args& args) {
    if (state.job_pod.empty())
        return fail(make_error(errc::bad_input,
                               "run_script_step: the state names no job pod (did prepare_job run?)"));
    auto temp = runner_temp(s);
    if (!temp)
        return fail(temp.error());
    // The script goes into the runner's _temp first, so that the sync carries it; once the
    // sync knows what the runner deleted since the last step, the script is rewritten to
    // delete those in the pod first (one exec less per step).
    const std::string name = script_file_name();
    const std::string local_script = *temp + "/" + name;
    struct remove_on_exit {
        std::string path;
        ~remove_on_exit() { ::unlink(path.c_str()); }
    } cleanup{local_script};
    // The script notes its pid so a cancelled step can be stopped (see step_stopper).
    const step_stopper stopper(name);
    const std::string pid_line = stopper.record_line();
    auto text = run_script(args, pid_line);
    if (!text)
        return fail(text.error());
    PODPIPE_TRY(write_script(local_script, *text));
    auto plan = plan_temp_sync(s, state.job_pod);
    if (!plan)
        return fail(plan.error());
    const bool in_script = !plan->removals.empty() && plan->delta.replaced.empty();
    if (in_script) {
        auto with = run_script(args, pid_line + plan->removals);
        if (!with)
            return fail(with.error());
        ::unlink(local_script.c_str());
        PODPIPE_TRY(write_script(local_script, *with));
    }
    PODPIPE_TRY(apply_temp_sync(s, state.job_pod, *plan, in_script, name));

    step_target job{s.ns, state.job_pod, std::string(kube::job_container_name)};
    const heartbeat hb{s.env.heartbeat_period, s.env.heartbeat_deadline};
    auto code = exec_step(s.client, job, {"sh", "-e", pod_temp + "/" + name}, s.out_fd, s.err_fd,
                          s.stop, hb);
    // File commands come back whatever the step did: a failing step's outputs and summary
    // matter most. Not when the connection broke: the pod may still be writing them.
    auto back = code ? copy_file_commands_back(s, state.job_pod) : result<void, hook_error>{};
    // What came back is what the pod has: record it so the next step does not send it again.
    ::unlink(local_script.c_str());
    if (back)
        if (auto rec = record_temp(s, state.job_pod); !rec)
            s.log.debug("could not record _temp after the step: " + rec.error().what());
    if (!code && s.stop.stop_requested()) // cancelled: SIGINT/SIGTERM from the runner
        return fail(stopper.stop(s.client, job, s.out_fd, s.err_fd));
    if (!code)
        return fail(make_error(errc::step, "failed to run script step: " + code.error().what()));
    if (!back) {
        if (*code != 0) {
            s.log.warning(back.error().what());
            return *code;
        }
        return fail(make_error(errc::transfer,
                               "the step succeeded but its file commands (outputs, env, path, "
                               "summary) could not be copied back: " + back.error().what()));
    }
    return *code;
}

} // namespace podpipe::hook
