// podpipe-hook in volume mode (issue 6, spec/hook-behavior.md §5) against kubesim with three
// nodes, called by the runner emulator exactly as the runner calls a hook.
//
// How the shared volume is made real: kubesim keeps a claim's bytes in STATE/claims/NS/CLAIM
// (one directory shared by every pod that mounts the claim). The emulator's runner home gets
// `_work` as a symlink to that directory, and a runner pod (named like ACTIONS_RUNNER_POD_NAME,
// pinned to a chosen node with spec.nodeName as ARC's runner pods are) mounts the claim at
// /home/runner/_work. So what the runner writes under _work, what the runner pod sees and what
// the job and step pods see at /__w are the same bytes, and the running runner pod holds an RWO
// claim on its node exactly as in a cluster (Multi-Attach elsewhere).
//
// Every test runs twice (issue 20): `plain`, and `restricted`: the default namespace enforces
// Pod Security "restricted", the runner pod conforms (as ARC's runner pods must there), and the
// hook template is examples/hook-template-restricted.yaml with CPU and memory limits on $job,
// merged into the test's own template if it has one (pod_security.hpp).
#include "tests/hooks/runner/pod_security.hpp"
#include "tests/hooks/runner/private_registry_step.hpp"
#include "tests/hooks/runner/runner_emulator.hpp"
#include "tests/support/child_process.hpp"
#include "tests/support/eventually.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/kubesim/test_client.hpp"

#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <fstream>
#include <regex>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using hook::testing::hook_run;
using hook::testing::pod_security;
using hook::testing::runner_emulator;
using hook::testing::script_step;
using podpipe::testing::shell_quote;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;

using hook::testing::all;

// Failing calls are expected to exit 1, which is also a sanitizer's exit code: make sure the
// failure is the hook's own.
void expect_clean_failure(const hook_run& r) {
    EXPECT_EQ(r.exit_code, 1) << all(r);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.err.find("Sanitizer"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("runtime error"), std::string::npos) << r.err;
}

// A container action running `script` with sh in alpine:3 (busybox).
hook::testing::container_action sh_action(const std::string& script) {
    hook::testing::container_action a;
    a.image = "alpine:3";
    a.entry_point = "sh";
    a.args = {"-c", script};
    return a;
}

std::string job_args(const std::string& image = "alpine:3", const std::string& volumes = "[]") {
    return R"({"container":{"image":")" + image +
           R"(","workingDirectory":"/__w/app/app","environmentVariables":{"JOBVAR":"j1"},"portMappings":[],)"
           R"("userMountVolumes":)" + volumes + R"(},"services":[]})";
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The job image is alpine-like (busybox): no bash, so steps use `shell: sh`.
script_step sh_step() {
    script_step st;
    st.shell = "sh";
    return st;
}

class volume_mode_test : public kubesim_fixture,
                         public ::testing::WithParamInterface<pod_security> {
protected:
    void SetUp() override {} // each test starts kubesim with its own flags (start())

    bool restricted() const { return GetParam() == pod_security::restricted; }

    /// The test's own template (YAML), as this variant makes it (pod_security.hpp), becomes
    /// ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE. After start(), before runner().
    void use_template(const std::string& yaml) {
        hook::testing::set_hook_template(options_.extra_env, GetParam(),
                                         tmp_ / "hook-template.yaml", yaml);
    }

    /// Starts kubesim with `extra` flags (three nodes), creates claim `claim` with `mode`, the
    /// runner pod on `runner_node` mounting it (spec.nodeName, or required affinity when
    /// `pin_with_affinity`), and lays out the emulator's home with _work = the claim's directory.
    void start(const std::vector<std::string>& extra, const std::string& claim, const std::string& mode,
               const std::string& runner_node = "node-1", bool pin_with_affinity = false) {
        extra_args_ = {"--nodes", "3"};
        extra_args_.insert(extra_args_.end(), extra.begin(), extra.end());
        kubesim_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        if (restricted()) {
            auto label = kubectl("label namespace default " +
                                 std::string(hook::testing::enforce_restricted_label));
            ASSERT_EQ(label.exit_code, 0) << label.output;
        }
        if (!claim.empty())
            create_claim(claim, mode);
        const std::string placement =
            pin_with_affinity
                ? "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
                  "        nodeSelectorTerms:\n        - matchExpressions:\n"
                  "          - {key: kubernetes.io/hostname, operator: In, values: [" + runner_node + "]}\n"
                : "  nodeName: " + runner_node + "\n";
        // Under "restricted" the runner pod conforms as ARC's runner pods must there: the
        // runner image's user, no privilege escalation, no capabilities, RuntimeDefault seccomp.
        const std::string pod_security_context =
            restricted() ? "  securityContext:\n    runAsNonRoot: true\n    runAsUser: 1001\n"
                           "    runAsGroup: 123\n    fsGroup: 123\n"
                           "    seccompProfile: {type: RuntimeDefault}\n"
                         : "";
        const std::string runner_security_context =
            restricted() ? "    securityContext:\n      allowPrivilegeEscalation: false\n"
                           "      capabilities: {drop: [ALL]}\n"
                         : "";
        create_pod("apiVersion: v1\nkind: Pod\nmetadata:\n  name: runner-abc\nspec:\n" + placement +
                   pod_security_context +
                   "  containers:\n  - name: runner\n    image: ghcr.io/actions/actions-runner:latest\n"
                   "    command: [sleep, '100000']\n" + runner_security_context +
                   "    volumeMounts:\n    - {name: work, mountPath: /home/runner/_work}\n"
                   "  volumes:\n  - name: work\n    persistentVolumeClaim: {claimName: " +
                   (claim.empty() ? std::string("runner-abc-work") : claim) + "}\n");
        if (!pin_with_affinity) {
            ASSERT_EQ(wait_phase("runner-abc", "Running"), "Running");
        }
        // The runner install: _work is the claim, externals beside it (what /__e must show).
        const fs::path claim_dir = fs::path(dir_) / "state" / "claims" / "default" /
                                   (claim.empty() ? std::string("runner-abc-work") : claim);
        fs::create_directories(claim_dir);
        fs::create_directories(home_);
        fs::create_directory_symlink(claim_dir, home_ / "_work");
        write_file(home_ / "externals" / "node24" / "bin" / "node", "#!/bin/sh\necho fake-node \"$@\"\n");
        fs::permissions(home_ / "externals" / "node24" / "bin" / "node", fs::perms::owner_all | fs::perms::group_read |
                                                                                 fs::perms::others_read | fs::perms::others_exec);
        write_file(home_ / "externals" / "version.txt", "2.330.0\n");
        options_.home = home_;
        options_.kubeconfig = kubeconfig_;
        options_.hook_shim = PODPIPE_HOOK_SHIM;
        options_.hook_binary = PODPIPE_HOOK_EXE;
        options_.runner_pod_name = "runner-abc";
        options_.user = {{1001, 123}}; // the actions-runner image's runner user: no root assumed
        options_.extra_env = {{"PODPIPE_WORKSPACE_MODE", "volume"},
                              {"ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS", "30"}};
        use_template("");
    }

    void create_claim(const std::string& name, const std::string& mode) {
        auto r = kubectl("create --validate=false -f -",
                         "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n  name: " + name +
                             "\nspec:\n  accessModes: [" + mode +
                             "]\n  resources:\n    requests:\n      storage: 1Gi\n");
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }

    runner_emulator& runner() {
        if (!runner_)
            runner_.emplace(options_);
        return *runner_;
    }

    std::string jsonpath(const std::string& pod, const std::string& path) {
        return kubectl("get pod " + pod + " -o jsonpath=" + shell_quote("{" + path + "}")).output;
    }

    std::string pods_of_runner() { return kubectl("get pods -l runner-pod=runner-abc -o name").output; }

    temp_dir tmp_;
    fs::path home_ = tmp_ / "runner";
    runner_emulator::options options_;
    std::optional<runner_emulator> runner_;
};

