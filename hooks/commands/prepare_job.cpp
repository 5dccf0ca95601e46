#include "hooks/commands/prepare_job.hpp"

#include "hooks/commands/cleanup_job.hpp"
#include "hooks/commands/exec_step.hpp"
#include "hooks/commands/pod_wait.hpp"
#include "hooks/commands/script_step.hpp"
#include "kube/client.hpp"
#include "kube/pod_spec.hpp"
#include "kube/template.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

namespace podpipe::hook {
namespace {

namespace fs = std::filesystem;

hook_error job_pod_error(const std::string& text) { return make_error(errc::job_pod, text); }

// Deletes what this runner created so far; a failure here only adds a warning, the original
// error is what the user needs to see.
void prune(hook_session& s) {
    auto done = cleanup_job(s.client, s.ns, s.env.runner_pod_name, rest_retry_of(s));
    if (!done)
        s.log.warning("could not remove the job's pods and secrets: " + done.error().what());
}

// Each user volume whose target no mount of the job container holds yet gets an emptyDir of its
// own there, as docker mode gives it a mount: a job container that runs as non-root (Pod
// Security "restricted") cannot create a directory in its image's root-owned tree, and the
// volume's copy needs one it may write (the pod's fsGroup makes an emptyDir so).
void add_user_volume_dirs(kube::pod& p, const std::vector<mount>& user_volumes) {
    kube::container* job = nullptr;
    for (auto& c : p.spec.containers)
        if (c.name == kube::job_container_name)
            job = &c;
    if (job == nullptr)
        return;
    auto held = [&](const std::string& path) {
        for (const auto& vm : job->volume_mounts)
            if (path == vm.mount_path || path.starts_with(vm.mount_path + "/"))
                return true;
        return false;
    };
    int n = 0;
    for (const auto& m : user_volumes) {
        std::string target = m.target_volume_path;
        while (target.size() > 1 && target.back() == '/')
            target.pop_back();
        if (target == "/" || held(target))
            continue;
        const std::string name = "user-volume-" + std::to_string(n++);
        p.spec.volumes.push_back({name, kube::empty_dir_source{}});
        job->volume_mounts.push_back({name, target, "", false});
    }
}

} // namespace

std::string temp_manifest_path(const std::string& work_root, const std::string& job_pod) {
    return work_root + "/" + state_dir_name + "/" + job_pod + "/temp.manifest";
}

std::vector<std::string> work_excludes() { return {"_runner_hook_responses", state_dir_name}; }

result<job_pod_plan, hook_error> plan_job_pod(const hook_env& env, const prepare_job_args& args,
                                              kube::job_pod_options popt) {
    job_pod_plan plan;
    if (args.container && args.container->registry) {
        auto sec = kube::build_pull_secret(env.runner_pod_name, kube::random_name_suffix(),
                                          *args.container->registry);
        if (!sec)
            return fail(sec.error());
        popt.pull_secret_name = sec->metadata.name;
        plan.pull_secret = std::move(*sec);
    }
    std::optional<kube::container_source> job_src;
    if (args.container)
        job_src = to_container_source(*args.container);
    std::vector<kube::container_source> service_srcs;
    for (const auto& svc : args.services)
        service_srcs.push_back(to_container_source(svc));
    auto built = kube::build_job_pod(popt, job_src ? &*job_src : nullptr, service_srcs);
    if (!built)
        return fail(built.error());
    plan.built = std::move(*built);
    return plan;
}

result<void, hook_error> check_response_file(const std::string& response_file) {
    if (response_file.empty())
        return fail(make_error(errc::response_file, "Expected file path"));
    if (struct stat st {}; ::stat(response_file.c_str(), &st) != 0)
        return fail(make_error(errc::response_file, "Missing file at path: " + response_file));
    return {};
}

// A create tried again (rest_retry.hpp) after a failure that can pass: the attempt whose
// answer was lost (a cut connection, a 503 from a proxy after the API server wrote it) may have
// made the object, so the repeat's 409 AlreadyExists is taken as success when the object of
// that name carries this runner's label (prune_and_wait removed this runner's leftovers first,
// so it is the one we made). A 409 at the first attempt stays an error: not ours to take.
template <class Create, class Get>
auto create_ours(hook_session& s, const std::string& what, Create&& create, Get&& get)
    -> decltype(create()) {
    int attempts = 0;
    auto made = rest_retried(rest_retry_of(s), what, [&] {
        ++attempts;
        return create();
    });
    if (made || attempts < 2 || !made.error().is(kube::errc::already_exists))
        return made;
    auto there = rest_retried(rest_retry_of(s), what, get);
    if (!there)
        return made;
    const auto& labels = there->metadata.labels;
    const auto label = labels.find(std::string(kube::runner_label_key));
    if (label == labels.end() || label->second != s.env.runner_pod_name)
        return made;
    s.log.debug(what + ": made by an attempt whose answer was lost (409 AlreadyExists on the "
                "repeat, labelled " + std::string(kube::runner_label_key) + "=" +
                label->second + ")");
    return std::move(*there);
}

result<kube::pod, hook_error> create_job_pod(hook_session& s, const std::optional<kube::secret>& pull_secret,
                                            const kube::pod& job_pod) {
    // Leftovers of a previous job of this runner (a crashed hook, a cancelled cleanup): gone
    // before the new pod, which has the same name, is created.
    if (std::string w; !prune_and_wait(s.client, s.ns, s.env.runner_pod_name,
                                       std::chrono::seconds(60), &w, rest_retry_of(s)))
        s.log.warning(w);
    if (pull_secret) {
        const std::string& name = pull_secret->metadata.name;
        auto made = create_ours(s, "creating secret " + name,
                                [&] { return s.client.create_secret(*pull_secret, s.ns); },
                                [&] { return s.client.get_secret(s.ns, name); });
        if (!made)
            return fail(job_pod_error("failed to create the registry pull secret: " + made.error().what()));
    }
    auto created = create_ours(s, "creating pod " + job_pod.metadata.name,
                               [&] { return s.client.create_pod(job_pod, s.ns); },
                               [&] { return s.client.get_pod(s.ns, job_pod.metadata.name); });
    if (!created) {
        prune(s);
        return fail(job_pod_error("failed to create job pod: " + created.error().what()));
    }
    return std::move(*created);
}

result<prepare_job_response, hook_error> finish_prepare(hook_session& s, const kube::pod& created,
                                                        const kube::job_pod_result& built,
                                                        const std::string& pull_secret_name,
                                                        const std::string& response_file) {
    // Alpine detection (§3.6): anything but exit 0 (no sh, an exec error) means "not alpine".
    bool is_alpine = false;
    step_target job{s.ns, created.metadata.name, std::string(kube::job_container_name)};
    // Tried again when the exec does not open (an API server that restarts, 503s): a wrong
    // "not alpine" would break the job's steps. It only reads, so it may run twice.
    if (auto a = exec_step_retried(s.client, job, kube::alpine_detection_argv(), s.out_fd,
                                   s.err_fd, s.stop,
                                   one_shot_retry(s, "the alpine check in pod " + job.pod, true));
        a)
        is_alpine = *a == 0;
    else
        s.log.debug("alpine detection: " + a.error().what());

    job_state state;
    state.job_pod = created.metadata.name;
    state.namespace_name = s.ns;
    state.permissions_checked = true;
    state.pull_secret = pull_secret_name;
    state.step_run = job_pod_runs_steps(s, state.job_pod);
    prepare_job_response response = make_prepare_response(created, built.service_names, std::move(state), is_alpine);
    if (auto w = write_response_file(response_file, to_json(response)); !w) {
        prune(s);
        return fail(w.error());
    }
    return response;
}

result<prepare_job_response, hook_error> prepare_job(hook_session& s, const prepare_job_args& args,
                                                     const std::string& response_file) {
    PODPIPE_TRY(check_response_file(response_file));
    PODPIPE_TRY(check_permissions(s, s.env.mode == workspace_mode::volume));
    if (!args.container)
        return fail(make_error(errc::bad_input, "Job Container is required."));
    auto work = s.env.work_root();
    if (!work)
        return fail(work.error());
    // Everything that can be refused is checked before anything is created.
    auto tmpl = kube::load_template(s.env.template_path);
    if (!tmpl)
        return fail(tmpl.error());
    kube::job_pod_options popt;
    popt.runner_pod_name = s.env.runner_pod_name;
    if (!s.env.runner_image.empty())
        popt.runner_image = s.env.runner_image;
    if (!s.env.github_workspace.empty()) {
        auto tail = kube::workspace_tail(s.env.github_workspace);
        if (!tail)
            return fail(tail.error());
        popt.workspace_tail = *tail;
    }
    auto planned = plan_job_pod(s.env, args, popt);
    if (!planned)
        return fail(planned.error());
    std::optional<kube::secret>& pull_secret = planned->pull_secret;
    popt.pull_secret_name = pull_secret ? pull_secret->metadata.name : std::string();
    kube::job_pod_result* built = &planned->built;
    if (*tmpl) {
        auto warnings = kube::apply_template(**tmpl, built->job_pod);
        if (!warnings)
            return fail(warnings.error());
        for (const auto& w : *warnings)
            s.log.warning(w);
    }
    for (const auto& m : args.container->user_mount_volumes) {
        if (m.source_volume_path.empty() || m.source_volume_path.front() != '/')
            return fail(make_error(errc::bad_input,
                                   "volume '" + m.source_volume_path + ":" + m.target_volume_path +
                                       "': the source must be an absolute path on the runner "
                                       "(named docker volumes do not exist in Kubernetes mode)"));
        if (m.target_volume_path.empty() || m.target_volume_path.front() != '/')
            return fail(make_error(errc::bad_input, "volume '" + m.source_volume_path + ":" +
                                                        m.target_volume_path +
                                                        "': the target must be an absolute path"));
    }
    add_user_volume_dirs(built->job_pod, args.container->user_mount_volumes);

    auto created = create_job_pod(s, pull_secret, built->job_pod);
    if (!created)
        return fail(created.error());
    const std::string pod_name = created->metadata.name;
    s.log.debug("job pod " + s.ns + "/" + pod_name + " created; waiting for it to run");

    wait_options wopt;
    wopt.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(s.env.prepare_job_timeout);
    wopt.on_change = [&](const std::string& why) { s.log.debug("job pod: " + why); };
    wopt.stop = s.stop;
    auto running = wait_for_running(s.client, s.ns, pod_name, wopt);
    if (!running) {
        prune(s);
        return fail(job_pod_error("pod failed to come online with error: " + running.error().what()));
    }

    // The failure path from here on: the pod exists and runs; prune it so that a retried job
    // does not find a half-filled workspace.
    auto fail_after_start = [&](hook_error e) -> result<prepare_job_response, hook_error> {
        prune(s);
        return fail(std::move(e));
    };

    remote::copy_options copt = copy_options_for(s);
    copt.excludes = work_excludes();
    remote::pod_copier copier(s.client, copt, s.stop);
    // The probe is part of the copy: grouped_copy tries both again (one depth of retries).
    const std::string job_container(kube::job_container_name);
    auto workspace_copy = [&]() -> remote::copy_result {
        auto end = probe_job_pod(s, copier, {s.ns, pod_name, job_container, "/__w"});
        if (!end)
            return fail(end.error());
        return copier.local_to_pod(*work, *end);
    };
    auto copied = grouped_copy(s, "Copying the workspace into the job pod",
                               "workspace " + *work + " -> /__w", workspace_copy,
                               giving_up(copier));
    if (!copied)
        return fail_after_start(copied.error());

    // The pod's _temp now equals the runner's: later steps send only what changes.
    if (auto rec = record_temp(s, pod_name); !rec)
        s.log.warning("could not record what the job pod's _temp holds (the first step sends "
                      "all of it): " + rec.error().what());

    // /github/home and /github/workflow are W/_temp's _github_home and _github_workflow, as the
    // runner's docker mode mounts them; links keep them current after every _temp sync.
    std::string setup =
        "mkdir -p /__w/_temp/_github_home /__w/_temp/_github_workflow /github && "
        "ln -sfn /__w/_temp/_github_home /github/home && "
        "ln -sfn /__w/_temp/_github_workflow /github/workflow";
    for (const auto& m : args.container->user_mount_volumes)
        setup += " && mkdir -p -- " + kube::shell_quote(m.target_volume_path);
    step_target job{s.ns, pod_name, std::string(kube::job_container_name)};
    // Tried again when the exec does not open or breaks: mkdir -p and ln -sfn give the same
    // result however often they run.
    auto prepared = exec_step_retried(
        s.client, job, {"sh", "-c", setup}, s.out_fd, s.err_fd, s.stop,
        one_shot_retry(s, "preparing /github in pod " + pod_name, true));
    if (!prepared)
        return fail_after_start(make_error(errc::job_pod, "preparing /github in the job pod: " +
                                                              prepared.error().what()));
    if (*prepared != 0)
        return fail_after_start(make_error(
            errc::job_pod, "preparing /github in the job pod exited with " + std::to_string(*prepared)));

    for (const auto& m : args.container->user_mount_volumes) {
        struct stat st {};
        if (::stat(m.source_volume_path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return fail_after_start(make_error(
                errc::bad_input, "volume '" + m.source_volume_path +
                                     "': not a directory on the runner (only directories can be "
                                     "copied into the job pod)"));
        auto v = grouped_copy(s, "Copying volume " + m.source_volume_path,
                              "volume " + m.source_volume_path + " -> " + m.target_volume_path,
                              [&]() -> remote::copy_result {
                                  auto vend = probe_job_pod(
                                      s, copier,
                                      {s.ns, pod_name, job_container, m.target_volume_path});
                                  if (!vend)
                                      return fail(vend.error());
                                  return copier.local_to_pod(m.source_volume_path, *vend);
                              },
                              giving_up(copier));
        if (!v)
            return fail_after_start(v.error());
    }

    return finish_prepare(s, *created, *built, popt.pull_secret_name, response_file);
}

} // namespace podpipe::hook
