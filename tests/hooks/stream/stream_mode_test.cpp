// podpipe-hook in stream mode, called by the runner emulator exactly as the runner calls it,
// against kubesim: spec/hook-behavior.md §8's cluster scenarios that apply to stream mode plus
// the issue's own (exit codes, file commands of failing steps, busybox job image, incremental
// _temp, a dropped exec, the pod's real failure reason). Every test runs twice (issue 20):
// `plain`, and `restricted`: the default namespace enforces Pod Security "restricted" and the
// hook template is examples/hook-template-restricted.yaml with CPU and memory limits on $job,
// merged into the test's own template if it has one (stream_hook_fixture.hpp).
#include "tests/hooks/runner/private_registry_step.hpp"
#include "tests/hooks/stream/stream_hook_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/tools/kubesim/test_client.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using hook::testing::pod_security;
using hook::testing::script_step;
using podpipe::testing::shell_quote;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;

const std::string job_args_debian =
    R"({"container":{"image":"debian:12","entryPoint":null,"entryPointArgs":[],)"
    R"("workingDirectory":"/__w/app/app","createOptions":null,"registry":null,)"
    R"("environmentVariables":{"NODE_ENV":"development"},"portMappings":["31080:8080"],)"
    R"("systemMountVolumes":[],"userMountVolumes":[]},)"
    R"("services":[{"image":"redis:7","entryPoint":null,"entryPointArgs":[],)"
    R"("environmentVariables":{},"portMappings":["31081:80","8088"],)"
    R"("systemMountVolumes":[],"userMountVolumes":[]}]})";

std::string job_args(const std::string& image) { return stream_job_args(image); }

// job_args_debian (or what a test made of it) without its host ports, which Pod Security
// refuses from "baseline" on.
std::string container_ports_only(std::string args) {
    for (const auto& [from, to] : {std::pair{"31080:8080", "8080"}, {"31081:80", "80"}})
        args.replace(args.find(from), std::string(from).size(), to);
    return args;
}

using hook::testing::all;

// What the step's _temp sync sent, from "_temp (N new or changed, M removed) -> /__w/_temp:
// F files, X MB, ..."; {-1, 0} when the step sent nothing.
struct temp_sent {
    long files = -1;
    double mb = 0;
};
temp_sent temp_transfer(const std::string& out) {
    static const std::regex line(R"(_temp \(\d+ new or changed, \d+ removed\) -> /__w/_temp: (\d+) files, ([0-9.]+) MB)");
    std::smatch m;
    if (!std::regex_search(out, m, line))
        return {};
    return {std::stol(m[1].str()), std::stod(m[2].str())};
}

