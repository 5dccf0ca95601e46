// exec throughput under kubesim's throttle (issue #3: measured rate within 10% of the set rate).
// A plain program, not a test: starts kubesim with --exec-bandwidth RATE, creates a busybox pod
// over raw HTTPS, then times a download (stdout of `head -c N /dev/zero`) and an upload (stdin
// into `cat >/dev/null`, v5 stdin close) through the raw WebSocket client.
//
//   kubesim_exec_bench [--kubesim PATH] [--rate BYTES_PER_S] [--bytes N] [--latency-us U]
//
// Prints one line per direction; exit 0 when both are within 10% of the rate, 1 otherwise,
// 77 when it cannot run here (no mount namespaces / busybox).
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/tools/kubesim/test_client.hpp"

namespace fs = std::filesystem;
using podpipe::kubesim::testing::https_request;
using podpipe::kubesim::testing::ws_exec_client;

namespace {

bool can_unshare() {
    pid_t pid = ::fork();
    if (pid == 0)
        ::_exit(::unshare(CLONE_NEWNS) == 0 ? 0 : 1);
    int st = 0;
    ::waitpid(pid, &st, 0);
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

struct cluster {
    pid_t pid = -1;
    int port = 0;
    std::string dir, token, ca;
};

bool start(cluster& c, const std::string& binary, const std::vector<std::string>& extra) {
    char tmpl[] = "/tmp/kubesim-bench-XXXXXX";
    if (!::mkdtemp(tmpl))
        return false;
    c.dir = tmpl;
    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0)
        return false;
    std::string kubeconfig = c.dir + "/kubeconfig";
    c.pid = ::fork();
    if (c.pid == 0) {
        ::dup2(out[1], 1);
        std::vector<std::string> args{binary, "--dir", c.dir + "/state", "--kubeconfig-out", kubeconfig};
        args.insert(args.end(), extra.begin(), extra.end());
        std::vector<char*> argv;
        for (auto& a : args)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        ::execv(binary.c_str(), argv.data());
        ::_exit(127);
    }
    ::close(out[1]);
    std::string line;
    char buf[512];
    while (line.find('\n') == std::string::npos) {
        pollfd pfd{out[0], POLLIN, 0};
        if (::poll(&pfd, 1, 20000) <= 0)
            break;
        ssize_t n = ::read(out[0], buf, sizeof buf);
        if (n <= 0)
            break;
        line.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    auto p = line.find("127.0.0.1:");
    if (p == std::string::npos)
        return false;
    c.port = std::atoi(line.c_str() + p + 10);
    std::ifstream kc(kubeconfig);
    std::string l;
    while (std::getline(kc, l))
        if (auto t = l.find("token: "); t != std::string::npos)
            c.token = l.substr(t + 7);
    c.ca = c.dir + "/state/serviceaccount/ca.crt";
    return !c.token.empty();
}

void stop(cluster& c) {
    if (c.pid > 0) {
        ::kill(c.pid, SIGTERM);
        ::waitpid(c.pid, nullptr, 0);
    }
    std::error_code ec;
    fs::remove_all(c.dir, ec);
}

double timed_download(cluster& c, std::uint64_t bytes) {
    ws_exec_client ws(c.port, c.ca, c.token);
    std::string target = "/api/v1/namespaces/default/pods/bench/exec?command=head&command=-c&command=" +
                         std::to_string(bytes) + "&command=/dev/zero&stdout=true";
    if (ws.open(target, "v5.channel.k8s.io") != 101)
        return -1;
    auto t0 = std::chrono::steady_clock::now();
    std::uint64_t got = 0;
    for (auto m = ws.read(); !m.closed; m = ws.read())
        if (!m.data.empty() && m.data[0] == 1)
            got += m.data.size() - 1;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return got == bytes ? s : -1;
}

double timed_upload(cluster& c, std::uint64_t bytes) {
    ws_exec_client ws(c.port, c.ca, c.token);
    if (ws.open("/api/v1/namespaces/default/pods/bench/exec?command=sh&command=-c&command=cat%3E/dev/null"
                "&stdin=true&stdout=true",
                "v5.channel.k8s.io") != 101)
        return -1;
    auto t0 = std::chrono::steady_clock::now();
    std::string chunk(32 * 1024 + 1, 'x');
    chunk[0] = '\0';
    for (std::uint64_t sent = 0; sent < bytes; sent += 32 * 1024)
        ws.send(chunk);
    ws.send(std::string("\xff\x00", 2));
    bool ok = false;
    for (auto m = ws.read(); !m.closed; m = ws.read())
        if (!m.data.empty() && m.data[0] == 3)
            ok = m.data.find("Success") != std::string::npos;
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return ok ? s : -1;
}

} // namespace

int main(int argc, char** argv) {
    std::string binary = KUBESIM_BINARY;
    std::uint64_t rate = 50'000'000, bytes = 200'000'000;
    std::string latency_us = "0";
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string a = argv[i];
        if (a == "--kubesim")
            binary = argv[i + 1];
        else if (a == "--rate")
            rate = std::stoull(argv[i + 1]);
        else if (a == "--bytes")
            bytes = std::stoull(argv[i + 1]);
        else if (a == "--latency-us")
            latency_us = argv[i + 1];
    }
    if (!can_unshare() || ::access("/bin/busybox", X_OK) != 0) {
        std::printf("SKIP: kubesim needs root, mount namespaces and /bin/busybox\n");
        return 77;
    }
    cluster c;
    if (!start(c, binary, {"--exec-bandwidth", std::to_string(rate), "--exec-latency", latency_us + "us"})) {
        std::printf("FAIL: kubesim did not start\n");
        stop(c);
        return 1;
    }
    auto r = https_request(c.port, c.ca, c.token, "POST", "/api/v1/namespaces/default/pods",
                           R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"bench"},"spec":{"containers":)"
                           R"([{"name":"c","image":"busybox","command":["sleep","1000000"]}]}})");
    bool running = false;
    for (int i = 0; i < 200 && r.status == 201 && !running; ++i) {
        auto g = https_request(c.port, c.ca, c.token, "GET", "/api/v1/namespaces/default/pods/bench");
        running = g.body.find(R"("phase":"Running")") != std::string::npos;
        if (!running)
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    if (!running) {
        std::printf("FAIL: pod did not start\n");
        stop(c);
        return 1;
    }
    int rc = 0;
    for (const char* dir : {"download", "upload"}) {
        double s = std::strcmp(dir, "download") == 0 ? timed_download(c, bytes) : timed_upload(c, bytes);
        if (s <= 0) {
            std::printf("%-8s FAIL (transfer incomplete)\n", dir);
            rc = 1;
            continue;
        }
        double measured = static_cast<double>(bytes) / s;
        double dev = (measured - static_cast<double>(rate)) / static_cast<double>(rate) * 100.0;
        bool within = dev > -10.0 && dev < 10.0;
        std::printf("%-8s bytes=%llu seconds=%.3f rate=%.1f MB/s set=%.1f MB/s deviation=%+.1f%% %s\n", dir,
                    static_cast<unsigned long long>(bytes), s, measured / 1e6, static_cast<double>(rate) / 1e6, dev,
                    within ? "OK" : "OUT-OF-BOUNDS");
        rc |= within ? 0 : 1;
    }
    stop(c);
    return rc;
}
