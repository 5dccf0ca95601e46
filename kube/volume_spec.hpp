// Pod specs of volume mode (spec/hook-behavior.md §5.6, §5.7): the runner's work claim mounted
// at /__w (and sub-paths of it at /__e, /github/...), node affinity to the runner's node, the
// container-step pod and its env Secret. Pure functions over the stream-mode builders of
// pod_spec.hpp: no I/O, no randomness (suffixes are passed in).
//
// Node identity (issue 6): the affinity names the runner's node twice, ORed (required) or as two
// preferred terms of weight 100 each:
//   - `matchFields: metadata.name In [node]`: exact, because spec.nodeName *is* the node's name;
//   - `matchExpressions: kubernetes.io/hostname In [node]`: the reference's form, which tools and
//     policies look for; it names the same node wherever the hostname label equals the node name
//     (kubeadm, kind, EKS, GKE, AKS) and matches no node where it does not.
// So on clusters whose hostname label differs from the node name (some clouds, renamed nodes) the
// pod still lands on the runner's node instead of never scheduling.
#pragma once

#include "engine/common/result.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"
#include "kube/pod_spec.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace podpipe::kube {

/// The pod volume every volume-mode pod has: the runner's work claim.
inline constexpr std::string_view work_volume_name = "work";
/// Where the runner's externals live on the claim (W/externals), mounted at /__e.
inline constexpr std::string_view externals_sub_path = "externals";

/// required: one required term set (two ORed terms); else two preferred terms, weight 100.
node_affinity runner_node_affinity(std::string_view node_name, bool required);

/// The job container's mounts: /__w (the claim), /__e (externals), /github/home
/// (_temp/_github_home), /github/workflow (_temp/_github_workflow).
std::vector<volume_mount> volume_job_mounts();

/// A container action's mounts: /__w, /github/workspace (`workspace_sub_path`),
/// /github/file_commands, /github/runner_temp (_temp), /github/home, /github/workflow.
std::vector<volume_mount> volume_step_mounts(std::string_view workspace_sub_path);

/// GITHUB_WORKSPACE relative to the work root W ("repo/repo"); when it is not below W, the
/// text after its last "_work/" (the reference's rule); else bad_workspace.
result<std::string, api_error> workspace_sub_path(std::string_view work_root,
                                                   std::string_view github_workspace);

/// A user volume (`-v SOURCE:TARGET`) as a sub-path of the claim: an absolute SOURCE must lie
/// inside W (the runner's work volume: nothing else is shared with the pod), a relative one is
/// taken as a path below W. Errors name the volume and say what to do.
result<volume_mount, api_error> user_volume_mount(std::string_view work_root,
                                                   std::string_view source,
                                                   std::string_view target, bool read_only);

struct volume_pod_options {
    std::string claim_name; ///< ACTIONS_RUNNER_CLAIM_NAME or <pod>-work
    std::string node_name;  ///< the runner pod's spec.nodeName
    bool rwo = false;       ///< ACTIONS_RUNNER_HOOK_RWO=true: required affinity
};

/// Turns a stream-mode job pod (build_job_pod) into the volume-mode one: no fs-init, no emptyDirs,
/// no fsGroup (on a claim it would make the kubelet chown the whole work volume on every mount),
/// one `work` claim volume, the job container with volume_job_mounts, services with /__w only,
/// the runner-node affinity. spec.nodeName stays unset.
void make_volume_job_pod(pod& p, const volume_pod_options& opts);

/// The env Secret of a container step: `<runner47>-secret-<suffix>`, labelled runner-pod, one key
/// per variable (container_env's list: validated keys, GITHUB_ACTIONS, CI).
result<secret, api_error> build_step_env_secret(std::string_view runner_pod_name,
                                                 std::string_view suffix,
                                                 const std::vector<env_var>& env);

/// The container-step pod (`<runner49>-step-<suffix>`, label runner-pod, restartPolicy Never):
/// container `job` with the action's image, workingDir, command (entryPoint) and args only when
/// given (else the image's ENTRYPOINT/CMD), env from `env_secret` (envFrom), the step mounts;
/// the claim volume and the runner-node affinity.
result<pod, api_error> build_volume_step_pod(std::string_view runner_pod_name,
                                              std::string_view suffix, const container_source& src,
                                              std::string_view env_secret,
                                              std::string_view workspace_sub_path,
                                              const volume_pod_options& opts);

} // namespace podpipe::kube
