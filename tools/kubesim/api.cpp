#include "tools/kubesim/api.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <thread>

#include "tools/kubesim/psa.hpp"
#include "tools/kubesim/patch.hpp"
#include "tools/kubesim/selectors.hpp"
#include "tools/kubesim/ssar_proto.hpp"
#include "tools/kubesim/table.hpp"
#include "tools/kubesim/update.hpp"
#include "tools/kubesim/util.hpp"
#include "tools/kubesim/validation.hpp"

namespace podpipe::kubesim {
namespace {

std::vector<std::string> split_path(std::string_view path) {
    std::vector<std::string> out;
    std::size_t i = 0;
    while (i < path.size()) {
        while (i < path.size() && path[i] == '/')
            ++i;
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos)
            j = path.size();
        if (j > i)
            out.emplace_back(path.substr(i, j - i));
        i = j;
    }
    return out;
}

api_response status_response(int code, std::string_view reason, std::string_view message,
                             json::value details = nullptr) {
    return json_response(code, status_failure(code, reason, message, std::move(details)));
}

api_response not_found_path() {
    return status_response(404, "NotFound", "the server could not find the requested resource",
                           json::object{});
}

api_response not_found(std::string_view resource, std::string_view name) {
    return status_response(404, "NotFound",
                           std::string(resource) + " \"" + std::string(name) + "\" not found",
                           status_details(name, resource));
}

api_response bad_request(std::string_view message) {
    return status_response(400, "BadRequest", message);
}

api_response method_not_allowed() {
    return status_response(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
}

std::map<std::string, std::string> labels_of(const json::object& obj) {
    std::map<std::string, std::string> out;
    if (auto* md = obj_at(obj, "metadata"))
        if (auto* l = obj_at(*md, "labels"))
            for (const auto& [k, v] : *l)
                if (v.is_string())
                    out[std::string(k)] = std::string(v.get_string());
    return out;
}

std::optional<std::string> field_of(const std::string& resource, const json::object& obj,
                                    const std::string& field) {
    const json::object empty;
    const json::object* md = obj_at(obj, "metadata");
    const json::object* spec = obj_at(obj, "spec");
    const json::object* st = obj_at(obj, "status");
    if (!md)
        md = &empty;
    if (!spec)
        spec = &empty;
    if (!st)
        st = &empty;
    if (field == "metadata.name")
        return str_at(*md, "name");
    if (field == "metadata.namespace")
        return str_at(*md, "namespace");
    if (resource == "pods") {
        if (field == "spec.nodeName")
            return str_at(*spec, "nodeName");
        if (field == "spec.restartPolicy")
            return str_at(*spec, "restartPolicy");
        if (field == "spec.schedulerName")
            return str_at(*spec, "schedulerName");
        if (field == "spec.serviceAccountName")
            return str_at(*spec, "serviceAccountName");
        if (field == "status.phase")
            return str_at(*st, "phase");
        if (field == "status.podIP")
            return str_at(*st, "podIP");
        if (field == "status.nominatedNodeName")
            return str_at(*st, "nominatedNodeName");
        if (field == "spec.hostNetwork")
            return spec->contains("hostNetwork") && spec->at("hostNetwork").is_bool() &&
                           spec->at("hostNetwork").get_bool()
                       ? "true"
                       : "false";
    }
    if (resource == "namespaces" && field == "status.phase")
        return str_at(*st, "phase");
    if (resource == "nodes" && field == "spec.unschedulable")
        return spec->contains("unschedulable") && spec->at("unschedulable").is_bool() &&
                       spec->at("unschedulable").get_bool()
                   ? "true"
                   : "false";
    if (resource == "secrets" && field == "type")
        return str_at(obj, "type");
    if (resource == "events") {
        // Upstream event field selectors (kubectl describe uses involvedObject.*).
        if (field.rfind("involvedObject.", 0) == 0) {
            const json::object* io = obj_at(obj, "involvedObject");
            return io ? str_at(*io, field.substr(15)) : std::string();
        }
        if (field == "reason" || field == "type" || field == "reportingComponent")
            return str_at(obj, field);
        if (field == "source") {
            const json::object* src = obj_at(obj, "source");
            return src ? str_at(*src, "component") : std::string();
        }
    }
    if (resource == "jobs" && field == "status.successful")
        return std::to_string(int_at(*st, "succeeded", 0));
    return std::nullopt;
}

struct filters {
    selector labels, fields;
};

/// Label and field selectors of a list/watch, with upstream's 400 messages: a malformed label or
/// field selector, or a field label the resource does not support ("field label not supported").
std::optional<api_response> parse_filters(const api_request& req, const std::string& resource,
                                          filters& f) {
    if (auto ls = req.param("labelSelector")) {
        std::string error;
        auto s = parse_label_selector(*ls, &error);
        if (!s)
            return bad_request(error);
        f.labels = *s;
    }
    if (auto fsel = req.param("fieldSelector")) {
        std::string error;
        auto s = parse_field_selector(*fsel, &error);
        if (!s)
            return bad_request(error);
        const json::object empty;
        for (auto& r : s->requirements) {
            if (resource == "pods" && r.key == "spec.host")
                r.key = "spec.nodeName"; // upstream's conversion for old clients
            if (!field_of(resource, empty, r.key))
                return bad_request("field label not supported: " + r.key);
        }
        f.fields = *s;
    }
    return std::nullopt;
}

bool matches(const std::string& resource, const filters& f, const json::object& obj) {
    if (!matches_labels(f.labels, labels_of(obj)))
        return false;
    return matches_fields(f.fields, [&](const std::string& field) { return field_of(resource, obj, field); });
}

/// Container defaulting and validation of spec §2.1; error message or the container name.
std::variant<std::string, api_response> resolve_container(const json::object& pod,
                                                          const std::string& requested) {
    const json::object& spec = pod.at("spec").as_object();
    std::string pod_name = str_at(pod.at("metadata").as_object(), "name");
    std::vector<std::string> names, init_names;
    if (auto* cs = arr_at(spec, "containers"))
        for (const auto& c : *cs)
            names.push_back(str_at(c.as_object(), "name"));
    if (auto* cs = arr_at(spec, "initContainers"))
        for (const auto& c : *cs)
            init_names.push_back(str_at(c.as_object(), "name"));
    auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& n : v)
            s += (s.empty() ? "" : " ") + n;
        return s;
    };
    if (requested.empty()) {
        if (names.size() == 1)
            return names[0];
        if (names.empty())
            return bad_request("a container name must be specified for pod " + pod_name);
        std::string msg = "a container name must be specified for pod " + pod_name +
                          ", choose one of: [" + join(names) + "]";
        if (!init_names.empty())
            msg += " or one of the init containers: [" + join(init_names) + "]";
        return bad_request(msg);
    }
    if (std::find(names.begin(), names.end(), requested) == names.end() &&
        std::find(init_names.begin(), init_names.end(), requested) == init_names.end())
        return bad_request("container " + requested + " is not valid for pod " + pod_name);
    return requested;
}

json::object strip_for_list(json::object o) {
    o.erase("kind");
    o.erase("apiVersion");
    return o;
}

json::object resource_entry(const char* name, const char* singular, bool namespaced, const char* kind,
                            std::initializer_list<const char*> verbs,
                            std::initializer_list<const char*> short_names = {}) {
    json::array v, s;
    for (const char* x : verbs)
        v.emplace_back(x);
    for (const char* x : short_names)
        s.emplace_back(x);
    json::object o{{"name", name},
                   {"singularName", singular},
                   {"namespaced", namespaced},
                   {"kind", kind},
                   {"verbs", v}};
    if (!s.empty())
        o["shortNames"] = s;
    return o;
}

json::object group_entry(const char* group, const char* version) {
    std::string gv = std::string(group) + "/" + version;
    json::object ver{{"groupVersion", gv}, {"version", version}};
    return json::object{{"name", group}, {"versions", json::array{ver}}, {"preferredVersion", ver}};
}

/// An injected error answer for `code`: the plain-text 429 of the max-in-flight filter, else a
/// Status with the upstream reason for the code; Retry-After when retry_after_s > 0.
api_response error_response(int code, int retry_after_s, std::string_view what) {
    api_response r;
    if (code == 429) {
        r.status = 429;
        r.content_type = "text/plain; charset=utf-8";
        r.body = "Too many requests, please try again later.\n";
    } else {
        static const std::map<int, std::pair<const char*, const char*>> reasons = {
            {400, {"BadRequest", "bad request"}},
            {401, {"Unauthorized", "Unauthorized"}},
            {403, {"Forbidden", "forbidden"}},
            {404, {"NotFound", "the server could not find the requested resource"}},
            {409, {"Conflict", "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again"}},
            {410, {"Expired", "too old resource version"}},
            {422, {"Invalid", "invalid"}},
            {500, {"InternalError", "Internal error occurred"}},
            {503, {"ServiceUnavailable", "the server is currently unable to handle the request"}},
            {504, {"Timeout", "the server was unable to return a response in the time allotted, but may still be processing the request"}}};
        auto it = reasons.find(code);
        const char* reason = it == reasons.end() ? (code >= 500 ? "InternalError" : "BadRequest") : it->second.first;
        std::string message = it == reasons.end() ? "Internal error occurred" : it->second.second;
        r = json_response(code, status_failure(code, reason, message + ": " + std::string(what)));
    }
    if (retry_after_s > 0)
        r.headers.emplace_back("Retry-After", std::to_string(retry_after_s));
    return r;
}


// Forwards a streamed body until `limit` bytes went out (the last write is cut to fit), then
// reports the client gone, so the producer stops: the logCut fault. No limit: a plain forward.
class cut_sink : public chunk_sink {
public:
    cut_sink(chunk_sink& next, std::optional<std::uint64_t> limit) : next_(next), left_(limit) {}
    bool write(std::string_view data) override {
        if (cut_)
            return false;
        if (left_ && data.size() >= *left_) {
            data = data.substr(0, static_cast<std::size_t>(*left_));
            *left_ = 0;
            cut_ = true;
            (void)next_.write(data);
            return false;
        }
        if (left_)
            *left_ -= data.size();
        return next_.write(data);
    }
    void abort() override { next_.abort(); }
    bool cut() const { return cut_; }

private:
    chunk_sink& next_;
    std::optional<std::uint64_t> left_;
    bool cut_ = false;
};

/// fieldValidation (Ignore, Warn = the default, Strict) for the fields `kind`'s schema does not
/// declare: they are dropped from `obj`; Strict answers 400, Warn adds one Warning header each.
std::optional<api_response> unknown_fields(const api_request& req, std::string_view kind,
                                           json::object& obj, api_response::header_list& warnings) {
    std::vector<std::string> unknown = prune_unknown_fields(kind, obj);
    if (unknown.empty())
        return std::nullopt;
    std::string mode = req.param("fieldValidation").value_or("Warn");
    if (mode == "Strict") {
        std::string msg = std::string(kind) + " in version \"v1\" cannot be handled as a " +
                          std::string(kind) + ": strict decoding error: ";
        for (std::size_t i = 0; i < unknown.size(); ++i)
            msg += (i ? ", " : "") + std::string("unknown field ") + go_quote(unknown[i]);
        return bad_request(msg);
    }
    if (mode != "Ignore")
        for (const auto& f : unknown)
            warnings.emplace_back("Warning", "299 - " + go_quote("unknown field " + go_quote(f)));
    return std::nullopt;
}

/// What a dry-run create answers: the object with uid, creationTimestamp and namespace as the
/// store would set them, but no resourceVersion (nothing was written).
json::object would_be_created(json::object obj, const std::string& ns) {
    auto& md = obj["metadata"].as_object();
    md["uid"] = random_uuid();
    md["creationTimestamp"] = now_rfc3339();
    if (!ns.empty())
        md["namespace"] = ns;
    md.erase("resourceVersion");
    return obj;
}

