#include "kube/template.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <yaml-cpp/yaml.h>

namespace podpipe::kube {

namespace {

// Aliases let a small file describe a huge tree (a list of 1000 aliases to a list of 1000 env
// entries); every element we convert costs one unit, and real templates need a few hundred.
constexpr std::size_t node_budget = 100000;

// Collects the first error; helpers turn into no-ops once it is set.
struct ctx {
    std::string path;
    std::optional<api_error> error;
    std::size_t budget = node_budget;

    bool ok() const { return !error.has_value(); }

    void wrong_type(const std::string& where, const char* want) {
        if (!error)
            error = spec_error(spec_errc::template_invalid,
                               "Failed to parse " + path + ": " + where + ": expected " + want);
    }

    void unsupported(const std::string& where) {
        if (!error)
            error = spec_error(spec_errc::template_unsupported,
                               path + ": " + where + " is not supported by podpipe");
    }

    bool spend(const std::string& where) {
        if (budget == 0) {
            if (!error)
                error = spec_error(spec_errc::template_invalid,
                                   "Failed to parse " + path + ": " + where + ": too many nodes");
            return false;
        }
        --budget;
        return true;
    }
};

bool present(const YAML::Node& n) { return n.IsDefined() && !n.IsNull(); }

// Keys of a mapping, in document order; non-scalar keys are a type error.
std::vector<std::string> keys_of(ctx& c, const YAML::Node& m, const std::string& where) {
    std::vector<std::string> out;
    for (auto it = m.begin(); it != m.end(); ++it) {
        if (!it->first.IsScalar()) {
            c.wrong_type(where, "string keys");
            return {};
        }
        out.push_back(it->first.Scalar());
    }
    return out;
}

std::optional<YAML::Node> get_map(ctx& c, const YAML::Node& n, const std::string& where) {
    if (!present(n))
        return std::nullopt;
    if (!n.IsMap()) {
        c.wrong_type(where, "a mapping");
        return std::nullopt;
    }
    return n;
}

std::optional<YAML::Node> get_seq(ctx& c, const YAML::Node& n, const std::string& where) {
    if (!present(n))
        return std::nullopt;
    if (!n.IsSequence()) {
        c.wrong_type(where, "a list");
        return std::nullopt;
    }
    return n;
}

std::optional<std::string> get_str(ctx& c, const YAML::Node& n, const std::string& where) {
    if (!present(n))
        return std::nullopt;
    if (!n.IsScalar()) {
        c.wrong_type(where, "a string");
        return std::nullopt;
    }
    return n.Scalar();
}

std::optional<std::int64_t> get_int(ctx& c, const YAML::Node& n, const std::string& where) {
    if (!present(n))
        return std::nullopt;
    std::int64_t v = 0;
    if (!n.IsScalar() || !YAML::convert<std::int64_t>::decode(n, v)) {
        c.wrong_type(where, "an integer");
        return std::nullopt;
    }
    return v;
}

std::optional<bool> get_bool(ctx& c, const YAML::Node& n, const std::string& where) {
    if (!present(n))
        return std::nullopt;
    bool v = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, v)) {
        c.wrong_type(where, "a boolean");
        return std::nullopt;
    }
    return v;
}

std::vector<std::string> get_strings(ctx& c, const YAML::Node& n, const std::string& where) {
    std::vector<std::string> out;
    auto seq = get_seq(c, n, where);
    if (!seq)
        return out;
    for (std::size_t i = 0; i < seq->size() && c.ok(); ++i) {
        const std::string w = where + "[" + std::to_string(i) + "]";
        if (!c.spend(w))
            break;
        const YAML::Node item = (*seq)[i];
        if (!item.IsScalar()) {
            c.wrong_type(w, "a string");
            break;
        }
        out.push_back(item.Scalar());
    }
    return out;
}

