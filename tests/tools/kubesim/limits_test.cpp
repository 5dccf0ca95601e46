// Resource limits as a kubelet with a cgroup driver enforces them (tools/kubesim/cgroups.hpp):
// limits.cpu and limits.memory become the container's cgroup, execs run in it, the kernel's
// OOM killer ends a container over its memory limit with reason OOMKilled (exit 137), and the
// cgroup goes with the pod.
#include "kubesim_fixture.hpp"
#include "tests/support/eventually.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace podpipe::kubesim::testing {
namespace {

std::string read_file(const std::string& file) {
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string s = ss.str();
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    return s;
}

// Where kubesim puts a container's cgroup on this machine (the same order it tries), or ""
// when this machine has no cpu and memory controllers for it.
struct layout {
    std::string cpu, memory; ///< the directories holding kubesim/<uid>/<container>
    bool v2 = false;
};

std::optional<layout> machine_layout() {
    for (const char* d : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
        const std::string c = read_file(std::string(d) + "/cgroup.controllers");
        if (c.find("cpu") != std::string::npos && c.find("memory") != std::string::npos)
            return layout{d, d, true};
    }
    layout l;
    for (const char* d : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpu,cpuacct"})
        if (fs::exists(std::string(d) + "/cpu.cfs_quota_us"))
            l.cpu = d;
    if (fs::exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
        l.memory = "/sys/fs/cgroup/memory";
    if (l.cpu.empty() || l.memory.empty())
        return std::nullopt;
    return l;
}

class limits_test : public kubesim_fixture {
protected:
    std::string uid(const std::string& pod) {
        return kubectl("get pod " + pod + " -o jsonpath='{.metadata.uid}'").output;
    }
    std::string field(const std::string& pod, const std::string& path) {
        return kubectl("get pod " + pod + " -o jsonpath='" + path + "'").output;
    }
};

TEST_F(limits_test, cpu_and_memory_limits_are_the_containers_cgroup) {
    auto where = machine_layout();
    if (!where)
        GTEST_SKIP() << "no cgroup cpu and memory controllers on this machine";
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: lim}
spec:
  containers:
  - name: c
    image: busybox
    command: ["sleep", "3600"]
    resources: {limits: {cpu: 500m, memory: 64Mi}}
  - name: free
    image: busybox
    command: ["sleep", "3600"]
)");
    ASSERT_EQ(wait_phase("lim", "Running"), "Running");
    const std::string id = uid("lim");
    ASSERT_FALSE(id.empty());
    const std::string cpu_dir = where->cpu + "/kubesim/" + id + "/c";
    const std::string mem_dir = where->memory + "/kubesim/" + id + "/c";
    if (where->v2) {
        EXPECT_EQ(read_file(cpu_dir + "/cpu.max"), "50000 100000");
        EXPECT_EQ(read_file(mem_dir + "/memory.max"), "67108864");
    } else {
        EXPECT_EQ(read_file(cpu_dir + "/cpu.cfs_quota_us"), "50000");
        EXPECT_EQ(read_file(cpu_dir + "/cpu.cfs_period_us"), "100000");
        EXPECT_EQ(read_file(mem_dir + "/memory.limit_in_bytes"), "67108864");
    }
    // The container's main process and an exec into it are in the cgroup; a container
    // without limits has one that only tracks its processes.
    const std::string procs = read_file(cpu_dir + "/cgroup.procs");
    EXPECT_FALSE(procs.empty());
    auto in_exec = kubectl("exec lim -c c -- sh -c 'echo $$; sleep 2' & sleep 1; cat " +
                           cpu_dir + "/cgroup.procs; wait");
    EXPECT_GE(std::count(in_exec.output.begin(), in_exec.output.end(), '\n'), 3)
        << in_exec.output; // the exec's pid echoed, then at least two members listed
    const std::string free_dir = where->memory + "/kubesim/" + id + "/free";
    EXPECT_FALSE(read_file(free_dir + "/cgroup.procs").empty()) << free_dir;
    if (where->v2) {
        EXPECT_EQ(read_file(free_dir + "/cpu.max"), "max 100000");
        EXPECT_EQ(read_file(free_dir + "/memory.max"), "max");
    }
    ASSERT_EQ(kubectl("delete pod lim --grace-period=1 --wait=true", "",
                      std::chrono::seconds(60)).exit_code,
              0);
    EXPECT_TRUE(podpipe::testing::eventually([&] { return !fs::exists(cpu_dir); },
                                             std::chrono::seconds(10),
                                             std::chrono::milliseconds(50)))
        << cpu_dir << " is left";
    EXPECT_FALSE(fs::exists(mem_dir));
}

// A real container's processes end with it (its PID namespace ends), also those that left the
// exec's session: `podpipe run`'s supervisor does. kubesim shares the host's PID namespace, so
// the container's cgroup is what finds them.
TEST_F(limits_test, processes_that_left_their_session_end_with_the_container) {
    if (!machine_layout())
        GTEST_SKIP() << "no cgroup cpu and memory controllers on this machine";
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: det}
spec:
  restartPolicy: Never
  containers:
  - {name: keep, image: busybox, command: ["sleep", "3600"]}
  - {name: brief, image: busybox, command: ["sh", "-c", "setsid sleep 3600 & echo $!; sleep 2"]}
)");
    ASSERT_EQ(wait_phase("det", "Running"), "Running");
    auto ex = kubectl("exec det -c keep -- sh -c 'setsid sleep 3600 </dev/null >/dev/null 2>&1 "
                      "& echo $!'");
    ASSERT_EQ(ex.exit_code, 0) << ex.output;
    const pid_t from_exec = std::stoi(ex.output);
    const auto gone = [](pid_t pid) {
        const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
        const auto paren = stat.rfind(')');
        return stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() &&
                                (stat[paren + 2] == 'Z' || stat[paren + 2] == 'X'));
    };
    ASSERT_FALSE(gone(from_exec)) << "the detached process should run while its container does";
    // The `brief` container ends after 2 s: what it detached ends with it.
    std::string logs;
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] {
            logs = kubectl("logs det -c brief").output;
            return !logs.empty();
        },
        std::chrono::seconds(10), std::chrono::milliseconds(100)));
    const pid_t from_brief = std::stoi(logs);
    EXPECT_TRUE(podpipe::testing::eventually(
        [&] { return field("det", "{.status.containerStatuses[0].state.terminated.reason}") +
                         field("det", "{.status.containerStatuses[1].state.terminated.reason}") !=
                     ""; },
        std::chrono::seconds(10), std::chrono::milliseconds(100)));
    EXPECT_TRUE(podpipe::testing::eventually([&] { return gone(from_brief); },
                                             std::chrono::seconds(10),
                                             std::chrono::milliseconds(50)))
        << "a process `brief` detached outlived it";
    EXPECT_FALSE(gone(from_exec)) << "`keep` still runs, and so does what its exec detached";
    ASSERT_EQ(kubectl("delete pod det --grace-period=0").exit_code, 0);
    EXPECT_TRUE(podpipe::testing::eventually([&] { return gone(from_exec); },
                                             std::chrono::seconds(10),
                                             std::chrono::milliseconds(50)))
        << "a process an exec detached outlived its pod";
}

TEST_F(limits_test, a_container_over_its_memory_limit_is_oom_killed) {
    if (!machine_layout())
        GTEST_SKIP() << "no cgroup cpu and memory controllers on this machine";
    // The shell holds ~100 MB in a variable: over 32 MiB, the kernel kills it.
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: oom}
spec:
  restartPolicy: Never
  containers:
  - name: c
    image: busybox
    command: ["sh", "-c", "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo survived"]
    resources: {limits: {memory: 32Mi}}
)");
    EXPECT_EQ(wait_phase("oom", "Failed"), "Failed");
    EXPECT_EQ(field("oom", "{.status.containerStatuses[0].state.terminated.reason}"),
              "OOMKilled");
    EXPECT_EQ(field("oom", "{.status.containerStatuses[0].state.terminated.exitCode}"), "137");
    EXPECT_EQ(kubectl("logs oom").output.find("survived"), std::string::npos);
}

} // namespace
} // namespace podpipe::kubesim::testing