/// A body whose metadata.namespace differs from the request path's: 400 as upstream.
std::optional<api_response> namespace_mismatch(const json::object& obj, const std::string& ns) {
    const json::object* md = obj_at(obj, "metadata");
    std::string body_ns = md ? str_at(*md, "namespace") : "";
    if (!body_ns.empty() && body_ns != ns)
        return bad_request("the namespace of the provided object does not match the namespace sent "
                           "on the request");
    return std::nullopt;
}

/// Where the resource part of an API path starts: 2 for /api/v1, 3 for /apis/GROUP/VERSION.
std::size_t resource_start(const std::vector<std::string>& seg) {
    if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1")
        return 2;
    if (seg.size() >= 3 && seg[0] == "apis")
        return 3;
    return 0;
}

/// The deprecated `/api/v1/watch/...` form (also `/apis/G/V/watch/...`) as the `?watch=true`
/// request it stands for; a name becomes `fieldSelector=metadata.name=NAME` (get.go
/// ListResource). nullopt when `req` is not such a path; `error` set for a 400.
std::optional<api_request> legacy_watch(const api_request& req, std::string& error) {
    auto seg = split_path(req.path);
    std::size_t at = resource_start(seg);
    if (at == 0 || seg.size() < at + 2 || seg[at] != "watch")
        return std::nullopt;
    std::vector<std::string> rest(seg.begin() + static_cast<std::ptrdiff_t>(at) + 1, seg.end());
    std::string name;
    bool in_ns = rest[0] == "namespaces" && rest.size() >= 3;
    if ((in_ns && rest.size() == 4) || (!in_ns && rest.size() == 2)) {
        name = rest.back();
        rest.pop_back();
    }
    api_request w = req;
    w.path.clear();
    for (std::size_t i = 0; i < at; ++i)
        w.path += "/" + seg[i];
    for (const auto& r : rest)
        w.path += "/" + r;
    std::erase_if(w.query, [](const auto& kv) { return kv.first == "watch"; });
    w.query.emplace_back("watch", "true");
    if (!name.empty()) {
        std::string fs = req.param("fieldSelector").value_or("");
        if (fs.empty()) {
            std::erase_if(w.query, [](const auto& kv) { return kv.first == "fieldSelector"; });
            w.query.emplace_back("fieldSelector", "metadata.name=" + name);
        } else {
            bool match = false;
            std::istringstream terms(fs);
            for (std::string t; std::getline(terms, t, ',');)
                match = match || t == "metadata.name=" + name || t == "metadata.name==" + name;
            if (!match) {
                error = "fieldSelector metadata.name doesn't match requested name";
                return w;
            }
        }
    }
    return w;
}

/// dryRun=All: admission and validation run, nothing is stored or deleted.
bool dry_run(const api_request& req) {
    return req.param("dryRun") == std::optional<std::string>("All");
}

} // namespace

bool offers_protocol(std::string_view offered, std::string_view protocol) {
    while (!offered.empty()) {
        const auto comma = offered.find(',');
        std::string_view item = offered.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
            item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
            item.remove_suffix(1);
        if (item == protocol)
            return true;
        if (comma == std::string_view::npos)
            break;
        offered.remove_prefix(comma + 1);
    }
    return false;
}

api_response json_response(int status, const json::object& body) {
    api_response r;
    r.status = status;
    r.body = json::serialize(body);
    return r;
}

std::optional<std::string> api_request::param(std::string_view key) const {
    for (const auto& [k, v] : query)
        if (k == key)
            return v;
    return std::nullopt;
}

std::vector<std::string> api_request::params(std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : query)
        if (k == key)
            out.push_back(v);
    return out;
}

bool api_request::flag(std::string_view key) const {
    auto v = param(key);
    return lenient_bool(v.has_value(), v ? *v : "");
}

std::string api_request::header(std::string_view lower_name) const {
    auto it = headers.find(std::string(lower_name));
    return it == headers.end() ? std::string() : it->second;
}

api_server::api_server(object_store& store, kubelet& kubelet, std::map<std::string, std::string> tokens)
    : store_(store), kubelet_(kubelet), tokens_(std::move(tokens)) {}

void api_server::stop() { stopping_ = true; }

bool api_server::authenticate(api_request& req) const {
    std::string auth = req.header("authorization");
    if (auth.rfind("Bearer ", 0) != 0 && (req.path == "/version" || req.path == "/healthz" ||
                                          req.path == "/livez" || req.path == "/readyz")) {
        // Anonymous only without a bearer token: one that fails is 401 everywhere, as upstream
        // (the authenticator rejects before the anonymous fallback).
        req.user = "system:anonymous";
        return true;
    }
    const std::string bearer = "Bearer ";
    if (auth.size() <= bearer.size() || auth.compare(0, bearer.size(), bearer) != 0)
        return false;
    std::string token = auth.substr(bearer.size());
    std::lock_guard lk(faults_mu_); // tokens_ changes on rotation
    auto it = tokens_.find(token);
    if (it == tokens_.end())
        return false;
    auto now = std::chrono::steady_clock::now();
    auto exp = token_expiry_.find(it->second);
    if (exp != token_expiry_.end() && now >= exp->second)
        return false; // expired user: 401 like any unknown token
    auto texp = token_deadline_.find(token);
    if (texp != token_deadline_.end() && now >= texp->second)
        return false; // a rotated-out token after its grace period
    req.user = it->second;
    return true;
}

void api_server::set_policy(rbac_policy policy) {
    for (const auto& [token, subject] : policy.subjects()) {
        tokens_[token] = subject.user;
        if (subject.expires_after.count() > 0)
            token_expiry_[subject.user] = std::chrono::steady_clock::now() + subject.expires_after;
    }
    policy_ = std::move(policy);
}

std::optional<access_attributes> api_server::attributes_of(const api_request& req) {
    auto seg = split_path(req.path);
    access_attributes a;
    std::size_t i = 0;
    if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1") {
        i = 2;
    } else if (seg.size() >= 3 && seg[0] == "apis") {
        a.group = seg[1];
        i = 3;
    } else {
        return std::nullopt;
    }
    if (i >= seg.size())
        return std::nullopt; // discovery document
    bool legacy_watch_path = seg[i] == "watch" && i + 1 < seg.size(); // RequestInfoFactory
    if (legacy_watch_path)
        ++i;
    if (seg[i] == "namespaces" && i + 2 < seg.size()) {
        a.ns = seg[i + 1];
        i += 2;
    }
    a.resource = seg[i];
    if (i + 1 < seg.size())
        a.name = seg[i + 1];
    if (i + 2 < seg.size())
        a.subresource = seg[i + 2];
    if (a.resource == "namespaces" && !a.name.empty())
        a.ns = a.name; // upstream: a namespace object lives in itself
    const std::string& m = req.method;
    if ((m == "GET" || m == "HEAD") && legacy_watch_path)
        a.verb = "watch";
    else if (m == "GET" || m == "HEAD")
        a.verb = a.name.empty() ? (req.flag("watch") ? "watch" : "list") : "get";
    else if (m == "POST")
        a.verb = "create";
    else if (m == "PUT")
        a.verb = "update";
    else if (m == "PATCH")
        a.verb = "patch";
    else if (m == "DELETE")
        a.verb = a.name.empty() ? "deletecollection" : "delete";
    else
        a.verb = std::string(m);
    // A WebSocket exec is an HTTP GET: verb get (spec §6.3 item 2).
    return a;
}

std::optional<api_response> api_server::authorize(const api_request& req) const {
    auto a = attributes_of(req);
    if (!a)
        return std::nullopt;
    if ((a->group == "authorization.k8s.io" &&
         (a->resource == "selfsubjectaccessreviews" || a->resource == "selfsubjectrulesreviews")) ||
        (a->group == "authentication.k8s.io" && a->resource == "selfsubjectreviews"))
        return std::nullopt; // any authenticated user may ask (system:basic-user)
    if (policy_.allows(req.user, *a))
        return std::nullopt;
    json::object details;
    if (!a->name.empty())
        details["name"] = a->name;
    if (!a->group.empty())
        details["group"] = a->group;
    details["kind"] = a->resource;
    return status_response(403, "Forbidden", forbidden_message(req.user, *a), std::move(details));
}

std::optional<api_response> api_server::injected_failure(const api_request& req) {
    if (req.path.rfind("/kubesim/", 0) == 0)
        return std::nullopt;
    std::lock_guard lk(faults_mu_);
    if (faults_.nth > 0 && !faults_.nth_fired && (faults_.nth_method.empty() || faults_.nth_method == req.method) &&
        req.path.find(faults_.nth_path) != std::string::npos && ++faults_.nth_seen == faults_.nth) {
        faults_.nth_fired = true;
        return error_response(faults_.nth_code, faults_.nth_retry_after_s, "injected by kubesim (failNth)");
    }
    if (faults_.http_count <= 0)
        return std::nullopt;
    --faults_.http_count;
    api_response r;
    r.status = faults_.http_code;
    if (faults_.http_code == 429) {
        // The max-in-flight / APF filter answers in plain text (spec §3.9).
        r.content_type = "text/plain; charset=utf-8";
        r.body = "Too many requests, please try again later.\n";
        r.headers.emplace_back("Retry-After", std::to_string(faults_.retry_after_s));
        return r;
    }
    if (faults_.retry_after_s > 0)
        r.headers.emplace_back("Retry-After", std::to_string(faults_.retry_after_s));
    api_response s = faults_.http_code == 503
                         ? status_response(503, "ServiceUnavailable", "the server is currently unable to handle the request")
                         : status_response(faults_.http_code, "InternalError",
                                           "Internal error occurred: injected by kubesim");
    s.headers = r.headers;
    return s;
}

void api_server::restarted() { store_.forget_history(); }

bool api_server::consume_gone(bool& as_event) {
    std::lock_guard lk(faults_mu_);
    if (faults_.gone_count <= 0)
        return false;
    --faults_.gone_count;
    as_event = faults_.gone_as_event;
    return true;
}

void api_server::set_service_account(std::string dir, std::string token) {
    std::lock_guard lk(faults_mu_);
    sa_dir_ = std::move(dir);
    sa_token_ = std::move(token);
}

void api_server::set_exec_throttle(std::uint64_t bytes_per_s, std::chrono::microseconds latency) {
    std::lock_guard lk(faults_mu_);
    faults_.bandwidth_bytes_per_s = bytes_per_s;
    faults_.latency = latency;
}

std::string api_server::rotate_token_locked(std::chrono::steady_clock::time_point old_deadline) {
    std::string fresh = "kubesim-sa-" + random_hex(32);
    std::string tmp = sa_dir_ + "/.token.new";
    {
        std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
        out << fresh;
        if (!out)
            return "faults: cannot write " + tmp;
    }
    ::chmod(tmp.c_str(), 0644);
    if (::rename(tmp.c_str(), (sa_dir_ + "/token").c_str()) != 0)
        return "faults: cannot replace the token file";
    tokens_[fresh] = tokens_[sa_token_];
    auto& deadline = token_deadline_[sa_token_];
    if (deadline == std::chrono::steady_clock::time_point{} || old_deadline < deadline)
        deadline = old_deadline;
    sa_token_ = fresh;
    ++faults_.rotations;
    return "";
}

void api_server::restore_token_later(std::chrono::milliseconds after) {
    // faults_mu_ is held and no restore is pending: the previous thread (if any) has ended or
    // is about to, so this join is short.
    token_restorer_ = std::jthread([this, after](std::stop_token st) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lk(m);
        if (cv.wait_for(lk, st, after, [] { return false; }) || st.stop_requested())
            return;
        std::lock_guard flk(faults_mu_);
        // The expired token keeps its deadline (now in the past): it stays rejected.
        if (std::string err = rotate_token_locked(std::chrono::steady_clock::now()); !err.empty())
            std::cerr << "kubesim: expireToken: " << err << std::endl;
        token_restore_pending_ = false;
    });
}

