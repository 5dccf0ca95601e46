#include "kube/json.hpp"

#include "kube/base64.hpp"
#include "engine/common/json_writer.hpp"

#include <limits>
#include <optional>

#include <simdjson.h>

namespace podpipe::kube {

namespace {

namespace dom = simdjson::dom;

// Collects the first schema error; later helpers become no-ops once it is set.
struct parse_ctx {
    std::string error;

    bool ok() const { return error.empty(); }

    void wrong_type(std::string_view where, std::string_view key, const char* want) {
        if (!error.empty())
            return;
        error.assign(where);
        if (!where.empty())
            error += '.';
        error += sanitize_for_message(key, 64);
        error += ": expected ";
        error += want;
    }
};

// The member `key` of `o` if present and not null.
std::optional<dom::element> member(const dom::object& o, std::string_view key) {
    dom::element e;
    if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null())
        return std::nullopt;
    return e;
}

void get_str(parse_ctx& c, const dom::object& o, std::string_view where, std::string_view key,
             std::string& out) {
    auto e = member(o, key);
    if (!e)
        return;
    std::string_view sv;
    if (e->get_string().get(sv) != simdjson::SUCCESS)
        return c.wrong_type(where, key, "string");
    out.assign(sv);
}

template <class Int>
void get_int(parse_ctx& c, const dom::object& o, std::string_view where, std::string_view key,
             Int& out) {
    auto e = member(o, key);
    if (!e)
        return;
    std::int64_t v = 0;
    if (e->get_int64().get(v) != simdjson::SUCCESS || v < std::numeric_limits<Int>::min() ||
        v > std::numeric_limits<Int>::max())
        return c.wrong_type(where, key, "integer");
    out = static_cast<Int>(v);
}

void get_opt_int(parse_ctx& c, const dom::object& o, std::string_view where, std::string_view key,
                 std::optional<std::int64_t>& out) {
    if (!member(o, key))
        return;
    std::int64_t v = 0;
    get_int(c, o, where, key, v);
    if (c.ok())
        out = v;
}

void get_bool(parse_ctx& c, const dom::object& o, std::string_view where, std::string_view key,
              bool& out) {
    auto e = member(o, key);
    if (!e)
        return;
    if (e->get_bool().get(out) != simdjson::SUCCESS)
        c.wrong_type(where, key, "boolean");
}

std::optional<dom::object> get_obj(parse_ctx& c, const dom::object& o, std::string_view where,
                                   std::string_view key) {
    auto e = member(o, key);
    if (!e)
        return std::nullopt;
    dom::object obj;
    if (e->get_object().get(obj) != simdjson::SUCCESS) {
        c.wrong_type(where, key, "object");
        return std::nullopt;
    }
    return obj;
}

std::optional<dom::array> get_arr(parse_ctx& c, const dom::object& o, std::string_view where,
                                  std::string_view key) {
    auto e = member(o, key);
    if (!e)
        return std::nullopt;
    dom::array arr;
    if (e->get_array().get(arr) != simdjson::SUCCESS) {
        c.wrong_type(where, key, "array");
        return std::nullopt;
    }
    return arr;
}

void get_string_map(parse_ctx& c, const dom::object& o, std::string_view where,
                    std::string_view key, string_map& out) {
    auto obj = get_obj(c, o, where, key);
    if (!obj)
        return;
    for (auto field : *obj) {
        std::string_view v;
        if (field.value.is_null())
            continue;
        if (field.value.get_string().get(v) != simdjson::SUCCESS)
            return c.wrong_type(std::string(where) + "." + std::string(key), field.key, "string");
        out.insert_or_assign(std::string(field.key), std::string(v));
    }
}

void get_string_array(parse_ctx& c, const dom::object& o, std::string_view where,
                      std::string_view key, std::vector<std::string>& out) {
    auto arr = get_arr(c, o, where, key);
    if (!arr)
        return;
    for (dom::element e : *arr) {
        std::string_view v;
        if (e.get_string().get(v) != simdjson::SUCCESS)
            return c.wrong_type(where, key, "array of strings");
        out.emplace_back(v);
    }
}

// Calls fn(ctx, object) for each element of the array `key`; elements must be objects.
template <class Fn>
void for_each_obj(parse_ctx& c, const dom::object& o, std::string_view where, std::string_view key,
                  Fn&& fn) {
    auto arr = get_arr(c, o, where, key);
    if (!arr)
        return;
    for (dom::element e : *arr) {
        if (!c.ok())
            return;
        dom::object item;
        if (e.get_object().get(item) != simdjson::SUCCESS)
            return c.wrong_type(where, key, "array of objects");
        fn(item);
    }
}

void read_metadata(parse_ctx& c, const dom::object& root, object_meta& m) {
    auto md = get_obj(c, root, "", "metadata");
    if (!md)
        return;
    get_str(c, *md, "metadata", "name", m.name);
    get_str(c, *md, "metadata", "generateName", m.generate_name);
    get_str(c, *md, "metadata", "namespace", m.ns);
    get_str(c, *md, "metadata", "uid", m.uid);
    get_str(c, *md, "metadata", "resourceVersion", m.resource_version);
    get_str(c, *md, "metadata", "deletionTimestamp", m.deletion_timestamp);
    get_string_map(c, *md, "metadata", "labels", m.labels);
    get_string_map(c, *md, "metadata", "annotations", m.annotations);
}

void read_container_status(parse_ctx& c, const dom::object& o, container_status& s) {
    constexpr std::string_view w = "containerStatuses[]";
    get_str(c, o, w, "name", s.name);
    get_bool(c, o, w, "ready", s.ready);
    get_int(c, o, w, "restartCount", s.restart_count);
    auto state = get_obj(c, o, w, "state");
    if (!state)
        return;
    if (auto wt = get_obj(c, *state, "state", "waiting")) {
        container_state_waiting v;
        get_str(c, *wt, "state.waiting", "reason", v.reason);
        get_str(c, *wt, "state.waiting", "message", v.message);
        s.state.waiting = std::move(v);
    }
    if (auto r = get_obj(c, *state, "state", "running")) {
        container_state_running v;
        get_str(c, *r, "state.running", "startedAt", v.started_at);
        s.state.running = std::move(v);
    }
    if (auto t = get_obj(c, *state, "state", "terminated")) {
        container_state_terminated v;
        get_int(c, *t, "state.terminated", "exitCode", v.exit_code);
        get_int(c, *t, "state.terminated", "signal", v.signal);
        get_str(c, *t, "state.terminated", "reason", v.reason);
        get_str(c, *t, "state.terminated", "message", v.message);
        s.state.terminated = std::move(v);
    }
}

void read_containers(parse_ctx& c, const dom::object& spec, std::string_view key,
                     std::vector<container>& out) {
    for_each_obj(c, spec, "spec", key, [&](const dom::object& o) {
        container ct;
        get_str(c, o, key, "name", ct.name);
        get_str(c, o, key, "image", ct.image);
        // Ports: the prepare_job response reports the host ports the API server accepted.
        for_each_obj(c, o, key, "ports", [&](const dom::object& po) {
            container_port p;
            get_int(c, po, "ports[]", "containerPort", p.container_port);
            if (member(po, "hostPort")) {
                int hp = 0;
                get_int(c, po, "ports[]", "hostPort", hp);
                p.host_port = hp;
            }
            get_str(c, po, "ports[]", "protocol", p.protocol);
            ct.ports.push_back(std::move(p));
        });
        out.push_back(std::move(ct));
    });
}

void read_pod(parse_ctx& c, const dom::object& root, pod& p) {
    read_metadata(c, root, p.metadata);
    if (auto spec = get_obj(c, root, "", "spec")) {
        get_str(c, *spec, "spec", "nodeName", p.spec.node_name);
        get_str(c, *spec, "spec", "restartPolicy", p.spec.restart_policy);
        get_str(c, *spec, "spec", "serviceAccountName", p.spec.service_account_name);
        read_containers(c, *spec, "initContainers", p.spec.init_containers);
        read_containers(c, *spec, "containers", p.spec.containers);
    }
    if (auto st = get_obj(c, root, "", "status")) {
        pod_status& s = p.status;
        get_str(c, *st, "status", "phase", s.phase);
        get_str(c, *st, "status", "reason", s.reason);
        get_str(c, *st, "status", "message", s.message);
        get_str(c, *st, "status", "hostIP", s.host_ip);
        get_str(c, *st, "status", "podIP", s.pod_ip);
        for_each_obj(c, *st, "status", "conditions", [&](const dom::object& o) {
            pod_condition pc;
            get_str(c, o, "conditions[]", "type", pc.type);
            get_str(c, o, "conditions[]", "status", pc.status);
            get_str(c, o, "conditions[]", "reason", pc.reason);
            get_str(c, o, "conditions[]", "message", pc.message);
            s.conditions.push_back(std::move(pc));
        });
        for_each_obj(c, *st, "status", "initContainerStatuses", [&](const dom::object& o) {
            container_status cs;
            read_container_status(c, o, cs);
            s.init_container_statuses.push_back(std::move(cs));
        });
        for_each_obj(c, *st, "status", "containerStatuses", [&](const dom::object& o) {
            container_status cs;
            read_container_status(c, o, cs);
            s.container_statuses.push_back(std::move(cs));
        });
    }
}

void read_status(parse_ctx& c, const dom::object& root, api_status& s) {
    get_str(c, root, "", "status", s.status);
    get_str(c, root, "", "message", s.message);
    get_str(c, root, "", "reason", s.reason);
    get_int(c, root, "", "code", s.code);
    if (auto d = get_obj(c, root, "", "details")) {
        get_str(c, *d, "details", "name", s.details_name);
        get_str(c, *d, "details", "kind", s.details_kind);
        get_opt_int(c, *d, "details", "retryAfterSeconds", s.retry_after_seconds);
        for_each_obj(c, *d, "details", "causes", [&](const dom::object& o) {
            status_cause cause;
            get_str(c, o, "details.causes[]", "reason", cause.reason);
            get_str(c, o, "details.causes[]", "message", cause.message);
            get_str(c, o, "details.causes[]", "field", cause.field);
            s.causes.push_back(std::move(cause));
        });
    }
}

void read_secret(parse_ctx& c, const dom::object& root, secret& s) {
    read_metadata(c, root, s.metadata);
    get_str(c, root, "", "type", s.type);
    get_bool(c, root, "", "immutable", s.immutable);
}

void read_node(parse_ctx& c, const dom::object& root, node& n) {
    object_meta m;
    read_metadata(c, root, m);
    n.name = std::move(m.name);
    n.labels = std::move(m.labels);
    if (auto spec = get_obj(c, root, "", "spec"))
        get_bool(c, *spec, "spec", "unschedulable", n.unschedulable);
}

void read_job(parse_ctx& c, const dom::object& root, job& j) {
    read_metadata(c, root, j.metadata);
    if (auto spec = get_obj(c, root, "", "spec")) {
        auto opt_int = [&](std::string_view key, std::optional<int>& out) {
            std::optional<std::int64_t> v;
            get_opt_int(c, *spec, "spec", key, v);
            if (v && *v >= 0 && *v <= std::numeric_limits<int>::max())
                out = static_cast<int>(*v);
            else if (v)
                c.wrong_type("spec", key, "integer");
        };
        opt_int("backoffLimit", j.spec.backoff_limit);
        opt_int("completions", j.spec.completions);
        opt_int("parallelism", j.spec.parallelism);
        opt_int("ttlSecondsAfterFinished", j.spec.ttl_seconds_after_finished);
        get_opt_int(c, *spec, "spec", "activeDeadlineSeconds", j.spec.active_deadline_seconds);
        if (auto tmpl = get_obj(c, *spec, "spec", "template")) {
            pod p;
            read_pod(c, *tmpl, p);
            j.spec.pod.metadata = std::move(p.metadata);
            j.spec.pod.spec = std::move(p.spec);
        }
    }
    if (auto st = get_obj(c, root, "", "status")) {
        get_int(c, *st, "status", "active", j.status.active);
        get_int(c, *st, "status", "succeeded", j.status.succeeded);
        get_int(c, *st, "status", "failed", j.status.failed);
        get_str(c, *st, "status", "startTime", j.status.start_time);
        get_str(c, *st, "status", "completionTime", j.status.completion_time);
        for_each_obj(c, *st, "status", "conditions", [&](const dom::object& o) {
            job_condition jc;
            get_str(c, o, "conditions[]", "type", jc.type);
            get_str(c, o, "conditions[]", "status", jc.status);
            get_str(c, o, "conditions[]", "reason", jc.reason);
            get_str(c, o, "conditions[]", "message", jc.message);
            j.status.conditions.push_back(std::move(jc));
        });
    }
}

// Parses `json` as one object and fills a T through fill(ctx, root, out).
template <class T, class Fill>
result<T, api_error> parse_object(std::string_view json, const char* what, Fill&& fill) {
    const std::string call = std::string("parse ") + what;
    if (json.size() > max_body_bytes)
        return fail(api_error(errc::bad_response, call + ": body of " +
                                                       std::to_string(json.size()) +
                                                       " bytes exceeds the limit"));
    dom::parser parser(max_body_bytes);
    if (parser.allocate(json.size() < 64 ? 64 : json.size(), max_depth) != simdjson::SUCCESS)
        return fail(api_error(errc::bad_response, call + ": cannot allocate the parser"));
    dom::element root;
    if (auto err = parser.parse(json.data(), json.size()).get(root); err != simdjson::SUCCESS)
        return fail(api_error(errc::bad_response,
                               call + ": invalid JSON (" + simdjson::error_message(err) + ")"));
    dom::object obj;
    if (root.get_object().get(obj) != simdjson::SUCCESS)
        return fail(api_error(errc::bad_response, call + ": not a JSON object"));
    parse_ctx c;
    T out{};
    fill(c, obj, out);
    if (!c.ok())
        return fail(api_error(errc::bad_response, call + ": " + c.error));
    return out;
}

} // namespace

