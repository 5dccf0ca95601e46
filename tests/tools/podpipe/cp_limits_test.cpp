// `podpipe cp` into a pod with a CPU limit: the in-pod podpipe sizes itself by the pod's quota
// (engine/common/limits.hpp), not by the node's cores, as a program in a 1-CPU pod on a many-core
// node must. kubesim turns limits.cpu into the container's cgroup (tools/kubesim/cgroups.hpp).
#include "tests/support/cgroup.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/podpipe/pod_yaml.hpp"

#include <sched.h>

#include <filesystem>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::shell_quote;

const std::string podpipe_exe = PODPIPE_EXE;

// The thread count of the pod side's decompress stage in `podpipe cp --stats-json` output.
long remote_decompress_threads(const std::string& json) {
    const auto remote = json.find("\"remote\"");
    if (remote == std::string::npos)
        return -1;
    const std::string key = "\"name\":\"decompress\",\"threads\":";
    const auto at = json.find(key, remote);
    return at == std::string::npos ? -2 : std::strtol(json.c_str() + at + key.size(), nullptr, 10);
}

class cp_limits_test : public kubesim_fixture {};

TEST_F(cp_limits_test, the_pods_podpipe_runs_as_many_threads_as_its_cpu_limit) {
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    const long cores = CPU_COUNT(&set);
    if (cores < 2)
        GTEST_SKIP() << "one CPU: a limit of one changes nothing to observe";
    std::string why;
    if (!podpipe::testing::cpu_quota_cgroup::create(1.0, &why))
        GTEST_SKIP() << why;
    if (IsSkipped())
        return;
    create_pod(podpipe_pod_yaml("one", PODPIPE_BB_IMAGE, PODPIPE_STATIC_DIR,
                                "{limits: {cpu: 1, memory: 256Mi}}"));
    create_pod(podpipe_pod_yaml("all", PODPIPE_BB_IMAGE, PODPIPE_STATIC_DIR));
    ASSERT_EQ(wait_phase("one", "Running"), "Running");
    ASSERT_EQ(wait_phase("all", "Running"), "Running");
    podpipe::testing::temp_dir tmp;
    podpipe::testing::make_awkward_tree(tmp / "src", 50);
    struct run {
        std::string pod, flags;
        long want;
    };
    // --pod-threads overrides the pod's own choice (what bench/ compares against the quota).
    for (const auto& [pod, flags, want] : {run{"one", "", 1}, run{"all", "", cores},
                                           run{"one", "--pod-threads 3 ", 3}}) {
        const fs::path stats = tmp / (pod + ".json");
        auto r = shell(podpipe_exe + " cp --kubeconfig " + shell_quote(kubeconfig_) + " " +
                       flags + "--stats-json " + shell_quote(stats.string()) + " " +
                       shell_quote((tmp / "src").string()) + " " + pod + ":/data/w");
        ASSERT_EQ(r.exit_code, 0) << r.output;
        const std::string json = shell("cat " + shell_quote(stats.string())).output;
        EXPECT_EQ(remote_decompress_threads(json), want) << pod << " " << flags << ": " << json;
    }
}

} // namespace
} // namespace podpipe::kubesim::testing