std::optional<api_response> api_server::kubelet_unreachable(const json::object& pod,
                                                            const std::string& kubelet_path) {
    const std::string node = str_at(pod.at("spec").as_object(), "nodeName");
    {
        std::lock_guard lk(faults_mu_);
        const auto now = std::chrono::steady_clock::now();
        auto down = [&](const std::string& key) {
            auto it = kubelet_down_.find(key);
            return it != kubelet_down_.end() && now < it->second;
        };
        if (!down(node) && !down(""))
            return std::nullopt;
    }
    std::string ip = "127.0.0.1";
    if (const auto* st = pod.if_contains("status"); st && st->is_object())
        if (std::string h = str_at(st->as_object(), "hostIP"); !h.empty())
            ip = h;
    // upgradeaware.go: `error dialing backend: <dial error>`; the log streamer returns the
    // HTTP client's error for the kubelet URL. Neither is an APIStatus: ErrorToAPIStatus makes
    // a 500 with no reason.
    const std::string dial = "dial tcp " + ip + ":10250: connect: connection refused";
    json::object st = kubelet_path.empty()
                          ? status_failure(500, "", "error dialing backend: " + dial)
                          : status_failure(500, "", "Get \"https://" + ip + ":10250" +
                                                        kubelet_path + "\": " + dial);
    st.erase("reason");
    return json_response(500, st);
}

api_response api_server::handle_faults(const api_request& req) {
    if (req.user != admin_user_)
        return status_response(403, "Forbidden", "kubesim faults endpoint: admin token required");
    if (req.method != "POST" && req.method != "GET")
        return method_not_allowed();
    boost::system::error_code ec;
    json::value body = req.method == "GET" ? json::value(json::object{}) : json::parse(req.body, ec);
    if (ec || !body.is_object())
        return bad_request("faults: body must be a JSON object");
    const json::object& o = body.get_object();
    std::lock_guard lk(faults_mu_);
    if (auto* n = obj_at(o, "failNth")) {
        int code = static_cast<int>(int_at(*n, "code", 500));
        if (int_at(*n, "n", 0) < 1 || code < 400 || code > 599)
            return bad_request("faults: failNth needs n >= 1 and a code in 400..599");
        faults_.nth = static_cast<int>(int_at(*n, "n", 1));
        faults_.nth_code = code;
        faults_.nth_method = str_at(*n, "method");
        faults_.nth_path = str_at(*n, "path");
        faults_.nth_retry_after_s = static_cast<int>(int_at(*n, "retryAfterSeconds", code == 429 ? 1 : 0));
        faults_.nth_seen = 0;
        faults_.nth_fired = false;
    }
    if (auto* g = obj_at(o, "gone")) {
        std::string mode = str_at(*g, "mode", "event");
        if (mode != "event" && mode != "http")
            return bad_request("faults: gone.mode must be \"event\" or \"http\"");
        faults_.gone_count = static_cast<int>(int_at(*g, "count", 1));
        faults_.gone_as_event = mode == "event";
    }
    if (auto* t = obj_at(o, "rotateToken")) {
        if (sa_token_.empty() || sa_dir_.empty())
            return bad_request("faults: no service-account token to rotate");
        const auto grace = std::chrono::seconds(int_at(*t, "graceSeconds", 0));
        if (std::string err = rotate_token_locked(std::chrono::steady_clock::now() + grace);
            !err.empty())
            return status_response(500, "InternalError", err);
    }
    if (auto* h = obj_at(o, "http")) {
        int code = static_cast<int>(int_at(*h, "code", 429));
        if (code != 429 && code != 500 && code != 503)
            return bad_request("faults: http.code must be 429, 500 or 503");
        faults_.http_code = code;
        faults_.http_count = static_cast<int>(int_at(*h, "count", 1));
        faults_.retry_after_s = static_cast<int>(int_at(*h, "retryAfterSeconds", code == 429 ? 1 : 0));
    }
    if (auto* e = obj_at(o, "exec")) {
        faults_.exec_count = static_cast<int>(int_at(*e, "count", 1));
        faults_.no_status = e->contains("noStatus") && e->at("noStatus").is_bool() && e->at("noStatus").get_bool();
        faults_.legacy_close =
            e->contains("legacyClose") && e->at("legacyClose").is_bool() && e->at("legacyClose").get_bool();
        faults_.drop_after_bytes = static_cast<std::uint64_t>(int_at(*e, "dropAfterBytes", 0));
        faults_.reset_on_close = e->contains("reset") && e->at("reset").is_bool() && e->at("reset").get_bool();
    }
    if (auto* t = obj_at(o, "expireToken"); t && t->contains("restoreAfterSeconds")) {
        // The service-account token expires now and no new one comes for R seconds: a kubelet
        // late with the projected token's refresh (README "Fault injection").
        const auto* r = t->if_contains("restoreAfterSeconds");
        if (!r->is_number() || r->to_number<double>() < 0 || r->to_number<double>() > 3600)
            return bad_request("faults: expireToken.restoreAfterSeconds must be in 0..3600");
        if (sa_token_.empty() || sa_dir_.empty())
            return bad_request("faults: no service-account token to expire");
        if (token_restore_pending_)
            return status_response(409, "Conflict",
                                   "faults: an expired token is already waiting for its restore");
        token_deadline_[sa_token_] = std::chrono::steady_clock::now();
        token_restore_pending_ = true;
        restore_token_later(
            std::chrono::milliseconds(std::llround(r->to_number<double>() * 1000)));
    } else if (t) {
        std::string user = str_at(*t, "user");
        if (user.empty() || user == admin_user_)
            return bad_request("faults: expireToken.user must name a non-admin user");
        token_expiry_[user] = std::chrono::steady_clock::now() + std::chrono::seconds(int_at(*t, "afterSeconds", 0));
    }
    if (auto* t = obj_at(o, "throttle")) {
        faults_.bandwidth_bytes_per_s = static_cast<std::uint64_t>(int_at(*t, "bytesPerSecond", 0));
        faults_.latency = std::chrono::microseconds(int_at(*t, "latencyMicroseconds", 0));
    }
    if (auto* k = obj_at(o, "killPod")) {
        auto p = store_.get("pods", str_at(*k, "namespace", "default"), str_at(*k, "name"));
        if (!p)
            return not_found("pods", str_at(*k, "name"));
        kubelet_.kill_pod_processes(str_at(p->at("metadata").as_object(), "uid"));
    }
    if (auto* c = obj_at(o, "logCut")) {
        if (int_at(*c, "count", 1) < 0 || int_at(*c, "afterBytes", 0) < 0)
            return bad_request("faults: logCut needs count >= 0 and afterBytes >= 0");
        faults_.log_cut_count = static_cast<int>(int_at(*c, "count", 1));
        faults_.log_cut_after_bytes = static_cast<std::uint64_t>(int_at(*c, "afterBytes", 0));
        const auto* a = c->if_contains("abrupt");
        faults_.log_cut_abrupt = a && a->is_bool() && a->get_bool();
    }
    if (auto* rs = obj_at(o, "restart")) {
        const auto* d = rs->if_contains("downSeconds");
        std::string mode = str_at(*rs, "mode", "refused");
        if (!d || !d->is_number() || d->to_number<double>() < 0 || d->to_number<double>() > 3600 ||
            (mode != "refused" && mode != "503" && mode != "503-html") ||
            int_at(*rs, "afterMilliseconds", 0) < 0)
            return bad_request("faults: restart needs downSeconds in 0..3600, mode \"refused\", "
                               "\"503\" or \"503-html\", afterMilliseconds >= 0");
        restart_fault f;
        f.down = std::chrono::milliseconds(std::llround(d->to_number<double>() * 1000));
        f.refuse = mode == "refused";
        f.html = mode == "503-html";
        f.after = std::chrono::milliseconds(int_at(*rs, "afterMilliseconds", 0));
        f.retry_after_s = static_cast<int>(int_at(*rs, "retryAfterSeconds", 0));
        if (!restart_)
            return status_response(500, "InternalError", "faults: no server to restart");
        if (!restart_->arm(f))
            return status_response(409, "Conflict",
                                   "faults: a restart is already armed or under way");
    }
    if (auto* k = obj_at(o, "kubeletRestart")) {
        const std::string node = str_at(*k, "node");
        const auto* d = k->if_contains("downSeconds");
        if (!d || !d->is_number() || d->to_number<double>() < 0 ||
            d->to_number<double>() > 3600)
            return bad_request("faults: kubeletRestart needs downSeconds in 0..3600");
        if (!node.empty() && std::ranges::none_of(kubelet_.nodes(), [&](const sim_node& n) {
                return n.name == node;
            }))
            return not_found("nodes", node);
        if (!restart_)
            return status_response(500, "InternalError", "faults: no server to cut streams");
        // Down first, then the cut: a client that reconnects at once is refused.
        kubelet_down_[node] =
            std::chrono::steady_clock::now() +
            std::chrono::milliseconds(std::llround(d->to_number<double>() * 1000));
        faults_.kubelet_cuts += restart_->cut_node_streams(node);
    }
    if (auto* f = obj_at(o, "diskFull")) {
        const auto free_bytes = int_at(*f, "freeBytes", -1);
        if (free_bytes < 0)
            return bad_request("faults: diskFull needs freeBytes >= 0");
        auto p = store_.get("pods", str_at(*f, "namespace", "default"), str_at(*f, "pod"));
        if (!p)
            return not_found("pods", str_at(*f, "pod"));
        if (std::string err = kubelet_.limit_storage(str_at(p->at("metadata").as_object(), "uid"),
                                                     static_cast<std::uint64_t>(free_bytes));
            !err.empty())
            return status_response(500, "InternalError", "faults: diskFull: " + err);
    }
    if (auto* c = obj_at(o, "cordon")) {
        const auto* u = c->if_contains("unschedulable");
        if (!kubelet_.set_unschedulable(str_at(*c, "node"), !u || !u->is_bool() || u->get_bool()))
            return not_found("nodes", str_at(*c, "node"));
    }
    json::object restart{{"restarts", restart_ ? restart_->restarts() : 0},
                         {"down", restart_ && restart_->down()}};
    return json_response(200, json::object{{"http", json::object{{"code", faults_.http_code},
                                                                  {"remaining", faults_.http_count}}},
                                           {"exec", json::object{{"remaining", faults_.exec_count}}},
                                           {"failNth", json::object{{"n", faults_.nth},
                                                                    {"seen", faults_.nth_seen},
                                                                    {"fired", faults_.nth_fired}}},
                                           {"gone", json::object{{"remaining", faults_.gone_count}}},
                                           {"logCut", json::object{{"remaining", faults_.log_cut_count}}},
                                           {"rotateToken", json::object{{"rotations", faults_.rotations}}},
                                           {"expireToken",
                                            json::object{{"restorePending", token_restore_pending_}}},
                                           {"kubeletRestart",
                                            json::object{{"cut", faults_.kubelet_cuts}}},
                                           {"restart", std::move(restart)}});
}

api_response api_server::unauthorized() {
    return json_response(401, status_failure(401, "Unauthorized", "Unauthorized"));
}

bool api_server::is_exec_path(std::string_view path) {
    auto seg = split_path(path);
    return seg.size() == 7 && seg[0] == "api" && seg[1] == "v1" && seg[2] == "namespaces" &&
           seg[4] == "pods" && seg[6] == "exec";
}

