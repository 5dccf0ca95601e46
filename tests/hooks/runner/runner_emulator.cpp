#include "tests/hooks/runner/runner_emulator.hpp"

#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include <simdjson.h>

namespace podpipe::hook::testing {
namespace fs = std::filesystem;

namespace {

// The runner's file-command files (its FileCommandManager): kind prefix → step variable.
struct file_command_kind {
    const char* prefix;
    const char* variable;
};

constexpr file_command_kind file_command_kinds[] = {
    {"set_env", "GITHUB_ENV"},         {"add_path", "GITHUB_PATH"},
    {"set_output", "GITHUB_OUTPUT"},   {"save_state", "GITHUB_STATE"},
    {"step_summary", "GITHUB_STEP_SUMMARY"},
};

// In-container paths (spec §1): the runner translates everything it sends to these.
constexpr const char* pod_work = "/__w";
constexpr const char* pod_temp = "/__w/_temp";

std::string read_text(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_text(const fs::path& p, const std::string& text) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f << text;
    if (!f.flush())
        throw std::runtime_error("runner_emulator: cannot write " + p.string());
}

void make_dirs(const fs::path& p) {
    std::error_code ec;
    fs::create_directories(p, ec);
    if (ec)
        throw std::runtime_error("runner_emulator: cannot create " + p.string() + ": " + ec.message());
}

std::string json_object(const std::map<std::string, std::string>& m) {
    std::string out = "{";
    for (const auto& [k, v] : m) {
        if (out.size() > 1)
            out += ',';
        out += runner_emulator::json_quote(k) + ':' + runner_emulator::json_quote(v);
    }
    return out + '}';
}

std::string json_array(const std::vector<std::string>& v) {
    std::string out = "[";
    for (const auto& s : v) {
        if (out.size() > 1)
            out += ',';
        out += runner_emulator::json_quote(s);
    }
    return out + ']';
}

std::string mount(const std::string& source, const std::string& target, bool read_only) {
    return "{\"sourceVolumePath\":" + runner_emulator::json_quote(source) +
           ",\"targetVolumePath\":" + runner_emulator::json_quote(target) +
           ",\"readOnly\":" + (read_only ? "true" : "false") + "}";
}

std::vector<std::string> split_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < text.size()) {
        auto nl = text.find('\n', start);
        if (nl == std::string::npos)
            nl = text.size();
        std::string line = text.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r')
            line.pop_back();
        lines.push_back(std::move(line));
        start = nl + 1;
    }
    return lines;
}

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

struct child_result {
    int exit_code = -1;
    bool timed_out = false;
    std::string out, err;
    std::vector<int> signals_sent;
};

// The runner's cancellation (spec §2.1): SIGINT, then SIGTERM after a grace period, then
// SIGKILL after another. Armed when `marker` shows up in the child's stdout or stderr.
struct cancel_plan {
    std::string marker; ///< empty: never cancel
    std::chrono::milliseconds int_grace;
    std::chrono::milliseconds term_grace;
};

