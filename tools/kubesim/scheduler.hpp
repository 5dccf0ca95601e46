// scheduler: places a pod on one of the simulated nodes (spec §3.3 affinity semantics).
// Filters: spec.nodeSelector (all labels equal), required nodeAffinity terms (ORed terms; inside a
// term matchExpressions over labels and matchFields over metadata.name are ANDed; operators In,
// NotIn, Exists, DoesNotExist, Gt, Lt). Score: sum of matching preferred-term weights, ties broken
// by fewest pods then node order. Pure function of its inputs; thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace podpipe::kubesim {

struct sim_node {
    std::string name;
    std::map<std::string, std::string> labels;
    std::string internal_ip;
    int index = 0; ///< 1-based
    /// Cordoned (`--cordon`): spec.unschedulable plus the node.kubernetes.io/unschedulable
    /// NoSchedule taint; the scheduler filters it out (pods with spec.nodeName still run there).
    bool unschedulable = false;
};

struct schedule_decision {
    bool scheduled = false;
    std::string node;    ///< when scheduled
    std::string message; ///< FailedScheduling message otherwise ("0/3 nodes are available: ...")
};

/// `preferred_node` (when non-empty) wins among the nodes that pass the filters: the node a
/// ReadWriteOnce claim of the pod is attached to. `pod_counts` maps node name → pods currently placed there (for spreading).
schedule_decision schedule_pod(const boost::json::object& pod_spec,
                               const std::vector<sim_node>& nodes,
                               const std::map<std::string, int>& pod_counts,
                               const std::string& preferred_node = "");

/// Builds node-1..node-N with labels kubernetes.io/hostname, kubernetes.io/os, kubernetes.io/arch.
std::vector<sim_node> make_nodes(int count);

/// The Node API object for a simulated node.
boost::json::object node_object(const sim_node& n);

} // namespace podpipe::kubesim