result<pod, api_error> parse_pod(std::string_view json) {
    return parse_object<pod>(json, "pod", read_pod);
}

result<pod_list, api_error> parse_pod_list(std::string_view json) {
    return parse_object<pod_list>(
        json, "pod list", [](parse_ctx& c, const dom::object& root, pod_list& l) {
            if (auto md = get_obj(c, root, "", "metadata")) {
                get_str(c, *md, "metadata", "resourceVersion", l.resource_version);
                get_str(c, *md, "metadata", "continue", l.continue_token);
            }
            for_each_obj(c, root, "", "items", [&](const dom::object& o) {
                pod p;
                read_pod(c, o, p);
                l.items.push_back(std::move(p));
            });
        });
}

result<node, api_error> parse_node(std::string_view json) {
    return parse_object<node>(json, "node", read_node);
}

result<std::vector<node>, api_error> parse_node_list(std::string_view json) {
    return parse_object<std::vector<node>>(
        json, "node list", [](parse_ctx& c, const dom::object& root, std::vector<node>& l) {
            for_each_obj(c, root, "", "items", [&](const dom::object& o) {
                node n;
                read_node(c, o, n);
                l.push_back(std::move(n));
            });
        });
}

result<job, api_error> parse_job(std::string_view json) {
    return parse_object<job>(json, "job", read_job);
}

