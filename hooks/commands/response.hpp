// The response file (spec/hook-behavior.md §2.3) and the state carried between invocations.
// prepare_job answers with state + context + isAlpine; other commands may answer with a new
// state only. The file is replaced atomically (temp file in the same directory, fsync, rename),
// so the runner never reads a half-written response even if the hook is killed mid-write.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/errors.hpp"
#include "hooks/commands/input.hpp"
#include "kube/api_types.hpp"

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::hook {

/// context.container / context.services[i]: ports maps container port → host port, both as
/// strings; only mappings with a host port appear (the runner reads them as
/// job.services.<label>.ports).
struct response_container {
    std::string image;
    std::map<std::string, std::string> ports;
};

struct prepare_job_response {
    job_state state;
    std::optional<response_container> container; ///< iff the pod has a `job` container
    /// In request order (the runner matches them to args.services by index); the key is written
    /// only when the request had services.
    std::vector<response_container> services;
    bool is_alpine = false; ///< mandatory for the runner when a job container was requested
};

/// context ports of one generated container (§2.3). Unlike the reference (always `{}` for the
/// job container), podpipe reports the job container's mappings too.
std::map<std::string, std::string> response_ports(const std::vector<kube::container_port>& ports);

/// The prepare_job response for a created job pod: context.container from the pod's `job`
/// container (if any), context.services from the containers named in `service_names` (the
/// generated names in request order; template sidecars are never listed).
prepare_job_response make_prepare_response(const kube::pod& job_pod,
                                           const std::vector<std::string>& service_names,
                                           job_state state, bool is_alpine);

/// {"state":{...},"context":{...},"isAlpine":b}
std::string to_json(const prepare_job_response& r);
/// {"state":{...}}: for commands that change the state.
std::string state_response_json(const job_state& s);
/// The state object alone: {"jobPod":"...","podpipe":{...}}.
std::string to_json(const job_state& s);

/// Replaces the runner-created file at `path` with `json` + "\n". Errors (errc::response_file):
/// empty path → "Expected file path"; no such file → "Missing file at path: <p>"; otherwise the
/// failing system call and errno text. The file keeps the runner's mode.
result<void, hook_error> write_response_file(std::string_view path, std::string_view json);

} // namespace podpipe::hook
