// The runner emulator itself: its layout, the invocation contract (checked with a fake shim that
// records what it was given), file-command parsing, and podpipe-hook's cleanup_job through it on
// kubesim. Scenario tests of prepare_job and the step commands live with those commands.
#include "tests/hooks/runner/runner_emulator.hpp"

#include "hooks/commands/input.hpp"

#include "tests/support/tree_fixture.hpp"
#include "tests/support/eventually.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <variant>

#include <gtest/gtest.h>
#include <simdjson.h>

namespace podpipe::hook::testing {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::shell_quote;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;

const std::string hook_bin = PODPIPE_HOOK_EXE;
const std::string hook_shim = PODPIPE_HOOK_SHIM;

std::string read_file(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

std::size_t count_entries(const fs::path& dir) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir))
        ++n;
    return n;
}

// A stand-in for tools/hook.sh that records what the runner gave it in $FAKE_DIR (stdin, working
// directory, shell options, a few variables, whether the response file was there and empty),
// writes $FAKE_DIR/response (if present) into the response file, writes file commands for a
// step, prints one line on each stream and exits with $FAKE_DIR/exit (default 0).
constexpr const char* fake_shim = R"SH(# fake hook shim (runner_emulator_test)
n=$(cat "$FAKE_DIR/count" 2>/dev/null || echo 0); n=$((n + 1)); echo "$n" > "$FAKE_DIR/count"
cat > "$FAKE_DIR/stdin.$n"
pwd > "$FAKE_DIR/pwd.$n"
echo "$(id -u):$(id -g):$(id -G):${KUBECONFIG:-}" > "$FAKE_DIR/id.$n"
echo "$-" > "$FAKE_DIR/flags.$n"
shopt -o pipefail > "$FAKE_DIR/pipefail.$n" || true
{ echo "GITHUB_WORKSPACE=$GITHUB_WORKSPACE"; echo "RUNNER_WORKSPACE=$RUNNER_WORKSPACE";
  echo "RUNNER_TEMP=$RUNNER_TEMP"; echo "ACTIONS_RUNNER_POD_NAME=$ACTIONS_RUNNER_POD_NAME";
  echo "HOME=$HOME"; echo "EXTRA=$EXTRA"; } > "$FAKE_DIR/env.$n"
rf=$(sed -n 's/.*"responseFile":"\([^"]*\)".*/\1/p' "$FAKE_DIR/stdin.$n")
if [ -f "$rf" ] && [ ! -s "$rf" ]; then echo empty > "$FAKE_DIR/rf.$n"; else echo "not-empty-or-missing" > "$FAKE_DIR/rf.$n"; fi
[ -f "$FAKE_DIR/response" ] && cat "$FAKE_DIR/response" >> "$rf"
fc="$RUNNER_TEMP/_runner_file_commands"
ls "$fc" > "$FAKE_DIR/fc.$n"
for f in "$fc"/set_output_*; do [ -f "$f" ] && printf 'a=1\nmulti<<EOF_X\nx\ny\nEOF_X\n' >> "$f"; done
for f in "$fc"/set_env_*; do [ -f "$f" ] && printf 'FOO=bar%s\n' "$n" >> "$f"; done
for f in "$fc"/add_path_*; do [ -f "$f" ] && printf '/opt/tool%s/bin\n' "$n" >> "$f"; done
for f in "$fc"/save_state_*; do [ -f "$f" ] && printf 'pid=42\n' >> "$f"; done
for f in "$fc"/step_summary_*; do [ -f "$f" ] && printf '# step %s\n' "$n" >> "$f"; done
echo "OUT $n"
echo "ERR $n" >&2
exit "$(cat "$FAKE_DIR/exit" 2>/dev/null || echo 0)"
)SH";

simdjson::dom::element parse(simdjson::dom::parser& parser, const std::string& text) {
    simdjson::dom::element doc;
    EXPECT_EQ(parser.parse(text).get(doc), simdjson::SUCCESS) << text;
    return doc;
}

std::string get_string(simdjson::dom::element e, const char* pointer) {
    std::string_view v;
    if (e.at_pointer(pointer).get(v) != simdjson::SUCCESS)
        return "<missing " + std::string(pointer) + ">";
    return std::string(v);
}

class runner_emulator_unit : public ::testing::Test {
protected:
    runner_emulator::options fake_options() {
        runner_emulator::options o;
        o.home = tmp_ / "runner";
        o.hook_shim = (tmp_ / "hooks" / "fake.sh").string();
        o.extra_env = {{"FAKE_DIR", fake_dir().string()}, {"EXTRA", "from-extra-env"}};
        write_file(o.hook_shim, fake_shim);
        fs::create_directories(fake_dir());
        return o;
    }

