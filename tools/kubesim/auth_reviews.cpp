// The self-subject reviews beside SSAR (README "RBAC policy"): SelfSubjectRulesReview
// (authorization.k8s.io/v1, `kubectl auth can-i --list`) from the RBAC policy, and
// SelfSubjectReview (authentication.k8s.io/v1, `kubectl auth whoami`).
#include "tools/kubesim/api.hpp"
#include "tools/kubesim/ssar_proto.hpp"
#include "tools/kubesim/util.hpp"

#include <algorithm>
#include <map>

namespace podpipe::kubesim {
namespace {

json::array strings(std::initializer_list<const char*> v) {
    json::array out;
    for (const char* s : v)
        out.emplace_back(s);
    return out;
}

json::object resource_rule(json::array verbs, json::array groups, json::array resources) {
    return json::object{{"verbs", std::move(verbs)},
                        {"apiGroups", std::move(groups)},
                        {"resources", std::move(resources)}};
}

/// What every authenticated user may do: system:basic-user, system:discovery and
/// system:public-info-viewer (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go).
void add_default_rules(json::array& resource_rules, json::array& non_resource_rules) {
    resource_rules.push_back(resource_rule(strings({"create"}), strings({"authentication.k8s.io"}),
                                           strings({"selfsubjectreviews"})));
    resource_rules.push_back(
        resource_rule(strings({"create"}), strings({"authorization.k8s.io"}),
                      strings({"selfsubjectaccessreviews", "selfsubjectrulesreviews"})));
    non_resource_rules.push_back(
        json::object{{"verbs", strings({"get"})},
                     {"nonResourceURLs",
                      strings({"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez",
                               "/openapi", "/openapi/*", "/readyz", "/version", "/version/"})}});
    non_resource_rules.push_back(json::object{
        {"verbs", strings({"get"})},
        {"nonResourceURLs", strings({"/healthz", "/livez", "/readyz", "/version", "/version/"})}});
}

/// The API group of a resource kubesim serves ("*" for "*").
std::string group_of(std::string_view resource) {
    std::string_view base = resource.substr(0, resource.find('/'));
    if (base == "*")
        return "*";
    if (base == "jobs")
        return "batch";
    if (base == "selfsubjectaccessreviews" || base == "selfsubjectrulesreviews")
        return "authorization.k8s.io";
    if (base == "selfsubjectreviews")
        return "authentication.k8s.io";
    return "";
}

api_response method_not_allowed_response() {
    return json_response(405, status_failure(405, "MethodNotAllowed",
                                             "the server does not allow this method on the "
                                             "requested resource"));
}

bool applies_to(const rbac_rule& r, const std::string& ns) {
    return std::any_of(r.namespaces.begin(), r.namespaces.end(),
                       [&](const std::string& n) { return n == "*" || n == ns; });
}

} // namespace

std::vector<std::string> api_server::groups_of(const std::string& user) const {
    if (user.starts_with("system:serviceaccount:")) {
        std::string rest = user.substr(22);
        return {"system:serviceaccounts",
                "system:serviceaccounts:" + rest.substr(0, rest.find(':')), "system:authenticated"};
    }
    if (!policy_.subject_of(user))
        return {"system:masters", "system:authenticated"};
    return {"system:authenticated"};
}

api_response api_server::rules_review(const api_request& req) {
    if (req.method != "POST")
        return method_not_allowed_response();
    std::string ns;
    if (req.header("content-type").find("application/vnd.kubernetes.protobuf") !=
        std::string::npos) {
        std::string error;
        auto parsed = parse_ssrr_protobuf(req.body, error);
        if (!parsed)
            return json_response(
                400,
                status_failure(400, "BadRequest", "the object provided is unrecognized: " + error));
        ns = *parsed;
    } else {
        boost::system::error_code ec;
        json::value body = json::parse(req.body, ec);
        if (ec || !body.is_object())
            return json_response(400,
                                 status_failure(400, "BadRequest",
                                                "the body of the request could not be decoded as a "
                                                "SelfSubjectRulesReview"));
        if (const json::object* spec = obj_at(body.as_object(), "spec"))
            ns = str_at(*spec, "namespace");
    }
    if (ns.empty())
        return json_response(400, status_failure(400, "BadRequest", "no namespace on request"));
    json::array resource_rules, non_resource_rules;
    // Cluster-wide grants first (cluster role bindings), then the namespace's, as the RBAC
    // rule resolver visits them.
    add_default_rules(resource_rules, non_resource_rules);
    if (const rbac_subject* s = policy_.subject_of(req.user)) {
        for (const auto& r : s->rules) {
            if (!applies_to(r, ns))
                continue;
            std::map<std::string, json::array> by_group;
            for (const auto& res : r.resources)
                by_group[group_of(res)].emplace_back(res);
            json::array verbs;
            for (const auto& v : r.verbs)
                verbs.emplace_back(v);
            for (auto& [group, resources] : by_group)
                resource_rules.push_back(
                    resource_rule(verbs, json::array{json::value(group)}, std::move(resources)));
        }
    } else {
        resource_rules.insert(resource_rules.begin(),
                              resource_rule(strings({"*"}), strings({"*"}), strings({"*"})));
        non_resource_rules.insert(
            non_resource_rules.begin(),
            json::object{{"verbs", strings({"*"})}, {"nonResourceURLs", strings({"*"})}});
    }
    return json_response(
        201, json::object{{"kind", "SelfSubjectRulesReview"},
                          {"apiVersion", "authorization.k8s.io/v1"},
                          {"metadata", json::object{{"creationTimestamp", nullptr}}},
                          {"spec", json::object{}},
                          {"status", json::object{{"resourceRules", resource_rules},
                                                  {"nonResourceRules", non_resource_rules},
                                                  {"incomplete", false}}}});
}

api_response api_server::self_review(const api_request& req) {
    if (req.method != "POST")
        return method_not_allowed_response();
    json::array groups;
    for (const auto& g : groups_of(req.user))
        groups.emplace_back(g);
    return json_response(
        201,
        json::object{{"kind", "SelfSubjectReview"},
                     {"apiVersion", "authentication.k8s.io/v1"},
                     {"metadata", json::object{{"creationTimestamp", nullptr}}},
                     {"status", json::object{{"userInfo", json::object{{"username", req.user},
                                                                       {"groups", groups}}}}}});
}

} // namespace podpipe::kubesim
