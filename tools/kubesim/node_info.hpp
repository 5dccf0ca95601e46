// node_info: the status a kubelet (v1.32, containerd) reports for its Node, with this machine's
// real facts where they make sense (README "Nodes"): nodeInfo (machine-id, product UUID, boot
// id, kernel, OS image, architecture), capacity and allocatable (CPUs, memory, the root
// filesystem, 110 pods), the four node conditions, addresses and the kubelet endpoint.
#pragma once

#include <string>

#include <boost/json.hpp>

namespace podpipe::kubesim {

/// Machine facts, read once (cached; thread-safe).
struct machine_facts {
    std::string machine_id, system_uuid, boot_id, kernel_version, os_image, architecture;
    long cpus = 1;
    unsigned long long memory_bytes = 0;  ///< MemTotal
    unsigned long long storage_bytes = 0; ///< size of the filesystem holding `/`
};

const machine_facts& this_machine();

/// Node.status for a node named `name` with InternalIP `internal_ip`.
boost::json::object node_status(const std::string& name, const std::string& internal_ip);

} // namespace podpipe::kubesim
