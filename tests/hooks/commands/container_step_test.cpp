// run_container_step: the pure pieces (step pod spec, the step script run by a real sh), then
// kubesim: a job pod like prepare_job's with a workspace in it, container steps whose changes
// and file commands come back, exit codes, quoting, refusals without pods, a pull failure, a
// stop, busybox pods without podpipe (tar both ways) and pods with the in-pod podpipe.
#include "hooks/commands/container_step.hpp"
#include "kube/client.hpp"
#include "remote/pod_copy.hpp"
#include "kube/pod_spec.hpp"
#include "kube/template.hpp"
#include "tests/kube/cluster_fixture.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/support/eventually.hpp"

#include <atomic>
#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>
#include <unistd.h>

namespace podpipe::hook {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::temp_dir;
using podpipe::testing::write_file;

/// What the runner sends as entryPointArgs for a container action: each argument wrapped in
/// double quotes (inner " escaped), the whole string split on single spaces (spec §2.2).
std::vector<std::string> runner_args(const std::vector<std::string>& args) {
    std::string joined;
    for (const auto& a : args) {
        if (!joined.empty())
            joined += ' ';
        joined += '"';
        for (char c : a) {
            if (c == '"')
                joined += '\\';
            joined += c;
        }
        joined += '"';
    }
    std::vector<std::string> out;
    std::size_t start = 0;
    while (start <= joined.size()) {
        const std::size_t sp = joined.find(' ', start);
        const std::string tok =
            joined.substr(start, sp == std::string::npos ? std::string::npos : sp - start);
        if (!tok.empty())
            out.push_back(tok);
        if (sp == std::string::npos)
            break;
        start = sp + 1;
    }
    return out;
}

std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
}

hook_env test_env() {
    hook_env e;
    e.runner_pod_name = "runner-1";
    e.runner_image = "ghcr.io/actions/actions-runner:2.330.0";
    e.github_workspace = "/home/runner/_work/repo/repo";
    e.prepare_job_timeout = std::chrono::seconds(60);
    return e;
}

// ---- pure pieces ------------------------------------------------------------------------------

TEST(container_step_pod, init_affinity_label_and_template) {
    const hook_env env = test_env();
    auto plan = build_container_step_pod(env, "0123abcd", "node:22", "node-2", nullptr);
    ASSERT_TRUE(plan) << plan.error().what();
    const kube::pod& p = plan->pod;
    EXPECT_EQ(p.metadata.name, "runner-1-step-0123abcd");
    EXPECT_EQ(p.metadata.labels.at("runner-pod"), "runner-1");
    ASSERT_EQ(p.spec.containers.size(), 1u);
    EXPECT_EQ(p.spec.containers[0].name, "job");
    EXPECT_EQ(p.spec.containers[0].image, "node:22");
    ASSERT_EQ(p.spec.init_containers.size(), 1u);
    const auto& init = p.spec.init_containers[0];
    EXPECT_EQ(init.image, "ghcr.io/actions/actions-runner:2.330.0");
    ASSERT_EQ(init.command.size(), 3u);
    EXPECT_NE(init.command[2].find("/home/runner/externals/podpipe"), std::string::npos);
    EXPECT_NE(init.command[2].find("|| true"), std::string::npos);
    ASSERT_EQ(init.volume_mounts.size(), 1u);
    EXPECT_EQ(init.volume_mounts[0].name, "externals");
    EXPECT_EQ(init.volume_mounts[0].mount_path, "/__e");
    ASSERT_TRUE(p.spec.affinity);
    EXPECT_TRUE(p.spec.affinity->required.empty()); // preferred only: a full node never blocks
    ASSERT_EQ(p.spec.affinity->preferred.size(), 1u);
    EXPECT_EQ(p.spec.affinity->preferred[0].weight, 100);
    const auto& expr = p.spec.affinity->preferred[0].preference.match_expressions;
    ASSERT_EQ(expr.size(), 1u);
    EXPECT_EQ(expr[0].key, "kubernetes.io/hostname");
    EXPECT_EQ(expr[0].op, "In");
    EXPECT_EQ(expr[0].values, std::vector<std::string>{"node-2"});

    auto unknown_node = build_container_step_pod(env, "0123abcd", "node:22", "", nullptr);
    ASSERT_TRUE(unknown_node);
    EXPECT_FALSE(unknown_node->pod.spec.affinity);

    // The template's $job reaches the step container; its initContainers replace ours.
    auto ext = kube::parse_template(R"(
metadata: {labels: {team: ci}}
spec:
  initContainers: [{name: mine, image: busybox, command: ["true"]}]
  containers:
  - name: $job
    env: [{name: FROM_TEMPLATE, value: "1"}]
    resources: {limits: {memory: 1Gi}}
)",
                                   "t.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    auto templated = build_container_step_pod(env, "0123abcd", "node:22", "node-2", &*ext);
    ASSERT_TRUE(templated) << templated.error().what();
    const kube::pod& t = templated->pod;
    EXPECT_EQ(t.metadata.labels.at("team"), "ci");
    EXPECT_EQ(t.metadata.labels.at("runner-pod"), "runner-1");
    ASSERT_EQ(t.spec.init_containers.size(), 1u);
    EXPECT_EQ(t.spec.init_containers[0].name, "mine");
    ASSERT_EQ(t.spec.containers[0].env.size(), 1u);
    EXPECT_EQ(t.spec.containers[0].env[0].name, "FROM_TEMPLATE");
    EXPECT_EQ(t.spec.containers[0].resources.limits.at("memory"), "1Gi");
}

