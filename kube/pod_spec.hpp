// Pod specs the hook sends (spec/hook-behavior.md §2.8, §3.1, §3.2, §3.6, §4.1, §4.3): names
// and labels, containers built from the runner's request, the stream-mode job pod and step pod,
// the registry pull secret, and the alpine detection command. Pure functions: no I/O, no
// randomness (random name suffixes are passed in), no JSON (the pods serialize through
// json.hpp's to_json). Errors carry the reference hook's texts in api_error::message, because
// users search for them.
#pragma once

#include "engine/common/result.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podpipe::kube {

/// Errors of spec building and of the template extension (template.hpp). All map to
/// condition::bad_input: the request, the environment or the template is wrong.
enum class spec_errc {
    missing_runner_name = 1, ///< ACTIONS_RUNNER_POD_NAME unset or empty
    bad_port,                ///< a portMappings entry does not parse (§3.1.1)
    bad_image,               ///< a service image gives no usable container name
    bad_env,                 ///< an environment key Kubernetes (or a shell) would reject
    bad_args,                ///< entryPointArgs that do not tokenise (unterminated quote)
    bad_workspace,           ///< GITHUB_WORKSPACE without a two-segment tail
    no_containers,           ///< neither a job container nor services
    template_unreadable,     ///< the template file cannot be read
    template_invalid,        ///< not YAML, or not a mapping, or a field of the wrong type
    template_unsupported,    ///< a field podpipe's typed pod cannot carry (named in the message)
    template_forbidden,      ///< the template tries to change what cleanup depends on
};

const std::error_category& spec_category() noexcept;

inline std::error_code make_error_code(spec_errc e) noexcept {
    return {static_cast<int>(e), spec_category()};
}

/// A api_error whose what() is exactly `message`.
api_error spec_error(spec_errc e, std::string message);

// ---- names and labels (§2.8) ---------------------------------------------------------------

inline constexpr std::size_t max_name_length = 63;
inline constexpr std::size_t name_suffix_length = 8;
inline constexpr std::string_view runner_label_key = "runner-pod";
inline constexpr std::string_view job_container_name = "job";

/// `runner-pod=<name>`, the selector cleanup lists by. Fails on an empty name.
result<std::string, api_error> runner_label_selector(std::string_view runner_pod_name);
/// First 54 chars of the runner pod name + "-workflow".
result<std::string, api_error> job_pod_name(std::string_view runner_pod_name);
/// First 49 chars + "-step-" + suffix (8 lowercase hex/alnum chars from random_name_suffix()).
result<std::string, api_error> step_pod_name(std::string_view runner_pod_name,
                                              std::string_view suffix);
/// First 47 chars + "-secret-" + suffix.
result<std::string, api_error> secret_name(std::string_view runner_pod_name,
                                            std::string_view suffix);
/// 8 random lowercase hex characters (std::random_device); the only non-pure function here.
std::string random_name_suffix();

// ---- containers from the request (§3.1) ----------------------------------------------------

/// What the pod builder needs of one HookContainer of the runner's request (the command layer
/// converts its parsed input into this). `environment` keeps the request's order.
struct container_source {
    std::string image;
    std::string entry_point;
    std::vector<std::string> entry_point_args;
    std::string working_directory;
    std::vector<std::pair<std::string, std::string>> environment;
    std::vector<std::string> port_mappings;
};

/// `[<host>:]<container>[/<proto>]` (§3.1.1), reference error texts:
/// "Unexpected port format: <in>", "ports should have at most one \":\" separator",
/// "invalid container port: <text>".
result<container_port, api_error> parse_port_mapping(std::string_view mapping);

/// Splits one string with POSIX shell word rules: whitespace separates words, '...' is
/// literal, "..." honours \\ before $ ` " \ and newline, a bare backslash escapes the next
/// character. No expansion of any kind. Unterminated quotes fail (bad_args).
result<std::vector<std::string>, api_error> shell_split(std::string_view text);

/// §3.1.2 (main): `sh -c ...` is kept verbatim; anything else is joined with single spaces
/// and shell_split, which undoes the runner's `"arg 1"` quoting.
result<std::vector<std::string>, api_error> fix_args(const std::vector<std::string>& argv);

/// Service container name (§3.1): the text after the last '/', cut at the first ':' or '@',
/// then made a DNS-1123 label (lower case, other characters to '-', trimmed, <= 63 chars).
/// Empty → "Image definition '<image>' is invalid".
result<std::string, api_error> container_name_for_image(std::string_view image);

/// Names for all services in request order; a base name that occurs more than once gets
/// "-<index>" on every occurrence (redis-0, redis-1), unique ones stay bare (#308).
result<std::vector<std::string>, api_error>
service_container_names(const std::vector<std::string>& images);

