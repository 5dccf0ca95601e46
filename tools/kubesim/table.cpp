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
            json::array cells{str_at(*obj_at(p, "metadata"), "name"),
                              std::to_string(ready) + "/" + std::to_string(total),
                              status, "0", age_of(p), ip, node, "<none>", "<none>"};
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
    } else if (resource == "nodes") {
        cols = {column("Name", "string", "name", "Name must be unique.", 0),
                column("Status", "string", "", "The status of the node", 0),
                column("Roles", "string", "", "The roles of the node", 0),
                column("Age", "string", "", "CreationTimestamp of the node", 0),
                column("Version", "string", "", "Kubelet Version reported by the node.", 0)};
        for (const auto& n : objects) {
            json::array cells{str_at(*obj_at(n, "metadata"), "name"), "Ready", "<none>", age_of(n),
                              "v1.32.0"};
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