result<job_list, api_error> parse_job_list(std::string_view json) {
    return parse_object<job_list>(
        json, "job list", [](parse_ctx& c, const dom::object& root, job_list& l) {
            if (auto md = get_obj(c, root, "", "metadata")) {
                get_str(c, *md, "metadata", "resourceVersion", l.resource_version);
                get_str(c, *md, "metadata", "continue", l.continue_token);
            }
            for_each_obj(c, root, "", "items", [&](const dom::object& o) {
                job j;
                read_job(c, o, j);
                l.items.push_back(std::move(j));
            });
        });
}

result<watch_event, api_error> parse_watch_event(std::string_view json) {
    return parse_object<watch_event>(json, "watch event",
                                     [](parse_ctx& c, const dom::object& root, watch_event& ev) {
                                         std::string type;
                                         get_str(c, root, "", "type", type);
                                         if (!c.ok())
                                             return;
                                         if (type == "ADDED")
                                             ev.type = watch_event::kind::added;
                                         else if (type == "MODIFIED")
                                             ev.type = watch_event::kind::modified;
                                         else if (type == "DELETED")
                                             ev.type = watch_event::kind::deleted;
                                         else if (type == "BOOKMARK")
                                             ev.type = watch_event::kind::bookmark;
                                         else if (type == "ERROR")
                                             ev.type = watch_event::kind::error;
                                         else {
                                             c.error = "type: unknown watch event type \"" +
                                                       sanitize_for_message(type, 32) + "\"";
                                             return;
                                         }
                                         auto obj = get_obj(c, root, "", "object");
                                         if (!c.ok())
                                             return;
                                         if (!obj) {
                                             c.error = "object: missing";
                                             return;
                                         }
                                         if (ev.type == watch_event::kind::error) {
                                             api_status s;
                                             read_status(c, *obj, s);
                                             ev.error = std::move(s);
                                         } else {
                                             read_pod(c, *obj, ev.object);
                                         }
                                     });
}