    fs::path fake_dir() const { return tmp_ / "fake"; }

    temp_dir tmp_;
};

TEST_F(runner_emulator_unit, lays_out_work_like_the_runner) {
    runner_emulator emu(fake_options());
    const fs::path w = tmp_ / "runner" / "_work";
    EXPECT_EQ(emu.work_root(), w);
    EXPECT_EQ(emu.github_workspace(), w / "app" / "app");
    EXPECT_EQ(emu.runner_workspace(), w / "app");
    EXPECT_EQ(emu.runner_temp(), w / "_temp");
    for (const fs::path& d : {w / "app" / "app", w / "_temp", w / "_temp" / "_github_home",
                              w / "_temp" / "_github_workflow", w / "_temp" / "_runner_file_commands",
                              w / "_temp" / "_runner_hook_responses", w / "_actions", w / "_tool",
                              tmp_ / "runner" / "externals"})
        EXPECT_TRUE(fs::is_directory(d)) << d;
    EXPECT_EQ(emu.event_path(), w / "_temp" / "_github_workflow" / "event.json");
    simdjson::dom::parser parser;
    auto event = parse(parser, read_file(emu.event_path()));
    EXPECT_TRUE(event.is_object());
    EXPECT_EQ(get_string(event, "/repository/full_name"), "octo/app");
    EXPECT_EQ(emu.state_json(), "");
    EXPECT_EQ(count_entries(emu.responses_dir()), 0u);
    EXPECT_EQ(count_entries(emu.file_commands_dir()), 0u);
}

TEST_F(runner_emulator_unit, runs_the_hook_as_the_runners_user_with_a_home_of_theirs) {
    if (::geteuid() != 0)
        GTEST_SKIP() << "needs root to change users";
    runner_emulator::options o = fake_options();
    o.user = {{1001, 123}};
    write_file(tmp_ / "kubeconfig", "apiVersion: v1\nkind: Config\n");
    ::chmod((tmp_ / "kubeconfig").c_str(), 0600);
    o.kubeconfig = (tmp_ / "kubeconfig").string();
    ::chmod(fake_dir().c_str(), 0777);
    runner_emulator emu(o);
    write_file(emu.runner_temp() / "written-by-the-emulator", "x");
    auto run = emu.call("prepare_job", "{}");
    EXPECT_EQ(run.exit_code, 0) << run.err;
    const std::string copy = (tmp_ / "runner" / ".kube" / "config").string();
    EXPECT_EQ(read_file(fake_dir() / "id.1"), "1001:123:123:" + copy + "\n");
    struct stat st {};
    ASSERT_EQ(::stat(copy.c_str(), &st), 0);
    EXPECT_EQ(st.st_uid, 1001u);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    for (const fs::path& p : {emu.github_workspace(), emu.runner_temp() / "written-by-the-emulator",
                              emu.file_commands_dir()}) {
        ASSERT_EQ(::stat(p.c_str(), &st), 0) << p;
        EXPECT_EQ(st.st_uid, 1001u) << p;
        EXPECT_EQ(st.st_gid, 123u) << p;
    }
}

