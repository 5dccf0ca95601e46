// api: the REST surface of kubesim (spec §3), independent of the HTTP library. server.cpp turns
// each authenticated HTTP request into an api_request and writes the api_response back; streaming
// answers (watch, logs?follow) are produced through chunk_sink on the connection's thread.
//
// Implemented: /version, /healthz, discovery (/api, /api/v1, /apis, authorization.k8s.io/v1,
// batch/v1), pods (create/get/list/watch/delete/put/patch, Table output, pods/status writes),
// pods/log, pods/exec preflight, secrets (create/get/list/watch/delete/put/patch; update.hpp), persistentvolumeclaims (create/get/list/watch/delete),
// batch/v1 jobs (create/get/list/watch/delete with propagation policies, Table), events
// (create/get/list/watch/delete, Table), nodes (list/get), namespaces
// (create/get/list/watch/patch/delete), selfsubjectaccessreviews (JSON, decided by the RBAC
// policy), selfsubjectrulesreviews and selfsubjectreviews (auth_reviews.cpp), POST
// /kubesim/faults (admin-only fault injection). Unknown paths → 404 Status.
// Creates are validated as upstream (validation.hpp); pods pass Pod Security Admission (psa.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "tools/kubesim/jobs.hpp"
#include "tools/kubesim/kubelet.hpp"
#include "tools/kubesim/rbac.hpp"
#include "tools/kubesim/store.hpp"

namespace podpipe::kubesim {

struct api_request {
    std::string method;
    std::string path; ///< decoded path, no query
    std::vector<std::pair<std::string, std::string>> query; ///< decoded, in order
    std::map<std::string, std::string> headers;            ///< lower-case names
    std::string body;
    bool websocket_upgrade = false; ///< Connection: upgrade + Upgrade: websocket
    std::string user;               ///< set by authentication

    std::optional<std::string> param(std::string_view key) const;
    std::vector<std::string> params(std::string_view key) const;
    /// Lenient boolean of spec §1.
    bool flag(std::string_view key) const;
    std::string header(std::string_view lower_name) const;
};

/// Receives the body of a streaming response; write() returns false once the client is gone.
class chunk_sink {
public:
    virtual ~chunk_sink() = default;
    virtual bool write(std::string_view data) = 0;
    /// Ends the response without its last chunk and drops the connection (a broken stream,
    /// fault injection). Later writes fail.
    virtual void abort() {}
    /// True once the connection was cut under the stream (the restart fault): a stream that
    /// waits for data ends instead of holding its thread until its next write fails.
    virtual bool cancelled() const { return false; }
};

struct api_response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    using header_list = std::vector<std::pair<std::string, std::string>>;
    header_list headers; ///< several of one name (Warning) are all sent
    /// When set, the body is streamed (chunked) by calling this after the headers went out.
    std::function<void(chunk_sink&)> stream;
    /// A streamed log follow: the node whose kubelet serves it (the kubeletRestart fault cuts it).
    std::string stream_node;
};

/// Whether the comma-separated `offered` list (Sec-WebSocket-Protocol) names `protocol`.
bool offers_protocol(std::string_view offered, std::string_view protocol);

/// Everything a pods/exec session needs after the preflight succeeded.
struct exec_plan {
    std::string pod_uid;
    std::string pod_name;
    std::string node; ///< spec.nodeName: the kubeletRestart fault cuts the node's sessions
    std::string container;
    std::vector<std::string> command;
    bool in = false, out = false, err = false, tty = false;
    std::optional<container_view> target; ///< nullopt or not running → failure after upgrade
    std::string not_running_message;
    // Fault injection (POST /kubesim/faults), consumed by this session:
    bool no_status = false;    ///< close 1000 without a status message
    bool legacy_close = false; ///< close TCP right after the status (no close frame)
    bool reset_on_close = false; ///< with legacy_close: abort the connection (RST) instead of FIN
    std::uint64_t drop_after_bytes = 0; ///< drop the connection after this much output (0 = never)
    // Throttle (--exec-bandwidth/--exec-latency or the faults endpoint), each direction alike:
    std::uint64_t bandwidth_bytes_per_s = 0;        ///< 0 = unlimited
    std::chrono::microseconds latency{0};           ///< added before each forwarded message
};

