// `podpipe cp` against a real kubesim: every direction, busybox and GNU (host) images, with and
// without the in-pod podpipe, v5 and v4, a throttled link, a 429 on the first request, an exec
// dropped mid-stream, and the same result as `kubectl cp`.
#include "kube/client.hpp"
#include "kube/config.hpp"
#include "remote/pod_copy.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/kubesim/test_client.hpp"
#include "tests/tools/podpipe/pod_yaml.hpp"

#include <algorithm>
#include <filesystem>
#include <iterator>
#include <set>
#include <sstream>
#include <thread>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::diff_trees;
using podpipe::testing::shell_quote;

const std::string podpipe_exe = PODPIPE_EXE;

// A sender's --stats-json after a 3 MB/s link: the probe measured it (below 100 Mbit/s) and
// most chunks went at the top level ("levels":{..,"7":N}).
void expect_probed_slow_link(const std::string& json) {
    const auto number_after = [&](const std::string& key) {
        const auto at = json.find(key);
        return at == std::string::npos ? -1.0 : std::strtod(json.c_str() + at + key.size(), nullptr);
    };
    const double probed = number_after("\"probed_bytes_per_s\":");
    EXPECT_GT(probed, 0) << json;
    EXPECT_LT(probed, 12.5e6) << json;
    EXPECT_GT(number_after("\"7\":"), number_after("\"chunks\":") / 2) << json;
}

class cp_test : public bb_and_gnu_pods {
protected:
    void SetUp() override {
        bb_and_gnu_pods::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        podpipe::testing::make_awkward_tree(src_, 300);
    }

    command_result cp(const std::string& args) {
        return shell(podpipe_exe + " cp --kubeconfig " + shell_quote(kubeconfig_) + " " + args);
    }

    std::string q(const fs::path& p) const { return shell_quote(p.string()); }

    // local → pod → local, then compare with the source.
    // busybox tar does not restore directory mtimes (kubectl cp has the same limit): compare
    // mtimes only where the pod side keeps them.
    void round_trip(const std::string& pod, const std::string& flags, const std::string& tag,
                    bool mtimes = true) {
        auto in = cp(flags + " " + q(src_) + " " + pod + ":/data/" + tag);
        ASSERT_EQ(in.exit_code, 0) << in.output;
        EXPECT_NE(in.output.find("copied"), std::string::npos) << in.output;
        const fs::path back = tmp_ / ("back-" + tag);
        auto out = cp(flags + " " + pod + ":/data/" + tag + " " + q(back));
        ASSERT_EQ(out.exit_code, 0) << out.output;
        EXPECT_EQ(diff_trees(src_, back, mtimes), std::vector<std::string>{}) << tag;
    }

    podpipe::testing::temp_dir tmp_;
    fs::path src_ = tmp_ / "src";
};

TEST_F(cp_test, busybox_pod_with_in_pod_podpipe_verified) {
    auto in = cp("--stats-json " + q(tmp_ / "s.json") + " " + q(src_) + " bb:/data/w");
    ASSERT_EQ(in.exit_code, 0) << in.output;
    auto json = shell("cat " + q(tmp_ / "s.json"));
    // The pod side ran `podpipe recv` and checked the manifest.
    EXPECT_NE(json.output.find("\"remote\":{\"direction\":\"recv\""), std::string::npos) << json.output;
    EXPECT_NE(json.output.find("\"checked\":true"), std::string::npos) << json.output;
    // ... and the summary says so, into the pod as out of it.
    EXPECT_NE(in.output.find("manifest verified"), std::string::npos) << in.output;
    round_trip("bb", "", "again");
}

TEST_F(cp_test, busybox_and_gnu_tar_without_the_binary) {
    round_trip("bb", "--pod-binary none", "bbtar", /*mtimes=*/false);
    round_trip("gnu", "--pod-binary none", "gnutar");
    // A pod without podpipe at the probed path falls back to its tar by itself.
    round_trip("gnu", "--pod-binary /nowhere/podpipe", "probed");
}

