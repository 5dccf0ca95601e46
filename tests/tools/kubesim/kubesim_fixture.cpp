#include "kubesim_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "test_client.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace podpipe::kubesim::testing {
namespace fs = std::filesystem;

namespace {

bool mount_namespaces_permitted() {
    pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(::unshare(CLONE_NEWNS) == 0 ? 0 : 1);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string find_kubectl() {
    if (const char* env = std::getenv("KUBESIM_TEST_KUBECTL"); env && *env)
        return env;
    // The Cloud SDK dispatcher (/usr/bin/kubectl) would also work (kubesim reports minor 32);
    // calling the versioned binary directly saves the dispatcher's /version round trip.
    for (const char* p : {"/usr/lib/google-cloud-sdk/bin/kubectl.1.32", "/usr/bin/kubectl",
                          "/usr/local/bin/kubectl"})
        if (::access(p, X_OK) == 0)
            return p;
    return "";
}

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'')
            out += "'\\''";
        else
            out += c;
    }
    return out + "'";
}

} // namespace

void kubesim_fixture::SetUp() {
    if (!mount_namespaces_permitted())
        GTEST_SKIP() << "unshare(CLONE_NEWNS) is not permitted here (kubesim needs root and mount "
                        "namespaces to run pods)";
    kubectl_bin_ = find_kubectl();
    if (kubectl_bin_.empty())
        GTEST_SKIP() << "kubectl not found (set KUBESIM_TEST_KUBECTL or apt-get install kubectl)";
    if (::access("/bin/busybox", X_OK) != 0)
        GTEST_SKIP() << "/bin/busybox missing (apt-get install busybox-static)";

    char tmpl[] = "/tmp/kubesim-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    fs::create_directories(dir_ + "/home");
    kubeconfig_ = dir_ + "/kubeconfig";

    int out[2];
    ASSERT_EQ(::pipe2(out, O_CLOEXEC), 0);
    std::string log = dir_ + "/kubesim.log";
    pid_ = ::fork();
    ASSERT_GE(pid_, 0);
    if (pid_ == 0) {
        ::dup2(out[1], 1);
        int err = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        ::dup2(err, 2);
        std::string state = dir_ + "/state";
        std::vector<std::string> args{"kubesim", "--nodes", "3", "--dir", state, "--port", "0",
                                      "--kubeconfig-out", kubeconfig_};
        args.insert(args.end(), extra_args_.begin(), extra_args_.end());
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(KUBESIM_BINARY, argv.data());
        ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (line.find('\n') == std::string::npos && std::chrono::steady_clock::now() < deadline) {
        pollfd pfd{out[0], POLLIN, 0};
        if (::poll(&pfd, 1, 200) <= 0)
            continue;
        char buf[512];
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0)
            break;
        line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    const std::string prefix = "kubesim: listening on ";
    ASSERT_EQ(line.rfind(prefix, 0), 0u) << "kubesim did not start; output: " << line;
    auto sp = line.find(' ', prefix.size());
    server_ = line.substr(prefix.size(), sp - prefix.size());
    ASSERT_NE(line.find("kubeconfig=" + kubeconfig_), std::string::npos) << line;
    ASSERT_TRUE(fs::exists(dir_ + "/state/serviceaccount/token"));
    ASSERT_TRUE(fs::exists(dir_ + "/state/serviceaccount/ca.crt"));
    ASSERT_TRUE(fs::exists(dir_ + "/state/serviceaccount/namespace"));
}

std::string kubesim_fixture::admin_token() const {
    std::ifstream f(kubeconfig_);
    std::string line;
    const std::string key = "token: ";
    while (std::getline(f, line))
        if (auto p = line.find(key); p != std::string::npos)
            return line.substr(p + key.size());
    return "";
}

int kubesim_fixture::port() const {
    auto colon = server_.rfind(':');
    return colon == std::string::npos ? 0 : std::stoi(server_.substr(colon + 1));
}

void kubesim_fixture::TearDown() {
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        int status = 0;
        pid_t r = 0;
        podpipe::testing::eventually([&] { return (r = ::waitpid(pid_, &status, WNOHANG)) != 0; },
                                     std::chrono::seconds(20), std::chrono::milliseconds(50));
        if (r == 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, &status, 0);
            ADD_FAILURE() << "kubesim did not stop within 20 s of SIGTERM";
        } else {
            EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "kubesim exit status " << status;
        }
        pid_ = -1;
        // No process may remain rooted inside the state dir (pod containers and execs).
        std::string state = dir_ + "/state";
        for (const auto& e : fs::directory_iterator("/proc")) {
            std::string name = e.path().filename();
            if (name.find_first_not_of("0123456789") != std::string::npos)
                continue;
            std::error_code ec;
            auto root = fs::read_symlink(e.path() / "root", ec);
            if (!ec) {
                EXPECT_EQ(root.string().rfind(state, 0), std::string::npos)
                    << "leftover process " << name << " rooted at " << root;
            }
        }
        std::ifstream mounts("/proc/self/mountinfo");
        std::string m;
        while (std::getline(mounts, m))
            EXPECT_EQ(m.find(dir_), std::string::npos) << "leftover mount: " << m;
    }
    if (!dir_.empty() && !HasFailure()) {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    } else if (!dir_.empty()) {
        std::ifstream log(dir_ + "/kubesim.log");
        std::stringstream ss;
        ss << log.rdbuf();
        std::cerr << "kubesim log (" << dir_ << "):\n" << ss.str() << "\n";
    }
}