string_map get_string_map(ctx& c, const YAML::Node& n, const std::string& where) {
    string_map out;
    auto m = get_map(c, n, where);
    if (!m)
        return out;
    for (auto it = m->begin(); it != m->end() && c.ok(); ++it) {
        if (!c.spend(where))
            break;
        if (!it->first.IsScalar()) {
            c.wrong_type(where, "string keys");
            break;
        }
        const std::string w = where + "." + it->first.Scalar();
        if (it->second.IsNull()) {
            out[it->first.Scalar()] = "";
            continue;
        }
        if (!it->second.IsScalar()) {
            c.wrong_type(w, "a string");
            break;
        }
        out[it->first.Scalar()] = it->second.Scalar();
    }
    return out;
}

// Checks that `m` only has `allowed` keys; the first other key is reported as unsupported.
void only_keys(ctx& c, const YAML::Node& m, const std::string& where,
               std::initializer_list<std::string_view> allowed) {
    for (const auto& k : keys_of(c, m, where)) {
        if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
            c.unsupported(where + "." + k);
            return;
        }
    }
}

// Calls fn(item, "where[i]") for each mapping of the list `n`.
template <class Fn>
void each_map(ctx& c, const YAML::Node& n, const std::string& where, Fn&& fn) {
    auto seq = get_seq(c, n, where);
    if (!seq)
        return;
    for (std::size_t i = 0; i < seq->size() && c.ok(); ++i) {
        const std::string w = where + "[" + std::to_string(i) + "]";
        if (!c.spend(w))
            return;
        const YAML::Node item = (*seq)[i];
        if (!item.IsMap()) {
            c.wrong_type(w, "a mapping");
            return;
        }
        fn(item, w);
    }
}

std::vector<env_var> parse_env(ctx& c, const YAML::Node& n, const std::string& where) {
    std::vector<env_var> out;
    each_map(c, n, where, [&](const YAML::Node& e, const std::string& w) {
        only_keys(c, e, w, {"name", "value", "valueFrom"});
        env_var v;
        v.name = get_str(c, e["name"], w + ".name").value_or("");
        if (c.ok() && v.name.empty())
            c.wrong_type(w + ".name", "a non-empty string");
        v.value = get_str(c, e["value"], w + ".value").value_or("");
        if (auto from = get_map(c, e["valueFrom"], w + ".valueFrom")) {
            only_keys(c, *from, w + ".valueFrom", {"secretKeyRef"});
            if (auto ref = get_map(c, (*from)["secretKeyRef"], w + ".valueFrom.secretKeyRef")) {
                const std::string rw = w + ".valueFrom.secretKeyRef";
                only_keys(c, *ref, rw, {"name", "key", "optional"});
                secret_key_ref r;
                r.name = get_str(c, (*ref)["name"], rw + ".name").value_or("");
                r.key = get_str(c, (*ref)["key"], rw + ".key").value_or("");
                r.optional = get_bool(c, (*ref)["optional"], rw + ".optional");
                v.secret_ref = std::move(r);
            }
        }
        out.push_back(std::move(v));
    });
    return out;
}

std::vector<container_port> parse_ports(ctx& c, const YAML::Node& n, const std::string& where) {
    std::vector<container_port> out;
    each_map(c, n, where, [&](const YAML::Node& e, const std::string& w) {
        only_keys(c, e, w, {"containerPort", "hostPort", "protocol"});
        container_port p;
        auto cp = get_int(c, e["containerPort"], w + ".containerPort");
        if (c.ok() && (!cp || *cp < 1 || *cp > 65535))
            return c.wrong_type(w + ".containerPort", "a port number 1..65535");
        p.container_port = static_cast<int>(cp.value_or(0));
        if (auto hp = get_int(c, e["hostPort"], w + ".hostPort")) {
            if (*hp < 1 || *hp > 65535)
                return c.wrong_type(w + ".hostPort", "a port number 1..65535");
            p.host_port = static_cast<int>(*hp);
        }
        if (auto proto = get_str(c, e["protocol"], w + ".protocol"))
            p.protocol = *proto;
        out.push_back(std::move(p));
    });
    return out;
}

