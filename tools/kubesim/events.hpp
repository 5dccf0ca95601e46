// event_recorder: writes core/v1 Event objects into the object store, the way the kubelet, the
// scheduler, the attach-detach controller and the job controller do upstream (so `kubectl
// describe` and `kubectl get events` show why a pod waits or fails).
//
// Events are stored as resource "events" in the involved object's namespace, named
// `<object name>.<hex UnixNano>` (upstream's scheme: lists come out in time order), with `source`,
// `reportingComponent`, `firstTimestamp`/`lastTimestamp` and `count`. A repeat of the same (object
// uid, fieldPath, type, reason, message, component) updates the existing Event (count + 1, new
// lastTimestamp) instead of creating a new one, as client-go's event correlator does. Events are
// never expired (upstream keeps them an hour).
//
// Thread safety: record() may be called from any thread.
#pragma once

#include "tools/kubesim/store.hpp"

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <tuple>

#include <boost/json.hpp>

namespace podpipe::kubesim {

/// The object an event is about (Event.involvedObject).
struct involved_object {
    std::string kind;        ///< "Pod", "Job"
    std::string api_version; ///< "v1", "batch/v1"
    std::string ns;
    std::string name;
    std::string uid;
    std::string field_path; ///< "spec.containers{c1}" or ""
};

/// involved_object of a stored object (kind/apiVersion from the object).
involved_object involved(const boost::json::object& obj, std::string field_path = "");

class event_recorder {
public:
    explicit event_recorder(object_store& store)
        : store_(store) {}

    /// type is "Normal" or "Warning". `component` is the reporting component
    /// ("kubelet", "default-scheduler", "job-controller", "attachdetach-controller"); `host` the
    /// node name for kubelet events ("" otherwise).
    void record(const involved_object& obj, const std::string& type, const std::string& reason,
                const std::string& message, const std::string& component,
                const std::string& host = "");

private:
    using key =
        std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>;
    object_store& store_;
    std::mutex mu_;
    std::map<key, std::string> names_; // correlation key → event name
    std::uint64_t last_nanos_ = 0;     // keeps names unique and increasing
};

} // namespace podpipe::kubesim