TEST_F(runner_emulator_unit, invokes_the_shim_as_the_runner_does_and_carries_state) {
    runner_emulator emu(fake_options());
    const std::string response =
        R"({"state":{"jobPod":"runner-abc-workflow","extra":[1,2]},"context":{"container":{"image":"node:22","ports":{}},"services":[{"image":"redis","ports":{"6379":"6379"}}]},"isAlpine":false})";
    write_file(fake_dir() / "response", response);
    const std::string args =
        R"({"container":{"image":"node:22","workingDirectory":"/__w/app/app"},"services":[{"image":"redis"}]})";
    auto prep = emu.prepare_job(args);
    ASSERT_EQ(prep.exit_code, 0) << prep.out << prep.err;
    EXPECT_TRUE(prep.ok()) << prep.runner_error;
    // stdout and stderr apart.
    EXPECT_EQ(prep.out, "OUT 1\n");
    EXPECT_EQ(prep.err, "ERR 1\n");
    // The response file was there and empty when the hook started, and is gone afterwards.
    EXPECT_EQ(read_file(fake_dir() / "rf.1"), "empty\n");
    ASSERT_TRUE(prep.response.has_value());
    EXPECT_EQ(*prep.response, response);
    EXPECT_EQ(count_entries(emu.responses_dir()), 0u);
    // One JSON line on stdin, state null for prepare_job.
    const std::string in1 = read_file(fake_dir() / "stdin.1");
    EXPECT_EQ(in1, prep.stdin_text);
    EXPECT_EQ(in1.find('\n'), in1.size() - 1);
    simdjson::dom::parser parser;
    auto doc1 = parse(parser, in1);
    EXPECT_EQ(get_string(doc1, "/command"), "prepare_job");
    EXPECT_TRUE(doc1["state"].is_null());
    EXPECT_EQ(get_string(doc1, "/args/container/image"), "node:22");
    const fs::path rf = get_string(doc1, "/responseFile");
    EXPECT_EQ(rf.parent_path(), emu.responses_dir());
    EXPECT_EQ(rf.extension(), ".json");
    EXPECT_FALSE(fs::exists(rf));
    // bash -e -o pipefail, in the shim's directory, with the runner's environment.
    EXPECT_EQ(read_file(fake_dir() / "pwd.1"), (tmp_ / "hooks").string() + "\n");
    EXPECT_NE(read_file(fake_dir() / "flags.1").find('e'), std::string::npos);
    EXPECT_NE(read_file(fake_dir() / "pipefail.1").find("on"), std::string::npos);
    const std::string env1 = read_file(fake_dir() / "env.1");
    EXPECT_NE(env1.find("GITHUB_WORKSPACE=" + emu.github_workspace().string() + "\n"), std::string::npos) << env1;
    EXPECT_NE(env1.find("RUNNER_WORKSPACE=" + emu.runner_workspace().string() + "\n"), std::string::npos) << env1;
    EXPECT_NE(env1.find("RUNNER_TEMP=" + emu.runner_temp().string() + "\n"), std::string::npos) << env1;
    EXPECT_NE(env1.find("ACTIONS_RUNNER_POD_NAME=runner-abc\n"), std::string::npos) << env1;
    EXPECT_NE(env1.find("EXTRA=from-extra-env\n"), std::string::npos) << env1;

    EXPECT_EQ(emu.state_json(), R"({"jobPod":"runner-abc-workflow","extra":[1,2]})");

    // The next call carries the state; a response without state leaves it as it was.
    fs::remove(fake_dir() / "response");
    auto clean = emu.cleanup_job();
    EXPECT_TRUE(clean.ok()) << clean.out << clean.err << clean.runner_error;
    simdjson::dom::parser parser2;
    auto doc2 = parse(parser2, read_file(fake_dir() / "stdin.2"));
    EXPECT_EQ(get_string(doc2, "/command"), "cleanup_job");
    EXPECT_EQ(get_string(doc2, "/state/jobPod"), "runner-abc-workflow");
    EXPECT_TRUE(doc2["args"].is_object());
    EXPECT_NE(get_string(doc2, "/responseFile"), rf.string()) << "a new response file per call";
    EXPECT_EQ(read_file(fake_dir() / "rf.2"), "empty\n");
    ASSERT_TRUE(clean.response.has_value());
    EXPECT_EQ(*clean.response, "");
    EXPECT_EQ(emu.state_json(), R"({"jobPod":"runner-abc-workflow","extra":[1,2]})");

    // A later state replaces it.
    write_file(fake_dir() / "response", R"({"state":{"jobPod":"other"}})");
    EXPECT_TRUE(emu.call("run_script_step", "{}").ok());
    EXPECT_EQ(emu.state_json(), R"({"jobPod":"other"})");
    auto again = emu.cleanup_job();
    simdjson::dom::parser parser3;
    EXPECT_EQ(get_string(parse(parser3, read_file(fake_dir() / "stdin.4")), "/state/jobPod"), "other");
}

TEST_F(runner_emulator_unit, a_failed_hook_keeps_the_state_and_reports_its_exit_code) {
    runner_emulator emu(fake_options());
    write_file(fake_dir() / "response", R"({"state":{"jobPod":"p1"},"isAlpine":true})");
    ASSERT_TRUE(emu.prepare_job(R"({"container":{"image":"alpine"},"services":[]})").ok());
    write_file(fake_dir() / "response", R"({"state":{"jobPod":"p2"}})");
    write_file(fake_dir() / "exit", "7");
    auto r = emu.call("run_script_step", "{}");
    EXPECT_EQ(r.exit_code, 7);
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(emu.state_json(), R"({"jobPod":"p1"})") << "the runner does not read a failed hook's response";
    EXPECT_EQ(count_entries(emu.responses_dir()), 0u);
}

