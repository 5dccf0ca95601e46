// The pod template extension (ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE, spec/hook-behavior.md
// §3.3): a YAML PodTemplateSpec parsed once into typed pieces, then merged into a generated pod
// with the documented rules:
//   metadata: labels/annotations set on the pod, the template wins (a warning per overwrite);
//             `runner-pod` may not be changed (cleanup finds pods by it: template_forbidden).
//   spec:     `containers` without a leading '$' are appended as sidecars; `$<name>` entries
//             are merged into the generated container <name> (env, volumeMounts, ports
//             appended; name and image never change; every other field replaces); `volumes`
//             are appended; every other key replaces the generated value wholesale.
// Only fields that api_types.hpp can carry are accepted; anything else is refused with the
// field's path (template_unsupported) instead of being dropped silently. yaml-cpp stays in
// template.cpp; parse_template never throws.
#pragma once

#include "engine/common/result.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"
#include "kube/pod_spec.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::kube {

/// A `$<name>` container of the template: each optional is set iff the key was present.
struct container_override {
    std::string target;                      ///< the generated container's name (without '$')
    std::vector<env_var> env;                ///< appended
    std::vector<volume_mount> volume_mounts; ///< appended
    std::vector<container_port> ports;       ///< appended
    std::optional<std::vector<std::string>> command;
    std::optional<std::vector<std::string>> args;
    std::optional<std::string> working_dir;
    std::optional<std::string> image_pull_policy;
    std::optional<std::vector<env_from_secret>> env_from;
    std::optional<security_context> security;
    std::optional<resource_requirements> resources;
    bool has_image = false; ///< present and ignored (warning)
};

/// spec keys other than containers/volumes: set iff present in the template (they replace).
struct pod_spec_overrides {
    std::optional<std::vector<container>> init_containers;
    std::optional<string_map> node_selector;
    std::optional<node_affinity> affinity;
    std::optional<std::vector<toleration>> tolerations;
    std::optional<std::string> restart_policy;
    std::optional<std::string> service_account_name;
    std::optional<std::vector<std::string>> image_pull_secrets;
    std::optional<pod_security_context> security;
    std::optional<std::int64_t> termination_grace_period_seconds;
};

struct pod_template_extension {
    string_map labels;
    string_map annotations;
    pod_spec_overrides spec;
    std::vector<container> sidecars;           ///< appended after the generated containers
    std::vector<volume> volumes;               ///< appended after the generated volumes
    std::vector<container_override> overrides; ///< `$name` entries in template order
};

/// Largest template accepted; real templates are a few KiB.
inline constexpr std::size_t max_template_bytes = 1u << 20;

/// Parses template text. `path` only names the file in messages. Empty text or a non-mapping
/// top level → template_invalid "Failed to parse <path>"; a wrong type →
/// "Failed to parse <path>: <field path>: expected <type>"; an unknown field →
/// template_unsupported "<path>: <field path> is not supported by podpipe".
result<pod_template_extension, api_error> parse_template(std::string_view yaml_text,
                                                          std::string_view path);

/// Reads `path` (the env variable's value) and parses it. An empty path means "no template"
/// (nullopt). A missing/unreadable file → template_unreadable naming the path and errno text.
result<std::optional<pod_template_extension>, api_error> load_template(std::string_view path);

/// Merges `ext` into `p` (job pod or step pod) by the rules above. Returns the warnings the
/// reference prints (label/annotation overwrites, image/name overrides skipped), for the caller
/// to log as ::warning::. The pod is unchanged on error.
result<std::vector<std::string>, api_error> apply_template(const pod_template_extension& ext,
                                                            pod& p);

} // namespace podpipe::kube
