// The two settings every hook suite runs in (issue 20): `plain` (no Pod Security, the test's own
// template if any) and `restricted` (a namespace enforcing Pod Security "restricted", and a
// template that is examples/hook-template-restricted.yaml merged with the test's own and with
// CPU and memory limits on the $job container).
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <string_view>

namespace podpipe::hook::testing {

enum class pod_security { plain, restricted };

/// "plain" or "restricted": the name of a parametrised suite's instance.
std::string to_string(pod_security s);
/// For gtest's messages ("GetParam() = restricted").
inline void PrintTo(pod_security s, std::ostream* os) { *os << to_string(s); }

/// The limits the restricted variant puts on the $job container (and so on step pods).
inline constexpr std::string_view restricted_cpu_limit = "1";
inline constexpr std::string_view restricted_memory_limit = "1Gi";

/// The label that makes a namespace enforce "restricted".
inline constexpr std::string_view enforce_restricted_label =
    "pod-security.kubernetes.io/enforce=restricted";

/// The ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE text for a test whose own template is
/// `test_template` (YAML; empty: none). plain: `test_template` as is. restricted: the example's
/// content with the test's merged in: metadata and spec keys of the test are added (a key both
/// have: the test's wins, except `containers` and `securityContext`, merged key by key); `$name`
/// containers of both are merged the same way, the test's sidecars are appended, and every
/// container gets the example's $job securityContext for what it does not set itself. The $job
/// container gets limits {cpu: restricted_cpu_limit, memory: restricted_memory_limit} unless the
/// test sets limits. Throws std::runtime_error if a YAML text does not parse.
std::string hook_template(pod_security s, const std::string& test_template = "");

/// Writes hook_template(s, test_template) to `file` and names it in `env` (the emulator's
/// extra_env) as ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE; without a template (plain, no test
/// template) removes that name. Throws std::runtime_error as hook_template, or if the file
/// cannot be written.
void set_hook_template(std::map<std::string, std::string>& env, pod_security s,
                       const std::filesystem::path& file, const std::string& test_template = "");

} // namespace podpipe::hook::testing
