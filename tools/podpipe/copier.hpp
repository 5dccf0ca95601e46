// What `podpipe cp` shares with `podpipe bench`: the cluster connection and the copy options
// from the command line. The copying itself is remote::pod_copier (remote/pod_copy.hpp).
#pragma once

#include "engine/common/result.hpp"
#include "remote/pod_copy.hpp"
#include "tools/podpipe/cp.hpp"

#include <memory>
#include <string>

namespace podpipe::kube {
class api_client;
}

namespace podpipe::cli {

/// Level, chunk size, threads, memory, excludes, verification, pod binary and protocol from
/// the flags; a message for the user when one is malformed.
result<remote::copy_options, std::string> copy_options_from(const cp_flags& flags);

/// The configured cluster (kubeconfig/context/namespace overrides may be empty).
result<std::unique_ptr<kube::api_client>, std::string> connect_cluster(const cp_flags& flags);

} // namespace podpipe::cli
