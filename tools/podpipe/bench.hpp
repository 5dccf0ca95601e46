// `podpipe bench --pod [NS/]POD[:CONTAINER]`: measures the user's real exec path (raw
// throughput both ways, round-trip time), then transfers a tree with a matrix of compression
// levels × chunk sizes × threads, to and from the pod, with the in-pod podpipe and with the
// pod's tar, within a time budget; prints a table and the settings to use.
#pragma once

#include "tools/podpipe/cp.hpp"

#include <string>

namespace podpipe::cli {

struct bench_flags {
    std::string pod;       ///< [NS/]POD[:CONTAINER]
    std::string dir;       ///< local tree to send, or
    std::string synthetic; ///< "files=N,size=S,dist=source|node_modules|binaries"
    std::string budget = "60s";
    std::string pod_dir = "/tmp/podpipe-bench"; ///< scratch directory inside the pod (removed)
    bool json = false;
    cp_flags connection; ///< kubeconfig, context, namespace, pod binary, exec protocol
};

int run_bench(const bench_flags& flags);

} // namespace podpipe::cli