class step_script_test : public ::testing::Test {
protected:
    // Runs the generated script with the local sh in a temp working directory; returns output.
    std::string run(container_request req, int* exit_code = nullptr) {
        req.working_directory = (tmp_ / "work").string();
        fs::create_directories(tmp_ / "work");
        auto script = container_step_script(req);
        EXPECT_TRUE(script) << script.error().what();
        if (!script)
            return {};
        const fs::path file = tmp_ / "step.sh";
        write_file(file, *script);
        std::string out;
        const int rc = podpipe::testing::run_shell_capture(
            "sh " + podpipe::testing::shell_quote(file.string()), out);
        if (exit_code)
            *exit_code = rc;
        EXPECT_FALSE(fs::exists(file)) << "the script removes itself before the step runs";
        return out;
    }

    temp_dir tmp_;
};

TEST_F(step_script_test, env_values_and_args_arrive_byte_for_byte) {
    container_request req;
    req.image = "alpine:3";
    req.entry_point = "sh";
    const std::string nasty = "it's \"quoted\" $HOME `id` \\back\nline2 %s";
    req.environment_variables = {
        {"NASTY", nasty}, {"INPUT_FETCH-DEPTH", "1"}, {"GITHUB_ACTIONS", "false"}, {"EMPTY", ""}};
    req.entry_point_args = runner_args(
        {"-c",
         "printf '%s|' \"$NASTY\" \"$GITHUB_ACTIONS\" \"$CI\" \"${EMPTY-unset}\" \"$(pwd)\"; "
         "printf '[%s]' \"$@\"",
         "x", "two words", "$HOME", "a\"b"});
    const std::string out = run(req);
    EXPECT_EQ(out, nasty + "|true|true||" + (tmp_ / "work").string() + "|[two words][$HOME][a\"b]");
    // A key no shell can name (action inputs keep their '-') still reaches the entrypoint;
    // `env` as the entrypoint shows it (a shell in between would drop it, as in docker mode).
    req.entry_point = "env";
    req.entry_point_args.clear();
    const std::string env_out = run(req);
    EXPECT_NE(env_out.find("\nINPUT_FETCH-DEPTH=1\n"), std::string::npos) << env_out;
}

TEST_F(step_script_test, exit_code_and_ci_kept) {
    container_request req;
    req.image = "alpine:3";
    req.entry_point = "sh";
    req.environment_variables = {{"CI", "custom"}};
    req.entry_point_args = runner_args({"-c", "printf %s \"$CI\"; exit 3"});
    int rc = -1;
    EXPECT_EQ(run(req, &rc), "custom");
    EXPECT_EQ(rc, 3);
}