TEST_F(runner_emulator_unit, prepare_job_responses_are_checked_like_the_runner) {
    const std::string with_container = R"({"container":{"image":"node:22"},"services":[{"image":"redis"}]})";
    const std::string services_only = R"({"container":null,"services":[{"image":"redis"}]})";
    EXPECT_EQ(check_prepare_response(with_container, R"({"state":{"jobPod":"x"},"isAlpine":false})"), "");
    EXPECT_NE(check_prepare_response(with_container, R"({"state":{"jobPod":"x"}})").find("isAlpine"),
              std::string::npos);
    EXPECT_NE(check_prepare_response(with_container, R"({"isAlpine":"false"})").find("isAlpine"),
              std::string::npos);
    EXPECT_EQ(check_prepare_response(services_only, R"({"state":{}})"), "");
    EXPECT_NE(check_prepare_response(with_container, std::nullopt), "");
    EXPECT_NE(check_prepare_response(with_container, ""), "");
    EXPECT_NE(check_prepare_response(with_container, "[1]"), "");
    EXPECT_NE(check_prepare_response(with_container, R"({"isAlpine":false,"state":"x"})"), "");
    EXPECT_NE(check_prepare_response(with_container,
                                     R"({"isAlpine":false,"context":{"services":[{"image":"redis"}]}})")
                  .find("services[0].ports"),
              std::string::npos);
    EXPECT_NE(check_prepare_response(with_container,
                                     R"({"isAlpine":false,"context":{"services":[{"ports":{"1":2}}]}})"),
              "");
    EXPECT_NE(check_prepare_response(with_container,
                                     R"({"isAlpine":false,"context":{"services":[{"ports":{}},{"ports":{}}]}})"),
              "");
    EXPECT_EQ(check_prepare_response(with_container,
                                     R"({"isAlpine":false,"context":{"services":[{"ports":{"6379":"6379"}}]}})"),
              "");

    // Through the emulator: the hook exited 0, but the runner would still fail the job.
    runner_emulator emu(fake_options());
    write_file(fake_dir() / "response", R"({"state":{"jobPod":"p"}})");
    auto r = emu.prepare_job(with_container);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_FALSE(r.ok());
    EXPECT_NE(r.runner_error.find("isAlpine"), std::string::npos) << r.runner_error;
}

TEST_F(runner_emulator_unit, script_steps_get_the_runners_args_and_file_commands) {
    runner_emulator emu(fake_options());
    script_step step;
    step.env = {{"NODE_ENV", "development"}};
    step.prepend_path = {"/step/bin"};
    auto r1 = emu.run_script_step("echo hello\n", step);
    ASSERT_TRUE(r1.ok()) << r1.out << r1.err << r1.runner_error;

    // The script the runner wrote, and what it sent.
    const fs::path script = emu.last_script();
    EXPECT_EQ(script.parent_path(), emu.runner_temp());
    EXPECT_EQ(script.extension(), ".sh");
    EXPECT_EQ(read_file(script), "echo hello\n");
    simdjson::dom::parser parser;
    auto doc = parse(parser, read_file(fake_dir() / "stdin.1"));
    EXPECT_EQ(get_string(doc, "/command"), "run_script_step");
    EXPECT_EQ(get_string(doc, "/args/entryPoint"), "bash");
    simdjson::dom::array args;
    ASSERT_EQ(doc.at_pointer("/args/entryPointArgs").get(args), simdjson::SUCCESS);
    std::vector<std::string> argv;
    for (auto a : args)
        argv.emplace_back(std::string_view(a));
    EXPECT_EQ(argv, (std::vector<std::string>{"--noprofile", "--norc", "-e", "-o", "pipefail",
                                              "/__w/_temp/" + script.filename().string()}));
    EXPECT_EQ(get_string(doc, "/args/workingDirectory"), "/__w/app/app");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/NODE_ENV"), "development");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/HOME"), "/github/home");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/GITHUB_WORKSPACE"), "/__w/app/app");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/GITHUB_EVENT_PATH"), "/github/workflow/event.json");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/RUNNER_TEMP"), "/__w/_temp");
    EXPECT_EQ(get_string(doc, "/args/prependPath/0"), "/step/bin");
    // Each file-command variable names a fresh empty file that exists on the runner side.
    const std::string fc1 = read_file(fake_dir() / "fc.1");
    for (const char* var : {"GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY"}) {
        const std::string pod_path = get_string(doc, (std::string("/args/environmentVariables/") + var).c_str());
        ASSERT_EQ(pod_path.rfind("/__w/_temp/_runner_file_commands/", 0), 0u) << var << "=" << pod_path;
        const std::string name = fs::path(pod_path).filename().string();
        EXPECT_NE(fc1.find(name + "\n"), std::string::npos) << name << " not in\n" << fc1;
    }
    EXPECT_EQ(std::count(fc1.begin(), fc1.end(), '\n'), 5);

    // Read back like the runner: name=value and heredoc forms.
    EXPECT_EQ(emu.outputs(), (std::map<std::string, std::string>{{"a", "1"}, {"multi", "x\ny"}}));
    EXPECT_EQ(emu.env(), (std::map<std::string, std::string>{{"FOO", "bar1"}}));
    EXPECT_EQ(emu.path(), std::vector<std::string>{"/opt/tool1/bin"});
    EXPECT_EQ(emu.last_file_commands().state, (std::map<std::string, std::string>{{"pid", "42"}}));
    EXPECT_EQ(emu.summary(), "# step 1\n");

    // The next step: the previous files are gone, fresh ones exist, GITHUB_ENV and GITHUB_PATH
    // of step 1 reach it.
    auto r2 = emu.run_script_step("true\n");
    ASSERT_TRUE(r2.ok()) << r2.runner_error;
    const std::string fc2 = read_file(fake_dir() / "fc.2");
    EXPECT_EQ(std::count(fc2.begin(), fc2.end(), '\n'), 5) << fc2;
    std::istringstream names(fc1);
    for (std::string name; std::getline(names, name);)
        EXPECT_EQ(fc2.find(name), std::string::npos) << name << " survived into the next step";
    simdjson::dom::parser parser2;
    auto doc2 = parse(parser2, read_file(fake_dir() / "stdin.2"));
    EXPECT_EQ(get_string(doc2, "/args/environmentVariables/FOO"), "bar1");
    EXPECT_EQ(get_string(doc2, "/args/prependPath/0"), "/opt/tool1/bin");
    EXPECT_EQ(emu.job_path(), (std::vector<std::string>{"/opt/tool2/bin", "/opt/tool1/bin"}));
    EXPECT_EQ(emu.job_env().at("FOO"), "bar2");
    EXPECT_EQ(count_entries(emu.file_commands_dir()), 5u);
}

