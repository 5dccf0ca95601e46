#include "tools/kubesim/validation.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>

namespace podpipe::kubesim {
namespace {

bool is_lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }

bool is_alnum(char c) { return is_lower_alnum(c) || (c >= 'A' && c <= 'Z'); }

// [a-z0-9]([-a-z0-9]*[a-z0-9])?
bool dns_label_syntax(std::string_view v) {
    if (v.empty() || !is_lower_alnum(v.front()) || !is_lower_alnum(v.back()))
        return false;
    return std::all_of(v.begin(), v.end(), [](char c) { return is_lower_alnum(c) || c == '-'; });
}

bool dns_subdomain_syntax(std::string_view v) {
    std::size_t start = 0;
    while (true) {
        auto dot = v.find('.', start);
        if (!dns_label_syntax(
                v.substr(start, dot == std::string_view::npos ? v.npos : dot - start)))
            return false;
        if (dot == std::string_view::npos)
            return true;
        start = dot + 1;
    }
}

// ([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]
bool qualified_syntax(std::string_view v) {
    if (v.empty() || !is_alnum(v.front()) || !is_alnum(v.back()))
        return false;
    return std::all_of(v.begin(), v.end(),
                       [](char c) { return is_alnum(c) || c == '-' || c == '_' || c == '.'; });
}

std::string max_len(std::size_t n) {
    return "must be no more than " + std::to_string(n) + " characters";
}

std::string regex_error(std::string msg, std::string_view fmt,
                        std::initializer_list<const char*> examples) {
    msg += " (e.g. ";
    bool first = true;
    for (const char* e : examples) {
        if (!first)
            msg += " or ";
        first = false;
        msg += "'" + std::string(e) + "', ";
    }
    return msg + "regex used for validation is '" + std::string(fmt) + "')";
}

constexpr std::string_view label_fmt = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
constexpr std::string_view subdomain_fmt =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
constexpr std::string_view qname_fmt = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
constexpr const char* qname_msg = "must consist of alphanumeric characters, '-', '_' or '.', and "
                                  "must start and end with an alphanumeric character";

std::string join_quoted(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v)
        s += (s.empty() ? "" : ", ") + go_quote(x);
    return s;
}

std::string idx(const std::string& path, std::size_t i) {
    return path + "[" + std::to_string(i) + "]";
}

std::string key(const std::string& path, std::string_view k) {
    return path + "[" + std::string(k) + "]";
}

void add_all(field_errors& out, const std::string& field, std::string_view value,
             const std::vector<std::string>& msgs) {
    for (const auto& m : msgs)
        out.push_back(invalid_error(field, go_quote(value), m));
}

/// A string field; non-strings (absent, null) read as "" like a Go zero value.
std::string s(const json::object& o, std::string_view k) { return str_at(o, k); }

const json::array& arr(const json::object& o, std::string_view k) {
    static const json::array empty;
    const json::array* a = arr_at(o, k);
    return a ? *a : empty;
}

/// The printed form of a JSON scalar as the Go type would print it (%v for ints, %q strings).
std::string printed(const json::value& v) {
    if (v.is_string())
        return go_quote(v.get_string());
    if (v.is_int64())
        return std::to_string(v.get_int64());
    if (v.is_uint64())
        return std::to_string(v.get_uint64());
    return json::serialize(v);
}

/// Quantity text as JSON holds it: a string, or a bare number.
std::string quantity_text(const json::value& v) {
    if (v.is_string())
        return std::string(v.get_string());
    if (v.is_null())
        return "0";
    return json::serialize(v);
}

