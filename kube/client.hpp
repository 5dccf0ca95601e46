// api_client: the typed Kubernetes REST client and the factory of exec sessions
// (spec/kube-api.md §1-§4), over engine/transport.
//
// One api_client per process: it owns the process's tls_context (CA, verification name,
// client certificate) and one keep-alive http_client for REST calls. Long-running responses
// (watch, followed logs) and exec sessions open their own connections with the same TLS
// context, so they never hold up the REST connection.
//
// Every call:
//   - asks the credential_provider for credentials (tokens rotate; exec plugins cache);
//   - on 401 invalidates them, re-reads once and repeats the request once (§4.1);
//   - goes through the one retry_policy: only retryable errors (429, 5xx, timeouts, dropped
//     connections), honouring Retry-After. Requests that create something (POST, the exec
//     upgrade) are repeated only when the server certainly did not act on them: 429, 503, or
//     a connection that could not be opened;
//   - returns result<T, api_error>; a missing object is errc::not_found (callers that
//     tolerate it test `err.is(errc::not_found)`). Tokens and keys never appear in errors.
//
// Thread-safe: REST calls from several threads are serialized on the keep-alive connection;
// streaming calls and exec sessions run in parallel.
#pragma once

#include "engine/common/result.hpp"
#include "engine/transport/fault_injection.hpp"
#include "kube/api_types.hpp"
#include "kube/config.hpp"
#include "kube/errors.hpp"
#include "kube/exec.hpp"
#include "kube/exec_request.hpp"
#include "kube/paths.hpp"
#include "kube/retry.hpp"
#include "kube/time_source.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::kube {

struct client_options {
    retry_options retry;
    /// Deadline of one REST request (connect included) and of a stream's response head.
    std::chrono::milliseconds request_timeout{30'000};
    /// Longest silence inside a followed log before the stream counts as dead (a watch uses
    /// its timeoutSeconds plus a margin when set, else this).
    std::chrono::milliseconds stream_idle_timeout{3'600'000};
    /// Interrupts the REST requests and streams (watch, followed logs) in flight when it is
    /// requested, at once and without retry (transport::errc::cancelled); calls made after
    /// it run normally, so a cancelled command can still clean up. Exec sessions take their
    /// own (exec_session_options::stop).
    std::stop_token stop;
    /// Test knob for every connection this client opens (REST, streams, exec). Not owned.
    transport::fault_injection* faults = nullptr;
    /// Clock for retries; null: real_time(). Not owned.
    time_source* clock = nullptr;
    std::string user_agent = "podpipe/0.1";
};

/// Where cluster_config::server points: host (IPv6 without brackets), port, path prefix.
struct server_endpoint {
    std::string host;
    std::uint16_t port = 443;
    std::string path_prefix; ///< "" or "/prefix" (no trailing slash)
};

/// Parses "https://host[:port][/prefix]". Plain http is refused (credentials are never sent
/// over it, §1). Errors: config_invalid.
result<server_endpoint, api_error> parse_server_url(std::string_view server);

/// Receives the events of a watch; return false to stop watching (not an error).
using watch_callback = std::function<bool(const watch_event&)>;
/// Receives log bytes as they arrive; return false to stop following (not an error).
using log_callback = std::function<bool(std::string_view)>;

class api_client {
public:
    /// Builds the TLS context (failing on bad PEM), checks that credentials can be obtained,
    /// and prepares the REST connection (opened on the first call).
    static result<std::unique_ptr<api_client>, api_error> connect(cluster_config cfg,
                                                                   client_options opts = {});
    ~api_client();
    api_client(const api_client&) = delete;
    api_client& operator=(const api_client&) = delete;

    /// The configuration's namespace; every `ns` argument below that is empty means this one.
    const std::string& default_namespace() const noexcept;