TEST_F(runner_emulator_unit, sh_steps_use_sh_dash_e) {
    runner_emulator emu(fake_options());
    script_step step;
    step.shell = "sh";
    step.working_directory = "/__w/app/app/sub";
    ASSERT_TRUE(emu.run_script_step("true\n", step).ok());
    simdjson::dom::parser parser;
    auto doc = parse(parser, read_file(fake_dir() / "stdin.1"));
    EXPECT_EQ(get_string(doc, "/args/entryPoint"), "sh");
    EXPECT_EQ(get_string(doc, "/args/entryPointArgs/0"), "-e");
    EXPECT_EQ(get_string(doc, "/args/entryPointArgs/1"), "/__w/_temp/" + emu.last_script().filename().string());
    EXPECT_EQ(get_string(doc, "/args/workingDirectory"), "/__w/app/app/sub");
}

TEST_F(runner_emulator_unit, container_action_args_are_quoted_and_split_like_the_runner) {
    runner_emulator emu(fake_options());
    container_action action;
    action.image = "alpine:3.19";
    action.entry_point = "sh";
    action.args = {"-c", "echo \"a  b\" 'c'", ""};
    action.env = {{"INPUT_WHO", "world"}};
    auto r = emu.run_container_step(action);
    ASSERT_TRUE(r.ok()) << r.runner_error;
    simdjson::dom::parser parser;
    auto doc = parse(parser, read_file(fake_dir() / "stdin.1"));
    EXPECT_EQ(get_string(doc, "/command"), "run_container_step");
    EXPECT_EQ(get_string(doc, "/args/image"), "alpine:3.19");
    EXPECT_EQ(get_string(doc, "/args/entryPoint"), "sh");
    EXPECT_TRUE(doc.at_pointer("/args/dockerfile").is_null());
    EXPECT_EQ(get_string(doc, "/args/workingDirectory"), "/github/workspace");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/INPUT_WHO"), "world");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/GITHUB_WORKSPACE"), "/github/workspace");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/HOME"), "/github/home");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/RUNNER_TEMP"), "/github/runner_temp");
    EXPECT_EQ(get_string(doc, "/args/environmentVariables/GITHUB_OUTPUT").rfind("/github/file_commands/set_output_", 0), 0u);
    simdjson::dom::array tokens;
    ASSERT_EQ(doc.at_pointer("/args/entryPointArgs").get(tokens), simdjson::SUCCESS);
    std::string joined;
    for (auto t : tokens) {
        const std::string_view s(t);
        EXPECT_FALSE(s.empty());
        EXPECT_EQ(s.find(' '), std::string_view::npos);
        joined += (joined.empty() ? "" : " ") + std::string(s);
    }
    // What the hook does with them (spec §3.1.2): join with spaces, split like a POSIX shell.
    // The double space inside the argument is lost, as with the real runner.
    std::string out;
    // (No $ in the arguments: eval would expand it; the hook's splitter does not.)
    ASSERT_EQ(podpipe::testing::run_shell_capture(
                  "J=" + shell_quote(joined) + "; eval \"set -- $J\"; printf '<%s>' \"$@\"", out),
              0);
    EXPECT_EQ(out, "<-c><echo \"a b\" 'c'><>");
    // File commands written to the step's files are read back.
    EXPECT_EQ(emu.outputs().at("a"), "1");
}

