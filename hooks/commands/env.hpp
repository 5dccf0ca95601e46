// The environment variables the hook reads (spec/hook-behavior.md §2.6), in one typed struct
// read from an injected map, so tests never touch the process environment. Reading validates
// everything that is wrong for every command (missing runner pod name, an unknown workspace
// mode, malformed podpipe settings); values with a documented fallback produce a warning
// instead (as the reference does for the prepare-job timeout). Paths the runner sets
// (RUNNER_WORKSPACE, GITHUB_WORKSPACE, RUNNER_TEMP) are kept raw: only the commands that use
// them check them (cleanup_job needs none).
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/errors.hpp"

#include <chrono>
#include <cstddef>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::remote {
struct retry_policy;
}

namespace podpipe::hook {

using env_map = std::map<std::string, std::string, std::less<>>;

/// The process environment (envp as passed to main, or `environ`) as a map.
env_map env_from_environ(const char* const* envp);

enum class workspace_mode {
    stream, ///< emptyDir volumes, files moved through exec (default)
    volume, ///< the runner's work PVC mounted into the job pod
};

/// hook_env::compression_level for "auto" (equal to pipeline::auto_level).
inline constexpr int auto_compression_level = -1;

struct hook_env {
    // ---- the reference hook's variables ----
    std::string runner_pod_name; ///< ACTIONS_RUNNER_POD_NAME, required, a valid label value
    std::string namespace_name;  ///< ACTIONS_RUNNER_KUBERNETES_NAMESPACE; empty: from config
    std::string template_path;   ///< ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE; empty: none
    std::chrono::seconds prepare_job_timeout{600}; ///< ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS
    std::string runner_image;                      ///< ACTIONS_RUNNER_IMAGE (fs-init image)
    std::chrono::milliseconds heartbeat_period{5000};    ///< ACTIONS_RUNNER_HEARTBEAT_PERIOD_MS
    std::chrono::milliseconds heartbeat_deadline{61000}; ///< ..._DEADLINE_MS, 12 x period + 1 s
    /// PODPIPE_STEP_REATTACH_SECONDS: how long a step under `podpipe run` is re-attached after
    /// its session broke (0 = never: fail as without it). Default 300.
    std::chrono::milliseconds step_reattach{300'000};
    /// PODPIPE_COPY_RETRY_SECONDS: how long after a copy's first failure it is tried again
    /// (remote/retry.hpp: backoff with jitter, each attempt from the start); 0 = one attempt.
    /// Default 120.
    std::chrono::milliseconds copy_retry{120'000};
    /// The retries of copies and of the one-shot execs (remote/retry.hpp) under copy_retry.
    remote::retry_policy copy_retry_policy() const;
    std::string claim_name; ///< ACTIONS_RUNNER_CLAIM_NAME, default <pod>-work
    bool rwo = false;       ///< ACTIONS_RUNNER_HOOK_RWO == "true" exactly
    /// ACTIONS_RUNNER_DISABLE_KUBE_SCHEDULER / ACTIONS_RUNNER_USE_KUBE_SCHEDULER that are set
    /// (old setups): volume mode ignores them and says what to set instead.
    std::vector<std::string> old_scheduler_knobs;
    /// ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER: read by the runner, not the hook; kept for logs.
    bool require_job_container = false;
    // ---- set by the runner for every step ----
    std::string runner_workspace; ///< RUNNER_WORKSPACE (W = its parent)
    std::string github_workspace; ///< GITHUB_WORKSPACE
    std::string runner_temp;      ///< RUNNER_TEMP
    // ---- podpipe's own ----
    workspace_mode mode = workspace_mode::stream; ///< PODPIPE_WORKSPACE_MODE=stream|volume
    /// PODPIPE_COMPRESSION_LEVEL: "auto" (default, auto_compression_level: level 1, raised per
    /// chunk while a slow link is the bottleneck; BENCHMARKS.md) or a fixed 0..12.
    int compression_level = -1;
    unsigned threads = 0; ///< PODPIPE_THREADS: 0 (default) = usable_cores(), else 1..256
    /// PODPIPE_POD_THREADS: --threads of the in-pod podpipe; 0 (default) = the pod's cores.
    unsigned pod_threads = 0;
    /// PODPIPE_CHUNK_SIZE: uncompressed bytes per gzip member (optional Ki/Mi suffix),
    /// 64Ki..8Mi; default 1Mi. `podpipe bench` recommends one for a cluster.
    std::size_t chunk_bytes = std::size_t{1} << 20;
    /// PODPIPE_MEMORY_BUDGET: bytes for the transfer pipeline, with an optional Ki/Mi/Gi suffix;
    /// default 256 MiB (or a quarter of the runner's cgroup memory limit when that is less,
    /// at least 32 MiB: parse_env), at least 4 MiB.
    std::size_t memory_budget_bytes = std::size_t{256} << 20;
    /// PODPIPE_RECV_PATH: the directory of the in-pod `podpipe` binary; default /__e/podpipe (the runner image's
    /// externals reach the job pod at /__e).
    std::string recv_path = "/__e/podpipe";
    /// PODPIPE_ALLOW_INCOMPLETE=true: a copy whose sender could not read some files (or saw
    /// them change while reading) succeeds with warnings; by default it fails the command.
    bool allow_incomplete = false;

    /// Fallbacks taken, as the reference words them (for ::warning:: lines).
    std::vector<std::string> warnings;

    /// W: the parent of RUNNER_WORKSPACE; bad_env if RUNNER_WORKSPACE is unset or has no parent.
    result<std::string, hook_error> work_root() const;
};

/// Reads and validates. Errors (errc::bad_env) name the variable and what it must be; the
/// missing pod name gives the reference text "'ACTIONS_RUNNER_POD_NAME' env is required, ...".
result<hook_env, hook_error> read_env(const env_map& env);

/// The reference's integer parse for timeouts and heartbeat periods: leading whitespace, an
/// optional sign and base-10 digits (like C atoi / JS parseInt: "10abc" → 10, "1500.9" → 1500);
/// nullopt when no digit leads or the value overflows.
std::optional<long long> parse_leading_int(std::string_view text);

} // namespace podpipe::hook
