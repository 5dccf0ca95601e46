// Pod Security Admission (see psa.hpp). Each check below carries the upstream file it follows
// (staging/src/k8s.io/pod-security-admission/policy/check_*.go): its reason, its detail text and
// its pluralisation. Checks run in upstream's order, which is the order of the Go files' init()
// registrations (alphabetical file names): the baseline checks first, then at baseline the
// baseline checks that a restricted check supersedes ("overlapping"), at restricted the
// restricted ones instead.
#include "tools/kubesim/psa.hpp"

#include "tools/kubesim/util.hpp"

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>

namespace podpipe::kubesim {
namespace {

namespace json = boost::json;

/// The newest policy version kubesim knows (the server is v1.32): newer versions and "latest"
/// evaluate as this one, as the registry clamps to its newest check version.
constexpr int max_minor = 32;

constexpr const char* label_prefix = "pod-security.kubernetes.io/";

std::string join_quote(const std::vector<std::string>& items) {
    if (items.empty())
        return "";
    std::string s = "\"";
    for (std::size_t i = 0; i < items.size(); ++i)
        s += (i ? "\", \"" : "") + items[i];
    return s + "\"";
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
    std::string s;
    for (std::size_t i = 0; i < items.size(); ++i)
        s += (i ? std::string(sep) : "") + items[i];
    return s;
}

const char* plural(const char* one, const char* many, std::size_t n) { return n == 1 ? one : many; }

std::string setters(const char* one, const char* many, const std::vector<std::string>& names) {
    return std::string(plural(one, many, names.size())) + " " + join_quote(names);
}

bool is_true(const json::object* o, std::string_view key) {
    if (!o)
        return false;
    const json::value* v = o->if_contains(key);
    return v && v->is_bool() && v->get_bool();
}

bool is_false(const json::object* o, std::string_view key) {
    if (!o)
        return false;
    const json::value* v = o->if_contains(key);
    return v && v->is_bool() && !v->get_bool();
}

std::vector<std::string> strings_of(const json::object* o, std::string_view key) {
    std::vector<std::string> out;
    if (const json::array* a = o ? arr_at(*o, key) : nullptr)
        for (const auto& v : *a)
            out.push_back(v.is_string() ? std::string(v.get_string()) : "");
    return out;
}

/// visitContainers: init containers, containers, ephemeral containers, in spec order.
void visit_containers(const json::object& spec,
                      const std::function<void(const json::object& c)>& f) {
    for (const char* key : {"initContainers", "containers", "ephemeralContainers"})
        if (const json::array* list = arr_at(spec, key))
            for (const auto& c : *list)
                if (c.is_object())
                    f(c.get_object());
}

const json::object* sc_of(const json::object& container) {
    return obj_at(container, "securityContext");
}

const json::object* pod_sc(const json::object& spec) { return obj_at(spec, "securityContext"); }

std::string name_of(const json::object& c) { return str_at(c, "name"); }

std::vector<std::string> sorted(const std::set<std::string>& s) { return {s.begin(), s.end()}; }

struct check_result {
    bool allowed = true;
    std::string reason, detail;
};

check_result forbid(std::string reason, std::string detail) {
    return {false, std::move(reason), std::move(detail)};
}

using check_fn =
    std::function<check_result(const json::object& md, const json::object& spec, int minor)>;

// check_allowPrivilegeEscalation.go (restricted, v1.8+)
check_result allow_privilege_escalation(const json::object&, const json::object& spec, int) {
    std::vector<std::string> bad;
    visit_containers(spec, [&](const json::object& c) {
        if (!is_false(sc_of(c), "allowPrivilegeEscalation"))
            bad.push_back(name_of(c));
    });
    if (bad.empty())
        return {};
    return forbid("allowPrivilegeEscalation != false",
                  setters("container", "containers", bad) +
                      " must set securityContext.allowPrivilegeEscalation=false");
}

// check_appArmorProfile.go (baseline, v1.0+): the appArmorProfile fields and the deprecated
// container.apparmor.security.beta.kubernetes.io/* annotations.
check_result app_armor_profile(const json::object& md, const json::object& spec, int) {
    auto bad_type = [](const json::object* sc) -> std::optional<std::string> {
        const json::object* p = sc ? obj_at(*sc, "appArmorProfile") : nullptr;
        if (!p)
            return std::nullopt;
        std::string t = str_at(*p, "type");
        if (t == "RuntimeDefault" || t == "Localhost")
            return std::nullopt;
        return t;
    };
    std::vector<std::string> bad_setters;
    std::set<std::string> bad_values;
    if (auto t = bad_type(pod_sc(spec))) {
        bad_setters.push_back("pod");
        bad_values.insert(*t);
    }
    std::vector<std::string> bad;
    visit_containers(spec, [&](const json::object& c) {
        if (auto t = bad_type(sc_of(c))) {
            bad.push_back(name_of(c));
            bad_values.insert(*t);
        }
    });
    if (!bad.empty())
        bad_setters.push_back(setters("container", "containers", bad));
    std::vector<std::string> annotations;
    if (const json::object* a = obj_at(md, "annotations"))
        for (const auto& [k, v] : *a) {
            std::string val = v.is_string() ? std::string(v.get_string()) : "";
            if (std::string_view(k).starts_with(
                    "container.apparmor.security.beta.kubernetes.io/") &&
                !(val.empty() || val == "runtime/default" || val.starts_with("localhost/")))
                annotations.push_back(std::string(k) + "=" + go_quote(val));
        }
    std::vector<std::string> values = sorted(bad_values);
    if (!annotations.empty()) {
        std::sort(annotations.begin(), annotations.end());
        values.insert(values.end(), annotations.begin(), annotations.end());
        bad_setters.push_back(plural("annotation", "annotations", annotations.size()));
    }
    if (bad_setters.empty())
        return {};
    return forbid(
        plural("forbidden AppArmor profile", "forbidden AppArmor profiles", values.size()),
        join(bad_setters, " and ") + " must not set AppArmor profile type to " +
            join_quote(values));
}

// check_capabilities_baseline.go (baseline, overlapping, v1.0+)
check_result capabilities_baseline(const json::object&, const json::object& spec, int) {
    static const std::set<std::string> allowed{
        "AUDIT_WRITE",      "CHOWN",   "DAC_OVERRIDE", "FOWNER",  "FSETID", "KILL",      "MKNOD",
        "NET_BIND_SERVICE", "SETFCAP", "SETGID",       "SETPCAP", "SETUID", "SYS_CHROOT"};
    std::vector<std::string> bad;
    std::set<std::string> caps;
    visit_containers(spec, [&](const json::object& c) {
        const json::object* sc = sc_of(c);
        const json::object* cap = sc ? obj_at(*sc, "capabilities") : nullptr;
        bool valid = true;
        for (const auto& a : strings_of(cap, "add"))
            if (!allowed.contains(a)) {
                valid = false;
                caps.insert(a);
            }
        if (!valid)
            bad.push_back(name_of(c));
    });
    if (bad.empty())
        return {};
    return forbid("non-default capabilities", setters("container", "containers", bad) +
                                                  " must not include " + join_quote(sorted(caps)) +
                                                  " in securityContext.capabilities.add");
}

// check_capabilities_restricted.go (restricted, v1.22+)
check_result capabilities_restricted(const json::object&, const json::object& spec, int) {
    std::vector<std::string> missing_drop, adding;
    std::set<std::string> caps;
    visit_containers(spec, [&](const json::object& c) {
        const json::object* sc = sc_of(c);
        const json::object* cap = sc ? obj_at(*sc, "capabilities") : nullptr;
        if (!cap) {
            missing_drop.push_back(name_of(c));
            return;
        }
        auto drop = strings_of(cap, "drop");
        if (std::find(drop.begin(), drop.end(), "ALL") == drop.end())
            missing_drop.push_back(name_of(c));
        bool forbidden = false;
        for (const auto& a : strings_of(cap, "add"))
            if (a != "NET_BIND_SERVICE") {
                forbidden = true;
                caps.insert(a);
            }
        if (forbidden)
            adding.push_back(name_of(c));
    });
    std::vector<std::string> details;
    if (!missing_drop.empty())
        details.push_back(setters("container", "containers", missing_drop) +
                          " must set securityContext.capabilities.drop=[\"ALL\"]");
    if (!adding.empty())
        details.push_back(setters("container", "containers", adding) + " must not include " +
                          join_quote(sorted(caps)) + " in securityContext.capabilities.add");
    if (details.empty())
        return {};
    return forbid("unrestricted capabilities", join(details, "; "));
}

// check_hostNamespaces.go (baseline, v1.0+)
check_result host_namespaces(const json::object&, const json::object& spec, int) {
    std::set<std::string> ns;
    for (const char* k : {"hostNetwork", "hostPID", "hostIPC"})
        if (is_true(&spec, k))
            ns.insert(std::string(k) + "=true");
    if (ns.empty())
        return {};
    return forbid("host namespaces", join(sorted(ns), ", "));
}

// check_hostPathVolumes.go (baseline, overlapping, v1.0+)
check_result host_path_volumes(const json::object&, const json::object& spec, int) {
    std::vector<std::string> bad;
    if (const json::array* vols = arr_at(spec, "volumes"))
        for (const auto& v : *vols)
            if (v.is_object() && v.get_object().contains("hostPath"))
                bad.push_back(name_of(v.get_object()));
    if (bad.empty())
        return {};
    return forbid("hostPath volumes", setters("volume", "volumes", bad));
}

// check_hostPorts.go (baseline, v1.0+)
check_result host_ports(const json::object&, const json::object& spec, int) {
    std::vector<std::string> bad;
    std::set<std::int64_t> ports;
    visit_containers(spec, [&](const json::object& c) {
        bool valid = true;
        if (const json::array* list = arr_at(c, "ports"))
            for (const auto& p : *list)
                if (p.is_object())
                    if (std::int64_t hp = int_at(p.get_object(), "hostPort", 0); hp != 0) {
                        valid = false;
                        ports.insert(hp);
                    }
        if (!valid)
            bad.push_back(name_of(c));
    });
    if (bad.empty())
        return {};
    // sets.NewString sorts the port numbers as strings.
    std::set<std::string> texts;
    for (auto p : ports)
        texts.insert(std::to_string(p));
    return forbid("hostPort", setters("container", "containers", bad) + " " +
                                  plural("uses", "use", bad.size()) + " " +
                                  plural("hostPort", "hostPorts", texts.size()) + " " +
                                  join(sorted(texts), ", "));
}

// check_privileged.go (baseline, v1.0+)
check_result privileged(const json::object&, const json::object& spec, int) {
    std::vector<std::string> bad;
    visit_containers(spec, [&](const json::object& c) {
        if (is_true(sc_of(c), "privileged"))
            bad.push_back(name_of(c));
    });
    if (bad.empty())
        return {};
    return forbid("privileged", setters("container", "containers", bad) +
                                    " must not set securityContext.privileged=true");
}

// check_procMount.go (baseline, v1.0+; the user-namespace relaxation is behind a feature gate
// that is off in v1.32)
check_result proc_mount(const json::object&, const json::object& spec, int) {
    std::vector<std::string> bad;
    std::set<std::string> types;
    visit_containers(spec, [&](const json::object& c) {
        const json::object* sc = sc_of(c);
        if (!sc || !sc->contains("procMount"))
            return;
        std::string t = str_at(*sc, "procMount");
        if (t != "Default") {
            bad.push_back(name_of(c));
            types.insert(t);
        }
    });
    if (bad.empty())
        return {};
    return forbid("procMount", setters("container", "containers", bad) +
                                   " must not set securityContext.procMount to " +
                                   join_quote(sorted(types)));
}

// check_restrictedVolumes.go (restricted, v1.0+)
check_result restricted_volumes(const json::object&, const json::object& spec, int) {
    static const std::set<std::string> allowed{"configMap", "csi",       "downwardAPI",
                                               "emptyDir",  "ephemeral", "persistentVolumeClaim",
                                               "projected", "secret"};
    static const std::vector<std::string> restricted{"hostPath",
                                                     "gcePersistentDisk",
                                                     "awsElasticBlockStore",
                                                     "gitRepo",
                                                     "nfs",
                                                     "iscsi",
                                                     "glusterfs",
                                                     "rbd",
                                                     "flexVolume",
                                                     "cinder",
                                                     "cephfs",
                                                     "flocker",
                                                     "fc",
                                                     "azureFile",
                                                     "vsphereVolume",
                                                     "quobyte",
                                                     "azureDisk",
                                                     "photonPersistentDisk",
                                                     "portworxVolume",
                                                     "scaleIO",
                                                     "storageos"};
    std::vector<std::string> bad;
    std::set<std::string> types;
    if (const json::array* vols = arr_at(spec, "volumes"))
        for (const auto& v : *vols) {
            if (!v.is_object())
                continue;
            const json::object& vo = v.get_object();
            bool ok = std::any_of(allowed.begin(), allowed.end(), [&](const std::string& k) {
                const json::value* s = vo.if_contains(k);
                return s && !s->is_null();
            });
            if (ok)
                continue;
            bad.push_back(name_of(vo));
            std::string type = "unknown";
            for (const auto& k : restricted)
                if (const json::value* s = vo.if_contains(k); s && !s->is_null()) {
                    type = k;
                    break;
                }
            types.insert(type);
        }
    if (bad.empty())
        return {};
    return forbid("restricted volume types",
                  setters("volume", "volumes", bad) + " " + plural("uses", "use", bad.size()) +
                      " " +
                      plural("restricted volume type", "restricted volume types", types.size()) +
                      " " + join_quote(sorted(types)));
}

// check_runAsNonRoot.go (restricted, v1.0+)
check_result run_as_non_root(const json::object&, const json::object& spec, int) {
    std::vector<std::string> bad_setters;
    bool pod_non_root = false;
    if (const json::object* psc = pod_sc(spec); psc && psc->contains("runAsNonRoot")) {
        if (is_true(psc, "runAsNonRoot"))
            pod_non_root = true;
        else
            bad_setters.push_back("pod");
    }
    std::vector<std::string> explicit_bad, implicit_bad;
    visit_containers(spec, [&](const json::object& c) {
        const json::object* sc = sc_of(c);
        if (sc && sc->contains("runAsNonRoot") && !sc->at("runAsNonRoot").is_null()) {
            if (!is_true(sc, "runAsNonRoot"))
                explicit_bad.push_back(name_of(c));
        } else if (!pod_non_root) {
            implicit_bad.push_back(name_of(c));
        }
    });
    if (!explicit_bad.empty())
        bad_setters.push_back(setters("container", "containers", explicit_bad));
    if (!bad_setters.empty())
        return forbid("runAsNonRoot != true",
                      join(bad_setters, " and ") +
                          " must not set securityContext.runAsNonRoot=false");
    if (!implicit_bad.empty())
        return forbid("runAsNonRoot != true", "pod or " +
                                                  setters("container", "containers", implicit_bad) +
                                                  " must set securityContext.runAsNonRoot=true");
    return {};
}

// check_runAsUser.go (restricted, v1.23+)
check_result run_as_user(const json::object&, const json::object& spec, int) {
    auto is_root = [](const json::object* sc) {
        const json::value* v = sc ? sc->if_contains("runAsUser") : nullptr;
        return v && v->is_number() && v->to_number<double>() == 0;
    };
    std::vector<std::string> bad_setters;
    if (is_root(pod_sc(spec)))
        bad_setters.push_back("pod");
    std::vector<std::string> bad;
    visit_containers(spec, [&](const json::object& c) {
        if (is_root(sc_of(c)))
            bad.push_back(name_of(c));
    });
    if (!bad.empty())
        bad_setters.push_back(setters("container", "containers", bad));
    if (bad_setters.empty())
        return {};
    return forbid("runAsUser=0", join(bad_setters, " and ") + " must not set runAsUser=0");
}

// check_seLinuxOptions.go (baseline, v1.0+; container_engine_t allowed from v1.31)
check_result se_linux_options(const json::object&, const json::object& spec, int minor) {
    std::set<std::string> allowed{"", "container_t", "container_init_t", "container_kvm_t"};
    if (minor >= 31)
        allowed.insert("container_engine_t");
    std::set<std::string> bad_types;
    bool set_user = false, set_role = false;
    auto valid = [&](const json::object* sc) {
        const json::object* o = sc ? obj_at(*sc, "seLinuxOptions") : nullptr;
        if (!o)
            return true;
        bool ok = true;
        if (std::string t = str_at(*o, "type"); !allowed.contains(t)) {
            ok = false;
            bad_types.insert(t);
        }
        if (!str_at(*o, "user").empty()) {
            ok = false;
            set_user = true;
        }
        if (!str_at(*o, "role").empty()) {
            ok = false;
            set_role = true;
        }
        return ok;
    };
    std::vector<std::string> bad_setters;
    if (!valid(pod_sc(spec)))
        bad_setters.push_back("pod");
    std::vector<std::string> bad;
    visit_containers(spec, [&](const json::object& c) {
        if (!valid(sc_of(c)))
            bad.push_back(name_of(c));
    });
    if (!bad.empty())
        bad_setters.push_back(setters("container", "containers", bad));
    if (bad_setters.empty())
        return {};
    std::vector<std::string> data;
    // As upstream: the user/role notes are only added next to a bad type.
    if (!bad_types.empty()) {
        data.push_back(std::string(plural("type", "types", bad_types.size())) + " " +
                       join_quote(sorted(bad_types)));
        if (set_user)
            data.push_back("user may not be set");
        if (set_role)
            data.push_back("role may not be set");
    }
    return forbid("seLinuxOptions",
                  join(bad_setters, " and ") +
                      " set forbidden securityContext.seLinuxOptions: " + join(data, "; "));
}

bool valid_seccomp(const std::string& t) { return t == "Localhost" || t == "RuntimeDefault"; }

const json::object* seccomp_of(const json::object* sc) {
    return sc ? obj_at(*sc, "seccompProfile") : nullptr;
}

// check_seccompProfile_baseline.go (baseline, overlapping): annotations before v1.19, the
// seccompProfile fields from v1.19.
check_result seccomp_baseline(const json::object& md, const json::object& spec, int minor) {
    if (minor < 19) {
        auto valid_annotation = [](const std::string& v) {
            return v == "runtime/default" || v == "docker/default" || v.starts_with("localhost/");
        };
        std::set<std::string> forbidden;
        const json::object* a = obj_at(md, "annotations");
        auto check = [&](const std::string& key) {
            if (const json::value* v = a ? a->if_contains(key) : nullptr) {
                std::string s = v->is_string() ? std::string(v->get_string()) : "";
                if (!valid_annotation(s))
                    forbidden.insert(key + "=" + go_quote(s));
            }
        };
        check("seccomp.security.alpha.kubernetes.io/pod");
        visit_containers(spec, [&](const json::object& c) {
            check("container.seccomp.security.alpha.kubernetes.io/" + name_of(c));
        });
        if (forbidden.empty())
            return {};
        return forbid("seccompProfile", std::string("forbidden ") +
                                            plural("annotation", "annotations", forbidden.size()) +
                                            " " + join(sorted(forbidden), ", "));
    }
    std::vector<std::string> bad_setters;
    std::set<std::string> bad_values;
    if (const json::object* p = seccomp_of(pod_sc(spec)); p && !valid_seccomp(str_at(*p, "type"))) {
        bad_setters.push_back("pod");
        bad_values.insert(str_at(*p, "type"));
    }
    std::vector<std::string> bad;
    visit_containers(spec, [&](const json::object& c) {
        if (const json::object* p = seccomp_of(sc_of(c)); p && !valid_seccomp(str_at(*p, "type"))) {
            bad.push_back(name_of(c));
            bad_values.insert(str_at(*p, "type"));
        }
    });
    if (!bad.empty())
        bad_setters.push_back(setters("container", "containers", bad));
    if (bad_setters.empty())
        return {};
    return forbid("seccompProfile", join(bad_setters, " and ") +
                                        " must not set securityContext.seccompProfile.type to " +
                                        join_quote(sorted(bad_values)));
}

// check_seccompProfile_restricted.go (restricted, v1.19+)
check_result seccomp_restricted(const json::object&, const json::object& spec, int) {
    std::vector<std::string> bad_setters;
    std::set<std::string> bad_values;
    bool pod_set = false;
    if (const json::object* p = seccomp_of(pod_sc(spec))) {
        if (valid_seccomp(str_at(*p, "type"))) {
            pod_set = true;
        } else {
            bad_setters.push_back("pod");
            bad_values.insert(str_at(*p, "type"));
        }
    }
    std::vector<std::string> explicit_bad, implicit_bad;
    visit_containers(spec, [&](const json::object& c) {
        if (const json::object* p = seccomp_of(sc_of(c))) {
            if (!valid_seccomp(str_at(*p, "type"))) {
                explicit_bad.push_back(name_of(c));
                bad_values.insert(str_at(*p, "type"));
            }
        } else if (!pod_set) {
            implicit_bad.push_back(name_of(c));
        }
    });
    if (!explicit_bad.empty())
        bad_setters.push_back(setters("container", "containers", explicit_bad));
    if (!bad_setters.empty())
        return forbid("seccompProfile",
                      join(bad_setters, " and ") +
                          " must not set securityContext.seccompProfile.type to " +
                          join_quote(sorted(bad_values)));
    if (!implicit_bad.empty())
        return forbid("seccompProfile",
                      "pod or " + setters("container", "containers", implicit_bad) +
                          " must set securityContext.seccompProfile.type to \"RuntimeDefault\" or "
                          "\"Localhost\"");
    return {};
}

// check_sysctls.go (baseline; the safe set grows in v1.27, v1.29 and v1.32)
check_result sysctls(const json::object&, const json::object& spec, int minor) {
    std::set<std::string> allowed{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range",
                                  "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range",
                                  "net.ipv4.ip_unprivileged_port_start"};
    if (minor >= 27)
        allowed.insert("net.ipv4.ip_local_reserved_ports");
    if (minor >= 29)
        allowed.insert({"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout",
                        "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"});
    if (minor >= 32)
        allowed.insert({"net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"});
    std::vector<std::string> bad;
    if (const json::object* psc = pod_sc(spec))
        if (const json::array* list = arr_at(*psc, "sysctls"))
            for (const auto& s : *list)
                if (s.is_object())
                    if (std::string n = str_at(s.get_object(), "name"); !allowed.contains(n))
                        bad.push_back(n);
    if (bad.empty())
        return {};
    return forbid("forbidden sysctls", join(bad, ", "));
}

// check_windowsHostProcess.go (baseline, v1.0+)
check_result windows_host_process(const json::object&, const json::object& spec, int) {
    auto host_process = [](const json::object* sc) {
        const json::object* w = sc ? obj_at(*sc, "windowsOptions") : nullptr;
        return is_true(w, "hostProcess");
    };
    std::vector<std::string> bad;
    visit_containers(spec, [&](const json::object& c) {
        if (host_process(sc_of(c)))
            bad.push_back(name_of(c));
    });
    std::vector<std::string> bad_setters;
    if (host_process(pod_sc(spec)))
        bad_setters.push_back("pod");
    if (!bad.empty())
        bad_setters.push_back(setters("container", "containers", bad));
    if (bad_setters.empty())
        return {};
    return forbid("hostProcess",
                  join(bad_setters, " and ") +
                      " must not set securityContext.windowsOptions.hostProcess=true");
}

struct check {
    psa_level level;
    bool overlap; ///< a baseline check a restricted one supersedes (only run at baseline)
    int min_minor;
    check_fn fn;
};

/// In the order of upstream's file names (its registration order).
const std::vector<check>& checks() {
    static const std::vector<check> all{
        {psa_level::restricted, false, 8, allow_privilege_escalation},
        {psa_level::baseline, false, 0, app_armor_profile},
        {psa_level::baseline, true, 0, capabilities_baseline},
        {psa_level::restricted, false, 22, capabilities_restricted},
        {psa_level::baseline, false, 0, host_namespaces},
        {psa_level::baseline, true, 0, host_path_volumes},
        {psa_level::baseline, false, 0, host_ports},
        {psa_level::baseline, false, 0, privileged},
        {psa_level::baseline, false, 0, proc_mount},
        {psa_level::restricted, false, 0, restricted_volumes},
        {psa_level::restricted, false, 0, run_as_non_root},
        {psa_level::restricted, false, 23, run_as_user},
        {psa_level::baseline, false, 0, se_linux_options},
        {psa_level::baseline, true, 0, seccomp_baseline},
        {psa_level::restricted, false, 19, seccomp_restricted},
        {psa_level::baseline, false, 0, sysctls},
        {psa_level::baseline, false, 0, windows_host_process},
    };
    return all;
}

const char* level_name(psa_level l) {
    switch (l) {
    case psa_level::privileged:
        return "privileged";
    case psa_level::baseline:
        return "baseline";
    case psa_level::restricted:
        return "restricted";
    }
    return "";
}

std::optional<psa_level> parse_level(const std::string& s) {
    if (s == "privileged")
        return psa_level::privileged;
    if (s == "baseline")
        return psa_level::baseline;
    if (s == "restricted")
        return psa_level::restricted;
    return std::nullopt;
}

/// "latest" → -1; "v1.x" (x without leading zeros, "v1.0" allowed) → x; else nullopt.
std::optional<int> parse_version(const std::string& s) {
    if (s == "latest")
        return -1;
    if (!s.starts_with("v1.") || s.size() == 3 || s.size() > 12)
        return std::nullopt;
    std::string digits = s.substr(3);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return std::nullopt;
    if (digits.size() > 1 && digits[0] == '0')
        return std::nullopt;
    return std::stoi(digits);
}

std::map<std::string, std::string> psa_labels(const json::object* labels) {
    std::map<std::string, std::string> out;
    if (labels)
        for (const auto& [k, v] : *labels)
            if (std::string_view(k).starts_with(label_prefix) && v.is_string())
                out[std::string(k)] = std::string(v.get_string());
    return out;
}

} // namespace

std::string psa_level_version::text() const {
    return std::string(level_name(level)) + ":" +
           (minor < 0 ? std::string("latest") : "v1." + std::to_string(minor));
}

psa_policy psa_policy_from_labels(const json::object* labels, field_errors* errors) {
    psa_policy p; // the server default: privileged:latest everywhere
    const auto l = psa_labels(labels);
    auto err = [&](const std::string& key, const std::string& value, const char* detail) {
        if (errors)
            errors->push_back(
                invalid_error("metadata.labels[" + key + "]", go_quote(value), detail));
    };
    const char* level_detail = "must be one of privileged, baseline, restricted";
    const char* version_detail = "must be \"latest\" or \"v1.x\"";

    struct mode {
        const char* name;
        psa_level_version* lv;
        psa_level on_error;
    };

    for (mode m : {mode{"enforce", &p.enforce, psa_level::restricted},
                   mode{"audit", &p.audit, psa_level::privileged},
                   mode{"warn", &p.warn, psa_level::privileged}}) {
        std::string key = std::string(label_prefix) + m.name;
        if (auto it = l.find(key); it != l.end()) {
            auto level = parse_level(it->second);
            m.lv->level = level.value_or(m.on_error);
            if (!level)
                err(key, it->second, level_detail);
        }
        if (auto it = l.find(key + "-version"); it != l.end()) {
            auto v = parse_version(it->second);
            m.lv->minor = v.value_or(-1);
            if (!v)
                err(key + "-version", it->second, version_detail);
        }
    }
    return p;
}

std::string psa_result::forbidden_detail() const {
    std::string s;
    for (std::size_t i = 0; i < reasons.size(); ++i) {
        s += reasons[i];
        if (!details[i].empty())
            s += " (" + details[i] + ")";
        if (i + 1 != reasons.size())
            s += ", ";
    }
    return s;
}

std::string psa_result::forbidden_reason() const { return join(reasons, ", "); }

psa_result psa_evaluate(const psa_level_version& lv, const json::object& metadata,
                        const json::object& spec) {
    psa_result r;
    if (lv.level == psa_level::privileged)
        return r;
    int minor = lv.minor < 0 || lv.minor > max_minor ? max_minor : lv.minor;
    auto run = [&](const check& c) {
        if (c.min_minor > minor)
            return;
        check_result res = c.fn(metadata, spec, minor);
        if (!res.allowed) {
            r.reasons.push_back(res.reason.empty() ? "unknown forbidden reason" : res.reason);
            r.details.push_back(res.detail);
        }
    };
    for (const auto& c : checks())
        if (c.level == psa_level::baseline && !c.overlap)
            run(c);
    for (const auto& c : checks())
        if (lv.level == psa_level::baseline ? (c.level == psa_level::baseline && c.overlap)
                                            : c.level == psa_level::restricted)
            run(c);
    return r;
}

psa_decision psa_admit(const json::object* ns_labels, const json::object& metadata,
                       const json::object& spec, bool enforce) {
    psa_decision d;
    field_errors errs;
    psa_policy p = psa_policy_from_labels(ns_labels, &errs);
    if (!errs.empty()) {
        std::vector<std::string> texts;
        for (const auto& e : errs)
            texts.push_back(e.text());
        d.policy_error = "Failed to parse policy: " +
                         (texts.size() == 1 ? texts[0] : "[" + join(texts, ", ") + "]");
    }
    std::map<std::string, psa_result> cache;
    auto eval = [&](const psa_level_version& lv) -> const psa_result& {
        auto it = cache.find(lv.text());
        if (it == cache.end())
            it = cache.emplace(lv.text(), psa_evaluate(lv, metadata, spec)).first;
        return it->second;
    };
    if (enforce) {
        const psa_result& r = eval(p.enforce);
        if (!r.allowed())
            d.forbidden =
                "violates PodSecurity " + go_quote(p.enforce.text()) + ": " + r.forbidden_detail();
    }
    if (const psa_result& r = eval(p.audit); !r.allowed())
        d.audit =
            "would violate PodSecurity " + go_quote(p.audit.text()) + ": " + r.forbidden_detail();
    if (d.forbidden.empty())
        if (const psa_result& r = eval(p.warn); !r.allowed())
            d.warnings.push_back("would violate PodSecurity " + go_quote(p.warn.text()) + ": " +
                                 r.forbidden_detail());
    return d;
}

field_errors psa_namespace_errors(const json::object* new_labels, const json::object* old_labels,
                                  bool update) {
    field_errors errs;
    (void)psa_policy_from_labels(new_labels, &errs);
    if (errs.empty() || !update)
        return errs;
    field_errors old_errs;
    (void)psa_policy_from_labels(old_labels, &old_errs);
    auto texts = [](const field_errors& e) {
        std::vector<std::string> t;
        for (const auto& x : e)
            t.push_back(x.text());
        return t;
    };
    // Upstream rejects an update only when its label errors are not the ones already there.
    if (!old_errs.empty() && texts(old_errs) == texts(errs))
        return {};
    return errs;
}

std::vector<std::string> psa_namespace_update_warnings(const std::string& ns,
                                                       const json::object* new_labels,
                                                       const json::object* old_labels,
                                                       const std::vector<json::object>& pods) {
    psa_policy np = psa_policy_from_labels(new_labels, nullptr);
    psa_policy op = psa_policy_from_labels(old_labels, nullptr);
    if (np.enforce == op.enforce || np.enforce.level == psa_level::privileged)
        return {};
    auto rank = [](psa_level l) { return static_cast<int>(l); };
    if (np.enforce.minor == op.enforce.minor && rank(np.enforce.level) <= rank(op.enforce.level))
        return {};

    struct count {
        std::string first;
        int n = 0;
    };

    std::vector<std::string> order;
    std::map<std::string, count> by_reason;
    for (const auto& pod : pods) {
        const json::object* md = obj_at(pod, "metadata");
        const json::object* spec = obj_at(pod, "spec");
        if (!md || !spec)
            continue;
        psa_result r = psa_evaluate(np.enforce, *md, *spec);
        if (r.allowed())
            continue;
        std::string w = r.forbidden_reason();
        std::string name = str_at(*md, "name");
        auto [it, fresh] = by_reason.try_emplace(w, count{name, 0});
        if (fresh)
            order.push_back(w);
        else if (name < it->second.first)
            it->second.first = name;
        ++it->second.n;
    }
    if (order.empty())
        return {};
    std::vector<std::string> out{"existing pods in namespace " + go_quote(ns) +
                                 " violate the new PodSecurity enforce level " +
                                 go_quote(np.enforce.text())};
    std::vector<std::string> lines;
    for (const auto& w : order) {
        const count& c = by_reason[w];
        if (c.n == 1)
            lines.push_back(c.first + ": " + w);
        else if (c.n == 2)
            lines.push_back(c.first + " (and 1 other pod): " + w);
        else
            lines.push_back(c.first + " (and " + std::to_string(c.n - 1) + " other pods): " + w);
    }
    std::sort(lines.begin(), lines.end());
    out.insert(out.end(), lines.begin(), lines.end());
    return out;
}

} // namespace podpipe::kubesim