// The emulator and podpipe-hook's own input parser agree on the contract of spec §2.2.
TEST_F(runner_emulator_unit, what_the_emulator_sends_is_what_the_hooks_parser_reads) {
    runner_emulator emu(fake_options());
    write_file(fake_dir() / "response", R"({"state":{"jobPod":"runner-abc-workflow"},"isAlpine":false})");
    job_container job;
    job.image = "node:22";
    job.env = {{"NODE_ENV", "development"}};
    job.ports = {"80:8080"};
    job.volumes = {{(emu.github_workspace() / "myvolume").string(), "/__w/myvolume", false}};
    job.registry = job_container::credentials{"user", "secret", "ghcr.io"};
    job_container redis;
    redis.image = "redis";
    redis.ports = {"8080:80", "8088:8080"};
    ASSERT_TRUE(emu.prepare_job(job, {redis}).ok());
    fs::remove(fake_dir() / "response");
    script_step step;
    step.env = {{"VARIABLE1", "$VAR"}};
    step.prepend_path = {"/foo/bar", "bar/foo"};
    ASSERT_TRUE(emu.run_script_step("echo hi\n", step).ok());
    container_action action;
    action.image = "node:22";
    action.entry_point = "bash";
    action.args = {"-e", "/__w/_temp/example-script.sh"};
    ASSERT_TRUE(emu.run_container_step(action).ok());
    ASSERT_TRUE(emu.cleanup_job().ok());

    auto prep = hook::parse_input(read_file(fake_dir() / "stdin.1"));
    ASSERT_TRUE(prep) << prep.error().what();
    EXPECT_EQ(prep->cmd, hook::command::prepare_job);
    EXPECT_FALSE(prep->state.has_value());
    const auto& pa = std::get<hook::prepare_job_args>(prep->args);
    ASSERT_TRUE(pa.container.has_value());
    EXPECT_EQ(pa.container->image, "node:22");
    EXPECT_EQ(pa.container->working_directory, "/__w/app/app");
    EXPECT_EQ(pa.container->port_mappings, std::vector<std::string>{"80:8080"});
    ASSERT_EQ(pa.container->user_mount_volumes.size(), 1u);
    EXPECT_EQ(pa.container->user_mount_volumes[0].target_volume_path, "/__w/myvolume");
    ASSERT_TRUE(pa.container->registry.has_value());
    EXPECT_FALSE(pa.container->system_mount_volumes.empty());
    ASSERT_EQ(pa.services.size(), 1u);
    EXPECT_EQ(pa.services[0].image, "redis");
    EXPECT_EQ(pa.services[0].port_mappings, (std::vector<std::string>{"8080:80", "8088:8080"}));
    EXPECT_FALSE(pa.services[0].registry.has_value());

    auto script = hook::parse_input(read_file(fake_dir() / "stdin.2"));
    ASSERT_TRUE(script) << script.error().what();
    EXPECT_EQ(script->cmd, hook::command::run_script_step);
    ASSERT_TRUE(script->state.has_value());
    EXPECT_EQ(script->state->job_pod, "runner-abc-workflow");
    const auto& sa = std::get<hook::run_script_step_args>(script->args);
    EXPECT_EQ(sa.entry_point, "bash");
    EXPECT_EQ(sa.entry_point_args.back(), "/__w/_temp/" + emu.last_script().filename().string());
    EXPECT_EQ(sa.prepend_path, (std::vector<std::string>{"/foo/bar", "bar/foo"}));
    EXPECT_EQ(sa.working_directory, "/__w/app/app");
    const auto var1 = std::find(sa.environment_variables.begin(), sa.environment_variables.end(),
                                std::pair<std::string, std::string>{"VARIABLE1", "$VAR"});
    EXPECT_NE(var1, sa.environment_variables.end());

    auto container = hook::parse_input(read_file(fake_dir() / "stdin.3"));
    ASSERT_TRUE(container) << container.error().what();
    EXPECT_EQ(container->cmd, hook::command::run_container_step);
    const auto& ca = std::get<hook::container_request>(container->args);
    EXPECT_EQ(ca.image, "node:22");
    EXPECT_EQ(ca.entry_point, "bash");
    EXPECT_EQ(ca.entry_point_args, (std::vector<std::string>{"\"-e\"", "\"/__w/_temp/example-script.sh\""}));
    EXPECT_EQ(ca.working_directory, "/github/workspace");

    auto cleanup = hook::parse_input(read_file(fake_dir() / "stdin.4"));
    ASSERT_TRUE(cleanup) << cleanup.error().what();
    EXPECT_EQ(cleanup->cmd, hook::command::cleanup_job);
    ASSERT_TRUE(cleanup->state.has_value());
    EXPECT_EQ(cleanup->state->job_pod, "runner-abc-workflow");
    EXPECT_EQ(cleanup->response_file.rfind(emu.responses_dir().string() + "/", 0), 0u);
}