// ObjectMeta labels and annotations (apimachinery metav1 validation).
void validate_labels_annotations(const json::object& md, field_errors& out) {
    if (const json::object* labels = obj_at(md, "labels")) {
        std::map<std::string, std::string> sorted;
        for (const auto& [k, v] : *labels)
            sorted[std::string(k)] = v.is_string() ? std::string(v.get_string()) : "";
        for (const auto& [k, v] : sorted) {
            add_all(out, "metadata.labels", k, qualified_name_errors(k));
            add_all(out, "metadata.labels", v, label_value_errors(v));
        }
    }
    if (const json::object* ann = obj_at(md, "annotations")) {
        std::map<std::string, std::string> sorted;
        for (const auto& [k, v] : *ann)
            sorted[std::string(k)] = v.is_string() ? std::string(v.get_string()) : "";
        std::size_t total = 0;
        for (const auto& [k, v] : sorted) {
            std::string lower = k;
            std::transform(lower.begin(), lower.end(), lower.begin(),
                           [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
            add_all(out, "metadata.annotations", k, qualified_name_errors(lower));
            total += k.size() + v.size();
        }
        if (total > 256 * 1024)
            out.push_back(too_long_error("metadata.annotations", 256 * 1024));
    }
}

const std::set<std::string>& volume_source_keys() {
    static const std::set<std::string> keys = {"hostPath",
                                               "emptyDir",
                                               "gcePersistentDisk",
                                               "awsElasticBlockStore",
                                               "gitRepo",
                                               "secret",
                                               "nfs",
                                               "iscsi",
                                               "glusterfs",
                                               "persistentVolumeClaim",
                                               "rbd",
                                               "flexVolume",
                                               "cinder",
                                               "cephfs",
                                               "flocker",
                                               "downwardAPI",
                                               "fc",
                                               "azureFile",
                                               "configMap",
                                               "vsphereVolume",
                                               "quobyte",
                                               "azureDisk",
                                               "photonPersistentDisk",
                                               "projected",
                                               "portworxVolume",
                                               "scaleIO",
                                               "storageos",
                                               "csi",
                                               "ephemeral",
                                               "image"};
    return keys;
}

/// ValidateVolumes: names (DNS-1123 label, unique), exactly one source, required members.
/// Returns the names of valid volumes (mounts of others are "Not found", as upstream).
std::set<std::string> validate_volumes(const json::array& vols, field_errors& out) {
    std::set<std::string> valid;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < vols.size(); ++i) {
        std::string path = idx("spec.volumes", i);
        const json::object* v = vols[i].if_object();
        static const json::object empty;
        const json::object& vol = v ? *v : empty;
        field_errors el;
        std::vector<std::string> sources;
        for (const auto& [k, val] : vol)
            if (volume_source_keys().count(std::string(k)) && !val.is_null())
                sources.emplace_back(k);
        if (sources.empty()) {
            el.push_back(required_error(path, "must specify a volume type"));
        } else if (sources.size() > 1) {
            el.push_back(forbidden_error(path + "." + sources[1],
                                         "may not specify more than 1 volume type"));
        } else {
            const std::string& src = sources[0];
            const json::object* so = obj_at(vol, src);
            static const json::object none;
            const json::object& so_ref = so ? *so : none;
            if (src == "persistentVolumeClaim" && s(so_ref, "claimName").empty())
                el.push_back(required_error(path + ".persistentVolumeClaim.claimName"));
            if (src == "secret" && s(so_ref, "secretName").empty())
                el.push_back(required_error(path + ".secret.secretName"));
            if (src == "hostPath" && s(so_ref, "path").empty())
                el.push_back(required_error(path + ".hostPath.path"));
            if (src == "configMap" && s(so_ref, "name").empty())
                el.push_back(required_error(path + ".configMap.name"));
        }
        std::string name = s(vol, "name");
        if (name.empty())
            el.push_back(required_error(path + ".name"));
        else
            add_all(el, path + ".name", name, dns1123_label_errors(name));
        if (seen.count(name))
            el.push_back(duplicate_error(path + ".name", go_quote(name)));
        if (el.empty()) {
            seen.insert(name);
            valid.insert(name);
        } else {
            out.insert(out.end(), el.begin(), el.end());
        }
    }
    return valid;
}

bool is_standard_container_resource(std::string_view n) {
    return n == "cpu" || n == "memory" || n == "ephemeral-storage" || n.starts_with("hugepages-");
}

void validate_resources(const json::object& c, const std::string& path, field_errors& out) {
    const json::object* res = obj_at(c, "resources");
    if (!res)
        return;
    std::map<std::string, quantity> limits;
    auto check = [&](const char* which, std::map<std::string, quantity>* keep) {
        const json::object* m = obj_at(*res, which);
        if (!m)
            return;
        std::map<std::string, std::string> sorted;
        for (const auto& [k, v] : *m)
            sorted[std::string(k)] = quantity_text(v);
        for (const auto& [name, text] : sorted) {
            std::string fp = key(path + ".resources." + which, name);
            if (name.find('/') == std::string::npos && !is_standard_container_resource(name))
                out.push_back(invalid_error(fp, go_quote(name),
                                            "must be a standard resource for containers"));
            std::string err;
            auto q = parse_quantity(text, &err);
            if (!q)
                continue; // a decode error, reported before validation
            if (q->value < 0)
                out.push_back(
                    invalid_error(fp, go_quote(q->text), "must be greater than or equal to 0"));
            if (keep)
                (*keep)[name] = *q;
            else if (auto l = limits.find(name); l != limits.end() && q->value > l->second.value)
                out.push_back(invalid_error(path + ".resources.requests", go_quote(q->text),
                                            "must be less than or equal to " + name + " limit of " +
                                                l->second.text));
        }
    };
    check("limits", &limits);
    check("requests", nullptr);
}

/// validateContainerCommon for one (init) container.
void validate_container(const json::object& c, const std::string& path,
                        const std::set<std::string>& volumes, field_errors& out) {
    std::string name = s(c, "name");
    if (name.empty())
        out.push_back(required_error(path + ".name"));
    else
        add_all(out, path + ".name", name, dns1123_label_errors(name));
    if (s(c, "image").empty())
        out.push_back(required_error(path + ".image"));
    std::string tmp = s(c, "terminationMessagePolicy");
    if (tmp.empty())
        out.push_back(required_error(path + ".terminationMessagePolicy"));
    else if (tmp != "File" && tmp != "FallbackToLogsOnError")
        out.push_back(not_supported_error(path + ".terminationMessagePolicy", go_quote(tmp),
                                          {"File", "FallbackToLogsOnError"}));
    // validateContainerPorts
    std::set<std::string> port_names;
    const json::array& ports = arr(c, "ports");
    for (std::size_t i = 0; i < ports.size(); ++i) {
        std::string pp = idx(path + ".ports", i);
        static const json::object empty;
        const json::object& p = ports[i].is_object() ? ports[i].get_object() : empty;
        std::string pname = s(p, "name");
        if (!pname.empty()) {
            std::vector<std::string> msgs;
            if (pname.size() > 15)
                msgs.push_back(max_len(15));
            if (!std::all_of(pname.begin(), pname.end(),
                             [](char ch) { return is_lower_alnum(ch) || ch == '-'; }))
                msgs.push_back(
                    "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
            if (std::none_of(pname.begin(), pname.end(),
                             [](char ch) { return ch >= 'a' && ch <= 'z'; }))
                msgs.push_back("must contain at least one letter (a-z)");
            if (pname.find("--") != std::string::npos)
                msgs.push_back("must not contain consecutive hyphens");
            if (pname.front() == '-' || pname.back() == '-')
                msgs.push_back("must not begin or end with a hyphen");
            if (!msgs.empty())
                add_all(out, pp + ".name", pname, msgs);
            else if (!port_names.insert(pname).second)
                out.push_back(duplicate_error(pp + ".name", go_quote(pname)));
        }
        std::int64_t cp = int_at(p, "containerPort", 0);
        if (cp == 0)
            out.push_back(required_error(pp + ".containerPort"));
        else if (cp < 1 || cp > 65535)
            out.push_back(invalid_error(pp + ".containerPort", std::to_string(cp),
                                        "must be between 1 and 65535, inclusive"));
        std::int64_t hp = int_at(p, "hostPort", 0);
        if (hp != 0 && (hp < 1 || hp > 65535))
            out.push_back(invalid_error(pp + ".hostPort", std::to_string(hp),
                                        "must be between 1 and 65535, inclusive"));
        std::string proto = p.contains("protocol") ? s(p, "protocol") : "TCP";
        if (proto.empty())
            out.push_back(required_error(pp + ".protocol"));
        else if (proto != "TCP" && proto != "UDP" && proto != "SCTP")
            out.push_back(
                not_supported_error(pp + ".protocol", go_quote(proto), {"SCTP", "TCP", "UDP"}));
    }
    // ValidateEnv (RelaxedEnvironmentVariableValidation is beta and on in 1.32)
    const json::array& env = arr(c, "env");
    for (std::size_t i = 0; i < env.size(); ++i) {
        std::string ep = idx(path + ".env", i);
        static const json::object empty;
        const json::object& e = env[i].is_object() ? env[i].get_object() : empty;
        std::string ename = s(e, "name");
        if (ename.empty()) {
            out.push_back(required_error(ep + ".name"));
        } else if (std::any_of(ename.begin(), ename.end(), [](char ch) {
                       auto u = static_cast<unsigned char>(ch);
                       return u < 0x20 || u > 0x7e || ch == '=';
                   })) {
            out.push_back(invalid_error(ep + ".name", go_quote(ename),
                                        "a valid environment variable name must consist only of "
                                        "printable ASCII characters other than '='"));
        }
        if (const json::object* vf = obj_at(e, "valueFrom")) {
            int n = 0;
            for (const char* k :
                 {"fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef"})
                n += vf->contains(k) && !vf->at(k).is_null();
            if (n == 0)
                out.push_back(invalid_error(ep + ".valueFrom", "\"\"",
                                            "must specify one of: `fieldRef`, `resourceFieldRef`, "
                                            "`configMapKeyRef` or `secretKeyRef`"));
            else if (n > 1)
                out.push_back(
                    invalid_error(ep + ".valueFrom", "\"\"",
                                  "may not have more than one field specified at a time"));
            else if (!s(e, "value").empty())
                out.push_back(invalid_error(ep + ".valueFrom", "\"\"",
                                            "may not be specified when `value` is not empty"));
        }
    }
    // ValidateVolumeMounts
    std::set<std::string> mount_points;
    const json::array& mounts = arr(c, "volumeMounts");
    for (std::size_t i = 0; i < mounts.size(); ++i) {
        std::string mp = idx(path + ".volumeMounts", i);
        static const json::object empty;
        const json::object& m = mounts[i].is_object() ? mounts[i].get_object() : empty;
        std::string vname = s(m, "name");
        if (vname.empty())
            out.push_back(required_error(mp + ".name"));
        if (!volumes.count(vname))
            out.push_back(not_found_error(mp + ".name", go_quote(vname)));
        std::string at = s(m, "mountPath");
        if (at.empty())
            out.push_back(required_error(mp + ".mountPath"));
        if (mount_points.count(at))
            out.push_back(invalid_error(mp + ".mountPath", go_quote(at), "must be unique"));
        mount_points.insert(at);
        std::string sub = s(m, "subPath");
        if (!sub.empty()) {
            if (sub.front() == '/')
                out.push_back(invalid_error(path + ".volumeMounts.subPath", go_quote(sub),
                                            "must be a relative path"));
            std::size_t start = 0;
            while (start <= sub.size()) {
                auto slash = sub.find('/', start);
                if (sub.substr(start, slash == std::string::npos ? sub.npos : slash - start) ==
                    "..") {
                    out.push_back(invalid_error(path + ".volumeMounts.subPath", go_quote(sub),
                                                "must not contain '..'"));
                    break;
                }
                if (slash == std::string::npos)
                    break;
                start = slash + 1;
            }
        }
    }
    std::string pull = s(c, "imagePullPolicy");
    if (pull.empty())
        out.push_back(required_error(path + ".imagePullPolicy"));
    else if (pull != "Always" && pull != "IfNotPresent" && pull != "Never")
        out.push_back(not_supported_error(path + ".imagePullPolicy", go_quote(pull),
                                          {"Always", "IfNotPresent", "Never"}));
    validate_resources(c, path, out);
}

void validate_quantities(const json::object& c, std::string& error) {
    const json::object* res = obj_at(c, "resources");
    if (!res)
        return;
    for (const char* which : {"limits", "requests"})
        if (const json::object* m = obj_at(*res, which))
            for (const auto& [k, v] : *m)
                if (error.empty() && !parse_quantity(quantity_text(v), &error))
                    return;
}

} // namespace

std::string go_quote(std::string_view in) {
    std::string out = "\"";
    for (char ch : in) {
        auto u = static_cast<unsigned char>(ch);
        switch (ch) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\t':
            out += "\\t";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\a':
            out += "\\a";
            break;
        case '\b':
            out += "\\b";
            break;
        case '\f':
            out += "\\f";
            break;
        case '\v':
            out += "\\v";
            break;
        default:
            if (u < 0x20 || u == 0x7f) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\x%02x", u);
                out += buf;
            } else {
                out += ch; // printable ASCII and UTF-8 bytes (kept as Go keeps printable runes)
            }
        }
    }
    return out + "\"";
}

