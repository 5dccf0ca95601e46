#include "hooks/commands/script_step.hpp"

#include "engine/io/remove.hpp"
#include "hooks/commands/exec_step.hpp"
#include "hooks/commands/file_commands.hpp"
#include "hooks/commands/prepare_job.hpp"
#include "hooks/commands/scripts.hpp"
#include "hooks/commands/temp_sync.hpp"
#include "kube/client.hpp"
#include "kube/exec.hpp"
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
    auto now = scan_temp(*work + "/_temp");
    if (!now)
        return fail(now.error());
    plan.now = std::move(*now);
    auto pod_has = load_temp_record(temp_manifest_path(*work, job_pod));
    if (!pod_has) {
        s.log.warning("the record of what the job pod's _temp holds is unusable (" +
                      pod_has.error().what() + "): sending all of _temp");
        pod_has = io::tree_snapshot{};
    }
    plan.delta = io::diff_snapshots(*pod_has, plan.now);
    // Deletions (and kind changes) happen in the pod before anything new lands there.
    plan.gone = plan.delta.replaced;
    plan.gone.insert(plan.gone.end(), plan.delta.removed.begin(), plan.delta.removed.end());
    return plan;
}

namespace {

// For a pod without podpipe (its tar ignores the stream's deletions): the `rm` lines go to
// `sh` on stdin, so the exec's URL stays the same size whatever the list. The script is read
// to its announced length into a file first: a cut stream runs nothing. One attempt: it runs
// inside the _temp copy's grouped_copy, which tries the whole again (one depth of retries);
// rm -rf of a fixed list removes nothing more the second time, so a session that broke after
// the list ran may be tried again like one that did not open.
result<void, remote::copy_error> remove_in_pod(hook_session& s, const std::string& job_pod,
                                               const std::string& script) {
    kube::exec_options o;
    o.ns = s.ns;
    o.pod = job_pod;
    o.container = std::string(kube::job_container_name);
    o.command = {"sh", "-c",
                 "f=$(mktemp) || exit 1; head -c \"$1\" > \"$f\"; "
                 "if [ \"$(wc -c < \"$f\")\" -eq \"$1\" ]; then sh \"$f\"; r=$?; "
                 "else echo 'the list of deletions arrived cut short' >&2; r=1; fi; "
                 "rm -f \"$f\"; exit $r",
                 "podpipe-remove", std::to_string(script.size())};
    kube::exec_session_options so;
    so.stop = s.stop;
    const std::string what = "removing deleted files from the job pod's _temp failed: ";
    std::string tail;
    exec_retry once; // retry_for 0: grouped_copy retries
    once.idempotent = true;
    auto code = exec_retried(
        s.client, o, so, once, [&](kube::exec_session& x) -> result<int, kube::api_error> {
            const auto* bytes = reinterpret_cast<const std::byte*>(script.data());
            auto w = x.stdin_sink().write({bytes, script.size()});
            if (w)
                w = x.stdin_sink().finish();
            if (!w) {
                // The session's own end says more (a dropped connection, the shell's status).
                auto c = x.wait();
                if (!c || *c != 0)
                    return c;
                kube::api_error e(w.error(), "writing the list of deletions to pod " + job_pod);
                e.message = w.error().message();
                return fail(std::move(e));
            }
            auto c = x.wait();
            tail = x.stderr_tail();
            return c;
        });
    if (code && *code == 0)
        return {};
    if (code)
        return fail(remote::copy_error{pipeline::exit_failure,
                                       what + "exit " + std::to_string(*code) + ": " + tail, {},
                                       true});
    const bool may_pass =
        exec_open_may_pass(code.error()) || step_session_broke(code.error());
    return fail(remote::copy_error{pipeline::exit_failure, what + code.error().what(), {},
                                   !may_pass});
}

} // namespace