INSTANTIATE_TEST_SUITE_P(, volume_mode_test,
                         ::testing::Values(pod_security::plain, pod_security::restricted),
                         [](const auto& info) { return hook::testing::to_string(info.param); });

// RWO + ACTIONS_RUNNER_HOOK_RWO=true: required affinity; the job and step pods land on the
// runner's node and see the runner's bytes; a whole job sees one workspace.
TEST_P(volume_mode_test, rwo_with_flag_runs_a_whole_job_on_one_consistent_workspace) {
    start({}, "runner-abc-work", "ReadWriteOnce");
    if (IsSkipped() || HasFatalFailure())
        return;
    options_.extra_env["ACTIONS_RUNNER_HOOK_RWO"] = "true";
    auto& r = runner();
    write_file(r.github_workspace() / "src" / "input.txt", "from-the-checkout\n");

    auto prep = r.prepare_job(job_args());
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_NE(prep.out.find("externals copied onto the work volume"), std::string::npos) << prep.out;
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.nodeName"), "node-1");
    const std::string req = jsonpath("runner-abc-workflow",
                                     ".spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms");
    EXPECT_NE(req.find(R"("key":"metadata.name")"), std::string::npos) << req;
    EXPECT_NE(req.find(R"("key":"kubernetes.io/hostname")"), std::string::npos) << req;
    EXPECT_NE(req.find(R"("values":["node-1"])"), std::string::npos) << req;
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution"), "");
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.volumes[0].persistentVolumeClaim.claimName"), "runner-abc-work");
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.initContainers"), "");

    // A script step: reads the checkout and the externals, writes files and an output; nothing
    // is copied, so the runner sees the files in its own _work at once.
    if (restricted()) {
        // The job pod has the template's limits.
        EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.containers[0].resources.limits.cpu"),
                  hook::testing::restricted_cpu_limit);
        EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.containers[0].resources.limits.memory"),
                  hook::testing::restricted_memory_limit);
    }
    auto step = r.run_script_step(
        "set -e\necho \"uid=$(id -u)\" >> \"$GITHUB_OUTPUT\"\n"
        "cat /__w/app/app/src/input.txt\n/__e/node24/bin/node --version\n"
        "echo made-in-job > /__w/app/app/from-job.txt\necho made-home > /github/home/h.txt\n"
        "echo \"answer=42\" >> \"$GITHUB_OUTPUT\"\necho \"JOBVAR=$JOBVAR\"\n", sh_step());
    ASSERT_TRUE(step.ok()) << all(step);
    EXPECT_NE(step.out.find("from-the-checkout"), std::string::npos) << step.out;
    EXPECT_NE(step.out.find("fake-node --version"), std::string::npos) << step.out;
    EXPECT_EQ(r.outputs().at("answer"), "42");
    // The image's user (root), or the restricted template's.
    EXPECT_EQ(r.outputs().at("uid"), restricted() ? "1001" : "0");
    EXPECT_EQ(read_file(r.github_workspace() / "from-job.txt"), "made-in-job\n");
    EXPECT_EQ(read_file(r.github_home() / "h.txt"), "made-home\n");

    // A failing step: its own exit code.
    auto bad = r.run_script_step("echo failing\nexit 7\n", sh_step());
    EXPECT_EQ(bad.exit_code, 7) << all(bad);

    // A container step: reads what the script step wrote, writes back, sets an output through
    // /github/file_commands, sees /github/runner_temp; lands on the runner's node.
    auto act = sh_action("cat /github/workspace/from-job.txt && cat /github/home/h.txt && "
                         "echo from-container > /github/workspace/from-container.txt && "
                         "echo \"c=$INPUT_WHO\" >> \"$GITHUB_OUTPUT\" && "
                         "test -d /github/runner_temp/_runner_file_commands && "
                         "echo \"c_uid=$(id -u)\" >> \"$GITHUB_OUTPUT\" && echo runner-temp-ok");
    act.env = {{"INPUT_WHO", "octo"}};
    auto cs = r.run_container_step(act);
    ASSERT_TRUE(cs.ok()) << all(cs);
    EXPECT_NE(cs.out.find("made-in-job"), std::string::npos) << cs.out;
    EXPECT_NE(cs.out.find("made-home"), std::string::npos) << cs.out;
    EXPECT_NE(cs.out.find("runner-temp-ok"), std::string::npos) << cs.out;
    EXPECT_NE(cs.out.find("runs on node node-1"), std::string::npos) << cs.out;
    EXPECT_EQ(read_file(r.github_workspace() / "from-container.txt"), "from-container\n");
    EXPECT_EQ(r.outputs().at("c"), "octo");
    EXPECT_EQ(r.outputs().at("c_uid"), restricted() ? "1001" : "0");
    // The step pod and its env Secret are gone once the step ended.
    EXPECT_EQ(pods_of_runner(), "pod/runner-abc-workflow\n");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "");

    // The action's own exit code.
    auto failing = sh_action("echo about-to-fail; exit 5");
    auto cf = r.run_container_step(failing);
    EXPECT_EQ(cf.exit_code, 5) << all(cf);
    EXPECT_NE(cf.out.find("about-to-fail"), std::string::npos) << cf.out;

    // The job pod still sees what the container step wrote: one workspace.
    auto after = r.run_script_step("cat /__w/app/app/from-container.txt\n", sh_step());
    ASSERT_TRUE(after.ok()) << all(after);
    EXPECT_NE(after.out.find("from-container"), std::string::npos) << after.out;

    auto done = r.cleanup_job();
    ASSERT_TRUE(done.ok()) << all(done);
    EXPECT_EQ(pods_of_runner(), "");

    // The next job of this runner: the externals on the claim are current, nothing is copied.
    auto again = r.prepare_job(job_args());
    ASSERT_TRUE(again.ok()) << all(again);
    EXPECT_NE(again.out.find("externals on the work volume are current"), std::string::npos) << again.out;
    // A changed runner install (new version) is copied again.
    write_file(home_ / "externals" / "version.txt", "2.331.0\n");
    ASSERT_TRUE(r.cleanup_job().ok());
    auto upgraded = r.prepare_job(job_args());
    ASSERT_TRUE(upgraded.ok()) << all(upgraded);
    EXPECT_NE(upgraded.out.find("externals copied onto the work volume"), std::string::npos) << upgraded.out;
    EXPECT_EQ(read_file(r.work_root() / "externals" / "version.txt"), "2.331.0\n");
    ASSERT_TRUE(r.cleanup_job().ok());
}

