// run_container_step in stream mode (spec/hook-behavior.md §4.3, §3.9; fixes §6.8, #302, #290):
// a container action runs in a short-lived step pod that receives the job pod's /__w streamed
// pod→pod through this process's memory (never the runner's disk), and whatever the step changes
// under /__w (workspace, file commands, RUNNER_TEMP) is streamed back into the job pod before
// the step pod is deleted. The step's exit code is the result.
//
// The order, and why:
//   1. Refuse what cannot run, before any pod exists: a Dockerfile action ("Building container
//      actions is not currently supported"), no image, no entryPoint ("failed to start the
//      container since the entrypoint is overwritten", the reference text), a GITHUB_WORKSPACE
//      without a two-segment tail, env keys env(1) cannot carry, unterminated quotes in the args.
//      Why no image-default entrypoint: the hook cannot learn an image's ENTRYPOINT/CMD without a
//      registry client, and the only way to let Kubernetes run it (a step container without
//      `command`) needs the workspace in place before that container starts: an init container
//      that receives the copy, a sidecar that keeps the pod alive for the copy back, env through
//      a Secret, output through pods/log and the exit code from the container status. That is a
//      different pod lifecycle from the exec-based one here; it is noted as not done.
//   2. The step pod: build_step_pod (`job`, `tail -f /dev/null`, emptyDir /__w /__e /github,
//      label runner-pod) + a *preferred* node affinity (weight 100) to the job pod's node, so
//      the pod→pod stream stays on one kubelet and the runner image is already pulled there, but
//      a full node never blocks the step + an init container (the runner image, env.runner_image)
//      that copies only /home/runner/externals/podpipe into /__e (a few MB instead of ~600 MB of
//      externals), succeeding also when the image has no podpipe (then the copies use the pod's
//      tar: pod_copier probes by itself). The template (§3.3) is applied last, as for the job pod:
//      `$job` merges into the step container, and its `initContainers`/`affinity`, if set,
//      replace ours (the documented "template wins" rule; a template that dropped fs-init
//      because the runner image cannot be pulled must not get it back here).
//   3. Wait for Running (env.prepare_job_timeout), in slices so that a stop is honoured within
//      seconds; the error names the pod and the last reason seen (ErrImagePull, Unschedulable...).
//   4. before_copy(), then /__w of the job pod → /__w of the step pod (pod_to_pod), reported in a
//      ::group:: with one summary line.
//   5. /github/{workspace,home,workflow,file_commands,runner_temp} become symlinks into /__w
//      (workspace → /__w/<tail>, home → _temp/_github_home, workflow → _temp/_github_workflow,
//      file_commands → _temp/_runner_file_commands, runner_temp → _temp, which is what the runner
//      mounts there in docker mode), so everything the step writes through the paths the runner
//      put into its env lands in /__w and comes back with it (a path a template volume already
//      occupies is left alone). Tools that resolve real paths see /__w/... In the same exec the
//      step script is written to /github (mode 0600) through stdin with a length-bounded `head -c`
//      (works on v4 too): the env holds secrets, and exec arguments travel in the request URL,
//      which API server audit logs record. The script deletes itself first, like the reference's.
//   6. The script `cd`s into the request's workingDirectory (/github/workspace) and execs
//      `env -- 'K=V'... 'entrypoint' 'arg'...`: every word single-quoted, so values with $, `,
//      quotes or newlines arrive byte for byte (the reference double-quotes and lets the shell
//      re-expand the args); args are tokenised by fix_args (§3.1.2), which undoes the runner's
//      `"arg 1"` quoting. HOME is kept (=/github/home for container actions), GITHUB_ACTIONS=true
//      replaces a user value, CI=true unless the request has CI. Output is live (exec_step).
//   7. The step pod's /__w → the job pod's /__w, also when the step exited non-zero (its outputs
//      and summary matter then too), then after_copy_back(). Not when the exec itself failed
//      (connection lost, no status): the step may still be writing, and the result is an error
//      anyway. A step pod that vanished is named as such. Files the step deleted are not deleted
//      in the job pod (the copy merges: new and changed files win, extra files stay).
//   8. The step pod is deleted (grace 0) on every path, error and stop included; a failed delete
//      is a ::warning:: (cleanup_job removes it by label later), never the step's error.
//
// Output: step stdout/stderr go to out_fd/err_fd as they arrive; the hook's own lines
// (::group::, ::debug::, ::warning::, the copy summaries) go to out_fd.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/env.hpp"
#include "hooks/commands/input.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"
#include "remote/pod_copy.hpp"
#include "kube/template.hpp"