TEST(container_step_script, refusals) {
    container_request req;
    req.image = "alpine:3";
    auto no_entry = container_step_script(req);
    ASSERT_FALSE(no_entry);
    EXPECT_EQ(no_entry.error().what(),
              "failed to start the container since the entrypoint is overwritten");
    EXPECT_EQ(no_entry.error().code, make_error_code(container_step_errc::unsupported));
    req.entry_point = "sh";
    req.environment_variables = {{"A=B", "1"}};
    auto bad_key = container_step_script(req);
    ASSERT_FALSE(bad_key);
    EXPECT_NE(bad_key.error().what().find("environment key 'A=B' is invalid"), std::string::npos);
    req.environment_variables = {{"", "1"}};
    EXPECT_FALSE(container_step_script(req));
    req.environment_variables = {};
    req.entry_point_args = {"\"unterminated"};
    auto bad_args = container_step_script(req);
    ASSERT_FALSE(bad_args);
    EXPECT_EQ(bad_args.error().code, make_error_code(container_step_errc::bad_request));
}

// ---- on kubesim -------------------------------------------------------------------------------

const std::string pod_binary = PODPIPE_POD_BINARY;

class container_step_test : public kube::testing::cluster_test {
protected:
    /// false: the runner image has no podpipe (every copy uses the pods' tar).
    virtual bool with_externals() const { return true; }

    void SetUp() override {
        if (with_externals()) {
            fs::create_directories(externals_ / "podpipe");
            fs::copy_file(pod_binary, externals_ / "podpipe" / "podpipe");
            extra_args_ = {"--externals", externals_.path().string()};
        }
        cluster_test::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        env_ = test_env();
        out_path_ = (tmp_ / "out").string();
        err_path_ = (tmp_ / "err").string();
    }

    /// The job pod as prepare_job builds it (build_job_pod: its fs-init moves the externals out
    /// of the runner image, whose root is writable as on a real runtime). Then the runner's
    /// work tree (workspace, _temp with file-command files, event.json) is copied in.
    void make_job_pod(const std::string& image) {
        kube::job_pod_options o;
        o.runner_pod_name = env_.runner_pod_name;
        o.runner_image = env_.runner_image;
        o.workspace_tail = "repo/repo";
        kube::container_source job;
        job.image = image;
        auto built = kube::build_job_pod(o, &job, {});
        ASSERT_TRUE(built) << built.error().what();
        kube::pod p = built->job_pod;
        ASSERT_EQ(p.spec.init_containers.size(), 1u);
        auto created = client_->create_pod(p);
        ASSERT_TRUE(created) << created.error().what();
        job_pod_ = p.metadata.name;
        ASSERT_EQ(wait_for_phase(job_pod_, "Running"), "Running");

        const fs::path w = tmp_ / "W";
        write_file(w / "repo/repo/input.txt", "hello from the runner\n");
        write_file(w / "repo/repo/src/main.c", "int main(void) { return 0; }\n");
        write_file(w / "_temp/_github_workflow/event.json", "{\"action\":\"opened\"}\n");
        write_file(w / "_temp/_runner_file_commands/set_output_1", "");
        write_file(w / "_temp/_runner_file_commands/set_env_1", "");
        fs::create_directories(w / "_temp/_github_home");
        remote::pod_copier copier(*client_, {});
        auto end = copier.probe({"default", job_pod_, "job", "/__w"});
        ASSERT_TRUE(end) << end.error().message;
        auto r = copier.local_to_pod(w.string(), *end);
        ASSERT_TRUE(r) << r.error().message;
    }

    container_request step(const std::string& image, const std::string& script) {
        container_request req;
        req.image = image;
        req.entry_point = "sh";
        req.entry_point_args = runner_args({"-c", script});
        req.working_directory = "/github/workspace";
        req.environment_variables = {
            {"GITHUB_WORKSPACE", "/github/workspace"},
            {"HOME", "/github/home"},
            {"GITHUB_EVENT_PATH", "/github/workflow/event.json"},
            {"GITHUB_OUTPUT", "/github/file_commands/set_output_1"},
            {"GITHUB_ENV", "/github/file_commands/set_env_1"},
            {"RUNNER_TEMP", "/github/runner_temp"},
        };
        return req;
    }