std::vector<volume_mount> parse_mounts(ctx& c, const YAML::Node& n, const std::string& where) {
    std::vector<volume_mount> out;
    each_map(c, n, where, [&](const YAML::Node& e, const std::string& w) {
        only_keys(c, e, w, {"name", "mountPath", "subPath", "readOnly"});
        volume_mount m;
        m.name = get_str(c, e["name"], w + ".name").value_or("");
        m.mount_path = get_str(c, e["mountPath"], w + ".mountPath").value_or("");
        m.sub_path = get_str(c, e["subPath"], w + ".subPath").value_or("");
        m.read_only = get_bool(c, e["readOnly"], w + ".readOnly").value_or(false);
        if (c.ok() && (m.name.empty() || m.mount_path.empty()))
            c.wrong_type(w, "name and mountPath");
        out.push_back(std::move(m));
    });
    return out;
}

// securityContext.seccompProfile (pod or container): what Pod Security "restricted" asks for.
std::optional<seccomp_profile> parse_seccomp(ctx& c, const YAML::Node& n, const std::string& w) {
    auto m = get_map(c, n, w);
    if (!m)
        return std::nullopt;
    only_keys(c, *m, w, {"type", "localhostProfile"});
    seccomp_profile p;
    p.type = get_str(c, (*m)["type"], w + ".type").value_or("");
    p.localhost_profile =
        get_str(c, (*m)["localhostProfile"], w + ".localhostProfile").value_or("");
    if (c.ok() && p.type.empty())
        c.wrong_type(w + ".type", "a string");
    return p;
}

security_context parse_security(ctx& c, const YAML::Node& m, const std::string& w) {
    only_keys(c, m, w,
              {"privileged", "runAsUser", "runAsGroup", "runAsNonRoot", "allowPrivilegeEscalation",
               "readOnlyRootFilesystem", "capabilities", "seccompProfile"});
    security_context s;
    s.privileged = get_bool(c, m["privileged"], w + ".privileged");
    s.run_as_user = get_int(c, m["runAsUser"], w + ".runAsUser");
    s.run_as_group = get_int(c, m["runAsGroup"], w + ".runAsGroup");
    s.run_as_non_root = get_bool(c, m["runAsNonRoot"], w + ".runAsNonRoot");
    s.allow_privilege_escalation =
        get_bool(c, m["allowPrivilegeEscalation"], w + ".allowPrivilegeEscalation");
    s.read_only_root_filesystem =
        get_bool(c, m["readOnlyRootFilesystem"], w + ".readOnlyRootFilesystem");
    if (auto caps = get_map(c, m["capabilities"], w + ".capabilities")) {
        only_keys(c, *caps, w + ".capabilities", {"add", "drop"});
        capability_set cs;
        cs.add = get_strings(c, (*caps)["add"], w + ".capabilities.add");
        cs.drop = get_strings(c, (*caps)["drop"], w + ".capabilities.drop");
        s.capabilities = std::move(cs);
    }
    s.seccomp = parse_seccomp(c, m["seccompProfile"], w + ".seccompProfile");
    return s;
}

