// The runner's stdin JSON (spec/hook-behavior.md §2.2), parsed once into typed structs.
// simdjson is used only in input.cpp. Unknown keys are ignored (runners add fields); a known
// key with the wrong JSON type is an error naming the field ("args.services[1].portMappings[0]:
// expected a string"), never a silent default. Never throws.
#pragma once

#include "engine/common/result.hpp"
#include "hooks/commands/errors.hpp"
#include "kube/pod_spec.hpp"

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace podpipe::hook {

enum class command { prepare_job, cleanup_job, run_script_step, run_container_step };

/// "prepare_job" etc.; nullopt for anything else.
std::optional<command> command_from_string(std::string_view s);
std::string_view to_string(command c);

/// An ordered map: the runner's order becomes the pod env order (a later duplicate wins).
using env_list = std::vector<std::pair<std::string, std::string>>;

struct mount {
    std::string source_volume_path;
    std::string target_volume_path;
    bool read_only = false;
};

/// HookContainer: args.container, each of args.services, and the args of run_container_step.
struct container_request {
    std::string image;                     ///< empty: absent/null (Dockerfile actions)
    std::optional<std::string> dockerfile; ///< set: the action must be built
    std::string entry_point;               ///< empty: absent/null
    std::vector<std::string> entry_point_args;
    std::string working_directory;
    std::optional<std::string> create_options; ///< ignored by the k8s hook
    std::optional<kube::registry_credentials> registry;
    env_list environment_variables;
    std::vector<std::string> port_mappings;
    std::vector<mount> system_mount_volumes; ///< ignored: the hook uses its fixed layout
    std::vector<mount> user_mount_volumes;
    /// Also accepted: the state-carrying run_container_step sends prependPath too.
    std::vector<std::string> prepend_path;
};

struct prepare_job_args {
    std::optional<container_request> container; ///< nullopt: absent or null
    std::vector<container_request> services;
};

struct run_script_step_args {
    std::string entry_point;
    std::vector<std::string> entry_point_args;
    env_list environment_variables;
    /// Newest first; runners <= 2.293.0 sent one string (kept as one entry).
    std::vector<std::string> prepend_path;
    std::string working_directory;
};

struct cleanup_job_args {};

/// What a previous response's `state` carried. `jobPod` is the reference's key; podpipe's own
/// additions live under "podpipe" so the reference's readers ignore them.
struct job_state {
    std::string job_pod;
    std::string namespace_name;       ///< podpipe.namespace
    bool permissions_checked = false; ///< podpipe.permissionsChecked
    std::string pull_secret;          ///< podpipe.pullSecret
    /// podpipe.stepRun: the job pod's podpipe has `podpipe run` (found by prepare_job), so a
    /// script step can outlive a broken exec session (exec_step.hpp, exec_step_resumable).
    bool step_run = false;
};

struct hook_input {
    command cmd = command::cleanup_job;
    std::string response_file;
    std::optional<job_state> state; ///< nullopt: absent or null
    std::variant<prepare_job_args, cleanup_job_args, run_script_step_args, container_request> args;
};

/// Larger stdin is refused: the biggest real input is a container step's env (a few KiB to
/// a few hundred KiB with large secrets).
inline constexpr std::size_t max_input_bytes = 16u << 20;

/// Parses the whole of stdin. Like the reference, a multi-line input whose whole text is not
/// JSON is retried with its last non-empty line. Errors: errc::bad_input (with the field path)
/// or errc::unknown_command ("Command not recognized: <x>").
result<hook_input, hook_error> parse_input(std::string_view text);

/// The subset the pod builder needs.
kube::container_source to_container_source(const container_request& req);

} // namespace podpipe::hook
