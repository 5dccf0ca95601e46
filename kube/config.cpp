#include "kube/config.hpp"

#include "kube/base64.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <yaml-cpp/yaml.h>

extern char** environ;

namespace podpipe::kube {

namespace {

namespace fs = std::filesystem;

struct kc_cluster {
    std::string server;
    fs::path ca_file;
    std::optional<std::string> ca_data;
    bool insecure = false;
    std::string tls_server_name;
    std::string proxy_url;
};

struct kc_user {
    std::string token;
    fs::path token_file;
    fs::path cert_file;
    std::optional<std::string> cert_data;
    fs::path key_file;
    std::optional<std::string> key_data;
    std::optional<exec_plugin_config> exec;
    bool auth_provider = false;
    bool basic_auth = false;
};

struct kc_context {
    std::string cluster;
    std::string user;
    std::string ns;
};

struct kubeconfig {
    std::string current_context;
    std::map<std::string, kc_cluster> clusters;
    std::map<std::string, kc_user> users;
    std::map<std::string, kc_context> contexts;
};

// Collects the first schema error of one file.
struct yaml_ctx {
    std::string file;
    std::string error;

    bool ok() const { return error.empty(); }

    void fail(const std::string& where, const std::string& what) {
        if (error.empty())
            error = where + ": " + what;
    }
};

std::optional<std::string> scalar(yaml_ctx& c, const YAML::Node& n, const char* key,
                                  const std::string& where) {
    const YAML::Node v = n[key];
    if (!v.IsDefined() || v.IsNull())
        return std::nullopt;
    if (!v.IsScalar()) {
        c.fail(where + "." + key, "expected a string");
        return std::nullopt;
    }
    return v.Scalar();
}

void get_string(yaml_ctx& c, const YAML::Node& n, const char* key, const std::string& where,
                std::string& out) {
    if (auto s = scalar(c, n, key, where))
        out = std::move(*s);
}

void get_bool(yaml_ctx& c, const YAML::Node& n, const char* key, const std::string& where,
              bool& out) {
    const YAML::Node v = n[key];
    if (!v.IsDefined() || v.IsNull())
        return;
    if (!v.IsScalar() || !YAML::convert<bool>::decode(v, out))
        c.fail(where + "." + key, "expected a boolean");
}

fs::path resolve(const fs::path& dir, const std::string& p) {
    if (p.empty())
        return {};
    fs::path path(p);
    return path.is_relative() ? dir / path : path;
}

void get_path(yaml_ctx& c, const YAML::Node& n, const char* key, const std::string& where,
              const fs::path& dir, fs::path& out) {
    if (auto s = scalar(c, n, key, where); s && !s->empty())
        out = resolve(dir, *s);
}

// *-data: base64 of PEM. Never quote the value in errors (it may be a private key).
void get_data(yaml_ctx& c, const YAML::Node& n, const char* key, const std::string& where,
              std::optional<std::string>& out) {
    auto s = scalar(c, n, key, where);
    if (!s || s->empty())
        return;
    auto decoded = base64_decode(*s);
    if (!decoded)
        return c.fail(where + "." + key, "invalid base64");
    out = std::move(*decoded);
}

// Calls fn(name, body) for each `{name: ..., <body_key>: {...}}` entry of the list `key`.
template <class Fn>
void for_each_named(yaml_ctx& c, const YAML::Node& root, const char* key, const char* body_key,
                    Fn&& fn) {
    const YAML::Node list = root[key];
    if (!list.IsDefined() || list.IsNull())
        return;
    if (!list.IsSequence())
        return c.fail(key, "expected a list");
    std::size_t i = 0;
    for (const YAML::Node& item : list) {
        const std::string where = std::string(key) + "[" + std::to_string(i++) + "]";
        if (!c.ok())
            return;
        if (!item.IsMap())
            return c.fail(where, "expected a map");
        std::string name;
        get_string(c, item, "name", where, name);
        if (!c.ok())
            return;
        if (name.empty())
            return c.fail(where, "missing name");
        const YAML::Node body = item[body_key];
        if (body.IsDefined() && !body.IsNull() && !body.IsMap())
            return c.fail(where + "." + body_key, "expected a map");
        fn(name, body, std::string(key) + "[" + name + "]." + body_key);
    }
}

void parse_exec(yaml_ctx& c, const YAML::Node& e, const std::string& where, const fs::path& dir,
                exec_plugin_config& out) {
    get_string(c, e, "apiVersion", where, out.api_version);
    get_string(c, e, "command", where, out.command);
    get_string(c, e, "interactiveMode", where, out.interactive_mode);
    get_string(c, e, "installHint", where, out.install_hint);
    get_bool(c, e, "provideClusterInfo", where, out.provide_cluster_info);
    out.base_dir = dir;
    const YAML::Node args = e["args"];
    if (args.IsDefined() && !args.IsNull()) {
        if (!args.IsSequence())
            return c.fail(where + ".args", "expected a list");
        for (const YAML::Node& a : args) {
            if (!a.IsScalar())
                return c.fail(where + ".args", "expected strings");
            out.args.push_back(a.Scalar());
        }
    }
    const YAML::Node env = e["env"];
    if (env.IsDefined() && !env.IsNull()) {
        if (!env.IsSequence())
            return c.fail(where + ".env", "expected a list");
        for (const YAML::Node& kv : env) {
            if (!kv.IsMap())
                return c.fail(where + ".env", "expected {name, value} maps");
            std::string name, value;
            get_string(c, kv, "name", where + ".env", name);
            get_string(c, kv, "value", where + ".env", value);
            if (name.empty())
                return c.fail(where + ".env", "entry without a name");
            out.env.emplace_back(std::move(name), std::move(value));
        }
    }
    if (out.command.empty())
        c.fail(where + ".command", "missing");
}

// Parses one file's text and adds the names it defines that `merged` lacks (first wins).
result<void, api_error> merge_kubeconfig(std::string_view text, const fs::path& dir,
                                          const std::string& file_label, kubeconfig& merged) {
    const std::string call = "kubeconfig " + file_label;
    if (text.size() > (16u << 20))
        return fail(api_error(errc::config_invalid, call + ": larger than 16 MiB"));
    YAML::Node root;
    try {
        root = YAML::Load(std::string(text));
    } catch (const YAML::Exception& e) {
        // e.msg names the problem, never the document's values.
        return fail(api_error(errc::config_invalid,
                               call + ": line " + std::to_string(e.mark.line + 1) + " column " +
                                   std::to_string(e.mark.column + 1) + ": " + e.msg));
    } catch (const std::exception& e) {
        return fail(api_error(errc::config_invalid, call + ": cannot parse: " + e.what()));
    }
    if (!root.IsDefined() || root.IsNull())
        return {}; // an empty file contributes nothing, as in client-go
    if (!root.IsMap())
        return fail(api_error(errc::config_invalid, call + ": top level is not a map"));

    yaml_ctx c;
    try {
        std::string current;
        get_string(c, root, "current-context", "", current);
        if (merged.current_context.empty())
            merged.current_context = current;

        for_each_named(c, root, "clusters", "cluster",
                       [&](const std::string& name, const YAML::Node& b, const std::string& w) {
                           if (merged.clusters.count(name) || !b.IsDefined() || b.IsNull()) {
                               if (!merged.clusters.count(name))
                                   merged.clusters[name] = {};
                               return;
                           }
                           kc_cluster k;
                           get_string(c, b, "server", w, k.server);
                           get_path(c, b, "certificate-authority", w, dir, k.ca_file);
                           get_data(c, b, "certificate-authority-data", w, k.ca_data);
                           get_bool(c, b, "insecure-skip-tls-verify", w, k.insecure);
                           get_string(c, b, "tls-server-name", w, k.tls_server_name);
                           get_string(c, b, "proxy-url", w, k.proxy_url);
                           merged.clusters.emplace(name, std::move(k));
                       });
        for_each_named(c, root, "users", "user",
                       [&](const std::string& name, const YAML::Node& b, const std::string& w) {
                           if (merged.users.count(name))
                               return;
                           kc_user u;
                           if (b.IsDefined() && !b.IsNull()) {
                               get_string(c, b, "token", w, u.token);
                               get_path(c, b, "tokenFile", w, dir, u.token_file);
                               get_path(c, b, "client-certificate", w, dir, u.cert_file);
                               get_data(c, b, "client-certificate-data", w, u.cert_data);
                               get_path(c, b, "client-key", w, dir, u.key_file);
                               get_data(c, b, "client-key-data", w, u.key_data);
                               const YAML::Node ex = b["exec"];
                               if (ex.IsDefined() && !ex.IsNull()) {
                                   if (!ex.IsMap())
                                       return c.fail(w + ".exec", "expected a map");
                                   exec_plugin_config e;
                                   parse_exec(c, ex, w + ".exec", dir, e);
                                   u.exec = std::move(e);
                               }
                               const YAML::Node ap = b["auth-provider"];
                               u.auth_provider = ap.IsDefined() && !ap.IsNull();
                               const YAML::Node un = b["username"];
                               u.basic_auth = un.IsDefined() && !un.IsNull();
                           }
                           merged.users.emplace(name, std::move(u));
                       });
        for_each_named(c, root, "contexts", "context",
                       [&](const std::string& name, const YAML::Node& b, const std::string& w) {
                           if (merged.contexts.count(name))
                               return;
                           kc_context k;
                           if (b.IsDefined() && !b.IsNull()) {
                               get_string(c, b, "cluster", w, k.cluster);
                               get_string(c, b, "user", w, k.user);
                               get_string(c, b, "namespace", w, k.ns);
                           }
                           merged.contexts.emplace(name, std::move(k));
                       });
    } catch (const std::exception& e) {
        return fail(api_error(errc::config_invalid, call + ": " + e.what()));
    }
    if (!c.ok())
        return fail(api_error(errc::config_invalid, call + ": " + c.error));
    return {};
}

result<std::string, api_error> read_file(const fs::path& p, const std::string& what) {
    std::ifstream in(p, std::ios::binary);
    if (!in)
        return fail(api_error(errc::config_invalid, "cannot read " + what + " " + p.string() +
                                                         ": " + std::strerror(errno)));
    std::string data;
    char buf[8192];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        data.append(buf, static_cast<std::size_t>(in.gcount()));
        if (data.size() > (16u << 20))
            return fail(api_error(errc::config_invalid, what + " " + p.string() + ": too large"));
    }
    return data;
}

time_source& clock_of(const config_sources& s) { return s.clock ? *s.clock : real_time(); }

std::string trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return std::string(s);
}