// A template container; `keys` receives the keys that were present.
container parse_container(ctx& c, const YAML::Node& m, const std::string& w,
                          std::set<std::string>& keys) {
    only_keys(c, m, w,
              {"name", "image", "command", "args", "env", "envFrom", "ports", "volumeMounts",
               "workingDir", "imagePullPolicy", "securityContext", "resources"});
    for (const auto& k : keys_of(c, m, w))
        if (present(m[k]))
            keys.insert(k);
    container ct;
    ct.name = get_str(c, m["name"], w + ".name").value_or("");
    ct.image = get_str(c, m["image"], w + ".image").value_or("");
    ct.command = get_strings(c, m["command"], w + ".command");
    ct.args = get_strings(c, m["args"], w + ".args");
    ct.env = parse_env(c, m["env"], w + ".env");
    each_map(c, m["envFrom"], w + ".envFrom", [&](const YAML::Node& e, const std::string& ew) {
        only_keys(c, e, ew, {"secretRef"});
        if (auto ref = get_map(c, e["secretRef"], ew + ".secretRef")) {
            only_keys(c, *ref, ew + ".secretRef", {"name"});
            ct.env_from.push_back(
                {get_str(c, (*ref)["name"], ew + ".secretRef.name").value_or("")});
        }
    });
    ct.ports = parse_ports(c, m["ports"], w + ".ports");
    ct.volume_mounts = parse_mounts(c, m["volumeMounts"], w + ".volumeMounts");
    ct.working_dir = get_str(c, m["workingDir"], w + ".workingDir").value_or("");
    ct.image_pull_policy = get_str(c, m["imagePullPolicy"], w + ".imagePullPolicy").value_or("");
    if (auto sc = get_map(c, m["securityContext"], w + ".securityContext"))
        ct.security = parse_security(c, *sc, w + ".securityContext");
    if (auto res = get_map(c, m["resources"], w + ".resources")) {
        only_keys(c, *res, w + ".resources", {"requests", "limits"});
        ct.resources.requests = get_string_map(c, (*res)["requests"], w + ".resources.requests");
        ct.resources.limits = get_string_map(c, (*res)["limits"], w + ".resources.limits");
    }
    return ct;
}

container_override to_override(container ct, const std::set<std::string>& keys) {
    container_override o;
    o.target = ct.name.substr(1);
    o.env = std::move(ct.env);
    o.volume_mounts = std::move(ct.volume_mounts);
    o.ports = std::move(ct.ports);
    if (keys.count("command"))
        o.command = std::move(ct.command);
    if (keys.count("args"))
        o.args = std::move(ct.args);
    if (keys.count("workingDir"))
        o.working_dir = std::move(ct.working_dir);
    if (keys.count("imagePullPolicy"))
        o.image_pull_policy = std::move(ct.image_pull_policy);
    if (keys.count("envFrom"))
        o.env_from = std::move(ct.env_from);
    if (keys.count("securityContext"))
        o.security = ct.security;
    if (keys.count("resources"))
        o.resources = std::move(ct.resources);
    o.has_image = keys.count("image") > 0;
    return o;
}

node_selector_term parse_term(ctx& c, const YAML::Node& m, const std::string& w) {
    only_keys(c, m, w, {"matchExpressions", "matchFields"});
    node_selector_term t;
    auto reqs = [&](const char* key, std::vector<node_selector_requirement>& out) {
        each_map(c, m[key], w + "." + key, [&](const YAML::Node& e, const std::string& ew) {
            only_keys(c, e, ew, {"key", "operator", "values"});
            node_selector_requirement r;
            r.key = get_str(c, e["key"], ew + ".key").value_or("");
            r.op = get_str(c, e["operator"], ew + ".operator").value_or("");
            r.values = get_strings(c, e["values"], ew + ".values");
            out.push_back(std::move(r));
        });
    };
    reqs("matchExpressions", t.match_expressions);
    reqs("matchFields", t.match_fields);
    return t;
}

node_affinity parse_affinity(ctx& c, const YAML::Node& m, const std::string& w) {
    only_keys(c, m, w, {"nodeAffinity"});
    node_affinity a;
    auto na = get_map(c, m["nodeAffinity"], w + ".nodeAffinity");
    if (!na)
        return a;
    const std::string nw = w + ".nodeAffinity";
    only_keys(c, *na, nw,
              {"requiredDuringSchedulingIgnoredDuringExecution",
               "preferredDuringSchedulingIgnoredDuringExecution"});
    if (auto req = get_map(c, (*na)["requiredDuringSchedulingIgnoredDuringExecution"],
                           nw + ".requiredDuringSchedulingIgnoredDuringExecution")) {
        const std::string rw = nw + ".requiredDuringSchedulingIgnoredDuringExecution";
        only_keys(c, *req, rw, {"nodeSelectorTerms"});
        each_map(c, (*req)["nodeSelectorTerms"], rw + ".nodeSelectorTerms",
                 [&](const YAML::Node& t, const std::string& tw) {
                     a.required.push_back(parse_term(c, t, tw));
                 });
    }
    each_map(c, (*na)["preferredDuringSchedulingIgnoredDuringExecution"],
             nw + ".preferredDuringSchedulingIgnoredDuringExecution",
             [&](const YAML::Node& p, const std::string& pw) {
                 only_keys(c, p, pw, {"weight", "preference"});
                 preferred_scheduling_term t;
                 auto weight = get_int(c, p["weight"], pw + ".weight");
                 if (c.ok() && (!weight || *weight < 1 || *weight > 100))
                     return c.wrong_type(pw + ".weight", "an integer 1..100");
                 t.weight = static_cast<int>(weight.value_or(1));
                 if (auto pref = get_map(c, p["preference"], pw + ".preference"))
                     t.preference = parse_term(c, *pref, pw + ".preference");
                 a.preferred.push_back(std::move(t));
             });
    return a;
}

