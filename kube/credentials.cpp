#include "kube/credentials.hpp"

#include "engine/common/unique_fd.hpp"
#include "kube/base64.hpp"
#include "kube/json.hpp"
#include "engine/common/json_writer.hpp"

#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <poll.h>
#include <spawn.h>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace podpipe::kube {

namespace {

std::string trim(std::string s) {
    const auto not_space = [](unsigned char c) {
        return !(c == ' ' || c == '\n' || c == '\r' || c == '\t');
    };
    std::size_t b = 0;
    while (b < s.size() && !not_space(static_cast<unsigned char>(s[b])))
        ++b;
    std::size_t e = s.size();
    while (e > b && !not_space(static_cast<unsigned char>(s[e - 1])))
        --e;
    return s.substr(b, e - b);
}

// Reads a small file (tokens, PEM): bounded to 1 MiB.
result<std::string, api_error> read_small_file(const std::filesystem::path& p, errc on_error) {
    std::ifstream in(p, std::ios::binary);
    if (!in)
        return fail(
            api_error(on_error, "cannot read " + p.string() + ": " + std::strerror(errno)));
    std::string data;
    char buf[8192];
    while (in.read(buf, sizeof buf) || in.gcount() > 0) {
        data.append(buf, static_cast<std::size_t>(in.gcount()));
        if (data.size() > (1u << 20))
            return fail(api_error(on_error, p.string() + ": larger than 1 MiB"));
    }
    return data;
}

} // namespace

// ---- token_source ----------------------------------------------------------------------

token_source::token_source(std::filesystem::path file, time_source& clock,
                           std::chrono::seconds refresh, std::string fallback_token,
                           credentials base)
    : file_(std::move(file))
    , clock_(clock)
    , refresh_(refresh)
    , fallback_(std::move(fallback_token))
    , base_(std::move(base)) {}

result<credentials, api_error> token_source::current() {
    std::lock_guard lock(mu_);
    const auto now = clock_.steady_now();
    if (!read_at_ || now - *read_at_ >= refresh_) {
        auto data = read_small_file(file_, errc::credential_failed);
        std::string tok = data ? trim(std::move(*data)) : std::string();
        if (!tok.empty()) {
            token_ = std::move(tok);
            read_at_ = now;
        } else if (token_.empty() && fallback_.empty()) {
            if (!data)
                return fail(data.error());
            return fail(
                api_error(errc::credential_failed, "token file " + file_.string() + " is empty"));
        }
        // else: keep the last good token (or the fallback) and try the file again next time.
    }
    credentials c = base_;
    c.bearer_token = token_.empty() ? fallback_ : token_;
    return c;
}

void token_source::invalidate() {
    std::lock_guard lock(mu_);
    read_at_.reset();
}

// ---- RFC 3339 --------------------------------------------------------------------------