result<api_status, api_error> parse_status(std::string_view json) {
    return parse_object<api_status>(json, "status", read_status);
}

result<access_review_result, api_error> parse_access_review(std::string_view json) {
    return parse_object<access_review_result>(
        json, "access review", [](parse_ctx& c, const dom::object& root, access_review_result& r) {
            auto st = get_obj(c, root, "", "status");
            if (!c.ok())
                return;
            if (!st) {
                c.error = "status: missing";
                return;
            }
            if (!member(*st, "allowed")) {
                c.error = "status.allowed: missing";
                return;
            }
            get_bool(c, *st, "status", "allowed", r.allowed);
            get_bool(c, *st, "status", "denied", r.denied);
            get_str(c, *st, "status", "reason", r.reason);
            get_str(c, *st, "status", "evaluationError", r.evaluation_error);
        });
}

result<secret, api_error> parse_secret(std::string_view json) {
    return parse_object<secret>(json, "secret", read_secret);
}

result<secret_list, api_error> parse_secret_list(std::string_view json) {
    return parse_object<secret_list>(
        json, "secret list", [](parse_ctx& c, const dom::object& root, secret_list& l) {
            if (auto md = get_obj(c, root, "", "metadata"))
                get_str(c, *md, "metadata", "continue", l.continue_token);
            for_each_obj(c, root, "", "items", [&](const dom::object& o) {
                secret s;
                read_secret(c, o, s);
                l.items.push_back(std::move(s));
            });
        });
}

