#include "kube/base64.hpp"
#include "kube/config.hpp"

#include <cstdlib>
#include <fstream>
#include <sys/stat.h>

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* secret_token = "tok-S3CRET-do-not-leak";

class K8sConfig : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "k8s_config_XXXXXX").string();
        ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
        dir_ = tmpl;
        src_.env["PATH"] = "/usr/bin:/bin";
        src_.service_account_dir = dir_ / "sa";
        src_.clock = &clock_;
    }

    void TearDown() override {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }

    fs::path write(const fs::path& rel, std::string_view text, bool exec = false) {
        fs::path p = dir_ / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary | std::ios::trunc) << text;
        if (exec)
            ::chmod(p.c_str(), 0755);
        return p;
    }

    // bin/get-token counts its runs in dir_/counter and prints the token exec-token-<run>,
    // expiring at `expiry`; it fails without the exec info and args the kubeconfig gives it.
    void use_counting_plugin(std::string_view expiry);

    credentials creds(const cluster_config& c) {
        auto r = c.credentials->current();
        EXPECT_TRUE(r) << (r ? "" : r.error().what());
        return r ? *r : credentials{};
    }

    fs::path dir_;
    simulated_time clock_;
    config_sources src_;
};

constexpr std::string_view basic_yaml = R"(apiVersion: v1
kind: Config
current-context: ctx-a
preferences: {}
clusters:
- name: c1
  cluster:
    server: https://127.0.0.1:6443/
    certificate-authority: certs/ca.crt
    tls-server-name: kubernetes.default
users:
- name: u-token
  user:
    token: tok-S3CRET-do-not-leak
contexts:
- name: ctx-a
  context: {cluster: c1, user: u-token, namespace: team-a}
- name: ctx-b
  context: {cluster: c1, user: u-token}
)";

TEST_F(K8sConfig, KubeconfigFromHomeWithRelativeCa) {
    write("home/.kube/certs/ca.crt", "CA-PEM");
    write("home/.kube/config", basic_yaml);
    src_.env["HOME"] = (dir_ / "home").string();
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->source, cluster_config::origin::kubeconfig);
    EXPECT_EQ(c->server, "https://127.0.0.1:6443");
    EXPECT_EQ(c->ca_pem, "CA-PEM");
    EXPECT_EQ(c->ca_file, dir_ / "home/.kube/certs/ca.crt");
    EXPECT_EQ(c->tls_server_name, "kubernetes.default");
    EXPECT_EQ(c->ns, "team-a");
    EXPECT_EQ(c->context_name, "ctx-a");
    EXPECT_EQ(creds(*c).bearer_token, secret_token);
    src_.context = "ctx-b";
    auto b = load_config(src_);
    ASSERT_TRUE(b);
    EXPECT_EQ(b->ns, "default");
}

TEST_F(K8sConfig, JsonKubeconfigWithDataFields) {
    const std::string json =
        R"({"apiVersion":"v1","kind":"Config","current-context":"x",
        "clusters":[{"name":"c","cluster":{"server":"https://[::1]:6443","certificate-authority-data":")" +
        base64_encode("DATA-CA") + R"("}}],
        "users":[{"name":"u","user":{"client-certificate-data":")" +
        base64_encode("CERT") + R"(","client-key-data":")" + base64_encode("KEY") + R"("}}],
        "contexts":[{"name":"x","context":{"cluster":"c","user":"u","namespace":"n"}}]})";
    src_.kubeconfig = write("kc.json", json);
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->server, "https://[::1]:6443");
    EXPECT_EQ(c->ca_pem, "DATA-CA");
    credentials k = creds(*c);
    EXPECT_EQ(k.client_cert_pem, "CERT");
    EXPECT_EQ(k.client_key_pem, "KEY");
    EXPECT_TRUE(k.bearer_token.empty());
}

TEST_F(K8sConfig, DataBeatsFileAndClientCertFiles) {
    write("a/key.pem", "KEYFILE");
    write("a/cert.pem", "CERTFILE");
    src_.kubeconfig = write("a/config", std::string(R"(current-context: x
clusters:
- name: c
  cluster:
    server: https://h:1
    certificate-authority: missing.crt
    certificate-authority-data: )") + base64_encode("DATA") +
                                            R"(
users:
- name: u
  user: {client-certificate: cert.pem, client-key: key.pem}
contexts:
- name: x
  context: {cluster: c, user: u}
)");
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->ca_pem, "DATA");
    EXPECT_EQ(creds(*c).client_cert_pem, "CERTFILE");
    EXPECT_EQ(creds(*c).client_key_pem, "KEYFILE");
}