field_error required_error(std::string field, std::string_view detail) {
    std::string body = "Required value";
    if (!detail.empty())
        body += ": " + std::string(detail);
    return {"FieldValueRequired", std::move(field), body};
}

field_error invalid_error(std::string field, std::string_view value, std::string_view detail) {
    std::string body = "Invalid value: " + std::string(value);
    if (!detail.empty())
        body += ": " + std::string(detail);
    return {"FieldValueInvalid", std::move(field), body};
}

field_error not_supported_error(std::string field, std::string_view value,
                                const std::vector<std::string>& supported) {
    std::string body = "Unsupported value: " + std::string(value);
    if (!supported.empty())
        body += ": supported values: " + join_quoted(supported);
    return {"FieldValueNotSupported", std::move(field), body};
}

field_error duplicate_error(std::string field, std::string_view value) {
    return {"FieldValueDuplicate", std::move(field), "Duplicate value: " + std::string(value)};
}

field_error not_found_error(std::string field, std::string_view value) {
    return {"FieldValueNotFound", std::move(field), "Not found: " + std::string(value)};
}

field_error forbidden_error(std::string field, std::string_view detail) {
    return {"FieldValueForbidden", std::move(field), "Forbidden: " + std::string(detail)};
}

field_error too_long_error(std::string field, std::size_t max_bytes) {
    return {"FieldValueTooLong", std::move(field),
            "Too long: must have at most " + std::to_string(max_bytes) + " bytes"};
}