    // ---- pods ------------------------------------------------------------------------------
    /// POST; the namespace is `ns`, else p.metadata.ns, else the default.
    result<pod, api_error> create_pod(const pod& p, std::string_view ns = {});
    result<pod, api_error> get_pod(std::string_view ns, std::string_view name);
    /// Follows `continue` tokens until the last page (opts.limit sets the page size); a 410
    /// on a continue token restarts the list once.
    result<pod_list, api_error> list_pods(std::string_view ns, const list_options& opts = {});
    /// Returns the pod as deleted or as now terminating; a missing pod is errc::not_found.
    result<pod, api_error> delete_pod(std::string_view ns, std::string_view name,
                                       const delete_options& opts = {});
    /// Watches pods (opts.watch is forced on) until the server ends the stream (normally
    /// after opts.timeout_seconds: not an error, re-watch from the last resourceVersion) or
    /// the callback returns false. An ERROR event ends the watch with its error (errc::gone
    /// for 410 Expired: re-list, then watch again). `stop` (besides client_options::stop)
    /// ends the watch at once with transport::errc::cancelled. To wait for one pod's state
    /// use kube::wait_for_pod (wait.hpp).
    result<void, api_error> watch_pods(std::string_view ns, list_options opts,
                                        const watch_callback& on_event,
                                        std::stop_token stop = {});

    /// pods/log as one string (not followed; bounded by the REST body limit).
    result<std::string, api_error> get_pod_log(std::string_view ns, std::string_view name,
                                                log_options opts = {});
    /// pods/log with follow=true: each chunk to `on_chunk` until the container ends and its
    /// log is drained, or the callback returns false. 400 "waiting to start" is
    /// errc::bad_request (the caller waits for the container and calls again).
    result<void, api_error> follow_pod_log(std::string_view ns, std::string_view name,
                                            log_options opts, const log_callback& on_chunk);

    // ---- secrets ---------------------------------------------------------------------------
    result<secret, api_error> create_secret(const secret& s, std::string_view ns = {});
    /// The secret's metadata and type (podpipe never reads secret values back).
    result<secret, api_error> get_secret(std::string_view ns, std::string_view name);
    result<secret_list, api_error> list_secrets(std::string_view ns,
                                                 const list_options& opts = {});
    result<api_status, api_error> delete_secret(std::string_view ns, std::string_view name,
                                                 const delete_options& opts = {});

    // ---- persistent volume claims ------------------------------------------------------------
    result<pvc, api_error> create_pvc(const pvc& claim, std::string_view ns = {});
    result<pvc, api_error> get_pvc(std::string_view ns, std::string_view name);
    result<pvc, api_error> delete_pvc(std::string_view ns, std::string_view name,
                                       const delete_options& opts = {});

    // ---- nodes -------------------------------------------------------------------------------
    result<std::vector<node>, api_error> list_nodes(const list_options& opts = {});
    result<node, api_error> get_node(std::string_view name);

    // ---- batch/v1 jobs -----------------------------------------------------------------------
    result<job, api_error> create_job(const job& j, std::string_view ns = {});
    result<job, api_error> get_job(std::string_view ns, std::string_view name);
    result<job_list, api_error> list_jobs(std::string_view ns, const list_options& opts = {});
    /// propagationPolicy defaults to Background here, so the job's pods go with it.
    result<api_status, api_error> delete_job(std::string_view ns, std::string_view name,
                                              delete_options opts = {});

    // ---- access reviews ----------------------------------------------------------------------
    /// One SelfSubjectAccessReview; the namespace in attrs is used as given (empty: the
    /// default namespace for namespaced checks is the caller's choice).
    result<access_review_result, api_error> access_review(const resource_attributes& attrs);
    /// Runs one review per item, in order; the first failing request fails the batch.
    result<std::vector<access_review_result>, api_error>
    access_reviews(std::span<const resource_attributes> items);

    // ---- exec ----------------------------------------------------------------------------------
    /// Opens a pods/exec WebSocket (offers v5 then v4; session.offer_v5 = false offers v4 only).
    /// Upgrade failures are typed: 403 with an empty body (no offered subprotocol accepted) →
    /// forbidden with that explanation; 400/403/404 Status JSON → bad_request / forbidden /
    /// not_found with the server's message; 429/503 and failed connections are retried
    /// (nothing has run yet); 401 re-reads the credentials once.
    result<std::unique_ptr<exec_session>, api_error>
    exec(const exec_options& opts, const exec_session_options& session = {});

    /// TCP connections opened for REST calls so far (keep-alive shows as 1).
    std::size_t rest_connections_opened() const;

    struct impl;

private:
    explicit api_client(std::unique_ptr<impl> i);
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::kube