std::optional<std::chrono::system_clock::time_point> parse_rfc3339(std::string_view s) {
    auto num = [&](std::size_t pos, std::size_t len, int& out) {
        if (pos + len > s.size())
            return false;
        auto [p, ec] = std::from_chars(s.data() + pos, s.data() + pos + len, out);
        return ec == std::errc() && p == s.data() + pos + len;
    };
    int y, mo, d, h, mi, sec;
    if (s.size() < 20 || !num(0, 4, y) || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' ||
        !num(8, 2, d) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !num(11, 2, h) ||
        s[13] != ':' || !num(14, 2, mi) || s[16] != ':' || !num(17, 2, sec))
        return std::nullopt;
    std::size_t pos = 19;
    if (pos < s.size() && s[pos] == '.') {
        ++pos;
        const std::size_t start = pos;
        while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9')
            ++pos;
        if (pos == start)
            return std::nullopt;
    }
    if (pos >= s.size())
        return std::nullopt;
    int offset_minutes = 0;
    if (s[pos] == 'Z' || s[pos] == 'z') {
        ++pos;
    } else if (s[pos] == '+' || s[pos] == '-') {
        int oh, om;
        if (!num(pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
            !num(pos + 4, 2, om) || oh > 23 || om > 59)
            return std::nullopt;
        offset_minutes = (oh * 60 + om) * (s[pos] == '-' ? -1 : 1);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != s.size())
        return std::nullopt;
    using namespace std::chrono;
    const year_month_day ymd{year(y), month(static_cast<unsigned>(mo)),
                             day(static_cast<unsigned>(d))};
    if (!ymd.ok() || h > 23 || mi > 59 || sec > 60)
        return std::nullopt;
    // In int64 seconds every RFC 3339 time fits; system_clock's int64 nanoseconds (libstdc++)
    // end at 1677-09-21 and 2262-04-11. Converting a time outside that overflowed (undefined
    // behaviour; 9999-12-31 wrapped into the past, so a plugin credential valid until then
    // counted as expired and the plugin ran on every API call). Clamped to the ends instead:
    // a far-future expiry never passes, and a far-future log stamp stays the newest.
    using time_point = system_clock::time_point;
    const sys_seconds t =
        sys_days(ymd) + hours(h) + minutes(mi) + seconds(sec) - minutes(offset_minutes);
    if (t > floor<seconds>(time_point::max()))
        return time_point::max();
    if (t < ceil<seconds>(time_point::min()))
        return time_point::min();
    return time_point_cast<system_clock::duration>(t);
}

// ---- exec_credential_plugin ------------------------------------------------------------

exec_credential_plugin::exec_credential_plugin(exec_plugin_config cfg,
                                               std::map<std::string, std::string> parent_env,
                                               time_source& clock, std::chrono::seconds timeout)
    : cfg_(std::move(cfg))
    , parent_env_(std::move(parent_env))
    , clock_(clock)
    , timeout_(timeout) {}

int exec_credential_plugin::runs() const {
    std::lock_guard lock(mu_);
    return runs_;
}

void exec_credential_plugin::invalidate() {
    std::lock_guard lock(mu_);
    cached_.reset();
    expires_.reset();
}

result<credentials, api_error> exec_credential_plugin::current() {
    std::lock_guard lock(mu_);
    if (cached_ && (!expires_ || clock_.system_now() < *expires_))
        return *cached_;
    cached_.reset();
    expires_.reset();
    auto c = run_plugin();
    if (!c)
        return c;
    cached_ = *c;
    return c;
}

namespace {

struct process_output {
    int exit_status = 0; ///< exit code, or 128 + signal
    std::string out;
    std::string err;
    bool timed_out = false;
};

// posix_spawn with stdin=/dev/null and both outputs captured (bounded). The child gets a
// fresh environment from `envp`.
result<process_output, api_error> run_process(const std::string& path,
                                               const std::vector<std::string>& argv,
                                               const std::vector<std::string>& envp,
                                               std::chrono::seconds timeout,
                                               const std::string& call) {
    int out_pipe[2];
    int err_pipe[2];
    if (::pipe2(out_pipe, O_CLOEXEC) != 0)
        return fail(api_error(errc::credential_failed, call + ": pipe: " + std::strerror(errno)));
    unique_fd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0)
        return fail(api_error(errc::credential_failed, call + ": pipe: " + std::strerror(errno)));
    unique_fd err_r(err_pipe[0]), err_w(err_pipe[1]);

    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, out_w.get(), 1);
    posix_spawn_file_actions_adddup2(&fa, err_w.get(), 2);

    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    env.reserve(envp.size() + 1);
    for (const auto& e : envp)
        env.push_back(const_cast<char*>(e.c_str()));
    env.push_back(nullptr);

    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, path.c_str(), &fa, nullptr, args.data(), env.data());
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return fail(api_error(errc::credential_failed,
                               call + ": cannot start " + path + ": " + std::strerror(rc)));
    out_w.reset();
    err_w.reset();

    process_output res;
    constexpr std::size_t max_output = 1u << 20;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (out_r || err_r) {
        pollfd fds[2];
        nfds_t n = 0;
        if (out_r)
            fds[n++] = {out_r.get(), POLLIN, 0};
        if (err_r)
            fds[n++] = {err_r.get(), POLLIN, 0};
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            res.timed_out = true;
            break;
        }
        const int pr = ::poll(fds, n, static_cast<int>(left.count()));
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr < 0)
            break;
        for (nfds_t i = 0; i < n; ++i) {
            if (fds[i].revents == 0)
                continue;
            const bool is_out = out_r && fds[i].fd == out_r.get();
            std::string& sink = is_out ? res.out : res.err;
            char buf[8192];
            const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
            if (got < 0 && errno == EINTR)
                continue;
            if (got <= 0) {
                (is_out ? out_r : err_r).reset();
                continue;
            }
            if (sink.size() < max_output)
                sink.append(buf, static_cast<std::size_t>(got));
        }
    }
    if (res.timed_out)
        ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status))
        res.exit_status = WEXITSTATUS(status);
    else if (WIFSIGNALED(status))
        res.exit_status = 128 + WTERMSIG(status);
    return res;
}

std::optional<std::filesystem::path> find_in_path(const std::string& name,
                                                  const std::string& path_var) {
    std::size_t start = 0;
    while (start <= path_var.size()) {
        std::size_t end = path_var.find(':', start);
        if (end == std::string::npos)
            end = path_var.size();
        std::string dir = path_var.substr(start, end - start);
        if (dir.empty())
            dir = ".";
        std::filesystem::path cand = std::filesystem::path(dir) / name;
        std::error_code ec;
        if (::access(cand.c_str(), X_OK) == 0 && !std::filesystem::is_directory(cand, ec))
            return cand;
        start = end + 1;
    }
    return std::nullopt;
}

} // namespace

