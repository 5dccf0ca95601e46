// ValidatePodStatusUpdate (pkg/apis/core/validation/validation.go, v1.32): what a write to
// pods/NAME/status may change. Written from upstream's function, in its order; see the README's
// "pod status on update" row for what is not checked.
#include "tools/kubesim/validation.hpp"

#include <arpa/inet.h>

#include <cctype>
#include <set>

namespace podpipe::kubesim {

namespace {

const json::object& object_member(const json::object& o, const char* key) {
    static const json::object empty;
    const json::value* v = o.if_contains(key);
    return v && v->is_object() ? v->as_object() : empty;
}

const json::array& array_member(const json::object& o, const char* key) {
    static const json::array empty;
    const json::value* v = o.if_contains(key);
    return v && v->is_array() ? v->as_array() : empty;
}

std::string string_member(const json::object& o, const char* key) {
    const json::value* v = o.if_contains(key);
    return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

/// netutils.ParseIPSloppy: an IPv6 address (IPv4-mapped ones count as IPv4), or a dotted quad
/// whose parts may have leading zeros. nullopt when it does not parse, else whether it is IPv4.
std::optional<bool> parse_ip_sloppy(const std::string& s) {
    if (s.find(':') != std::string::npos) {
        in6_addr a6{};
        if (::inet_pton(AF_INET6, s.c_str(), &a6) != 1)
            return std::nullopt;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        return std::equal(mapped, mapped + 12, a6.s6_addr);
    }
    std::size_t pos = 0;
    for (int part = 0; part < 4; ++part) {
        if (part > 0) {
            if (pos >= s.size() || s[pos] != '.')
                return std::nullopt;
            ++pos;
        }
        const std::size_t start = pos;
        unsigned value = 0;
        while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
            value = value * 10 + static_cast<unsigned>(s[pos] - '0');
            if (value > 255)
                return std::nullopt;
            ++pos;
        }
        if (pos == start)
            return std::nullopt;
    }
    if (pos != s.size())
        return std::nullopt;
    return true;
}

/// Go's %#v of a core.PodIP / core.HostIP: `core.PodIP{IP:"10.0.0.1"}`.
std::string go_ip_struct(std::string_view type, const std::string& ip) {
    return "core." + std::string(type) + "{IP:" + go_quote(ip) + "}";
}

/// validatePodIPs / validateHostIPs: each entry an IP, at most one per family, no duplicates.
void validate_ips(const json::array& list, const char* field, std::string_view type,
                  bool duplicates_first, field_errors& out) {
    std::vector<std::string> ips;
    for (const auto& e : list)
        ips.push_back(e.is_object() ? string_member(e.as_object(), "ip") : std::string());
    for (std::size_t i = 0; i < ips.size(); ++i)
        if (!parse_ip_sloppy(ips[i]))
            out.push_back(invalid_error(std::string(field) + "[" + std::to_string(i) + "]",
                                        go_quote(ips[i]),
                                        "must be a valid IP address, (e.g. 10.9.8.7 or "
                                        "2001:db8::ffff)"));
    if (ips.size() <= 1)
        return;
    auto family_check = [&] {
        bool v4 = false, v6 = false, bad = false;
        for (const auto& ip : ips) {
            auto f = parse_ip_sloppy(ip);
            if (!f)
                bad = true;
            else
                (*f ? v4 : v6) = true;
        }
        // IsDualStackIPStrings: false for an unparsable entry (upstream adds an InternalError
        // then, which kubesim does not reproduce).
        if (bad || !(v4 && v6) || ips.size() > 2) {
            std::string all = "[]core." + std::string(type) + "{";
            for (std::size_t i = 0; i < ips.size(); ++i)
                all += (i ? ", " : "") + go_ip_struct(type, ips[i]);
            all += "}";
            out.push_back(invalid_error(field, all,
                                        "may specify no more than one IP for each IP family"));
        }
    };
    auto duplicate_check = [&] {
        std::set<std::string> seen;
        for (std::size_t i = 0; i < ips.size(); ++i)
            if (!seen.insert(ips[i]).second)
                out.push_back(duplicate_error(std::string(field) + "[" + std::to_string(i) + "]",
                                              go_ip_struct(type, ips[i])));
    };
    if (duplicates_first) { // validateHostIPs checks duplicates before the families
        duplicate_check();
        family_check();
    } else {
        family_check();
        duplicate_check();
    }
}

/// A status whose state.terminated is set (Go: State.Terminated != nil).
bool is_terminated(const json::value& status) {
    if (!status.is_object())
        return false;
    const json::value* t = object_member(status.as_object(), "state").if_contains("terminated");
    return t && t->is_object();
}

/// ValidateContainerStateTransition / ValidateInitContainerStateTransition: under restartPolicy
/// Never (and OnFailure for an exit code 0) a terminated container stays terminated. The index is
/// the old status's; restartable init containers (sidecars) are exempt.
void validate_state_transitions(const json::array& next, const json::array& old,
                                const std::string& field, const std::string& policy,
                                const std::set<std::string>& restartable, field_errors& out) {
    if (policy == "Always")
        return;
    for (std::size_t i = 0; i < old.size(); ++i) {
        if (!old[i].is_object() || !is_terminated(old[i]))
            continue;
        const json::object& o = old[i].as_object();
        const json::object& term = object_member(object_member(o, "state"), "terminated");
        const json::value* code = term.if_contains("exitCode");
        const bool failed = code && code->is_number() && code->to_number<double>() != 0;
        if (failed && policy == "OnFailure")
            continue;
        const std::string name = string_member(o, "name");
        if (restartable.contains(name))
            continue;
        for (const auto& n : next)
            if (n.is_object() && string_member(n.as_object(), "name") == name && !is_terminated(n))
                out.push_back(forbidden_error(field + "[" + std::to_string(i) + "].state",
                                              "may not be transitioned to non-terminated state"));
    }
}

} // namespace

field_errors validate_pod_status_update(const json::object& pod, const json::object& old) {
    field_errors out = validate_object_meta_update(pod, old);
    const json::object& st = object_member(pod, "status");
    const json::object& old_st = object_member(old, "status");
    const json::object& old_spec = object_member(old, "spec");

    // validatePodConditions: custom condition types are qualified names (upstream's path
    // really is metadata.conditions[i].Type).
    const json::array& conds = array_member(st, "conditions");
    for (std::size_t i = 0; i < conds.size(); ++i) {
        const std::string type = conds[i].is_object() ? string_member(conds[i].as_object(), "type")
                                                       : std::string();
        if (type == "PodScheduled" || type == "Ready" || type == "Initialized")
            continue;
        for (const auto& msg : qualified_name_errors(type))
            out.push_back(invalid_error("metadata.conditions[" + std::to_string(i) + "].Type",
                                        go_quote(type), msg));
    }

    // spec.nodeName cannot change here: the status strategy keeps the stored spec.
    const std::string nominated = string_member(st, "nominatedNodeName");
    if (!nominated.empty() && nominated != string_member(old_st, "nominatedNodeName"))
        for (const auto& msg : dns1123_subdomain_errors(nominated))
            out.push_back(invalid_error("status.nominatedNodeName", go_quote(nominated), msg));

    // Pod QoS is immutable (PrepareForUpdate backfilled an empty one).
    const std::string qos = string_member(st, "qosClass");
    if (qos != string_member(old_st, "qosClass"))
        out.push_back(invalid_error("status.qosClass", go_quote(qos), "field is immutable"));

    const std::string policy = string_member(old_spec, "restartPolicy");
    std::set<std::string> sidecars;
    for (const auto& c : array_member(old_spec, "initContainers"))
        if (c.is_object() && string_member(c.as_object(), "restartPolicy") == "Always")
            sidecars.insert(string_member(c.as_object(), "name"));
    validate_state_transitions(array_member(st, "containerStatuses"),
                               array_member(old_st, "containerStatuses"),
                               "status.containerStatuses", policy, {}, out);
    validate_state_transitions(array_member(st, "initContainerStatuses"),
                               array_member(old_st, "initContainerStatuses"),
                               "status.initContainerStatuses", policy, sidecars, out);
    validate_state_transitions(array_member(st, "ephemeralContainerStatuses"),
                               array_member(old_st, "ephemeralContainerStatuses"),
                               "status.ephemeralContainerStatuses", "Never", {}, out);

    // validatePodResourceClaimStatuses: each names an entry of spec.resourceClaims, once.
    std::set<std::string> claims, seen;
    for (const auto& c : array_member(object_member(pod, "spec"), "resourceClaims"))
        if (c.is_object())
            claims.insert(string_member(c.as_object(), "name"));
    const json::array& claim_st = array_member(st, "resourceClaimStatuses");
    for (std::size_t i = 0; i < claim_st.size(); ++i) {
        const std::string name =
            claim_st[i].is_object() ? string_member(claim_st[i].as_object(), "name") : "";
        const std::string f = "status.resourceClaimStatuses[" + std::to_string(i) + "].name";
        if (!claims.contains(name))
            out.push_back(invalid_error(
                f, go_quote(name), "must match the name of an entry in `spec.resourceClaims`"));
        if (!seen.insert(name).second)
            out.push_back(duplicate_error(f, go_quote(name)));
    }

    validate_ips(array_member(st, "podIPs"), "status.podIPs", "PodIP", false, out);
    const json::array& host_ips = array_member(st, "hostIPs");
    if (!host_ips.empty()) {
        const std::string first =
            host_ips[0].is_object() ? string_member(host_ips[0].as_object(), "ip") : "";
        if (first != string_member(st, "hostIP"))
            out.push_back(invalid_error("status.hostIPs[0].ip", go_quote(first),
                                        "must be equal to `hostIP`"));
        validate_ips(host_ips, "status.hostIPs", "HostIP", true, out);
    }
    return out;
}

} // namespace podpipe::kubesim