result<pvc, api_error> parse_pvc(std::string_view json) {
    return parse_object<pvc>(
        json, "persistent volume claim", [](parse_ctx& c, const dom::object& root, pvc& v) {
            object_meta m;
            read_metadata(c, root, m);
            v.name = std::move(m.name);
            v.labels = std::move(m.labels);
            if (auto spec = get_obj(c, root, "", "spec")) {
                get_string_array(c, *spec, "spec", "accessModes", v.access_modes);
                get_str(c, *spec, "spec", "storageClassName", v.storage_class_name);
                get_str(c, *spec, "spec", "volumeName", v.volume_name);
                if (auto res = get_obj(c, *spec, "spec", "resources"))
                    if (auto req = get_obj(c, *res, "spec.resources", "requests"))
                        get_str(c, *req, "spec.resources.requests", "storage", v.storage_request);
            }
            if (auto st = get_obj(c, root, "", "status"))
                get_str(c, *st, "status", "phase", v.phase);
        });
}

result<exec_credential, api_error> parse_exec_credential(std::string_view json) {
    return parse_object<exec_credential>(
        json, "ExecCredential", [](parse_ctx& c, const dom::object& root, exec_credential& e) {
            get_str(c, root, "", "apiVersion", e.api_version);
            get_str(c, root, "", "kind", e.kind);
            if (auto st = get_obj(c, root, "", "status")) {
                get_str(c, *st, "status", "token", e.token);
                get_str(c, *st, "status", "clientCertificateData", e.client_certificate_data);
                get_str(c, *st, "status", "clientKeyData", e.client_key_data);
                get_str(c, *st, "status", "expirationTimestamp", e.expiration_timestamp);
            }
        });
}

// ---- serialization -----------------------------------------------------------------------

