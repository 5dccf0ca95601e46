// Waiting for a pod to run (spec/hook-behavior.md §3.4), reporting why it does not: the
// reference polls with a back-off up to 20 s and ends with "backoff timeout"; podpipe watches
// the pod (sees each change at once), fails at once on states that cannot recover, and its
// timeout error carries the last reason seen (image pull, unschedulable, volume attach, init
// container...).
#pragma once

#include "engine/common/result.hpp"
#include "kube/api_types.hpp"
#include "kube/errors.hpp"

#include <chrono>
#include <functional>
#include <stop_token>
#include <string>
#include <string_view>

namespace podpipe::kube {
class api_client;
}

namespace podpipe::hook {

/// What a pod's status says about reaching Running.
struct pod_outlook {
    enum class verdict { running, waiting, failed };
    verdict state = verdict::waiting;
    std::string why; ///< waiting: the current obstacle (may be empty); failed: the cause
};

/// Pure: reads phase, conditions and container states. Terminal: phase Failed/Succeeded, an
/// init container that exited non-zero, a container waiting with InvalidImageName,
/// ErrImageNeverPull, CreateContainerConfigError or CreateContainerError. Image pull back-off,
/// scheduling and volume attach problems are waits (they can clear) whose reason is kept.
pod_outlook assess_pod(const kube::pod& p);

struct wait_options {
    std::chrono::milliseconds timeout{600'000};
    std::chrono::milliseconds first_poll{200};
    std::chrono::milliseconds max_poll{2'000};
    /// Called when the obstacle changes (for a ::debug:: line), may be empty.
    std::function<void(const std::string&)> on_change;
    /// Ends the wait at once (errc::cancelled) when requested: SIGINT/SIGTERM of the hook.
    std::stop_token stop;
};

/// Waits until the pod runs: kube::wait_for_pod (a watch; polling with first_poll..max_poll
/// where watching pods is not allowed). Errors (errc from hooks/commands/errors.hpp is not
/// used here: the message is the point): "pod NAME failed to come online: WHY" for terminal
/// states, "pod NAME did not reach Running within Ns: WHY" on timeout, "pod NAME: interrupted
/// while waiting for it to run" on a stop, or the API error after the client's own retries.
result<kube::pod, kube::api_error> wait_for_running(kube::api_client& client, std::string_view ns,
                                                   std::string_view name, const wait_options& opt);

} // namespace podpipe::hook