    result<int, hook_error> run(const container_request& req, std::stop_token stop = {}) {
        const int out = ::open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        const int err = ::open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        container_step_context ctx{*client_, "default", env_, job_pod_};
        ctx.out_fd = out;
        ctx.err_fd = err;
        ctx.copy = copy_;
        ctx.tmpl = tmpl_ ? &*tmpl_ : nullptr;
        ctx.stop = std::move(stop);
        ctx.before_copy = [this]() -> result<void, hook_error> {
            events_.push_back("before_copy");
            // The step pod exists and runs now: record where it was placed.
            auto pods = client_->list_pods("default", {.label_selector = "runner-pod=runner-1"});
            if (pods)
                for (const auto& p : pods->items)
                    if (p.metadata.name.find("-step-") != std::string::npos)
                        step_pods_seen_.push_back(p);
            if (before_copy_hook_)
                before_copy_hook_();
            return {};
        };
        ctx.after_copy_back = [this]() -> result<void, hook_error> {
            events_.push_back("after_copy_back");
            return {};
        };
        auto r = run_container_step(ctx, req);
        ::close(out);
        ::close(err);
        out_ = slurp(out_path_);
        err_ = slurp(err_path_);
        return r;
    }

    /// `cat` of a file in the job pod's container ("" and a failure if it is missing).
    std::string job_file(const std::string& path) {
        auto s = client_->exec(sh(job_pod_, "cat " + kube::shell_quote(path)));
        EXPECT_TRUE(s) << s.error().what();
        if (!s)
            return {};
        kube::testing::string_sink out;
        auto code = (*s)->wait(&out);
        EXPECT_TRUE(code && *code == 0) << path << " missing in the job pod";
        return out.data;
    }

    /// The pods labelled for runner-1 once the step pod is gone (polls up to 20 s).
    std::vector<std::string> pods_after_step() {
        std::vector<std::string> names;
        podpipe::testing::eventually(
            [&] {
                names.clear();
                auto pods =
                    client_->list_pods("default", {.label_selector = "runner-pod=runner-1"});
                EXPECT_TRUE(pods) << pods.error().what();
                if (!pods)
                    return true;
                for (const auto& p : pods->items)
                    names.push_back(p.metadata.name);
                return names.size() <= 1;
            },
            std::chrono::seconds(20), std::chrono::milliseconds(100));
        return names;
    }

    /// The step in `pod` has begun: its marker /__w/started exists (up to 30 s, until `st`).
    bool started(const std::string& pod, std::stop_token st) {
        return podpipe::testing::eventually(
                   [&] {
                       if (st.stop_requested())
                           return true;
                       auto s = client_->exec(sh(pod, "test -e /__w/started"));
                       if (!s)
                           return false;
                       auto code = (*s)->wait();
                       return code && *code == 0;
                   },
                   std::chrono::seconds(30), std::chrono::milliseconds(100)) &&
               !st.stop_requested();
    }

    std::size_t count(const std::string& text, const std::string& what) const {
        std::size_t n = 0;
        for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
            ++n;
        return n;
    }

    temp_dir externals_;
    temp_dir tmp_;
    hook_env env_;
    std::string job_pod_;
    std::string out_path_, err_path_, out_, err_;
    std::vector<std::string> events_;
    std::vector<kube::pod> step_pods_seen_;
    std::function<void()> before_copy_hook_;
    remote::copy_options copy_;
    std::optional<kube::pod_template_extension> tmpl_;
};