// Steps run as root in the job pod (the image's user) and leave read-only directories and 0400
// files on the claim; the runner (1001) must be able to remove them before its next job.
TEST_P(volume_mode_test, what_root_steps_leave_on_the_claim_the_runner_can_remove) {
    if (restricted())
        GTEST_SKIP() << "steps run as root here, which \"restricted\" refuses (runAsNonRoot)";
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args()).ok());
    auto step = r.run_script_step(
        "set -e\nid -u\nmkdir -p /__w/app/app/ro/sub /__w/_temp/cache/d\n"
        "echo x > /__w/app/app/ro/sub/f && chmod 0400 /__w/app/app/ro/sub/f\n"
        "echo y > /__w/_temp/cache/d/g && chmod 0400 /__w/_temp/cache/d/g\n"
        "chmod 0555 /__w/app/app/ro/sub /__w/app/app/ro /__w/_temp/cache/d\n"
        "ln -s /etc/passwd /__w/app/app/passwd-link\n", sh_step());
    ASSERT_TRUE(step.ok()) << all(step);
    ASSERT_NE(("\n" + step.out).find("\n0\n"), std::string::npos) << step.out; // as root
    struct stat st {};
    ASSERT_EQ(::stat((r.github_workspace() / "ro" / "sub" / "f").c_str(), &st), 0);
    ASSERT_EQ(st.st_uid, 0u) << "the pod's files are root's before cleanup";
    auto done = r.cleanup_job();
    ASSERT_TRUE(done.ok()) << all(done);
    EXPECT_EQ(done.out.find("::warning::"), std::string::npos) << done.out;
    ASSERT_EQ(::stat((r.github_workspace() / "ro" / "sub" / "f").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1001u);
    EXPECT_EQ(st.st_gid, 123u);
    EXPECT_EQ(st.st_mode & 0700, 0600u);
    // The link itself was handed over; what it points at in the pod was not touched.
    ASSERT_EQ(::lstat((r.github_workspace() / "passwd-link").c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1001u);
    // The runner's user removes the workspace and _temp contents, as the runner does.
    auto rm = shell("setpriv --reuid 1001 --regid 123 --clear-groups rm -rf " +
                    shell_quote(r.github_workspace().string()) + " " +
                    shell_quote((r.runner_temp() / "cache").string()));
    EXPECT_EQ(rm.exit_code, 0) << rm.output;
    EXPECT_FALSE(fs::exists(r.github_workspace() / "ro"));
    EXPECT_FALSE(fs::exists(r.runner_temp() / "cache"));
}

// cleanup_job's one exec (handing /__w back to the runner's user) opens through a burst of 503s
// longer than the kube client's own retries (five attempts): tried again with the copies'
// backoff (PODPIPE_COPY_RETRY_SECONDS), so the claim is handed back and no warning says it
// may not be.
TEST_P(volume_mode_test, cleanup_hands_the_claim_back_through_a_503_burst) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args()).ok());
    auto step = r.run_script_step("echo x > /__w/app/app/left && chmod 0400 /__w/app/app/left\n",
                                  sh_step());
    ASSERT_TRUE(step.ok()) << all(step);
    // The permissions were reviewed by prepare_job: the hand-back exec is cleanup's first call.
    faults(R"({"http": {"code": 503, "count": 8}})");
    auto done = r.cleanup_job();
    ASSERT_TRUE(done.ok()) << all(done);
    EXPECT_NE(done.out.find("::warning::handing /__w of pod runner-abc-workflow back failed "
                            "(attempt 1): "),
              std::string::npos)
        << all(done);
    EXPECT_EQ(done.out.find("may not all be removable"), std::string::npos) << all(done);
    EXPECT_NE(https_request(port(), ca_file(), admin_token(), "GET", "/kubesim/faults")
                  .body.find(R"("http":{"code":503,"remaining":0})"),
              std::string::npos);
    struct stat st {};
    ASSERT_EQ(::stat((r.github_workspace() / "left").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0700, 0600u) << "chmod u+rw did not run";
    EXPECT_EQ(pods_of_runner(), "");
}