TEST_F(cp_test, a_podpipe_that_does_not_answer_hello_is_not_used) {
    // An older podpipe (no `hello`: a usage error) and one of another protocol major version
    // sit where --pod-binary points: each copy goes through the pod's tar, with a warning
    // that says why.
    const std::string old_binary = "#!/bin/sh\n"
                                   "[ \"$1\" = --version ] && { echo 'podpipe 0.2.0 (recv --acks)';"
                                   " exit 0; }\n"
                                   "echo \"The following argument was not expected: $1\" >&2; "
                                   "exit 2\n";
    const std::string v2_binary =
        "#!/bin/sh\n"
        "echo '{\"message\":\"hello\",\"protocol\":2,\"protocol_minor\":0}'\n";
    for (const auto& [name, text] : {std::pair{"old", old_binary}, std::pair{"v2", v2_binary}}) {
        const std::string path = std::string("/data/") + name + "-podpipe";
        auto made = kubectl("exec -i gnu -- sh -c " +
                                shell_quote("cat > " + path + " && chmod +x " + path),
                            text);
        ASSERT_EQ(made.exit_code, 0) << made.output;
        auto r = cp("--pod-binary " + path + " " + q(src_) + " gnu:/data/" + name);
        ASSERT_EQ(r.exit_code, 0) << r.output;
        EXPECT_NE(r.output.find("podpipe: cp: warning: pod default/gnu: not using " + path),
                  std::string::npos)
            << r.output;
        EXPECT_NE(r.output.find("using the pod's tar"), std::string::npos) << r.output;
        // The pod's tar received it: no manifest check to report.
        EXPECT_EQ(r.output.find("manifest verified"), std::string::npos) << r.output;
        const fs::path back = tmp_ / ("back-" + std::string(name));
        auto out = cp("--pod-binary none gnu:/data/" + std::string(name) + " " + q(back));
        ASSERT_EQ(out.exit_code, 0) << out.output;
        EXPECT_EQ(diff_trees(src_, back), std::vector<std::string>{}) << name;
    }
    auto old = cp("--pod-binary /data/old-podpipe " + q(src_) + " gnu:/data/old2");
    EXPECT_NE(old.output.find("`/data/old-podpipe hello` exited with 2 (The following argument "
                              "was not expected: hello); an older podpipe?"),
              std::string::npos)
        << old.output;
    auto v2 = cp("--pod-binary /data/v2-podpipe " + q(src_) + " gnu:/data/v22");
    EXPECT_NE(v2.output.find("podpipe hello: unknown protocol version 2 (this podpipe speaks 1)"),
              std::string::npos)
        << v2.output;
}

