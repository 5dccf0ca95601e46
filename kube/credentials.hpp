// Credentials for API requests (spec/kube-api.md §4): static tokens and client certificates,
// the rotating service-account token file, and exec credential plugins. The REST client asks
// current() before each request and calls invalidate() after a 401, then retries once.
//
// Secrets never appear in api_error texts: errors name the file or the plugin command, not
// the token. Providers are thread-safe.
#pragma once

#include "engine/common/result.hpp"
#include "kube/errors.hpp"
#include "kube/time_source.hpp"

#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace podpipe::kube {

struct credentials {
    std::string bearer_token;    ///< empty: no Authorization header
    std::string client_cert_pem; ///< empty: no client certificate
    std::string client_key_pem;
};

class credential_provider {
public:
    virtual ~credential_provider() = default;
    /// The credentials to use now, refreshed when stale or after invalidate().
    virtual result<credentials, api_error> current() = 0;
    /// The server rejected the last credentials (401): the next current() re-fetches.
    virtual void invalidate() = 0;
};

/// Fixed credentials (kubeconfig token / client certificate, or none).
class static_credentials final : public credential_provider {
public:
    explicit static_credentials(credentials c)
        : creds_(std::move(c)) {}

    result<credentials, api_error> current() override { return creds_; }

    void invalidate() override {}

private:
    credentials creds_;
};

/// A bearer token read from a file that rotates (projected service-account token,
/// kubeconfig tokenFile): re-read when the cached copy is older than `refresh` or after
/// invalidate(). If a re-read fails, the last good token is kept; before any good read,
/// `fallback_token` (kubeconfig `token`) is used if set, else the read error is returned.
class token_source final : public credential_provider {
public:
    token_source(std::filesystem::path file, time_source& clock,
                 std::chrono::seconds refresh = std::chrono::seconds(60),
                 std::string fallback_token = {}, credentials base = {});

    result<credentials, api_error> current() override;
    void invalidate() override;

    const std::filesystem::path& file() const { return file_; }

private:
    std::filesystem::path file_;
    time_source& clock_;
    std::chrono::seconds refresh_;
    std::string fallback_;
    credentials base_;
    std::mutex mu_;
    std::string token_;
    std::optional<std::chrono::steady_clock::time_point> read_at_;
};

/// users[].user.exec of a kubeconfig.
struct exec_plugin_config {
    std::string api_version; ///< client.authentication.k8s.io/v1 or /v1beta1
    std::string command;     ///< bare name: searched in PATH; with '/': relative to base_dir
    std::vector<std::string> args;
    std::vector<std::pair<std::string, std::string>> env;
    std::string interactive_mode; ///< Never, IfAvailable, Always ("" in v1beta1)
    std::string install_hint;
    std::filesystem::path base_dir; ///< directory of the kubeconfig that defined it
    /// provideClusterInfo: KUBERNETES_EXEC_INFO then carries spec.cluster (below).
    bool provide_cluster_info = false;
    std::string cluster_server;
    std::string cluster_tls_server_name;
    bool cluster_insecure_skip_tls_verify = false;
    std::string cluster_ca_pem; ///< sent base64-encoded as certificate-authority-data
    std::string cluster_proxy_url;
};

/// Runs an exec credential plugin (§4.4) and caches its ExecCredential until
/// expirationTimestamp (or, without one, until invalidate()). stdin is /dev/null and
/// `interactive` is false; interactiveMode Always cannot be satisfied and fails.
/// The plugin gets `parent_env` plus its `env` plus KUBERNETES_EXEC_INFO; it is killed after
/// `timeout`; its stdout is bounded to 1 MiB.
class exec_credential_plugin final : public credential_provider {
public:
    exec_credential_plugin(exec_plugin_config cfg, std::map<std::string, std::string> parent_env,
                           time_source& clock,
                           std::chrono::seconds timeout = std::chrono::seconds(60));

    result<credentials, api_error> current() override;
    void invalidate() override;
    /// How many times the plugin ran (for tests of the cache).
    int runs() const;

private:
    result<credentials, api_error> run_plugin();

    exec_plugin_config cfg_;
    std::map<std::string, std::string> parent_env_;
    time_source& clock_;
    std::chrono::seconds timeout_;
    mutable std::mutex mu_;
    std::optional<credentials> cached_;
    std::optional<std::chrono::system_clock::time_point> expires_;
    int runs_ = 0;
};

/// RFC 3339 ("2024-05-01T11:00:00Z", fractions and numeric offsets accepted; the fraction is
/// dropped). A valid time that system_clock cannot hold (libstdc++: before 1677-09-21T00:12:44Z
/// or after 2262-04-11T23:47:16Z) clamps to time_point::min() / max(): an exec plugin's
/// expirationTimestamp of 9999-12-31 means "not expired", a log stamp after 2262 the newest.
/// nullopt for anything that is not RFC 3339.
std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s);

} // namespace podpipe::kube
