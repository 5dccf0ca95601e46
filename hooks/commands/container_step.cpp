#include "hooks/commands/container_step.hpp"

#include "hooks/commands/log.hpp"

#include "hooks/commands/exec_step.hpp"
#include "hooks/commands/pod_wait.hpp"
#include "hooks/commands/session.hpp"
#include "hooks/commands/step_pull_secret.hpp"
#include "kube/client.hpp"
#include "kube/pod_spec.hpp"
#include "remote/retry.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <thread>
#include <cstdio>
#include <iterator>
#include <optional>
#include <unistd.h>
#include <utility>

namespace podpipe::hook {
namespace {

class container_step_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "podpipe.container_step"; }

    std::string message(int ev) const override {
        switch (static_cast<container_step_errc>(ev)) {
        case container_step_errc::unsupported:
            return "container action not supported";
        case container_step_errc::bad_request:
            return "invalid container step request";
        case container_step_errc::pod_start:
            return "step pod did not start";
        case container_step_errc::copy_in:
            return "workspace copy into the step pod failed";
        case container_step_errc::setup:
            return "step pod setup failed";
        case container_step_errc::step_exec:
            return "step exec failed";
        case container_step_errc::copy_back:
            return "copying the step's changes back failed";
        case container_step_errc::cancelled:
            return "container step cancelled";
        }
        return "unknown container step error";
    }
};

hook_error step_error(container_step_errc e, std::string message) {
    hook_error err(make_error_code(e), std::string());
    err.message = std::move(message);
    return err;
}

// ---- output -----------------------------------------------------------------------------------

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        const ssize_t n = ::write(fd, s.data(), s.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; // like a terminal: a closed output never fails the step
        s.remove_prefix(static_cast<std::size_t>(n));
    }
}


void command_line(int fd, std::string_view cmd, std::string_view msg) {
    write_all(fd, "::" + std::string(cmd) + "::" + escape_command_message(msg) + "\n");
}

/// 950 B, 12.3 kB, 4.5 MB, 1.2 GB (decimal units, as transfer rates are quoted).
std::string human_bytes(double bytes) {
    static constexpr const char* units[] = {"B", "kB", "MB", "GB", "TB"};
    std::size_t u = 0;
    while (bytes >= 1000 && u + 1 < std::size(units)) {
        bytes /= 1000;
        ++u;
    }
    char buf[32];
    if (u == 0)
        std::snprintf(buf, sizeof buf, "%.0f B", bytes);
    else
        std::snprintf(buf, sizeof buf, "%.1f %s", bytes, units[u]);
    return buf;
}

/// One line: what moved, how much, how fast.
std::string copy_summary(const remote::copy_report& o) {
    const auto& s = o.stats;
    const bool counted = o.remote.has_value(); // the receiving pod ran podpipe recv
    std::string line = o.verb;
    const std::uint64_t rate_bytes = counted ? s.content_bytes : s.wire_bytes;
    if (counted)
        line += " " + std::to_string(s.files) + " files, " +
                human_bytes(static_cast<double>(s.content_bytes)) + " (" +
                human_bytes(static_cast<double>(s.wire_bytes)) + " compressed)";
    else
        line += " " + human_bytes(static_cast<double>(s.wire_bytes)) +
                " compressed (the receiving pod's tar counts no files)";
    const double secs = s.seconds > 0 ? s.seconds : 0;
    char took[32];
    std::snprintf(took, sizeof took, " in %.2f s, ", secs);
    line += took;
    line += human_bytes(secs > 0 ? static_cast<double>(rate_bytes) / secs : 0.0) + "/s";
    if (s.manifest_checked)
        line += ", manifest verified";
    if (s.resumed_at > 0)
        line += ", resumed at stream byte " + std::to_string(s.resumed_at);
    line += ": " + o.where;
    return line;
}

// ---- the step script --------------------------------------------------------------------------

