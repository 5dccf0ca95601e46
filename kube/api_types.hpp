// Typed Kubernetes API objects (spec/kube-api.md §3). JSON is parsed into these once, at the
// edge (json.hpp), and serialized from them in one place; nothing past the parser sees JSON.
// Parsed objects carry the subset of fields podpipe reads; the documented comment on each
// field says when it is only sent, only read, or both.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace podpipe::kube {

using string_map = std::map<std::string, std::string>;

struct object_meta {
    std::string name;
    std::string generate_name;      ///< sent only
    std::string ns;                 ///< metadata.namespace
    std::string uid;                ///< read only
    std::string resource_version;   ///< read only
    std::string deletion_timestamp; ///< read only; empty when not terminating
    string_map labels;
    string_map annotations;
};

// ---- container (sent; parsed: name and image) ----------------------------------------------

struct secret_key_ref {
    std::string name;
    std::string key;
    std::optional<bool> optional;
};

struct env_var {
    std::string name;
    std::string value;
    std::optional<secret_key_ref> secret_ref; ///< valueFrom.secretKeyRef; wins over value
};

struct env_from_secret {
    std::string secret_name; ///< envFrom[].secretRef.name
};

struct container_port {
    int container_port = 0;
    std::optional<int> host_port;
    std::string protocol = "TCP";
};

struct volume_mount {
    std::string name;
    std::string mount_path;
    std::string sub_path;
    bool read_only = false;
};

struct capability_set {
    std::vector<std::string> add;
    std::vector<std::string> drop; ///< ["ALL"] for Pod Security "restricted"
};

struct seccomp_profile {
    std::string type;              ///< RuntimeDefault, Localhost, Unconfined
    std::string localhost_profile; ///< with type Localhost
};

struct security_context {
    std::optional<bool> privileged;
    std::optional<std::int64_t> run_as_user;
    std::optional<std::int64_t> run_as_group;
    std::optional<bool> run_as_non_root;
    std::optional<bool> allow_privilege_escalation;
    std::optional<bool> read_only_root_filesystem;
    std::optional<capability_set> capabilities;
    std::optional<seccomp_profile> seccomp;
};

struct pod_security_context {
    std::optional<std::int64_t> fs_group;
    std::optional<std::int64_t> run_as_user;
    std::optional<std::int64_t> run_as_group;
    std::optional<bool> run_as_non_root;
    std::optional<seccomp_profile> seccomp;
};

struct resource_requirements {
    string_map requests; ///< e.g. {"cpu": "500m", "memory": "1Gi"}
    string_map limits;
};

struct container {
    std::string name;
    std::string image;
    std::vector<std::string> command;
    std::vector<std::string> args;
    std::vector<env_var> env;
    std::vector<env_from_secret> env_from;
    std::vector<container_port> ports;
    std::vector<volume_mount> volume_mounts;
    std::string working_dir;
    std::string image_pull_policy;
    std::optional<security_context> security;
    resource_requirements resources;
};

// ---- volumes (sent) ------------------------------------------------------------------------

struct empty_dir_source {
    std::string medium;     ///< "" or "Memory"
    std::string size_limit; ///< quantity, e.g. "1Gi"; empty: none
};

struct pvc_source {
    std::string claim_name;
    bool read_only = false;
};

struct secret_volume_source {
    std::string secret_name;
    std::optional<int> default_mode;
};

struct volume {
    std::string name;
    std::variant<empty_dir_source, pvc_source, secret_volume_source> source;
};

// ---- scheduling (sent) ---------------------------------------------------------------------

struct node_selector_requirement {
    std::string key;
    std::string op; ///< In, NotIn, Exists, DoesNotExist, Gt, Lt
    std::vector<std::string> values;
};

struct node_selector_term {
    std::vector<node_selector_requirement> match_expressions;
    std::vector<node_selector_requirement> match_fields; ///< key metadata.name only
};

struct preferred_scheduling_term {
    int weight = 1; ///< 1..100
    node_selector_term preference;
};

struct node_affinity {
    std::vector<node_selector_term> required; ///< ORed; empty: no required term
    std::vector<preferred_scheduling_term> preferred;
};

struct toleration {
    std::string key;
    std::string op; ///< Exists or Equal
    std::string value;
    std::string effect;
    std::optional<std::int64_t> toleration_seconds;
};

// ---- pod ------------------------------------------------------------------------------------

struct pod_spec {
    std::vector<container> init_containers;
    std::vector<container> containers;
    std::vector<volume> volumes;
    string_map node_selector;
    std::optional<node_affinity> affinity;
    std::vector<toleration> tolerations;
    std::string restart_policy;
    std::string service_account_name;
    std::vector<std::string> image_pull_secrets; ///< secret names
    std::string node_name;                       ///< read only: never set by podpipe
    std::optional<pod_security_context> security;
    std::optional<std::int64_t> termination_grace_period_seconds;
};

struct container_state_waiting {
    std::string reason;
    std::string message;
};

struct container_state_running {
    std::string started_at;
};

struct container_state_terminated {
    int exit_code = 0;
    int signal = 0;
    std::string reason;
    std::string message;
};