// debian:12 is kubesim's host root: the in-pod podpipe runs there in every build (the static
// binary, or the sanitizer build with the host's libraries).
TEST_F(container_step_test, workspace_changes_and_file_commands_come_back_through_in_pod_podpipe) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    auto req = step("debian:12", R"(set -e
cat input.txt > copied.txt
echo made by the step > made.txt
mkdir -p out && echo nested > out/deep.txt
echo result=42 >> "$GITHUB_OUTPUT"
echo FOO=bar >> "$GITHUB_ENV"
echo home > "$HOME/h.txt"
grep -q opened "$GITHUB_EVENT_PATH"
echo tmp > "$RUNNER_TEMP/t.txt"
printf %s "$SECRET" > secret.txt
echo "step says hi"
echo "step warns" >&2)");
    const std::string secret = "it's \"q\" $HOME `x`\nline2";
    req.environment_variables.emplace_back("SECRET", secret);
    auto r = run(req);
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 0) << out_ << err_;

    // The step's workspace writes and file commands are in the job pod's /__w.
    EXPECT_EQ(job_file("/__w/repo/repo/copied.txt"), "hello from the runner\n");
    EXPECT_EQ(job_file("/__w/repo/repo/made.txt"), "made by the step\n");
    EXPECT_EQ(job_file("/__w/repo/repo/out/deep.txt"), "nested\n");
    EXPECT_EQ(job_file("/__w/repo/repo/secret.txt"), secret);
    EXPECT_EQ(job_file("/__w/_temp/_runner_file_commands/set_output_1"), "result=42\n");
    EXPECT_EQ(job_file("/__w/_temp/_runner_file_commands/set_env_1"), "FOO=bar\n");
    EXPECT_EQ(job_file("/__w/_temp/_github_home/h.txt"), "home\n");
    EXPECT_EQ(job_file("/__w/_temp/t.txt"), "tmp\n");
    // Untouched files are still there.
    EXPECT_EQ(job_file("/__w/repo/repo/src/main.c"), "int main(void) { return 0; }\n");

    // Output: the step's lines live, the copies in groups, both pods reached with podpipe.
    EXPECT_NE(out_.find("step says hi\n"), std::string::npos) << out_;
    EXPECT_EQ(err_, "step warns\n");
    EXPECT_EQ(count(out_, "::group::"), 2u) << out_;
    EXPECT_EQ(count(out_, "::endgroup::"), 2u) << out_;
    EXPECT_EQ(count(out_, ": in-pod /__e/podpipe/podpipe"), 4u) << out_; // 2 pods x 2 copies
    EXPECT_EQ(count(out_, "manifest verified"), 2u) << out_;
    EXPECT_NE(out_.find("relayed "), std::string::npos) << out_;
    EXPECT_NE(out_.find(" files, "), std::string::npos) << out_;
    EXPECT_NE(out_.find("B/s, manifest verified: default/runner-1-workflow:job:/__w -> "),
              std::string::npos)
        << out_;
    EXPECT_EQ(out_.find(secret), std::string::npos) << "secrets stay out of the hook's output";

    EXPECT_EQ(events_, (std::vector<std::string>{"before_copy", "after_copy_back"}));
    // The step pod ran beside the job pod, and is gone.
    auto job = client_->get_pod("default", job_pod_);
    ASSERT_TRUE(job);
    ASSERT_EQ(step_pods_seen_.size(), 1u);
    EXPECT_EQ(step_pods_seen_[0].spec.node_name, job->spec.node_name);
    EXPECT_EQ(step_pods_seen_[0].metadata.labels.at("runner-pod"), "runner-1");
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

TEST_F(container_step_test, exit_code_is_returned_and_changes_still_come_back) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    auto r =
        run(step("debian:12", "echo partial > partial.txt; echo failed=yes >> \"$GITHUB_OUTPUT\"; "
                              "echo '# summary' > \"$RUNNER_TEMP/summary.md\"; exit 3"));
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 3);
    EXPECT_EQ(job_file("/__w/repo/repo/partial.txt"), "partial\n");
    EXPECT_EQ(job_file("/__w/_temp/_runner_file_commands/set_output_1"), "failed=yes\n");
    EXPECT_EQ(job_file("/__w/_temp/summary.md"), "# summary\n");
    EXPECT_EQ(events_, (std::vector<std::string>{"before_copy", "after_copy_back"}));
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

TEST_F(container_step_test, v4_exec_protocol_only) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    // No stdin half-close: the script reaches the pod through a length-bounded `head -c`, and
    // the copies rely on podpipe's end marker (podpipe in both pods).
    copy_.offer_v5 = false;
    auto r = run(step("debian:12", "echo v4 > v4.txt; echo ok=v4 >> \"$GITHUB_OUTPUT\""));
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 0);
    EXPECT_EQ(count(out_, "exec v4.channel.k8s.io"), 4u) << out_;
    EXPECT_EQ(job_file("/__w/repo/repo/v4.txt"), "v4\n");
    EXPECT_EQ(job_file("/__w/_temp/_runner_file_commands/set_output_1"), "ok=v4\n");
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