/// Faults armed through POST /kubesim/faults (README "Fault injection"). Each count is the number
/// of future requests/exec sessions affected.
struct fault_state {
    int http_code = 0;       ///< 429, 500 or 503
    int http_count = 0;      ///< next N non-admin-endpoint requests
    int retry_after_s = 1;   ///< Retry-After header value (429 always, 5xx when > 0)
    int exec_count = 0;      ///< next N exec sessions get the exec faults below
    bool no_status = false;
    bool legacy_close = false;
    bool reset_on_close = false;
    std::uint64_t drop_after_bytes = 0;
    std::uint64_t bandwidth_bytes_per_s = 0; ///< exec throttle, all sessions (0 = unlimited)
    std::chrono::microseconds latency{0};
    // failNth: the nth request matching method/path fails once with nth_code (Beast's fail_count idea).
    int nth = 0, nth_code = 500, nth_seen = 0, nth_retry_after_s = 0;
    bool nth_fired = false;
    std::string nth_method, nth_path;
    // gone: the next N watches from a resourceVersion / continued lists answer 410 Expired.
    int gone_count = 0;
    bool gone_as_event = true;
    int rotations = 0;
    int kubelet_cuts = 0; ///< streams cut by kubeletRestart so far
    // logCut: the next N log follows of a running container end (or break, when abrupt) after
    // log_cut_after_bytes bytes of body, as a proxy's idle cut or an API server restart does.
    int log_cut_count = 0;
    std::uint64_t log_cut_after_bytes = 0;
    bool log_cut_abrupt = false;
};

/// The API-server restart fault (README "Fault injection", `restart`): what the faults endpoint
/// arms; server.cpp carries it out.
struct restart_fault {
    std::chrono::milliseconds down{0};  ///< how long new connections are refused / answered 503
    bool refuse = true;                 ///< "refused": listening socket closed; false: "503"
    std::chrono::milliseconds after{0}; ///< from the faults answer being written to the cut
    int retry_after_s = 0;              ///< 503 mode: a Retry-After header when > 0
    bool html = false; ///< "503-html": a load balancer's text/html page instead of a Status
};

/// Implemented by the server (the only part that owns sockets).
class restart_driver {
public:
    virtual ~restart_driver() = default;
    /// Arms one restart; false when one is already armed or under way.
    virtual bool arm(const restart_fault& fault) = 0;
    virtual bool down() const = 0;  ///< between the cut and the end of the down time
    virtual int restarts() const = 0; ///< cuts done so far
    /// The kubeletRestart fault: cuts every exec session and log follow served by `node` ("" =
    /// every node) at once, as the restart cuts everything; answers how many were cut.
    virtual int cut_node_streams(const std::string& node) = 0;
};

class api_server {
public:
    api_server(object_store& store, kubelet& kubelet, std::map<std::string, std::string> tokens);

    /// Bearer-token check; fills req.user. /version, /healthz, /livez, /readyz are anonymous.
    bool authenticate(api_request& req) const;
    static api_response unauthorized();
    /// Installs an RBAC policy (call before serving): its tokens become valid, restricted users.
    void set_policy(rbac_policy policy);
    /// Authorization after authenticate(): a 403 Forbidden Status when the policy denies the
    /// request, nullopt when allowed (non-resource paths and SSAR creation are always allowed).
    std::optional<api_response> authorize(const api_request& req) const;
    /// The resource attributes of a request path + method (nullopt for non-resource paths).
    static std::optional<access_attributes> attributes_of(const api_request& req);

    /// Any non-exec request.
    api_response handle(const api_request& req);
    /// True when the path is .../pods/<name>/exec (or attach: answered 404 by handle()).
    static bool is_exec_path(std::string_view path);
    /// Exec preflight (spec §2.1, §6.3 item 7): an error response, or the plan to run.
    std::variant<api_response, exec_plan> prepare_exec(const api_request& req);

    /// The job controller that handles orphaning on Job deletion (set before serving).
    void set_jobs(job_controller* jobs) { jobs_ = jobs; }

    /// Pod admission shared by POST pods and the job controller: defaults, validation (422),
    /// Pod Security Admission (403, psa.hpp), name collision (409), then hands the stored pod to
    /// the kubelet (scheduling). With `dry_run` (dryRun=All) nothing is stored: the answer is the
    /// pod that would be created. PodSecurity warnings are appended to `warnings` when given.
    std::variant<api_response, boost::json::object>
    create_pod(const std::string& ns, boost::json::object pod, bool dry_run = false,
               api_response::header_list* warnings = nullptr);

    /// A Namespace as kubesim creates its built-in ones (Active, the metadata.name label).
    static boost::json::object namespace_object(const std::string& name);

    /// The in-cluster directory (STATE/serviceaccount) and its current token, for rotateToken.
    void set_service_account(std::string dir, std::string token);

    /// How long a watch with allowWatchBookmarks=true stays silent before a BOOKMARK (upstream
    /// sends one about every minute; CLI --bookmark-interval).
    void set_bookmark_interval(std::chrono::milliseconds every) { bookmark_interval_ = every; }

    /// Exec throttle for every later session (CLI --exec-bandwidth / --exec-latency).
    void set_exec_throttle(std::uint64_t bytes_per_s, std::chrono::microseconds latency);

    /// Who carries out the restart fault (the server, before serving); without one the knob
    /// answers 500.
    void set_restart_driver(restart_driver* driver) { restart_ = driver; }
    /// The restart fault's server is serving again: its watch cache is new (the event history
    /// before it is gone; watches from older resourceVersions are expired).
    void restarted();