// Turns the merged kubeconfig into a cluster_config for the chosen context.
result<cluster_config, api_error> resolve_config(const kubeconfig& kc,
                                                  const config_sources& sources) {
    cluster_config out;
    out.source = cluster_config::origin::kubeconfig;
    out.context_name = sources.context.empty() ? kc.current_context : sources.context;
    const std::string call =
        "kubeconfig context \"" + sanitize_for_message(out.context_name, 128) + "\"";
    if (out.context_name.empty())
        return fail(api_error(errc::config_invalid, "kubeconfig: no current-context is set"));
    auto ctx = kc.contexts.find(out.context_name);
    if (ctx == kc.contexts.end())
        return fail(api_error(errc::config_invalid, call + ": not found"));
    out.cluster_name = ctx->second.cluster;
    out.user_name = ctx->second.user;
    if (!ctx->second.ns.empty())
        out.ns = ctx->second.ns;

    auto cl = kc.clusters.find(out.cluster_name);
    if (cl == kc.clusters.end())
        return fail(api_error(errc::config_invalid,
                               call + ": cluster \"" + sanitize_for_message(out.cluster_name, 128) +
                                   "\" not found"));
    const kc_cluster& k = cl->second;
    if (k.server.empty())
        return fail(api_error(errc::config_invalid, call + ": cluster has no server"));
    out.server = k.server;
    while (out.server.size() > 1 && out.server.back() == '/')
        out.server.pop_back();
    out.insecure_skip_tls_verify = k.insecure;
    out.tls_server_name = k.tls_server_name;
    out.proxy_url = k.proxy_url;
    if (k.insecure && (k.ca_data || !k.ca_file.empty()))
        return fail(api_error(errc::config_invalid,
                               call + ": insecure-skip-tls-verify cannot be combined with a "
                                      "certificate authority"));
    if (k.ca_data) {
        out.ca_pem = *k.ca_data;
    } else if (!k.ca_file.empty()) {
        out.ca_file = k.ca_file;
        if (sources.read_files) {
            auto pem = read_file(k.ca_file, "certificate-authority");
            if (!pem)
                return fail(pem.error());
            out.ca_pem = std::move(*pem);
        }
    }

    credentials base;
    const kc_user* user = nullptr;
    if (!out.user_name.empty()) {
        auto u = kc.users.find(out.user_name);
        if (u == kc.users.end())
            return fail(api_error(errc::config_invalid,
                                   call + ": user \"" + sanitize_for_message(out.user_name, 128) +
                                       "\" not found"));
        user = &u->second;
    }
    if (!user) {
        out.credentials = std::make_shared<static_credentials>(base);
        return out;
    }
    const std::string ucall = call + " user \"" + sanitize_for_message(out.user_name, 128) + "\"";
    if (user->auth_provider)
        return fail(api_error(errc::config_invalid,
                               ucall + ": auth-provider is unsupported (use an exec plugin)"));
    if (user->basic_auth && user->token.empty() && user->token_file.empty() && !user->exec &&
        !user->cert_data && user->cert_file.empty())
        return fail(api_error(errc::config_invalid,
                               ucall + ": username/password authentication is unsupported"));
    if (user->cert_data) {
        base.client_cert_pem = *user->cert_data;
    } else if (!user->cert_file.empty() && sources.read_files) {
        auto pem = read_file(user->cert_file, "client-certificate");
        if (!pem)
            return fail(pem.error());
        base.client_cert_pem = std::move(*pem);
    }
    if (user->key_data) {
        base.client_key_pem = *user->key_data;
    } else if (!user->key_file.empty() && sources.read_files) {
        auto pem = read_file(user->key_file, "client-key");
        if (!pem)
            return fail(pem.error());
        base.client_key_pem = std::move(*pem);
    }
    if (sources.read_files && base.client_cert_pem.empty() != base.client_key_pem.empty())
        return fail(api_error(errc::config_invalid,
                               ucall + ": a client certificate needs both certificate and key"));

    if (!user->token_file.empty()) {
        out.credentials = std::make_shared<token_source>(user->token_file, clock_of(sources),
                                                         sources.token_refresh, user->token, base);
    } else if (!user->token.empty()) {
        base.bearer_token = user->token;
        out.credentials = std::make_shared<static_credentials>(base);
    } else if (user->exec) {
        exec_plugin_config e = *user->exec;
        e.cluster_server = out.server;
        e.cluster_tls_server_name = out.tls_server_name;
        e.cluster_insecure_skip_tls_verify = out.insecure_skip_tls_verify;
        e.cluster_ca_pem = out.ca_pem;
        e.cluster_proxy_url = out.proxy_url;
        out.credentials =
            std::make_shared<exec_credential_plugin>(std::move(e), sources.env, clock_of(sources));
    } else {
        out.credentials = std::make_shared<static_credentials>(base);
    }
    return out;
}