TEST_F(container_step_test, args_with_quotes_and_spaces_reach_the_entrypoint_intact) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    container_request req = step("debian:12", "");
    req.entry_point = "printf";
    req.entry_point_args =
        runner_args({"[%s]\\n", "two  words", "it's", "$HOME", "a\"b", "back\\slash", "`id`"});
    auto r = run(req);
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 0);
    // The runner splits "two  words" into "two", "", "words" tokens and drops the empty one:
    // one space survives, as with the reference and docker mode.
    EXPECT_NE(out_.find("[two words]\n[it's]\n[$HOME]\n[a\"b]\n[back\\slash]\n[`id`]\n"),
              std::string::npos)
        << out_;
}

TEST_F(container_step_test, refusals_create_no_pod) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    container_request docker;
    docker.dockerfile = "/home/runner/_work/_actions/o/a/v1/Dockerfile";
    auto d = run(docker);
    ASSERT_FALSE(d);
    EXPECT_EQ(d.error().what(), "Building container actions is not currently supported");
    EXPECT_EQ(d.error().code, make_error_code(container_step_errc::unsupported));

    container_request no_entry = step("debian:12", "true");
    no_entry.entry_point.clear();
    auto e = run(no_entry);
    ASSERT_FALSE(e);
    EXPECT_EQ(e.error().what(),
              "failed to start the container since the entrypoint is overwritten");

    container_request no_image = step("", "true");
    auto i = run(no_image);
    ASSERT_FALSE(i);
    EXPECT_NE(i.error().what().find("no image"), std::string::npos) << i.error().what();

    env_.github_workspace = "/repo";
    auto w = run(step("debian:12", "true"));
    ASSERT_FALSE(w);
    EXPECT_NE(w.error().what().find("Invalid github workspace directory: /repo"),
              std::string::npos);

    EXPECT_TRUE(events_.empty());
    auto pods = client_->list_pods("default", {.label_selector = "runner-pod=runner-1"});
    ASSERT_TRUE(pods);
    ASSERT_EQ(pods->items.size(), 1u);
    EXPECT_EQ(pods->items[0].metadata.name, job_pod_);
}

TEST_F(container_step_test, image_pull_failure_names_the_reason_and_deletes_the_pod) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    env_.prepare_job_timeout = std::chrono::seconds(4);
    auto r = run(step("registry.example/team/does-not-exist:1", "true"));
    ASSERT_FALSE(r) << "exit " << *r;
    const std::string why = r.error().what();
    EXPECT_EQ(r.error().code, make_error_code(container_step_errc::pod_start)) << why;
    EXPECT_NE(why.find("runner-1-step-"), std::string::npos) << why;
    EXPECT_TRUE(why.find("ErrImagePull") != std::string::npos ||
                why.find("ImagePullBackOff") != std::string::npos)
        << why;
    EXPECT_NE(why.find("does-not-exist"), std::string::npos) << why;
    EXPECT_TRUE(events_.empty()) << "nothing is copied into a pod that never ran";
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

TEST_F(container_step_test, a_failed_create_is_reported_and_leaves_no_pod) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    arm(R"({"failNth": {"n": 1, "code": 500, "method": "POST", "path": "/pods"}})");
    auto r = run(step("debian:12", "true"));
    ASSERT_FALSE(r) << "exit " << *r;
    const std::string why = r.error().what();
    EXPECT_EQ(r.error().code, make_error_code(container_step_errc::pod_start)) << why;
    EXPECT_NE(why.find("failed to create step pod runner-1-step-"), std::string::npos) << why;
    EXPECT_NE(why.find("500"), std::string::npos) << why;
    EXPECT_TRUE(events_.empty());
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

