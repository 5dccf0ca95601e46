// copy_tree: a tree → another tree on the same machine through the engine: send_tree into one
// end of a pipe on its own thread, recv_tree from the other on the caller's. Parallel reads and
// writes, the manifest checked, selections, deletions and the snapshot as over any link.
#pragma once

#include "engine/common/result.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"
#include "engine/pipeline/stats.hpp"

#include <stop_token>
#include <string>

namespace podpipe::pipeline {

struct copy_tree_stats {
    transfer_stats sent;     ///< the sender's (snapshot, deletions carried, manifest)
    transfer_stats received; ///< the receiver's (deletions applied, problems reported)
};

/// Copies `source` into `dest` (created if missing). `send.level` 0 (stored) is what a local
/// copy wants: compression would only cost CPU. The receive side always requires the manifest.
/// Errors: the first failure, its detail prefixed with "reading: " or "writing: " (the side
/// that failed first); a sender's problems are not errors (see received.problems).
result<copy_tree_stats, transfer_error> copy_tree(const std::string& source,
                                                  const std::string& dest,
                                                  const send_options& send,
                                                  const recv_options& recv,
                                                  std::stop_token stop = {});

} // namespace podpipe::pipeline