api_response api_server::handle(const api_request& req) {
    auto seg = split_path(req.path);
    const std::string& m = req.method;
    if (req.path == "/version") {
        return json_response(200, json::object{{"major", "1"},
                                               {"minor", "32"},
                                               {"gitVersion", "v1.32.0-kubesim"},
                                               {"gitCommit", "0000000000000000000000000000000000000000"},
                                               {"gitTreeState", "clean"},
                                               {"buildDate", "2024-12-11T00:00:00Z"},
                                               {"goVersion", "go1.23.3"},
                                               {"compiler", "gc"},
                                               {"platform", "linux/amd64"}});
    }
    if (req.path == "/healthz" || req.path == "/livez" || req.path == "/readyz") {
        api_response r;
        r.content_type = "text/plain; charset=utf-8";
        r.body = "ok";
        return r;
    }
    if (seg.size() == 1 && seg[0] == "api") {
        return json_response(200, json::object{{"kind", "APIVersions"},
                                               {"versions", json::array{"v1"}},
                                               {"serverAddressByClientCIDRs",
                                                json::array{json::object{{"clientCIDR", "0.0.0.0/0"},
                                                                         {"serverAddress", "127.0.0.1:6443"}}}}});
    }
    if (seg.size() == 2 && seg[0] == "api" && seg[1] == "v1") {
        json::object pods = resource_entry("pods", "pod", true, "Pod",
                                           {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"},
                                           {"po"});
        pods["categories"] = json::array{"all"}; // `kubectl get all`
        json::array res{pods,
                        resource_entry("pods/exec", "", true, "PodExecOptions", {"create", "get"}),
                        resource_entry("pods/log", "", true, "Pod", {"get"}),
                        resource_entry("pods/status", "", true, "Pod", {"get", "patch", "update"}),
                        resource_entry("secrets", "secret", true, "Secret",
                                       {"create", "delete", "get", "list", "patch", "update",
                                        "watch"}),
                        resource_entry("persistentvolumeclaims", "persistentvolumeclaim", true,
                                       "PersistentVolumeClaim",
                                       {"create", "delete", "get", "list", "watch"}, {"pvc"}),
                        resource_entry("events", "event", true, "Event",
                                       {"create", "delete", "get", "list", "watch"}, {"ev"}),
                        resource_entry("namespaces", "namespace", false, "Namespace",
                                       {"create", "delete", "get", "list", "patch", "watch"},
                                       {"ns"}),
                        resource_entry("nodes", "node", false, "Node", {"get", "list"}, {"no"})};
        return json_response(200, json::object{{"kind", "APIResourceList"}, {"groupVersion", "v1"}, {"resources", res}});
    }
    if (seg.size() == 1 && seg[0] == "apis") {
        json::array groups{group_entry("authentication.k8s.io", "v1"),
                           group_entry("authorization.k8s.io", "v1"), group_entry("batch", "v1")};
        return json_response(200, json::object{{"kind", "APIGroupList"},
                                               {"apiVersion", "v1"},
                                               {"groups", groups}});
    }
    if (seg.size() == 2 && seg[0] == "apis" &&
        (seg[1] == "authorization.k8s.io" || seg[1] == "batch" ||
         seg[1] == "authentication.k8s.io")) {
        json::object g = group_entry(seg[1].c_str(), "v1");
        g["kind"] = "APIGroup";
        g["apiVersion"] = "v1";
        return json_response(200, g);
    }
    if (seg.size() == 3 && seg[0] == "apis" && seg[1] == "authorization.k8s.io" && seg[2] == "v1") {
        return json_response(
            200, json::object{{"kind", "APIResourceList"},
                              {"apiVersion", "v1"},
                              {"groupVersion", "authorization.k8s.io/v1"},
                              {"resources",
                               json::array{resource_entry("selfsubjectaccessreviews",
                                                          "selfsubjectaccessreview", false,
                                                          "SelfSubjectAccessReview", {"create"}),
                                           resource_entry("selfsubjectrulesreviews",
                                                          "selfsubjectrulesreview", false,
                                                          "SelfSubjectRulesReview",
                                                          {"create"})}}});
    }
    if (seg.size() == 3 && seg[0] == "apis" && seg[1] == "authentication.k8s.io" && seg[2] == "v1")
        return json_response(
            200, json::object{{"kind", "APIResourceList"},
                              {"apiVersion", "v1"},
                              {"groupVersion", "authentication.k8s.io/v1"},
                              {"resources", json::array{resource_entry(
                                                "selfsubjectreviews", "selfsubjectreview", false,
                                                "SelfSubjectReview", {"create"})}}});
    if (seg.size() == 4 && seg[0] == "apis" && seg[1] == "authorization.k8s.io" &&
        seg[2] == "v1" && seg[3] == "selfsubjectrulesreviews")
        return rules_review(req);
    if (seg.size() == 4 && seg[0] == "apis" && seg[1] == "authentication.k8s.io" &&
        seg[2] == "v1" && seg[3] == "selfsubjectreviews")
        return self_review(req);
    if (seg.size() == 3 && seg[0] == "apis" && seg[1] == "batch" && seg[2] == "v1") {
        json::object jobs = resource_entry("jobs", "job", true, "Job", {"create", "delete", "get", "list", "watch"});
        jobs["categories"] = json::array{"all"};
        return json_response(
            200, json::object{{"kind", "APIResourceList"},
                              {"apiVersion", "v1"},
                              {"groupVersion", "batch/v1"},
                              {"resources", json::array{jobs, resource_entry("jobs/status", "", true, "Job", {"get"})}}});
    }
    if (seg.size() == 4 && seg[0] == "apis" && seg[1] == "authorization.k8s.io" && seg[2] == "v1" &&
        seg[3] == "selfsubjectaccessreviews") {
        if (m != "POST")
            return method_not_allowed();
        json::value body;
        if (req.header("content-type").find("application/vnd.kubernetes.protobuf") != std::string::npos) {
            // kubectl auth can-i posts protobuf (spec §6.2); decode it, answer JSON (which
            // client-go accepts, as it decodes by the response's Content-Type).
            std::string error;
            auto pr = parse_ssar_protobuf(req.body, error);
            if (!pr)
                return bad_request("the object provided is unrecognized: " + error);
            json::object spec;
            if (pr->has_resource) {
                json::object ra;
                for (auto [k, v] : {std::pair<const char*, const std::string*>{"namespace", &pr->ns},
                                    {"verb", &pr->verb}, {"group", &pr->group}, {"version", &pr->version},
                                    {"resource", &pr->resource}, {"subresource", &pr->subresource},
                                    {"name", &pr->name}})
                    if (!v->empty())
                        ra[k] = *v;
                spec["resourceAttributes"] = ra;
            }
            if (pr->has_non_resource)
                spec["nonResourceAttributes"] = json::object{{"path", pr->path}, {"verb", pr->non_resource_verb}};
            body = json::object{{"metadata", json::object{{"creationTimestamp", nullptr}}}, {"spec", spec}};
        } else {
            boost::system::error_code ec;
            body = json::parse(req.body, ec);
            if (ec || !body.is_object())
                return status_response(415, "UnsupportedMediaType",
                                       "the body of the request was in an unknown format - accepted media types include: application/json, application/vnd.kubernetes.protobuf");
        }
        json::object o = body.get_object();
        o["kind"] = "SelfSubjectAccessReview";
        o["apiVersion"] = "authorization.k8s.io/v1";
        if (!o.contains("metadata"))
            o["metadata"] = json::object{};
        const json::object* spec = obj_at(o, "spec");
        const json::object* ra = spec ? obj_at(*spec, "resourceAttributes") : nullptr;
        bool allowed = true;
        if (ra) {
            access_attributes a{str_at(*ra, "verb"),     str_at(*ra, "group"),     str_at(*ra, "resource"),
                                str_at(*ra, "subresource"), str_at(*ra, "namespace"), str_at(*ra, "name")};
            allowed = policy_.allows(req.user, a);
        }
        // Non-resource attributes (/version, /api...) are open to every authenticated user.
        json::object st{{"allowed", allowed}};
        if (allowed)
            st["reason"] = "kubesim RBAC: allowed for user \"" + req.user + "\"";
        o["status"] = std::move(st);
        return json_response(201, o);
    }
    std::string watch_error;
    if (auto w = legacy_watch(req, watch_error)) {
        if (!watch_error.empty())
            return bad_request(watch_error);
        if (m != "GET")
            return method_not_allowed();
        return handle(*w);
    }
    if (req.path == "/kubesim/faults")
        return handle_faults(req);
    if (seg.size() >= 3 && seg[0] == "apis" && seg[1] == "batch" && seg[2] == "v1") {
        if (seg.size() == 4 && seg[3] == "jobs") {
            if (m != "GET")
                return method_not_allowed();
            return list_or_watch(req, "jobs", "", "JobList", "batch/v1");
        }
        if (seg.size() == 6 && seg[3] == "namespaces" && seg[5] == "jobs")
            if (auto refused = namespace_refuses(req, seg[4], "jobs.batch"))
                return *refused;
        if (seg.size() >= 6 && seg.size() <= 8 && seg[3] == "namespaces" && seg[5] == "jobs")
            return handle_jobs(req, seg[4], seg.size() >= 7 ? seg[6] : "", seg.size() == 8 ? seg[7] : "");
        return not_found_path();
    }
    if (seg.size() >= 2 && seg[0] == "api" && seg[1] == "v1") {
        // Cluster-scoped and all-namespace collections.
        if (seg.size() >= 3 && seg[2] == "nodes" && seg.size() <= 4)
            return handle_nodes(req, seg.size() == 4 ? seg[3] : "");
        if (seg.size() == 3 && (seg[2] == "pods" || seg[2] == "secrets" || seg[2] == "events")) {
            if (m != "GET")
                return method_not_allowed();
            return list_or_watch(req, seg[2], "",
                                 seg[2] == "pods" ? "PodList" : seg[2] == "secrets" ? "SecretList" : "EventList");
        }
        if (seg.size() >= 3 && seg[2] == "namespaces") {
            if (seg.size() <= 4)
                return handle_namespaces(req, seg.size() == 4 ? seg[3] : "");
            const std::string& ns = seg[3];
            const std::string& res = seg[4];
            std::string name = seg.size() >= 6 ? seg[5] : "";
            std::string sub = seg.size() >= 7 ? seg[6] : "";
            if (seg.size() > 7)
                return not_found_path();
            if (name.empty())
                if (auto refused = namespace_refuses(req, ns, res))
                    return *refused;
            if (res == "pods")
                return handle_pods(req, ns, name, sub);
            if (res == "secrets" && sub.empty())
                return handle_secrets(req, ns, name);
            if (res == "persistentvolumeclaims" && sub.empty())
                return handle_pvcs(req, ns, name);
            if (res == "events" && sub.empty())
                return handle_events(req, ns, name);
        }
    }
    return not_found_path();
}

api_response api_server::list_or_watch(const api_request& req, const std::string& resource,
                                       const std::string& ns, const std::string& list_kind,
                                       const std::string& api_version) {
    filters f;
    if (auto err = parse_filters(req, resource, f))
        return *err;
    if (req.flag("watch")) {
        std::optional<std::uint64_t> from;
        auto rv_param = req.param("resourceVersion");
        if (rv_param && !rv_param->empty() && *rv_param != "0") {
            bool as_event = false;
            if (consume_gone(as_event)) {
                std::string msg = "too old resource version: " + *rv_param + " (" + std::to_string(store_.current_rv()) + ")";
                if (!as_event)
                    return status_response(410, "Expired", msg);
                api_response r;
                r.stream = [msg](chunk_sink& sink) {
                    json::object ev{{"type", "ERROR"}, {"object", status_failure(410, "Expired", msg)}};
                    sink.write(json::serialize(ev) + "\n");
                };
                return r;
            }
        }
        if (rv_param && !rv_param->empty() && *rv_param != "0") {
            try {
                from = std::stoull(*rv_param);
            } catch (...) {
                return bad_request("invalid resourceVersion " + *rv_param);
            }
        }
        bool initial_events = req.flag("sendInitialEvents");
        bool bookmarks = req.flag("allowWatchBookmarks");
        std::int64_t timeout_s = 1800;
        if (auto t = req.param("timeoutSeconds")) {
            try {
                timeout_s = std::stoll(*t);
            } catch (...) {
            }
        }
        std::vector<json::object> initial;
        std::uint64_t rv = 0;
        if (!from || initial_events) {
            initial = store_.list(resource, ns, rv);
            from = rv;
        }
        bool expired = false;
        std::uint64_t oldest = 0;
        auto w = store_.watch(resource, ns, from, expired, &oldest);
        if (expired) {
            // The watch cache (cacher.go Watch): a version it no longer holds is an ERROR event
            // in a 200 watch stream (newErrWatcher), "too old resource version: X (oldest-1)".
            std::string msg = "too old resource version: " + *rv_param + " (" +
                              std::to_string(oldest) + ")";
            api_response r;
            r.stream = [msg](chunk_sink& sink) {
                json::object ev{{"type", "ERROR"},
                                {"object", status_failure(410, "Expired", msg)}};
                sink.write(json::serialize(ev) + "\n");
            };
            return r;
        }
        api_response r;
        std::string kind = list_kind.substr(0, list_kind.size() - 4); // "PodList" → "Pod"
        std::optional<std::uint64_t> req_rv = from;
        r.stream = [this, w, f, resource, kind, api_version, initial = std::move(initial), initial_events,
                    bookmarks, rv, req_rv, timeout_s](chunk_sink& sink) mutable {
            auto line = [](const char* type, const json::object& obj) {
                return json::serialize(json::object{{"type", type}, {"object", obj}}) + "\n";
            };
            bool ok = true;
            for (const auto& o : initial)
                if (ok && matches(resource, f, o))
                    ok = sink.write(line("ADDED", o));
            if (ok && initial_events) {
                json::object bm{{"kind", kind},
                                {"apiVersion", api_version},
                                {"metadata", json::object{{"resourceVersion", std::to_string(rv)},
                                                          {"annotations", json::object{{"k8s.io/initial-events-end", "true"}}}}}};
                ok = sink.write(line("BOOKMARK", bm));
            }
            auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
            // Bookmarks carry the newest resourceVersion this watch has delivered (or started at),
            // never one whose events could still be queued.
            std::uint64_t last_rv = rv;
            if (auto p = req_rv; p)
                last_rv = std::max(last_rv, *p);
            auto last_sent = std::chrono::steady_clock::now();
            const auto bookmark_every = bookmark_interval_;
            while (ok && !stopping_ && !sink.cancelled()) {
                auto now = std::chrono::steady_clock::now();
                auto next_wake = std::min(deadline, now + std::chrono::seconds(1));
                if (bookmarks)
                    next_wake = std::min(next_wake, last_sent + bookmark_every);
                auto ev = w->next(next_wake);
                if (!ev) {
                    if (w->done() || std::chrono::steady_clock::now() >= deadline)
                        break;
                    if (bookmarks && std::chrono::steady_clock::now() >= last_sent + bookmark_every) {
                        json::object bm{{"kind", kind},
                                        {"apiVersion", api_version},
                                        {"metadata", json::object{{"resourceVersion", std::to_string(last_rv)}}}};
                        ok = sink.write(line("BOOKMARK", bm));
                        last_sent = std::chrono::steady_clock::now();
                    }
                    continue;
                }
                last_rv = std::max(last_rv, ev->rv);
                bool now_matches = matches(resource, f, ev->object);
                const char* type = ev->type.c_str();
                if (ev->type == "MODIFIED" && !ev->previous.empty()) {
                    // Moving into or out of the selection is ADDED / DELETED for this watcher.
                    bool was = matches(resource, f, ev->previous);
                    if (was && !now_matches)
                        type = "DELETED";
                    else if (!was && now_matches)
                        type = "ADDED";
                    else if (!now_matches)
                        continue;
                } else if (!now_matches) {
                    continue;
                }
                ok = sink.write(line(type, ev->object));
                last_sent = std::chrono::steady_clock::now();
            }
            store_.unwatch(w);
        };
        return r;
    }
    std::uint64_t rv = 0;
    std::vector<json::object> items;
    for (auto& o : store_.list(resource, ns, rv))
        if (matches(resource, f, o))
            items.push_back(std::move(o));
    // limit/continue: a continue token is the index to resume from (consistent enough for tests).
    std::size_t start = 0;
    if (auto c = req.param("continue"); c && !c->empty()) {
        bool as_event = false;
        if (consume_gone(as_event))
            return status_response(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.");
        try {
            start = std::stoull(*c);
        } catch (...) {
            return status_response(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.");
        }
    }
    std::size_t limit = 0;
    if (auto l = req.param("limit")) {
        try {
            limit = std::stoull(*l);
        } catch (...) {
        }
    }
    std::size_t end = items.size();
    if (limit > 0 && start + limit < items.size())
        end = start + limit;
    std::vector<json::object> page;
    for (std::size_t i = std::min(start, items.size()); i < end; ++i)
        page.push_back(std::move(items[i]));
    json::object md{{"resourceVersion", std::to_string(rv)}};
    if (end < items.size()) {
        md["continue"] = std::to_string(end);
        md["remainingItemCount"] = static_cast<std::int64_t>(items.size() - end);
    }
    if (wants_table(req.header("accept"))) {
        json::object t = make_table(resource, page, rv);
        t["metadata"] = md;
        return json_response(200, t);
    }
    json::array arr;
    for (auto& o : page)
        arr.push_back(strip_for_list(std::move(o)));
    return json_response(200, json::object{{"kind", list_kind}, {"apiVersion", api_version}, {"metadata", md}, {"items", arr}});
}

api_response api_server::handle_pods(const api_request& req, const std::string& ns,
                                     const std::string& name, const std::string& sub) {
    const std::string& m = req.method;
    if (name.empty()) {
        if (m == "GET")
            return list_or_watch(req, "pods", ns, "PodList");
        if (m != "POST")
            return method_not_allowed();
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return bad_request("the body of the request could not be decoded as a Pod");
        api_response::header_list warnings;
        if (auto bad = unknown_fields(req, "Pod", body.as_object(), warnings))
            return *bad;
        if (auto bad = namespace_mismatch(body.as_object(), ns))
            return *bad;
        auto created = create_pod(ns, body.get_object(), dry_run(req), &warnings);
        if (auto* err = std::get_if<api_response>(&created))
            return *err;
        api_response r = json_response(201, std::get<json::object>(created));
        r.headers = std::move(warnings);
        return r;
    }
    if (sub == "log") {
        if (m != "GET")
            return method_not_allowed();
        return pod_logs(req, ns, name);
    }
    if (sub == "exec")
        return bad_request("Upgrade request required");
    if (!sub.empty() && sub != "status")
        return not_found_path();
    if (m == "PUT" || m == "PATCH")
        return update_object(req, "pods", ns, name, sub);
    if (m == "GET") {
        auto pod = store_.get("pods", ns, name);
        if (!pod)
            return not_found("pods", name);
        if (wants_table(req.header("accept"))) {
            return json_response(200, make_table("pods", {*pod}, store_.current_rv()));
        }
        return json_response(200, *pod);
    }
    if (m == "DELETE" && sub.empty()) {
        std::optional<std::int64_t> grace;
        if (auto g = req.param("gracePeriodSeconds")) {
            try {
                grace = std::stoll(*g);
            } catch (...) {
                return bad_request("invalid gracePeriodSeconds");
            }
        }
        if (!req.body.empty()) {
            boost::system::error_code ec;
            json::value body = json::parse(req.body, ec);
            if (!ec && body.is_object() && body.as_object().contains("gracePeriodSeconds"))
                grace = int_at(body.as_object(), "gracePeriodSeconds", 30);
            if (!ec && body.is_object())
                if (auto* pre = obj_at(body.as_object(), "preconditions")) {
                    auto pod = store_.get("pods", ns, name);
                    if (!pod)
                        return not_found("pods", name);
                    std::string uid = str_at(*pre, "uid");
                    if (!uid.empty() && uid != str_at(pod->at("metadata").as_object(), "uid"))
                        return status_response(409, "Conflict",
                                               "Operation cannot be fulfilled on pods \"" + name +
                                                   "\": Precondition failed: UID in precondition: " + uid,
                                               status_details(name, "pods"));
                }
        }
        if (dry_run(req)) {
            auto pod = store_.get("pods", ns, name);
            if (!pod)
                return not_found("pods", name);
            return json_response(200, *pod);
        }
        auto result = kubelet_.delete_pod(ns, name, grace);
        if (!result)
            return not_found("pods", name);
        return json_response(200, *result);
    }
    return method_not_allowed();
}

std::variant<api_response, json::object>
api_server::create_pod(const std::string& ns, json::object pod, bool dry_run,
                       api_response::header_list* warnings) {
    if (str_at(pod, "kind", "Pod") != "Pod")
        return bad_request("the API version in the data (" + str_at(pod, "apiVersion") +
                           ") does not match the expected API version (v1)");
    pod["kind"] = "Pod";
    pod["apiVersion"] = "v1";
    if (!pod["metadata"].is_object())
        pod["metadata"] = json::object{};
    auto& md = pod["metadata"].as_object();
    std::string pname = str_at(md, "name");
    if (pname.empty() && !str_at(md, "generateName").empty()) {
        pname = str_at(md, "generateName") + random_name_suffix();
        md["name"] = pname;
    }
    if (!pod["spec"].is_object())
        pod["spec"] = json::object{};
    auto& spec = pod["spec"].as_object();
    if (std::string bad = pod_decode_error(pod); !bad.empty())
        return bad_request("Pod in version \"v1\" cannot be handled as a Pod: " + bad);
    default_pod_spec(spec);
    if (field_errors errs = validate_pod(pod); !errs.empty())
        return json_response(422, invalid_status("Pod", pname, errs));
    if (auto refused = pod_security(ns, "pods", pname, pod.at("metadata").as_object(),
                                    pod.at("spec").as_object(), true, warnings))
        return *refused;
    pod["status"] = json::object{{"phase", "Pending"}, {"qosClass", "BestEffort"}};
    if (dry_run) {
        if (store_.get("pods", ns, pname))
            return status_response(409, "AlreadyExists", "pods \"" + pname + "\" already exists",
                                   status_details(pname, "pods"));
        return would_be_created(std::move(pod), ns);
    }
    auto created = store_.create("pods", ns, pod);
    if (!created)
        return status_response(409, "AlreadyExists", "pods \"" + pname + "\" already exists",
                               status_details(pname, "pods"));
    kubelet_.pod_created(ns, pname);
    return *created;
}

std::optional<api_response> api_server::pod_security(const std::string& ns,
                                                     const std::string& resource,
                                                     const std::string& name,
                                                     const json::object& metadata,
                                                     const json::object& spec, bool enforce,
                                                     api_response::header_list* warnings) {
    auto n = store_.get("namespaces", "", ns);
    const json::object* nmd = n ? obj_at(*n, "metadata") : nullptr;
    psa_decision d = psa_admit(nmd ? obj_at(*nmd, "labels") : nullptr, metadata, spec, enforce);
    // Upstream writes these as audit annotations (pod-security.kubernetes.io/audit-violations,
    // .../error) into the audit log; kubesim's log is stderr.
    if (!d.audit.empty())
        std::cerr << "kubesim: audit: " << resource << " " << ns << "/" << name
                  << ": pod-security.kubernetes.io/audit-violations: " << d.audit << "\n";
    if (!d.policy_error.empty())
        std::cerr << "kubesim: audit: " << resource << " " << ns << "/" << name
                  << ": pod-security.kubernetes.io/error: " << d.policy_error << "\n";
    if (!d.forbidden.empty())
        return status_response(403, "Forbidden",
                               resource + " " + go_quote(name) + " is forbidden: " + d.forbidden,
                               status_details(name, resource));
    if (warnings)
        for (const auto& w : d.warnings)
            warnings->emplace_back("Warning", "299 - " + go_quote(w));
    return std::nullopt;
}

api_response api_server::pod_logs(const api_request& req, const std::string& ns, const std::string& name) {
    auto pod = store_.get("pods", ns, name);
    if (!pod)
        return not_found("pods", name);
    auto resolved = resolve_container(*pod, req.param("container").value_or(""));
    if (auto* err = std::get_if<api_response>(&resolved))
        return *err;
    std::string cname = std::get<std::string>(resolved);
    api_response r;
    r.content_type = "text/plain";
    if (str_at(pod->at("spec").as_object(), "nodeName").empty())
        return r; // not scheduled: empty 200
    std::string uid = str_at(pod->at("metadata").as_object(), "uid");
    auto view = kubelet_.container(uid, cname);
    bool previous = req.flag("previous");
    if (previous && (!view || view->restart_count == 0))
        return bad_request("previous terminated container \"" + cname + "\" in pod \"" + name + "\" not found");
    // A container in CrashLoopBackOff serves its last instance's log, like the kubelet does.
    bool crash_looping = view && view->st == container_view::state::waiting && view->waiting_reason == "CrashLoopBackOff";
    if (!previous && (!view || (view->st == container_view::state::waiting && !crash_looping))) {
        std::string reason = view ? view->waiting_reason : "ContainerCreating";
        if (reason == "ErrImagePull")
            reason = "trying and failing to pull image";
        else if (reason == "ImagePullBackOff")
            reason = "image can't be pulled";
        return bad_request("container \"" + cname + "\" in pod \"" + name + "\" is waiting to start: " + reason);
    }
    {
        // The kubelet URL the API server dials (strategy.go LogLocation; url.Values.Encode
        // sorts the keys).
        std::string query;
        for (const char* key : {"follow", "limitBytes", "previous", "sinceSeconds", "sinceTime",
                                "tailLines", "timestamps"}) {
            auto v = req.param(key);
            const bool flag = std::string_view(key) == "follow" ||
                              std::string_view(key) == "previous" ||
                              std::string_view(key) == "timestamps";
            if (flag ? !req.flag(key) : !v)
                continue;
            query += (query.empty() ? "?" : "&") + std::string(key) + "=" +
                     (flag ? std::string("true") : *v);
        }
        if (auto down = kubelet_unreachable(*pod, "/containerLogs/" + ns + "/" + name + "/" +
                                                      cname + query))
            return *down;
    }
    std::string path = view->log_path;
    if (previous)
        path = path.substr(0, path.size() - 4) + ".previous.log";
    const int instance = view->restart_count;
    const bool live = !previous && view->st == container_view::state::running;
    std::shared_ptr<log_index> index = previous ? view->previous_index : view->index;
    std::optional<std::int64_t> tail, limit_bytes;
    if (auto t = req.param("tailLines"))
        try {
            tail = std::stoll(*t);
        } catch (...) {
        }
    if (auto l = req.param("limitBytes"))
        try {
            limit_bytes = std::stoll(*l);
        } catch (...) {
        }
    const bool timestamps = req.flag("timestamps");
    std::optional<std::chrono::system_clock::time_point> since;
    auto since_seconds = req.param("sinceSeconds");
    auto since_time = req.param("sinceTime");
    if (since_seconds && since_time)
        return status_response(422, "Invalid", "PodLogOptions \"\" is invalid: []: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified");
    if (since_seconds) {
        std::int64_t n = 0;
        try {
            n = std::stoll(*since_seconds);
        } catch (...) {
        }
        if (n <= 0)
            return status_response(422, "Invalid", "PodLogOptions \"\" is invalid: sinceSeconds: Invalid value: " + *since_seconds + ": must be greater than 0");
        since = std::chrono::system_clock::now() - std::chrono::seconds(n);
    } else if (since_time) {
        since = parse_rfc3339(*since_time);
    }
    bool follow = req.flag("follow") && live;
    // The whole file, then sinceSeconds/sinceTime, tailLines, timestamps, limitBytes (kubelet order).
    std::string content;
    {
        std::ifstream in(path, std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        content = ss.str();
    }
    const std::size_t offset = content.size();
    const bool ends_in_newline = content.empty() || content.back() == '\n';
    std::uint64_t base = 0; // file offset of content[0]
    if (since && index) {
        base = std::min<std::uint64_t>(index->first_since(*since), content.size());
        content.erase(0, static_cast<std::size_t>(base));
    }
    if (tail && *tail >= 0) {
        std::size_t pos = content.size();
        std::int64_t lines = 0;
        if (pos > 0 && content[pos - 1] == '\n')
            --pos;
        while (pos > 0 && lines < *tail) {
            --pos;
            if (content[pos] == '\n') {
                ++lines;
                if (lines == *tail) {
                    ++pos;
                    break;
                }
            }
        }
        if (*tail == 0)
            pos = content.size();
        content = content.substr(pos);
        base += pos;
    }
    // "2024-05-01T10:00:00.123456789Z " before every line, from the line's arrival time (of its
    // first part).
    auto stamp = [index](std::string_view data, std::uint64_t at, bool& line_start) {
        std::string out;
        out.reserve(data.size() + 32);
        for (std::size_t i = 0; i < data.size(); ++i) {
            if (line_start) {
                out += rfc3339_nano(index ? index->time_at(at + i) : std::chrono::system_clock::now());
                out += ' ';
                line_start = false;
            }
            out += data[i];
            if (data[i] == '\n')
                line_start = true;
        }
        return out;
    };
    if (timestamps) {
        // From sinceTime the content may begin inside a line (a later part of a long one):
        // the kubelet stamps only a part that starts a line.
        bool line_start = !index || index->starts_line(base);
        content = stamp(content, base, line_start);
    }
    if (limit_bytes && *limit_bytes >= 0 && static_cast<std::size_t>(*limit_bytes) < content.size())
        content.resize(static_cast<std::size_t>(*limit_bytes));
    if (!follow) {
        r.body = std::move(content);
        return r;
    }
    // The logCut fault: this follow stream ends (or breaks) after that many body bytes.
    std::optional<std::uint64_t> cut_after;
    bool cut_abrupt = false;
    {
        std::lock_guard lk(faults_mu_);
        if (faults_.log_cut_count > 0) {
            --faults_.log_cut_count;
            cut_after = faults_.log_cut_after_bytes;
            cut_abrupt = faults_.log_cut_abrupt;
        }
    }
    r.stream_node = str_at(pod->at("spec").as_object(), "nodeName");
    r.stream = [this, path, offset, content = std::move(content), uid, cname, instance, timestamps, stamp,
                ends_in_newline, cut_after, cut_abrupt](chunk_sink& out) {
        cut_sink sink(out, cut_after);
        struct finish {
            cut_sink& sink;
            chunk_sink& out;
            bool abrupt;
            ~finish() {
                if (sink.cut() && abrupt)
                    out.abort();
            }
        } on_return{sink, out, cut_abrupt};
        if (!content.empty() && !sink.write(content))
            return;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return;
        ::lseek(fd, static_cast<off_t>(offset), SEEK_SET);
        std::uint64_t at = offset;
        bool line_start = ends_in_newline;
        std::vector<char> buf(64 * 1024);
        bool ended = false;
        while (!stopping_ && !out.cancelled()) {
            ssize_t n = ::read(fd, buf.data(), buf.size());
            if (n > 0) {
                std::string_view chunk(buf.data(), static_cast<std::size_t>(n));
                bool ok = timestamps ? sink.write(stamp(chunk, at, line_start)) : sink.write(chunk);
                at += static_cast<std::uint64_t>(n);
                if (!ok)
                    break;
                continue;
            }
            if (ended)
                break; // drained after the container terminated
            auto v = kubelet_.container(uid, cname);
            if (!v || v->st != container_view::state::running || v->restart_count != instance) {
                ended = true;
                continue;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        ::close(fd);
    };
    return r;
}

api_response api_server::handle_secrets(const api_request& req, const std::string& ns,
                                        const std::string& name) {
    const std::string& m = req.method;
    if (name.empty()) {
        if (m == "GET")
            return list_or_watch(req, "secrets", ns, "SecretList");
        if (m != "POST")
            return method_not_allowed();
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return bad_request("the body of the request could not be decoded as a Secret");
        api_response::header_list warnings;
        if (auto bad = unknown_fields(req, "Secret", body.as_object(), warnings))
            return *bad;
        if (auto bad = namespace_mismatch(body.as_object(), ns))
            return *bad;
        json::object sec = body.get_object();
        sec["kind"] = "Secret";
        sec["apiVersion"] = "v1";
        if (!sec["metadata"].is_object())
            sec["metadata"] = json::object{};
        auto& md = sec["metadata"].as_object();
        std::string sname = str_at(md, "name");
        if (sname.empty() && !str_at(md, "generateName").empty()) {
            sname = str_at(md, "generateName") + random_name_suffix();
            md["name"] = sname;
        }
        if (!sec.contains("type"))
            sec["type"] = "Opaque";
        auto size = secret_data(sec);
        if (auto* bad = std::get_if<std::string>(&size))
            return bad_request("Secret in version \"v1\" cannot be handled as a Secret: " + *bad);
        const std::size_t total = std::get<std::size_t>(size);
        auto& data = sec["data"].as_object();
        if (field_errors errs = validate_secret(sec, total); !errs.empty())
            return json_response(422, invalid_status("Secret", sname, errs));
        if (str_at(sec, "type") == "kubernetes.io/dockerconfigjson") {
            bool ok = data.contains(".dockerconfigjson") && data.at(".dockerconfigjson").is_string();
            if (ok) {
                std::string raw = b64decode(data.at(".dockerconfigjson").get_string(), &ok);
                boost::system::error_code jec;
                json::parse(raw, jec);
                ok = ok && !jec;
            }
            if (!ok)
                return status_response(422, "Invalid",
                                       "Secret \"" + sname + "\" is invalid: data[.dockerconfigjson]: Invalid value: \"<secret contents redacted>\": must be a valid JSON document with key .dockerconfigjson",
                                       json::object{{"name", sname}, {"kind", "Secret"}});
        }
        if (dry_run(req) && !store_.get("secrets", ns, sname)) {
            api_response r = json_response(201, would_be_created(std::move(sec), ns));
            r.headers = std::move(warnings);
            return r;
        }
        auto created = dry_run(req) ? std::nullopt : store_.create("secrets", ns, sec);
        if (!created)
            return status_response(409, "AlreadyExists", "secrets \"" + sname + "\" already exists",
                                   status_details(sname, "secrets"));
        api_response r = json_response(201, *created);
        r.headers = std::move(warnings);
        return r;
    }
    if (m == "PUT" || m == "PATCH")
        return update_object(req, "secrets", ns, name, "");
    if (m == "GET") {
        auto s = store_.get("secrets", ns, name);
        if (!s)
            return not_found("secrets", name);
        return json_response(200, *s);
    }
    if (m == "DELETE") {
        auto s =
            dry_run(req) ? store_.get("secrets", ns, name) : store_.remove("secrets", ns, name);
        if (!s)
            return not_found("secrets", name);
        return json_response(200, json::object{{"kind", "Status"},
                                               {"apiVersion", "v1"},
                                               {"metadata", json::object{}},
                                               {"status", "Success"},
                                               {"details", json::object{{"name", name},
                                                                        {"kind", "secrets"},
                                                                        {"uid", str_at(s->at("metadata").as_object(), "uid")}}}});
    }
    return method_not_allowed();
}

api_response api_server::handle_pvcs(const api_request& req, const std::string& ns, const std::string& name) {
    const std::string& m = req.method;
    if (name.empty()) {
        if (m == "GET")
            return list_or_watch(req, "persistentvolumeclaims", ns, "PersistentVolumeClaimList");
        if (m != "POST")
            return method_not_allowed();
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return bad_request("the body of the request could not be decoded as a PersistentVolumeClaim");
        api_response::header_list warnings;
        if (auto bad = unknown_fields(req, "PersistentVolumeClaim", body.as_object(), warnings))
            return *bad;
        if (auto bad = namespace_mismatch(body.as_object(), ns))
            return *bad;
        json::object pvc = body.get_object();
        pvc["kind"] = "PersistentVolumeClaim";
        pvc["apiVersion"] = "v1";
        if (!pvc["metadata"].is_object())
            pvc["metadata"] = json::object{};
        auto& md = pvc["metadata"].as_object();
        std::string cname = str_at(md, "name");
        if (cname.empty() && !str_at(md, "generateName").empty()) {
            cname = str_at(md, "generateName") + random_name_suffix();
            md["name"] = cname;
        }
        if (!pvc["spec"].is_object())
            pvc["spec"] = json::object{};
        auto& spec = pvc["spec"].as_object();
        if (field_errors errs = validate_pvc(pvc); !errs.empty())
            return json_response(422, invalid_status("PersistentVolumeClaim", cname, errs));
        const json::array* modes = arr_at(spec, "accessModes");
        // Copy before inserting into spec: an insert may rehash spec and invalidate `modes`.
        const json::array access_modes = *modes;
        if (!spec.contains("volumeMode"))
            spec["volumeMode"] = "Filesystem";
        if (!spec.contains("storageClassName"))
            spec["storageClassName"] = "kubesim";
        json::object capacity{{"storage", "1Gi"}};
        if (auto* res = obj_at(spec, "resources"))
            if (auto* reqs = obj_at(*res, "requests"))
                capacity = *reqs;
        pvc["status"] = json::object{{"phase", "Bound"}, {"accessModes", access_modes}, {"capacity", capacity}};
        if (dry_run(req) && !store_.get("persistentvolumeclaims", ns, cname)) {
            pvc["status"] = json::object{{"phase", "Pending"}};
            api_response r = json_response(201, would_be_created(std::move(pvc), ns));
            r.headers = std::move(warnings);
            return r;
        }
        auto created =
            dry_run(req) ? std::nullopt : store_.create("persistentvolumeclaims", ns, pvc);
        if (!created)
            return status_response(409, "AlreadyExists",
                                   "persistentvolumeclaims \"" + cname + "\" already exists",
                                   status_details(cname, "persistentvolumeclaims"));
        // Bound at once to a "volume" named after the claim's uid (no PV objects are served).
        std::string uid = str_at(created->at("metadata").as_object(), "uid");
        auto bound = store_.update("persistentvolumeclaims", ns, cname, uid, [&](json::object& o) {
            o["spec"].as_object()["volumeName"] = "pvc-" + uid;
        });
        kubelet_.claim_created(ns); // pods the scheduler held back for this claim
        api_response r = json_response(201, bound ? *bound : *created);
        r.headers = std::move(warnings);
        return r;
    }
    if (m == "GET") {
        auto c = store_.get("persistentvolumeclaims", ns, name);
        if (!c)
            return not_found("persistentvolumeclaims", name);
        return json_response(200, *c);
    }
    if (m == "DELETE") {
        auto c = dry_run(req) ? store_.get("persistentvolumeclaims", ns, name)
                              : store_.remove("persistentvolumeclaims", ns, name);
        if (!c)
            return not_found("persistentvolumeclaims", name);
        return json_response(200, *c);
    }
    return method_not_allowed();
}

namespace {

json::object batch_details(std::string_view name, std::string_view kind, std::string_view uid = {}) {
    json::object d;
    if (!name.empty())
        d["name"] = name;
    d["group"] = "batch";
    d["kind"] = kind;
    if (!uid.empty())
        d["uid"] = uid;
    return d;
}

/// DeleteOptions from the query and the JSON body (body wins, as the apiserver merges them).
struct delete_options {
    std::string propagation; ///< "" when not given
    std::string precondition_uid;
};

std::optional<delete_options> parse_delete_options(const api_request& req) {
    delete_options o;
    if (auto p = req.param("propagationPolicy"))
        o.propagation = *p;
    if (auto od = req.param("orphanDependents"))
        o.propagation = lenient_bool(true, *od) ? "Orphan" : "Background";
    if (!req.body.empty()) {
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return std::nullopt;
        const json::object& b = body.get_object();
        if (b.contains("orphanDependents") && b.at("orphanDependents").is_bool())
            o.propagation = b.at("orphanDependents").get_bool() ? "Orphan" : "Background";
        if (b.contains("propagationPolicy"))
            o.propagation = str_at(b, "propagationPolicy");
        if (auto* pre = obj_at(b, "preconditions"))
            o.precondition_uid = str_at(*pre, "uid");
    }
    return o;
}

} // namespace

api_response api_server::handle_jobs(const api_request& req, const std::string& ns, const std::string& name,
                                     const std::string& sub) {
    const std::string& m = req.method;
    if (name.empty()) {
        if (m == "GET")
            return list_or_watch(req, "jobs", ns, "JobList", "batch/v1");
        if (m != "POST")
            return method_not_allowed();
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return bad_request("the body of the request could not be decoded as a Job");
        json::object job = body.get_object();
        if (str_at(job, "kind", "Job") != "Job" || str_at(job, "apiVersion", "batch/v1") != "batch/v1")
            return bad_request("the API version in the data (" + str_at(job, "apiVersion") +
                               ") does not match the expected API version (batch/v1)");
        job["kind"] = "Job";
        job["apiVersion"] = "batch/v1";
        if (!job["metadata"].is_object())
            job["metadata"] = json::object{};
        auto& md = job["metadata"].as_object();
        std::string jname = str_at(md, "name");
        if (jname.empty() && !str_at(md, "generateName").empty()) {
            jname = str_at(md, "generateName") + random_name_suffix();
            md["name"] = jname;
        }
        if (jname.empty())
            return status_response(422, "Invalid",
                                   "Job.batch \"\" is invalid: metadata.name: Required value: name or generateName is required",
                                   batch_details("", "Job"));
        std::string uid = random_uuid();
        if (auto bad = admit_job(job, uid)) {
            json::object d = batch_details(jname, "Job");
            d["causes"] = json::array{json::object{{"reason", bad->reason}, {"message", bad->detail}, {"field", bad->field}}};
            return status_response(422, "Invalid",
                                   "Job.batch \"" + jname + "\" is invalid: " + bad->field + ": " + bad->detail, d);
        }
        // PodSecurity on a pod controller: warn and audit on its template, never enforce (the
        // controller's pods are what enforce rejects).
        api_response::header_list warnings;
        if (const json::object* jspec = obj_at(job, "spec"))
            if (const json::object* tmpl = obj_at(*jspec, "template")) {
                static const json::object none;
                const json::object* tmd = obj_at(*tmpl, "metadata");
                const json::object* tspec = obj_at(*tmpl, "spec");
                (void)pod_security(ns, "jobs", jname, tmd ? *tmd : none, tspec ? *tspec : none,
                                   false, &warnings);
            }
        auto created = store_.create("jobs", ns, std::move(job), uid);
        if (!created)
            return status_response(409, "AlreadyExists", "jobs.batch \"" + jname + "\" already exists",
                                   batch_details(jname, "jobs"));
        api_response r = json_response(201, *created);
        r.headers = std::move(warnings);
        return r;
    }
    if (!sub.empty() && sub != "status")
        return not_found_path();
    auto job = store_.get("jobs", ns, name);
    auto job_not_found = [&] {
        return status_response(404, "NotFound", "jobs.batch \"" + name + "\" not found", batch_details(name, "jobs"));
    };
    if (m == "GET") {
        if (!job)
            return job_not_found();
        if (wants_table(req.header("accept")))
            return json_response(200, make_table("jobs", {*job}, store_.current_rv()));
        return json_response(200, *job);
    }
    if (m != "DELETE" || !sub.empty())
        return method_not_allowed();
    auto opts = parse_delete_options(req);
    if (!opts)
        return bad_request("the body of the request could not be decoded as DeleteOptions");
    if (!job)
        return job_not_found();
    std::string uid = str_at(job->at("metadata").as_object(), "uid");
    if (!opts->precondition_uid.empty() && opts->precondition_uid != uid)
        return status_response(409, "Conflict",
                               "Operation cannot be fulfilled on jobs.batch \"" + name +
                                   "\": Precondition failed: UID in precondition: " + opts->precondition_uid +
                                   ", UID in object meta: " + uid,
                               batch_details(name, "jobs"));
    std::vector<std::pair<std::string, std::string>> headers;
    std::string policy = opts->propagation;
    if (policy.empty()) {
        // batch/v1 keeps the legacy default (orphan) and says so in a Warning header.
        policy = "Orphan";
        headers.emplace_back("Warning", "299 - \"child pods are preserved by default when jobs are deleted; set "
                                        "propagationPolicy=Background to remove them or set "
                                        "propagationPolicy=Orphan to suppress this warning\"");
    }
    if (policy != "Orphan" && policy != "Background" && policy != "Foreground")
        return status_response(422, "Invalid",
                               "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"" +
                                   policy + "\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"");
    api_response r;
    if (policy == "Background") {
        auto removed = store_.remove("jobs", ns, name, uid);
        if (!removed)
            return job_not_found();
        r = json_response(200, json::object{{"kind", "Status"},
                                            {"apiVersion", "v1"},
                                            {"metadata", json::object{}},
                                            {"status", "Success"},
                                            {"details", batch_details(name, "jobs", uid)}});
    } else {
        // Foreground and Orphan keep the object with a finalizer until the garbage collector is
        // done: foreground after the pods are gone (job controller), orphan right here.
        auto updated = store_.update("jobs", ns, name, uid, [&](json::object& o) {
            auto& md = o["metadata"].as_object();
            if (!md.contains("deletionTimestamp"))
                md["deletionTimestamp"] = now_rfc3339();
            md["deletionGracePeriodSeconds"] = 0;
            md["finalizers"] = json::array{policy == "Foreground" ? "foregroundDeletion" : "orphan"};
        });
        if (!updated)
            return job_not_found();
        if (policy == "Orphan") {
            if (jobs_)
                jobs_->orphan_pods(ns, uid);
            store_.remove("jobs", ns, name, uid);
        }
        r = json_response(200, *updated);
    }
    r.headers = std::move(headers);
    return r;
}

api_response api_server::handle_events(const api_request& req, const std::string& ns, const std::string& name) {
    const std::string& m = req.method;
    if (name.empty()) {
        if (m == "GET")
            return list_or_watch(req, "events", ns, "EventList");
        if (m != "POST")
            return method_not_allowed();
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return bad_request("the body of the request could not be decoded as an Event");
        json::object ev = body.get_object();
        ev["kind"] = "Event";
        ev["apiVersion"] = "v1";
        if (!ev["metadata"].is_object())
            ev["metadata"] = json::object{};
        auto& md = ev["metadata"].as_object();
        std::string ename = str_at(md, "name");
        if (ename.empty() && !str_at(md, "generateName").empty()) {
            ename = str_at(md, "generateName") + random_name_suffix();
            md["name"] = ename;
        }
        if (ename.empty())
            return status_response(422, "Invalid", "Event \"\" is invalid: metadata.name: Required value: name or generateName is required");
        if (!obj_at(ev, "involvedObject"))
            return status_response(422, "Invalid", "Event \"" + ename + "\" is invalid: involvedObject: Required value",
                                   status_details(ename, "Event"));
        auto created = store_.create("events", ns, std::move(ev));
        if (!created)
            return status_response(409, "AlreadyExists", "events \"" + ename + "\" already exists",
                                   status_details(ename, "events"));
        return json_response(201, *created);
    }
    if (m == "GET") {
        auto e = store_.get("events", ns, name);
        if (!e)
            return not_found("events", name);
        return json_response(200, *e);
    }
    if (m == "DELETE") {
        auto e = store_.remove("events", ns, name);
        if (!e)
            return not_found("events", name);
        return json_response(200, json::object{{"kind", "Status"},
                                               {"apiVersion", "v1"},
                                               {"metadata", json::object{}},
                                               {"status", "Success"},
                                               {"details", json::object{{"name", name},
                                                                        {"kind", "events"},
                                                                        {"uid", str_at(e->at("metadata").as_object(), "uid")}}}});
    }
    return method_not_allowed();
}

api_response api_server::handle_nodes(const api_request& req, const std::string& name) {
    if (req.method != "GET")
        return method_not_allowed();
    if (name.empty())
        return list_or_watch(req, "nodes", "", "NodeList");
    auto n = store_.get("nodes", "", name);
    if (!n)
        return not_found("nodes", name);
    if (wants_table(req.header("accept")))
        return json_response(200, make_table("nodes", {*n}, store_.current_rv()));
    return json_response(200, *n);
}

json::object api_server::namespace_object(const std::string& name) {
    return json::object{
        {"kind", "Namespace"},
        {"apiVersion", "v1"},
        {"metadata", json::object{{"name", name},
                                  {"labels", json::object{{"kubernetes.io/metadata.name", name}}}}},
        {"spec", json::object{{"finalizers", json::array{"kubernetes"}}}},
        {"status", json::object{{"phase", "Active"}}}};
}

std::optional<api_response> api_server::namespace_refuses(const api_request& req,
                                                          const std::string& ns,
                                                          const std::string& resource) {
    if (req.method != "POST" || ns.empty())
        return std::nullopt;
    auto n = store_.get("namespaces", "", ns);
    if (!n)
        return not_found("namespaces", ns);
    const json::object* st = obj_at(*n, "status");
    if (st && str_at(*st, "phase") == "Terminating") {
        std::string name;
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (!ec && body.is_object())
            if (const json::object* md = obj_at(body.as_object(), "metadata"))
                name = str_at(*md, "name");
        std::string msg =
            "unable to create new content in namespace " + ns + " because it is being terminated";
        return status_response(403, "Forbidden",
                               resource + (name.empty() ? "" : " \"" + name + "\"") +
                                   " is forbidden: " + msg,
                               status_details(name, resource));
    }
    return std::nullopt;
}

api_response api_server::handle_namespaces(const api_request& req, const std::string& name) {
    const std::string& m = req.method;
    if (name.empty()) {
        if (m == "GET")
            return list_or_watch(req, "namespaces", "", "NamespaceList");
        if (m != "POST")
            return method_not_allowed();
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return bad_request("the body of the request could not be decoded as a Namespace");
        api_response::header_list warnings;
        if (auto bad = unknown_fields(req, "Namespace", body.as_object(), warnings))
            return *bad;
        json::object ns = body.get_object();
        ns["kind"] = "Namespace";
        ns["apiVersion"] = "v1";
        if (!ns["metadata"].is_object())
            ns["metadata"] = json::object{};
        auto& md = ns["metadata"].as_object();
        md.erase("namespace"); // cluster-scoped: cleared before validation, as upstream
        std::string nname = str_at(md, "name");
        if (nname.empty() && !str_at(md, "generateName").empty()) {
            nname = str_at(md, "generateName") + random_name_suffix();
            md["name"] = nname;
        }
        if (!md["labels"].is_object())
            md["labels"] = json::object{};
        if (!nname.empty())
            md["labels"].as_object()["kubernetes.io/metadata.name"] = nname;
        ns["spec"] = json::object{{"finalizers", json::array{"kubernetes"}}};
        ns["status"] = json::object{{"phase", "Active"}};
        if (field_errors errs = validate_namespace(ns); !errs.empty())
            return json_response(422, invalid_status("Namespace", nname, errs));
        // `md` may dangle once spec/status were added: look the labels up again.
        const json::object* labels = obj_at(ns.at("metadata").as_object(), "labels");
        if (field_errors errs = psa_namespace_errors(labels, nullptr, false); !errs.empty())
            return json_response(422, invalid_status("Namespace", nname, errs));
        std::optional<json::object> created;
        if (store_.get("namespaces", "", nname))
            return status_response(409, "AlreadyExists",
                                   "namespaces \"" + nname + "\" already exists",
                                   status_details(nname, "namespaces"));
        created = dry_run(req) ? would_be_created(std::move(ns), "")
                               : store_.create("namespaces", "", ns);
        if (!created)
            return status_response(409, "AlreadyExists",
                                   "namespaces \"" + nname + "\" already exists",
                                   status_details(nname, "namespaces"));
        api_response r = json_response(201, *created);
        r.headers = std::move(warnings);
        return r;
    }
    auto n = store_.get("namespaces", "", name);
    if (!n)
        return not_found("namespaces", name);
    if (m == "GET") {
        if (wants_table(req.header("accept")))
            return json_response(200, make_table("namespaces", {*n}, store_.current_rv()));
        return json_response(200, *n);
    }
    if (m == "PATCH") {
        std::string type = req.header("content-type");
        if (type.find("application/merge-patch+json") == std::string::npos &&
            type.find("application/strategic-merge-patch+json") == std::string::npos)
            return status_response(415, "UnsupportedMediaType",
                                   "the body of the request was in an unknown format - accepted "
                                   "media types include: application/merge-patch+json, "
                                   "application/strategic-merge-patch+json");
        boost::system::error_code ec;
        json::value patch = json::parse(req.body, ec);
        if (ec || !patch.is_object())
            return bad_request("error decoding patch: invalid JSON");
        json::value merged = *n;
        merge_patch(merged, patch);
        json::object& obj = merged.as_object();
        if (!obj["metadata"].is_object() || str_at(obj["metadata"].as_object(), "name") != name)
            return json_response(422, invalid_status("Namespace", name,
                                                     {invalid_error("metadata.name", go_quote(name),
                                                                    "field is immutable")}));
        api_response::header_list warnings;
        if (auto bad = unknown_fields(req, "Namespace", obj, warnings))
            return *bad;
        if (field_errors errs = validate_namespace(obj); !errs.empty())
            return json_response(422, invalid_status("Namespace", name, errs));
        const json::object* old_md = obj_at(*n, "metadata");
        const json::object* old_labels = old_md ? obj_at(*old_md, "labels") : nullptr;
        const json::object* new_labels = obj_at(obj["metadata"].as_object(), "labels");
        if (field_errors errs = psa_namespace_errors(new_labels, old_labels, true); !errs.empty())
            return json_response(422, invalid_status("Namespace", name, errs));
        {
            // A stricter enforce level: warnings name the existing pods that violate it.
            std::uint64_t rv = 0;
            for (const auto& w :
                 psa_namespace_update_warnings(name, new_labels, old_labels,
                                               store_.list("pods", name, rv)))
                warnings.emplace_back("Warning", "299 - " + go_quote(w));
        }
        if (dry_run(req)) {
            api_response r = json_response(200, obj);
            r.headers = std::move(warnings);
            return r;
        }
        const json::object md = obj["metadata"].as_object();
        auto updated = store_.update("namespaces", "", name, "", [&](json::object& o) {
            auto& omd = o["metadata"].as_object();
            for (const char* k : {"labels", "annotations"}) {
                if (md.contains(k))
                    omd[k] = md.at(k);
                else
                    omd.erase(k);
            }
        });
        if (!updated)
            return not_found("namespaces", name);
        api_response r = json_response(200, *updated);
        r.headers = std::move(warnings);
        return r;
    }
    if (m == "DELETE") {
        if (name == "default" || name == "kube-system" || name == "kube-public")
            return status_response(403, "Forbidden",
                                   "namespaces \"" + name +
                                       "\" is forbidden: this namespace may not be deleted",
                                   status_details(name, "namespaces"));
        if (dry_run(req))
            return json_response(200, *n);
        auto marked = store_.update("namespaces", "", name, "", [](json::object& o) {
            auto& md = o["metadata"].as_object();
            if (!md.contains("deletionTimestamp"))
                md["deletionTimestamp"] = now_rfc3339();
            o["status"] = json::object{{"phase", "Terminating"}};
        });
        if (!marked)
            return not_found("namespaces", name);
        {
            std::lock_guard lk(ns_mu_);
            terminating_.insert(name);
            if (!ns_reaper_.joinable())
                ns_reaper_ = std::jthread([this](std::stop_token st) { reap_namespaces(st); });
        }
        empty_namespace(name);
        return json_response(200, *marked);
    }
    return method_not_allowed();
}

void api_server::empty_namespace(const std::string& ns) {
    std::uint64_t rv = 0;
    // Pods get their normal graceful deletion; the kubelet removes them once stopped.
    for (const auto& p : store_.list("pods", ns, rv))
        (void)kubelet_.delete_pod(ns, str_at(p.at("metadata").as_object(), "name"), std::nullopt);
    for (const char* res : {"jobs", "secrets", "persistentvolumeclaims", "events"})
        for (const auto& o : store_.list(res, ns, rv))
            (void)store_.remove(res, ns, str_at(o.at("metadata").as_object(), "name"));
}

void api_server::reap_namespaces(std::stop_token st) {
    // The namespace controller: a Terminating namespace goes once nothing is left in it.
    while (!st.stop_requested() && !stopping_) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::set<std::string> names;
        {
            std::lock_guard lk(ns_mu_);
            names = terminating_;
        }
        for (const auto& ns : names) {
            std::uint64_t rv = 0;
            bool empty = true;
            for (const char* res : {"pods", "jobs", "secrets", "persistentvolumeclaims", "events"})
                empty = empty && store_.list(res, ns, rv).empty();
            if (!empty) {
                empty_namespace(ns); // e.g. events recorded while its pods stopped
                continue;
            }
            (void)store_.remove("namespaces", "", ns);
            std::lock_guard lk(ns_mu_);
            terminating_.erase(ns);
        }
    }
}

std::variant<api_response, exec_plan> api_server::prepare_exec(const api_request& req) {
    auto seg = split_path(req.path);
    const std::string& ns = seg[3];
    const std::string& name = seg[5];
    std::string upgrade = req.header("upgrade");
    std::string lower;
    for (char c : upgrade)
        lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (lower.find("spdy") != std::string::npos)
        return bad_request("Upgrade request required: kubesim serves pods/exec over WebSocket only (SPDY is not supported)");
    auto pod = store_.get("pods", ns, name);
    if (!pod)
        return not_found("pods", name);
    if (!req.websocket_upgrade || req.method != "GET")
        return bad_request("Upgrade request required");
    auto resolved = resolve_container(*pod, req.param("container").value_or(""));
    if (auto* err = std::get_if<api_response>(&resolved))
        return *err;
    exec_plan plan;
    plan.pod_name = name;
    plan.container = std::get<std::string>(resolved);
    plan.pod_uid = str_at(pod->at("metadata").as_object(), "uid");
    if (str_at(pod->at("spec").as_object(), "nodeName").empty())
        return bad_request("pod " + name + " does not have a host assigned");
    plan.node = str_at(pod->at("spec").as_object(), "nodeName");
    plan.command = req.params("command");
    plan.in = req.flag("stdin");
    plan.out = req.flag("stdout");
    plan.err = req.flag("stderr");
    plan.tty = req.flag("tty");
    if (plan.tty)
        plan.err = false; // merged into the terminal stream
    if (!plan.in && !plan.out && !plan.err)
        return bad_request("you must specify at least 1 of stdin, stdout, stderr");
    if (plan.command.empty())
        return bad_request("you must specify at least one command for the container");
    if (auto down = kubelet_unreachable(*pod, "")) // the API server dials the kubelet here
        return *down;
    plan.target = kubelet_.container(plan.pod_uid, plan.container);
    if (!plan.target || plan.target->st != container_view::state::running) {
        // The kubelet finds exec targets among running containers only (GetExec: "container
        // not found (%q)", answered as a plain-text 500 by streaming.WriteError). A v4 client's
        // upgrade is proxied to the kubelet, so it gets that 500 before any upgrade; a v5 client
        // talks to the API server's stream translator, which upgrades first and then sends the
        // SPDY dial's error as an InternalError status.
        const std::string not_found = "container not found (\"" + plan.container + "\")";
        if (!offers_protocol(req.header("sec-websocket-protocol"), "v5.channel.k8s.io")) {
            api_response r;
            r.status = 500;
            r.content_type = "text/plain; charset=utf-8";
            r.body = not_found;
            return r;
        }
        plan.not_running_message = "unable to upgrade connection: " + not_found;
        plan.target.reset();
    }
    {
        std::lock_guard lk(faults_mu_);
        plan.bandwidth_bytes_per_s = faults_.bandwidth_bytes_per_s;
        plan.latency = faults_.latency;
        if (faults_.exec_count > 0) {
            --faults_.exec_count;
            plan.no_status = faults_.no_status;
            plan.legacy_close = faults_.legacy_close;
            plan.reset_on_close = faults_.reset_on_close;
            plan.drop_after_bytes = faults_.drop_after_bytes;
        }
    }
    return plan;
}

} // namespace podpipe::kubesim