// RWX without the flag: preferred affinity to the runner's node; that node is cordoned, so the
// pods run elsewhere and the job still works (the volume is reachable from every node).
TEST_P(volume_mode_test, rwx_prefers_the_runner_node_and_runs_elsewhere_when_it_is_cordoned) {
    start({"--cordon", "node-1"}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto& r = runner();
    // spec §8 84 (branch form): a user volume from the workspace at /myvolume; a service gets /__w.
    write_file(r.github_workspace() / "myvolume" / "file.txt", "hello");
    const std::string args =
        R"({"container":{"image":"alpine:3","workingDirectory":"/__w/app/app","environmentVariables":{},)"
        R"("portMappings":[],"userMountVolumes":[{"sourceVolumePath":")" +
        (r.github_workspace() / "myvolume").string() +
        R"(","targetVolumePath":"/myvolume","readOnly":false}]},)"
        R"("services":[{"image":"redis:7","environmentVariables":{},"portMappings":[],"userMountVolumes":[]}]})";
    auto prep = r.prepare_job(args);
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.containers[1].volumeMounts[0].mountPath"), "/__w");
    const std::string node = jsonpath("runner-abc-workflow", ".spec.nodeName");
    EXPECT_TRUE(node == "node-2" || node == "node-3") << node;
    const std::string pref = jsonpath("runner-abc-workflow",
                                      ".spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution");
    EXPECT_NE(pref.find(R"("weight":100)"), std::string::npos) << pref;
    EXPECT_NE(pref.find(R"("values":["node-1"])"), std::string::npos) << pref;
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"), "");

    // §8 84, A5 (#330) and A4: the user volume, event.json and /github/home are there; a failing
    // step's outputs reach the runner (they are on the shared volume).
    auto step = r.run_script_step("[ \"$(cat /myvolume/file.txt)\" = hello ] || exit 5\n"
                                  "test -f /github/workflow/event.json || exit 6\n"
                                  "test -d /github/home || exit 8\n"
                                  "echo rwx > /__w/app/app/rwx.txt\n"
                                  "echo out=before-failing >> \"$GITHUB_OUTPUT\"\nexit 3\n",
                                  sh_step());
    EXPECT_EQ(step.exit_code, 3) << all(step);
    EXPECT_EQ(r.outputs().at("out"), "before-failing");
    EXPECT_EQ(read_file(r.github_workspace() / "rwx.txt"), "rwx\n");
    auto act = sh_action("cat /github/workspace/rwx.txt");
    auto cs = r.run_container_step(act);
    ASSERT_TRUE(cs.ok()) << all(cs);
    EXPECT_NE(cs.out.find("rwx"), std::string::npos) << cs.out;
    ASSERT_TRUE(r.cleanup_job().ok());
    EXPECT_EQ(pods_of_runner(), "");
}

// A step that leaves a symlink at its file commands on the shared claim, pointing at a
// runner-side file (issue 18, item 6): the runner reads its file commands from the claim
// itself, so after the step the hook replaces the symlink by an empty file before the runner
// reads; the warning names it, and a regular file command of the same step still counts.
TEST_P(volume_mode_test, symlinks_at_file_commands_are_gone_before_the_runner_reads) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto& r = runner();
    const fs::path secret = tmp_ / "runner-side-secret";
    write_file(secret, "stolen=RUNNER-SIDE-SECRET\n");
    ASSERT_TRUE(r.prepare_job(job_args()).ok());
    auto step = r.run_script_step("echo 'FROM_STEP=kept' >> \"$GITHUB_ENV\"\n"
                                  "ln -sf " + shell_quote(secret.string()) +
                                      " \"$GITHUB_OUTPUT\"\n",
                                  sh_step());
    ASSERT_TRUE(step.ok()) << all(step);
    EXPECT_FALSE(fs::is_symlink(fs::symlink_status(r.step_files().at("set_output"))));
    EXPECT_EQ(r.outputs().count("stolen"), 0u) << all(step);
    EXPECT_EQ(r.env().at("FROM_STEP"), "kept") << all(step);
    const std::string name = r.step_files().at("set_output").filename().string();
    EXPECT_NE(step.out.find("::warning::the step left a symbolic link at its file command file '" +
                            name + "' (GITHUB_OUTPUT)"),
              std::string::npos)
        << step.out;

    auto cs = r.run_container_step(sh_action("echo 'c=yes' >> \"$GITHUB_OUTPUT\" && ln -sf " +
                                             shell_quote(secret.string()) +
                                             " \"$GITHUB_STEP_SUMMARY\""));
    ASSERT_TRUE(cs.ok()) << all(cs);
    EXPECT_FALSE(fs::is_symlink(fs::symlink_status(r.step_files().at("step_summary"))));
    EXPECT_EQ(r.summary().find("RUNNER-SIDE-SECRET"), std::string::npos) << r.summary();
    EXPECT_EQ(r.outputs().at("c"), "yes") << all(cs);
    EXPECT_EQ(read_file(secret), "stolen=RUNNER-SIDE-SECRET\n");
    ASSERT_TRUE(r.cleanup_job().ok());
}