std::string env_of(const config_sources& s, const char* key) {
    auto it = s.env.find(key);
    return it == s.env.end() ? std::string() : it->second;
}

result<cluster_config, api_error> load_in_cluster(const config_sources& s) {
    const std::string host = env_of(s, "KUBERNETES_SERVICE_HOST");
    const std::string port = env_of(s, "KUBERNETES_SERVICE_PORT");
    cluster_config out;
    out.source = cluster_config::origin::in_cluster;
    out.server = in_cluster_server(host, port);
    const fs::path token = s.service_account_dir / "token";
    auto src = std::make_shared<token_source>(token, clock_of(s), s.token_refresh);
    // Fail now, not on the first request, when the token is unreadable.
    if (auto first = src->current(); !first) {
        api_error e = first.error();
        e.code = make_error_code(errc::config_invalid);
        e.detail = "in-cluster configuration: " + e.detail;
        return fail(std::move(e));
    }
    out.credentials = std::move(src);
    const fs::path ca = s.service_account_dir / "ca.crt";
    std::error_code ec;
    if (fs::exists(ca, ec)) {
        auto pem = read_file(ca, "service-account ca.crt");
        if (!pem)
            return fail(pem.error());
        out.ca_pem = std::move(*pem);
        out.ca_file = ca;
    }
    if (std::string ns = env_of(s, "POD_NAMESPACE"); !ns.empty()) {
        out.ns = ns;
    } else if (fs::exists(s.service_account_dir / "namespace", ec)) {
        if (auto text = read_file(s.service_account_dir / "namespace", "namespace file")) {
            if (std::string t = trim(*text); !t.empty())
                out.ns = t;
        }
    }
    return out;
}

} // namespace

