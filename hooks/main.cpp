// podpipe-hook: the runner's Kubernetes container hook (spec/hook-behavior.md §2). The runner
// starts tools/hook.sh, which execs this binary; one JSON document arrives on stdin, the
// response (prepare_job) goes to the file it names. Errors are printed as `::error::TEXT` (the
// runner's workflow-command form) and exit 1; a step's own exit code is passed through.
#include "hooks/commands/cleanup_job.hpp"
#include "hooks/commands/container_step.hpp"
#include "hooks/commands/env.hpp"
#include "hooks/commands/input.hpp"
#include "hooks/commands/log.hpp"
#include "hooks/commands/prepare_job.hpp"
#include "hooks/commands/script_step.hpp"
#include "hooks/commands/session.hpp"
#include "hooks/commands/volume_mode.hpp"
#include "kube/client.hpp"
#include "kube/config.hpp"
#include "kube/template.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stop_token>
#include <string>
#include <thread>

extern char** environ;

namespace podpipe::hook {
namespace {

constexpr const char* usage_text =
    R"(podpipe-hook: Kubernetes container hook for GitHub Actions self-hosted runners.

The runner starts it through a .sh shim (tools/hook.sh; set ACTIONS_RUNNER_CONTAINER_HOOKS to
the shim's path) and writes one JSON document on stdin: {"command": ..., "responseFile": ...,
"state": ..., "args": ...}. Commands: prepare_job, run_script_step, run_container_step,
cleanup_job.

Environment: ACTIONS_RUNNER_POD_NAME (required), ACTIONS_RUNNER_KUBERNETES_NAMESPACE,
ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE, ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS,
PODPIPE_WORKSPACE_MODE=stream|volume, PODPIPE_COMPRESSION_LEVEL, PODPIPE_THREADS,
PODPIPE_POD_THREADS, PODPIPE_CHUNK_SIZE, PODPIPE_MEMORY_BUDGET, PODPIPE_STEP_REATTACH_SECONDS,
PODPIPE_COPY_RETRY_SECONDS.
Cluster access: in-cluster service account, else KUBECONFIG.

Exit codes: 0 success; 1 failure (printed as ::error::); a script step's own exit code.
)";

int error_exit(const std::string& text) {
    // One line per ::error:: command: the runner shows only the first line otherwise.
    std::string line = text;
    for (char& c : line)
        if (c == '\n' || c == '\r')
            c = ' ';
    std::fprintf(stdout, "::error::%s\n", line.c_str());
    std::fflush(stdout);
    return 1;
}

result<std::string, std::string> read_stdin() {
    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(STDIN_FILENO, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(std::string("reading stdin: ") + std::strerror(errno));
        if (n == 0)
            return text;
        text.append(buf, static_cast<std::size_t>(n));
        if (text.size() > max_input_bytes)
            return fail(std::string("the input on stdin is larger than 16 MiB"));
    }
}

int run(int argc, char** argv) {
    if (argc > 1) {
        const std::string a = argv[1];
        if (a == "--help" || a == "-h") {
            std::fputs(usage_text, stdout);
            return 0;
        }
        if (a == "--version") {
            std::puts("podpipe-hook 0.3.0");
            return 0;
        }
        std::fprintf(stderr, "podpipe-hook: takes no arguments (the input comes on stdin); see --help\n");
        return 2;
    }
    auto text = read_stdin();
    if (!text)
        return error_exit(text.error());
    auto input = parse_input(*text);
    if (!input)
        return error_exit(input.error().what());
    auto env = read_env(env_from_environ(environ));
    if (!env)
        return error_exit(env.error().what());
    for (const auto& w : env->warnings)
        std::printf("::warning::%s\n", w.c_str());

    auto cfg = kube::load_config(kube::config_sources::from_process());
    if (!cfg)
        return error_exit(cfg.error().what());
    std::string ns = env->namespace_name;
    if (ns.empty() && input->state && !input->state->namespace_name.empty())
        ns = input->state->namespace_name;
    if (ns.empty())
        ns = cfg->ns;

    // SIGINT/SIGTERM (the runner cancelling the job) stop the running command: the remote
    // process is torn down with its session, and the hook exits non-zero.
    std::stop_source cancel;
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr); // before any thread starts: all inherit it
    std::jthread signal_waiter([&cancel, sigs](std::stop_token) {
        int sig = 0;
        if (sigwait(&sigs, &sig) == 0 && sig != 0) {
            std::printf("::warning::podpipe-hook: %s received, stopping\n",
                        sig == SIGINT ? "SIGINT" : "SIGTERM");
            std::fflush(stdout);
            cancel.request_stop();
        }
    });
    // The waiter ends with the process; it must not hold up exit.
    signal_waiter.detach();
    // The signal also ends the REST call in flight (calls made after it, the clean-up, run).
    kube::client_options client_opts;
    client_opts.stop = cancel.get_token();
    auto client = kube::api_client::connect(std::move(*cfg), client_opts);
    if (!client)
        return error_exit(client.error().what());