class stream_mode_test : public stream_hook_fixture,
                         public ::testing::WithParamInterface<pod_security> {
protected:
    void SetUp() override {
        security_ = GetParam();
        // A private registry: images under registry.example/secure/ pull only with these
        // credentials in the pod's imagePullSecrets (host root, so the sanitizer build's
        // dynamic in-pod podpipe runs there too).
        write_file(images_, R"({"images": [{"match": "registry.example/secure/*", "root": "host",
                              "auth": {"username": "octo", "password": "s3cret"}}]})");
        kubesim_args_ = {"--image-map", images_.string()};
        stream_hook_fixture::SetUp();
    }

    std::string pods_of_runner() {
        return kubectl("get pods -l runner-pod=runner-abc -o name").output;
    }

    std::string job_exec(const std::string& script) {
        auto r = kubectl("exec runner-abc-workflow -c job -- sh -c " + shell_quote(script));
        return r.output;
    }

    /// What the job pod's spool directory of `podpipe run` holds, one name a line; "no spools"
    /// when no step ran under `podpipe run` at all.
    std::string spools_left() {
        return job_exec("ls -A /tmp/podpipe-steps 2>/dev/null || echo no spools");
    }

    fs::path images_ = tmp_ / "images.json";
};

INSTANTIATE_TEST_SUITE_P(, stream_mode_test,
                         ::testing::Values(pod_security::plain, pod_security::restricted),
                         [](const auto& info) { return hook::testing::to_string(info.param); });

TEST_P(stream_mode_test, prepare_steps_and_cleanup_with_services_ports_and_env) {
    auto& r = runner();
    podpipe::testing::make_awkward_tree(r.github_workspace() / "src", 200);
    std::string args = job_args_debian;
    if (restricted()) {
        // Pod Security refuses host ports from "baseline" on: prepare_job says so with the API
        // server's message and leaves nothing; the job then runs with container ports only.
        auto refused = r.prepare_job(args);
        EXPECT_EQ(refused.exit_code, 1) << all(refused);
        EXPECT_NE(refused.out.find("violates PodSecurity \"restricted:latest\": hostPort"),
                  std::string::npos)
            << all(refused);
        EXPECT_EQ(pods_of_runner(), "");
        args = container_ports_only(args);
    }
    auto prep = r.prepare_job(args);
    ASSERT_TRUE(prep.ok()) << all(prep);
    // The response: state, both containers in order, host ports as the runner reads them.
    ASSERT_TRUE(prep.response) << all(prep);
    EXPECT_NE(prep.response->find(R"("jobPod":"runner-abc-workflow")"), std::string::npos) << *prep.response;
    EXPECT_NE(prep.response->find(R"("isAlpine":false)"), std::string::npos) << *prep.response;
    if (!restricted()) {
        EXPECT_NE(prep.response->find(R"("ports":{"8080":"31080"})"), std::string::npos)
            << *prep.response;
        EXPECT_NE(prep.response->find(R"({"image":"redis:7","ports":{"80":"31081"}})"),
                  std::string::npos)
            << *prep.response;
    } else {
        // The job pod has the template's limits and runs as its non-root user.
        auto job = [&](const std::string& path) {
            return kubectl("get pod runner-abc-workflow -o jsonpath='{.spec.containers[0]" + path +
                           "}'")
                .output;
        };
        EXPECT_EQ(job(".resources.limits.cpu"), hook::testing::restricted_cpu_limit);
        EXPECT_EQ(job(".resources.limits.memory"), hook::testing::restricted_memory_limit);
        EXPECT_EQ(job_exec("id -u"), "1001\n");
    }
    EXPECT_NE(prep.out.find("::group::Copying the workspace into the job pod"), std::string::npos);
    // The pod: job + service with CI and GITHUB_ACTIONS; the workspace arrived intact.
    EXPECT_EQ(kubectl("get pod runner-abc-workflow -o jsonpath='{.spec.containers[*].name}'").output,
              "job redis");
    const std::string env = job_exec("env");
    EXPECT_NE(env.find("CI=true"), std::string::npos) << env;
    EXPECT_NE(env.find("GITHUB_ACTIONS=true"), std::string::npos) << env;
    EXPECT_NE(env.find("NODE_ENV=development"), std::string::npos) << env;
    const std::string sums = "cd $0 && find . -type f -exec md5sum {} + | sort";
    auto local = shell("sh -c " + shell_quote(sums) + " " + shell_quote((r.github_workspace() / "src").string()));
    EXPECT_EQ(kubectl("exec runner-abc-workflow -c job -- sh -c " + shell_quote(sums) + " /__w/app/app/src").output,
              local.output);
    // /github/home and /github/workflow exist without user volumes (#330).
    EXPECT_EQ(job_exec("cat /github/workflow/event.json"), fs::exists(r.event_path())
                                                               ? [&] {
                                                                     std::ifstream f(r.event_path());
                                                                     return std::string(std::istreambuf_iterator<char>(f), {});
                                                                 }()
                                                               : std::string("?"));

    // A step: env (literal $-values), PATH prepend, working directory, file commands.
    script_step step;
    step.env = {{"VARIABLE1", "$VAR"}, {"VARIABLE2", "${VAR}"}, {"VARIABLE3", "$(VAR)"}, {"QUOTE", "it's \"q\""}};
    step.prepend_path = {"/some/path", "/other path"};
    auto s1 = r.run_script_step(R"SH(set -e
echo "pwd=$(pwd)"
[ "$VARIABLE1" = '$VAR' ] && [ "$VARIABLE2" = '${VAR}' ] && [ "$VARIABLE3" = '$(VAR)' ]
[ "$QUOTE" = "it's \"q\"" ]
case "$PATH" in "/some/path:/other path:"*) ;; *) echo "bad PATH $PATH"; exit 9;; esac
[ -f "$GITHUB_EVENT_PATH" ] && [ -d "$HOME" ]
echo "greeting=hello" >> "$GITHUB_OUTPUT"
echo "FROM_STEP=1" >> "$GITHUB_ENV"
echo "/added/bin" >> "$GITHUB_PATH"
echo "## summary" >> "$GITHUB_STEP_SUMMARY"
echo "to stderr" >&2
)SH",
                                 step);
    ASSERT_TRUE(s1.ok()) << all(s1);
    EXPECT_NE(s1.out.find("pwd=/__w/app/app"), std::string::npos) << s1.out;
    EXPECT_NE(s1.err.find("to stderr"), std::string::npos) << s1.err;
    EXPECT_EQ(r.outputs()["greeting"], "hello");
    EXPECT_EQ(r.env()["FROM_STEP"], "1");
    EXPECT_EQ(r.path(), std::vector<std::string>{"/added/bin"});
    EXPECT_EQ(r.summary(), "## summary\n");
    // The script held the step's env: it is gone on both sides.
    EXPECT_EQ(job_exec("ls /__w/_temp/podpipe-*.sh 2>/dev/null | wc -l"), "0\n");

    auto clean = r.cleanup_job();
    ASSERT_TRUE(clean.ok()) << all(clean);
    podpipe::testing::eventually([&] { return pods_of_runner().empty(); },
                                 std::chrono::seconds(10));
    EXPECT_EQ(pods_of_runner(), "");
}

TEST_P(stream_mode_test, failing_step_exit_code_and_file_commands_come_back) {
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args("debian:12")).ok());
    auto s = r.run_script_step("echo 'partial=yes' >> \"$GITHUB_OUTPUT\"\necho '# failed' >> \"$GITHUB_STEP_SUMMARY\"\nexit 7\n");
    EXPECT_EQ(s.exit_code, 7) << all(s);
    EXPECT_EQ(r.outputs()["partial"], "yes");
    EXPECT_EQ(r.summary(), "# failed\n");
    // The step's spool stays until the next step starts, which removes it (and keeps its
    // own): one spool at a time in the job pod.
    const std::string first = spools_left();
    EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 1) << first;
    auto again = r.run_script_step("echo again\n");
    EXPECT_EQ(again.exit_code, 0) << all(again);
    const std::string second = spools_left();
    EXPECT_EQ(std::count(second.begin(), second.end(), '\n'), 1) << second;
    EXPECT_NE(second, first);
    // A missing working directory fails the step (spec §8 item 99).
    script_step bad;
    bad.working_directory = "/foo/bar";
    auto missing = r.run_script_step("echo never", bad);
    EXPECT_NE(missing.exit_code, 0) << all(missing);
    EXPECT_EQ(missing.out.find("never"), std::string::npos);
}

TEST_P(stream_mode_test, tuning_variables_reach_both_directions) {
    // The runner pod's PODPIPE_* settings drive the local sender (a fixed level: stored, so the
    // wire carries the whole file) and the in-pod sender of the copy back (the chunk size as
    // podpipe-hook passes it on to `podpipe send --chunk-size`).
    options_.extra_env["PODPIPE_COMPRESSION_LEVEL"] = "0";
    options_.extra_env["PODPIPE_CHUNK_SIZE"] = "64Ki";
    auto& r = runner();
    write_file(r.github_workspace() / "zeros.txt", std::string(3'000'000, 'a'));
    auto prep = r.prepare_job(job_args("debian:12"));
    ASSERT_TRUE(prep.ok()) << all(prep);
    static const std::regex wire(R"(workspace [^\n]* -> /__w: \d+ files, ([0-9.]+) MB, ([0-9.]+) MB on the wire)");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(prep.out, m, wire)) << prep.out;
    EXPECT_GE(std::stod(m[2].str()), 3.0) << "level 0 was not used: " << m[0].str();
    auto s = r.run_script_step("echo \"size=$(wc -c < zeros.txt)\" >> \"$GITHUB_OUTPUT\"\n");
    ASSERT_TRUE(s.ok()) << all(s);
    EXPECT_EQ(r.outputs()["size"], "3000000");
}

TEST_P(stream_mode_test, only_what_changed_in_temp_is_sent) {
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args("debian:12")).ok());
    // The runner's _temp gains 1000 files of 2 kB (a tool cache, say).
    const std::string kb2(2000, 'x');
    for (int i = 0; i < 1000; ++i)
        write_file(r.runner_temp() / "cache" / ("d" + std::to_string(i % 10)) / ("f" + std::to_string(i)), kb2);
    auto big = r.run_script_step("ls /__w/_temp/cache/d3 | wc -l\n");
    ASSERT_TRUE(big.ok()) << all(big);
    EXPECT_NE(big.out.find("100\n"), std::string::npos) << big.out;
    const temp_sent first = temp_transfer(big.out);
    EXPECT_GE(first.files, 1000) << big.out;
    EXPECT_GE(first.mb, 2.0) << big.out;
    // Nothing changed but the runner's per-step files: a few files, a few bytes.
    auto same = r.run_script_step("true\n");
    ASSERT_TRUE(same.ok()) << all(same);
    const temp_sent second = temp_transfer(same.out);
    EXPECT_GE(second.files, 1) << same.out;  // this step's script and file-command files
    EXPECT_LE(second.files, 10) << same.out;
    EXPECT_LT(second.mb, 0.05) << same.out;
    // One file changed, one removed on the runner: the pod follows.
    write_file(r.runner_temp() / "cache" / "d1" / "f1", "changed");
    fs::remove(r.runner_temp() / "cache" / "d2" / "f2");
    auto one = r.run_script_step("cat /__w/_temp/cache/d1/f1; echo; ls /__w/_temp/cache/d2/f2 2>&1 || true\n");
    ASSERT_TRUE(one.ok()) << all(one);
    EXPECT_NE(one.out.find("changed\n"), std::string::npos) << one.out;
    EXPECT_NE(one.out.find("No such file"), std::string::npos) << one.out;
    EXPECT_LE(temp_transfer(one.out).files, 10) << one.out;
    // The whole directory removed on the runner.
    fs::remove_all(r.runner_temp() / "cache");
    auto gone = r.run_script_step("ls -d /__w/_temp/cache 2>&1 || true\n");
    ASSERT_TRUE(gone.ok()) << all(gone);
    EXPECT_NE(gone.out.find("No such file"), std::string::npos) << gone.out;
}

// A job pod without podpipe (PODPIPE_RECV_PATH names nothing there): its tar ignores the
// stream's deletions, so the hook deletes through `sh` reading the list on stdin, before the
// changes land (a file that became a directory, too).
TEST_P(stream_mode_test, a_pod_without_podpipe_gets_deletions_through_sh) {
    // Under restricted the pod's GNU tar runs as uid 1001 and must leave /__w (root's emptyDir)
    // as it is: the stream's "./" entry is not extracted (remote/pod_copy.cpp).
    options_.extra_env["PODPIPE_RECV_PATH"] = "/no/podpipe/here";
    auto& r = runner();
    auto prep = r.prepare_job(job_args("debian:12"));
    ASSERT_TRUE(prep.ok()) << all(prep);
    write_file(r.runner_temp() / "cache" / "kept", "kept");
    write_file(r.runner_temp() / "cache" / "doomed", "doomed");
    write_file(r.runner_temp() / "cache" / "kind", "a file");
    for (int i = 0; i < 50; ++i)
        write_file(r.runner_temp() / "cache" / "many" / ("f" + std::to_string(i)), "x");
    auto first = r.run_script_step("ls /__w/_temp/cache/many | wc -l\n");
    ASSERT_TRUE(first.ok()) << all(first);
    EXPECT_NE(first.out.find("50\n"), std::string::npos) << first.out;
    fs::remove(r.runner_temp() / "cache" / "doomed");
    fs::remove_all(r.runner_temp() / "cache" / "many");
    fs::remove(r.runner_temp() / "cache" / "kind");
    write_file(r.runner_temp() / "cache" / "kind" / "inner", "now a directory");
    auto second = r.run_script_step("cd /__w/_temp/cache && ls; cat kind/inner; echo\n");
    ASSERT_TRUE(second.ok()) << all(second);
    EXPECT_NE(second.out.find("kept\nkind\nnow a directory\n"), std::string::npos) << second.out;
    EXPECT_EQ(second.out.find("doomed"), std::string::npos) << second.out;
    EXPECT_EQ(second.out.find("many"), std::string::npos) << second.out;
}

TEST_P(stream_mode_test, container_step_changes_and_outputs_reach_later_steps) {
    auto& r = runner();
    write_file(r.github_workspace() / "in.txt", "from the runner\n");
    ASSERT_TRUE(r.prepare_job(job_args("debian:12")).ok());
    ASSERT_TRUE(r.run_script_step("echo 'made in a script step' > made.txt\n").ok());
    hook::testing::container_action a;
    a.image = "debian:12";
    a.entry_point = "sh";
    a.args = {"-c", "cat made.txt in.txt > out.txt && echo \"from_container=$INPUT_WHO\" >> \"$GITHUB_OUTPUT\" && "
                    "echo \"step_uid=$(id -u)\" >> \"$GITHUB_OUTPUT\" && "
                    "echo '### container' >> \"$GITHUB_STEP_SUMMARY\" && exit 3"};
    a.env = {{"INPUT_WHO", "it's me"}};
    auto c = r.run_container_step(a);
    EXPECT_EQ(c.exit_code, 3) << all(c);
    EXPECT_EQ(r.outputs()["from_container"], "it's me") << all(c);
    // The step pod runs as the image's user (root), or the restricted template's.
    EXPECT_EQ(r.outputs()["step_uid"], restricted() ? "1001" : "0") << all(c);
    EXPECT_EQ(r.summary(), "### container\n");
    // The step pod is gone; the job pod remains.
    podpipe::testing::eventually([&] { return pods_of_runner() == "pod/runner-abc-workflow\n"; },
                                 std::chrono::seconds(10));
    EXPECT_EQ(pods_of_runner(), "pod/runner-abc-workflow\n");
    // The next script step sees what the container step wrote (#302).
    auto next = r.run_script_step("cat out.txt\n");
    ASSERT_TRUE(next.ok()) << all(next);
    EXPECT_NE(next.out.find("made in a script step\nfrom the runner\n"), std::string::npos) << next.out;
    // Dockerfile actions are refused with the reference's text, and no pod is made.
    auto docker = r.run_container_step(R"({"image":null,"dockerfile":"/__w/_actions/o/a/v1/Dockerfile",)"
                                       R"("entryPoint":"sh","entryPointArgs":[],"workingDirectory":"/github/workspace",)"
                                       R"("environmentVariables":{},"portMappings":[],"systemMountVolumes":[],"userMountVolumes":[]})");
    EXPECT_EQ(docker.exit_code, 1) << all(docker);
    EXPECT_NE(docker.out.find("Building container actions is not currently supported"), std::string::npos)
        << all(docker);
    EXPECT_EQ(pods_of_runner(), "pod/runner-abc-workflow\n");
}

// Whether `out` has a ::warning:: line naming `file` as a symbolic link.
bool warned_symlink(const std::string& out, const fs::path& file) {
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);)
        if (line.starts_with("::warning::") && line.find("symbolic link") != std::string::npos &&
            line.find(file.filename().string()) != std::string::npos)
            return true;
    return false;
}

// No symlink is left in the runner's file commands directory.
void expect_no_symlink_in(const fs::path& dir) {
    for (const auto& e : fs::directory_iterator(dir))
        EXPECT_FALSE(fs::is_symlink(e.symlink_status())) << e.path();
}

// A step that leaves symlinks at its file commands, pointing at a runner-side file (issue 18,
// item 6): the runner reads its file commands through whatever it finds there, so a symlink
// must never reach it. The refused files are named in warnings; a regular file command written
// by the same step still arrives. Script step and container step (both come back the same way).
TEST_P(stream_mode_test, symlinks_at_file_commands_never_reach_the_runner) {
    auto& r = runner();
    const fs::path secret = tmp_ / "runner-side-secret";
    write_file(secret, "stolen=RUNNER-SIDE-SECRET\n");
    ASSERT_TRUE(r.prepare_job(job_args("debian:12")).ok());
    auto s = r.run_script_step("echo 'FROM_STEP=kept' >> \"$GITHUB_ENV\"\n"
                               "ln -sf " + shell_quote(secret.string()) + " \"$GITHUB_OUTPUT\"\n"
                               "ln -sf " + shell_quote(secret.string()) +
                               " \"$GITHUB_STEP_SUMMARY\"\n"
                               "rm \"$GITHUB_PATH\" && mkdir \"$GITHUB_PATH\"\n"
                               "echo /x > \"$GITHUB_PATH/f\"\n");
    ASSERT_TRUE(s.ok()) << all(s);
    expect_no_symlink_in(r.file_commands_dir());
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(r.step_files().at("add_path"))));
    EXPECT_TRUE(r.path().empty()) << all(s);
    EXPECT_NE(s.out.find("a directory at its file command file '" +
                         r.step_files().at("add_path").filename().string() + "' (GITHUB_PATH)"),
              std::string::npos)
        << s.out;
    EXPECT_EQ(r.outputs().count("stolen"), 0u) << all(s);
    EXPECT_EQ(r.summary().find("RUNNER-SIDE-SECRET"), std::string::npos) << r.summary();
    EXPECT_EQ(r.env()["FROM_STEP"], "kept") << all(s);
    EXPECT_TRUE(warned_symlink(s.out, r.step_files().at("set_output"))) << s.out;
    EXPECT_TRUE(warned_symlink(s.out, r.step_files().at("step_summary"))) << s.out;
    EXPECT_NE(s.out.find("(GITHUB_OUTPUT)"), std::string::npos) << s.out;
    // What came back went through a stage of the hook's own: nothing of it is left.
    for (const auto& e : fs::directory_iterator(r.runner_temp()))
        EXPECT_FALSE(e.path().filename().string().starts_with("_runner_file_commands."))
            << e.path();

    hook::testing::container_action a;
    a.image = "debian:12";
    a.entry_point = "sh";
    a.args = {"-c", "echo 'from_container=yes' >> \"$GITHUB_OUTPUT\" && ln -sf " +
                        shell_quote(secret.string()) + " \"$GITHUB_ENV\""};
    auto c = r.run_container_step(a);
    ASSERT_TRUE(c.ok()) << all(c);
    expect_no_symlink_in(r.file_commands_dir());
    EXPECT_EQ(r.env().count("stolen"), 0u) << all(c);
    EXPECT_EQ(r.outputs()["from_container"], "yes") << all(c);
    EXPECT_TRUE(warned_symlink(c.out, r.step_files().at("set_env"))) << c.out;
    // The secret is where it was, untouched.
    std::ifstream f(secret);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(f), {}), "stolen=RUNNER-SIDE-SECRET\n");
}

TEST_P(stream_mode_test, cancelled_step_stops_in_the_pod_and_fails) {
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args("debian:12")).ok());
    // The runner cancels the job while the step runs: SIGINT to the hook.
    r.cancel_next_call_on("step-started");
    const auto t0 = std::chrono::steady_clock::now();
    // A duration of this run's own: kubesim pods share the host's process list, where other
    // tests (or an earlier run's leftovers) may sleep too.
    const std::string nap = "sleep 120." + std::to_string(::getpid());
    auto s = r.run_script_step("echo step-started\n" + nap + "\necho never-printed\n");
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(60));
    EXPECT_NE(s.exit_code, 0) << all(s);
    EXPECT_NE(s.out.find("::error::the step was cancelled; its process in pod runner-abc-workflow was stopped"),
              std::string::npos)
        << all(s);
    EXPECT_EQ(s.out.find("never-printed"), std::string::npos);
    // Nothing of the step keeps running in the job pod.
    EXPECT_EQ(job_exec("ps -eo args | grep -c '^" + nap + "$' || true"), "0\n");
}

TEST_P(stream_mode_test, prepare_replaces_a_previous_jobs_leftover_pod) {
    // A runner whose last job never reached cleanup_job: the next prepare_job removes the old
    // pod (same name) and waits for it to go instead of failing with AlreadyExists.
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args("debian:12")).ok());
    const std::string first_uid = kubectl("get pod runner-abc-workflow -o jsonpath='{.metadata.uid}'").output;
    auto again = r.prepare_job(job_args("debian:12"));
    ASSERT_TRUE(again.ok()) << all(again);
    const std::string second_uid = kubectl("get pod runner-abc-workflow -o jsonpath='{.metadata.uid}'").output;
    EXPECT_NE(first_uid, second_uid);
    EXPECT_TRUE(r.run_script_step("true\n").ok());
}

TEST_P(stream_mode_test, busybox_job_image_and_alpine_detection) {
    auto& r = runner();
    auto prep = r.prepare_job(job_args("alpine:3.19"));
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_NE(prep.response->find(R"("isAlpine":true)"), std::string::npos) << *prep.response;
    script_step sh;
    sh.shell = "sh";
    auto s = r.run_script_step("echo \"tar is $(readlink /bin/tar)\"\necho 'x=1' >> \"$GITHUB_OUTPUT\"\n", sh);
    ASSERT_TRUE(s.ok()) << all(s);
    EXPECT_NE(s.out.find("tar is /bin/busybox"), std::string::npos) << s.out;
    EXPECT_EQ(r.outputs()["x"], "1");
}

TEST_P(stream_mode_test, user_volume_is_copied_into_the_pod) {
    auto& r = runner();
    write_file(r.github_workspace() / "myvolume" / "file.txt", "hello");
    const std::string vol = R"(,"userMountVolumes":[{"sourceVolumePath":")" +
                            (r.github_workspace() / "myvolume").string() +
                            R"(","targetVolumePath":"/data/myvolume","readOnly":false}])";
    std::string args = job_args("debian:12");
    args.replace(args.find(R"(,"userMountVolumes":[])"), std::string(R"(,"userMountVolumes":[])").size(), vol);
    auto prep = r.prepare_job(args);
    ASSERT_TRUE(prep.ok()) << all(prep);
    EXPECT_EQ(job_exec("cat /data/myvolume/file.txt"), "hello");
    // On an emptyDir of its own (a non-root job container could not make /data).
    EXPECT_EQ(kubectl("get pod runner-abc-workflow -o jsonpath='{.spec.containers[0].volumeMounts"
                      "[?(@.mountPath==\"/data/myvolume\")].name}'")
                  .output,
              "user-volume-0");
}

TEST_P(stream_mode_test, template_extension_and_registry_secret) {
    use_template(R"(metadata:
  annotations: {annotated-by: extension}
  labels: {labeled-by: extension}
spec:
  restartPolicy: Never
  containers:
  - name: $job
    env: [{name: ENV1, value: value1}]
  - name: $redis
    env: [{name: ENV2, value: value2}]
    resources: {requests: {memory: 1Mi, cpu: "1"}, limits: {memory: 1Gi, cpu: "2"}}
  - name: side-car
    image: busybox:1.36
    command: [sh, -c, sleep 60]
)");
    auto& r = runner();
    std::string args = job_args_debian;
    args.replace(args.find(R"("registry":null)"), std::string(R"("registry":null)").size(),
                 R"("registry":{"username":"u","password":"p","serverUrl":"registry.example"})");
    if (restricted())
        args = container_ports_only(args);
    auto prep = r.prepare_job(args);
    ASSERT_TRUE(prep.ok()) << all(prep);
    auto get = [&](const std::string& path) {
        return kubectl("get pod runner-abc-workflow -o jsonpath='" + path + "'").output;
    };
    EXPECT_EQ(get("{.metadata.annotations.annotated-by}"), "extension");
    EXPECT_EQ(get("{.metadata.labels.labeled-by}"), "extension");
    EXPECT_EQ(get("{.metadata.labels.runner-pod}"), "runner-abc");
    EXPECT_EQ(get("{.spec.containers[*].name}"), "job redis side-car");
    EXPECT_NE(get("{.spec.containers[0].env}").find("ENV1"), std::string::npos);
    EXPECT_NE(get("{.spec.containers[1].env}").find("ENV2"), std::string::npos);
    EXPECT_EQ(get("{.spec.containers[1].resources.limits.memory}"), "1Gi");
    // The sidecar is not a service in the response.
    EXPECT_EQ(prep.response->find("busybox"), std::string::npos) << *prep.response;
    // The pull secret: labelled, used by the pod, removed by cleanup.
    const std::string secret = get("{.spec.imagePullSecrets[0].name}");
    EXPECT_EQ(secret.rfind("runner-abc-secret-", 0), 0u) << secret;
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "secret/" + secret + "\n");

    // A container step's registry credentials become the step pod's pull secret (labelled
    // runner-pod, in imagePullSecrets, deleted with the pod); the action image is private in
    // kubesim's image map (auth rule), so the step runs only with it.
    {
        auto seen = hook::testing::run_private_registry_step(r, [&](const std::string& a) { return kubectl(a).output; });
        ASSERT_FALSE(seen.pod.empty()) << all(seen.run);
        EXPECT_EQ(seen.secret.rfind("runner-abc-secret-", 0), 0u) << seen.secret;
        EXPECT_NE(seen.secret, secret);
        EXPECT_EQ(seen.type, "kubernetes.io/dockerconfigjson");
        EXPECT_EQ(seen.label, "runner-abc");
        EXPECT_NE(seen.config.find(hook::testing::private_registry_auth_entry), std::string::npos) << seen.config;
        EXPECT_EQ(seen.run.exit_code, 4) << all(seen.run);
        EXPECT_NE(seen.run.out.find("private-image-runs"), std::string::npos) << all(seen.run);
    }
    // The job's pull secret stays until cleanup; the step's is gone.
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "secret/" + secret + "\n");
    ASSERT_TRUE(r.cleanup_job().ok());
    EXPECT_EQ(kubectl("get secrets -l runner-pod=runner-abc -o name").output, "");
}

TEST_P(stream_mode_test, job_image_running_as_another_uid_can_write_the_workspace) {
    // #395 / runner #3290: a job image whose user is neither root nor the runner's 1001.
    use_template(R"(spec:
  containers:
  - name: $job
    securityContext: {runAsUser: 8001, runAsGroup: 8001}
)");
    auto& r = runner();
    write_file(r.github_workspace() / "README", "hi\n");
    auto prep = r.prepare_job(job_args("debian:12"));
    ASSERT_TRUE(prep.ok()) << all(prep);
    auto s = r.run_script_step("id -u\necho built > out.txt\ncat README\necho 'uid='$(id -u) >> \"$GITHUB_OUTPUT\"\n");
    ASSERT_TRUE(s.ok()) << all(s);
    EXPECT_EQ(r.outputs()["uid"], "8001");
    EXPECT_EQ(job_exec("cat /__w/app/app/out.txt"), "built\n");
}

TEST_P(stream_mode_test, bad_input_is_refused_before_anything_is_created) {
    auto& r = runner();
    std::string bad_port = job_args("debian:12");
    bad_port.replace(bad_port.find(R"("portMappings":[])"), 17, R"("portMappings":["1:65536"])");
    auto p = r.prepare_job(bad_port);
    EXPECT_EQ(p.exit_code, 1) << all(p);
    EXPECT_NE(p.out.find("::error::"), std::string::npos) << all(p);
    std::string bad_env = job_args("debian:12");
    bad_env.replace(bad_env.find(R"("environmentVariables":{})"), 25, R"("environmentVariables":{"A=B":"x"})");
    auto e = r.prepare_job(bad_env);
    EXPECT_EQ(e.exit_code, 1) << all(e);
    EXPECT_NE(e.out.find("::error::environment key A=B is invalid"), std::string::npos) << all(e);
    auto garbage = r.raw("{\"command\": \"prepare_job\", ");
    EXPECT_EQ(garbage.exit_code, 1);
    EXPECT_NE(garbage.out.find("::error::"), std::string::npos);
    EXPECT_EQ(kubectl("get pods -o name").output, "");
}

TEST_P(stream_mode_test, bad_template_is_refused_before_anything_is_created) {
    const fs::path tmpl = tmp_ / "template.yaml";
    write_file(tmpl, "invalid yaml");
    options_.extra_env["ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE"] = tmpl.string();
    auto p = runner().prepare_job(job_args("debian:12"));
    EXPECT_EQ(p.exit_code, 1) << all(p);
    EXPECT_NE(p.out.find("::error::Failed to parse " + tmpl.string()), std::string::npos) << all(p);
    EXPECT_EQ(kubectl("get pods -o name").output, "");
}

TEST_P(stream_mode_test, image_pull_failure_names_the_reason_and_leaves_nothing) {
    options_.extra_env["ACTIONS_RUNNER_PREPARE_JOB_TIMEOUT_SECONDS"] = "15";
    auto p = runner().prepare_job(job_args("registry.example/does-not-exist:1"));
    EXPECT_EQ(p.exit_code, 1) << all(p);
    EXPECT_NE(p.out.find("::error::pod failed to come online with error:"), std::string::npos) << all(p);
    EXPECT_TRUE(p.out.find("ErrImagePull") != std::string::npos ||
                p.out.find("ImagePullBackOff") != std::string::npos)
        << all(p);
    podpipe::testing::eventually([&] { return pods_of_runner().empty(); },
                                 std::chrono::seconds(10));
    EXPECT_EQ(pods_of_runner(), "");
}

// A job pod whose /tmp is read-only (a template's read-only mount there, or a hardened image):
// `podpipe run` cannot make its spool, so the step runs in its exec session, with a warning
// that a broken session will now fail it, and its output and exit code as always.
TEST_P(stream_mode_test, a_read_only_tmp_runs_the_step_in_its_session) {
    use_template(R"(spec:
  containers:
  - name: $job
    volumeMounts: [{name: ro-tmp, mountPath: /tmp, readOnly: true}]
  volumes:
  - {name: ro-tmp, emptyDir: {}}
)");
    auto& r = runner();
    auto prep = r.prepare_job(job_args("debian:12"));
    ASSERT_TRUE(prep.ok()) << all(prep);
    auto s = r.run_script_step("echo in-the-step\necho 'ok=1' >> \"$GITHUB_OUTPUT\"\nexit 4\n");
    EXPECT_EQ(s.exit_code, 4) << all(s);
    EXPECT_EQ(s.out.find("in-the-step\n"), s.out.rfind("in-the-step\n")) << all(s);
    EXPECT_NE(s.out.find("in-the-step\n"), std::string::npos) << all(s);
    EXPECT_NE(s.out.find("::warning::the step runs in its exec session, so a broken session "
                         "will fail it: podpipe run: the step did not start: creating "
                         "/tmp/podpipe-steps"),
              std::string::npos)
        << all(s);
    EXPECT_EQ(r.outputs().count("ok"), 1u) << all(s);
    ASSERT_TRUE(r.cleanup_job().ok());
}

// Every exec dropped after 200 kB while the step prints 2 MB: under the job pod's `podpipe run`
// the hook re-attaches each time and prints every byte once (issue 21); with re-attaching off,
// a clear failure and never the step's success.
TEST_P(stream_mode_test, dropped_execs_during_a_step_are_survived_or_a_clear_failure) {
    auto& r = runner();
    ASSERT_TRUE(r.prepare_job(job_args("debian:12")).ok());
    // The transfers of this step stay below 200 kB, the step itself prints 2 MB.
    faults(R"({"exec": {"count": 30, "dropAfterBytes": 200000}})");
    const std::string script =
        "head -c 2000000 /dev/zero | tr '\\0' x\necho 'done=1' >> \"$GITHUB_OUTPUT\"\n";
    auto s = r.run_script_step(script);
    EXPECT_EQ(s.exit_code, 0) << all(s).substr(0, 4000);
    // The hook's warnings come between the step's bytes (which end in no newline until the
    // end): without them, the step's output is one run of exactly 2,000,000 x.
    const std::string step_out =
        std::regex_replace(s.out, std::regex("::(warning|debug)::[^\n]*\n"), "");
    const auto first = step_out.find('x');
    ASSERT_NE(first, std::string::npos);
    const auto end = step_out.find_first_not_of('x', first);
    EXPECT_EQ(end - first, 2000000u);
    EXPECT_EQ(step_out.find("xx", end), std::string::npos) << "x printed twice";
    EXPECT_NE(s.out.find("::warning::the session with pod default/runner-abc-workflow broke"),
              std::string::npos);
    EXPECT_EQ(r.outputs().count("done"), 1u);
    // Re-attached through the cuts; the earlier steps' spools went as each next one started.
    const std::string left = spools_left();
    EXPECT_EQ(std::count(left.begin(), left.end(), '\n'), 1) << left;

    options_.extra_env["PODPIPE_STEP_REATTACH_SECONDS"] = "0";
    runner_.emplace(options_);
    // The new emulator has no state: prepare again (the old pod is replaced).
    ASSERT_TRUE(runner().prepare_job(job_args("debian:12")).ok());
    faults(R"({"exec": {"count": 30, "dropAfterBytes": 200000}})");
    auto off = runner().run_script_step(script);
    EXPECT_EQ(off.exit_code, 1) << all(off).substr(0, 4000);
    EXPECT_NE(off.out.find("::error::failed to run script step:"), std::string::npos);
    EXPECT_EQ(runner().outputs().count("done"), 0u);
}

// A runner whose service account may do everything but exec: prepare_job says which
// permissions are missing, in the reference's words, and creates nothing.
class stream_mode_rbac_test : public stream_hook_fixture {
protected:
    void SetUp() override {
        write_file(tmp_ / "rbac.json", R"({"users": [{"token": "runner-token-0123456789",
            "user": "system:serviceaccount:default:runner", "rules": [
            {"verbs": ["get", "list", "watch", "create", "delete"], "resources": ["pods", "pods/log", "secrets"],
             "namespaces": ["default"]}]}]})");
        kubesim_args_ = {"--rbac", (tmp_ / "rbac.json").string()};
        stream_hook_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        // The runner's kubeconfig: kubesim's, with the limited token instead of the admin one.
        std::ifstream in(kubeconfig_);
        std::string text((std::istreambuf_iterator<char>(in)), {});
        const std::string admin = admin_token();
        ASSERT_NE(text.find(admin), std::string::npos);
        text.replace(text.find(admin), admin.size(), "runner-token-0123456789");
        write_file(tmp_ / "runner-kubeconfig", text);
        options_.kubeconfig = (tmp_ / "runner-kubeconfig").string();
    }
};

TEST_F(stream_mode_rbac_test, missing_permission_is_reported_before_anything_is_created) {
    auto p = runner().prepare_job(job_args("debian:12"));
    EXPECT_EQ(p.exit_code, 1) << all(p);
    EXPECT_NE(p.out.find("::error::The Service account needs the following permissions "
                         R"([{"group":"","verb":"get","resource":"pods","subresource":"exec"},)"
                         R"({"group":"","verb":"create","resource":"pods","subresource":"exec"}])"
                         " on the pod resource in the 'default' namespace."),
              std::string::npos)
        << all(p);
    EXPECT_EQ(kubectl("get pods -o name").output, "");
}

} // namespace
} // namespace podpipe::kubesim::testing