result<credentials, api_error> exec_credential_plugin::run_plugin() {
    const std::string call = "exec credential plugin " + sanitize_for_message(cfg_.command, 256);
    const std::string hint =
        cfg_.install_hint.empty() ? std::string() : "\n" + sanitize_for_message(cfg_.install_hint);
    if (cfg_.api_version != "client.authentication.k8s.io/v1" &&
        cfg_.api_version != "client.authentication.k8s.io/v1beta1")
        return fail(api_error(errc::config_invalid,
                               call + ": unsupported apiVersion \"" +
                                   sanitize_for_message(cfg_.api_version, 64) + "\""));
    if (cfg_.interactive_mode == "Always")
        return fail(
            api_error(errc::credential_failed,
                       call + ": interactiveMode Always needs a terminal, and hooks have none"));
    if (cfg_.command.empty())
        return fail(api_error(errc::config_invalid, call + ": empty command"));

    std::filesystem::path exe;
    if (cfg_.command.find('/') != std::string::npos) {
        exe = cfg_.command;
        if (exe.is_relative())
            exe = cfg_.base_dir / exe;
        if (::access(exe.c_str(), X_OK) != 0)
            return fail(api_error(errc::credential_failed, call + ": " + exe.string() +
                                                                " is not an executable file: " +
                                                                std::strerror(errno) + hint));
    } else {
        auto it = parent_env_.find("PATH");
        auto found = find_in_path(cfg_.command, it == parent_env_.end() ? "" : it->second);
        if (!found)
            return fail(api_error(errc::credential_failed,
                                   call + ": executable not found in PATH" + hint));
        exe = *found;
    }

    std::map<std::string, std::string> env = parent_env_;
    for (const auto& [k, v] : cfg_.env)
        env[k] = v;
    {
        json_writer w;
        w.begin_object();
        w.field("apiVersion", cfg_.api_version);
        w.field("kind", "ExecCredential");
        w.key("spec");
        w.begin_object();
        w.field("interactive", false);
        if (cfg_.provide_cluster_info) {
            w.key("cluster");
            w.begin_object();
            w.field("server", cfg_.cluster_server);
            if (!cfg_.cluster_tls_server_name.empty())
                w.field("tls-server-name", cfg_.cluster_tls_server_name);
            if (cfg_.cluster_insecure_skip_tls_verify)
                w.field("insecure-skip-tls-verify", true);
            if (!cfg_.cluster_ca_pem.empty())
                w.field("certificate-authority-data", base64_encode(cfg_.cluster_ca_pem));
            if (!cfg_.cluster_proxy_url.empty())
                w.field("proxy-url", cfg_.cluster_proxy_url);
            w.end_object();
        }
        w.end_object();
        w.end_object();
        env["KUBERNETES_EXEC_INFO"] = w.take();
    }
    std::vector<std::string> envp;
    envp.reserve(env.size());
    for (const auto& [k, v] : env)
        envp.push_back(k + "=" + v);
    std::vector<std::string> argv{cfg_.command};
    argv.insert(argv.end(), cfg_.args.begin(), cfg_.args.end());

    ++runs_;
    auto out = run_process(exe.string(), argv, envp, timeout_, call);
    if (!out)
        return fail(out.error());
    if (out->timed_out)
        return fail(
            api_error(errc::credential_failed,
                       call + ": timed out after " + std::to_string(timeout_.count()) + " s"));
    if (out->exit_status != 0) {
        std::string msg = call + ": exited with status " + std::to_string(out->exit_status);
        const std::string err = sanitize_for_message(out->err);
        if (!err.empty())
            msg += ": " + err;
        return fail(api_error(errc::credential_failed, msg + hint));
    }
    auto cred = parse_exec_credential(out->out);
    if (!cred)
        return fail(api_error(errc::credential_failed, call + ": " + cred.error().detail));
    if (cred->kind != "ExecCredential" || cred->api_version != cfg_.api_version)
        return fail(api_error(errc::credential_failed,
                               call + ": printed apiVersion \"" +
                                   sanitize_for_message(cred->api_version, 64) + "\" kind \"" +
                                   sanitize_for_message(cred->kind, 64) + "\", expected " +
                                   cfg_.api_version + " ExecCredential"));
    credentials c;
    c.bearer_token = std::move(cred->token);
    c.client_cert_pem = std::move(cred->client_certificate_data);
    c.client_key_pem = std::move(cred->client_key_data);
    if (c.bearer_token.empty() && (c.client_cert_pem.empty() || c.client_key_pem.empty()))
        return fail(api_error(errc::credential_failed,
                               call + ": ExecCredential has neither status.token nor a client "
                                      "certificate and key"));
    if (c.client_cert_pem.empty() != c.client_key_pem.empty())
        return fail(api_error(errc::credential_failed,
                               call + ": ExecCredential has only one of clientCertificateData "
                                      "and clientKeyData"));
    if (!cred->expiration_timestamp.empty()) {
        auto t = parse_rfc3339(cred->expiration_timestamp);
        if (!t)
            return fail(
                api_error(errc::credential_failed, call + ": bad status.expirationTimestamp"));
        expires_ = *t;
    }
    return c;
}

} // namespace podpipe::kube