// RWO without the flag, runner node cordoned: the scheduler puts the job pod elsewhere, where the
// claim cannot attach (the runner pod holds it). Reported at once, with what to change.
TEST_P(volume_mode_test, rwo_without_flag_on_another_node_fails_clearly) {
    start({"--cordon", "node-1"}, "runner-abc-work", "ReadWriteOnce");
    if (IsSkipped() || HasFatalFailure())
        return;
    options_.extra_env["ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"] = "60";
    auto& r = runner();
    auto prep = r.prepare_job(job_args());
    expect_clean_failure(prep);
    EXPECT_NE(prep.out.find("ReadWriteOnce but ACTIONS_RUNNER_HOOK_RWO is not"), std::string::npos) << prep.out;
    EXPECT_NE(prep.out.find("::error::"), std::string::npos) << prep.out;
    EXPECT_NE(prep.out.find("Multi-Attach error"), std::string::npos) << prep.out;
    EXPECT_NE(prep.out.find("Set ACTIONS_RUNNER_HOOK_RWO=true"), std::string::npos) << prep.out;
    EXPECT_NE(prep.out.find("ReadWriteMany"), std::string::npos) << prep.out;
    EXPECT_EQ(pods_of_runner(), ""); // pruned
}

// RWO with the flag, runner node cordoned: the job pod can never be scheduled; the timeout ends
// it with the scheduler's reason and the operator's options.
TEST_P(volume_mode_test, required_affinity_to_a_cordoned_node_fails_within_the_timeout) {
    start({"--cordon", "node-1"}, "runner-abc-work", "ReadWriteOnce");
    if (IsSkipped() || HasFatalFailure())
        return;
    options_.extra_env["ACTIONS_RUNNER_HOOK_RWO"] = "true";
    options_.extra_env["ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"] = "3";
    auto& r = runner();
    auto prep = r.prepare_job(job_args());
    expect_clean_failure(prep);
    EXPECT_NE(prep.out.find("did not start within 3 s"), std::string::npos) << prep.out;
    EXPECT_NE(prep.out.find("node.kubernetes.io/unschedulable"), std::string::npos) << prep.out;
    EXPECT_NE(prep.out.find("uncordon it or free capacity"), std::string::npos) << prep.out;
    EXPECT_EQ(pods_of_runner(), "");
}

// A container step whose image cannot be pulled: the start wait ends at the timeout with the
// kubelet's reason, and the step pod and its Secret are removed.
TEST_P(volume_mode_test, container_step_image_pull_failure_names_the_reason) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    options_.extra_env["ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"] = "3";
    auto& r = runner();
    hook::testing::container_action act;
    act.image = "registry.example/does-not-exist:1";
    act.entry_point = "sh";
    act.args = {"-c", "true"};
    auto cs = r.run_container_step(act);
    expect_clean_failure(cs);
    EXPECT_NE(cs.out.find("did not start within 3 s"), std::string::npos) << cs.out;
    EXPECT_TRUE(cs.out.find("ImagePullBackOff") != std::string::npos ||
                cs.out.find("ErrImagePull") != std::string::npos)
        << cs.out;
    EXPECT_EQ(pods_of_runner(), "");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "");
}

// How often `line` occurs as a whole line of `text`.
int line_count(const std::string& text, const std::string& line) {
    int n = 0;
    std::size_t pos = 0;
    while ((pos = text.find(line + "\n", pos)) != std::string::npos) {
        if (pos == 0 || text[pos - 1] == '\n')
            ++n;
        pos += line.size() + 1;
    }
    return n;
}

// The step's log stream is cut (kubesim's logCut knob) and the hook reconnects: every line of
// the action reaches the job log exactly once, without the timestamps the hook asks for, and
// the action's exit code is the step's. First abrupt breaks (the connection drops mid-body,
// while the action is silent), then clean ends of a step that exits at once, where a cut just
// before the end must not lose the tail.
TEST_P(volume_mode_test, container_step_log_survives_cut_streams_without_repeats) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto faults = [&](const std::string& method, const std::string& body) {
        auto r = https_request(port(), ca_file(), admin_token(), method, "/kubesim/faults", body);
        EXPECT_EQ(r.status, 200) << r.body;
        return r.body;
    };
    auto& r = runner();
    auto act = sh_action("for i in 1 2 3 4 5; do echo line-$i; done; sleep 2; "
                         "for i in 6 7 8 9 10; do echo line-$i; done; exit 3");
    // Each stream breaks after 45 bytes (one stamp and a part of the first line it carries).
    faults("POST", R"({"logCut": {"count": 3, "afterBytes": 45, "abrupt": true}})");
    auto cs = r.run_container_step(act);
    EXPECT_EQ(cs.exit_code, 3) << all(cs);
    for (int i = 1; i <= 10; ++i)
        EXPECT_EQ(line_count(cs.out, "line-" + std::to_string(i)), 1) << "line-" << i << "\n" << all(cs);
    EXPECT_EQ(cs.out.find("Z line-"), std::string::npos) << cs.out; // no timestamps leak
    EXPECT_NE(cs.out.find("broke"), std::string::npos) << cs.out;   // the reconnect happened
    EXPECT_NE(faults("GET", "").find(R"("logCut":{"remaining":0})"), std::string::npos);

    // A clean end after 70 bytes, of a step that prints 40 lines and exits at once (after a
    // second, so the hook already follows a running container).
    auto quick =
        sh_action("sleep 1; i=1; while [ $i -le 40 ]; do echo quick-$i; i=$((i+1)); done; exit 3");
    faults("POST", R"({"logCut": {"count": 1, "afterBytes": 70}})");
    auto q = r.run_container_step(quick);
    EXPECT_EQ(q.exit_code, 3) << all(q);
    for (int i = 1; i <= 40; ++i)
        EXPECT_EQ(line_count(q.out, "quick-" + std::to_string(i)), 1) << "quick-" << i << "\n" << all(q);
    EXPECT_NE(faults("GET", "").find(R"("logCut":{"remaining":0})"), std::string::npos);

    // A line over 16 KiB whose rest arrives a second later: kubesim (as a kubelet) keeps it in
    // two parts with a time each. The stream breaks inside the stamp of "end" (after 16,437 to
    // 16,457 bytes: two stamps of 21-31 bytes), and the resumed stream from the second of
    // "after" begins with the line's unstamped rest, which must not be printed again.
    auto longline = sh_action("head -c 16384 /dev/zero | tr '\\0' x; sleep 1.2; echo tail; "
                              "echo after; sleep 2; echo end; exit 3");
    faults("POST", R"({"logCut": {"count": 1, "afterBytes": 16460, "abrupt": true}})");
    auto l = r.run_container_step(longline);
    EXPECT_EQ(l.exit_code, 3) << all(l);
    EXPECT_EQ(line_count(l.out, std::string(16384, 'x') + "tail"), 1) << all(l);
    EXPECT_EQ(line_count(l.out, "tail"), 0) << all(l);
    EXPECT_EQ(line_count(l.out, "after"), 1) << all(l);
    EXPECT_EQ(line_count(l.out, "end"), 1) << all(l);
    EXPECT_NE(l.out.find("broke"), std::string::npos) << l.out; // the reconnect happened
    EXPECT_NE(faults("GET", "").find(R"("logCut":{"remaining":0})"), std::string::npos);
    EXPECT_EQ(pods_of_runner(), "");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "");
}