// Always single-quoted (shell_quote leaves safe words bare; one rule is easier to check).
std::string quote(std::string_view s) { return kube::single_quote(s); }

result<std::vector<std::pair<std::string, std::string>>, hook_error>
step_environment(const env_list& in) {
    std::vector<std::pair<std::string, std::string>> env;
    bool have_ci = false;
    for (const auto& [k, v] : in) {
        if (k.empty() || k.find('=') != std::string::npos || k.find('\0') != std::string::npos)
            return fail(step_error(container_step_errc::bad_request,
                                   "environment key '" + k +
                                       "' is invalid - the key must be non-empty and must not "
                                       "contain = or a NUL byte"));
        if (v.find('\0') != std::string::npos)
            return fail(step_error(container_step_errc::bad_request,
                                   "environment variable " + k + " contains a NUL byte"));
        if (k == "GITHUB_ACTIONS")
            continue; // replaced below instead of duplicated
        if (k == "CI")
            have_ci = true;
        env.emplace_back(k, v);
    }
    env.emplace_back("GITHUB_ACTIONS", "true");
    if (!have_ci)
        env.emplace_back("CI", "true");
    return env;
}

// ---- the step pod's lifetime ------------------------------------------------------------------

/// Deletes the step pod when the run ends, whichever way it ends.
class step_pod_guard {
public:
    step_pod_guard(kube::api_client& client, std::string ns, std::string name, int out_fd)
        : client_(client)
        , ns_(std::move(ns))
        , name_(std::move(name))
        , out_fd_(out_fd) {}

    ~step_pod_guard() {
        kube::delete_options o;
        o.grace_period_seconds = 0;
        auto r = client_.delete_pod(ns_, name_, o);
        if (!r && !r.error().is(kube::errc::not_found))
            command_line(out_fd_, "warning",
                         "failed to delete step pod " + name_ +
                             " (cleanup_job removes it by label): " + r.error().what());
        else
            command_line(out_fd_, "debug", "deleted step pod " + name_);
    }

    step_pod_guard(const step_pod_guard&) = delete;
    step_pod_guard& operator=(const step_pod_guard&) = delete;

private:
    kube::api_client& client_;
    std::string ns_;
    std::string name_;
    int out_fd_;
};

hook_error cancelled(std::string_view pod) {
    return step_error(container_step_errc::cancelled,
                      "the container step was cancelled; step pod " + std::string(pod) +
                          " is being deleted");
}