TEST_F(cp_test, v4_exec_protocol) {
    round_trip("bb", "--exec-v4", "v4bin");
    // On v4 the pod's tar cannot see the end of stdin: refused with the reason, nothing hangs.
    auto r = cp("--exec-v4 --pod-binary none " + q(src_) + " bb:/data/v4tar");
    EXPECT_EQ(r.exit_code, 1) << r.output;
    EXPECT_NE(r.output.find("v4.channel.k8s.io"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("podpipe is not used (--pod-binary none)"), std::string::npos)
        << r.output;
    EXPECT_EQ(r.output.find("trying again"), std::string::npos) << "a repeat cannot mend it";
    // Out of a pod, EOF is the end of stdout: v4 works with tar too.
    ASSERT_EQ(cp("--pod-binary none " + q(src_) + " gnu:/data/t").exit_code, 0);
    auto out = cp("--exec-v4 --pod-binary none gnu:/data/t " + q(tmp_ / "v4out"));
    ASSERT_EQ(out.exit_code, 0) << out.output;
    EXPECT_EQ(diff_trees(src_, tmp_ / "v4out"), std::vector<std::string>{});
}

TEST_F(cp_test, pod_to_pod_through_the_callers_memory) {
    ASSERT_EQ(cp(q(src_) + " bb:/data/a").exit_code, 0);
    auto r = cp("--stats-json " + q(tmp_ / "p2p.json") + " default/bb:main:/data/a gnu:/data/b");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("relayed"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("manifest verified"), std::string::npos) << r.output; // both pods ran podpipe
    const std::string p2p = shell("cat " + q(tmp_ / "p2p.json")).output;
    EXPECT_NE(p2p.find("\"remote\":{\"direction\":\"recv\""), std::string::npos) << p2p;
    auto mixed = cp("--pod-binary none gnu:/data/b bb:/data/c");
    ASSERT_EQ(mixed.exit_code, 0) << mixed.output;
    ASSERT_EQ(cp("bb:/data/c " + q(tmp_ / "c")).exit_code, 0);
    EXPECT_EQ(diff_trees(src_, tmp_ / "c", /*compare_mtimes=*/false), std::vector<std::string>{});
}

// A pod running as uid 1001 whose tree has a file it cannot read: out of the pod and between
// pods, the copy fails by default and names the file (the in-pod sender reports it in the
// stream, the receiving pod in its report); --allow-incomplete accepts it with the warning.
TEST_F(cp_test, files_the_pods_sender_cannot_read_are_not_hidden) {
    std::string yaml = podpipe_pod_yaml("u1001", PODPIPE_BB_IMAGE, PODPIPE_STATIC_DIR);
    const std::string spec = "spec:\n";
    yaml.replace(yaml.find(spec), spec.size(), "spec:\n  securityContext: {runAsUser: 1001}\n");
    create_pod(yaml);
    ASSERT_EQ(wait_phase("u1001", "Running"), "Running");
    auto made = kubectl("exec u1001 -- sh -c 'mkdir -p /data/p && echo fine > /data/p/ok && "
                        "echo hidden > /data/p/secret && chmod 000 /data/p/secret && id -u'");
    ASSERT_EQ(made.exit_code, 0) << made.output;
    ASSERT_NE(made.output.find("1001"), std::string::npos) << made.output;

    auto out = cp("u1001:/data/p " + q(tmp_ / "p"));
    EXPECT_EQ(out.exit_code, 1) << out.output;
    EXPECT_NE(out.output.find("cannot read 'secret'"), std::string::npos) << out.output;
    EXPECT_NE(out.output.find("not copied as they are on the sender's disk"), std::string::npos)
        << out.output;
    EXPECT_EQ(out.output.find("manifest verified"), std::string::npos) << out.output;

    auto p2p = cp("u1001:/data/p bb:/data/p");
    EXPECT_EQ(p2p.exit_code, 1) << p2p.output;
    EXPECT_NE(p2p.output.find("cannot read 'secret'"), std::string::npos) << p2p.output;

    // pod_copier's error carries the sender's problems and the status: podpipe-hook does not
    // retry such a copy (grouped_copy), a second read would fail the same way.
    kube::config_sources sources;
    sources.kubeconfig = kubeconfig_;
    sources.env = {{"HOME", dir_ + "/home"}};
    auto cfg = kube::load_config(sources);
    ASSERT_TRUE(cfg) << cfg.error().what();
    auto client = kube::api_client::connect(*cfg);
    ASSERT_TRUE(client) << client.error().what();
    remote::pod_copier copier(**client, remote::copy_options{});
    auto from = copier.probe({"", "u1001", "", "/data/p"});
    ASSERT_TRUE(from) << from.error().message;
    const auto copied = copier.pod_to_local(*from, (tmp_ / "p3").string());
    ASSERT_FALSE(copied);
    EXPECT_EQ(copied.error().status, pipeline::exit_failure) << copied.error().message;
    EXPECT_EQ(copied.error().problems.count, 1u) << copied.error().message;
    EXPECT_NE(copied.error().message.find("cannot read 'secret'"), std::string::npos)
        << copied.error().message;

    auto allowed = cp("--allow-incomplete u1001:/data/p " + q(tmp_ / "p2"));
    ASSERT_EQ(allowed.exit_code, 0) << allowed.output;
    EXPECT_NE(allowed.output.find("warning"), std::string::npos) << allowed.output;
    EXPECT_NE(allowed.output.find("cannot read 'secret'"), std::string::npos) << allowed.output;
    EXPECT_NE(allowed.output.find("NOT verified"), std::string::npos) << allowed.output;
    EXPECT_TRUE(fs::exists(tmp_ / "p2/ok"));
    EXPECT_FALSE(fs::exists(tmp_ / "p2/secret"));
}

TEST_F(cp_test, large_file_through_a_throttled_link) {
    ASSERT_EQ(shell("head -c 120000000 /dev/urandom > " + q(src_ / "big.bin")).exit_code, 0);
    faults(R"({"throttle": {"bytesPerSecond": 200000000, "latencyMicroseconds": 2000}})");
    round_trip("bb", "", "big");
}

// On a slow link the in-pod receiver's acknowledgements let auto find the rate before the
// exec path's buffers fill: the probe's rate is reported and most chunks go at the top level
// (without them, about the first 10 MB went at level 1). Then the same with the pod's tar
// (no acknowledgements): still a complete copy.
TEST_F(cp_test, auto_level_probes_a_slow_link_with_the_pods_acknowledgements) {
    const fs::path text = tmp_ / "text";
    // A hex dump: 12 MB that compress about 2.5 times (a few MB on the wire, a few seconds).
    ASSERT_EQ(shell("mkdir -p " + q(text) + " && head -c 4000000 /dev/urandom | od -An -tx1 -v > " +
                    q(text / "lines.txt")).exit_code, 0);
    faults(R"({"throttle": {"bytesPerSecond": 3000000, "latencyMicroseconds": 2000}})");
    auto in = cp("--stats-json " + q(tmp_ / "probe.json") + " " + q(text) + " bb:/data/probe");
    ASSERT_EQ(in.exit_code, 0) << in.output;
    const std::string json = shell("cat " + q(tmp_ / "probe.json")).output;
    expect_probed_slow_link(json);
    // The acknowledgements came out of the pod's stdout; its report is still whole.
    EXPECT_NE(json.find("\"remote\":{\"direction\":\"recv\""), std::string::npos) << json;
    const std::string here = shell("md5sum < " + q(text / "lines.txt")).output;
    const std::string there = kubectl("exec bb -- sh -c 'md5sum < /data/probe/lines.txt'").output;
    EXPECT_EQ(here.substr(0, 32), there.substr(0, 32));
    auto tar = cp("--pod-binary none " + q(text) + " gnu:/data/probe-tar");
    EXPECT_EQ(tar.exit_code, 0) << tar.output;
    faults(R"({"throttle": {"bytesPerSecond": 0}})");
}

// Out of a pod the roles swap: the pod's `podpipe send --acks` reads acknowledgements on its
// stdin (ours, or the destination pod's relayed by us) and finds the slow link before its
// buffers fill. /data/wrap/pp in the pods runs their podpipe and records a send's stats in
// /data/send.json (a pod's sender reports nothing back on its own).
class cp_acks_test : public cp_test {
protected:
    void SetUp() override {
        cp_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        // A hex dump: 12 MB that compress about 2.5 times (a few MB on the wire, a few seconds).
        ASSERT_EQ(shell("mkdir -p " + q(text_) + " && head -c 4000000 /dev/urandom | od -An -tx1 -v > " +
                        q(text_ / "lines.txt")).exit_code, 0);
        const fs::path wrap = tmp_ / "wrap";
        ASSERT_EQ(shell("mkdir -p " + q(wrap) + " && printf '%s\\n' '#!/bin/sh' "
                        "'[ \"$1\" = send ] && exec /__e/podpipe/podpipe \"$@\" --stats-json /data/send.json' "
                        "'exec /__e/podpipe/podpipe \"$@\"' > " + q(wrap / "pp") + " && chmod +x " +
                        q(wrap / "pp")).exit_code, 0);
        ASSERT_EQ(cp(q(text_) + " bb:/data/probe").exit_code, 0);
        ASSERT_EQ(cp(q(wrap) + " bb:/data/wrap").exit_code, 0);
        ASSERT_EQ(cp(q(wrap) + " gnu:/data/wrap").exit_code, 0);
    }
    fs::path text_ = tmp_ / "text";
};

TEST_F(cp_acks_test, auto_level_out_of_a_pod_probes_with_our_acknowledgements) {
    faults(R"({"throttle": {"bytesPerSecond": 3000000, "latencyMicroseconds": 2000}})");
    auto out = cp("--pod-binary /data/wrap/pp bb:/data/probe " + q(tmp_ / "back"));
    faults(R"({"throttle": {"bytesPerSecond": 0}})");
    ASSERT_EQ(out.exit_code, 0) << out.output;
    expect_probed_slow_link(kubectl("exec bb -- cat /data/send.json").output);
    EXPECT_EQ(shell("cmp " + q(text_ / "lines.txt") + " " + q(tmp_ / "back" / "lines.txt")).exit_code, 0);
}

// Between pods, cp carries the destination's acknowledgements (off its stdout) into the
// source's stdin.
TEST_F(cp_acks_test, auto_level_between_pods_probes_with_the_destinations_acknowledgements) {
    faults(R"({"throttle": {"bytesPerSecond": 3000000, "latencyMicroseconds": 2000}})");
    auto r = cp("--pod-binary /data/wrap/pp --stats-json " + q(tmp_ / "p2p.json") +
                " bb:/data/probe gnu:/data/probe");
    faults(R"({"throttle": {"bytesPerSecond": 0}})");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    expect_probed_slow_link(kubectl("exec bb -- cat /data/send.json").output);
    // The acknowledgements came out of gnu's stdout; its report is still whole.
    const std::string p2p = shell("cat " + q(tmp_ / "p2p.json")).output;
    EXPECT_NE(p2p.find("\"remote\":{\"direction\":\"recv\""), std::string::npos) << p2p;
    const std::string here = shell("md5sum < " + q(text_ / "lines.txt")).output;
    const std::string there = kubectl("exec gnu -- sh -c 'md5sum < /data/probe/lines.txt'").output;
    EXPECT_EQ(here.substr(0, 32), there.substr(0, 32));
}

TEST_F(cp_test, retries_a_429_on_the_first_request) {
    faults(R"({"http": {"code": 429, "count": 1, "retryAfterSeconds": 1}})");
    round_trip("bb", "", "after429");
}

TEST_F(cp_test, dropped_exec_is_a_clear_failure) {
    ASSERT_EQ(shell("head -c 8000000 /dev/urandom > " + q(src_ / "big.bin")).exit_code, 0);
    ASSERT_EQ(cp(q(src_) + " bb:/data/d").exit_code, 0);
    for (const std::string flags : {"", "--pod-binary none "}) {
        // Two sessions: the probe (a few bytes of output, unaffected) and the transfer, whose
        // connection drops after 2 MB of output.
        faults(R"({"exec": {"count": 2, "dropAfterBytes": 2000000}})");
        auto dropped = cp(flags + "--retry-for 0 bb:/data/d " + q(tmp_ / "dropped"));
        EXPECT_NE(dropped.exit_code, 0) << dropped.output;
        EXPECT_NE(dropped.output.find("default/bb"), std::string::npos) << dropped.output;
        EXPECT_NE(dropped.output.find("incomplete"), std::string::npos) << dropped.output;
        EXPECT_EQ(dropped.output.find("copied"), std::string::npos) << dropped.output;
        EXPECT_EQ(dropped.output.find("trying again"), std::string::npos) << dropped.output;
        // By default (--retry-for 2m) the copy is tried again, says so, and arrives whole.
        faults(R"({"exec": {"count": 2, "dropAfterBytes": 2000000}})");
        const fs::path again = tmp_ / ("again" + std::to_string(flags.size()));
        auto retried = cp(flags + "bb:/data/d " + q(again));
        EXPECT_EQ(retried.exit_code, 0) << retried.output;
        EXPECT_NE(retried.output.find("warning: failed (attempt 1): "), std::string::npos)
            << retried.output;
        EXPECT_NE(retried.output.find("trying again in "), std::string::npos) << retried.output;
        EXPECT_EQ(diff_trees(src_, again), std::vector<std::string>{}) << retried.output;
    }
}

TEST_F(cp_test, pod_killed_while_receiving_is_retried_or_a_clear_failure) {
    ASSERT_EQ(shell("head -c 30000000 /dev/urandom > " + q(src_ / "big.bin")).exit_code, 0);
    // 5 MB/s: the copy takes seconds, and the pod's processes die once it receives (the first
    // entry exists in the pod). The pod restarts (restartPolicy Always); its /data stays.
    faults(R"({"throttle": {"bytesPerSecond": 5000000}})");
    auto copy_while_killed = [&](const std::string& flags, const std::string& dir) {
        std::thread killer([&] {
            EXPECT_TRUE(podpipe::testing::eventually(
                [&] {
                    auto r = kubectl("exec bb -- ls -A " + dir);
                    return r.exit_code == 0 && !r.output.empty();
                },
                std::chrono::seconds(30), std::chrono::milliseconds(50)));
            https_request(port(), ca_file(), admin_token(), "POST", "/kubesim/faults",
                          R"({"killPod": {"namespace": "default", "name": "bb"}})");
        });
        auto r = cp(flags + q(src_) + " bb:" + dir);
        killer.join();
        return r;
    };
    auto once = copy_while_killed("--retry-for 0 ", "/data/killed");
    EXPECT_NE(once.exit_code, 0) << once.output;
    EXPECT_NE(once.output.find("default/bb"), std::string::npos) << once.output;
    EXPECT_NE(once.output.find("killed by signal 9"), std::string::npos) << once.output;
    EXPECT_EQ(once.output.find("copied"), std::string::npos) << once.output;
    // By default the copy starts over once the pod runs again, and arrives whole.
    ASSERT_TRUE(podpipe::testing::eventually(
        [&] { return kubectl("exec bb -- true").exit_code == 0; }, std::chrono::seconds(30)));
    auto retried = copy_while_killed("", "/data/killed2");
    EXPECT_EQ(retried.exit_code, 0) << retried.output;
    EXPECT_NE(retried.output.find("killed by signal 9 (SIGKILL: out of memory, or the pod was "
                                  "stopped); trying again in "),
              std::string::npos)
        << retried.output;
    faults(R"({"throttle": {"bytesPerSecond": 0}})");
    ASSERT_EQ(cp("bb:/data/killed2 " + q(tmp_ / "killed2")).exit_code, 0);
    EXPECT_EQ(diff_trees(src_, tmp_ / "killed2"), std::vector<std::string>{});
}

TEST_F(cp_test, excludes_apply_on_every_path) {
    const fs::path small = tmp_ / "small";
    podpipe::testing::write_file(small / "keep.c", "int main() {}\n");
    podpipe::testing::write_file(small / "drop.o", "object");
    podpipe::testing::write_file(small / "sub/drop.o", "object");
    podpipe::testing::write_file(small / "sub/keep.h", "#pragma once\n");
    for (const std::string pod : {"bb", "gnu"}) {
        for (const std::string flags : {"", "--pod-binary none "}) {
            const std::string tag = pod + (flags.empty() ? "-bin" : "-tar");
            // Into the pod (local sender) and out of it (the pod's podpipe send or tar).
            ASSERT_EQ(cp(flags + "--exclude '*.o' " + q(small) + " " + pod + ":/data/" + tag).exit_code, 0);
            auto listing = kubectl("exec " + pod + " -- find /data/" + tag + " -type f");
            EXPECT_EQ(listing.output.find(".o"), std::string::npos) << tag << ": " << listing.output;
            ASSERT_EQ(cp(q(small) + " " + pod + ":/data/" + tag + "-all").exit_code, 0);
            auto out = cp(flags + "--exclude '*.o' " + pod + ":/data/" + tag + "-all " + q(tmp_ / tag));
            ASSERT_EQ(out.exit_code, 0) << tag << ": " << out.output;
            EXPECT_TRUE(fs::exists(tmp_ / tag / "sub/keep.h")) << tag;
            EXPECT_FALSE(fs::exists(tmp_ / tag / "drop.o")) << tag;
            EXPECT_FALSE(fs::exists(tmp_ / tag / "sub/drop.o")) << tag;
        }
    }
}

TEST_F(cp_test, same_result_as_kubectl_cp) {
    ASSERT_EQ(cp(q(src_) + " gnu:/data/ours").exit_code, 0);
    auto k = kubectl("cp " + q(src_) + " gnu:/data/theirs");
    ASSERT_EQ(k.exit_code, 0) << k.output;
    // Inside the pod: same names, types, sizes, modes and contents. A directory's st_size is
    // the filesystem's business (tmpfs counts entries, xfs and btrfs count name bytes and keep
    // what deleted entries used), so directories are compared without it.
    const std::string listing =
        "cd /data/$0 && { find . ! -type d -exec stat -c '%n %F %s %a' {} + ; "
        "find . -type d -exec stat -c '%n %F %a' {} + ; } | sort && "
        "find . -type f -exec md5sum {} + | sort";
    auto ours = kubectl("exec gnu -- sh -c " + shell_quote(listing) + " ours");
    auto theirs = kubectl("exec gnu -- sh -c " + shell_quote(listing) + " theirs");
    ASSERT_EQ(ours.exit_code, 0) << ours.output;
    ASSERT_EQ(theirs.exit_code, 0) << theirs.output;
    EXPECT_FALSE(ours.output.empty());
    // Report only the lines that differ: the listings run to hundreds of lines.
    auto lines = [](const std::string& text) {
        std::multiset<std::string> out;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);)
            out.insert(line);
        return out;
    };
    const auto a = lines(ours.output);
    const auto b = lines(theirs.output);
    std::vector<std::string> only_ours, only_theirs;
    std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(only_ours));
    std::set_difference(b.begin(), b.end(), a.begin(), a.end(), std::back_inserter(only_theirs));
    EXPECT_EQ(only_ours, std::vector<std::string>{}) << "only after podpipe cp";
    EXPECT_EQ(only_theirs, std::vector<std::string>{}) << "only after kubectl cp";
}

