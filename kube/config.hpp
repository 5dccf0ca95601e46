// Where to reach the API server and how to authenticate (spec/kube-api.md §4).
//
// Order (kubectl/client-go): an explicit kubeconfig (must exist) → KUBECONFIG (several files
// merged: first definition of a name wins, first current-context wins, missing files
// skipped) → $HOME/.kube/config → in-cluster (KUBERNETES_SERVICE_HOST/PORT plus the
// service-account files) → config_missing. Every input (environment, file locations, clock)
// is injected through config_sources so tests run in temp directories.
//
// Certificates and keys are loaded into memory here (PEM text); tokens stay behind a
// credential_provider so they can rotate. No error text contains a token or key.
#pragma once

#include "engine/common/result.hpp"
#include "kube/credentials.hpp"
#include "kube/errors.hpp"
#include "kube/time_source.hpp"

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace podpipe::kube {

struct config_sources {
    /// The process environment: KUBERNETES_SERVICE_HOST, KUBERNETES_SERVICE_PORT,
    /// POD_NAMESPACE, KUBECONFIG, HOME, and PATH (exec plugins); passed to exec plugins.
    std::map<std::string, std::string> env;
    std::filesystem::path service_account_dir = "/var/run/secrets/kubernetes.io/serviceaccount";
    /// --kubeconfig: when set, only this file is used and it must exist.
    std::optional<std::filesystem::path> kubeconfig;
    /// --context: overrides current-context when non-empty.
    std::string context;
    /// How often the service-account token / tokenFile is re-read.
    std::chrono::seconds token_refresh{60};
    /// Clock for token refresh and exec-credential expiry; null means real_time().
    time_source* clock = nullptr;
    /// false: files a kubeconfig references (CA, client cert/key) are not opened; for
    /// fuzzing the parser without touching the file system.
    bool read_files = true;

    /// The real process environment and default paths.
    static config_sources from_process();
};

struct cluster_config {
    enum class origin { in_cluster, kubeconfig };
    origin source = origin::kubeconfig;
    std::string context_name; ///< empty for in-cluster
    std::string cluster_name;
    std::string user_name;

    /// "https://host:port[/path-prefix]", IPv6 hosts in brackets; no trailing slash.
    std::string server;
    std::string ca_pem;                    ///< empty: system roots (or insecure)
    std::filesystem::path ca_file;         ///< where ca_pem came from; empty for -data
    bool insecure_skip_tls_verify = false; ///< the caller should log a warning
    std::string tls_server_name;           ///< SNI and verification name override
    std::string proxy_url;
    std::string ns = "default"; ///< context namespace / in-cluster namespace

    /// Never null.
    std::shared_ptr<credential_provider> credentials;
};

result<cluster_config, api_error> load_config(const config_sources& sources);

/// "https://" + host + ":" + port with IPv6 literals bracketed.
std::string in_cluster_server(std::string_view host, std::string_view port);

/// Parses one kubeconfig text (YAML or JSON) and resolves it as if it were the only file in
/// `dir`; used by the fuzzer and by load_config. Never throws.
result<cluster_config, api_error> load_kubeconfig_text(std::string_view text,
                                                        const std::filesystem::path& dir,
                                                        const config_sources& sources);

} // namespace podpipe::kube
