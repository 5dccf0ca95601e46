#include "tools/kubesim/scheduler.hpp"

#include <algorithm>

#include "tools/kubesim/node_info.hpp"
#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {
namespace {

bool match_expr(const json::object& expr, const std::string* value) {
    std::string op = str_at(expr, "operator");
    std::vector<std::string> values;
    if (auto* vs = arr_at(expr, "values"))
        for (const auto& v : *vs)
            if (v.is_string())
                values.emplace_back(v.get_string());
    bool in = value && std::find(values.begin(), values.end(), *value) != values.end();
    if (op == "In")
        return in;
    if (op == "NotIn")
        return !in;
    if (op == "Exists")
        return value != nullptr;
    if (op == "DoesNotExist")
        return value == nullptr;
    if ((op == "Gt" || op == "Lt") && value && values.size() == 1) {
        try {
            long long have = std::stoll(*value), want = std::stoll(values[0]);
            return op == "Gt" ? have > want : have < want;
        } catch (...) {
            return false;
        }
    }
    return false;
}

bool match_term(const json::object& term, const sim_node& n) {
    if (auto* exprs = arr_at(term, "matchExpressions")) {
        for (const auto& e : *exprs) {
            if (!e.is_object())
                return false;
            auto it = n.labels.find(str_at(e.get_object(), "key"));
            if (!match_expr(e.get_object(), it == n.labels.end() ? nullptr : &it->second))
                return false;
        }
    }
    if (auto* fields = arr_at(term, "matchFields")) {
        for (const auto& e : *fields) {
            if (!e.is_object() || str_at(e.get_object(), "key") != "metadata.name")
                return false;
            if (!match_expr(e.get_object(), &n.name))
                return false;
        }
    }
    return true;
}

} // namespace

schedule_decision schedule_pod(const json::object& spec, const std::vector<sim_node>& nodes,
                               const std::map<std::string, int>& pod_counts,
                               const std::string& preferred_node) {
    const json::object* node_selector = obj_at(spec, "nodeSelector");
    const json::object* node_affinity = nullptr;
    if (auto* aff = obj_at(spec, "affinity"))
        node_affinity = obj_at(*aff, "nodeAffinity");
    const json::array* required_terms = nullptr;
    const json::array* preferred = nullptr;
    if (node_affinity) {
        if (auto* req = obj_at(*node_affinity, "requiredDuringSchedulingIgnoredDuringExecution"))
            required_terms = arr_at(*req, "nodeSelectorTerms");
        preferred = arr_at(*node_affinity, "preferredDuringSchedulingIgnoredDuringExecution");
    }
    const sim_node* best = nullptr;
    long best_score = -1;
    int best_count = 0;
    int cordoned = 0;
    for (const auto& n : nodes) {
        if (n.unschedulable) {
            ++cordoned; // tolerations of the unschedulable taint are not modelled
            continue;
        }
        bool ok = true;
        if (node_selector) {
            for (const auto& [k, v] : *node_selector) {
                auto it = n.labels.find(std::string(k));
                if (it == n.labels.end() || !v.is_string() || it->second != v.get_string())
                    ok = false;
            }
        }
        if (ok && required_terms) {
            bool any = false;
            for (const auto& t : *required_terms)
                if (t.is_object() && match_term(t.get_object(), n))
                    any = true;
            ok = any;
        }
        if (!ok)
            continue;
        long score = 0;
        if (preferred) {
            for (const auto& p : *preferred) {
                if (!p.is_object())
                    continue;
                auto* pref = obj_at(p.get_object(), "preference");
                if (pref && match_term(*pref, n))
                    score += int_at(p.get_object(), "weight", 0);
            }
        }
        if (!preferred_node.empty() && n.name == preferred_node)
            score += 1000000; // above any sum of preferred-term weights (each ≤ 100)
        auto pc = pod_counts.find(n.name);
        int count = pc == pod_counts.end() ? 0 : pc->second;
        if (score > best_score || (score == best_score && count < best_count)) {
            best = &n;
            best_score = score;
            best_count = count;
        }
    }
    schedule_decision d;
    if (best) {
        d.scheduled = true;
        d.node = best->name;
    } else {
        std::string n = std::to_string(nodes.size());
        const std::size_t mismatched = nodes.size() - static_cast<std::size_t>(cordoned);
        std::string reasons;
        if (mismatched > 0)
            reasons = std::to_string(mismatched) + " node(s) didn't match Pod's node affinity/selector";
        if (cordoned > 0)
            reasons += std::string(reasons.empty() ? "" : ", ") + std::to_string(cordoned) +
                       " node(s) had untolerated taint {node.kubernetes.io/unschedulable: }";
        d.message = "0/" + n + " nodes are available: " + reasons + ". preemption: 0/" + n +
                    " nodes are available: " + n + " Preemption is not helpful for scheduling.";
    }
    return d;
}

std::vector<sim_node> make_nodes(int count) {
    std::vector<sim_node> out;
    for (int i = 1; i <= count; ++i) {
        sim_node n;
        n.name = "node-" + std::to_string(i);
        n.index = i;
        n.internal_ip = "172.18.0." + std::to_string(i + 1);
        n.labels = {{"kubernetes.io/hostname", n.name},
                    {"kubernetes.io/os", "linux"},
                    {"kubernetes.io/arch", "amd64"},
                    {"beta.kubernetes.io/os", "linux"},
                    {"beta.kubernetes.io/arch", "amd64"}};
        out.push_back(std::move(n));
    }
    return out;
}

json::object node_object(const sim_node& n) {
    json::object labels;
    for (const auto& [k, v] : n.labels)
        labels[k] = v;
    return json::object{
        {"kind", "Node"},
        {"apiVersion", "v1"},
        {"metadata", json::object{{"name", n.name}, {"labels", labels}}},
        {"spec", n.unschedulable
                     ? json::object{{"podCIDR", "10.244." + std::to_string(n.index) + ".0/24"},
                                    {"unschedulable", true},
                                    {"taints", json::array{json::object{{"key", "node.kubernetes.io/unschedulable"},
                                                                        {"effect", "NoSchedule"},
                                                                        {"timeAdded", now_rfc3339()}}}}}
                     : json::object{{"podCIDR", "10.244." + std::to_string(n.index) + ".0/24"}}},
        {"status", node_status(n.name, n.internal_ip)}};
}

} // namespace podpipe::kubesim
