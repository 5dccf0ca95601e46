// rbac: kubesim's authorization model (spec §3.8/§3.9, §6.3 items 2 and 10). A policy file names
// restricted tokens and what each may do; tokens without an entry (the kubeconfig admin and the
// service-account token) are cluster admins. Read-only after load; safe to share between threads.
//
// File format (JSON), see README.md:
//   {"users": [{"token": "T", "user": "system:serviceaccount:ns:runner",
//               "rules": [{"verbs": ["get","list"], "resources": ["pods","pods/exec"],
//                          "namespaces": ["ns"]}]}]}
// Optional per user: "expiresAfterSeconds": N (the token answers 401 from N s after start).
// "*" matches any verb / resource / namespace (including cluster scope); "pods/*" any pods
// subresource. Rules only allow (RBAC has no deny).
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "engine/common/result.hpp"

namespace podpipe::kubesim {

/// What a request asks to do (upstream authorizer.Attributes, resource requests only).
struct access_attributes {
    std::string verb;
    std::string group;       ///< "" = core
    std::string resource;    ///< "pods"
    std::string subresource; ///< "exec" or ""
    std::string ns;          ///< "" = cluster scope
    std::string name;        ///< "" = collection
};

struct rbac_rule {
    std::vector<std::string> verbs, resources, namespaces;
};

struct rbac_subject {
    std::string user;
    std::chrono::seconds expires_after{0}; ///< token rejected (401) this long after start; 0 = never
    std::vector<rbac_rule> rules;
};

class rbac_policy {
public:
    /// Parses the policy file; error message on failure.
    static result<rbac_policy, std::string> load(const std::string& path);

    /// token → subject for restricted tokens.
    const std::map<std::string, rbac_subject>& subjects() const { return by_token_; }
    /// The policy entry of `user`, nullptr for an admin (no entry).
    const rbac_subject* subject_of(const std::string& user) const;
    /// True when `user` has no entry (admin) or one of its rules allows `a`.
    bool allows(const std::string& user, const access_attributes& a) const;

private:
    std::map<std::string, rbac_subject> by_token_;
    std::map<std::string, const rbac_subject*> by_user_;
};

/// Upstream Forbidden message: `pods "x" is forbidden: User "u" cannot get resource "pods" in API
/// group "" in the namespace "ns"` (no name → `pods is forbidden: ...`; cluster scope ends
/// `at the cluster scope`).
std::string forbidden_message(const std::string& user, const access_attributes& a);

} // namespace podpipe::kubesim