TEST_F(container_step_test, stop_ends_the_step_and_deletes_the_pod) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    std::stop_source stop;
    before_copy_hook_ = [&stop] { stop.request_stop(); };
    auto r = run(step("debian:12", "echo should not run > ran.txt"), stop.get_token());
    ASSERT_FALSE(r) << "exit " << *r;
    EXPECT_EQ(r.error().code, make_error_code(container_step_errc::cancelled)) << r.error().what();
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
    auto s = client_->exec(sh(job_pod_, "test -e /__w/repo/repo/ran.txt"));
    ASSERT_TRUE(s);
    auto code = (*s)->wait();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 1) << "the step never ran";
}

TEST_F(container_step_test, a_step_pod_killed_during_the_step_is_named_in_the_error) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    std::jthread killer;
    std::atomic<bool> killed{false};
    before_copy_hook_ = [&] {
        ASSERT_EQ(step_pods_seen_.size(), 1u);
        const std::string pod = step_pods_seen_[0].metadata.name;
        // Once the step has started (its marker exists), kill the pod's processes.
        killer = std::jthread([this, pod, &killed](std::stop_token st) {
            if (started(pod, st)) {
                arm(R"({"killPod": {"namespace": "default", "name": ")" + pod + R"("}})");
                killed = true;
            }
        });
    };
    auto r = run(step("debian:12", "touch /__w/started; sleep 60; echo survived"));
    killer = {};
    ASSERT_TRUE(killed);
    ASSERT_FALSE(r) << "exit " << *r << "\n" << out_;
    const std::string why = r.error().what();
    EXPECT_NE(why.find("runner-1-step-"), std::string::npos) << why;
    EXPECT_TRUE(why.find("has ended (phase Failed)") != std::string::npos ||
                why.find("is gone") != std::string::npos)
        << why;
    EXPECT_EQ(out_.find("survived"), std::string::npos);
    EXPECT_EQ(events_, std::vector<std::string>{"before_copy"}) << "nothing came back";
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

// Issue 21: the step pod's podpipe runs the step (`podpipe run`), so an API-server restart in
// the middle of it neither ends the step nor loses or repeats a line of its output, and its
// own exit code and changes come back.
TEST_F(container_step_test, a_step_survives_an_api_server_restart_and_prints_each_line_once) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    env_.step_reattach = std::chrono::seconds(60);
    std::jthread cutter;
    std::atomic<bool> cut{false};
    before_copy_hook_ = [&] {
        ASSERT_EQ(step_pods_seen_.size(), 1u);
        const std::string pod = step_pods_seen_[0].metadata.name;
        cutter = std::jthread([this, pod, &cut](std::stop_token st) {
            if (started(pod, st)) {
                arm(R"({"restart": {"downSeconds": 2, "mode": "refused"}})");
                cut = true;
            }
        });
    };
    auto r = run(step("debian:12", "touch /__w/started; i=0; while [ $i -lt 40 ]; do "
                                   "i=$((i+1)); echo line-$i; echo err-$i >&2; sleep 0.1; done; "
                                   "echo after=cut >> \"$GITHUB_OUTPUT\"; exit 4"));
    cutter = {};
    ASSERT_TRUE(cut);
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 4) << out_;
    for (int i = 1; i <= 40; ++i) {
        EXPECT_EQ(count(out_, "line-" + std::to_string(i) + "\n"), 1u) << i << "\n" << out_;
        EXPECT_EQ(count(err_, "err-" + std::to_string(i) + "\n"), 1u) << i << "\n" << err_;
    }
    EXPECT_NE(out_.find("::warning::the session with pod default/runner-1-step-"),
              std::string::npos)
        << out_;
    EXPECT_EQ(job_file("/__w/_temp/_runner_file_commands/set_output_1"), "after=cut\n");
    EXPECT_EQ(events_, (std::vector<std::string>{"before_copy", "after_copy_back"}));
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

TEST_F(container_step_test, stop_during_the_step_ends_it_and_deletes_the_pod) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    std::stop_source stop;
    std::jthread stopper;
    std::atomic<bool> stopped{false};
    before_copy_hook_ = [&] {
        ASSERT_EQ(step_pods_seen_.size(), 1u);
        const std::string pod = step_pods_seen_[0].metadata.name;
        stopper = std::jthread([this, pod, &stop, &stopped](std::stop_token st) {
            if (started(pod, st)) {
                stopped = true;
                stop.request_stop();
            }
        });
    };
    auto r =
        run(step("debian:12", "touch /__w/started; sleep 60; echo survived"), stop.get_token());
    stopper = {};
    ASSERT_TRUE(stopped);
    ASSERT_FALSE(r) << "exit " << *r;
    EXPECT_EQ(r.error().code, make_error_code(container_step_errc::cancelled)) << r.error().what();
    EXPECT_EQ(out_.find("survived"), std::string::npos);
    EXPECT_EQ(events_, std::vector<std::string>{"before_copy"});
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