TEST_F(runner_emulator_unit, key_value_files_parse_like_the_runner) {
    std::map<std::string, std::string> m;
    EXPECT_EQ(parse_key_value_file("a=1\r\n\nb=x=y\nc<<EOF\nl1\r\n\nl3\nEOF\nd=\ne=f<<g\n", m), std::nullopt);
    EXPECT_EQ(m, (std::map<std::string, std::string>{
                     {"a", "1"}, {"b", "x=y"}, {"c", "l1\n\nl3"}, {"d", ""}, {"e", "f<<g"}}));
    std::map<std::string, std::string> h;
    EXPECT_EQ(parse_key_value_file("h<<=X\nv\n=X\n", h), std::nullopt);
    EXPECT_EQ(h.at("h"), "v");
    std::map<std::string, std::string> e;
    EXPECT_NE(parse_key_value_file("x<<EOF\n", e).value_or("").find("Matching delimiter"), std::string::npos);
    EXPECT_TRUE(parse_key_value_file("noequals\n", e).has_value());
    EXPECT_TRUE(parse_key_value_file("=v\n", e).has_value());
    EXPECT_TRUE(parse_key_value_file("<<EOF\nEOF\n", e).has_value());
    EXPECT_TRUE(parse_key_value_file("k<<\n", e).has_value());
}

TEST_F(runner_emulator_unit, output_on_both_streams_before_reading_stdin_does_not_deadlock) {
    auto o = fake_options();
    write_file(o.hook_shim, "head -c 3000000 /dev/zero | tr '\\0' o\n"
                            "head -c 3000000 /dev/zero | tr '\\0' e >&2\n"
                            "cat > \"$FAKE_DIR/stdin\"\n");
    runner_emulator emu(o);
    const std::string big(2'000'000, 'i');
    auto r = emu.raw(big);
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(r.out, std::string(3'000'000, 'o'));
    EXPECT_EQ(r.err, std::string(3'000'000, 'e'));
    EXPECT_EQ(read_file(fake_dir() / "stdin"), big);
    EXPECT_EQ(count_entries(emu.responses_dir()), 0u);
}

TEST_F(runner_emulator_unit, a_hook_that_ignores_stdin_does_not_break_the_emulator) {
    auto o = fake_options();
    write_file(o.hook_shim, "echo done\nexit 3\n");
    runner_emulator emu(o);
    auto r = emu.raw(std::string(4'000'000, 'x'));
    EXPECT_EQ(r.exit_code, 3);
    EXPECT_EQ(r.out, "done\n");
}

TEST_F(runner_emulator_unit, a_hook_past_the_timeout_is_killed) {
    auto o = fake_options();
    write_file(o.hook_shim, "exec sleep 600\n");
    o.timeout = std::chrono::seconds(1);
    runner_emulator emu(o);
    auto r = emu.cleanup_job();
    EXPECT_TRUE(r.timed_out);
    EXPECT_EQ(r.exit_code, 128 + 9);
    EXPECT_FALSE(r.ok());
}