// Runs argv with env in cwd, feeding `input` on stdin (then closing it) and collecting stdout
// and stderr separately. One poll loop serves all three pipes, so a child that writes a lot
// before reading its input (or the reverse) cannot deadlock against us.
child_result run_child(const std::vector<std::string>& argv,
                       const std::map<std::string, std::string>& env, const fs::path& cwd,
                       const std::string& input, std::chrono::seconds timeout,
                       const cancel_plan& cancel,
                       const std::optional<std::pair<uid_t, gid_t>>& user) {
    // Everything the child needs is built before fork: only async-signal-safe calls after it.
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : env)
        env_strings.push_back(k + '=' + v);
    std::vector<char*> envp;
    for (auto& s : env_strings)
        envp.push_back(s.data());
    envp.push_back(nullptr);
    std::vector<std::string> args = argv;
    std::vector<char*> argp;
    for (auto& s : args)
        argp.push_back(s.data());
    argp.push_back(nullptr);
    const std::string dir = cwd.string();

    int in[2], out[2], err[2];
    if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
        throw std::system_error(errno, std::system_category(), "runner_emulator: pipe2");
    // A hook that exits without reading stdin must give EPIPE here, not kill the test. The
    // child gets the default disposition back before exec (SIG_IGN would be inherited).
    ::signal(SIGPIPE, SIG_IGN);

    const pid_t pid = ::fork();
    if (pid < 0)
        throw std::system_error(errno, std::system_category(), "runner_emulator: fork");
    if (pid == 0) {
        ::signal(SIGPIPE, SIG_DFL);
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::dup2(in[0], 0);
        ::dup2(out[1], 1);
        ::dup2(err[1], 2);
        if (user && (::setgroups(0, nullptr) != 0 || ::setgid(user->second) != 0 ||
                     ::setuid(user->first) != 0))
            ::_exit(125);
        if (::chdir(dir.c_str()) != 0)
            ::_exit(126);
        ::execve(argp[0], argp.data(), envp.data());
        ::_exit(127);
    }
    ::close(in[0]);
    ::close(out[1]);
    ::close(err[1]);
    set_nonblocking(in[1]);

    child_result r;
    int in_fd = in[1], out_fd = out[0], err_fd = err[0];
    std::size_t written = 0;
    if (input.empty()) {
        ::close(in_fd);
        in_fd = -1;
    }
    const auto start = std::chrono::steady_clock::now();
    auto deadline = start + timeout;
    bool exited = false;
    int status = 0;
    std::optional<std::chrono::steady_clock::time_point> drain_deadline;
    std::optional<std::chrono::steady_clock::time_point> next_signal_at;
    auto send = [&](int sig) {
        ::kill(pid, sig); // the hook process only, as the runner signals its child
        r.signals_sent.push_back(sig);
    };
    while (out_fd >= 0 || err_fd >= 0 || in_fd >= 0 || !exited) {
        const auto now = std::chrono::steady_clock::now();
        if (!exited && now >= deadline && !r.timed_out) {
            r.timed_out = true;
            send(SIGKILL);
        }
        if (!exited && !cancel.marker.empty()) {
            if (r.signals_sent.empty() && (r.out.find(cancel.marker) != std::string::npos ||
                                           r.err.find(cancel.marker) != std::string::npos)) {
                send(SIGINT);
                next_signal_at = now + cancel.int_grace;
            } else if (next_signal_at && now >= *next_signal_at) {
                if (r.signals_sent.back() == SIGINT) {
                    send(SIGTERM);
                    next_signal_at = now + cancel.term_grace;
                } else if (r.signals_sent.back() == SIGTERM) {
                    send(SIGKILL);
                    next_signal_at.reset();
                }
            }
        }
        if (!exited) {
            const pid_t w = ::waitpid(pid, &status, WNOHANG);
            if (w == pid) {
                exited = true;
                // Output still buffered in the pipes is read below; a grandchild that kept them
                // open gets a few seconds, then we stop listening.
                drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
            }
        }
        if (exited && in_fd >= 0) {
            ::close(in_fd);
            in_fd = -1;
        }
        if (exited && drain_deadline && std::chrono::steady_clock::now() >= *drain_deadline)
            break;
        if (exited && out_fd < 0 && err_fd < 0)
            break;
        pollfd pfds[3];
        nfds_t n = 0;
        if (out_fd >= 0)
            pfds[n++] = {out_fd, POLLIN, 0};
        if (err_fd >= 0)
            pfds[n++] = {err_fd, POLLIN, 0};
        if (in_fd >= 0)
            pfds[n++] = {in_fd, POLLOUT, 0};
        const int ready = n == 0 ? 0 : ::poll(pfds, n, 50);
        if (n == 0) {
            // Nothing to watch but the child's exit.
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            continue;
        }
        if (ready < 0 && errno != EINTR)
            throw std::system_error(errno, std::system_category(), "runner_emulator: poll");
        if (ready <= 0)
            continue;
        for (nfds_t i = 0; i < n; ++i) {
            if (pfds[i].revents == 0)
                continue;
            const int fd = pfds[i].fd;
            if (fd == in_fd) {
                const ssize_t k = ::write(fd, input.data() + written, input.size() - written);
                if (k > 0)
                    written += static_cast<std::size_t>(k);
                if ((k < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
                    ::close(in_fd); // then stdin is closed, as the runner does
                    in_fd = -1;
                }
                continue;
            }
            char buf[65536];
            const ssize_t k = ::read(fd, buf, sizeof buf);
            if (k > 0) {
                (fd == out_fd ? r.out : r.err).append(buf, static_cast<std::size_t>(k));
            } else if (k == 0 || (errno != EAGAIN && errno != EINTR)) {
                ::close(fd);
                (fd == out_fd ? out_fd : err_fd) = -1;
            }
        }
    }
    for (int fd : {in_fd, out_fd, err_fd})
        if (fd >= 0)
            ::close(fd);
    if (!exited)
        ::waitpid(pid, &status, 0);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

std::string find_bash() {
    for (const char* p : {"/bin/bash", "/usr/bin/bash"})
        if (::access(p, X_OK) == 0)
            return p;
    return "";
}

std::string minified(simdjson::dom::element e) { return simdjson::to_string(e); }

} // namespace

