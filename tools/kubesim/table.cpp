#include "tools/kubesim/table.hpp"

#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {
namespace {

json::object column(const char* name, const char* type, const char* format, const char* desc,
                    int priority) {
    return json::object{{"name", name},
                        {"type", type},
                        {"format", format},
                        {"description", desc},
                        {"priority", priority}};
}

std::string age_of(const json::object& obj) {
    auto* md = obj_at(obj, "metadata");
    if (!md)
        return "<unknown>";
    auto created = parse_rfc3339(str_at(*md, "creationTimestamp"));
    return human_age(std::chrono::system_clock::now() - created);
}

json::object partial_metadata(const json::object& obj) {
    json::object md = obj.contains("metadata") ? obj.at("metadata").as_object() : json::object{};
    return json::object{
        {"kind", "PartialObjectMetadata"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", md}};
}

/// The STATUS column kubectl's pod printer computes.
std::string pod_status(const json::object& pod, int& ready, int& total) {
    const json::object empty;
    const json::object* st = obj_at(pod, "status");
    if (!st)
        st = &empty;
    std::string reason = str_at(*st, "reason", str_at(*st, "phase", "Pending"));
    ready = 0;
    total = 0;
    if (auto* spec = obj_at(pod, "spec"))
        if (auto* cs = arr_at(*spec, "containers"))
            total = static_cast<int>(cs->size());
    bool initializing = false;
    if (auto* ics = arr_at(*st, "initContainerStatuses")) {
        int i = 0;
        for (const auto& c : *ics) {
            const auto* state = obj_at(c, "state");
            if (state && obj_at(*state, "terminated")) {
                const auto* t = obj_at(*state, "terminated");
                if (int_at(*t, "exitCode", 0) == 0) {
                    ++i;
                    continue;
                }
                reason = "Init:" + str_at(*t, "reason", "Error");
                initializing = true;
            } else if (state && obj_at(*state, "waiting") &&
                       str_at(*obj_at(*state, "waiting"), "reason") != "PodInitializing") {
                reason = "Init:" + str_at(*obj_at(*state, "waiting"), "reason");
                initializing = true;
            } else {
                reason = "Init:" + std::to_string(i) + "/" + std::to_string(ics->size());
                initializing = true;
            }
            break;
        }
    }
    if (auto* cs = arr_at(*st, "containerStatuses")) {
        bool has_running = false;
        for (const auto& c : *cs) {
            const auto* state = obj_at(c, "state");
            if (!state)
                continue;
            if (c.is_object() && c.get_object().contains("ready") && c.get_object().at("ready").is_bool() &&
                c.get_object().at("ready").get_bool())
                ++ready;
            if (initializing)
                continue;
            if (auto* w = obj_at(*state, "waiting"); w && !str_at(*w, "reason").empty())
                reason = str_at(*w, "reason");
            else if (auto* t = obj_at(*state, "terminated"))
                reason = str_at(*t, "reason", "Error");
            else if (obj_at(*state, "running"))
                has_running = true;
        }
        if (!initializing && reason == "Completed" && has_running)
            reason = "Running";
    }
    if (auto* md = obj_at(pod, "metadata"); md && md->contains("deletionTimestamp"))
        reason = "Terminating";
    return reason;
}

} // namespace

bool wants_table(const std::string& accept) { return accept.find("as=Table") != std::string::npos; }

json::object make_table(const std::string& resource, const std::vector<json::object>& objects,
                        std::uint64_t rv) {
    json::array cols;
    json::array rows;
    if (resource == "pods") {
        cols = {column("Name", "string", "name", "Name must be unique within a namespace.", 0),
                column("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
                column("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
                column("Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
                column("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0),
                column("IP", "string", "", "IP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.", 1),
                column("Node", "string", "", "NodeName is a request to schedule this pod onto a specific node.", 1),
                column("Nominated Node", "string", "", "nominatedNodeName is set only when this pod preempts other pods on the node.", 1),
                column("Readiness Gates", "string", "", "If specified, all readiness gates will be evaluated for pod readiness.", 1)};
        for (const auto& p : objects) {
            int ready = 0, total = 0;
            std::string status = pod_status(p, ready, total);
            std::string ip = "<none>", node = "<none>";
            if (auto* st = obj_at(p, "status"))
                ip = str_at(*st, "podIP", "<none>");
            if (auto* sp = obj_at(p, "spec"))
                node = str_at(*sp, "nodeName", "<none>");
            // RESTARTS: the sum of restartCount, with the age of the last restart ("2 (5s ago)").
            std::int64_t restarts = 0;
            std::string last_finished;
            if (auto* st = obj_at(p, "status"))
                if (auto* cs = arr_at(*st, "containerStatuses"))
                    for (const auto& c : *cs) {
                        restarts += int_at(c.as_object(), "restartCount", 0);
                        if (auto* ls = obj_at(c.as_object(), "lastState"))
                            if (auto* t = obj_at(*ls, "terminated"))
                                last_finished = std::max(last_finished, str_at(*t, "finishedAt"));
                    }
            std::string restarts_cell = std::to_string(restarts);
            if (restarts > 0 && !last_finished.empty())
                restarts_cell += " (" + human_age(std::chrono::system_clock::now() - parse_rfc3339(last_finished)) + " ago)";
            json::array cells{str_at(*obj_at(p, "metadata"), "name"),
                              std::to_string(ready) + "/" + std::to_string(total),
                              status, restarts_cell, age_of(p), ip, node, "<none>", "<none>"};
            rows.push_back(json::object{{"cells", cells}, {"object", partial_metadata(p)}});
        }
    } else if (resource == "secrets") {
        cols = {column("Name", "string", "name", "Name must be unique within a namespace.", 0),
                column("Type", "string", "", "The type of the secret", 0),
                column("Data", "string", "", "The number of entries in the secret", 0),
                column("Age", "string", "", "CreationTimestamp of the secret", 0)};
        for (const auto& s : objects) {
            std::size_t n = 0;
            if (auto* d = obj_at(s, "data"))
                n = d->size();
            json::array cells{str_at(*obj_at(s, "metadata"), "name"), str_at(s, "type", "Opaque"),
                              static_cast<std::int64_t>(n), age_of(s)};
            rows.push_back(json::object{{"cells", cells}, {"object", partial_metadata(s)}});
        }
    } else if (resource == "jobs") {
        cols = {column("Name", "string", "name", "Name must be unique within a namespace.", 0),
                column("Status", "string", "", "Status of the job.", 0),
                column("Completions", "string", "", "The number of pods which reached phase Succeeded.", 0),
                column("Duration", "string", "", "Time required to complete the job.", 0),
                column("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0),
                column("Containers", "string", "", "Names of each container in the template.", 1),
                column("Images", "string", "", "Images referenced by each container in the template.", 1),
                column("Selector", "string", "", "A label query over pods that should match the pod count.", 1)};
        for (const auto& j : objects) {
            const json::object empty;
            const json::object* st = obj_at(j, "status");
            const json::object* spec = obj_at(j, "spec");
            if (!st)
                st = &empty;
            if (!spec)
                spec = &empty;
            auto has = [&](std::string_view type) {
                if (auto* conds = arr_at(*st, "conditions"))
                    for (const auto& c : *conds)
                        if (c.is_object() && str_at(c.as_object(), "type") == type &&
                            str_at(c.as_object(), "status") == "True")
                            return true;
                return false;
            };
            const json::object* md = obj_at(j, "metadata");
            std::string status = has("Complete")                               ? "Complete"
                                 : has("Failed")                               ? "Failed"
                                 : md && md->contains("deletionTimestamp")     ? "Terminating"
                                 : has("Suspended")                            ? "Suspended"
                                 : has("FailureTarget")                        ? "FailureTarget"
                                 : has("SuccessCriteriaMet")                   ? "SuccessCriteriaMet"
                                                                               : "Running";
            std::int64_t succeeded = int_at(*st, "succeeded", 0);
            std::string completions;
            if (spec->contains("completions"))
                completions = std::to_string(succeeded) + "/" + std::to_string(int_at(*spec, "completions", 1));
            else if (int_at(*spec, "parallelism", 1) > 1)
                completions = std::to_string(succeeded) + "/1 of " + std::to_string(int_at(*spec, "parallelism", 1));
            else
                completions = std::to_string(succeeded) + "/1";
            std::string duration;
            if (st->contains("startTime")) {
                auto start = parse_rfc3339(str_at(*st, "startTime"));
                auto end = st->contains("completionTime") ? parse_rfc3339(str_at(*st, "completionTime"))
                                                          : std::chrono::system_clock::now();
                duration = human_age(end - start);
            }
            std::string names, images, selector;
            if (auto* t = obj_at(*spec, "template"))
                if (auto* ps = obj_at(*t, "spec"))
                    if (auto* cs = arr_at(*ps, "containers"))
                        for (const auto& c : *cs) {
                            names += (names.empty() ? "" : ",") + str_at(c.as_object(), "name");
                            images += (images.empty() ? "" : ",") + str_at(c.as_object(), "image");
                        }
            if (auto* sel = obj_at(*spec, "selector"))
                if (auto* ml = obj_at(*sel, "matchLabels"))
                    for (const auto& [k, v] : *ml)
                        if (v.is_string())
                            selector += (selector.empty() ? "" : ",") + std::string(k) + "=" + std::string(v.get_string());
            json::array cells{str_at(*md, "name"), status, completions, duration, age_of(j), names, images, selector};
            rows.push_back(json::object{{"cells", cells}, {"object", partial_metadata(j)}});
        }
    } else if (resource == "events") {
        cols = {column("Last Seen", "string", "", "The time at which the most recent occurrence of this event was recorded.", 0),
                column("Type", "string", "", "Type of this event (Normal, Warning), new types could be added in the future", 0),
                column("Reason", "string", "", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status.", 0),
                column("Object", "string", "", "The object that this event is about.", 0),
                column("Subobject", "string", "", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement.", 1),
                column("Source", "string", "", "The component reporting this event. Should be a short machine understandable string.", 1),
                column("Message", "string", "", "A human-readable description of the status of this operation.", 0),
                column("First Seen", "string", "", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)", 1),
                column("Count", "string", "", "The number of times this event has occurred.", 1),
                column("Name", "string", "name", "Name must be unique within a namespace.", 1)};
        auto now = std::chrono::system_clock::now();
        for (const auto& e : objects) {
            const json::object empty;
            const json::object* io = obj_at(e, "involvedObject");
            const json::object* src = obj_at(e, "source");
            if (!io)
                io = &empty;
            if (!src)
                src = &empty;
            std::string kind = str_at(*io, "kind");
            for (auto& c : kind)
                c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            std::int64_t count = int_at(e, "count", 1);
            auto first = parse_rfc3339(str_at(e, "firstTimestamp"));
            auto last = parse_rfc3339(str_at(e, "lastTimestamp"));
            std::string last_seen = human_age(now - last);
            if (count > 1)
                last_seen += " (x" + std::to_string(count) + " over " + human_age(now - first) + ")";
            std::string source = str_at(*src, "component");
            if (!str_at(*src, "host").empty())
                source += ", " + str_at(*src, "host");
            json::array cells{last_seen,
                              str_at(e, "type"),
                              str_at(e, "reason"),
                              kind + "/" + str_at(*io, "name"),
                              str_at(*io, "fieldPath"),
                              source,
                              str_at(e, "message"),
                              human_age(now - first),
                              count,
                              str_at(*obj_at(e, "metadata"), "name")};
            rows.push_back(json::object{{"cells", cells}, {"object", partial_metadata(e)}});
        }
    } else if (resource == "namespaces") {
        cols = {column("Name", "string", "name", "Name must be unique.", 0),
                column("Status", "string", "", "The status of the namespace", 0),
                column("Age", "string", "", "CreationTimestamp of the object", 0)};
        for (const auto& n : objects) {
            const json::object* st = obj_at(n, "status");
            json::array cells{str_at(*obj_at(n, "metadata"), "name"),
                              st ? str_at(*st, "phase") : std::string(), age_of(n)};
            rows.push_back(json::object{{"cells", cells}, {"object", partial_metadata(n)}});
        }
    } else if (resource == "nodes") {
        cols = {column("Name", "string", "name", "Name must be unique.", 0),
                column("Status", "string", "", "The status of the node", 0),
                column("Roles", "string", "", "The roles of the node", 0),
                column("Age", "string", "", "CreationTimestamp of the node", 0),
                column("Version", "string", "", "Kubelet Version reported by the node.", 0),
                column("Internal-IP", "string", "", "List of internal IPs for the node.", 1),
                column("External-IP", "string", "", "List of external IPs for the node.", 1),
                column("OS-Image", "string", "", "OS image reported by the node.", 1),
                column("Kernel-Version", "string", "", "Kernel version reported by the node.", 1),
                column("Container-Runtime", "string", "",
                       "Container runtime and version reported by the node.", 1)};
        for (const auto& n : objects) {
            static const json::object none;
            const json::object* st = obj_at(n, "status");
            const json::object* ni = st ? obj_at(*st, "nodeInfo") : nullptr;
            const json::object& info = ni ? *ni : none;
            std::string ip = "<none>";
            if (const json::array* addrs = st ? arr_at(*st, "addresses") : nullptr)
                for (const auto& a : *addrs)
                    if (a.is_object() && str_at(a.as_object(), "type") == "InternalIP")
                        ip = str_at(a.as_object(), "address");
            json::array cells{str_at(*obj_at(n, "metadata"), "name"), "Ready", "<none>", age_of(n),
                              str_at(info, "kubeletVersion", "v1.32.0"), ip, "<none>",
                              str_at(info, "osImage", "<unknown>"),
                              str_at(info, "kernelVersion", "<unknown>"),
                              str_at(info, "containerRuntimeVersion", "<unknown>")};
            rows.push_back(json::object{{"cells", cells}, {"object", partial_metadata(n)}});
        }
    } else {
        cols = {column("Name", "string", "name", "Name must be unique.", 0),
                column("Age", "string", "", "CreationTimestamp of the object", 0)};
        for (const auto& o : objects) {
            json::array cells{str_at(*obj_at(o, "metadata"), "name"), age_of(o)};
            rows.push_back(json::object{{"cells", cells}, {"object", partial_metadata(o)}});
        }
    }
    return json::object{{"kind", "Table"},
                        {"apiVersion", "meta.k8s.io/v1"},
                        {"metadata", json::object{{"resourceVersion", std::to_string(rv)}}},
                        {"columnDefinitions", cols},
                        {"rows", rows}};
}

} // namespace podpipe::kubesim