    hook_log log(stdout);
    hook_session session{**client, ns, *env, log, cancel.get_token()};
    // The reference reviews permissions on every invocation (13 requests); prepare_job does it
    // once and records it in the state, later commands trust that record.
    if (input->cmd != command::prepare_job && !(input->state && input->state->permissions_checked))
        if (auto ok = check_permissions(session, env->mode == workspace_mode::volume); !ok)
            return error_exit(ok.error().what());
    // PODPIPE_WORKSPACE_MODE=volume: the runner's work claim is mounted, nothing is copied.
    const bool volume = env->mode == workspace_mode::volume;
    switch (input->cmd) {
    case command::cleanup_job: {
        if (volume && input->state)
            hand_the_claim_back(session, *input->state);
        auto done = cleanup_job(**client, ns, env->runner_pod_name, rest_retry_of(session));
        if (!done)
            return error_exit("cleanup_job: " + done.error().what());
        log.debug("cleanup_job: deleted " + std::to_string(done->pods) + " pod(s) and " +
                  std::to_string(done->secrets) + " secret(s) labelled runner-pod=" +
                  env->runner_pod_name);
        return 0;
    }
    case command::prepare_job: {
        const auto& args = std::get<prepare_job_args>(input->args);
        auto done = volume ? prepare_job_volume(session, args, input->response_file)
                           : prepare_job(session, args, input->response_file);
        if (!done)
            return error_exit(done.error().what());
        return 0;
    }
    case command::run_script_step: {
        if (!input->state)
            return error_exit("run_script_step: no state from prepare_job in the input");
        const auto& args = std::get<run_script_step_args>(input->args);
        auto code = volume ? run_script_step_volume(session, *input->state, args)
                           : run_script_step(session, *input->state, args);
        if (!code)
            return error_exit(code.error().what());
        // The step's own exit code is the hook's: the runner fails the step on non-zero.
        return *code;
    }
    case command::run_container_step: {
        if (volume) {
            // The step pod mounts the shared claim: it needs no job pod.
            auto code = run_container_step_volume(session, input->state.value_or(job_state{}),
                                                  std::get<container_request>(input->args));
            if (!code)
                return error_exit("failed to run container step: " + code.error().what());
            return *code;
        }
        if (!input->state || input->state->job_pod.empty())
            return error_exit("run_container_step: no job pod in the state (did prepare_job run?)");
        auto tmpl = kube::load_template(env->template_path);
        if (!tmpl)
            return error_exit(tmpl.error().what());
        const std::string job_pod = input->state->job_pod;
        container_step_context ctx{**client, ns, *env, job_pod};
        ctx.tmpl = *tmpl ? &**tmpl : nullptr;
        ctx.copy = copy_options_for(session);
        ctx.stop = cancel.get_token();
        // The runner's _temp (this step's fresh file-command files, event.json) reaches the job
        // pod first, then travels with /__w; the file commands come back from the job pod.
        ctx.before_copy = [&]() { return sync_temp_to_pod(session, job_pod); };
        ctx.after_copy_back = [&]() -> result<void, hook_error> {
            PODPIPE_TRY(copy_file_commands_back(session, job_pod));
            if (auto rec = record_temp(session, job_pod); !rec)
                log.debug("could not record _temp after the step: " + rec.error().what());
            return {};
        };
        auto code = run_container_step(ctx, std::get<container_request>(input->args));
        if (!code)
            return error_exit("failed to run container step: " + code.error().what());
        return *code;
    }
    }
    return error_exit("podpipe-hook: unknown command");
}

} // namespace
} // namespace podpipe::hook

int main(int argc, char** argv) {
    try {
        return podpipe::hook::run(argc, argv);
    } catch (const std::exception& e) {
        std::printf("::error::podpipe-hook: fatal: %s\n", e.what());
        return 1;
    }
}