TEST_F(container_step_test, template_reaches_the_step_pod_and_its_warnings_are_printed) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    auto ext = kube::parse_template(R"(
metadata: {annotations: {from: template}}
spec:
  containers:
  - name: $job
    image: ignored:1
    env: [{name: FROM_TEMPLATE, value: "yes"}]
)",
                                   "ext.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    tmpl_ = std::move(*ext);
    // The step's exec inherits the container's env, which the template extended.
    auto r = run(step("debian:12", "printf %s \"$FROM_TEMPLATE\" > from-template.txt"));
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 0);
    EXPECT_NE(out_.find("::warning::Skipping image override: image can't be overwritten"),
              std::string::npos)
        << out_;
    ASSERT_EQ(step_pods_seen_.size(), 1u);
    EXPECT_EQ(step_pods_seen_[0].metadata.annotations.at("from"), "template");
    ASSERT_FALSE(step_pods_seen_[0].spec.containers.empty());
    EXPECT_EQ(step_pods_seen_[0].spec.containers[0].image, "debian:12");
    EXPECT_EQ(job_file("/__w/repo/repo/from-template.txt"), "yes");
}

TEST_F(container_step_test, a_template_volume_under_github_is_left_alone) {
    make_job_pod("debian:12");
    ASSERT_FALSE(HasFatalFailure());
    auto ext = kube::parse_template(R"(
spec:
  volumes: [{name: myhome, emptyDir: {}}]
  containers:
  - name: $job
    volumeMounts: [{name: myhome, mountPath: /github/home}]
)",
                                   "ext.yaml");
    ASSERT_TRUE(ext) << ext.error().what();
    tmpl_ = std::move(*ext);
    auto r = run(step("debian:12", "test ! -L /github/home && echo mine > \"$HOME/mine.txt\" && "
                                   "test -L /github/workspace && echo ws > ws.txt"));
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 0) << out_ << err_;
    EXPECT_EQ(job_file("/__w/repo/repo/ws.txt"), "ws\n");
    auto s = client_->exec(sh(job_pod_, "test -e /__w/_temp/_github_home/mine.txt"));
    ASSERT_TRUE(s);
    auto code = (*s)->wait();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 1) << "HOME was the template's volume, not /__w";
}

/// The runner image without podpipe: the init container still succeeds, and every copy uses
/// the pods' busybox tar.
class container_step_tar_test : public container_step_test {
protected:
    bool with_externals() const override { return false; }
};

TEST_F(container_step_tar_test, busybox_pods_without_podpipe_use_their_tar) {
    make_job_pod("busybox:1.36");
    ASSERT_FALSE(HasFatalFailure());
    auto r = run(step("alpine:3.19", "readlink /bin/tar; cat input.txt > copied.txt; "
                                     "echo ok=1 >> \"$GITHUB_OUTPUT\"; exit 5"));
    ASSERT_TRUE(r) << r.error().what() << "\n" << out_ << err_;
    EXPECT_EQ(*r, 5);
    EXPECT_NE(out_.find("/bin/busybox\n"), std::string::npos) << "the step ran busybox: " << out_;
    EXPECT_EQ(count(out_, "no podpipe in the pod: using its tar"), 4u) << out_;
    EXPECT_EQ(count(out_, "compressed (the receiving pod's tar counts no files)"), 2u) << out_;
    EXPECT_EQ(job_file("/__w/repo/repo/copied.txt"), "hello from the runner\n");
    EXPECT_EQ(job_file("/__w/_temp/_runner_file_commands/set_output_1"), "ok=1\n");
    EXPECT_EQ(pods_after_step(), std::vector<std::string>{job_pod_});
}

} // namespace
} // namespace podpipe::hook
