// The pods/exec request (spec/kube-api.md §2.1, §2.2) and the decoding of its status channel
// (§2.4). The transport receives the path and subprotocols as opaque values and hands the
// channel-3 payload back as bytes; this file is where they get their Kubernetes meaning.
#pragma once

#include "engine/common/result.hpp"
#include "kube/errors.hpp"

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podpipe::kube {

struct exec_options {
    std::string ns;
    std::string pod;
    std::string container;            ///< empty: omitted (the server picks the only container)
    std::vector<std::string> command; ///< argv, one query value each; must not be empty
    bool use_stdin = true;
    bool use_stdout = true;
    bool use_stderr = true;
    bool tty = false; ///< sent only when true
};

/// Offered in this order: v5 gives stdin half-close (§2.5); v4 still reports exit codes.
inline constexpr std::array<std::string_view, 2> exec_subprotocols = {"v5.channel.k8s.io",
                                                                      "v4.channel.k8s.io"};

/// Percent-encodes everything but RFC 3986 unreserved characters (space becomes %20).
std::string percent_encode(std::string_view s);

/// "/api/v1/namespaces/NS/pods/P/exec?command=..&command=..&container=C&stdin=true&..."
/// Fails (bad_request) on an empty command, namespace or pod name.
result<std::string, api_error> exec_path(const exec_options& opts);

/// The exit code from the channel-3 status message (§2.4). `payload` is nullopt when the
/// session ended without one: that is missing_status, never success. Success → 0;
/// NonZeroExitCode → the ExitCode cause (0..255); any other Failure → exec_failed with the
/// server's message; malformed JSON or a missing/bad ExitCode cause → bad_response.
/// `call` names the exec for error texts (e.g. "exec in ns1/p1").
result<int, api_error> exec_exit_code(std::optional<std::string_view> payload,
                                       std::string_view call);

} // namespace podpipe::kube