json::object invalid_status(std::string_view kind, std::string_view name, const field_errors& errs,
                            std::string_view group) {
    json::array causes;
    std::vector<std::string> texts;
    for (const auto& e : errs) {
        causes.push_back(json::object{{"reason", e.type}, {"message", e.body}, {"field", e.field}});
        std::string t = e.text();
        if (std::find(texts.begin(), texts.end(), t) == texts.end())
            texts.push_back(std::move(t));
    }
    std::string qualified =
        group.empty() ? std::string(kind) : std::string(kind) + "." + std::string(group);
    std::string msg = qualified + " " + go_quote(name) + " is invalid";
    if (texts.size() == 1) {
        msg += ": " + texts[0];
    } else if (!texts.empty()) {
        msg += ": [";
        for (std::size_t i = 0; i < texts.size(); ++i)
            msg += (i ? ", " : "") + texts[i];
        msg += "]";
    }
    json::object details;
    if (!name.empty())
        details["name"] = name;
    if (!group.empty())
        details["group"] = group;
    details["kind"] = kind;
    details["causes"] = std::move(causes);
    return status_failure(422, "Invalid", msg, std::move(details));
}

std::vector<std::string> dns1123_label_errors(std::string_view v) {
    std::vector<std::string> errs;
    if (v.size() > 63)
        errs.push_back(max_len(63));
    if (!dns_label_syntax(v)) {
        if (dns_subdomain_syntax(v))
            errs.push_back("must not contain dots");
        else
            errs.push_back(regex_error("a lowercase RFC 1123 label must consist of lower case "
                                       "alphanumeric characters or '-', and must start and end "
                                       "with an alphanumeric character",
                                       label_fmt, {"my-name", "123-abc"}));
    }
    return errs;
}

std::vector<std::string> dns1123_subdomain_errors(std::string_view v) {
    std::vector<std::string> errs;
    if (v.size() > 253)
        errs.push_back(max_len(253));
    if (!dns_subdomain_syntax(v))
        errs.push_back(regex_error("a lowercase RFC 1123 subdomain must consist of lower case "
                                   "alphanumeric characters, '-' or '.', and must start and end "
                                   "with an alphanumeric character",
                                   subdomain_fmt, {"example.com"}));
    return errs;
}

std::vector<std::string> qualified_name_errors(std::string_view v) {
    std::vector<std::string> errs;
    std::string_view name = v;
    auto slash = v.find('/');
    if (slash != std::string_view::npos) {
        if (v.find('/', slash + 1) != std::string_view::npos) {
            errs.push_back("a qualified name " +
                           regex_error(qname_msg, qname_fmt, {"MyName", "my.name", "123-abc"}) +
                           " with an optional DNS subdomain prefix and '/' (e.g. "
                           "'example.com/MyName')");
            return errs;
        }
        std::string_view prefix = v.substr(0, slash);
        name = v.substr(slash + 1);
        if (prefix.empty())
            errs.push_back("prefix part must be non-empty");
        else
            for (const auto& m : dns1123_subdomain_errors(prefix))
                errs.push_back("prefix part " + m);
    }
    if (name.empty())
        errs.push_back("name part must be non-empty");
    else if (name.size() > 63)
        errs.push_back("name part " + max_len(63));
    if (!qualified_syntax(name))
        errs.push_back("name part " +
                       regex_error(qname_msg, qname_fmt, {"MyName", "my.name", "123-abc"}));
    return errs;
}

std::vector<std::string> label_value_errors(std::string_view v) {
    std::vector<std::string> errs;
    if (v.size() > 63)
        errs.push_back(max_len(63));
    if (!v.empty() && !qualified_syntax(v))
        errs.push_back(regex_error("a valid label must be an empty string or consist of "
                                   "alphanumeric characters, '-', '_' or '.', and must start and "
                                   "end with an alphanumeric character",
                                   "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?",
                                   {"MyValue", "my_value", "12345"}));
    return errs;
}

std::vector<std::string> config_map_key_errors(std::string_view v) {
    std::vector<std::string> errs;
    if (v.size() > 253)
        errs.push_back(max_len(253));
    if (v.empty() || !std::all_of(v.begin(), v.end(), [](char c) {
            return is_alnum(c) || c == '-' || c == '_' || c == '.';
        }))
        errs.push_back(regex_error("a valid config key must consist of alphanumeric characters, "
                                   "'-', '_' or '.'",
                                   "[-._a-zA-Z0-9]+", {"key.name", "KEY_NAME", "key-name"}));
    if (v == ".")
        errs.push_back("must not be '.'");
    else if (v == "..")
        errs.push_back("must not be '..'");
    else if (v.starts_with(".."))
        errs.push_back("must not start with '..'");
    return errs;
}