std::string in_cluster_server(std::string_view host, std::string_view port) {
    std::string s = "https://";
    const bool ipv6 = host.find(':') != std::string_view::npos && host.front() != '[';
    if (ipv6)
        s += '[';
    s += host;
    if (ipv6)
        s += ']';
    s += ':';
    s += port;
    return s;
}

config_sources config_sources::from_process() {
    config_sources s;
    for (char** e = environ; e && *e; ++e) {
        std::string_view kv(*e);
        auto eq = kv.find('=');
        if (eq == std::string_view::npos)
            continue;
        s.env.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
    }
    return s;
}

result<cluster_config, api_error> load_kubeconfig_text(std::string_view text,
                                                        const std::filesystem::path& dir,
                                                        const config_sources& sources) {
    kubeconfig kc;
    PODPIPE_TRY(merge_kubeconfig(text, dir, "(text)", kc));
    return resolve_config(kc, sources);
}

result<cluster_config, api_error> load_config(const config_sources& s) {
    std::vector<fs::path> files;
    if (s.kubeconfig) {
        std::error_code ec;
        if (!fs::exists(*s.kubeconfig, ec))
            return fail(api_error(errc::config_missing,
                                   "kubeconfig " + s.kubeconfig->string() + " does not exist"));
        files.push_back(*s.kubeconfig);
    } else if (auto kcenv = s.env.find("KUBECONFIG");
               kcenv != s.env.end() && !kcenv->second.empty()) {
        const std::string& list = kcenv->second;
        std::size_t start = 0;
        while (start <= list.size()) {
            std::size_t end = list.find(':', start);
            if (end == std::string::npos)
                end = list.size();
            if (end > start) {
                fs::path p(list.substr(start, end - start));
                std::error_code ec;
                if (fs::exists(p, ec))
                    files.push_back(p);
            }
            start = end + 1;
        }
    } else if (std::string home = env_of(s, "HOME"); !home.empty()) {
        fs::path p = fs::path(home) / ".kube" / "config";
        std::error_code ec;
        if (fs::exists(p, ec))
            files.push_back(p);
    }

    if (!files.empty()) {
        kubeconfig kc;
        for (const auto& f : files) {
            auto text = read_file(f, "kubeconfig");
            if (!text)
                return fail(text.error());
            fs::path dir = f.parent_path();
            if (dir.empty())
                dir = ".";
            PODPIPE_TRY(merge_kubeconfig(*text, dir, f.string(), kc));
        }
        return resolve_config(kc, s);
    }
    if (!env_of(s, "KUBERNETES_SERVICE_HOST").empty() &&
        !env_of(s, "KUBERNETES_SERVICE_PORT").empty())
        return load_in_cluster(s);
    return fail(api_error(errc::config_missing,
                           "no kubeconfig (KUBECONFIG, $HOME/.kube/config) and not running in a "
                           "cluster (KUBERNETES_SERVICE_HOST/PORT unset)"));
}

} // namespace podpipe::kube
