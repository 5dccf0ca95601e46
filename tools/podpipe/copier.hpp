// What `podpipe cp` shares with `podpipe bench`: the cluster connection and the copy options
// from the command line. The copying itself is k8s::pod_copier (hooks/k8s/pod_copy.hpp).
#pragma once

#include "engine/common/result.hpp"
#include "hooks/k8s/pod_copy.hpp"
#include "tools/podpipe/cp.hpp"

#include <memory>
#include <string>

namespace podpipe::k8s {
class api_client;
}

namespace podpipe::cli {

/// Level, chunk size, threads, memory, excludes, verification, pod binary and protocol from
/// the flags; a message for the user when one is malformed.
result<k8s::copy_options, std::string> copy_options_from(const cp_flags& flags);

/// The configured cluster (kubeconfig/context/namespace overrides may be empty).
result<std::unique_ptr<k8s::api_client>, std::string> connect_cluster(const cp_flags& flags);

} // namespace podpipe::cli