std::optional<quantity> parse_quantity(std::string_view str, std::string* error) {
    static const std::string format_wrong = "quantities must match the regular expression "
                                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    // Trimmed as Quantity.UnmarshalJSON trims.
    while (!str.empty() && (str.front() == ' ' || str.front() == '\t' || str.front() == '\n'))
        str.remove_prefix(1);
    while (!str.empty() && (str.back() == ' ' || str.back() == '\t' || str.back() == '\n'))
        str.remove_suffix(1);
    auto fail = [&](const std::string& e) -> std::optional<quantity> {
        if (error)
            *error = e;
        return std::nullopt;
    };
    if (str.empty())
        return fail(format_wrong);
    auto digit = [](char c) { return c >= '0' && c <= '9'; };
    std::size_t pos = 0, end = str.size();
    bool negative = false;
    if (str[0] == '-' || str[0] == '+') {
        negative = str[0] == '-';
        ++pos;
    }
    std::size_t num_start = pos;
    while (pos < end && digit(str[pos]))
        ++pos;
    std::string number(str.substr(num_start, pos - num_start));
    if (pos < end && str[pos] == '.') {
        ++pos;
        std::size_t d = pos;
        while (pos < end && digit(str[pos]))
            ++pos;
        number += "." + std::string(str.substr(d, pos - d));
    }
    std::size_t suffix_start = pos;
    while (pos < end && std::string_view("eEinumkKMGTP").find(str[pos]) != std::string_view::npos)
        ++pos;
    if (pos < end && (str[pos] == '-' || str[pos] == '+'))
        ++pos;
    while (pos < end && digit(str[pos]))
        ++pos;
    if (pos < end)
        return fail(format_wrong);
    std::string suffix(str.substr(suffix_start));
    long double mult = 1;
    static const std::map<std::string, long double> suffixes = {{"", 1},
                                                                {"n", 1e-9L},
                                                                {"u", 1e-6L},
                                                                {"m", 1e-3L},
                                                                {"k", 1e3L},
                                                                {"M", 1e6L},
                                                                {"G", 1e9L},
                                                                {"T", 1e12L},
                                                                {"P", 1e15L},
                                                                {"E", 1e18L},
                                                                {"Ki", 1024.0L},
                                                                {"Mi", 1048576.0L},
                                                                {"Gi", 1073741824.0L},
                                                                {"Ti", 1099511627776.0L},
                                                                {"Pi", 1125899906842624.0L},
                                                                {"Ei", 1152921504606846976.0L}};
    if (auto it = suffixes.find(suffix); it != suffixes.end()) {
        mult = it->second;
    } else if ((suffix[0] == 'e' || suffix[0] == 'E') && suffix.size() > 1) {
        std::string_view exp = std::string_view(suffix).substr(1);
        std::size_t i = (exp[0] == '-' || exp[0] == '+') ? 1 : 0;
        if (i >= exp.size() || !std::all_of(exp.begin() + i, exp.end(), digit))
            return fail("unable to parse quantity's suffix");
        mult = std::pow(10.0L, std::stold(std::string(exp)));
    } else {
        return fail("unable to parse quantity's suffix");
    }
    long double v = 0;
    if (number.empty() || number == ".")
        v = 0;
    else
        v = std::stold(number.front() == '.' ? "0" + number : number);
    quantity q;
    q.value = (negative ? -v : v) * mult;
    q.text = std::string(str);
    return q;
}

std::string pod_decode_error(const json::object& pod) {
    std::string error;
    const json::object* spec = obj_at(pod, "spec");
    if (!spec)
        return error;
    for (const char* list : {"containers", "initContainers"})
        for (const auto& c : arr(*spec, list))
            if (c.is_object() && error.empty())
                validate_quantities(c.get_object(), error);
    return error;
}

field_errors validate_object_meta(const json::object& obj, bool name_is_label) {
    field_errors out;
    static const json::object empty;
    const json::object* mdp = obj_at(obj, "metadata");
    const json::object& md = mdp ? *mdp : empty;
    auto name_rule = [&](std::string_view v) {
        return name_is_label ? dns1123_label_errors(v) : dns1123_subdomain_errors(v);
    };
    std::string gen = s(md, "generateName");
    if (!gen.empty()) {
        std::string masked = gen;
        if (masked.size() > 1 && masked.back() == '-')
            masked.back() = 'a'; // upstream masks a trailing dash of a prefix
        add_all(out, "metadata.generateName", gen, name_rule(masked));
    }
    std::string name = s(md, "name");
    if (name.empty())
        out.push_back(required_error("metadata.name", "name or generateName is required"));
    else
        add_all(out, "metadata.name", name, name_rule(name));
    validate_labels_annotations(md, out);
    return out;
}

field_errors validate_pod(const json::object& pod) {
    field_errors out = validate_object_meta(pod);
    static const json::object empty;
    const json::object* sp = obj_at(pod, "spec");
    const json::object& spec = sp ? *sp : empty;
    std::set<std::string> volumes = validate_volumes(arr(spec, "volumes"), out);
    const json::array& containers = arr(spec, "containers");
    std::set<std::string> names;
    if (containers.empty())
        out.push_back(required_error("spec.containers"));
    for (std::size_t i = 0; i < containers.size(); ++i) {
        std::string path = idx("spec.containers", i);
        const json::object& c = containers[i].is_object() ? containers[i].get_object() : empty;
        validate_container(c, path, volumes, out);
        std::string name = s(c, "name");
        if (!names.insert(name).second)
            out.push_back(duplicate_error(path + ".name", go_quote(name)));
    }
    const json::array& inits = arr(spec, "initContainers");
    for (std::size_t i = 0; i < inits.size(); ++i) {
        std::string path = idx("spec.initContainers", i);
        const json::object& c = inits[i].is_object() ? inits[i].get_object() : empty;
        validate_container(c, path, volumes, out);
        std::string name = s(c, "name");
        if (names.count(name))
            out.push_back(duplicate_error(path + ".name", go_quote(name)));
        else if (!name.empty())
            names.insert(name);
        for (const char* probe : {"lifecycle", "livenessProbe", "readinessProbe"})
            if (c.contains(probe) && !c.at(probe).is_null())
                out.push_back(invalid_error(path + "." + probe, json::serialize(c.at(probe)),
                                            "must not be set for init containers"));
    }
    std::string rp = s(spec, "restartPolicy");
    if (rp.empty())
        out.push_back(required_error("spec.restartPolicy"));
    else if (rp != "Always" && rp != "OnFailure" && rp != "Never")
        out.push_back(not_supported_error("spec.restartPolicy", go_quote(rp),
                                          {"Always", "OnFailure", "Never"}));
    std::string dns = s(spec, "dnsPolicy");
    if (dns.empty())
        out.push_back(required_error("spec.dnsPolicy"));
    else if (dns != "ClusterFirstWithHostNet" && dns != "ClusterFirst" && dns != "Default" &&
             dns != "None")
        out.push_back(
            not_supported_error("spec.dnsPolicy", go_quote(dns),
                                {"ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"}));
    if (spec.contains("terminationGracePeriodSeconds") &&
        int_at(spec, "terminationGracePeriodSeconds", 0) < 0)
        out.push_back(invalid_error("spec.terminationGracePeriodSeconds",
                                    printed(spec.at("terminationGracePeriodSeconds")),
                                    "must be greater than or equal to 0"));
    return out;
}

