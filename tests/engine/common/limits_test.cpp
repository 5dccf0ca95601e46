// read_cgroup_limits against directory trees shaped like /sys/fs/cgroup (v1 and v2), and
// usable_cores() in a real cgroup with a CPU quota when this machine lets us make one.
#include "engine/common/limits.hpp"

#include "tests/support/cgroup.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sched.h>
#include <string>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace podpipe {
namespace {

class cgroup_tree : public ::testing::Test {
protected:
    void SetUp() override {
        root_ = fs::temp_directory_path() /
                ("podpipe-limits-" + std::to_string(::getpid()) + "-" +
                 ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(root_);
        fs::create_directories(root_);
    }
    void TearDown() override { fs::remove_all(root_); }

    void put(const std::string& rel, const std::string& text) {
        const fs::path p = root_ / rel.substr(1);
        fs::create_directories(p.parent_path());
        std::ofstream(p) << text << "\n";
    }
    cgroup_limits read(const std::string& mountinfo, const std::string& proc_cgroup) {
        return read_cgroup_limits(mountinfo, proc_cgroup, root_.string());
    }

    fs::path root_;
};

const std::string v2_mount =
    "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n";

TEST_F(cgroup_tree, v2_quota_and_memory_of_the_process_cgroup) {
    put("/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "150000 100000");
    put("/sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "134217728");
    const auto l = read(v2_mount, "0::/kubepods/pod1/ctr\n");
    ASSERT_TRUE(l.cpus.has_value());
    EXPECT_DOUBLE_EQ(*l.cpus, 1.5);
    ASSERT_TRUE(l.memory_bytes.has_value());
    EXPECT_EQ(*l.memory_bytes, 134217728u);
    EXPECT_NE(l.cpu_source.find("/kubepods/pod1/ctr/cpu.max"), std::string::npos);
}

TEST_F(cgroup_tree, v2_max_means_no_limit_and_an_ancestor_limit_applies) {
    put("/sys/fs/cgroup/kubepods/pod1/ctr/cpu.max", "max 100000");
    put("/sys/fs/cgroup/kubepods/pod1/ctr/memory.max", "max");
    put("/sys/fs/cgroup/kubepods/pod1/cpu.max", "200000 100000");
    put("/sys/fs/cgroup/kubepods/pod1/memory.max", "1073741824");
    put("/sys/fs/cgroup/kubepods/cpu.max", "400000 100000");
    const auto l = read(v2_mount, "0::/kubepods/pod1/ctr\n");
    ASSERT_TRUE(l.cpus.has_value());
    EXPECT_DOUBLE_EQ(*l.cpus, 2.0); // the tightest of the ancestors
    EXPECT_NE(l.cpu_source.find("/kubepods/pod1/cpu.max"), std::string::npos);
    ASSERT_TRUE(l.memory_bytes.has_value());
    EXPECT_EQ(*l.memory_bytes, 1073741824u);
}

TEST_F(cgroup_tree, v2_in_a_cgroup_namespace_reads_the_mount_point) {
    // Inside a container with its own cgroup namespace: the process sees "/" and the mount's
    // root is "/", so the files are at the mount point itself.
    put("/sys/fs/cgroup/cpu.max", "50000 100000");
    const auto l = read(v2_mount, "0::/\n");
    ASSERT_TRUE(l.cpus.has_value());
    EXPECT_DOUBLE_EQ(*l.cpus, 0.5);
    EXPECT_FALSE(l.memory_bytes.has_value());
}

TEST_F(cgroup_tree, v2_path_outside_the_namespace_view_falls_back_to_the_mount_point) {
    put("/sys/fs/cgroup/cpu.max", "100000 100000");
    const auto l = read(v2_mount, "0::/../../other\n");
    ASSERT_TRUE(l.cpus.has_value());
    EXPECT_DOUBLE_EQ(*l.cpus, 1.0);
}

TEST_F(cgroup_tree, v1_cfs_quota_with_a_bind_mounted_root) {
    // A v1 hierarchy bind-mounted with the container's cgroup as its root (docker without
    // cgroupns): /proc/self/cgroup still shows the full path.
    const std::string mountinfo =
        "40 30 0:35 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid - cgroup cgroup "
        "rw,cpu,cpuacct\n"
        "41 30 0:36 /docker/abc /sys/fs/cgroup/memory ro,nosuid - cgroup cgroup rw,memory\n";
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "100000");
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000");
    put("/sys/fs/cgroup/memory/memory.limit_in_bytes", "536870912");
    const auto l = read(mountinfo, "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n");
    ASSERT_TRUE(l.cpus.has_value());
    EXPECT_DOUBLE_EQ(*l.cpus, 1.0);
    ASSERT_TRUE(l.memory_bytes.has_value());
    EXPECT_EQ(*l.memory_bytes, 536870912u);
}

TEST_F(cgroup_tree, v1_no_quota_and_the_unlimited_memory_value_are_no_limits) {
    const std::string mountinfo =
        "40 30 0:35 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"
        "41 30 0:36 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
    put("/sys/fs/cgroup/cpu/job/cpu.cfs_quota_us", "-1");
    put("/sys/fs/cgroup/cpu/job/cpu.cfs_period_us", "100000");
    put("/sys/fs/cgroup/memory/job/memory.limit_in_bytes", "9223372036854771712");
    const auto l = read(mountinfo, "1:cpu:/job\n4:memory:/job\n");
    EXPECT_FALSE(l.cpus.has_value());
    EXPECT_FALSE(l.memory_bytes.has_value());
}

TEST_F(cgroup_tree, escaped_mount_points_missing_and_garbled_files_are_handled) {
    // "\040" is a space in mountinfo; garbage in a limit file is ignored, not trusted.
    const std::string mountinfo =
        "30 23 0:26 / /sys/fs/my\\040cgroup rw - cgroup2 cgroup2 rw\n"
        "garbage line without a separator\n";
    put("/sys/fs/my cgroup/a/cpu.max", "lots 100000");
    put("/sys/fs/my cgroup/a/memory.max", "12abc");
    put("/sys/fs/my cgroup/cpu.max", "300000 100000");
    const auto l = read(mountinfo, "0::/a\nnot a cgroup line\n");
    ASSERT_TRUE(l.cpus.has_value());
    EXPECT_DOUBLE_EQ(*l.cpus, 3.0);
    EXPECT_FALSE(l.memory_bytes.has_value());
    EXPECT_FALSE(read("", "").cpus.has_value());
}

TEST(usable_cores, at_least_one_and_at_most_the_affinity) {
    const unsigned n = usable_cores();
    EXPECT_GE(n, 1u);
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    EXPECT_LE(n, static_cast<unsigned>(CPU_COUNT(&set)));
}

std::string slurp(const char* file) {
    std::ifstream in(file);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A child process moved into a fresh cgroup with a 1-CPU quota reads that quota from the real
// /proc/self files and /sys/fs/cgroup (usable_cores() caches its answer, and this process
// may have asked already, so the child reads afresh).
TEST(usable_cores, a_one_cpu_quota_is_read_from_the_real_cgroup) {
    std::string why;
    auto group = testing::cpu_quota_cgroup::create(1.0, &why);
    if (!group)
        GTEST_SKIP() << why;
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        std::ofstream(group->procs_file()) << ::getpid() << "\n" << std::flush;
        const auto l = read_cgroup_limits(slurp("/proc/self/mountinfo"),
                                          slurp("/proc/self/cgroup"));
        _exit(l.cpus ? static_cast<int>(*l.cpus * 10) : 0);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 10); // 1.0 CPU
}

TEST(memory_budget, a_quarter_of_the_limit_within_the_wanted_and_the_floor) {
    constexpr std::size_t mib = std::size_t{1} << 20;
    EXPECT_EQ(memory_budget_for(256 * mib, 32 * mib, std::nullopt), 256 * mib);
    EXPECT_EQ(memory_budget_for(256 * mib, 32 * mib, 24ull << 30), 256 * mib);
    EXPECT_EQ(memory_budget_for(256 * mib, 32 * mib, 512 * mib), 128 * mib);
    EXPECT_EQ(memory_budget_for(256 * mib, 32 * mib, 64 * mib), 32 * mib);
}

} // namespace
} // namespace podpipe