// The runner cancels the job while a script step runs (SIGINT to the hook): closing the exec
// does not stop the step on a kubelet (nor on kubesim), so the hook stops its process group
// in the job pod (busybox's sh and kill here; stream mode's test covers dash) and fails. The
// step sleeps 127, not stream mode's 120: kubesim's pods share the host's PID namespace, and
// ctest runs the two tests side by side.
TEST_P(volume_mode_test, cancelled_step_stops_in_the_pod_and_fails) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args()).ok());
    r.cancel_next_call_on("step-started");
    const auto t0 = std::chrono::steady_clock::now();
    auto s = r.run_script_step("echo step-started\nsleep 127\necho never-printed\n", sh_step());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
    EXPECT_NE(s.exit_code, 0) << all(s);
    EXPECT_NE(s.out.find("::error::the step was cancelled; its process in pod runner-abc-workflow was stopped"),
              std::string::npos)
        << all(s);
    EXPECT_EQ(s.out.find("never-printed"), std::string::npos) << all(s);
    // busybox has no ps -o args. Processes of tests running beside this one (the host's PID
    // namespace) may end between the glob and the read: their errors are not the answer.
    const std::string count = "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < $f; echo; done 2>/dev/null"
                              " | grep -c '^sleep 127' || true";
    EXPECT_EQ(kubectl("exec runner-abc-workflow -c job -- sh -c " + shell_quote(count)).output, "0\n");
    ASSERT_TRUE(r.cleanup_job().ok());
}

// Issue 21: with podpipe in the runner's externals (so in the job pod's /__e), prepare_job
// records that the job pod has `podpipe run`, and a script step runs under it: an API-server
// restart in the middle neither ends the step nor loses or repeats a line of its output, and
// its own exit code comes back. debian:12: the in-pod podpipe of every build runs there.
TEST_P(volume_mode_test, script_step_survives_an_api_server_restart) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    fs::create_directories(home_ / "externals" / "podpipe");
    fs::copy_file(PODPIPE_POD_BINARY, home_ / "externals" / "podpipe" / "podpipe");
    auto& r = runner();
    auto prep = r.prepare_job(job_args("debian:12"));
    ASSERT_TRUE(prep.ok()) << all(prep);
    const std::string marker = std::string("i21-volume-") + (restricted() ? "r" : "p");
    auto fired = std::async(std::launch::async, [&] {
        const bool seen = podpipe::testing::eventually(
            [&] { return !podpipe::testing::processes_mentioning(marker).empty(); },
            std::chrono::seconds(60), std::chrono::milliseconds(10));
        std::this_thread::sleep_for(std::chrono::seconds(1));
        faults(R"({"restart": {"downSeconds": 2, "mode": "refused"}})");
        return seen;
    });
    auto s = r.run_script_step("for i in $(seq 1 12); do echo tick $i; sh -c 'sleep 0.4' " +
                               marker + "; done\necho 'done=1' >> \"$GITHUB_OUTPUT\"\nexit 3\n");
    ASSERT_TRUE(fired.get()) << all(s);
    EXPECT_EQ(s.exit_code, 3) << all(s);
    EXPECT_NE(s.out.find("::warning::the session with pod default/runner-abc-workflow broke "
                         "during the step"),
              std::string::npos)
        << all(s);
    EXPECT_EQ(hook::testing::lines_from(s.out, "tick "), hook::testing::numbered("tick ", 12))
        << all(s);
    EXPECT_EQ(r.outputs().count("done"), 1u) << all(s);
    ASSERT_TRUE(r.cleanup_job().ok());
}