field_errors validate_secret(const json::object& secret, std::size_t data_bytes) {
    field_errors out = validate_object_meta(secret);
    if (const json::object* data = obj_at(secret, "data")) {
        std::set<std::string> keys;
        for (const auto& [k, v] : *data)
            keys.insert(std::string(k));
        for (const auto& k : keys)
            add_all(out, key("data", k), k, config_map_key_errors(k));
    }
    if (data_bytes > 1024 * 1024)
        out.push_back(too_long_error("data", 1024 * 1024));
    return out;
}

field_errors validate_pvc(const json::object& pvc) {
    field_errors out = validate_object_meta(pvc);
    static const json::object empty;
    const json::object* sp = obj_at(pvc, "spec");
    const json::object& spec = sp ? *sp : empty;
    const json::array& modes = arr(spec, "accessModes");
    if (modes.empty())
        out.push_back(required_error("spec.accessModes", "at least 1 access mode is required"));
    for (const auto& m : modes) {
        std::string mode = m.is_string() ? std::string(m.get_string()) : "";
        if (mode != "ReadWriteOnce" && mode != "ReadOnlyMany" && mode != "ReadWriteMany" &&
            mode != "ReadWriteOncePod")
            out.push_back(not_supported_error(
                "spec.accessModes", go_quote(mode),
                {"ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"}));
    }
    const json::object* res = obj_at(spec, "resources");
    const json::object* reqs = res ? obj_at(*res, "requests") : nullptr;
    if (!reqs || !reqs->contains("storage")) {
        out.push_back(required_error("spec.resources[storage]"));
    } else if (auto q = parse_quantity(quantity_text(reqs->at("storage")), nullptr);
               q && q->value <= 0) {
        out.push_back(invalid_error("spec.resources[storage]", go_quote(q->text),
                                    "must be greater than zero"));
    }
    return out;
}

field_errors validate_namespace(const json::object& ns) { return validate_object_meta(ns, true); }