std::optional<std::string> parse_key_value_file(const std::string& text,
                                                std::map<std::string, std::string>& into) {
    const auto lines = split_lines(text);
    for (std::size_t i = 0; i < lines.size(); ++i) {
        const std::string& line = lines[i];
        if (line.empty())
            continue;
        const auto eq = line.find('=');
        const auto heredoc = line.find("<<");
        const std::string where = "line " + std::to_string(i + 1);
        if (eq != std::string::npos && (heredoc == std::string::npos || eq < heredoc)) {
            const std::string name = line.substr(0, eq);
            if (name.empty())
                return "Invalid format '" + line + "'. Name must not be empty (" + where + ")";
            into[name] = line.substr(eq + 1);
        } else if (heredoc != std::string::npos) {
            const std::string name = line.substr(0, heredoc);
            const std::string delimiter = line.substr(heredoc + 2);
            if (name.empty())
                return "Invalid format '" + line + "'. Name must not be empty (" + where + ")";
            if (delimiter.empty())
                return "Invalid format '" + line + "'. Delimiter must not be empty (" + where + ")";
            std::string value;
            bool closed = false;
            std::size_t j = i + 1;
            for (; j < lines.size(); ++j) {
                if (lines[j] == delimiter) {
                    closed = true;
                    break;
                }
                if (j > i + 1)
                    value += '\n';
                value += lines[j];
            }
            if (!closed)
                return "Invalid value. Matching delimiter not found '" + delimiter + "' (" + where + ")";
            into[name] = value;
            i = j;
        } else {
            return "Invalid format '" + line + "' (" + where + ")";
        }
    }
    return std::nullopt;
}

std::string check_prepare_response(const std::string& args_json,
                                   const std::optional<std::string>& response) {
    simdjson::dom::parser args_parser;
    simdjson::dom::element args;
    if (args_parser.parse(args_json).get(args) != simdjson::SUCCESS || !args.is_object())
        return "the test's prepare_job args are not a JSON object";
    bool container_requested = false;
    simdjson::dom::element container;
    if (args["container"].get(container) == simdjson::SUCCESS && container.is_object())
        container_requested = true;
    std::size_t services_requested = 0;
    simdjson::dom::array services;
    if (args["services"].get(services) == simdjson::SUCCESS)
        services_requested = services.size();

    if (!response || response->find_first_not_of(" \t\r\n") == std::string::npos)
        return "prepare_job wrote no response (the runner requires one)";
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(*response).get(doc) != simdjson::SUCCESS || !doc.is_object())
        return "prepare_job's response is not one JSON object";
    simdjson::dom::element field;
    if (doc["state"].get(field) == simdjson::SUCCESS && !field.is_object() && !field.is_null())
        return "response.state is not an object";
    if (container_requested) {
        if (doc["isAlpine"].get(field) != simdjson::SUCCESS || !field.is_bool())
            return "response.isAlpine is missing or not a boolean (mandatory with a job container)";
    }
    simdjson::dom::element context;
    if (doc["context"].get(context) == simdjson::SUCCESS && !context.is_null()) {
        if (!context.is_object())
            return "response.context is not an object";
        simdjson::dom::element svc;
        if (context["services"].get(svc) == simdjson::SUCCESS && !svc.is_null()) {
            simdjson::dom::array list;
            if (svc.get(list) != simdjson::SUCCESS)
                return "response.context.services is not an array";
            // Matched to args.services by index.
            if (list.size() > services_requested)
                return "response.context.services has " + std::to_string(list.size()) +
                       " entries for " + std::to_string(services_requested) + " requested services";
            std::size_t i = 0;
            for (simdjson::dom::element entry : list) {
                const std::string at = "response.context.services[" + std::to_string(i++) + "]";
                simdjson::dom::object ports;
                if (entry["ports"].get(ports) != simdjson::SUCCESS)
                    return at + ".ports is missing or not an object";
                for (auto kv : ports)
                    if (!kv.value.is_string())
                        return at + ".ports[" + std::string(kv.key) + "] is not a string";
            }
        }
    }
    return "";
}