/// wait_for_running in slices, so a stop request is seen within a slice.
result<kube::pod, hook_error> wait_running(container_step_context& ctx, const std::string& name) {
    using clock = std::chrono::steady_clock;
    constexpr std::chrono::milliseconds slice{5'000};
    const auto total =
        std::chrono::duration_cast<std::chrono::milliseconds>(ctx.env.prepare_job_timeout);
    const auto deadline = clock::now() + total;
    std::string why;
    for (;;) {
        if (ctx.stop.stop_requested())
            return fail(cancelled(name));
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        wait_options o;
        o.timeout = std::clamp(left, std::chrono::milliseconds(1), slice);
        o.first_poll = std::chrono::milliseconds(200);
        o.max_poll = std::chrono::milliseconds(1'000);
        o.stop = ctx.stop;
        o.on_change = [&](const std::string& w) {
            if (w != why) {
                why = w;
                command_line(ctx.out_fd, "debug", "step pod " + name + ": " + w);
            }
        };
        auto r = wait_for_running(ctx.client, ctx.ns, name, o);
        if (r)
            return r;
        if (r.error().is(kube::errc::cancelled))
            return fail(cancelled(name));
        if (!r.error().is(kube::errc::timeout))
            return fail(step_error(container_step_errc::pod_start, r.error().what()));
        if (clock::now() >= deadline)
            return fail(step_error(
                container_step_errc::pod_start,
                "step pod " + name + " did not reach Running within " +
                    std::to_string(
                        std::chrono::duration_cast<std::chrono::seconds>(total).count()) +
                    " s (ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS)" +
                    (why.empty() ? std::string() : ": " + why)));
    }
}

/// One copy between the job pod and the step pod, printed as a ::group::. `to_runs_steps`, when
/// given, learns whether the receiving pod's podpipe has `podpipe run`.
remote::copy_result copy_between(container_step_context& ctx, const std::string& title,
                                 const remote::pod_dir& from, const remote::pod_dir& to,
                                 bool* to_runs_steps = nullptr) {
    remote::copy_options opt = ctx.copy;
    const auto user_info = opt.on_info;
    const int out = ctx.out_fd;
    opt.on_info = [out, user_info](const std::string& line) {
        write_all(out, line + "\n");
        if (user_info)
            user_info(line);
    };
    write_all(out, "::group::" + escape_command_message(title) + "\n");
    // A fresh copier per copy: its progress counters are per instance.
    remote::pod_copier copier(ctx.client, std::move(opt), ctx.stop);
    auto end_group = [out] { write_all(out, "::endgroup::\n"); };
    // Tried again after failures that can pass, as every copy of the hook (session.cpp).
    const remote::retry_policy policy = ctx.env.copy_retry_policy();
    auto copied = remote::with_retries(
        [&]() -> remote::copy_result {
            auto src = copier.probe(from);
            if (!src)
                return fail(src.error());
            auto dst = copier.probe(to);
            if (!dst)
                return fail(dst.error());
            if (to_runs_steps != nullptr)
                *to_runs_steps = dst->has_step_run;
            return copier.pod_to_pod(*src, *dst);
        },
        policy, ctx.stop,
        [out, &title](const remote::retry_notice& n) {
            command_line(out, "warning", title + " " + remote::retry_text(n));
        });
    if (!copied) // for good: the target's resume ledger goes, the error says what is left
        copied = fail(copier.give_up(std::move(copied.error())));
    if (copied)
        write_all(out, copy_summary(*copied) + "\n");
    end_group();
    return copied;
}

/// Whether the step pod still exists or has ended (for naming it as the cause). Called only on
/// a failure: a pod whose container was just killed still reads Running until the kubelet
/// reports it (upstream's PLEG relists every second), so a pod that is still Running is asked
/// again for up to 3 s before nothing is said.
std::string pod_gone_note(container_step_context& ctx, const std::string& name) {
    for (int attempt = 0;; ++attempt) {
        auto p = ctx.client.get_pod(ctx.ns, name);
        if (!p && p.error().is(kube::errc::not_found))
            return "; step pod " + name + " is gone (deleted or evicted while the step ran)";
        if (p && (p->status.phase == "Failed" || p->status.phase == "Succeeded"))
            return "; step pod " + name + " has ended (phase " + p->status.phase + ")";
        if (!p || attempt >= 15 || ctx.stop.stop_requested())
            return {};
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

/// Links /github/* into /__w and writes the step script through stdin.
result<void, hook_error> set_up_step_pod(container_step_context& ctx, const std::string& name,
                                         const std::string& tail, const std::string& script) {
    kube::exec_options o;
    o.ns = ctx.ns;
    o.pod = name;
    o.container = std::string(kube::job_container_name);
    o.command = {"sh", "-c", github_setup_script(tail, script.size())};
    o.use_stdin = true;
    kube::exec_session_options so;
    so.offer_v5 = ctx.copy.offer_v5; // one protocol choice for every exec of the step
    so.stop = ctx.stop;
    // Tried again as the hook's other one-shot execs (session.hpp one_shot_retry): the script
    // makes directories (-p), links only what is missing and writes the step script whole
    // again, so a session that broke after it ran is run again too.
    exec_retry retry;
    retry.policy = ctx.env.copy_retry_policy();
    retry.idempotent = true;
    retry.what = "preparing step pod " + name;
    const int out = ctx.out_fd;
    retry.on_warning = [out](const std::string& w) { command_line(out, "warning", w); };
    std::string tail_text;
    auto code = exec_retried(
        ctx.client, o, so, retry, [&](kube::exec_session& s) -> result<int, kube::api_error> {
            auto& in = s.stdin_sink();
            // Errors of write/finish show up as the exit status below (the shell ended
            // early) or as the session's error; the status is the story.
            if (auto w = in.write({reinterpret_cast<const std::byte*>(script.data()),
                                   script.size()});
                w)
                (void)in.finish();
            auto c = s.wait();
            tail_text = s.stderr_tail();
            return c;
        });
    if (ctx.stop.stop_requested())
        return fail(cancelled(name));
    if (!code)
        return fail(step_error(container_step_errc::setup,
                               "cannot prepare step pod " + name + ": " + code.error().what()));
    if (*code != 0) {
        while (!tail_text.empty() && (tail_text.back() == '\n' || tail_text.back() == '\r'))
            tail_text.pop_back();
        return fail(step_error(container_step_errc::setup,
                               "cannot prepare /github in step pod " + name + " (exit " +
                                   std::to_string(*code) + ")" +
                                   (tail_text.empty() ? std::string() : ": " + tail_text)));
    }
    return {};
}

} // namespace

const std::error_category& container_step_category() noexcept {
    static const container_step_category_impl instance;
    return instance;
}

// ---- pure pieces ------------------------------------------------------------------------------

result<step_pod_plan, hook_error>
build_container_step_pod(const hook_env& env, std::string_view suffix, std::string_view image,
                         std::string_view job_node, const kube::pod_template_extension* tmpl) {
    auto p = kube::build_step_pod(env.runner_pod_name, suffix, image);
    if (!p)
        return fail(p.error());
    step_pod_plan plan;
    plan.pod = std::move(*p);
    kube::pod& pod = plan.pod;

    if (!job_node.empty()) {
        kube::preferred_scheduling_term near;
        near.weight = 100;
        near.preference.match_expressions.push_back(
            {"kubernetes.io/hostname", "In", {std::string(job_node)}});
        pod.spec.affinity = kube::node_affinity{};
        pod.spec.affinity->preferred.push_back(std::move(near));
    }

    kube::container init;
    init.name = std::string(externals_init_name);
    init.image =
        env.runner_image.empty() ? std::string(kube::default_runner_image) : env.runner_image;
    // Only the podpipe directory, and never a failure: without it the copies use the pod's tar.
    init.command = {"sh", "-c", "cp -a /home/runner/externals/podpipe /__e/ 2>/dev/null || true"};
    init.volume_mounts = {{"externals", "/__e", "", false}};
    init.security = kube::init_container_security(); // passes Pod Security "restricted"
    pod.spec.init_containers.push_back(std::move(init));

    if (tmpl != nullptr) {
        auto w = kube::apply_template(*tmpl, pod);
        if (!w)
            return fail(w.error());
        plan.warnings = std::move(*w);
    }
    return plan;
}

result<std::string, hook_error> container_step_script(const container_request& req) {
    if (req.entry_point.empty())
        return fail(
            step_error(container_step_errc::unsupported,
                       "failed to start the container since the entrypoint is overwritten"));
    if (req.entry_point.find('=') != std::string::npos)
        return fail(step_error(container_step_errc::bad_request,
                               "entrypoint '" + req.entry_point +
                                   "' contains '=', which env(1) would take for a variable"));
    auto env = step_environment(req.environment_variables);
    if (!env)
        return fail(env.error());
    auto args = kube::fix_args(req.entry_point_args);
    if (!args) {
        auto e = args.error();
        e.code = make_error_code(container_step_errc::bad_request);
        return fail(std::move(e));
    }
    const std::string dir =
        req.working_directory.empty() ? "/github/workspace" : req.working_directory;
    std::string s = "rm -f -- \"$0\"\n"; // the script holds secrets: gone before the step runs
    s += "cd " + quote(dir) + " || exit 1\n";
    s += "exec env --";
    for (const auto& [k, v] : *env) {
        std::string word = k;
        word += '=';
        word += v;
        s += ' ';
        s += quote(word);
    }
    s += " " + quote(req.entry_point);
    for (const auto& a : *args)
        s += " " + quote(a);
    s += "\n";
    return s;
}

std::string github_setup_script(std::string_view workspace_tail, std::size_t script_bytes) {
    const std::string ws = quote("/__w/" + std::string(workspace_tail));
    std::string s = "set -e\n";
    s += "mkdir -p " + ws +
         " /__w/_temp/_github_home /__w/_temp/_github_workflow /__w/_temp/_runner_file_commands\n";
    // A path that already exists is a volume the template mounted there: it wins, untouched.
    s += "link() { [ -e \"$2\" ] || [ -L \"$2\" ] || ln -s \"$1\" \"$2\"; }\n";
    s += "link " + ws + " /github/workspace\n";
    s += "link /__w/_temp/_github_home /github/home\n";
    s += "link /__w/_temp/_github_workflow /github/workflow\n";
    s += "link /__w/_temp/_runner_file_commands /github/file_commands\n";
    s += "link /__w/_temp /github/runner_temp\n";
    s += "umask 077\n";
    s += "head -c " + std::to_string(script_bytes) + " > " + std::string(step_script_path) + "\n";
    s += "test $(($(wc -c < " + std::string(step_script_path) + "))) -eq " +
         std::to_string(script_bytes) + "\n";
    return s;
}

// ---- the command ------------------------------------------------------------------------------

result<int, hook_error> run_container_step(container_step_context& ctx,
                                           const container_request& req) {
    // 1. Everything that can be refused without a pod.
    if (req.dockerfile)
        return fail(step_error(container_step_errc::unsupported,
                               "Building container actions is not currently supported"));
    if (req.image.empty())
        return fail(step_error(container_step_errc::bad_request,
                               "run_container_step: the request names no image"));
    auto script = container_step_script(req);
    if (!script)
        return fail(script.error());
    auto tail = kube::workspace_tail(ctx.env.github_workspace);
    if (!tail) {
        auto e = tail.error();
        e.code = make_error_code(container_step_errc::bad_request);
        return fail(std::move(e));
    }
    if (ctx.ns.empty())
        ctx.ns = ctx.client.default_namespace();

    // 2. The step pod, beside the job pod.
    auto job = ctx.client.get_pod(ctx.ns, ctx.job_pod);
    if (!job)
        return fail(step_error(container_step_errc::pod_start,
                               "cannot read job pod " + ctx.job_pod + ": " + job.error().what()));
    auto plan = build_container_step_pod(ctx.env, kube::random_name_suffix(), req.image,
                                         job->spec.node_name, ctx.tmpl);
    if (!plan)
        return fail(plan.error());
    for (const auto& w : plan->warnings)
        command_line(ctx.out_fd, "warning", w);
    const std::string name = plan->pod.metadata.name;
    if (ctx.stop.stop_requested())
        return fail(step_error(container_step_errc::cancelled, "the container step was cancelled"));
    // The action image's registry credentials; deleted after the step pod (its guard is
    // declared later, so it is destroyed first).
    step_pull_secret pull(ctx.client, ctx.ns,
                          [&ctx](const std::string& w) { command_line(ctx.out_fd, "warning", w); });
    if (auto ps = pull.create_for(plan->pod, ctx.env.runner_pod_name, req.registry); !ps)
        return fail(step_error(container_step_errc::pod_start,
                               "failed to create the registry pull secret for step pod " + name +
                                   ": " + ps.error().what()));
    auto created = ctx.client.create_pod(plan->pod, ctx.ns);
    if (!created) {
        // A POST that timed out or lost its connection may still have created the pod: delete
        // it by name (404 is the usual answer). Never after a definite answer such as 409,
        // which would name someone else's pod.
        if (created.error().retryable()) {
            kube::delete_options o;
            o.grace_period_seconds = 0;
            (void)ctx.client.delete_pod(ctx.ns, name, o);
        }
        return fail(step_error(container_step_errc::pod_start, "failed to create step pod " + name +
                                                                   ": " + created.error().what()));
    }
    step_pod_guard guard(ctx.client, ctx.ns, name, ctx.out_fd);
    command_line(ctx.out_fd, "debug",
                 "step pod " + name + " (" + req.image + ") created" +
                     (job->spec.node_name.empty() ? std::string()
                                                  : ", preferring node " + job->spec.node_name));

    // 3. Running.
    auto running = wait_running(ctx, name);
    if (!running)
        return fail(running.error());

    // 4. The workspace, pod to pod.
    if (ctx.before_copy) {
        auto b = ctx.before_copy();
        if (!b)
            return fail(b.error());
    }
    if (ctx.stop.stop_requested())
        return fail(cancelled(name));
    const std::string job_container(kube::job_container_name);
    const remote::pod_dir job_work{ctx.ns, ctx.job_pod, job_container, "/__w"};
    const remote::pod_dir step_work{ctx.ns, name, job_container, "/__w"};
    bool runs_steps = false;
    auto in = copy_between(ctx, "Copying the workspace into step pod " + name, job_work, step_work,
                           &runs_steps);
    if (!in) {
        if (ctx.stop.stop_requested())
            return fail(cancelled(name));
        return fail(copy_failed(container_step_errc::copy_in,
                                "copying /__w of job pod " + ctx.job_pod + " into step pod " +
                                    name + " failed: ",
                                in.error()));
    }

    // 5. /github and the script.
    if (auto s = set_up_step_pod(ctx, name, *tail, *script); !s)
        return fail(s.error());

    // 6. The step.
    // Under the step pod's `podpipe run` a broken session is re-attached (issue 21).
    const step_target step{ctx.ns, name, job_container};
    const std::vector<std::string> argv{"sh", std::string(step_script_path)};
    result<int, kube::api_error> code = 0;
    if (runs_steps && ctx.env.step_reattach.count() > 0) {
        const int out = ctx.out_fd;
        const resumable_step how =
            step_under_run(ctx.env, ctx.copy.pod_binary, "/tmp/podpipe-steps/step",
                           [out](const std::string& w) { command_line(out, "warning", w); });
        code = exec_step_resumable(ctx.client, step, how, argv, ctx.out_fd, ctx.err_fd, ctx.stop);
    } else {
        code = exec_step(ctx.client, step, argv, ctx.out_fd, ctx.err_fd, ctx.stop);
    }
    if (!code) {
        if (ctx.stop.stop_requested())
            return fail(cancelled(name));
        return fail(step_error(
            container_step_errc::step_exec,
            "the step in pod " + name + " did not report an exit status: " + code.error().what() +
                pod_gone_note(ctx, name) + "; its changes were not copied back"));
    }
    if (*code != 0)
        command_line(ctx.out_fd, "debug",
                     "the step exited with " + std::to_string(*code) +
                         "; copying its changes back");

    // 7. The changes, back into the job pod.
    auto back = copy_between(ctx, "Copying the step's changes back into job pod " + ctx.job_pod,
                             step_work, job_work);
    if (!back) {
        if (ctx.stop.stop_requested())
            return fail(cancelled(name));
        return fail(copy_failed(container_step_errc::copy_back,
                                "the step exited with " + std::to_string(*code) +
                                    ", but copying /__w of step pod " + name +
                                    " back into job pod " + ctx.job_pod + " failed: ",
                                back.error(), pod_gone_note(ctx, name)));
    }
    if (ctx.after_copy_back) {
        auto a = ctx.after_copy_back();
        if (!a)
            return fail(a.error());
    }
    return *code;
}

} // namespace podpipe::hook