volume parse_volume(ctx& c, const YAML::Node& m, const std::string& w) {
    only_keys(c, m, w, {"name", "emptyDir", "persistentVolumeClaim", "secret"});
    volume v;
    v.name = get_str(c, m["name"], w + ".name").value_or("");
    if (c.ok() && v.name.empty())
        c.wrong_type(w + ".name", "a non-empty string");
    int sources = 0;
    if (m["emptyDir"].IsDefined()) {
        ++sources;
        empty_dir_source e;
        if (auto ed = get_map(c, m["emptyDir"], w + ".emptyDir")) {
            only_keys(c, *ed, w + ".emptyDir", {"medium", "sizeLimit"});
            e.medium = get_str(c, (*ed)["medium"], w + ".emptyDir.medium").value_or("");
            e.size_limit = get_str(c, (*ed)["sizeLimit"], w + ".emptyDir.sizeLimit").value_or("");
        }
        v.source = e;
    }
    if (auto p = get_map(c, m["persistentVolumeClaim"], w + ".persistentVolumeClaim")) {
        ++sources;
        const std::string pw = w + ".persistentVolumeClaim";
        only_keys(c, *p, pw, {"claimName", "readOnly"});
        pvc_source s;
        s.claim_name = get_str(c, (*p)["claimName"], pw + ".claimName").value_or("");
        s.read_only = get_bool(c, (*p)["readOnly"], pw + ".readOnly").value_or(false);
        v.source = s;
    }
    if (auto s = get_map(c, m["secret"], w + ".secret")) {
        ++sources;
        only_keys(c, *s, w + ".secret", {"secretName", "defaultMode"});
        secret_volume_source src;
        src.secret_name = get_str(c, (*s)["secretName"], w + ".secret.secretName").value_or("");
        if (auto mode = get_int(c, (*s)["defaultMode"], w + ".secret.defaultMode")) {
            if (*mode < 0 || *mode > 0777)
                c.wrong_type(w + ".secret.defaultMode", "a file mode 0..0777");
            else
                src.default_mode = static_cast<int>(*mode);
        }
        v.source = src;
    }
    if (c.ok() && sources != 1)
        c.wrong_type(w, "exactly one of emptyDir, persistentVolumeClaim, secret");
    return v;
}