TEST_F(runner_emulator_unit, cancellation_sends_sigint_to_the_hook) {
    auto o = fake_options();
    write_file(o.hook_shim, "trap 'echo \"got INT\"; exit 130' INT\n"
                            "echo READY\n"
                            "while :; do sleep 0.05; done\n");
    runner_emulator emu(o);
    emu.cancel_next_call_on("READY");
    auto r = emu.cleanup_job();
    EXPECT_EQ(r.exit_code, 130);
    EXPECT_EQ(r.out, "READY\ngot INT\n");
    EXPECT_EQ(r.signals_sent, std::vector<int>{SIGINT});
    EXPECT_FALSE(r.timed_out);
    EXPECT_EQ(count_entries(emu.responses_dir()), 0u);
    // One call only: the next one runs to the end (here: until its own cancel).
    write_file(o.hook_shim, "echo READY\n");
    auto next = emu.cleanup_job();
    EXPECT_EQ(next.exit_code, 0);
    EXPECT_TRUE(next.signals_sent.empty());
}

TEST_F(runner_emulator_unit, cancellation_escalates_to_sigterm_and_sigkill) {
    auto o = fake_options();
    write_file(o.hook_shim, "trap '' INT TERM\necho READY >&2\nwhile :; do sleep 0.05; done\n");
    o.cancel_int_grace = std::chrono::milliseconds(100);
    o.cancel_term_grace = std::chrono::milliseconds(100);
    runner_emulator emu(o);
    emu.cancel_next_call_on("READY");
    auto r = emu.cleanup_job();
    EXPECT_EQ(r.signals_sent, (std::vector<int>{SIGINT, SIGTERM, SIGKILL}));
    EXPECT_EQ(r.exit_code, 128 + SIGKILL);
}

// ---- the real podpipe-hook through tools/hook.sh ----

runner_emulator::options real_hook_options(const fs::path& home) {
    runner_emulator::options o;
    o.home = home;
    o.hook_shim = hook_shim;
    o.hook_binary = hook_bin;
    return o;
}

TEST_F(runner_emulator_unit, malformed_stdin_gives_exit_1_and_an_error_command) {
    runner_emulator emu(real_hook_options(tmp_ / "runner"));
    for (const std::string& input : {std::string("{not json\n"), std::string(""), std::string("[]\n")}) {
        auto r = emu.raw(input);
        EXPECT_EQ(r.exit_code, 1) << input;
        EXPECT_EQ(r.out.rfind("::error::", 0), 0u) << r.out;
        EXPECT_EQ(count_entries(emu.responses_dir()), 0u);
    }
    auto unknown = emu.call("dance", "{}");
    EXPECT_EQ(unknown.exit_code, 1);
    EXPECT_NE(unknown.out.find("::error::Command not recognized: dance"), std::string::npos) << unknown.out;
}

class runner_emulator_cluster : public kubesim::testing::kubesim_fixture {};

TEST_F(runner_emulator_cluster, cleanup_job_deletes_the_runners_labelled_pods_only) {
    create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: runner-abc-workflow, labels: {runner-pod: runner-abc}}\n"
               "spec:\n  containers: [{name: job, image: busybox:1.36, command: [sleep, '1000000']}]\n");
    create_pod("apiVersion: v1\nkind: Pod\nmetadata: {name: bystander}\n"
               "spec:\n  containers: [{name: c, image: busybox:1.36, command: [sleep, '1000000']}]\n");
    ASSERT_EQ(wait_phase("runner-abc-workflow", "Running"), "Running");

    auto o = real_hook_options(fs::path(dir_) / "runner");
    o.kubeconfig = kubeconfig_;
    o.ns = "default";
    runner_emulator emu(o);
    auto r = emu.cleanup_job();
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_TRUE(r.ok()) << r.runner_error;
    ASSERT_TRUE(r.response.has_value());
    EXPECT_EQ(count_entries(emu.responses_dir()), 0u);

    std::string left;
    podpipe::testing::eventually(
        [&] {
            left = kubectl("get pods -l runner-pod=runner-abc -o name").output;
            return left.empty();
        },
        std::chrono::seconds(20), std::chrono::milliseconds(100));
    EXPECT_EQ(left, "");
    EXPECT_EQ(kubectl("get pods -o name").output, "pod/bystander\n");
}

TEST_F(runner_emulator_cluster, a_missing_runner_pod_name_fails_the_hook) {
    auto o = real_hook_options(fs::path(dir_) / "runner");
    o.kubeconfig = kubeconfig_;
    o.runner_pod_name = "";
    runner_emulator emu(o);
    auto r = emu.cleanup_job();
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("::error::"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("ACTIONS_RUNNER_POD_NAME"), std::string::npos) << r.out;
}

} // namespace
} // namespace podpipe::hook::testing