namespace {

void write_string_map(json_writer& w, std::string_view key, const string_map& m) {
    if (m.empty())
        return;
    w.key(key);
    w.begin_object();
    for (const auto& [k, v] : m)
        w.field(k, v);
    w.end_object();
}

void write_strings(json_writer& w, std::string_view key, const std::vector<std::string>& v) {
    if (v.empty())
        return;
    w.key(key);
    w.begin_array();
    for (const auto& s : v)
        w.value(s);
    w.end_array();
}

void write_nonempty(json_writer& w, std::string_view key, const std::string& v) {
    if (!v.empty())
        w.field(key, v);
}

template <class T>
void write_opt(json_writer& w, std::string_view key, const std::optional<T>& v) {
    if (v)
        w.field(key, *v);
}

void write_seccomp(json_writer& w, const std::optional<seccomp_profile>& p) {
    if (!p)
        return;
    w.key("seccompProfile");
    w.begin_object();
    write_nonempty(w, "type", p->type);
    write_nonempty(w, "localhostProfile", p->localhost_profile);
    w.end_object();
}

void write_metadata(json_writer& w, const object_meta& m) {
    w.key("metadata");
    w.begin_object();
    write_nonempty(w, "name", m.name);
    write_nonempty(w, "generateName", m.generate_name);
    write_nonempty(w, "namespace", m.ns);
    write_string_map(w, "labels", m.labels);
    write_string_map(w, "annotations", m.annotations);
    w.end_object();
}

void write_container(json_writer& w, const container& ct) {
    w.begin_object();
    w.field("name", ct.name);
    write_nonempty(w, "image", ct.image);
    write_strings(w, "command", ct.command);
    write_strings(w, "args", ct.args);
    write_nonempty(w, "workingDir", ct.working_dir);
    if (!ct.env.empty()) {
        w.key("env");
        w.begin_array();
        for (const auto& e : ct.env) {
            w.begin_object();
            w.field("name", e.name);
            if (e.secret_ref) {
                w.key("valueFrom");
                w.begin_object();
                w.key("secretKeyRef");
                w.begin_object();
                w.field("name", e.secret_ref->name);
                w.field("key", e.secret_ref->key);
                write_opt(w, "optional", e.secret_ref->optional);
                w.end_object();
                w.end_object();
            } else {
                w.field("value", e.value);
            }
            w.end_object();
        }
        w.end_array();
    }
    if (!ct.env_from.empty()) {
        w.key("envFrom");
        w.begin_array();
        for (const auto& e : ct.env_from) {
            w.begin_object();
            w.key("secretRef");
            w.begin_object();
            w.field("name", e.secret_name);
            w.end_object();
            w.end_object();
        }
        w.end_array();
    }
    if (!ct.ports.empty()) {
        w.key("ports");
        w.begin_array();
        for (const auto& p : ct.ports) {
            w.begin_object();
            w.field("containerPort", p.container_port);
            write_opt(w, "hostPort", p.host_port);
            write_nonempty(w, "protocol", p.protocol);
            w.end_object();
        }
        w.end_array();
    }
    if (!ct.volume_mounts.empty()) {
        w.key("volumeMounts");
        w.begin_array();
        for (const auto& m : ct.volume_mounts) {
            w.begin_object();
            w.field("name", m.name);
            w.field("mountPath", m.mount_path);
            write_nonempty(w, "subPath", m.sub_path);
            if (m.read_only)
                w.field("readOnly", true);
            w.end_object();
        }
        w.end_array();
    }
    if (!ct.resources.requests.empty() || !ct.resources.limits.empty()) {
        w.key("resources");
        w.begin_object();
        write_string_map(w, "requests", ct.resources.requests);
        write_string_map(w, "limits", ct.resources.limits);
        w.end_object();
    }
    write_nonempty(w, "imagePullPolicy", ct.image_pull_policy);
    if (ct.security) {
        const security_context& s = *ct.security;
        w.key("securityContext");
        w.begin_object();
        write_opt(w, "privileged", s.privileged);
        write_opt(w, "runAsUser", s.run_as_user);
        write_opt(w, "runAsGroup", s.run_as_group);
        write_opt(w, "runAsNonRoot", s.run_as_non_root);
        write_opt(w, "allowPrivilegeEscalation", s.allow_privilege_escalation);
        write_opt(w, "readOnlyRootFilesystem", s.read_only_root_filesystem);
        if (s.capabilities) {
            w.key("capabilities");
            w.begin_object();
            write_strings(w, "add", s.capabilities->add);
            write_strings(w, "drop", s.capabilities->drop);
            w.end_object();
        }
        write_seccomp(w, s.seccomp);
        w.end_object();
    }
    w.end_object();
}

void write_containers(json_writer& w, std::string_view key, const std::vector<container>& v) {
    if (v.empty())
        return;
    w.key(key);
    w.begin_array();
    for (const auto& ct : v)
        write_container(w, ct);
    w.end_array();
}

void write_volume(json_writer& w, const volume& v) {
    w.begin_object();
    w.field("name", v.name);
    if (const auto* e = std::get_if<empty_dir_source>(&v.source)) {
        w.key("emptyDir");
        w.begin_object();
        write_nonempty(w, "medium", e->medium);
        write_nonempty(w, "sizeLimit", e->size_limit);
        w.end_object();
    } else if (const auto* p = std::get_if<pvc_source>(&v.source)) {
        w.key("persistentVolumeClaim");
        w.begin_object();
        w.field("claimName", p->claim_name);
        if (p->read_only)
            w.field("readOnly", true);
        w.end_object();
    } else if (const auto* s = std::get_if<secret_volume_source>(&v.source)) {
        w.key("secret");
        w.begin_object();
        w.field("secretName", s->secret_name);
        write_opt(w, "defaultMode", s->default_mode);
        w.end_object();
    }
    w.end_object();
}

void write_requirements(json_writer& w, std::string_view key,
                        const std::vector<node_selector_requirement>& reqs) {
    if (reqs.empty())
        return;
    w.key(key);
    w.begin_array();
    for (const auto& r : reqs) {
        w.begin_object();
        w.field("key", r.key);
        w.field("operator", r.op);
        write_strings(w, "values", r.values);
        w.end_object();
    }
    w.end_array();
}

void write_term(json_writer& w, const node_selector_term& t) {
    w.begin_object();
    write_requirements(w, "matchExpressions", t.match_expressions);
    write_requirements(w, "matchFields", t.match_fields);
    w.end_object();
}

void write_affinity(json_writer& w, const node_affinity& a) {
    w.key("affinity");
    w.begin_object();
    w.key("nodeAffinity");
    w.begin_object();
    if (!a.required.empty()) {
        w.key("requiredDuringSchedulingIgnoredDuringExecution");
        w.begin_object();
        w.key("nodeSelectorTerms");
        w.begin_array();
        for (const auto& t : a.required)
            write_term(w, t);
        w.end_array();
        w.end_object();
    }
    if (!a.preferred.empty()) {
        w.key("preferredDuringSchedulingIgnoredDuringExecution");
        w.begin_array();
        for (const auto& p : a.preferred) {
            w.begin_object();
            w.field("weight", p.weight);
            w.key("preference");
            write_term(w, p.preference);
            w.end_object();
        }
        w.end_array();
    }
    w.end_object();
    w.end_object();
}

void write_pod_spec(json_writer& w, const pod_spec& s) {
    w.key("spec");
    w.begin_object();
    write_nonempty(w, "restartPolicy", s.restart_policy);
    write_nonempty(w, "serviceAccountName", s.service_account_name);
    write_string_map(w, "nodeSelector", s.node_selector);
    if (s.security) {
        w.key("securityContext");
        w.begin_object();
        write_opt(w, "fsGroup", s.security->fs_group);
        write_opt(w, "runAsUser", s.security->run_as_user);
        write_opt(w, "runAsGroup", s.security->run_as_group);
        write_opt(w, "runAsNonRoot", s.security->run_as_non_root);
        write_seccomp(w, s.security->seccomp);
        w.end_object();
    }
    if (!s.image_pull_secrets.empty()) {
        w.key("imagePullSecrets");
        w.begin_array();
        for (const auto& name : s.image_pull_secrets) {
            w.begin_object();
            w.field("name", name);
            w.end_object();
        }
        w.end_array();
    }
    write_containers(w, "initContainers", s.init_containers);
    w.key("containers"); // required by the API even if empty: let the server say so
    w.begin_array();
    for (const auto& ct : s.containers)
        write_container(w, ct);
    w.end_array();
    if (!s.volumes.empty()) {
        w.key("volumes");
        w.begin_array();
        for (const auto& v : s.volumes)
            write_volume(w, v);
        w.end_array();
    }
    if (s.affinity && (!s.affinity->required.empty() || !s.affinity->preferred.empty()))
        write_affinity(w, *s.affinity);
    if (!s.tolerations.empty()) {
        w.key("tolerations");
        w.begin_array();
        for (const auto& t : s.tolerations) {
            w.begin_object();
            write_nonempty(w, "key", t.key);
            write_nonempty(w, "operator", t.op);
            write_nonempty(w, "value", t.value);
            write_nonempty(w, "effect", t.effect);
            write_opt(w, "tolerationSeconds", t.toleration_seconds);
            w.end_object();
        }
        w.end_array();
    }
    write_opt(w, "terminationGracePeriodSeconds", s.termination_grace_period_seconds);
    w.end_object();
}

} // namespace