command_result kubesim_fixture::shell(const std::string& script, const std::string& input,
                                      std::chrono::seconds timeout) {
    std::string in_file = dir_ + "/stdin";
    {
        std::ofstream f(in_file, std::ios::binary | std::ios::trunc);
        f << input;
    }
    std::string out_file = dir_ + "/out";
    std::string cmd = "cd " + shell_quote(dir_) + " && HOME=" + shell_quote(dir_ + "/home") +
                      " KUBECONFIG=" + shell_quote(kubeconfig_) + " KUBECTL=" +
                      shell_quote(kubectl_bin_) + " timeout -k 5 " + std::to_string(timeout.count()) +
                      " sh -c " + shell_quote(script) + " <" + shell_quote(in_file) + " >" +
                      shell_quote(out_file) + " 2>&1";
    int status = std::system(cmd.c_str());
    command_result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    std::ifstream f(out_file, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    r.output = ss.str();
    return r;
}

command_result kubesim_fixture::kubectl(const std::string& args, const std::string& input,
                                        std::chrono::seconds timeout) {
    auto r = shell("\"$KUBECTL\" " + args, input, timeout);
    // client-go starts reading the exec WebSocket before it registers its streams; when the
    // server's "ready" message (an empty stdout message, sent by real kubelets too) wins that
    // race, kubectl logs `E... websocket.go:NNN] Unknown stream id 1, discarding message` to
    // stderr and carries on. Nothing is lost (the message is empty): drop that log line so
    // the tests compare what the command printed.
    std::string kept;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("E") && line.find("] Unknown stream id ") != std::string::npos &&
            line.ends_with(", discarding message"))
            continue;
        kept += line;
        if (!lines.eof())
            kept += '\n';
    }
    r.output = std::move(kept);
    return r;
}

void kubesim_fixture::create_pod(const std::string& yaml) {
    auto r = kubectl("create -f - --validate=false", yaml);
    ASSERT_EQ(r.exit_code, 0) << r.output;
}

std::string kubesim_fixture::wait_phase(const std::string& pod, const std::string& phase,
                                        std::chrono::seconds timeout) {
    std::string last;
    podpipe::testing::eventually(
        [&] {
            auto r = kubectl("get pod " + pod + " -o jsonpath='{.status.phase}'");
            last = r.output;
            return r.exit_code == 0 && last == phase;
        },
        timeout, std::chrono::milliseconds(200));
    return last;
}

void kubesim_fixture::faults(const std::string& json) {
    auto r = https_request(port(), ca_file(), admin_token(), "POST", "/kubesim/faults", json);
    ASSERT_EQ(r.status, 200) << r.body;
}

} // namespace podpipe::kubesim::testing