/// containerStatuses[].state: at most one member is set.
struct container_state {
    std::optional<container_state_waiting> waiting;
    std::optional<container_state_running> running;
    std::optional<container_state_terminated> terminated;
};

struct container_status {
    std::string name;
    bool ready = false;
    int restart_count = 0;
    container_state state;
};

struct pod_condition {
    std::string type;
    std::string status; ///< "True", "False", "Unknown"
    std::string reason;
    std::string message;
};

struct pod_status {
    std::string phase; ///< Pending, Running, Succeeded, Failed, Unknown; empty if absent
    std::string reason;
    std::string message;
    std::string host_ip;
    std::string pod_ip;
    std::vector<pod_condition> conditions;
    std::vector<container_status> init_container_statuses;
    std::vector<container_status> container_statuses;
};

struct pod {
    object_meta metadata;
    pod_spec spec;
    pod_status status; ///< read only
};

struct pod_list {
    std::vector<pod> items;
    std::string resource_version;
    std::string continue_token; ///< metadata.continue; empty: last page
};

// ---- other objects ----------------------------------------------------------------------

struct node {
    std::string name;
    string_map labels;
    bool unschedulable = false;
};

struct secret {
    object_meta metadata;
    std::string type; ///< empty: Opaque (server default)
    bool immutable = false;
    /// Raw values (not base64); the serializer encodes them. Not filled by parsing: podpipe
    /// never reads secret contents back.
    string_map data;
};

struct secret_list {
    std::vector<secret> items;
    std::string continue_token;
};

struct pvc {
    std::string name;
    string_map labels;
    std::vector<std::string> access_modes; ///< ReadWriteOnce, ReadWriteMany, ReadWriteOncePod, ...
    std::string phase;                     ///< read only: Pending, Bound, Lost
    /// spec.resources.requests.storage, e.g. "1Gi" (sent; read back from spec).
    std::string storage_request;
    std::string storage_class_name; ///< empty: the cluster default (sent when set)
    std::string volume_name;        ///< read only: spec.volumeName once bound
};

// ---- batch/v1 Job ----------------------------------------------------------------------------

/// spec.template: labels/annotations and the pod spec of the job's pods.
struct pod_template {
    object_meta metadata; ///< only labels and annotations are sent
    pod_spec spec;        ///< restartPolicy must be Never or OnFailure for a Job
};

struct job_spec {
    pod_template pod;                 ///< spec.template
    std::optional<int> backoff_limit; ///< server default 6
    std::optional<int> completions;
    std::optional<int> parallelism;
    std::optional<std::int64_t> active_deadline_seconds;
    std::optional<int> ttl_seconds_after_finished;
};

struct job_condition {
    std::string type;   ///< Complete, Failed, Suspended, FailureTarget, SuccessCriteriaMet
    std::string status; ///< "True", "False", "Unknown"
    std::string reason;
    std::string message;
};

struct job_status { ///< read only
    int active = 0;
    int succeeded = 0;
    int failed = 0;
    std::string start_time;
    std::string completion_time;
    std::vector<job_condition> conditions;
};

struct job {
    object_meta metadata;
    job_spec spec;
    job_status status;
};

struct job_list {
    std::vector<job> items;
    std::string resource_version;
    std::string continue_token;
};

struct status_cause {
    std::string reason; ///< JSON key "reason" (e.g. ExitCode, FieldValueRequired)
    std::string message;
    std::string field;
};

/// metav1.Status: API errors (§3.9), secret deletion, the exec status channel (§2.4).
struct api_status {
    std::string status; ///< "Success" or "Failure"
    std::string message;
    std::string reason;
    int code = 0; ///< 0 when absent (the exec status channel omits it)
    std::string details_name;
    std::string details_kind;
    std::vector<status_cause> causes;
    std::optional<std::int64_t> retry_after_seconds;
};

struct watch_event {
    enum class kind { added, modified, deleted, bookmark, error };
    kind type = kind::added;
    pod object;                      ///< for added/modified/deleted/bookmark
    std::optional<api_status> error; ///< for error (e.g. 410 Expired)
};

struct resource_attributes {
    std::string ns;
    std::string verb;
    std::string group; ///< "" for the core group
    std::string resource;
    std::string subresource;
    std::string name;
};

struct access_review_result {
    bool allowed = false;
    bool denied = false;
    std::string reason;
    std::string evaluation_error;
};

struct delete_options {
    std::optional<std::int64_t> grace_period_seconds;
    std::string propagation_policy; ///< "", Orphan, Background, Foreground
    std::string precondition_uid;
    std::string precondition_resource_version;
};

/// client.authentication.k8s.io ExecCredential, as printed by an exec plugin (§4.4).
struct exec_credential {
    std::string api_version;
    std::string kind;
    std::string token;                   ///< status.token
    std::string client_certificate_data; ///< status.clientCertificateData (PEM)
    std::string client_key_data;         ///< status.clientKeyData (PEM)
    std::string expiration_timestamp;    ///< status.expirationTimestamp (RFC 3339), or empty
};

} // namespace podpipe::kube