namespace {

/// One object type of the v1 schema: its declared fields, and the type of those that are objects
/// (or arrays of objects) kubesim checks further. Types not listed here are not checked inside.
struct schema_type {
    std::set<std::string> fields;
    std::map<std::string, std::string> children;
};

const std::map<std::string, schema_type>& schema() {
    static const std::map<std::string, schema_type> types = [] {
        std::map<std::string, schema_type> t;
        t["ObjectMeta"] = {{"name", "generateName", "namespace", "selfLink", "uid",
                            "resourceVersion", "generation", "creationTimestamp",
                            "deletionTimestamp", "deletionGracePeriodSeconds", "labels",
                            "annotations", "ownerReferences", "finalizers", "managedFields"},
                           {}};
        t["Pod"] = {{"apiVersion", "kind", "metadata", "spec", "status"},
                    {{"metadata", "ObjectMeta"}, {"spec", "PodSpec"}}};
        t["PodSpec"] = {
            {"volumes",
             "initContainers",
             "containers",
             "ephemeralContainers",
             "restartPolicy",
             "terminationGracePeriodSeconds",
             "activeDeadlineSeconds",
             "dnsPolicy",
             "nodeSelector",
             "serviceAccountName",
             "serviceAccount",
             "automountServiceAccountToken",
             "nodeName",
             "hostNetwork",
             "hostPID",
             "hostIPC",
             "shareProcessNamespace",
             "securityContext",
             "imagePullSecrets",
             "hostname",
             "subdomain",
             "affinity",
             "schedulerName",
             "tolerations",
             "hostAliases",
             "priorityClassName",
             "priority",
             "dnsConfig",
             "readinessGates",
             "runtimeClassName",
             "enableServiceLinks",
             "preemptionPolicy",
             "overhead",
             "topologySpreadConstraints",
             "setHostnameAsFQDN",
             "os",
             "hostUsers",
             "schedulingGates",
             "resourceClaims",
             "resources"},
            {{"volumes", "Volume"}, {"initContainers", "Container"}, {"containers", "Container"}}};
        std::set<std::string> volume = volume_source_keys();
        volume.insert("name");
        t["Volume"] = {volume, {}};
        t["Container"] = {{"name",
                           "image",
                           "command",
                           "args",
                           "workingDir",
                           "ports",
                           "envFrom",
                           "env",
                           "resources",
                           "resizePolicy",
                           "restartPolicy",
                           "volumeMounts",
                           "volumeDevices",
                           "livenessProbe",
                           "readinessProbe",
                           "startupProbe",
                           "lifecycle",
                           "terminationMessagePath",
                           "terminationMessagePolicy",
                           "imagePullPolicy",
                           "securityContext",
                           "stdin",
                           "stdinOnce",
                           "tty"},
                          {{"ports", "ContainerPort"},
                           {"env", "EnvVar"},
                           {"resources", "ResourceRequirements"},
                           {"volumeMounts", "VolumeMount"},
                           {"securityContext", "SecurityContext"}}};
        t["ContainerPort"] = {{"name", "hostPort", "containerPort", "protocol", "hostIP"}, {}};
        t["EnvVar"] = {{"name", "value", "valueFrom"}, {}};
        t["ResourceRequirements"] = {{"limits", "requests", "claims"}, {}};
        t["VolumeMount"] = {{"name", "readOnly", "recursiveReadOnly", "mountPath", "subPath",
                             "mountPropagation", "subPathExpr"},
                            {}};
        t["SecurityContext"] = {{"capabilities", "privileged", "seLinuxOptions", "windowsOptions",
                                 "runAsUser", "runAsGroup", "runAsNonRoot",
                                 "readOnlyRootFilesystem", "allowPrivilegeEscalation", "procMount",
                                 "seccompProfile", "appArmorProfile"},
                                {}};
        t["Secret"] = {
            {"apiVersion", "kind", "metadata", "immutable", "data", "stringData", "type"},
            {{"metadata", "ObjectMeta"}}};
        t["PersistentVolumeClaim"] = {
            {"apiVersion", "kind", "metadata", "spec", "status"},
            {{"metadata", "ObjectMeta"}, {"spec", "PersistentVolumeClaimSpec"}}};
        t["PersistentVolumeClaimSpec"] = {{"accessModes", "selector", "resources", "volumeName",
                                           "storageClassName", "volumeMode", "dataSource",
                                           "dataSourceRef", "volumeAttributesClassName"},
                                          {}};
        t["Namespace"] = {{"apiVersion", "kind", "metadata", "spec", "status"},
                          {{"metadata", "ObjectMeta"}, {"spec", "NamespaceSpec"}}};
        t["NamespaceSpec"] = {{"finalizers"}, {}};
        return t;
    }();
    return types;
}

void prune(const std::string& type, json::object& obj, const std::string& path,
           std::vector<std::string>& unknown) {
    auto it = schema().find(type);
    if (it == schema().end())
        return;
    const schema_type& st = it->second;
    std::vector<std::string> drop;
    for (auto& [k, v] : obj) {
        std::string name(k);
        std::string here = path.empty() ? name : path + "." + name;
        if (!st.fields.count(name)) {
            unknown.push_back(here);
            drop.push_back(name);
            continue;
        }
        auto child = st.children.find(name);
        if (child == st.children.end())
            continue;
        if (v.is_object()) {
            prune(child->second, v.as_object(), here, unknown);
        } else if (v.is_array()) {
            std::size_t i = 0;
            for (auto& e : v.as_array()) {
                if (e.is_object())
                    prune(child->second, e.as_object(), idx(here, i), unknown);
                ++i;
            }
        }
    }
    for (const auto& d : drop)
        obj.erase(d);
}

} // namespace

std::vector<std::string> prune_unknown_fields(std::string_view kind, json::object& obj) {
    std::vector<std::string> unknown;
    prune(std::string(kind), obj, "", unknown);
    return unknown;
}

} // namespace podpipe::kubesim