std::string to_json(const pod& p) {
    json_writer w;
    w.begin_object();
    w.field("apiVersion", "v1");
    w.field("kind", "Pod");
    write_metadata(w, p.metadata);
    write_pod_spec(w, p.spec);
    w.end_object();
    return w.take();
}

std::string to_json(const pvc& claim) {
    json_writer w;
    w.begin_object();
    w.field("apiVersion", "v1");
    w.field("kind", "PersistentVolumeClaim");
    w.key("metadata");
    w.begin_object();
    write_nonempty(w, "name", claim.name);
    write_string_map(w, "labels", claim.labels);
    w.end_object();
    w.key("spec");
    w.begin_object();
    write_strings(w, "accessModes", claim.access_modes);
    write_nonempty(w, "storageClassName", claim.storage_class_name);
    if (!claim.storage_request.empty()) {
        w.key("resources");
        w.begin_object();
        w.key("requests");
        w.begin_object();
        w.field("storage", claim.storage_request);
        w.end_object();
        w.end_object();
    }
    w.end_object();
    w.end_object();
    return w.take();
}

std::string to_json(const job& j) {
    json_writer w;
    w.begin_object();
    w.field("apiVersion", "batch/v1");
    w.field("kind", "Job");
    write_metadata(w, j.metadata);
    w.key("spec");
    w.begin_object();
    write_opt(w, "backoffLimit", j.spec.backoff_limit);
    write_opt(w, "completions", j.spec.completions);
    write_opt(w, "parallelism", j.spec.parallelism);
    write_opt(w, "activeDeadlineSeconds", j.spec.active_deadline_seconds);
    write_opt(w, "ttlSecondsAfterFinished", j.spec.ttl_seconds_after_finished);
    w.key("template");
    w.begin_object();
    w.key("metadata");
    w.begin_object();
    write_string_map(w, "labels", j.spec.pod.metadata.labels);
    write_string_map(w, "annotations", j.spec.pod.metadata.annotations);
    w.end_object();
    write_pod_spec(w, j.spec.pod.spec);
    w.end_object();
    w.end_object();
    w.end_object();
    return w.take();
}