TEST_F(K8sConfig, KubeconfigMergeFirstWins) {
    write("one/config", R"(current-context: ctx-1
clusters:
- name: shared
  cluster: {server: "https://first:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: first-token}
contexts:
- name: ctx-1
  context: {cluster: shared, user: u, namespace: one}
)");
    write("two/config", R"(current-context: ctx-2
clusters:
- name: shared
  cluster: {server: "https://second:2"}
- name: only2
  cluster: {server: "https://only2:3", certificate-authority: ca.pem}
users:
- name: u
  user: {token: second-token}
- name: u2
  user: {tokenFile: tok}
contexts:
- name: ctx-1
  context: {cluster: only2, user: u2}
- name: ctx-2
  context: {cluster: only2, user: u2, namespace: two}
)");
    write("two/ca.pem", "CA2");
    write("two/tok", "file-token\n");
    src_.env["KUBECONFIG"] = "::" + (dir_ / "missing").string() + ":" +
                             (dir_ / "one/config").string() + ":" + (dir_ / "two/config").string() +
                             ":";
    src_.env["HOME"] = (dir_ / "nohome").string();
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->context_name, "ctx-1");     // first current-context
    EXPECT_EQ(c->server, "https://first:1"); // first definition of "shared"
    EXPECT_TRUE(c->insecure_skip_tls_verify);
    EXPECT_EQ(c->ns, "one");
    EXPECT_EQ(creds(*c).bearer_token, "first-token");
    src_.context = "ctx-2";
    auto c2 = load_config(src_);
    ASSERT_TRUE(c2) << c2.error().what();
    EXPECT_EQ(c2->server, "https://only2:3");
    EXPECT_EQ(c2->ca_pem, "CA2"); // relative to the second file's directory
    EXPECT_EQ(creds(*c2).bearer_token, "file-token");
}