// A container step's registry credentials (the request's `registry`, a private action image)
// become a kubernetes.io/dockerconfigjson Secret labelled runner-pod that the step pod lists in
// imagePullSecrets; kubesim's image map makes the image private (it pulls only with those
// credentials), so the step running at all proves the pod used it. Secret and pod are gone
// once the step ended.
TEST_P(volume_mode_test, container_step_registry_credentials_become_the_step_pod_pull_secret) {
    const fs::path images = tmp_ / "images.json";
    write_file(images, R"({"images": [{"match": "registry.example/secure/*", "root": "busybox",
                          "auth": {"username": "octo", "password": "s3cret"}}]})");
    start({"--image-map", images.string()}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto seen = hook::testing::run_private_registry_step(runner(), [&](const std::string& a) { return kubectl(a).output; });
    ASSERT_FALSE(seen.pod.empty()) << all(seen.run);
    EXPECT_EQ(seen.secret.rfind("runner-abc-secret-", 0), 0u) << seen.secret;
    EXPECT_EQ(seen.type, "kubernetes.io/dockerconfigjson");
    EXPECT_EQ(seen.label, "runner-abc");
    EXPECT_NE(seen.config.find(hook::testing::private_registry_auth_entry), std::string::npos) << seen.config;
    EXPECT_EQ(seen.run.exit_code, 4) << all(seen.run);
    EXPECT_NE(seen.run.out.find("private-image-runs"), std::string::npos) << all(seen.run);
    EXPECT_EQ(pods_of_runner(), "");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "");
}

// spec/hook-behavior.md §8 #20 in volume mode, with the §8 fixtures (node:22 job with a redis
// service, the example script run by bash as a script step and as a container step), then
// cleanup #1-3: cleanup_job succeeds and leaves no pod and no secret with the runner-pod label.
// The job container carries registry credentials (the fixture's are null) so that a secret
// exists until cleanup: the pull secret, which a job keeps until its end.
TEST_P(volume_mode_test, end_to_end_fixture_then_cleanup_leaves_no_pods_or_secrets) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    auto& r = runner();
    // Pod Security refuses host ports from "baseline" on: there, container ports only.
    const std::string job_ports = restricted() ? R"(["8080"])" : R"(["80:8080"])";
    const std::string service_ports =
        restricted() ? R"(["80","8080"])" : R"(["8080:80","8088:8080"])";
    const std::string prepare_args =
        R"({"container":{"image":"node:22","entryPoint":null,"entryPointArgs":[],)"
        R"("workingDirectory":"/__w/app/app","createOptions":null,)"
        R"("registry":{"username":"octo","password":"s3cret","serverUrl":"registry.example"},)"
        R"("environmentVariables":{"NODE_ENV":"development"},"portMappings":)" + job_ports +
        R"(,"systemMountVolumes":[],"userMountVolumes":[]},)"
        R"("services":[{"image":"redis","entryPoint":null,"entryPointArgs":[],"environmentVariables":{},)"
        R"("portMappings":)" + service_ports +
        R"(,"systemMountVolumes":[],"userMountVolumes":[]}]})";
    auto prep = r.prepare_job(prepare_args);
    ASSERT_TRUE(prep.ok()) << all(prep);
    ASSERT_TRUE(prep.response) << all(prep);
    EXPECT_NE(prep.response->find(R"("jobPod":"runner-abc-workflow")"), std::string::npos) << *prep.response;
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.containers[*].name"), "job redis");
    const std::string pull = jsonpath("runner-abc-workflow", ".spec.imagePullSecrets[*].name");
    EXPECT_EQ(pull.rfind("runner-abc-secret-", 0), 0u) << pull;

    // The example script, in the runner's _temp (= /__w/_temp on the claim).
    write_file(r.runner_temp() / "example-script.sh",
               "#!/bin/bash\necho \"Hello World\"\n[ \"$NODE_ENV\" = development ] || exit 9\n");
    script_step st; // bash, like the fixture
    st.env = {{"NODE_ENV", "development"}};
    st.prepend_path = {"/foo/bar", "bar/foo"};
    auto step = r.run_script_step("bash -e /__w/_temp/example-script.sh\n"
                                  "case \"$PATH\" in /foo/bar:bar/foo:*) ;; *) exit 8;; esac\n", st);
    ASSERT_TRUE(step.ok()) << all(step);
    EXPECT_NE(step.out.find("Hello World"), std::string::npos) << step.out;

    hook::testing::container_action act;
    act.image = "node:22";
    act.entry_point = "bash";
    act.args = {"-e", "/__w/_temp/example-script.sh"};
    act.env = {{"NODE_ENV", "development"}};
    auto cs = r.run_container_step(act);
    ASSERT_TRUE(cs.ok()) << all(cs);
    EXPECT_NE(cs.out.find("Hello World"), std::string::npos) << cs.out;

    // Before cleanup: the job pod and its pull secret; after: nothing with the label.
    EXPECT_EQ(pods_of_runner(), "pod/runner-abc-workflow\n");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "secret/" + pull + "\n");
    auto done = r.cleanup_job();
    ASSERT_TRUE(done.ok()) << all(done);
    EXPECT_EQ(pods_of_runner(), "");
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "");
}

// A template's spec.affinity replaces podpipe's (said in a debug line).
TEST_P(volume_mode_test, template_affinity_replaces_the_runner_node_affinity) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    use_template("spec:\n  affinity:\n    nodeAffinity:\n"
                 "      requiredDuringSchedulingIgnoredDuringExecution:\n"
                 "        nodeSelectorTerms:\n        - matchExpressions:\n"
                 "          - {key: kubernetes.io/hostname, operator: In, values: [node-3]}\n");
    options_.extra_env["ACTIONS_RUNNER_HOOK_RWO"] = "true";
    auto& r = runner();
    auto prep = r.prepare_job(job_args());
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.nodeName"), "node-3");
    EXPECT_NE(prep.out.find("::debug::the template's spec.affinity replaces podpipe's node affinity"),
              std::string::npos) << prep.out;
    const std::string aff = jsonpath("runner-abc-workflow", ".spec.affinity");
    EXPECT_EQ(aff.find("node-1"), std::string::npos) << aff;
    ASSERT_TRUE(r.cleanup_job().ok());
}

// ACTIONS_RUNNER_CLAIM_NAME overrides <pod>-work; a claim that does not exist is named.
TEST_P(volume_mode_test, claim_name_default_override_and_missing) {
    start({}, "shared-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    // Default <pod>-work: there is no such claim here.
    {
        auto& r = runner();
        auto prep = r.prepare_job(job_args());
        expect_clean_failure(prep);
        EXPECT_NE(prep.out.find("the work volume claim default/runner-abc-work does not exist: set "
                                "ACTIONS_RUNNER_CLAIM_NAME"),
                  std::string::npos)
            << prep.out;
        EXPECT_EQ(pods_of_runner(), "");
    }
    runner_.reset();
    options_.extra_env["ACTIONS_RUNNER_CLAIM_NAME"] = "shared-work";
    auto& r = runner();
    auto prep = r.prepare_job(job_args());
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.volumes[0].persistentVolumeClaim.claimName"), "shared-work");
    ASSERT_TRUE(r.cleanup_job().ok());
}

// The runner pod is Pending without a node: the hook waits for spec.nodeName within the timeout,
// then says so.
TEST_P(volume_mode_test, unscheduled_runner_pod_fails_within_the_timeout) {
    start({}, "runner-abc-work", "ReadWriteMany", "node-9", /*pin_with_affinity=*/true);
    if (IsSkipped() || HasFatalFailure())
        return;
    options_.extra_env["ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"] = "2";
    auto& r = runner();
    auto prep = r.prepare_job(job_args());
    expect_clean_failure(prep);
    EXPECT_NE(prep.out.find("is not scheduled yet (no spec.nodeName); waiting up to 2 s"), std::string::npos) << prep.out;
    EXPECT_NE(prep.out.find("the runner pod default/runner-abc has no node after 2 s"), std::string::npos) << prep.out;
    EXPECT_EQ(pods_of_runner(), "");
}