namespace podpipe::kubesim {
namespace {

const json::object& member_object(const json::object& o, std::string_view k) {
    static const json::object empty;
    const json::object* p = obj_at(o, k);
    return p ? *p : empty;
}

const json::value* member(const json::object& o, std::string_view k) { return o.if_contains(k); }

bool same_member(const json::object& a, const json::object& b, std::string_view k) {
    const json::value* x = member(a, k);
    const json::value* y = member(b, k);
    if (!x || !y)
        return (x == nullptr || x->is_null()) && (y == nullptr || y->is_null());
    return *x == *y;
}

/// field.Invalid's printed value of an optional member: "null" when absent (Go's nil).
std::string printed_member(const json::object& o, std::string_view k) {
    const json::value* v = member(o, k);
    if (!v || v->is_null())
        return go_quote("null");
    if (v->is_string())
        return go_quote(v->get_string());
    return json::serialize(*v);
}

/// Go's field name of a JSON member (`nodeName` → `NodeName`), as cmp.Diff prints PodSpec.
std::string go_field(std::string_view json_name) {
    std::string out(json_name);
    if (!out.empty())
        out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
    return out;
}

/// A cmp.Diff-like rendering of the spec members that differ (upstream prints the full Go diff
/// of core.PodSpec; kubesim prints one -/+ pair per changed member, in JSON).
std::string spec_diff(const json::object& old_spec, const json::object& new_spec) {
    std::set<std::string> keys;
    for (const auto& [k, v] : old_spec)
        keys.insert(std::string(k));
    for (const auto& [k, v] : new_spec)
        keys.insert(std::string(k));
    std::string out = "  core.PodSpec{\n";
    std::size_t identical = 0;
    for (const auto& k : keys) {
        if (same_member(old_spec, new_spec, k)) {
            ++identical;
            continue;
        }
        if (identical)
            out += "  \t... // " + std::to_string(identical) + " identical fields\n";
        identical = 0;
        auto shown = [&](const json::object& o) {
            const json::value* v = member(o, k);
            return v && !v->is_null() ? json::serialize(*v) : std::string("nil");
        };
        out += "- \t" + go_field(k) + ": " + shown(old_spec) + ",\n";
        out += "+ \t" + go_field(k) + ": " + shown(new_spec) + ",\n";
    }
    if (identical)
        out += "  \t... // " + std::to_string(identical) + " identical fields\n";
    return out + "  }\n";
}

/// ValidateContainerUpdates: same count (else Forbidden and stop), images set and trimmed.
bool container_updates(const json::array& now, const json::array& before, const std::string& path,
                       field_errors& out) {
    if (now.size() != before.size()) {
        out.push_back(forbidden_error(path, "pod updates may not add or remove containers"));
        return false;
    }
    for (std::size_t i = 0; i < now.size(); ++i) {
        std::string image = now[i].is_object() ? str_at(now[i].as_object(), "image") : "";
        std::string field = path + "[" + std::to_string(i) + "].image";
        if (image.empty())
            out.push_back(required_error(field));
        else if (image.find_first_not_of(" \t\n\r") != 0 ||
                 image.find_last_not_of(" \t\n\r") != image.size() - 1)
            out.push_back(invalid_error(field, go_quote(image),
                                        "must not have leading or trailing whitespace"));
    }
    return true;
}

} // namespace

field_errors validate_object_meta_update(const json::object& obj, const json::object& old) {
    field_errors out;
    const json::object& md = member_object(obj, "metadata");
    const json::object& omd = member_object(old, "metadata");
    for (const char* k : {"uid", "creationTimestamp", "deletionTimestamp"})
        if (!same_member(md, omd, k))
            out.push_back(invalid_error(std::string("metadata.") + k, printed_member(md, k),
                                        "field is immutable"));
    field_errors meta = validate_object_meta(obj);
    out.insert(out.end(), meta.begin(), meta.end());
    return out;
}

field_errors validate_pod_update(const json::object& pod, const json::object& old) {
    field_errors out = validate_object_meta_update(pod, old);
    field_errors spec_errs = validate_pod(pod);
    out.insert(out.end(), spec_errs.begin(), spec_errs.end());
    const json::object& spec = member_object(pod, "spec");
    const json::object& ospec = member_object(old, "spec");
    static const json::array none;
    auto list = [](const json::object& o, std::string_view k) -> const json::array& {
        const json::array* a = arr_at(o, k);
        return a ? *a : none;
    };
    for (const char* k : {"containers", "initContainers"})
        if (!container_updates(list(spec, k), list(ospec, k), std::string("spec.") + k, out))
            return out;
    // activeDeadlineSeconds: may be set, or lowered, never removed.
    if (const json::value* ads = member(spec, "activeDeadlineSeconds"); ads && !ads->is_null()) {
        std::int64_t v = ads->is_int64() ? ads->get_int64() : -1;
        if (v < 0 || v > 2147483647) {
            out.push_back(invalid_error("spec.activeDeadlineSeconds", json::serialize(*ads),
                                        "must be between 0 and 2147483647, inclusive"));
            return out;
        }
        if (const json::value* o = member(ospec, "activeDeadlineSeconds");
            o && o->is_int64() && o->get_int64() < v) {
            out.push_back(invalid_error("spec.activeDeadlineSeconds", std::to_string(v),
                                        "must be less than or equal to previous value"));
            return out;
        }
    } else if (const json::value* o = member(ospec, "activeDeadlineSeconds"); o && !o->is_null()) {
        out.push_back(invalid_error("spec.activeDeadlineSeconds", go_quote("null"),
                                    "must not update from a positive integer to nil value"));
    }
    // validateOnlyAddedTolerations: every old toleration is still there.
    for (const auto& t : list(ospec, "tolerations")) {
        const auto& now = list(spec, "tolerations");
        if (std::find(now.begin(), now.end(), t) == now.end()) {
            out.push_back(forbidden_error("spec.tolerations",
                                          "existing toleration can not be modified except its "
                                          "tolerationSeconds"));
            break;
        }
    }
    if (spec == ospec)
        return out;
    // The munged spec: the updatable fields taken from the old pod, then compared.
    json::object munged = spec;
    for (const char* k : {"containers", "initContainers"}) {
        json::value* cs = munged.if_contains(k);
        const auto& olds = list(ospec, k);
        if (!cs || !cs->is_array())
            continue;
        for (std::size_t i = 0; i < cs->as_array().size() && i < olds.size(); ++i)
            if (cs->as_array()[i].is_object() && olds[i].is_object()) {
                auto& c = cs->as_array()[i].as_object();
                if (const json::value* img = olds[i].as_object().if_contains("image"))
                    c["image"] = *img;
                else
                    c.erase("image");
            }
    }
    for (const char* k : {"activeDeadlineSeconds", "tolerations", "schedulingGates"}) {
        if (const json::value* v = member(ospec, k))
            munged[k] = *v;
        else
            munged.erase(k);
    }
    const json::value* old_grace = member(ospec, "terminationGracePeriodSeconds");
    const json::value* new_grace = member(munged, "terminationGracePeriodSeconds");
    if (old_grace && old_grace->is_int64() && old_grace->get_int64() < 0 && new_grace &&
        *new_grace == 1)
        munged["terminationGracePeriodSeconds"] = *old_grace;
    if (munged != ospec)
        out.push_back(forbidden_error(
            "spec",
            "pod updates may not change fields other than `spec.containers[*].image`,"
            "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
            "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow "
            "it to be set to 1 if it was previously negative)\n" +
                spec_diff(ospec, munged)));
    return out;
}

field_errors validate_secret_update(const json::object& secret, const json::object& old,
                                    std::size_t data_bytes) {
    field_errors out = validate_object_meta_update(secret, old);
    if (!same_member(secret, old, "type"))
        out.push_back(invalid_error("type", printed_member(secret, "type"), "field is immutable"));
    if (const json::value* im = member(old, "immutable"); im && *im == true) {
        const json::value* now = member(secret, "immutable");
        if (!now || *now != true)
            out.push_back(
                forbidden_error("immutable", "field is immutable when `immutable` is set"));
        const json::object& d = member_object(secret, "data");
        const json::object& od = member_object(old, "data");
        if (d != od)
            out.push_back(forbidden_error("data", "field is immutable when `immutable` is set"));
    }
    field_errors rest = validate_secret(secret, data_bytes);
    // ValidateSecret repeats the metadata checks: NewInvalid drops the duplicates.
    for (auto& e : rest)
        if (std::none_of(out.begin(), out.end(), [&](const field_error& x) {
                return x.text() == e.text();
            }))
            out.push_back(std::move(e));
    return out;
}

} // namespace podpipe::kubesim