TEST_F(cp_test, errors_name_what_failed) {
    auto nopod = cp(q(src_) + " missing-pod:/data/x");
    EXPECT_EQ(nopod.exit_code, 1) << nopod.output;
    EXPECT_NE(nopod.output.find("missing-pod"), std::string::npos) << nopod.output;
    auto nodir = cp("bb:/data/does-not-exist " + q(tmp_ / "x"));
    EXPECT_NE(nodir.exit_code, 0) << nodir.output;
    EXPECT_NE(nodir.output.find("/data/does-not-exist"), std::string::npos) << nodir.output;
    // What a repeat would meet again is not repeated (--retry-for): a missing pod, a missing
    // source, a container that ended, a read-only target.
    EXPECT_EQ(nopod.output.find("trying again"), std::string::npos) << nopod.output;
    EXPECT_EQ(nodir.output.find("trying again"), std::string::npos) << nodir.output;
    // A pod whose container has ended: the probe says so instead of guessing "no podpipe".
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: done}
spec:
  restartPolicy: Never
  containers: [{name: main, image: busybox:1.36, command: ["true"]}]
)");
    ASSERT_EQ(wait_phase("done", "Succeeded"), "Succeeded");
    for (const std::string flags : {"", "--exec-v4 "}) {
        // v5: a Failure status after the upgrade; v4: the kubelet's 500 before it.
        auto ended = cp(flags + q(src_) + " done:/data/x");
        EXPECT_EQ(ended.exit_code, 1) << flags << ended.output;
        EXPECT_NE(ended.output.find("default/done"), std::string::npos) << ended.output;
        EXPECT_NE(ended.output.find("container not found (\"main\")"), std::string::npos)
            << flags << ended.output;
        EXPECT_EQ(ended.output.find("trying again"), std::string::npos) << ended.output;
    }
    auto usage = cp(q(src_) + " " + q(tmp_ / "local"));
    EXPECT_EQ(usage.exit_code, 2) << usage.output;
    // The destination is read-only in the pod: the pod's error comes back.
    auto ro = cp(q(src_) + " bb:/__e/podpipe/x");
    EXPECT_NE(ro.exit_code, 0) << ro.output;
    EXPECT_NE(ro.output.find("Read-only file system"), std::string::npos) << ro.output;
    EXPECT_EQ(ro.output.find("trying again"), std::string::npos) << ro.output;
}