// The runner pod is Pending when prepare_job starts (its node is cordoned) and is scheduled while
// the hook waits: the job goes ahead. The uncordon happens only after the hook has read the
// runner pod twice (kubesim's request counter), so the wait is really exercised.
TEST_P(volume_mode_test, hook_waits_for_the_runner_pod_to_be_scheduled) {
    start({"--cordon", "node-1"}, "runner-abc-work", "ReadWriteMany", "node-1", /*pin_with_affinity=*/true);
    if (IsSkipped() || HasFatalFailure())
        return;
    auto faults = [&](const std::string& method, const std::string& body) {
        auto r = https_request(port(), ca_file(), admin_token(), method, "/kubesim/faults", body);
        EXPECT_EQ(r.status, 200) << r.body;
        return r.body;
    };
    // Counts GETs of the runner pod without ever failing one (n is out of reach).
    faults("POST", R"({"failNth": {"n": 100000, "code": 500, "method": "GET", "path": "/pods/runner-abc"}})");
    auto& r = runner();
    hook_run prep;
    std::thread hook([&] { prep = r.prepare_job(job_args()); });
    // Once the hook has read the runner pod without a node (still cordoned), it waits for the
    // node (a watch: no further GET is needed to see the change).
    const std::regex seen_re(R"("seen":(\d+))");
    const bool seen = podpipe::testing::eventually(
        [&] {
            std::smatch m;
            const std::string body = faults("GET", "");
            return std::regex_search(body, m, seen_re) && std::stoi(m[1].str()) >= 1;
        },
        std::chrono::seconds(25), std::chrono::milliseconds(50));
    EXPECT_TRUE(seen);
    faults("POST", R"({"cordon": {"node": "node-1", "unschedulable": false}})");
    hook.join();
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_NE(prep.out.find("is not scheduled yet (no spec.nodeName); waiting up to 30 s"), std::string::npos) << prep.out;
    EXPECT_EQ(jsonpath("runner-abc", ".spec.nodeName"), "node-1");
    const std::string pref = jsonpath("runner-abc-workflow",
                                      ".spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution");
    EXPECT_NE(pref.find(R"("values":["node-1"])"), std::string::npos) << pref;
    ASSERT_TRUE(r.cleanup_job().ok());
}

// ACTIONS_RUNNER_DISABLE_KUBE_SCHEDULER from old setups: ignored, with what to set instead.
TEST_P(volume_mode_test, old_scheduler_knob_is_ignored_with_a_warning) {
    start({}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    options_.extra_env["ACTIONS_RUNNER_DISABLE_KUBE_SCHEDULER"] = "true";
    auto& r = runner();
    auto prep = r.prepare_job(job_args());
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_NE(prep.out.find("::warning::ACTIONS_RUNNER_DISABLE_KUBE_SCHEDULER is ignored"), std::string::npos)
        << prep.out;
    EXPECT_NE(prep.out.find("set ACTIONS_RUNNER_HOOK_RWO=true instead"), std::string::npos) << prep.out;
    EXPECT_EQ(jsonpath("runner-abc-workflow", ".spec.nodeName"), "node-1"); // preferred, free node
    ASSERT_TRUE(r.cleanup_job().ok());
}

// A service account that may not read pods: the preflight names the permission.
TEST_P(volume_mode_test, missing_permission_to_read_pods_is_named) {
    const fs::path policy = tmp_ / "rbac.json";
    write_file(policy, R"({"users": [{"token": "no-pod-get", "user": "system:serviceaccount:default:runner",
      "rules": [{"verbs": ["list", "watch", "create", "delete"], "resources": ["pods"]},
                {"verbs": ["get", "list", "watch", "create", "delete"], "resources": ["pods/exec", "pods/log", "secrets", "jobs", "persistentvolumeclaims"]}]}]})");
    start({"--rbac", policy.string()}, "runner-abc-work", "ReadWriteMany");
    if (IsSkipped() || HasFatalFailure())
        return;
    // The kubeconfig with the restricted token.
    std::string cfg = read_file(kubeconfig_);
    cfg = std::regex_replace(cfg, std::regex("token: .*"), "token: no-pod-get");
    const fs::path restricted = tmp_ / "restricted.kubeconfig";
    write_file(restricted, cfg);
    options_.kubeconfig = restricted.string();
    auto& r = runner();
    auto prep = r.prepare_job(job_args());
    expect_clean_failure(prep);
    EXPECT_NE(prep.out.find(R"({"group":"","verb":"get","resource":"pods","subresource":""})"), std::string::npos)
        << prep.out;
    EXPECT_EQ(prep.out.find(R"("resource":"jobs")"), std::string::npos) << prep.out; // jobs allowed
    EXPECT_EQ(pods_of_runner(), "");
}

} // namespace
} // namespace podpipe::kubesim::testing