/// Pod env from the request (§3.1), in request order: HOME dropped (the image's HOME stays),
/// then GITHUB_ACTIONS=true (replacing a user value instead of duplicating it), then CI=true
/// unless the request has a CI key. podpipe keeps empty values (the reference drops them, §6.10).
/// Keys must match [-._a-zA-Z][-._a-zA-Z0-9]* (what every Kubernetes version accepts):
/// "environment key <k> is invalid ...".
result<std::vector<env_var>, api_error>
container_env(const std::vector<std::pair<std::string, std::string>>& environment);

/// The three stream-mode mounts every job, service and step container gets:
/// externals → /__e, work → /__w, github → /github.
std::vector<volume_mount> stream_mounts();

/// The job container (`job`; `tail -f /dev/null` without an entrypoint), with stream mounts.
result<container, api_error> build_job_container(const container_source& src);
/// A service container named `name`: command/args only when given, image default otherwise.
result<container, api_error> build_service_container(const container_source& src,
                                                      std::string name);

// ---- the stream-mode job pod (§4.1) and step pod (§4.3) -------------------------------------

inline constexpr std::string_view default_runner_image = "ghcr.io/actions/actions-runner:latest";
inline constexpr std::int64_t runner_uid = 1001;

struct job_pod_options {
    std::string runner_pod_name; ///< ACTIONS_RUNNER_POD_NAME (label value, name base)
    std::string runner_image = std::string(default_runner_image); ///< fs-init image
    /// Last two segments of GITHUB_WORKSPACE ("repo/repo"); empty: no workspace mkdir.
    std::string workspace_tail;
    std::string pull_secret_name; ///< empty: no imagePullSecrets
};

struct job_pod_result {
    pod job_pod;
    /// Generated service container names in request order (the response's
    /// context.services follows them, and `$<name>` template overrides match them).
    std::vector<std::string> service_names;
};

/// The job pod before the template merge. `job` may be null or have an empty image (then no
/// job container); with no containers at all: "No containers exist, skipping hook invocation".
result<job_pod_result, api_error> build_job_pod(const job_pod_options& opts,
                                                 const container_source* job,
                                                 const std::vector<container_source>& services);

/// `s` as one POSIX shell word: bare when it has only [A-Za-z0-9_./:@%+=,-] (and is non-empty),
/// else single-quoted with embedded quotes written as '\''.
std::string shell_quote(std::string_view s);

/// `s` always single-quoted, embedded quotes written as '\'' (for generated scripts, where one
/// rule for every word is easier to check than "bare when safe").
std::string single_quote(std::string_view s);

/// The fs-init command: copy the runner image's externals to /__e and pre-create the workspace
/// (the workspace path is shell-quoted when it needs to be).
std::string fs_init_script(std::string_view workspace_tail);

/// The securityContext of podpipe's own init containers (fs-init, the container step's
/// podpipe-externals): the runner's uid and gid (1001) plus what Pod Security "restricted" asks
/// of every container (runAsNonRoot, allowPrivilegeEscalation=false, capabilities drop ALL,
/// seccompProfile RuntimeDefault). A template never reaches them (they are not `$job`), so they
/// must pass on their own.
security_context init_container_security();

/// The last two '/'-separated segments of GITHUB_WORKSPACE; fewer → bad_workspace
/// "Invalid github workspace directory: <p>".
result<std::string, api_error> workspace_tail(std::string_view github_workspace);

/// Step pod for run_container_step (§4.3): container `job` = image, `tail -f /dev/null`,
/// workingDir /__w, the stream mounts; emptyDir volumes; no init container.
result<pod, api_error> build_step_pod(std::string_view runner_pod_name, std::string_view suffix,
                                       std::string_view image);

// ---- registry pull secret (§3.2) ------------------------------------------------------------

struct registry_credentials {
    std::string username;
    std::string password;
    std::string server_url; ///< empty: Docker Hub
};

inline constexpr std::string_view docker_hub_auth_url = "https://index.docker.io/v1/";

/// kubernetes.io/dockerconfigjson secret, immutable, labelled runner-pod. `data` holds the raw
/// .dockerconfigjson text (to_json base64-encodes it).
result<secret, api_error> build_pull_secret(std::string_view runner_pod_name,
                                             std::string_view suffix,
                                             const registry_credentials& creds);

/// The .dockerconfigjson document for `creds`.
std::string docker_config_json(const registry_credentials& creds);

// ---- alpine detection (§3.6) ----------------------------------------------------------------

/// argv run in container `job` after the pod is up: exit 0 means alpine.
std::vector<std::string> alpine_detection_argv();

} // namespace podpipe::kube

template <>
struct std::is_error_code_enum<podpipe::kube::spec_errc> : std::true_type {};
