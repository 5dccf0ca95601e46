// psa: Pod Security Admission as the v1.32 API server runs it (the built-in PodSecurity plugin,
// staging/src/k8s.io/pod-security-admission). Pure functions over JSON: the namespace labels
// `pod-security.kubernetes.io/{enforce,audit,warn}[-version]` give a policy; a pod is checked
// against the Pod Security Standards (baseline, restricted) of a level and version, with
// upstream's forbidden reasons, details, their order and their pluralisation (README "Pod
// Security Admission"). api.cpp calls these on pod, Job and namespace writes.
#pragma once

#include "tools/kubesim/validation.hpp"

#include <string>
#include <vector>

#include <boost/json.hpp>

namespace podpipe::kubesim {

enum class psa_level { privileged, baseline, restricted };

/// A level and a policy version: `minor` is the x of "v1.x", or -1 for "latest".
struct psa_level_version {
    psa_level level = psa_level::privileged;
    int minor = -1;
    /// "restricted:latest", "baseline:v1.30" (api.LevelVersion.String()).
    std::string text() const;
    bool operator==(const psa_level_version&) const = default;
};

/// The effective policy of a namespace; the server's default is privileged:latest for all three.
struct psa_policy {
    psa_level_version enforce, audit, warn;
};

/// api.PolicyToEvaluate: labels → policy. An invalid level or version is an error on
/// `metadata.labels[KEY]`; enforce then falls back to restricted (closed), audit and warn to
/// privileged (open), an invalid version to latest.
psa_policy psa_policy_from_labels(const boost::json::object* labels, field_errors* errors);

/// The aggregate of the failed checks, in upstream's evaluation order.
struct psa_result {
    std::vector<std::string> reasons;
    std::vector<std::string> details; ///< same length; "" when a check gives no detail

    bool allowed() const { return reasons.empty(); }

    /// "reason (detail), reason, ..." (AggregateCheckResult.ForbiddenDetail).
    std::string forbidden_detail() const;
    /// "reason, reason" (AggregateCheckResult.ForbiddenReason).
    std::string forbidden_reason() const;
};

/// Evaluates a pod's metadata and spec (or a pod template's) against a level and version.
psa_result psa_evaluate(const psa_level_version& lv, const boost::json::object& metadata,
                        const boost::json::object& spec);

/// What admission decides for one pod (or pod controller) write.
struct psa_decision {
    std::string forbidden;             ///< "violates PodSecurity ..." (enforce), "" = allowed
    std::vector<std::string> warnings; ///< "would violate PodSecurity ..." (warn)
    std::string audit;                 ///< the audit-violations annotation, "" = none
    std::string policy_error;          ///< "Failed to parse policy: ..." (audit "error" key)
};

/// A pod create (`enforce` = true) or a pod controller create such as a Job (`enforce` = false:
/// only warn and audit), evaluated under the namespace's labels (`ns_labels` may be null).
psa_decision psa_admit(const boost::json::object* ns_labels, const boost::json::object& metadata,
                       const boost::json::object& spec, bool enforce);

/// A namespace create or update: invalid PodSecurity labels are field errors (422 on
/// `metadata.labels[...]`); on update only when they are new (old errors differ).
field_errors psa_namespace_errors(const boost::json::object* new_labels,
                                  const boost::json::object* old_labels, bool update);

/// The warnings a namespace update answers when it makes the enforce policy stricter: the
/// existing pods that would violate it, grouped by forbidden reason (EvaluatePodsInNamespace).
std::vector<std::string>
psa_namespace_update_warnings(const std::string& ns, const boost::json::object* new_labels,
                              const boost::json::object* old_labels,
                              const std::vector<boost::json::object>& pods);

} // namespace podpipe::kubesim
