#include "tools/kubesim/patch.hpp"

#include <algorithm>
#include <cctype>
#include <map>

namespace podpipe::kubesim {
namespace {

namespace json = boost::json;

// patchMergeKey of the core/v1 list fields pods and secrets carry (k8s.io/api/core/v1/types.go
// `patchStrategy:"merge" patchMergeKey:"..."`), by field name: the names do not collide in
// these types. Lists not named here are atomic (replaced), as upstream.
const std::map<std::string_view, std::string_view>& merge_keys() {
    static const std::map<std::string_view, std::string_view> keys{
        {"containers", "name"},
        {"initContainers", "name"},
        {"ephemeralContainers", "name"},
        {"env", "name"},
        {"volumes", "name"},
        {"volumeMounts", "mountPath"},
        {"volumeDevices", "devicePath"},
        {"ports", "containerPort"},
        {"imagePullSecrets", "name"},
        {"hostAliases", "ip"},
        {"ownerReferences", "uid"},
        {"conditions", "type"},
        {"resourceClaims", "name"},
        {"schedulingGates", "name"},
        {"topologySpreadConstraints", "topologyKey"}};
    return keys;
}

// Primitive lists with patchStrategy merge (ObjectMeta.finalizers): union, original order first.
bool is_merged_primitive_list(std::string_view field) { return field == "finalizers"; }

bool is_directive_key(std::string_view k) {
    return k == "$patch" || k == "$retainKeys" || k.starts_with("$setElementOrder/") ||
           k.starts_with("$deleteFromPrimitiveList/");
}

json::object strip_directives(json::object o) {
    for (auto it = o.begin(); it != o.end();)
        it = is_directive_key(it->key()) ? o.erase(it) : std::next(it);
    for (auto& [k, v] : o)
        if (v.is_object())
            v = strip_directives(v.as_object());
    return o;
}

struct smp_error {
    std::string message;
};

std::optional<smp_error> smp_object(json::object& target, const json::object& patch);

std::optional<smp_error> smp_list(json::value& target, std::string_view field,
                                  const json::array& patch) {
    auto key_it = merge_keys().find(field);
    if (is_merged_primitive_list(field)) {
        if (!target.is_array())
            target = json::array{};
        auto& t = target.as_array();
        for (const auto& v : patch)
            if (std::find(t.begin(), t.end(), v) == t.end())
                t.push_back(v);
        return std::nullopt;
    }
    if (key_it == merge_keys().end()) {
        json::array out;
        for (const auto& v : patch)
            out.push_back(v.is_object() ? json::value(strip_directives(v.as_object())) : v);
        target = std::move(out);
        return std::nullopt;
    }
    const std::string key(key_it->second);
    // `$patch: replace` anywhere in the list replaces the whole list with the other elements.
    for (const auto& v : patch)
        if (v.is_object())
            if (auto* d = v.as_object().if_contains("$patch"); d && *d == "replace") {
                json::array out;
                for (const auto& e : patch)
                    if (!(e.is_object() && e.as_object().if_contains("$patch")))
                        out.push_back(e.is_object() ? json::value(strip_directives(e.as_object()))
                                                    : e);
                target = std::move(out);
                return std::nullopt;
            }
    if (!target.is_array())
        target = json::array{};
    auto& t = target.as_array();
    for (const auto& v : patch) {
        if (!v.is_object()) {
            return smp_error{"unable to find api field in struct Pod for the json field \"" +
                             std::string(field) + "\""};
        }
        const auto& pe = v.as_object();
        const json::value* kv = pe.if_contains(key);
        if (!kv)
            return smp_error{"map: " + json::serialize(v) +
                             " does not contain declared merge key: " + key};
        auto same = [&](const json::value& e) {
            return e.is_object() && e.as_object().if_contains(key) && e.as_object().at(key) == *kv;
        };
        const json::value* directive = pe.if_contains("$patch");
        if (directive && *directive == "delete") {
            t.erase(std::remove_if(t.begin(), t.end(), same), t.end());
            continue;
        }
        if (directive && *directive != "merge")
            return smp_error{"Unknown patch type: " +
                             std::string(directive->is_string() ? directive->as_string() : "") +
                             " in map: " + json::serialize(v)};
        auto it = std::find_if(t.begin(), t.end(), same);
        if (it == t.end()) {
            t.push_back(strip_directives(pe));
        } else {
            if (!it->is_object())
                *it = json::object{};
            if (auto err = smp_object(it->as_object(), pe))
                return err;
        }
    }
    return std::nullopt;
}

std::optional<smp_error> smp_object(json::object& target, const json::object& patch) {
    if (const json::value* d = patch.if_contains("$patch")) {
        if (*d == "replace") {
            target = strip_directives(patch);
            return std::nullopt;
        }
        if (*d == "delete") {
            target = json::object{};
            return std::nullopt;
        }
        if (*d != "merge")
            return smp_error{
                "Unknown patch type: " + std::string(d->is_string() ? d->as_string() : "") +
                " in map: " + json::serialize(patch)};
    }
    if (const json::value* rk = patch.if_contains("$retainKeys"); rk && rk->is_array()) {
        for (auto it = target.begin(); it != target.end();) {
            const auto& keys = rk->as_array();
            bool keep = std::find(keys.begin(), keys.end(), json::value(it->key())) != keys.end();
            it = keep ? std::next(it) : target.erase(it);
        }
    }
    for (const auto& [k, v] : patch) {
        std::string_view key = k;
        if (key.starts_with("$deleteFromPrimitiveList/")) {
            std::string field(key.substr(25));
            if (auto* list = target.if_contains(field); list && list->is_array() && v.is_array()) {
                auto& l = list->as_array();
                for (const auto& del : v.as_array())
                    l.erase(std::remove(l.begin(), l.end(), del), l.end());
            }
            continue;
        }
        if (is_directive_key(key))
            continue;
        const json::value* nested = v.is_object() ? v.as_object().if_contains("$patch") : nullptr;
        if (v.is_null() || (nested && *nested == "delete")) {
            // A deleted map becomes nil, which the typed object drops.
            target.erase(k);
        } else if (v.is_object()) {
            json::value& slot = target[k];
            if (!slot.is_object())
                slot = json::object{};
            if (auto err = smp_object(slot.as_object(), v.as_object()))
                return err;
        } else if (v.is_array()) {
            if (auto err = smp_list(target[k], key, v.as_array()))
                return err;
        } else {
            target[k] = v;
        }
    }
    return std::nullopt;
}

// RFC 6901 JSON pointer tokens ("~1" → "/", "~0" → "~").
std::optional<std::vector<std::string>> pointer_tokens(std::string_view p) {
    std::vector<std::string> out;
    if (p.empty())
        return out;
    if (p[0] != '/')
        return std::nullopt;
    std::string cur;
    for (std::size_t i = 1; i <= p.size(); ++i) {
        if (i == p.size() || p[i] == '/') {
            out.push_back(cur);
            cur.clear();
        } else if (p[i] == '~' && i + 1 < p.size() && (p[i + 1] == '0' || p[i + 1] == '1')) {
            cur += p[i + 1] == '0' ? '~' : '/';
            ++i;
        } else {
            cur += p[i];
        }
    }
    return out;
}

bool parse_index(const std::string& s, std::size_t& idx) {
    if (s.empty() || s.size() > 9 ||
        !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
        return false;
    idx = std::stoul(s);
    return true;
}

// The container of the last token (an object or array), or nullptr.
json::value* parent_of(json::value& doc, const std::vector<std::string>& toks) {
    json::value* cur = &doc;
    for (std::size_t i = 0; i + 1 < toks.size(); ++i) {
        if (cur->is_object()) {
            cur = cur->as_object().if_contains(toks[i]);
        } else if (cur->is_array()) {
            std::size_t idx = 0;
            if (!parse_index(toks[i], idx) || idx >= cur->as_array().size())
                return nullptr;
            cur = &cur->as_array()[idx];
        } else {
            return nullptr;
        }
        if (!cur)
            return nullptr;
    }
    return cur->is_object() || cur->is_array() ? cur : nullptr;
}

json::value* value_at(json::value& doc, const std::vector<std::string>& toks) {
    if (toks.empty())
        return &doc;
    json::value* parent = parent_of(doc, toks);
    if (!parent)
        return nullptr;
    if (parent->is_object())
        return parent->as_object().if_contains(toks.back());
    std::size_t idx = 0;
    if (!parse_index(toks.back(), idx) || idx >= parent->as_array().size())
        return nullptr;
    return &parent->as_array()[idx];
}

const std::string missing = ": missing value";

// One RFC 6902 operation on `doc`; the error text as evanphx/json-patch v4 words it.
std::optional<std::string> apply_op(json::value& doc, const json::object& op) {
    auto str = [&](const char* k) -> std::optional<std::string> {
        const json::value* v = op.if_contains(k);
        if (!v || !v->is_string())
            return std::nullopt;
        return std::string(v->as_string());
    };
    std::string kind = str("op").value_or("");
    auto path = str("path");
    if (kind != "add" && kind != "remove" && kind != "replace" && kind != "move" &&
        kind != "copy" && kind != "test")
        return "Unexpected kind: " + kind;
    if (!path)
        return kind + " operation failed to decode path: missing value";
    auto toks = pointer_tokens(*path);
    if (!toks)
        return kind + " operation does not apply: doc is missing path: \"" + *path + "\"" + missing;
    const json::value* value = op.if_contains("value");

    auto remove_at = [&](const std::vector<std::string>& t,
                         const std::string& p) -> std::optional<std::string> {
        json::value* parent = t.empty() ? nullptr : parent_of(doc, t);
        if (!parent)
            return "remove operation does not apply: doc is missing path: \"" + p + "\"" + missing;
        if (parent->is_object()) {
            if (!parent->as_object().erase(t.back()))
                return "error in remove for path: '" + p +
                       "': Unable to remove nonexistent key: " + t.back() + missing;
            return std::nullopt;
        }
        auto& arr = parent->as_array();
        std::size_t idx = 0;
        if (!parse_index(t.back(), idx) || idx >= arr.size())
            return "error in remove for path: '" + p +
                   "': Unable to access invalid index: " + t.back() + ": invalid index referenced";
        arr.erase(arr.begin() + static_cast<std::ptrdiff_t>(idx));
        return std::nullopt;
    };
    auto add_at = [&](const std::vector<std::string>& t, const std::string& p,
                      json::value v) -> std::optional<std::string> {
        if (t.empty()) {
            doc = std::move(v);
            return std::nullopt;
        }
        json::value* parent = parent_of(doc, t);
        if (!parent)
            return "add operation does not apply: doc is missing path: \"" + p + "\"" + missing;
        if (parent->is_object()) {
            parent->as_object()[t.back()] = std::move(v);
            return std::nullopt;
        }
        auto& arr = parent->as_array();
        if (t.back() == "-") {
            arr.push_back(std::move(v));
            return std::nullopt;
        }
        std::size_t idx = 0;
        if (!parse_index(t.back(), idx) || idx > arr.size())
            return "error in add for path: '" + p +
                   "': Unable to access invalid index: " + t.back() + ": invalid index referenced";
        arr.insert(arr.begin() + static_cast<std::ptrdiff_t>(idx), std::move(v));
        return std::nullopt;
    };

    if (kind == "add") {
        if (!value)
            return "add operation does not apply: value is missing" + missing;
        return add_at(*toks, *path, *value);
    }
    if (kind == "remove")
        return remove_at(*toks, *path);
    if (kind == "replace") {
        if (!value)
            return "replace operation does not apply: value is missing" + missing;
        json::value* at = value_at(doc, *toks);
        if (!at)
            return "replace operation does not apply: doc is missing key: " + *path + missing;
        *at = *value;
        return std::nullopt;
    }
    if (kind == "test") {
        json::value* at = value_at(doc, *toks);
        const json::value expected = value ? *value : json::value(nullptr);
        if ((at == nullptr && !expected.is_null()) || (at && *at != expected))
            return "testing value " + *path + " failed: test failed";
        return std::nullopt;
    }
    // move, copy
    auto from = str("from");
    auto from_toks = from ? pointer_tokens(*from) : std::nullopt;
    json::value* src = from_toks ? value_at(doc, *from_toks) : nullptr;
    if (!src)
        return kind + " operation does not apply: doc is missing from path: " +
               (kind == "copy" ? "\"" + from.value_or("") + "\"" : from.value_or("")) + missing;
    json::value moved = *src;
    if (kind == "move") {
        if (path->starts_with(*from + "/"))
            return "Unable to move " + *from + " into its own child " + *path;
        if (auto err = remove_at(*from_toks, *from))
            return err;
    }
    return add_at(*toks, *path, std::move(moved));
}

} // namespace

void merge_patch(json::value& target, const json::value& patch) {
    if (!patch.is_object()) {
        target = patch;
        return;
    }
    if (!target.is_object())
        target = json::object{};
    auto& t = target.as_object();
    for (const auto& [k, v] : patch.as_object()) {
        if (v.is_null())
            t.erase(k);
        else
            merge_patch(t[k], v);
    }
}

std::optional<patch_type> patch_type_of(std::string_view content_type) {
    if (auto semi = content_type.find(';'); semi != std::string_view::npos)
        content_type = content_type.substr(0, semi);
    while (!content_type.empty() && content_type.back() == ' ')
        content_type.remove_suffix(1);
    if (content_type == "application/json-patch+json")
        return patch_type::json;
    if (content_type == "application/merge-patch+json")
        return patch_type::merge;
    if (content_type == "application/strategic-merge-patch+json")
        return patch_type::strategic;
    return std::nullopt;
}

result<json::value, patch_error> apply_patch(patch_type type, const json::value& target,
                                             std::string_view patch) {
    boost::system::error_code ec;
    json::value p = json::parse(patch, ec);
    if (type == patch_type::merge) {
        // jsonpatch.MergePatch: ErrBadJSONPatch for anything that is not a JSON object.
        if (ec || !p.is_object())
            return fail(patch_error{400, "Invalid JSON Patch"});
        json::value out = target;
        merge_patch(out, p);
        return out;
    }
    if (type == patch_type::strategic) {
        if (ec)
            return fail(
                patch_error{400, "invalid character in strategic merge patch: " + ec.message()});
        if (!p.is_object())
            return fail(patch_error{400, "json: cannot unmarshal " +
                                             std::string(p.is_array() ? "array" : "value") +
                                             " into Go value of type map[string]interface {}"});
        json::value out = target;
        if (!out.is_object())
            out = json::object{};
        if (auto err = smp_object(out.as_object(), p.as_object()))
            return fail(patch_error{400, err->message});
        return out;
    }
    if (ec)
        return fail(patch_error{400, "invalid character in JSON patch: " + ec.message()});
    if (!p.is_array())
        return fail(patch_error{400, "json: cannot unmarshal " +
                                         std::string(p.is_object() ? "object" : "value") +
                                         " into Go value of type jsonpatch.Patch"});
    if (p.as_array().size() > 10000)
        return fail(
            patch_error{413, "The allowed maximum operations in a JSON patch is 10000, got " +
                                 std::to_string(p.as_array().size())});
    json::value out = target;
    for (const auto& op : p.as_array()) {
        if (!op.is_object())
            return fail(patch_error{400, "json: cannot unmarshal " + std::string("value") +
                                             " into Go value of type jsonpatch.Operation"});
        if (auto err = apply_op(out, op.as_object()))
            return fail(patch_error{422, *err});
    }
    return out;
}

} // namespace podpipe::kubesim