TEST_F(cp_test, bench_measures_and_recommends) {
    auto r = shell(podpipe_exe + " bench --kubeconfig " + shell_quote(kubeconfig_) +
                   " --pod default/bb:main --synthetic files=300,size=3M,dist=node_modules"
                   " --budget 5s --json");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find("\"pod_binary\":true"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\"upload_mbps\":"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\"recommended\":{\"level\":"), std::string::npos) << r.output;
    // The hook's variables, in the form podpipe-hook accepts (Ki/Mi suffixes).
    EXPECT_NE(r.output.find("\"hook_env\":{\"PODPIPE_COMPRESSION_LEVEL\":"), std::string::npos) << r.output;
    EXPECT_TRUE(r.output.find("\"PODPIPE_CHUNK_SIZE\":\"256Ki\"") != std::string::npos ||
                r.output.find("\"PODPIPE_CHUNK_SIZE\":\"1Mi\"") != std::string::npos ||
                r.output.find("\"PODPIPE_CHUNK_SIZE\":\"4Mi\"") != std::string::npos)
        << r.output;
    EXPECT_NE(r.output.find("\"direction\":\"from pod\""), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("\"pod_side\":\"tar\""), std::string::npos) << r.output;
    EXPECT_EQ(r.output.find("\"ok\":false"), std::string::npos) << r.output;
    // The scratch directory in the pod is gone afterwards.
    EXPECT_NE(kubectl("exec bb -- ls /tmp/podpipe-bench").exit_code, 0);
    // Without the in-pod binary only the tar rows exist, and bad input is a usage error.
    auto tar_only = shell(podpipe_exe + " bench --kubeconfig " + shell_quote(kubeconfig_) +
                          " --pod gnu --pod-binary none --synthetic files=50,size=1M --budget 1s");
    ASSERT_EQ(tar_only.exit_code, 0) << tar_only.output;
    EXPECT_NE(tar_only.output.find("recommended: podpipe cp --level"), std::string::npos) << tar_only.output;
    EXPECT_NE(tar_only.output.find("in the runner pod's env: PODPIPE_COMPRESSION_LEVEL="), std::string::npos)
        << tar_only.output;
    EXPECT_EQ(shell(podpipe_exe + " bench --pod bb").exit_code, 2);
    EXPECT_EQ(shell(podpipe_exe + " bench --pod bb --synthetic files=x").exit_code, 2);
}

} // namespace
} // namespace podpipe::kubesim::testing
