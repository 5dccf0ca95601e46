// JSON <-> typed API objects, where kube/ reads and writes JSON (simdjson stays in json.cpp).
//
// Parsing: one call per response body. Unknown fields are ignored; list items need no
// kind/apiVersion (§3.2); a known field with the wrong JSON type is an error (bad_response),
// never silently defaulted. Bounded: bodies above max_body_bytes and nesting deeper than
// max_depth are rejected. Never throws; thread-safe (one parser per thread).
//
// Serialization: to_json() for everything podpipe sends, through json_writer.
#pragma once

#include "engine/common/result.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"

#include <cstddef>
#include <string>
#include <string_view>

namespace podpipe::kube {

/// A PodList of 500 pods with managedFields is a few MiB; 64 MiB is far beyond any sane page.
inline constexpr std::size_t max_body_bytes = 64u << 20;
/// Real objects nest < 30 levels (managedFields included); deeper input is hostile.
inline constexpr std::size_t max_depth = 128;

result<pod, api_error> parse_pod(std::string_view json);
result<pod_list, api_error> parse_pod_list(std::string_view json);
result<node, api_error> parse_node(std::string_view json);
/// One line of a watch stream (§3.6). ERROR events carry the Status in `error`.
result<watch_event, api_error> parse_watch_event(std::string_view json);
result<api_status, api_error> parse_status(std::string_view json);
result<access_review_result, api_error> parse_access_review(std::string_view json);
result<secret, api_error> parse_secret(std::string_view json);
result<secret_list, api_error> parse_secret_list(std::string_view json);
result<pvc, api_error> parse_pvc(std::string_view json);
/// NodeList items (no kind/apiVersion needed).
result<std::vector<node>, api_error> parse_node_list(std::string_view json);
result<job, api_error> parse_job(std::string_view json);
result<job_list, api_error> parse_job_list(std::string_view json);
/// An exec plugin's stdout; error texts never quote the token.
result<exec_credential, api_error> parse_exec_credential(std::string_view json);

/// Pod for POST .../pods (apiVersion v1, kind Pod; read-only fields omitted).
std::string to_json(const pod& p);
/// Secret for POST .../secrets; data values are base64-encoded here.
std::string to_json(const secret& s);
/// SelfSubjectAccessReview request body.
std::string to_json(const resource_attributes& attrs);
/// PersistentVolumeClaim for POST .../persistentvolumeclaims.
std::string to_json(const pvc& claim);
/// batch/v1 Job for POST /apis/batch/v1/namespaces/NS/jobs (read-only fields omitted).
std::string to_json(const job& j);
/// DeleteOptions body, as kubectl sends it (fields only).
std::string to_json(const delete_options& opts);

} // namespace podpipe::kube
