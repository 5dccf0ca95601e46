// prepare_job in stream mode (spec/hook-behavior.md §4.1), in this order:
//   preflight (one batch of access reviews; the state remembers it for later commands) →
//   `Job Container is required.` → prune this runner's leftovers → template → job pod spec →
//   pull secret → create the pod (prune on failure) → wait for Running with the pod's real
//   failure reason → the work directory W streamed to /__w with the engine (in-pod podpipe from
//   /__e when the runner image ships it, else the pod's tar) → /github/home and
//   /github/workflow made to point at W/_temp's copies (symlinks, so every later _temp sync
//   refreshes them) → user volumes copied → alpine detection → the record of what the pod's
//   _temp holds (run_script_step sends only changes) → the response file.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/input.hpp"
#include "hooks/commands/response.hpp"
#include "hooks/commands/session.hpp"
#include "kube/pod_spec.hpp"

#include <optional>

#include <string>

namespace podpipe::hook {

/// Where podpipe keeps per-job records on the runner: W/.podpipe-hook (excluded from every copy).
inline constexpr const char* state_dir_name = ".podpipe-hook";

/// The response it wrote (for tests and logs).
result<prepare_job_response, hook_error> prepare_job(hook_session& s, const prepare_job_args& args,
                                                     const std::string& response_file);

/// W/.podpipe-hook/<job pod>/temp.manifest: what the job pod's /__w/_temp is known to hold.
std::string temp_manifest_path(const std::string& work_root, const std::string& job_pod);

/// The registry pull secret (when the job container has credentials) and the job pod before
/// the template: what both modes build first, refusing bad input before anything exists.
struct job_pod_plan {
    kube::job_pod_result built;
    std::optional<kube::secret> pull_secret;
};
result<job_pod_plan, hook_error> plan_job_pod(const hook_env& env, const prepare_job_args& args,
                                              kube::job_pod_options popt);

/// What both modes check first: a hook that cannot answer must not create pods.
result<void, hook_error> check_response_file(const std::string& response_file);

/// Prunes this runner's leftovers (waiting until they are gone: the job pod's name is fixed),
/// creates the pull secret when there is one, then the pod; prunes again when that fails.
result<kube::pod, hook_error> create_job_pod(hook_session& s, const std::optional<kube::secret>& pull_secret,
                                            const kube::pod& job_pod);

/// The end of both modes once the job pod runs: alpine detection (§3.6), the state and the
/// response file. Prunes when the response cannot be written.
result<prepare_job_response, hook_error> finish_prepare(hook_session& s, const kube::pod& created,
                                                        const kube::job_pod_result& built,
                                                        const std::string& pull_secret_name,
                                                        const std::string& response_file);

/// Names under W that never travel: the runner's response files and podpipe's own records.
std::vector<std::string> work_excludes();

} // namespace podpipe::hook