result<void, hook_error> apply_temp_sync(hook_session& s, const std::string& job_pod,
                                         temp_plan& plan, const std::string& transient,
                                         std::optional<remote::pod_end>* probed) {
    const std::string temp = plan.work + "/_temp";
    const io::tree_delta& delta = plan.delta;
    if (delta.empty()) {
        s.log.debug("_temp: nothing new since the job pod last saw it");
    } else {
        remote::copy_options copt = copy_options_for(s);
        // The selection and the deletions travel in the stream: nothing grows the exec URL.
        std::vector<std::string> only = delta.send;
        only.insert(only.end(), delta.new_dirs.begin(), delta.new_dirs.end());
        copt.only = std::move(only);
        copt.only_descend = false;
        copt.deletions = plan.gone;
        remote::pod_copier probe_copier(s.client, copt, s.stop);
        // The copier of the attempts, kept between them (a repeat continues the last one),
        // made again only if the pod's podpipe came or went meanwhile.
        std::optional<remote::pod_copier> copier;
        bool copier_for_binary = false;
        bool removed = false;
        // Probe, deletions and copy are one operation, tried again as a whole (one depth).
        auto copied = grouped_copy(
            s, "Copying _temp changes into the job pod",
            "_temp (" + std::to_string(delta.send.size()) + " new or changed, " +
                std::to_string(delta.removed.size()) + " removed) -> " + pod_temp,
            [&]() -> remote::copy_result {
                auto end = probe_job_pod(s, probe_copier, job_dir(s, job_pod, pod_temp));
                if (!end)
                    return fail(end.error());
                if (probed != nullptr)
                    *probed = *end;
                remote::copy_options c = copt;
                if (!end->has_binary && !plan.gone.empty()) {
                    // A pod's tar ignores the stream's deletions: they happen first, through sh.
                    if (!removed) {
                        auto r = remove_in_pod(s, job_pod, removal_script(pod_temp, plan.gone));
                        if (!r)
                            return fail(std::move(r.error()));
                        removed = true;
                    }
                    c.deletions.clear();
                }
                if (!copier || copier_for_binary != end->has_binary)
                    copier.emplace(s.client, std::move(c), s.stop);
                copier_for_binary = end->has_binary;
                return copier->local_to_pod(temp, *end);
            },
            [&copier](remote::copy_error e) {
                return copier ? copier->give_up(std::move(e)) : std::move(e);
            });
        if (!copied)
            return fail(copied.error());
    }
    // The pod now holds what was scanned, minus `transient` (the step script deletes itself).
    if (!transient.empty())
        plan.now.erase(transient);
    if (auto saved = save_temp_record(temp_manifest_path(plan.work, job_pod), plan.now); !saved)
        s.log.warning("could not record what the job pod's _temp holds (the next step sends all "
                      "of it): " + saved.error().what());
    return {};
}

result<void, hook_error> sync_temp_to_pod(hook_session& s, const std::string& job_pod) {
    auto plan = plan_temp_sync(s, job_pod);
    if (!plan)
        return fail(plan.error());
    return apply_temp_sync(s, job_pod, *plan, {});
}

result<void, hook_error> record_temp(hook_session& s, const std::string& job_pod) {
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    auto now = scan_temp(*work + "/_temp");
    if (!now)
        return fail(now.error());
    return save_temp_record(temp_manifest_path(*work, job_pod), *now);
}

result<void, hook_error> copy_file_commands_back(hook_session& s, const std::string& job_pod) {
    auto temp = runner_temp(s);
    if (!temp)
        return fail(temp.error());
    remote::copy_options copt = copy_options_for(s);
    remote::pod_copier copier(s.client, copt, s.stop);
    const std::string from = pod_temp + "/_runner_file_commands";
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
            if (std::string why; !io::remove_tree(path, &why))
                s.log.warning("could not remove " + path + ": " + why);
        }
    } cleanup{s, stage};
    auto copied = grouped_copy(s, "Copying the file commands back", from + " -> runner",
                               [&]() -> remote::copy_result {
                                   auto end = probe_job_pod(s, copier, job_dir(s, job_pod, from));
                                   if (!end)
                                       return fail(end.error());
                                   return copier.pod_to_local(*end, stage);
                               },
                               giving_up(copier));
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
    // The script goes into the runner's _temp first, so that the sync carries it.
    const std::string name = script_file_name();
    const std::string local_script = *temp + "/" + name;
    struct remove_on_exit {
        std::string path;
        ~remove_on_exit() { ::unlink(path.c_str()); }
    } cleanup{local_script};
    // The script notes its pid so a cancelled step can be stopped (see step_stopper).
    const step_stopper stopper(name);
    auto text = run_script(args, stopper.record_line());
    if (!text)
        return fail(text.error());
    PODPIPE_TRY(write_script(local_script, *text));
    auto plan = plan_temp_sync(s, state.job_pod);
    if (!plan)
        return fail(plan.error());
    std::optional<remote::pod_end> probed;
    PODPIPE_TRY(apply_temp_sync(s, state.job_pod, *plan, name, &probed));

    step_target job{s.ns, state.job_pod, std::string(kube::job_container_name)};
    // Under `podpipe run` a broken session is re-attached, the step goes on (issue 21).
    auto code = exec_script_step(s, job, {"sh", "-e", pod_temp + "/" + name}, name,
                                 probed && probed->has_step_run,
                                 probed ? "the job pod's podpipe has no `run`"
                                        : "the job pod was not probed");
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
        return fail(make_error(errc::step, step_failure_message(code.error(), job)));
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
