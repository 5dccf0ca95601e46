#include "tools/kubesim/rbac.hpp"

#include <fstream>
#include <sstream>

#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {
namespace {

bool match_any(const std::vector<std::string>& patterns, const std::string& value) {
    for (const auto& p : patterns)
        if (p == "*" || p == value)
            return true;
    return false;
}

bool match_resource(const std::vector<std::string>& patterns, const access_attributes& a) {
    std::string full = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
    for (const auto& p : patterns) {
        if (p == "*" || p == full)
            return true;
        if (!a.subresource.empty() && p == a.resource + "/*")
            return true;
    }
    return false;
}

std::vector<std::string> strings(const json::object& o, std::string_view key) {
    std::vector<std::string> out;
    if (auto* a = arr_at(o, key))
        for (const auto& v : *a)
            if (v.is_string())
                out.emplace_back(v.get_string());
    return out;
}

} // namespace

result<rbac_policy, std::string> rbac_policy::load(const std::string& path) {
    std::ifstream f(path);
    if (!f)
        return fail(std::string("cannot read ") + path);
    std::stringstream ss;
    ss << f.rdbuf();
    boost::system::error_code ec;
    json::value v = json::parse(ss.str(), ec);
    if (ec || !v.is_object())
        return fail(path + ": not a JSON object");
    const json::array* users = arr_at(v.get_object(), "users");
    if (!users)
        return fail(path + ": missing \"users\" array");
    rbac_policy p;
    for (const auto& u : *users) {
        if (!u.is_object())
            return fail(path + ": users[] entries must be objects");
        const json::object& uo = u.get_object();
        std::string token = str_at(uo, "token");
        rbac_subject s;
        s.user = str_at(uo, "user");
        s.expires_after = std::chrono::seconds(int_at(uo, "expiresAfterSeconds", 0));
        if (token.empty() || s.user.empty())
            return fail(path + ": each user needs \"token\" and \"user\"");
        if (auto* rules = arr_at(uo, "rules")) {
            for (const auto& r : *rules) {
                if (!r.is_object())
                    return fail(path + ": rules[] entries must be objects");
                rbac_rule rule{strings(r.get_object(), "verbs"), strings(r.get_object(), "resources"),
                               strings(r.get_object(), "namespaces")};
                if (rule.namespaces.empty())
                    rule.namespaces.push_back("*");
                s.rules.push_back(std::move(rule));
            }
        }
        p.by_token_[token] = std::move(s);
    }
    for (const auto& [token, s] : p.by_token_)
        p.by_user_[s.user] = &s;
    return p;
}

const rbac_subject* rbac_policy::subject_of(const std::string& user) const {
    auto it = by_user_.find(user);
    return it == by_user_.end() ? nullptr : it->second;
}

bool rbac_policy::allows(const std::string& user, const access_attributes& a) const {
    auto it = by_user_.find(user);
    if (it == by_user_.end())
        return true;
    for (const auto& r : it->second->rules) {
        if (!match_any(r.verbs, a.verb) || !match_resource(r.resources, a))
            continue;
        bool ns_ok = false;
        for (const auto& n : r.namespaces)
            ns_ok = ns_ok || n == "*" || (!a.ns.empty() && n == a.ns);
        if (ns_ok)
            return true;
    }
    return false;
}

std::string forbidden_message(const std::string& user, const access_attributes& a) {
    std::string qualified = a.group.empty() ? a.resource : a.resource + "." + a.group;
    std::string full = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
    std::string m = qualified;
    if (!a.name.empty())
        m += " \"" + a.name + "\"";
    m += " is forbidden: User \"" + user + "\" cannot " + a.verb + " resource \"" + full +
         "\" in API group \"" + a.group + "\"";
    if (a.ns.empty())
        m += " at the cluster scope";
    else
        m += " in the namespace \"" + a.ns + "\"";
    return m;
}

} // namespace podpipe::kubesim