#include <functional>
#include <stop_token>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace podpipe::kube {
class api_client;
}

namespace podpipe::hook {

/// Why run_container_step failed (the step's own non-zero exit is not an error).
enum class container_step_errc {
    unsupported = 1, ///< Dockerfile action, or no entryPoint (reference texts)
    bad_request,     ///< no image, bad env key, bad args, bad GITHUB_WORKSPACE
    pod_start,       ///< creating the step pod or waiting for it to run failed
    copy_in,         ///< the workspace did not reach the step pod (or before_copy failed)
    setup,           ///< /github links or the step script could not be put in place
    step_exec,       ///< the step's exec could not start or ended without an exit status
    copy_back,       ///< the step's changes did not reach the job pod (or after_copy_back failed)
    cancelled,       ///< the stop token was triggered
};

const std::error_category& container_step_category() noexcept;

inline std::error_code make_error_code(container_step_errc e) noexcept {
    return {static_cast<int>(e), container_step_category()};
}

struct container_step_context {
    kube::api_client& client;
    std::string ns;      ///< empty: the client's default namespace
    const hook_env& env; ///< runner pod name, timeouts, runner_image, github_workspace
    std::string job_pod; ///< state.jobPod
    const kube::pod_template_extension* tmpl = nullptr; ///< already loaded; null: none
    remote::copy_options copy; ///< engine settings; on_info is also called (after our own print)
    int out_fd = 1, err_fd = 2;
    std::stop_token stop;
    /// Before the job pod's /__w is copied (the lead syncs the runner's _temp into it). May be
    /// empty. An error aborts the step (the pod is deleted).
    std::function<result<void, hook_error>()> before_copy;
    /// After the step's changes are back in the job pod, also when the step exited non-zero.
    /// May be empty. Its error becomes the result.
    std::function<result<void, hook_error>()> after_copy_back;
};

/// Runs the container action of `req` (the args of run_container_step). Returns the step's exit
/// code (0..255), or an error whose what() is one line naming the pod and the cause.
result<int, hook_error> run_container_step(container_step_context& ctx,
                                           const container_request& req);

// ---- the pure pieces (tested without a cluster) ----------------------------------------------

/// Where the step script is written in the step pod (an emptyDir, deleted with the pod).
inline constexpr std::string_view step_script_path = "/github/.podpipe-step.sh";
/// Name of the step pod's init container that brings the in-pod podpipe.
inline constexpr std::string_view externals_init_name = "podpipe-externals";

struct step_pod_plan {
    kube::pod pod;
    std::vector<std::string> warnings; ///< from apply_template, for ::warning:: lines
};

/// The step pod of points 2 above. `job_node` empty: no affinity.
result<step_pod_plan, hook_error>
build_container_step_pod(const hook_env& env, std::string_view suffix, std::string_view image,
                         std::string_view job_node, const kube::pod_template_extension* tmpl);

/// The step script of point 6 (sent through stdin, never in an exec URL).
result<std::string, hook_error> container_step_script(const container_request& req);

/// The `sh -c` text of point 5 for `workspace_tail` ("repo/repo"): links /github/* into /__w and
/// writes exactly `script_bytes` bytes of stdin to step_script_path (mode 0600).
std::string github_setup_script(std::string_view workspace_tail, std::size_t script_bytes);

} // namespace podpipe::hook

template <>
struct std::is_error_code_enum<podpipe::hook::container_step_errc> : std::true_type {};
