#include "tools/kubesim/update.hpp"

#include "tools/kubesim/api.hpp"
#include "tools/kubesim/patch.hpp"
#include "tools/kubesim/util.hpp"
#include "tools/kubesim/validation.hpp"

namespace podpipe::kubesim {

void default_pod_spec(json::object& spec) {
    for (const char* key : {"initContainers", "containers"}) {
        auto* list = spec.if_contains(key);
        if (!list || !list->is_array())
            continue;
        for (auto& c : list->as_array()) {
            if (!c.is_object())
                continue;
            auto& co = c.as_object();
            std::string image = str_at(co, "image");
            if (!co.contains("imagePullPolicy"))
                co["imagePullPolicy"] =
                    image.find(':') == std::string::npos || image.ends_with(":latest")
                        ? "Always"
                        : "IfNotPresent";
            if (!co.contains("terminationMessagePath"))
                co["terminationMessagePath"] = "/dev/termination-log";
            if (!co.contains("terminationMessagePolicy"))
                co["terminationMessagePolicy"] = "File";
            if (!co.contains("resources"))
                co["resources"] = json::object{};
            if (auto* ports = co.if_contains("ports"); ports && ports->is_array())
                for (auto& p : ports->as_array())
                    if (p.is_object() && !p.as_object().contains("protocol"))
                        p.as_object()["protocol"] = "TCP";
        }
    }
    if (!spec.contains("restartPolicy"))
        spec["restartPolicy"] = "Always";
    if (!spec.contains("terminationGracePeriodSeconds"))
        spec["terminationGracePeriodSeconds"] = 30;
    if (!spec.contains("dnsPolicy"))
        spec["dnsPolicy"] = "ClusterFirst";
    if (!spec.contains("schedulerName"))
        spec["schedulerName"] = "default-scheduler";
    if (!spec.contains("serviceAccountName"))
        spec["serviceAccountName"] = "default";
    if (!spec.contains("securityContext"))
        spec["securityContext"] = json::object{};
    if (!spec.contains("enableServiceLinks"))
        spec["enableServiceLinks"] = true;
}

std::variant<std::size_t, std::string> secret_data(json::object& sec) {
    if (!sec["data"].is_object())
        sec["data"] = json::object{};
    auto& data = sec["data"].as_object();
    std::size_t total = 0;
    for (auto& [k, v] : data) {
        bool ok = v.is_string();
        std::string decoded = ok ? b64decode(v.get_string(), &ok) : "";
        if (!ok)
            return "illegal base64 data in data." + std::string(k);
        total += decoded.size();
    }
    if (const json::object* sd = obj_at(sec, "stringData")) {
        for (const auto& [k, v] : *sd)
            if (v.is_string()) {
                data[k] = b64encode(v.get_string());
                total += v.get_string().size();
            }
        sec.erase("stringData");
    }
    return total;
}

namespace {

api_response failure_response(int code, std::string_view reason, std::string_view message,
                              json::value details = nullptr) {
    return json_response(code, status_failure(code, reason, message, std::move(details)));
}

api_response bad_request_response(std::string_view message) {
    return failure_response(400, "BadRequest", message);
}

/// A patch that produced an object the type cannot hold: NewInvalid with an empty kind and name
/// on the field `patch` (patch.go), e.g. ` "" is invalid: patch: Invalid value: "...": ...`.
api_response invalid_patch(const std::string& patched, const std::string& detail) {
    return json_response(
        422, invalid_status("", "", {invalid_error("patch", go_quote(patched), detail)}));
}

api_response conflict(const std::string& resource, const std::string& name) {
    return failure_response(409, "Conflict",
                            "Operation cannot be fulfilled on " + resource + " \"" + name +
                                "\": the object has been modified; please apply your changes to "
                                "the latest version and try again",
                            status_details(name, resource));
}

} // namespace

api_response api_server::update_object(const api_request& req, const std::string& resource,
                                       const std::string& ns, const std::string& name,
                                       const std::string& sub) {
    const bool is_patch = req.method == "PATCH";
    const std::string kind = resource == "pods" ? "Pod" : "Secret";
    std::optional<patch_type> type;
    json::object body;
    if (is_patch) {
        type = patch_type_of(req.header("content-type"));
        if (!type)
            return failure_response(415, "UnsupportedMediaType", unsupported_patch_message);
    } else {
        boost::system::error_code ec;
        json::value v = json::parse(req.body, ec);
        if (ec || !v.is_object())
            return bad_request_response("the body of the request could not be decoded as a " +
                                        kind);
        body = std::move(v.as_object());
        // update.go checks the name before it looks the object up.
        const json::object* md = obj_at(body, "metadata");
        std::string body_name = md ? str_at(*md, "name") : "";
        if (body_name != name)
            return bad_request_response("the name of the object (" + body_name +
                                        ") does not match the name on the URL (" + name + ")");
    }
    const bool dry = req.param("dryRun") == std::optional<std::string>("All");
    const std::string mode = req.param("fieldValidation").value_or("Warn");
    // GuaranteedUpdate: the update is recomputed from the newest object when another writer
    // (the kubelet's status updates) got in between, unless the client named a resourceVersion.
    for (int attempt = 0;; ++attempt) {
        auto current = store_.get(resource, ns, name);
        if (!current)
            return failure_response(404, "NotFound", resource + " \"" + name + "\" not found",
                                    status_details(name, resource));
        const json::object& cur_md = current->at("metadata").as_object();
        const std::string current_rv = str_at(cur_md, "resourceVersion");
        json::object next;
        std::string patched_text;
        if (is_patch) {
            auto patched = apply_patch(*type, *current, req.body);
            if (!patched) {
                const patch_error& e = patched.error();
                if (e.code == 422)
                    return failure_response(
                        422, "Invalid",
                        "the server rejected our request due to an error in our request",
                        json::object{{"causes", json::array{json::object{
                                                    {"reason", "UnexpectedServerResponse"},
                                                    {"message", e.message}}}}});
                if (e.code == 413)
                    return failure_response(413, "RequestEntityTooLarge",
                                            "Request entity too large: " + e.message);
                return bad_request_response(e.message);
            }
            patched_text = json::serialize(*patched);
            if (!patched->is_object())
                return invalid_patch(patched_text, "json: cannot unmarshal into Go value of type " +
                                                       std::string("core.") + kind);
            next = std::move(patched->as_object());
        } else {
            next = body;
        }
        api_response::header_list warnings;
        std::vector<std::string> unknown = prune_unknown_fields(kind, next);
        if (!unknown.empty() && mode == "Strict") {
            std::string msg = "strict decoding error: ";
            for (std::size_t i = 0; i < unknown.size(); ++i)
                msg += (i ? ", " : "") + std::string("unknown field ") + go_quote(unknown[i]);
            if (is_patch)
                return invalid_patch(patched_text, msg);
            return bad_request_response(kind + " in version \"v1\" cannot be handled as a " + kind +
                                        ": " + msg);
        }
        if (mode != "Ignore")
            for (const auto& f : unknown)
                warnings.emplace_back("Warning",
                                      "299 - " + go_quote("unknown field " + go_quote(f)));
        if (str_at(next, "kind", kind) != kind)
            return bad_request_response("the API version in the data (" +
                                        str_at(next, "apiVersion") +
                                        ") does not match the expected API version (v1)");
        next["kind"] = kind;
        next["apiVersion"] = "v1";
        if (!next["metadata"].is_object())
            next["metadata"] = json::object{};
        auto& md = next["metadata"].as_object();
        // checkName (rest.go) and EnsureObjectNamespaceMatchesRequestNamespace.
        if (str_at(md, "name") != name)
            return bad_request_response("the name of the object (" + str_at(md, "name") +
                                        ") does not match the name on the URL (" + name + ")");
        if (std::string body_ns = str_at(md, "namespace"); !body_ns.empty() && body_ns != ns)
            return bad_request_response("the namespace of the provided object does not match "
                                        "the namespace sent on the request");
        md["namespace"] = ns;
        // The resourceVersion precondition: a PUT naming one, or a patch that sets one.
        const std::string asked_rv = str_at(md, "resourceVersion");
        const bool conditional = !asked_rv.empty() && (!is_patch || asked_rv != current_rv);
        if (conditional && asked_rv != current_rv)
            return conflict(resource, name);
        md["resourceVersion"] = current_rv;
        // BeforeUpdate: system fields the client cannot change.
        if (str_at(md, "uid").empty())
            md["uid"] = cur_md.at("uid");
        if (const json::value* ct = cur_md.if_contains("creationTimestamp"))
            md["creationTimestamp"] = *ct;
        for (const char* k : {"deletionTimestamp", "deletionGracePeriodSeconds", "generation"}) {
            if (const json::value* v = cur_md.if_contains(k))
                md[k] = *v;
            else if (std::string_view(k) != "deletionTimestamp")
                md.erase(k);
        }
        field_errors errs;
        if (resource == "pods") {
            if (sub == "status") {
                // podStatusStrategy.PrepareForUpdate: only status (and metadata) change.
                next["spec"] = current->at("spec");
                if (const json::value* refs = cur_md.if_contains("ownerReferences"))
                    md["ownerReferences"] = *refs;
                else
                    md.erase("ownerReferences");
                if (!next["status"].is_object())
                    next["status"] = json::object{};
                json::object& st = next["status"].as_object();
                const json::object* old_st = obj_at(*current, "status");
                // The QoS class is set at creation; an old kubelet dropped it: backfilled.
                if (str_at(st, "qosClass").empty() && old_st && old_st->contains("qosClass"))
                    st["qosClass"] = old_st->at("qosClass");
                // v1 → internal conversion: podIP wins over a different podIPs[0] (older
                // kubelets) and fills an empty podIPs; back in v1, podIP is podIPs[0]. (hostIP
                // stays a field of its own: hostIPs[0] must equal it.)
                const std::string ip = str_at(st, "podIP");
                const json::array* ips = arr_at(st, "podIPs");
                const std::string first = ips && !ips->empty() && (*ips)[0].is_object()
                                              ? str_at((*ips)[0].as_object(), "ip")
                                              : "";
                if (!ip.empty() && first != ip)
                    st["podIPs"] = json::array{json::object{{"ip", ip}}};
                else if (ip.empty() && !first.empty())
                    st["podIP"] = first;
                errs = validate_pod_status_update(next, *current);
            } else {
                // podStrategy.PrepareForUpdate: status is not changed through the pod.
                if (const json::value* st = current->if_contains("status"))
                    next["status"] = *st;
                if (!next["spec"].is_object())
                    next["spec"] = json::object{};
                if (std::string bad = pod_decode_error(next); !bad.empty()) {
                    if (is_patch)
                        return invalid_patch(patched_text, bad);
                    return bad_request_response(
                        "Pod in version \"v1\" cannot be handled as a Pod: " + bad);
                }
                default_pod_spec(next["spec"].as_object());
                errs = validate_pod_update(next, *current);
            }
        } else {
            if (!next.contains("type"))
                next["type"] = "Opaque";
            auto size = secret_data(next);
            if (auto* bad = std::get_if<std::string>(&size)) {
                if (is_patch)
                    return invalid_patch(patched_text, *bad);
                return bad_request_response(
                    "Secret in version \"v1\" cannot be handled as a Secret: " + *bad);
            }
            errs = validate_secret_update(next, *current, std::get<std::size_t>(size));
        }
        if (!errs.empty())
            return json_response(422, invalid_status(kind, name, errs));
        auto answer = [&](const json::object& obj) {
            api_response r = json_response(200, obj);
            r.headers = warnings;
            return r;
        };
        // A no-op update is not written (no new resourceVersion, no watch event).
        if (next == *current || dry)
            return answer(next);
        auto stored = store_.update_if(resource, ns, name, [&](json::object& o) {
            if (str_at(o["metadata"].as_object(), "resourceVersion") != current_rv)
                return false;
            o = next;
            return true;
        });
        if (stored) {
            if (resource == "pods" && sub.empty())
                kubelet_.pod_updated(ns, name); // a new image restarts its container
            return answer(*stored);
        }
        if (conditional || attempt >= 20)
            return conflict(resource, name);
    }
}

} // namespace podpipe::kubesim
