#include "hooks/commands/script_step.hpp"

#include "hooks/commands/exec_step.hpp"
#include "hooks/commands/prepare_job.hpp"
#include "hooks/commands/scripts.hpp"
#include "hooks/k8s/client.hpp"
#include "hooks/k8s/pod_spec.hpp"

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

k8s::pod_dir job_dir(const hook_session& s, const std::string& pod, std::string path) {
    return {s.ns, pod, std::string(k8s::job_container_name), std::move(path)};
}

} // namespace

result<void, hook_error> sync_temp_to_pod(hook_session& s, const std::string& job_pod,
                                          std::string* first_lines) {
    auto temp = runner_temp(s);
    if (!temp)
        return fail(temp.error());
    if (first_lines != nullptr)
        first_lines->clear();
    k8s::copy_options copt = copy_options_for(s);
    copt.excludes = work_excludes();
    k8s::pod_copier copier(s.client, copt, s.stop);
    auto end = copier.probe(job_dir(s, job_pod, pod_temp));
    if (!end)
        return fail(make_error(errc::transfer, end.error()));
    auto copied = grouped_copy(s, "Copying _temp into the job pod", "_temp -> " + pod_temp,
                               [&] { return copier.local_to_pod(*temp, *end); });
    if (!copied)
        return fail(copied.error());
    return {};
}

result<void, hook_error> copy_file_commands_back(hook_session& s, const std::string& job_pod) {
    auto temp = runner_temp(s);
    if (!temp)
        return fail(temp.error());
    k8s::copy_options copt = copy_options_for(s);
    k8s::pod_copier copier(s.client, copt, s.stop);
    const std::string from = pod_temp + "/_runner_file_commands";
    auto end = copier.probe(job_dir(s, job_pod, from));
    if (!end)
        return fail(make_error(errc::transfer, end.error()));
    auto copied = grouped_copy(s, "Copying the file commands back", from + " -> runner",
                               [&] { return copier.pod_to_local(*end, *temp + "/_runner_file_commands"); });
    if (!copied)
        return fail(copied.error());
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
    std::string first_lines;
    const std::string name = script_file_name();
    const std::string local_script = *temp + "/" + name;
    struct remove_on_exit {
        std::string path;
        ~remove_on_exit() { ::unlink(path.c_str()); }
    } cleanup{local_script};
    auto text = run_script(args);
    if (!text)
        return fail(text.error());
    PODPIPE_TRY(write_script(local_script, *text));
    PODPIPE_TRY(sync_temp_to_pod(s, state.job_pod, &first_lines));

    step_target job{s.ns, state.job_pod, std::string(k8s::job_container_name)};
    const heartbeat hb{s.env.heartbeat_period, s.env.heartbeat_deadline};
    auto code = exec_step(s.client, job, {"sh", "-e", pod_temp + "/" + name}, s.out_fd, s.err_fd,
                          s.stop, hb);
    // File commands come back whatever the step did: a failing step's outputs and summary
    // matter most. Not when the connection broke: the pod may still be writing them.
    auto back = code ? copy_file_commands_back(s, state.job_pod) : result<void, hook_error>{};
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
