// REST paths and query strings for the calls in spec/kube-api.md §3.1. Every name and query
// value is percent-encoded here, so callers never concatenate URLs themselves.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace podpipe::kube {

/// Query of list and watch calls (§3.2, §3.6); empty/unset fields are omitted.
struct list_options {
    std::string label_selector; ///< e.g. "runner-pod=abc,!x"
    std::string field_selector; ///< e.g. "metadata.name=p1" ('=' is encoded as %3D)
    std::optional<int> limit;
    std::string continue_token;
    std::string resource_version;
    bool watch = false;
    bool allow_watch_bookmarks = false;
    std::optional<int> timeout_seconds;
};

/// pods/log query (§3.5).
struct log_options {
    std::string container;
    bool follow = false;
    bool timestamps = false;
    std::string since_time; ///< RFC 3339
};

std::string pods_path(std::string_view ns);
std::string pod_path(std::string_view ns, std::string_view name);
std::string secrets_path(std::string_view ns);
std::string secret_path(std::string_view ns, std::string_view name);
std::string pvcs_path(std::string_view ns);
std::string pvc_path(std::string_view ns, std::string_view name);
inline constexpr std::string_view nodes_path = "/api/v1/nodes";
std::string node_path(std::string_view name);
/// batch/v1 Jobs: /apis/batch/v1/namespaces/NS/jobs[/NAME].
std::string jobs_path(std::string_view ns);
std::string job_path(std::string_view ns, std::string_view name);
inline constexpr std::string_view access_review_path =
    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";

/// `collection_path` + "?" + the encoded options (no "?" when there are none).
std::string list_path(std::string_view collection_path, const list_options& opts);
std::string pod_log_path(std::string_view ns, std::string_view name, const log_options& opts);

} // namespace podpipe::kube