    /// An armed injected HTTP failure for this request (consumes one), or nullopt.
    std::optional<api_response> injected_failure(const api_request& req);

    /// Ends log follows and watches (shutdown).
    void stop();

private:
    api_response handle_pods(const api_request& req, const std::string& ns, const std::string& name,
                             const std::string& sub);
    /// POST selfsubjectrulesreviews / selfsubjectreviews (auth_reviews.cpp).
    api_response rules_review(const api_request& req);
    api_response self_review(const api_request& req);
    /// The groups an authenticated user has (service accounts', system:masters for admins).
    std::vector<std::string> groups_of(const std::string& user) const;
    /// PUT and PATCH of a pod (`sub` "" or "status") or a secret (update.cpp).
    api_response update_object(const api_request& req, const std::string& resource,
                               const std::string& ns, const std::string& name,
                               const std::string& sub);
    api_response handle_secrets(const api_request& req, const std::string& ns, const std::string& name);
    api_response handle_pvcs(const api_request& req, const std::string& ns, const std::string& name);
    api_response handle_jobs(const api_request& req, const std::string& ns, const std::string& name,
                             const std::string& sub);
    api_response handle_events(const api_request& req, const std::string& ns, const std::string& name);
    api_response handle_nodes(const api_request& req, const std::string& name);
    api_response handle_namespaces(const api_request& req, const std::string& name);
    /// A create (POST) into `ns` that the namespace refuses: 404 when it does not exist, 403 while
    /// it is terminating. nullopt otherwise (and for every other method).
    std::optional<api_response> namespace_refuses(const api_request& req, const std::string& ns,
                                                  const std::string& resource);
    /// Pod Security Admission of a pod (`enforce`: 403 Forbidden Status on a violation) or of a
    /// pod controller's template (warn and audit only) under the namespace's labels; warnings are
    /// appended to `warnings`, audit violations go to stderr (kubesim's log).
    std::optional<api_response> pod_security(const std::string& ns, const std::string& resource,
                                             const std::string& name,
                                             const boost::json::object& metadata,
                                             const boost::json::object& spec, bool enforce,
                                             api_response::header_list* warnings);
    /// Deletes what is in a terminating namespace (pods gracefully).
    void empty_namespace(const std::string& ns);
    void reap_namespaces(std::stop_token st);
    api_response list_or_watch(const api_request& req, const std::string& resource,
                               const std::string& ns, const std::string& list_kind,
                               const std::string& api_version = "v1");
    api_response pod_logs(const api_request& req, const std::string& ns, const std::string& name);
    /// The kubeletRestart fault's down time: the 500 the API server answers when it cannot dial
    /// the kubelet of the pod's node (exec: `error dialing backend: ...`; logs: the failed GET of
    /// `kubelet_path`), or nullopt when that kubelet is up.
    std::optional<api_response> kubelet_unreachable(const boost::json::object& pod,
                                                    const std::string& kubelet_path);
    /// expireToken with restoreAfterSeconds: writes a new service-account token after `after`
    /// (unless stopped); the expired one stays rejected.
    void restore_token_later(std::chrono::milliseconds after);
    /// Writes a fresh service-account token atomically and makes it valid (faults_mu_ held);
    /// the old token's deadline is `old_deadline`. An error text, or "" on success.
    std::string rotate_token_locked(std::chrono::steady_clock::time_point old_deadline);

    object_store& store_;
    kubelet& kubelet_;
    job_controller* jobs_ = nullptr;
    std::map<std::string, std::string> tokens_; // token → user (guarded by faults_mu_ once serving)
    rbac_policy policy_;                         // empty: everyone is admin
    std::string admin_user_ = "kubesim-admin";
    mutable std::mutex faults_mu_;
    std::map<std::string, std::chrono::steady_clock::time_point> token_expiry_; // by user
    std::map<std::string, std::chrono::steady_clock::time_point> token_deadline_; // by token (rotated out)
    std::string sa_dir_, sa_token_;
    bool consume_gone(bool& as_event);
    fault_state faults_;
    restart_driver* restart_ = nullptr;
    api_response handle_faults(const api_request& req);
    std::atomic<bool> stopping_{false};
    std::chrono::milliseconds bookmark_interval_{60000};
    std::mutex ns_mu_;
    std::set<std::string> terminating_; // namespaces being deleted (guarded by ns_mu_)
    // kubeletRestart: node ("" = every node) → end of its kubelet's down time (faults_mu_).
    std::map<std::string, std::chrono::steady_clock::time_point> kubelet_down_;
    bool token_restore_pending_ = false; // expireToken restoreAfterSeconds (faults_mu_)
    std::jthread ns_reaper_;            // started by the first namespace deletion
    std::jthread token_restorer_;       // expireToken restoreAfterSeconds; last member
};

/// JSON body helper: serialize with the given status.
api_response json_response(int status, const boost::json::object& body);

} // namespace podpipe::kubesim