void parse_spec(ctx& c, const YAML::Node& spec, pod_template_extension& ext) {
    const std::string w = "spec";
    only_keys(c, spec, w,
              {"containers", "volumes", "initContainers", "nodeSelector", "affinity", "tolerations",
               "restartPolicy", "serviceAccountName", "imagePullSecrets", "securityContext",
               "terminationGracePeriodSeconds"});
    if (!c.ok())
        return;
    each_map(c, spec["containers"], w + ".containers",
             [&](const YAML::Node& m, const std::string& cw) {
                 std::set<std::string> keys;
                 container ct = parse_container(c, m, cw, keys);
                 if (!c.ok())
                     return;
                 if (ct.name.empty())
                     return c.wrong_type(cw + ".name", "a non-empty string");
                 if (ct.name.front() == '$') {
                     if (ct.name.size() == 1)
                         return c.wrong_type(cw + ".name", "a container name after '$'");
                     ext.overrides.push_back(to_override(std::move(ct), keys));
                 } else {
                     if (ct.image.empty())
                         return c.wrong_type(cw + ".image", "an image (sidecars bring their own)");
                     ext.sidecars.push_back(std::move(ct));
                 }
             });
    each_map(c, spec["volumes"], w + ".volumes", [&](const YAML::Node& m, const std::string& vw) {
        ext.volumes.push_back(parse_volume(c, m, vw));
    });
    pod_spec_overrides& o = ext.spec;
    if (present(spec["initContainers"])) {
        std::vector<container> inits;
        each_map(c, spec["initContainers"], w + ".initContainers",
                 [&](const YAML::Node& m, const std::string& iw) {
                     std::set<std::string> keys;
                     inits.push_back(parse_container(c, m, iw, keys));
                 });
        o.init_containers = std::move(inits);
    }
    if (present(spec["nodeSelector"]))
        o.node_selector = get_string_map(c, spec["nodeSelector"], w + ".nodeSelector");
    if (auto a = get_map(c, spec["affinity"], w + ".affinity"))
        o.affinity = parse_affinity(c, *a, w + ".affinity");
    if (present(spec["tolerations"])) {
        std::vector<toleration> tols;
        each_map(
            c, spec["tolerations"], w + ".tolerations",
            [&](const YAML::Node& m, const std::string& tw) {
                only_keys(c, m, tw, {"key", "operator", "value", "effect", "tolerationSeconds"});
                toleration t;
                t.key = get_str(c, m["key"], tw + ".key").value_or("");
                t.op = get_str(c, m["operator"], tw + ".operator").value_or("");
                t.value = get_str(c, m["value"], tw + ".value").value_or("");
                t.effect = get_str(c, m["effect"], tw + ".effect").value_or("");
                t.toleration_seconds =
                    get_int(c, m["tolerationSeconds"], tw + ".tolerationSeconds");
                tols.push_back(std::move(t));
            });
        o.tolerations = std::move(tols);
    }
    o.restart_policy = get_str(c, spec["restartPolicy"], w + ".restartPolicy");
    o.service_account_name = get_str(c, spec["serviceAccountName"], w + ".serviceAccountName");
    if (present(spec["imagePullSecrets"])) {
        std::vector<std::string> names;
        each_map(c, spec["imagePullSecrets"], w + ".imagePullSecrets",
                 [&](const YAML::Node& m, const std::string& sw) {
                     only_keys(c, m, sw, {"name"});
                     names.push_back(get_str(c, m["name"], sw + ".name").value_or(""));
                 });
        o.image_pull_secrets = std::move(names);
    }
    if (auto sc = get_map(c, spec["securityContext"], w + ".securityContext")) {
        const std::string sw = w + ".securityContext";
        only_keys(c, *sc, sw,
                  {"fsGroup", "runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile"});
        pod_security_context s;
        s.fs_group = get_int(c, (*sc)["fsGroup"], sw + ".fsGroup");
        s.run_as_user = get_int(c, (*sc)["runAsUser"], sw + ".runAsUser");
        s.run_as_group = get_int(c, (*sc)["runAsGroup"], sw + ".runAsGroup");
        s.run_as_non_root = get_bool(c, (*sc)["runAsNonRoot"], sw + ".runAsNonRoot");
        s.seccomp = parse_seccomp(c, (*sc)["seccompProfile"], sw + ".seccompProfile");
        o.security = s;
    }
    o.termination_grace_period_seconds =
        get_int(c, spec["terminationGracePeriodSeconds"], w + ".terminationGracePeriodSeconds");
}

} // namespace