TEST_F(K8sConfig, Errors) {
    src_.kubeconfig = dir_ / "none";
    auto missing = load_config(src_);
    ASSERT_FALSE(missing);
    EXPECT_TRUE(missing.error().is(errc::config_missing));

    src_.kubeconfig = write("bad", "clusters: [unclosed\n  token: " + std::string(secret_token));
    auto bad = load_config(src_);
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().is(errc::config_invalid));
    EXPECT_EQ(bad.error().what().find(secret_token), std::string::npos) << bad.error().what();

    src_.kubeconfig = write("noctx", "clusters: []\n");
    EXPECT_FALSE(load_config(src_));
    src_.kubeconfig = write("ctxmissing", "current-context: nope\ncontexts: []\n");
    EXPECT_FALSE(load_config(src_));
    src_.kubeconfig = write("insecure+ca", R"(current-context: x
clusters: [{name: c, cluster: {server: "https://h", insecure-skip-tls-verify: true, certificate-authority-data: QQ==}}]
contexts: [{name: x, context: {cluster: c}}]
)");
    EXPECT_FALSE(load_config(src_));
    src_.kubeconfig = write("badb64", R"(current-context: x
clusters: [{name: c, cluster: {server: "https://h"}}]
users: [{name: u, user: {client-key-data: "!!!notbase64tok-S3CRET-do-not-leak"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
)");
    auto b64 = load_config(src_);
    ASSERT_FALSE(b64);
    EXPECT_EQ(b64.error().what().find("S3CRET"), std::string::npos) << b64.error().what();
    src_.kubeconfig = write("authprov", R"(current-context: x
clusters: [{name: c, cluster: {server: "https://h"}}]
users: [{name: u, user: {auth-provider: {name: gcp}}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
)");
    auto ap = load_config(src_);
    ASSERT_FALSE(ap);
    EXPECT_NE(ap.error().what().find("auth-provider"), std::string::npos);
    src_.kubeconfig = write("wrongtype", R"(current-context: x
clusters: [{name: c, cluster: {server: [1, 2]}}]
contexts: [{name: x, context: {cluster: c}}]
)");
    EXPECT_FALSE(load_config(src_));
    src_.kubeconfig.reset();
    src_.env.erase("HOME");
    auto none = load_config(src_);
    ASSERT_FALSE(none);
    EXPECT_TRUE(none.error().is(errc::config_missing));
}

TEST_F(K8sConfig, InClusterWithRotatingToken) {
    write("sa/token", "token-1\n");
    write("sa/ca.crt", "SA-CA");
    write("sa/namespace", "runners\n");
    src_.env["KUBERNETES_SERVICE_HOST"] = "10.96.0.1";
    src_.env["KUBERNETES_SERVICE_PORT"] = "443";
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(c->source, cluster_config::origin::in_cluster);
    EXPECT_EQ(c->server, "https://10.96.0.1:443");
    EXPECT_EQ(c->ca_pem, "SA-CA");
    EXPECT_EQ(c->ns, "runners");
    EXPECT_EQ(creds(*c).bearer_token, "token-1");

    write("sa/token", "token-2");
    clock_.advance(30s);
    EXPECT_EQ(creds(*c).bearer_token, "token-1"); // cached copy is younger than 60 s
    clock_.advance(31s);
    EXPECT_EQ(creds(*c).bearer_token, "token-2"); // re-read when older than 60 s
    write("sa/token", "token-3");
    c->credentials->invalidate(); // a 401
    EXPECT_EQ(creds(*c).bearer_token, "token-3");
    // A failed re-read keeps the last good token.
    fs::remove(dir_ / "sa/token");
    clock_.advance(61s);
    EXPECT_EQ(creds(*c).bearer_token, "token-3");

    src_.env["POD_NAMESPACE"] = "from-env";
    write("sa/token", "t");
    auto e = load_config(src_);
    ASSERT_TRUE(e);
    EXPECT_EQ(e->ns, "from-env");
}

TEST_F(K8sConfig, InClusterIpv6AndFailures) {
    EXPECT_EQ(in_cluster_server("fd00::1", "443"), "https://[fd00::1]:443");
    EXPECT_EQ(in_cluster_server("kubernetes.default.svc", "6443"),
              "https://kubernetes.default.svc:6443");
    src_.env["KUBERNETES_SERVICE_HOST"] = "fd00::1";
    src_.env["KUBERNETES_SERVICE_PORT"] = "443";
    auto no_token = load_config(src_);
    ASSERT_FALSE(no_token);
    EXPECT_TRUE(no_token.error().is(errc::config_invalid));
    write("sa/token", "x");
    auto c = load_config(src_);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->server, "https://[fd00::1]:443");
    EXPECT_EQ(c->ns, "default");
    EXPECT_TRUE(c->ca_pem.empty());
}

TEST_F(K8sConfig, KubeconfigTakesPrecedenceOverInCluster) {
    write("sa/token", "sa-token");
    src_.env["KUBERNETES_SERVICE_HOST"] = "10.0.0.1";
    src_.env["KUBERNETES_SERVICE_PORT"] = "443";
    write("home/.kube/config", basic_yaml);
    write("home/.kube/certs/ca.crt", "x");
    src_.env["HOME"] = (dir_ / "home").string();
    auto c = load_config(src_);
    ASSERT_TRUE(c);
    EXPECT_EQ(c->source, cluster_config::origin::kubeconfig);
    // KUBECONFIG naming only missing files falls through to in-cluster.
    src_.env["KUBECONFIG"] = (dir_ / "nope").string();
    auto ic = load_config(src_);
    ASSERT_TRUE(ic);
    EXPECT_EQ(ic->source, cluster_config::origin::in_cluster);
}

TEST_F(K8sConfig, TokenFileWithFallbackToken) {
    src_.kubeconfig = write("kc", R"(current-context: x
clusters: [{name: c, cluster: {server: "https://h"}}]
users: [{name: u, user: {token: static-token, tokenFile: tokfile}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
)");
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(creds(*c).bearer_token, "static-token"); // file unreadable: fallback
    write("tokfile", "from-file");
    c->credentials->invalidate();
    EXPECT_EQ(creds(*c).bearer_token, "from-file"); // last good file read wins
}

std::string exec_kubeconfig(std::string_view user_exec) {
    return std::string(R"(current-context: x
clusters: [{name: c, cluster: {server: "https://h"}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users:
- name: u
  user:
    exec:
)") + std::string(user_exec);
}

void K8sConfig::use_counting_plugin(std::string_view expiry) {
    write("bin/get-token", R"(#!/bin/sh
n=$(cat "$COUNTER" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$COUNTER"
case "$KUBERNETES_EXEC_INFO" in *'"interactive":false'*) ;; *) echo "no exec info" >&2; exit 9;; esac
[ "$1" = "--cluster" ] && [ "$2" = "c1" ] || { echo "bad args" >&2; exit 8; }
printf '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",'
printf '"status":{"token":"exec-token-%s","expirationTimestamp":"%s"}}' "$n" )" +
              std::string(expiry) + "\n",
          true);
    src_.kubeconfig =
        write("kc", exec_kubeconfig(R"(      apiVersion: client.authentication.k8s.io/v1
      command: bin/get-token
      args: ["--cluster", "c1"]
      env: [{name: COUNTER, value: )" +
                                    (dir_ / "counter").string() + R"(}]
      interactiveMode: Never
)"));
}

TEST_F(K8sConfig, ExecPluginV1CachedUntilExpiry) {
    use_counting_plugin("2023-11-14T22:15:00Z");
    // simulated system clock starts at 1'700'000'000 s = 2023-11-14T22:13:20Z
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-1");
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-1"); // cached
    clock_.advance(60s);
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-1");
    clock_.advance(60s); // past 22:15:00
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-2");
    c->credentials->invalidate();
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-3");
}

// A credential that expires after 2262 (past libstdc++'s int64-nanosecond system_clock) is cached
// like any other: it must not wrap into the past and run the plugin on every API call.
TEST_F(K8sConfig, ExecPluginFarFutureExpiryIsCached) {
    use_counting_plugin("9999-12-31T23:59:59Z");
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-1");
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-1");
    clock_.advance(24h * 365 * 100);
    EXPECT_EQ(creds(*c).bearer_token, "exec-token-1");
    auto plugin = std::dynamic_pointer_cast<exec_credential_plugin>(c->credentials);
    ASSERT_TRUE(plugin);
    EXPECT_EQ(plugin->runs(), 1);
}

TEST_F(K8sConfig, ExecPluginV1beta1FromPathWithClientCert) {
    write("bin/certplugin", R"(#!/bin/sh
cat <<'EOF'
{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"clientCertificateData":"-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n","clientKeyData":"K"}}
EOF
)",
          true);
    src_.env["PATH"] = (dir_ / "bin").string() + ":/usr/bin:/bin";
    src_.kubeconfig =
        write("kc", exec_kubeconfig(R"(      apiVersion: client.authentication.k8s.io/v1beta1
      command: certplugin
)"));
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    auto k = creds(*c);
    EXPECT_EQ(k.client_cert_pem, "-----BEGIN CERTIFICATE-----\nX\n-----END CERTIFICATE-----\n");
    EXPECT_EQ(k.client_key_pem, "K");
    EXPECT_TRUE(k.bearer_token.empty());
}

TEST_F(K8sConfig, ExecPluginProvideClusterInfo) {
    write("bin/info", R"(#!/bin/sh
case "$KUBERNETES_EXEC_INFO" in
  *'"cluster":{"server":"https://h","tls-server-name":"kube"'*) ;;
  *) echo "bad exec info" >&2; exit 4;;
esac
echo '{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"t"}}'
)",
          true);
    src_.kubeconfig = write("kc", R"(current-context: x
clusters: [{name: c, cluster: {server: "https://h", tls-server-name: kube}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
users:
- name: u
  user:
    exec: {apiVersion: client.authentication.k8s.io/v1, command: bin/info, provideClusterInfo: true}
)");
    auto c = load_config(src_);
    ASSERT_TRUE(c) << c.error().what();
    EXPECT_EQ(creds(*c).bearer_token, "t");
}

TEST_F(K8sConfig, ExecPluginFailures) {
    src_.kubeconfig =
        write("kc", exec_kubeconfig(R"(      apiVersion: client.authentication.k8s.io/v1
      command: no-such-plugin-xyz
      installHint: "install it with: brew install no-such-plugin-xyz"
)"));
    auto c = load_config(src_);
    ASSERT_TRUE(c);
    auto missing = c->credentials->current();
    ASSERT_FALSE(missing);
    EXPECT_TRUE(missing.error().is(errc::credential_failed));
    EXPECT_NE(missing.error().what().find("not found"), std::string::npos)
        << missing.error().what();
    EXPECT_NE(missing.error().what().find("brew install"), std::string::npos);

    write("bin/fails", "#!/bin/sh\necho 'login required' >&2\nexit 3\n", true);
    src_.kubeconfig =
        write("kc", exec_kubeconfig(R"(      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/fails
)"));
    c = load_config(src_);
    ASSERT_TRUE(c);
    auto failed = c->credentials->current();
    ASSERT_FALSE(failed);
    EXPECT_NE(failed.error().what().find("status 3"), std::string::npos) << failed.error().what();
    EXPECT_NE(failed.error().what().find("login required"), std::string::npos);

    // Garbage, a mismatched apiVersion, or a bad expiry: the token is never quoted.
    for (
        std::string out :
        {std::string("{\"status\":{\"token\":\"") + secret_token + "\"",
         std::string(
             R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":")") +
             secret_token + "\"}}",
         std::string(
             R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":")") +
             secret_token + R"(","expirationTimestamp":"tok-S3CRET"}})"}) {
        write("bin/garbage", "#!/bin/sh\ncat <<'EOF'\n" + out + "\nEOF\n", true);
        src_.kubeconfig =
            write("kc", exec_kubeconfig(R"(      apiVersion: client.authentication.k8s.io/v1
      command: bin/garbage
)"));
        c = load_config(src_);
        ASSERT_TRUE(c);
        auto g = c->credentials->current();
        ASSERT_FALSE(g) << out;
        EXPECT_EQ(g.error().what().find("S3CRET"), std::string::npos) << g.error().what();
    }

    src_.kubeconfig =
        write("kc", exec_kubeconfig(R"(      apiVersion: client.authentication.k8s.io/v1
      command: bin/garbage
      interactiveMode: Always
)"));
    c = load_config(src_);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->credentials->current());
    src_.kubeconfig =
        write("kc", exec_kubeconfig(R"(      apiVersion: client.authentication.k8s.io/v1alpha1
      command: bin/garbage
)"));
    c = load_config(src_);
    ASSERT_TRUE(c);
    EXPECT_FALSE(c->credentials->current());
}

TEST(Rfc3339, Parses) {
    using namespace std::chrono;
    auto t = parse_rfc3339("2023-11-14T22:13:20Z");
    ASSERT_TRUE(t);
    EXPECT_EQ(duration_cast<seconds>(t->time_since_epoch()).count(), 1700000000);
    auto off = parse_rfc3339("2023-11-14T23:13:20.123+01:00");
    ASSERT_TRUE(off);
    EXPECT_EQ(duration_cast<seconds>(off->time_since_epoch()).count(), 1700000000);
    EXPECT_FALSE(parse_rfc3339("2023-11-14"));
    EXPECT_FALSE(parse_rfc3339("2023-02-30T00:00:00Z"));
    EXPECT_FALSE(parse_rfc3339("2023-11-14T22:13:20"));
    EXPECT_FALSE(parse_rfc3339("2023-11-14T22:13:20Zjunk"));
}

// system_clock counts int64 nanoseconds (libstdc++): 1677-09-21 to 2262-04-11. Valid RFC 3339
// stamps outside that range clamp to its ends instead of overflowing (which wrapped 9999 into
// the past, and is undefined behaviour).
TEST(Rfc3339, OutOfRangeYearsClampToTheEnds) {
    using namespace std::chrono;
    using tp = system_clock::time_point;
    auto last = parse_rfc3339("2262-04-11T23:47:16Z");
    ASSERT_TRUE(last);
    EXPECT_EQ(duration_cast<seconds>(last->time_since_epoch()).count(), 9223372036);
    EXPECT_EQ(parse_rfc3339("2262-04-11T23:47:17Z"), tp::max());
    EXPECT_EQ(parse_rfc3339("2262-04-12T00:47:17+01:00"), tp::max());
    EXPECT_EQ(parse_rfc3339("6665-05-01T10:00:01Z"), tp::max());
    EXPECT_EQ(parse_rfc3339("9999-12-31T23:59:59Z"), tp::max());
    EXPECT_EQ(parse_rfc3339("9999-12-31T23:59:59.999-23:59"), tp::max());
    EXPECT_EQ(parse_rfc3339("1677-09-21T00:12:43Z"), tp::min());
    EXPECT_EQ(parse_rfc3339("0000-01-01T00:00:00+23:59"), tp::min());
    auto first = parse_rfc3339("1677-09-21T00:12:44Z");
    ASSERT_TRUE(first);
    EXPECT_EQ(duration_cast<seconds>(first->time_since_epoch()).count(), -9223372036);
}

} // namespace
} // namespace podpipe::kube
