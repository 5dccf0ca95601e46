#include "tests/support/child_process.hpp"
#include "tests/support/eventually.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

extern char** environ;

namespace podpipe::testing {
namespace {

namespace fs = std::filesystem;

std::string read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

} // namespace

std::string process_cmdline(pid_t pid) {
    std::string c = read_all("/proc/" + std::to_string(pid) + "/cmdline");
    for (char& ch : c)
        if (ch == '\0')
            ch = ' ';
    return c;
}

namespace {

std::string cwd_of(pid_t pid) {
    std::error_code ec;
    return fs::read_symlink("/proc/" + std::to_string(pid) + "/cwd", ec).string();
}

} // namespace

child_process::child_process(const std::vector<std::string>& argv, const fs::path& capture,
                             int stdin_fd, int stdout_fd, const std::vector<std::string>& env)
    : capture_(capture) {
    const int out = ::open(capture.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, stdin_fd >= 0 ? stdin_fd : null_in, STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&fa, stdout_fd >= 0 ? stdout_fd : out, STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, out, STDERR_FILENO);
    std::vector<char*> args;
    for (const auto& a : argv)
        args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> envp;
    for (char** e = environ; *e != nullptr; ++e)
        envp.push_back(*e);
    for (const auto& e : env)
        envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    // The test's own blocked or ignored signals must not be inherited.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (out >= 0 && null_in >= 0 &&
        ::posix_spawn(&pid_, args[0], &fa, &attr, args.data(), envp.data()) != 0)
        pid_ = -1;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    for (int fd : {out, null_in})
        if (fd >= 0)
            ::close(fd);
}

child_process::~child_process() {
    if (pid_ > 0 && !code_) {
        ::kill(pid_, SIGKILL);
        int status = 0;
        while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
        }
    }
}

bool child_process::wait_handles(int sig, std::chrono::milliseconds deadline) const {
    const unsigned long long bit = 1ULL << (sig - 1);
    return eventually(
        [&] {
            std::istringstream status(read_all("/proc/" + std::to_string(pid_) + "/status"));
            for (std::string line; std::getline(status, line);)
                if (line.starts_with("SigCgt:") &&
                    (std::stoull(line.substr(7), nullptr, 16) & bit))
                    return true;
            return false;
        },
        deadline, std::chrono::milliseconds(10));
}

std::optional<int> child_process::wait_exit(std::chrono::milliseconds deadline) {
    eventually(
        [&] {
            int status = 0;
            const pid_t r = ::waitpid(pid_, &status, WNOHANG);
            if (r == pid_)
                code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            else if (r < 0 && errno != EINTR)
                code_ = -1;
            return code_.has_value();
        },
        deadline, std::chrono::milliseconds(10));
    return code_;
}

std::string child_process::output() const { return read_all(capture_); }

pipe_pair::pipe_pair() {
    int fd[2] = {-1, -1};
    if (::pipe2(fd, O_CLOEXEC) == 0) {
        read_end = fd[0];
        write_end = fd[1];
    }
}

pipe_pair::~pipe_pair() {
    for (int fd : {read_end, write_end})
        if (fd >= 0)
            ::close(fd);
}

std::vector<pid_t> processes_mentioning(const std::string& needle) {
    std::vector<pid_t> found;
    std::error_code ec;
    for (fs::directory_iterator it("/proc", ec), end; !ec && it != end; it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos)
            continue;
        const pid_t pid = static_cast<pid_t>(std::stol(name));
        if (pid == ::getpid())
            continue;
        // A process that ended meanwhile reads as empty: it does not match.
        if (process_cmdline(pid).find(needle) != std::string::npos ||
            cwd_of(pid).find(needle) != std::string::npos)
            found.push_back(pid);
    }
    return found;
}

std::vector<std::string> wait_no_process_mentioning(const std::string& needle,
                                                    std::chrono::milliseconds deadline) {
    std::vector<std::string> left;
    eventually(
        [&] {
            left.clear();
            for (pid_t pid : processes_mentioning(needle)) {
                // A zombie has done its work (its parent reaps it); it holds nothing.
                const std::string status = read_all("/proc/" + std::to_string(pid) + "/status");
                if (status.empty() || status.find("State:\tZ") != std::string::npos)
                    continue;
                left.push_back(std::to_string(pid) + ": " + process_cmdline(pid));
            }
            return left.empty();
        },
        deadline, std::chrono::milliseconds(50));
    return left;
}

} // namespace podpipe::testing