result<pod_template_extension, api_error> parse_template(std::string_view yaml_text,
                                                          std::string_view path) {
    ctx c;
    c.path = std::string(path);
    auto invalid = [&] {
        return fail(spec_error(spec_errc::template_invalid, "Failed to parse " + c.path));
    };
    if (yaml_text.size() > max_template_bytes)
        return fail(spec_error(spec_errc::template_invalid,
                               "Failed to parse " + c.path + ": larger than 1 MiB"));
    pod_template_extension ext;
    try {
        const YAML::Node root = YAML::Load(std::string(yaml_text));
        if (!root.IsMap())
            return invalid();
        if (auto md = get_map(c, root["metadata"], "metadata")) {
            // Other metadata fields (name, namespace, ...) are ignored, as upstream does.
            ext.labels = get_string_map(c, (*md)["labels"], "metadata.labels");
            ext.annotations = get_string_map(c, (*md)["annotations"], "metadata.annotations");
        }
        if (auto spec = get_map(c, root["spec"], "spec"))
            parse_spec(c, *spec, ext);
    } catch (const YAML::Exception& e) {
        return fail(
            spec_error(spec_errc::template_invalid,
                       "Failed to parse " + c.path + ": " + sanitize_for_message(e.what(), 256)));
    } catch (const std::exception& e) {
        // yaml-cpp reports some conversions with standard exceptions.
        return fail(
            spec_error(spec_errc::template_invalid,
                       "Failed to parse " + c.path + ": " + sanitize_for_message(e.what(), 256)));
    }
    if (c.error)
        return fail(std::move(*c.error));
    return ext;
}

result<std::optional<pod_template_extension>, api_error> load_template(std::string_view path) {
    if (path.empty())
        return std::optional<pod_template_extension>{};
    const std::string p(path);
    std::ifstream in(p, std::ios::binary);
    if (!in) {
        const int e = errno;
        return fail(spec_error(spec_errc::template_unreadable,
                               "cannot read pod template " + p + ": " + std::strerror(e)));
    }
    std::string text;
    std::array<char, 8192> buf{};
    while (in.read(buf.data(), buf.size()) || in.gcount() > 0) {
        text.append(buf.data(), static_cast<std::size_t>(in.gcount()));
        if (text.size() > max_template_bytes)
            break;
    }
    if (in.bad())
        return fail(spec_error(spec_errc::template_unreadable, "cannot read pod template " + p));
    auto ext = parse_template(text, p);
    if (!ext)
        return fail(ext.error());
    return std::optional<pod_template_extension>(std::move(*ext));
}

namespace {

void merge_override(const container_override& o, container& ct) {
    ct.env.insert(ct.env.end(), o.env.begin(), o.env.end());
    ct.volume_mounts.insert(ct.volume_mounts.end(), o.volume_mounts.begin(), o.volume_mounts.end());
    ct.ports.insert(ct.ports.end(), o.ports.begin(), o.ports.end());
    if (o.command)
        ct.command = *o.command;
    if (o.args)
        ct.args = *o.args;
    if (o.working_dir)
        ct.working_dir = *o.working_dir;
    if (o.image_pull_policy)
        ct.image_pull_policy = *o.image_pull_policy;
    if (o.env_from)
        ct.env_from = *o.env_from;
    if (o.security)
        ct.security = *o.security;
    if (o.resources)
        ct.resources = *o.resources;
}

/// What the merge must not produce, said before anything is created (the API server would
/// refuse the pod with a 422 naming only a field path): a template volume with the name of one
/// the hook made, two mounts at one path in a container (a template mount at /__w, say), and a
/// mount of a volume nobody declared.
result<void, api_error> check_merged(const pod& generated, const pod& merged) {
    auto invalid = [](std::string msg) {
        return fail(spec_error(spec_errc::template_invalid, std::move(msg)));
    };
    std::set<std::string> names;
    for (const auto& v : merged.spec.volumes)
        if (!names.insert(v.name).second) {
            const bool ours = std::any_of(generated.spec.volumes.begin(),
                                          generated.spec.volumes.end(),
                                          [&](const volume& g) { return g.name == v.name; });
            return invalid("pod template volume " + v.name + " has the name of " +
                           (ours ? std::string("a volume the hook creates") : "another volume") +
                           ": give it another name");
        }
    auto check = [&](const container& ct) -> result<void, api_error> {
        std::map<std::string, std::string> at; // mount path -> volume
        for (const auto& m : ct.volume_mounts) {
            if (!names.count(m.name))
                return invalid("container " + ct.name + " mounts volume " + m.name +
                               ", which neither the hook nor the pod template declares");
            auto [it, fresh] = at.emplace(m.mount_path, m.name);
            if (!fresh) {
                const std::string why = it->second == m.name
                                            ? ""
                                            : ": the pod template may not mount over a path "
                                              "the hook mounts";
                return invalid("container " + ct.name + " mounts both " + it->second + " and " +
                               m.name + " at " + m.mount_path + why);
            }
        }
        return {};
    };
    for (const auto& ct : merged.spec.init_containers)
        PODPIPE_TRY(check(ct));
    for (const auto& ct : merged.spec.containers)
        PODPIPE_TRY(check(ct));
    return {};
}

} // namespace