std::string to_json(const secret& s) {
    json_writer w;
    w.begin_object();
    w.field("apiVersion", "v1");
    w.field("kind", "Secret");
    write_metadata(w, s.metadata);
    write_nonempty(w, "type", s.type);
    if (s.immutable)
        w.field("immutable", true);
    w.key("data");
    w.begin_object();
    for (const auto& [k, v] : s.data)
        w.field(k, base64_encode(v));
    w.end_object();
    w.end_object();
    return w.take();
}

std::string to_json(const resource_attributes& a) {
    json_writer w;
    w.begin_object();
    w.field("apiVersion", "authorization.k8s.io/v1");
    w.field("kind", "SelfSubjectAccessReview");
    w.key("spec");
    w.begin_object();
    w.key("resourceAttributes");
    w.begin_object();
    w.field("namespace", a.ns);
    w.field("verb", a.verb);
    w.field("group", a.group);
    w.field("resource", a.resource);
    write_nonempty(w, "subresource", a.subresource);
    write_nonempty(w, "name", a.name);
    w.end_object();
    w.end_object();
    w.end_object();
    return w.take();
}

std::string to_json(const delete_options& o) {
    json_writer w;
    w.begin_object();
    write_opt(w, "gracePeriodSeconds", o.grace_period_seconds);
    write_nonempty(w, "propagationPolicy", o.propagation_policy);
    if (!o.precondition_uid.empty() || !o.precondition_resource_version.empty()) {
        w.key("preconditions");
        w.begin_object();
        write_nonempty(w, "uid", o.precondition_uid);
        write_nonempty(w, "resourceVersion", o.precondition_resource_version);
        w.end_object();
    }
    w.end_object();
    return w.take();
}

} // namespace podpipe::kube