std::string all(const hook_run& r) {
    return "exit " + std::to_string(r.exit_code) + "\n--- stdout\n" + r.out + "\n--- stderr\n" +
           r.err + "\n--- runner: " + r.runner_error;
}

std::string lines_from(const std::string& text, const std::string& word) {
    std::string out;
    for (std::size_t at = text.find(word); at != std::string::npos;
         at = text.find(word, at + 1)) {
        const std::size_t end = text.find('\n', at);
        out += text.substr(at, end == std::string::npos ? std::string::npos : end - at) + ",";
    }
    return out;
}

std::string numbered(const std::string& word, int n) {
    std::string out;
    for (int i = 1; i <= n; ++i)
        out += word + std::to_string(i) + ",";
    return out;
}

runner_emulator::runner_emulator(options opts)
    : opts_(std::move(opts))
    , home_(opts_.home)
    , work_(opts_.home / "_work")
    , repo_(opts_.repo) {
    if (opts_.hook_shim.empty())
        throw std::runtime_error("runner_emulator: options.hook_shim is empty");
    if (home_.empty() || repo_.empty())
        throw std::runtime_error("runner_emulator: options.home and options.repo must be set");
    // The runner's layout (its HostContext / workspace provider): W/<repo>/<repo> is checked out
    // into; _temp holds what steps share; _actions and _tool are caches; externals sits beside
    // _work in the runner's root.
    for (const fs::path& p :
         {github_workspace(), runner_temp(), github_home(), event_path().parent_path(),
          file_commands_dir(), responses_dir(), work_ / "_actions", work_ / "_tool", externals()})
        make_dirs(p);
    std::string event = opts_.event_json;
    if (event.empty()) {
        const std::string full = opts_.owner + '/' + repo_;
        event = "{\"ref\":\"refs/heads/main\",\"before\":\"0000000000000000000000000000000000000000\","
                "\"after\":\"4b825dc642cb6eb9a060e54bf8d69288fbee4904\",\"repository\":{\"name\":" +
                json_quote(repo_) + ",\"full_name\":" + json_quote(full) +
                ",\"owner\":{\"login\":" + json_quote(opts_.owner) +
                "}},\"pusher\":{\"name\":\"octocat\"},\"sender\":{\"login\":\"octocat\"}}\n";
    }
    write_text(event_path(), event);
    if (opts_.user) {
        // Others may pass through the directories above home (a test's 0700 temp dir), as they
        // can above a real runner's home.
        std::error_code ec;
        for (const fs::path& start : {fs::absolute(home_), fs::canonical(work_, ec)})
            for (fs::path p = start.parent_path(); p.has_relative_path(); p = p.parent_path()) {
                struct stat st {};
                if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0)
                    ::chmod(p.c_str(), (st.st_mode & 07777) | S_IXOTH);
            }
        if (!opts_.kubeconfig.empty()) {
            make_dirs(home_ / ".kube");
            const fs::path copy = home_ / ".kube" / "config";
            fs::copy_file(opts_.kubeconfig, copy, fs::copy_options::overwrite_existing);
            fs::permissions(copy, fs::perms::owner_read | fs::perms::owner_write);
            opts_.kubeconfig = copy.string();
        }
        give_home_to_user(true);
    }
}

void runner_emulator::own(const fs::path& p) const {
    if (opts_.user && ::lchown(p.c_str(), opts_.user->first, opts_.user->second) != 0)
        throw std::system_error(errno, std::system_category(),
                                "runner_emulator: chown " + p.string());
}

void runner_emulator::give_home_to_user(bool into_links) const {
    if (!opts_.user)
        return;
    const auto [uid, gid] = *opts_.user;
    std::error_code ec;
    if (::lchown(home_.c_str(), uid, gid) != 0)
        throw std::system_error(errno, std::system_category(), "runner_emulator: chown home");
    // _work may be a link to where it really is (volume mode: the claim's directory).
    for (auto it = fs::recursive_directory_iterator(
             home_,
             into_links ? fs::directory_options::follow_directory_symlink
                        : fs::directory_options::none,
             ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        struct stat st {};
        if (::lstat(it->path().c_str(), &st) == 0 && (st.st_uid != uid || st.st_gid != gid))
            ::lchown(it->path().c_str(), uid, gid);
        if (into_links && S_ISLNK(st.st_mode) && it->is_directory(ec)) // followed into, too
            if (::chown(it->path().c_str(), uid, gid) != 0)
                throw std::system_error(errno, std::system_category(),
                                        "runner_emulator: chown " + it->path().string());
    }
}

std::string runner_emulator::new_guid() {
    static thread_local std::mt19937_64 rng{std::random_device{}()};
    std::uint64_t hi = rng(), lo = rng();
    hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL; // version 4
    lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL; // variant 10
    char buf[37];
    std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx",
                  static_cast<unsigned>(hi >> 32), static_cast<unsigned>((hi >> 16) & 0xffff),
                  static_cast<unsigned>(hi & 0xffff), static_cast<unsigned>(lo >> 48),
                  static_cast<unsigned long long>(lo & 0xffffffffffffULL));
    return buf;
}