result<std::vector<std::string>, api_error> apply_template(const pod_template_extension& ext,
                                                            pod& p) {
    std::vector<std::string> warnings;
    if (auto it = ext.labels.find(std::string(runner_label_key)); it != ext.labels.end()) {
        auto cur = p.metadata.labels.find(std::string(runner_label_key));
        if (cur == p.metadata.labels.end() || cur->second != it->second)
            return fail(spec_error(spec_errc::template_forbidden,
                                   "the pod template may not set the label runner-pod: cleanup "
                                   "finds the job's pods by it"));
    }
    // Sidecar names must not collide with generated containers (the API would reject the pod
    // with a less helpful message).
    for (const auto& s : ext.sidecars)
        for (const auto& ct : p.spec.containers)
            if (ct.name == s.name)
                return fail(spec_error(spec_errc::template_invalid,
                                       "pod template container " + s.name +
                                           " has the name of a generated container"));
    pod out = p;
    for (const auto& [k, v] : ext.labels) {
        if (out.metadata.labels.count(k))
            warnings.push_back("Label " + k + " is already defined and will be overwritten");
        out.metadata.labels[k] = v;
    }
    for (const auto& [k, v] : ext.annotations) {
        if (out.metadata.annotations.count(k))
            warnings.push_back("Annotation " + k + " is already defined and will be overwritten");
        out.metadata.annotations[k] = v;
    }
    // Container overrides first, so that sidecars (appended below) are never targets.
    for (const auto& o : ext.overrides) {
        for (auto& ct : out.spec.containers) {
            if (ct.name != o.target)
                continue;
            if (o.has_image)
                warnings.emplace_back("Skipping image override: image can't be overwritten");
            merge_override(o, ct);
        }
    }
    out.spec.containers.insert(out.spec.containers.end(), ext.sidecars.begin(), ext.sidecars.end());
    out.spec.volumes.insert(out.spec.volumes.end(), ext.volumes.begin(), ext.volumes.end());
    const pod_spec_overrides& s = ext.spec;
    if (s.init_containers)
        out.spec.init_containers = *s.init_containers;
    if (s.node_selector)
        out.spec.node_selector = *s.node_selector;
    if (s.affinity)
        out.spec.affinity = *s.affinity;
    if (s.tolerations)
        out.spec.tolerations = *s.tolerations;
    if (s.restart_policy)
        out.spec.restart_policy = *s.restart_policy;
    if (s.service_account_name)
        out.spec.service_account_name = *s.service_account_name;
    if (s.image_pull_secrets)
        out.spec.image_pull_secrets = *s.image_pull_secrets;
    if (s.security)
        out.spec.security = *s.security;
    if (s.termination_grace_period_seconds)
        out.spec.termination_grace_period_seconds = *s.termination_grace_period_seconds;
    PODPIPE_TRY(check_merged(p, out));
    p = std::move(out);
    return warnings;
}

} // namespace podpipe::kube
