// api: the REST surface of kubesim (spec §3), independent of the HTTP library. server.cpp turns
// each authenticated HTTP request into an api_request and writes the api_response back; streaming
// answers (watch, logs?follow) are produced through chunk_sink on the connection's thread.
//
// Implemented: /version, /healthz, discovery (/api, /api/v1, /apis, authorization.k8s.io/v1,
// batch/v1), pods (create/get/list/watch/delete, Table output), pods/log, pods/exec preflight,
// secrets (create/get/list/watch/delete), nodes (list/get), namespaces (list/get),
// selfsubjectaccessreviews (JSON; always allowed until RBAC exists). Unknown paths → 404 Status.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "tools/kubesim/kubelet.hpp"
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
};

struct api_response {
    int status = 200;
    std::string content_type = "application/json";
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
    /// When set, the body is streamed (chunked) by calling this after the headers went out.
    std::function<void(chunk_sink&)> stream;
};

/// Everything a pods/exec session needs after the preflight succeeded.
struct exec_plan {
    std::string pod_uid;
    std::string pod_name;
    std::string container;
    std::vector<std::string> command;
    bool in = false, out = false, err = false, tty = false;
    std::optional<container_view> target; ///< nullopt or not running → failure after upgrade
    std::string not_running_message;
};

class api_server {
public:
    api_server(object_store& store, kubelet& kubelet, std::map<std::string, std::string> tokens);

    /// Bearer-token check; fills req.user. /version, /healthz, /livez, /readyz are anonymous.
    bool authenticate(api_request& req) const;
    static api_response unauthorized();

    /// Any non-exec request.
    api_response handle(const api_request& req);
    /// True when the path is .../pods/<name>/exec (or attach: answered 404 by handle()).
    static bool is_exec_path(std::string_view path);
    /// Exec preflight (spec §2.1, §6.3 item 7): an error response, or the plan to run.
    std::variant<api_response, exec_plan> prepare_exec(const api_request& req);

    /// Ends log follows and watches (shutdown).
    void stop();

private:
    api_response handle_pods(const api_request& req, const std::string& ns, const std::string& name,
                             const std::string& sub);
    api_response handle_secrets(const api_request& req, const std::string& ns, const std::string& name);
    api_response handle_nodes(const api_request& req, const std::string& name);
    api_response handle_namespaces(const api_request& req, const std::string& name);
    api_response list_or_watch(const api_request& req, const std::string& resource,
                               const std::string& ns, const std::string& list_kind);
    api_response pod_logs(const api_request& req, const std::string& ns, const std::string& name);

    object_store& store_;
    kubelet& kubelet_;
    std::map<std::string, std::string> tokens_; // token → user
    std::atomic<bool> stopping_{false};
};

/// JSON body helper: serialize with the given status.
api_response json_response(int status, const boost::json::object& body);

} // namespace podpipe::kubesim