std::string runner_emulator::json_quote(const std::string& s) {
    std::string out = "\"";
    for (const unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + '"';
}

std::string runner_emulator::envelope(const std::string& command, const std::string& response_file,
                                      const std::string& args_json) const {
    // One line, as the runner serialises it; state null until a response carried one.
    std::string line = "{\"command\":" + json_quote(command) +
                       ",\"responseFile\":" + json_quote(response_file) + ",\"args\":" + args_json +
                       ",\"state\":" + (state_.empty() ? std::string("null") : state_) + "}";
    for (char& c : line)
        if (c == '\n' || c == '\r')
            c = ' '; // hand-written args JSON may be pretty-printed; whitespace is legal there
    return line + "\n";
}

std::map<std::string, std::string> runner_emulator::process_env() const {
    std::map<std::string, std::string> env;
    // What the runner process has (the runner user's session, ARC's pod env) ...
    for (const char* name : {"PATH", "TMPDIR", "LANG", "LC_ALL", "ASAN_OPTIONS", "UBSAN_OPTIONS",
                             "LSAN_OPTIONS", "TSAN_OPTIONS"})
        if (const char* v = std::getenv(name); v != nullptr)
            env[name] = v;
    if (env.find("PATH") == env.end())
        env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    env["HOME"] = home_.string();
    if (!opts_.runner_pod_name.empty())
        env["ACTIONS_RUNNER_POD_NAME"] = opts_.runner_pod_name;
    if (!opts_.ns.empty())
        env["ACTIONS_RUNNER_KUBERNETES_NAMESPACE"] = opts_.ns;
    if (!opts_.kubeconfig.empty())
        env["KUBECONFIG"] = opts_.kubeconfig;
    if (!opts_.hook_binary.empty())
        env["PODPIPE_HOOK_BIN"] = opts_.hook_binary;
    env["ACTIONS_RUNNER_CONTAINER_HOOKS"] = opts_.hook_shim;
    env["ACTIONS_RUNNER_REQUIRE_JOB_CONTAINER"] = "true";
    // ... plus the step environment of the runner's script handler, with runner-side paths.
    env["GITHUB_ACTIONS"] = "true";
    env["CI"] = "true";
    env["GITHUB_WORKSPACE"] = github_workspace().string();
    env["RUNNER_WORKSPACE"] = runner_workspace().string();
    env["RUNNER_TEMP"] = runner_temp().string();
    env["RUNNER_TOOL_CACHE"] = (work_ / "_tool").string();
    env["GITHUB_EVENT_PATH"] = event_path().string();
    env["GITHUB_REPOSITORY"] = opts_.owner + '/' + repo_;
    env["RUNNER_OS"] = "Linux";
    for (const auto& [k, v] : opts_.extra_env)
        env[k] = v;
    return env;
}

hook_run runner_emulator::invoke(const std::string& command, const fs::path& response,
                                 const std::string& stdin_text) {
    hook_run run;
    run.command = command;
    run.stdin_text = stdin_text;

    const fs::path shim = fs::absolute(opts_.hook_shim);
    std::vector<std::string> argv;
    if (const std::string bash = find_bash(); !bash.empty())
        argv = {bash, "--noprofile", "--norc", "-e", "-o", "pipefail", shim.string()};
    else
        argv = {"/bin/sh", "-e", shim.string()};
    // What the test wrote into home since is theirs too; not what is behind a link (volume
    // mode's _work is the claim, where the job's pods write as whatever user they run as).
    give_home_to_user(false);
    cancel_plan cancel{std::exchange(cancel_marker_, std::string()), opts_.cancel_int_grace,
                       opts_.cancel_term_grace};
    auto child =
        run_child(argv, process_env(), shim.parent_path(), stdin_text, opts_.timeout, cancel,
                  opts_.user);
    run.exit_code = child.exit_code;
    run.signals_sent = std::move(child.signals_sent);
    run.timed_out = child.timed_out;
    run.out = std::move(child.out);
    run.err = std::move(child.err);

    std::error_code ec;
    if (fs::exists(response, ec)) {
        run.response = read_text(response);
        fs::remove(response, ec);
    }
    return run;
}

fs::path runner_emulator::new_response_file() const {
    // A new empty file before every invocation, as the runner does.
    const fs::path p = responses_dir() / (new_guid() + ".json");
    write_text(p, "");
    own(p);
    return p;
}

hook_run runner_emulator::call(const std::string& command, const std::string& args_json) {
    const fs::path response = new_response_file();
    hook_run run = invoke(command, response, envelope(command, response.string(), args_json));
    if (run.exit_code != 0 || run.timed_out)
        return run; // the runner stops at the failed hook; it does not read the response
    if (command == "prepare_job")
        run.runner_error = check_prepare_response(args_json, run.response);
    if (!run.response || run.response->find_first_not_of(" \t\r\n") == std::string::npos)
        return run;
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    if (parser.parse(*run.response).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
        if (run.runner_error.empty())
            run.runner_error = command + "'s response is not one JSON object";
        return run;
    }
    simdjson::dom::element st;
    if (doc["state"].get(st) == simdjson::SUCCESS) {
        if (st.is_object())
            state_ = minified(st);
        else if (!st.is_null() && run.runner_error.empty())
            run.runner_error = "response.state is not an object";
    }
    return run;
}

hook_run runner_emulator::raw(const std::string& stdin_text) {
    const fs::path response = new_response_file();
    return invoke("", response, stdin_text);
}

hook_run runner_emulator::prepare_job(const std::string& args_json) {
    return call("prepare_job", args_json);
}

hook_run runner_emulator::cleanup_job() { return call("cleanup_job", "{}"); }

std::string runner_emulator::hook_container(const job_container& c, bool is_job) const {
    std::map<std::string, std::string> env = c.env;
    if (is_job)
        env.emplace("HOME", "/github/home");
    std::string user_mounts = "[";
    for (const auto& v : c.volumes) {
        if (user_mounts.size() > 1)
            user_mounts += ',';
        user_mounts += mount(v.source, v.target, v.read_only);
    }
    user_mounts += ']';
    // What docker mode would bind-mount; the Kubernetes hook ignores it (spec §2.2).
    const std::string w = work_.string();
    const std::string system_mounts =
        "[" + mount("/var/run/docker.sock", "/var/run/docker.sock", false) + ',' +
        mount(w, pod_work, false) + ',' + mount(externals().string(), "/__e", true) + ',' +
        mount(runner_temp().string(), pod_temp, false) + ',' +
        mount((work_ / "_actions").string(), "/__w/_actions", false) + ',' +
        mount((work_ / "_tool").string(), "/__w/_tool", false) + ',' +
        mount(github_home().string(), "/github/home", false) + ',' +
        mount(event_path().parent_path().string(), "/github/workflow", false) + "]";
    std::string registry = "null";
    if (c.registry && !c.registry->username.empty())
        registry = "{\"username\":" + json_quote(c.registry->username) +
                   ",\"password\":" + json_quote(c.registry->password) + ",\"serverUrl\":" +
                   (c.registry->server_url.empty() ? std::string("null") : json_quote(c.registry->server_url)) + "}";
    const std::string working_directory =
        is_job ? json_quote(std::string(pod_work) + '/' + repo_ + '/' + repo_) : std::string("null");
    return "{\"image\":" + json_quote(c.image) + ",\"dockerfile\":null,\"entryPointArgs\":[]" +
           ",\"entryPoint\":null,\"workingDirectory\":" + working_directory + ",\"createOptions\":" +
           (c.options.empty() ? std::string("null") : json_quote(c.options)) +
           ",\"registry\":" + registry + ",\"environmentVariables\":" + json_object(env) +
           ",\"portMappings\":" + json_array(c.ports) + ",\"systemMountVolumes\":" + system_mounts +
           ",\"userMountVolumes\":" + user_mounts + "}";
}

std::string runner_emulator::prepare_job_args(const std::optional<job_container>& container,
                                              const std::vector<job_container>& services) const {
    std::string out = "{\"container\":" + (container ? hook_container(*container, true) : std::string("null")) +
                      ",\"services\":[";
    for (std::size_t i = 0; i < services.size(); ++i)
        out += (i ? "," : "") + hook_container(services[i], false);
    return out + "]}";
}

hook_run runner_emulator::prepare_job(const job_container& container,
                                      const std::vector<job_container>& services) {
    return prepare_job(prepare_job_args(container, services));
}

void runner_emulator::begin_step_for_test() {
    std::error_code ec;
    for (const auto& [kind, p] : step_files_)
        fs::remove(p, ec);
    step_files_.clear();
    step_guid_ = new_guid();
    for (const auto& k : file_command_kinds) {
        const fs::path p = file_commands_dir() / (std::string(k.prefix) + '_' + step_guid_);
        write_text(p, "");
        own(p);
        step_files_[k.prefix] = p;
    }
}

void runner_emulator::finish_step(hook_run& run) {
    // The runner processes file commands after every step, failed ones included.
    file_commands fc;
    auto text_of = [&](const char* kind) {
        const auto it = step_files_.find(kind);
        return it == step_files_.end() ? std::string() : read_text(it->second);
    };
    std::optional<std::string> error;
    if (auto e = parse_key_value_file(text_of("set_output"), fc.outputs))
        error = "GITHUB_OUTPUT: " + *e;
    if (auto e = parse_key_value_file(text_of("set_env"), fc.env); e && !error)
        error = "GITHUB_ENV: " + *e;
    if (auto e = parse_key_value_file(text_of("save_state"), fc.state); e && !error)
        error = "GITHUB_STATE: " + *e;
    for (auto& line : split_lines(text_of("add_path")))
        if (line.find_first_not_of(" \t") != std::string::npos)
            fc.path.push_back(line);
    fc.summary = text_of("step_summary");
    if (error) {
        fc.error = *error;
        if (run.runner_error.empty())
            run.runner_error = *error;
    }
    for (const auto& [k, v] : fc.env)
        job_env_[k] = v;
    for (const auto& p : fc.path) {
        job_path_.erase(std::remove(job_path_.begin(), job_path_.end(), p), job_path_.end());
        job_path_.insert(job_path_.begin(), p);
    }
    last_ = std::move(fc);
}

hook_run runner_emulator::run_script_step(const std::string& script_body, const script_step& step) {
    begin_step_for_test();
    const std::string script_name = new_guid() + ".sh";
    last_script_ = runner_temp() / script_name;
    write_text(last_script_, script_body);
    own(last_script_);
    const std::string pod_script = std::string(pod_temp) + '/' + script_name;
    const std::string pod_workspace = std::string(pod_work) + '/' + repo_ + '/' + repo_;

    std::map<std::string, std::string> env{
        {"CI", "true"},
        {"GITHUB_ACTIONS", "true"},
        {"HOME", "/github/home"},
        {"GITHUB_WORKSPACE", pod_workspace},
        {"GITHUB_EVENT_PATH", "/github/workflow/event.json"},
        {"GITHUB_EVENT_NAME", "push"},
        {"GITHUB_REPOSITORY", opts_.owner + '/' + repo_},
        {"GITHUB_REPOSITORY_OWNER", opts_.owner},
        {"GITHUB_REF", "refs/heads/main"},
        {"GITHUB_SHA", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
        {"GITHUB_RUN_ID", "1"},
        {"GITHUB_RUN_NUMBER", "1"},
        {"GITHUB_JOB", "test"},
        {"GITHUB_SERVER_URL", "https://github.com"},
        {"GITHUB_API_URL", "https://api.github.com"},
        {"RUNNER_OS", "Linux"},
        {"RUNNER_ARCH", "X64"},
        {"RUNNER_NAME", opts_.runner_pod_name},
        {"RUNNER_TEMP", pod_temp},
        {"RUNNER_WORKSPACE", std::string(pod_work) + '/' + repo_},
        {"RUNNER_TOOL_CACHE", "/__t"},
    };
    for (const auto& [k, v] : job_env_)
        env[k] = v;
    for (const auto& [k, v] : step.env)
        env[k] = v;
    for (const auto& k : file_command_kinds)
        env[k.variable] = std::string(pod_temp) + "/_runner_file_commands/" + k.prefix + '_' + step_guid_;

    std::vector<std::string> args;
    if (step.shell == "sh")
        args = {"-e", pod_script};
    else
        args = {"--noprofile", "--norc", "-e", "-o", "pipefail", pod_script};
    std::vector<std::string> prepend = step.prepend_path;
    prepend.insert(prepend.end(), job_path_.begin(), job_path_.end());
    const std::string args_json =
        "{\"entryPoint\":" + json_quote(step.shell) + ",\"entryPointArgs\":" + json_array(args) +
        ",\"environmentVariables\":" + json_object(env) + ",\"prependPath\":" + json_array(prepend) +
        ",\"workingDirectory\":" +
        json_quote(step.working_directory.empty() ? pod_workspace : step.working_directory) + "}";

    hook_run run = call("run_script_step", args_json);
    finish_step(run);
    return run;
}

std::map<std::string, std::string> runner_emulator::container_step_env() const {
    // The step env of a container action, translated by the runner to the docker-mode mounts.
    std::map<std::string, std::string> env{
        {"CI", "true"},
        {"GITHUB_ACTIONS", "true"},
        {"HOME", "/github/home"},
        {"GITHUB_WORKSPACE", "/github/workspace"},
        {"GITHUB_EVENT_PATH", "/github/workflow/event.json"},
        {"GITHUB_EVENT_NAME", "push"},
        {"GITHUB_REPOSITORY", opts_.owner + '/' + repo_},
        {"GITHUB_REPOSITORY_OWNER", opts_.owner},
        {"GITHUB_REF", "refs/heads/main"},
        {"GITHUB_SHA", "4b825dc642cb6eb9a060e54bf8d69288fbee4904"},
        {"GITHUB_RUN_ID", "1"},
        {"GITHUB_RUN_NUMBER", "1"},
        {"GITHUB_JOB", "test"},
        {"RUNNER_OS", "Linux"},
        {"RUNNER_ARCH", "X64"},
        {"RUNNER_NAME", opts_.runner_pod_name},
        {"RUNNER_TEMP", "/github/runner_temp"},
        {"RUNNER_TOOL_CACHE", "/__t"},
    };
    for (const auto& [k, v] : job_env_)
        env[k] = v;
    return env;
}

std::string runner_emulator::container_step_args(const container_action& action) const {
    std::map<std::string, std::string> env = container_step_env();
    for (const auto& [k, v] : action.env)
        env[k] = v;
    for (const auto& k : file_command_kinds)
        env[k.variable] = std::string("/github/file_commands/") + k.prefix + '_' + step_guid_;
    // The runner wraps each argument in double quotes (inner " escaped), joins them with
    // spaces, and hands the hook that string split on single spaces with empties removed
    // (spec §2.2): the argument `arg 2` arrives as the two tokens `"arg` and `2"`.
    std::string joined;
    for (const auto& a : action.args) {
        std::string q;
        for (char c : a) {
            if (c == '"')
                q += '\\';
            q += c;
        }
        if (!joined.empty())
            joined += ' ';
        joined += '"' + q + '"';
    }
    std::vector<std::string> tokens;
    std::size_t start = 0;
    while (start <= joined.size() && !joined.empty()) {
        auto sp = joined.find(' ', start);
        if (sp == std::string::npos)
            sp = joined.size();
        if (sp > start)
            tokens.push_back(joined.substr(start, sp - start));
        start = sp + 1;
    }
    const std::string w = work_.string();
    const std::string mounts = "[" + mount("/var/run/docker.sock", "/var/run/docker.sock", false) +
                               ',' + mount(github_workspace().string(), "/github/workspace", false) +
                               ',' + mount(file_commands_dir().string(), "/github/file_commands", false) +
                               ',' + mount(runner_temp().string(), "/github/runner_temp", false) +
                               ',' + mount(github_home().string(), "/github/home", false) +
                               ',' + mount(event_path().parent_path().string(), "/github/workflow", false) + "]";
    return "{\"image\":" + json_quote(action.image) + ",\"dockerfile\":null,\"entryPoint\":" +
           (action.entry_point.empty() ? std::string("null") : json_quote(action.entry_point)) +
           ",\"entryPointArgs\":" + json_array(tokens) +
           ",\"workingDirectory\":\"/github/workspace\",\"createOptions\":null,\"registry\":null" +
           ",\"environmentVariables\":" + json_object(env) + ",\"portMappings\":[]" +
           ",\"systemMountVolumes\":" + mounts + ",\"userMountVolumes\":[]}";
}

hook_run runner_emulator::run_container_step(const std::string& args_json) {
    begin_step_for_test();
    hook_run run = call("run_container_step", args_json);
    finish_step(run);
    return run;
}

hook_run runner_emulator::run_container_step(const container_action& action) {
    begin_step_for_test();
    hook_run run = call("run_container_step", container_step_args(action));
    finish_step(run);
    return run;
}

} // namespace podpipe::hook::testing
