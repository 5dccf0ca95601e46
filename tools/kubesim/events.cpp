#include "tools/kubesim/events.hpp"

#include "tools/kubesim/util.hpp"

#include <algorithm>
#include <cstdio>

namespace podpipe::kubesim {

involved_object involved(const json::object& obj, std::string field_path) {
    involved_object o;
    o.kind = str_at(obj, "kind");
    o.api_version = str_at(obj, "apiVersion");
    if (auto* md = obj_at(obj, "metadata")) {
        o.ns = str_at(*md, "namespace");
        o.name = str_at(*md, "name");
        o.uid = str_at(*md, "uid");
    }
    o.field_path = std::move(field_path);
    return o;
}

void event_recorder::record(const involved_object& obj, const std::string& type,
                            const std::string& reason, const std::string& message,
                            const std::string& component, const std::string& host) {
    std::string now = now_rfc3339();
    key k{obj.uid, obj.field_path, type, reason, message, component};
    std::lock_guard lk(mu_);
    if (auto it = names_.find(k); it != names_.end()) {
        auto updated = store_.update("events", obj.ns, it->second, "", [&](json::object& ev) {
            ev["count"] = int_at(ev, "count", 1) + 1;
            ev["lastTimestamp"] = now;
        });
        if (updated)
            return;
        names_.erase(it); // deleted meanwhile: record anew
    }
    json::object io{{"kind", obj.kind},
                    {"namespace", obj.ns},
                    {"name", obj.name},
                    {"uid", obj.uid},
                    {"apiVersion", obj.api_version}};
    if (!obj.field_path.empty())
        io["fieldPath"] = obj.field_path;
    json::object source{{"component", component}};
    if (!host.empty())
        source["host"] = host;
    // Upstream names events "<object>.<hex of the UnixNano time>", so lists come out in order.
    auto nanos = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                std::chrono::system_clock::now().time_since_epoch())
                                                .count());
    nanos = std::max(nanos, last_nanos_ + 1);
    last_nanos_ = nanos;
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(nanos));
    std::string name = obj.name + "." + hex;
    json::object ev{{"kind", "Event"},
                    {"apiVersion", "v1"},
                    {"metadata", json::object{{"name", name}, {"namespace", obj.ns}}},
                    {"involvedObject", io},
                    {"reason", reason},
                    {"message", message},
                    {"source", source},
                    {"firstTimestamp", now},
                    {"lastTimestamp", now},
                    {"count", 1},
                    {"type", type},
                    {"eventTime", nullptr},
                    {"reportingComponent", component},
                    {"reportingInstance", host}};
    if (store_.create("events", obj.ns, std::move(ev)))
        names_[k] = name;
}

} // namespace podpipe::kubesim
