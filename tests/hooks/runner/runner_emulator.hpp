// Test support: calls a container hook the way the GitHub Actions runner does
// (spec/hook-behavior.md §1, §2.1-§2.3), so hook scenario tests exercise the real invocation
// contract: the runner's `_work` layout on disk, a fresh empty response file per call, one JSON
// line on stdin, `bash --noprofile --norc -e -o pipefail <shim>` started in the shim's directory
// with the runner's environment, stdout and stderr captured separately, the response read and
// deleted, its `state` carried to later calls, and the step's file commands (GITHUB_OUTPUT,
// GITHUB_ENV, GITHUB_PATH, GITHUB_STATE, GITHUB_STEP_SUMMARY) read back from the runner side.
//
// Test-only code; not linked into any product. Not thread-safe: one emulator per test, one call
// at a time (the runner also runs one hook invocation at a time per job). Running a hook sets
// SIGPIPE to SIG_IGN in the calling process (a hook that exits without reading its stdin must not
// kill the test); the hook itself starts with the default disposition.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace podpipe::hook::testing {

/// What one hook invocation produced.
struct hook_run {
    int exit_code = -1;  ///< exit status, or 128 + signal number if the hook was killed
    bool timed_out = false; ///< the emulator killed the hook after options::timeout
    std::string out;     ///< the hook's stdout
    std::string err;     ///< the hook's stderr
    /// The response file's text, read after the hook exited and before the emulator deleted it;
    /// nullopt if the file was gone. Empty text means the hook wrote nothing (fine except for
    /// prepare_job).
    std::optional<std::string> response;
    /// Why the real runner would reject this invocation's result beyond a non-zero exit (empty:
    /// it would accept it): prepare_job's response not an object, `isAlpine` missing although a
    /// job container was requested, `context.services[i].ports` not an object, a `state` that is
    /// not an object, malformed file commands.
    std::string runner_error;
    std::string stdin_text; ///< exactly what was written to the hook's stdin
    /// Signals the emulator sent the hook (cancel_next_call_on(), the timeout's SIGKILL).
    std::vector<int> signals_sent;
    std::string command;    ///< prepare_job, run_script_step, ... (empty for raw())

    bool ok() const { return exit_code == 0 && !timed_out && runner_error.empty(); }
};

/// Everything a run gave (exit code, stdout, stderr, the runner's verdict): for failure messages.
std::string all(const hook_run& r);

/// Each line of `text` from `word` on (to the line's end), in order, each followed by ',':
/// "tick 1,tick 2," for a step that printed those lines, to check that every line of a step's
/// output came exactly once and in order.
std::string lines_from(const std::string& text, const std::string& word);

/// "W1,W2,...,Wn," (`word` and 1..n): what lines_from() gives for n such lines.
std::string numbered(const std::string& word, int n);

/// A `run:` step (or a JavaScript action) as the runner hands it to run_script_step.
struct script_step {
    /// Extra step env (`env:` of the step), over the runner's own variables (GITHUB_*, RUNNER_*,
    /// CI, HOME) and those carried from earlier GITHUB_ENV files; the file-command paths
    /// (GITHUB_ENV, GITHUB_OUTPUT, ...) always stay the runner's.
    std::map<std::string, std::string> env;
    /// Directories for PATH, newest first; sent before those carried from earlier GITHUB_PATH.
    std::vector<std::string> prepend_path;
    /// In-container working directory; empty: /__w/<repo>/<repo>.
    std::string working_directory;
    /// `bash` (args --noprofile --norc -e -o pipefail FILE) or `sh` (args -e FILE).
    std::string shell = "bash";
};

/// A container action (`uses: docker://IMAGE` or a `runs.using: docker` action) as the runner
/// hands it to run_container_step, built into a HookContainer by container_step_args().
struct container_action {
    std::string image;
    std::string entry_point;            ///< empty: null (the image's ENTRYPOINT)
    std::vector<std::string> args;      ///< argv after the entrypoint, before the runner's quoting
    std::map<std::string, std::string> env; ///< `with:` inputs as INPUT_*, `env:`, ...
};

/// A `container:` or `services:` entry of a workflow, built into the HookContainer the runner
/// sends with prepare_job (prepare_job_args()).
struct job_container {
    std::string image;
    std::map<std::string, std::string> env; ///< `env:`
    std::vector<std::string> ports;         ///< `ports:` ("8080:80", "53/udp", ...)
    struct volume {
        std::string source; ///< runner-side path (a name without '/' is a docker named volume)
        std::string target; ///< path in the container
        bool read_only = false;
    };
    std::vector<volume> volumes; ///< `volumes:`
    std::string options;         ///< `options:` (createOptions); empty: null
    struct credentials {
        std::string username, password, server_url;
    };
    std::optional<credentials> registry; ///< `credentials:`; sent only with a username
};

/// Step results the runner reads back from W/_temp/_runner_file_commands after a step.
struct file_commands {
    std::map<std::string, std::string> outputs; ///< GITHUB_OUTPUT
    std::map<std::string, std::string> env;     ///< GITHUB_ENV
    std::map<std::string, std::string> state;   ///< GITHUB_STATE (save_state)
    std::vector<std::string> path;              ///< GITHUB_PATH lines, in file order
    std::string summary;                        ///< GITHUB_STEP_SUMMARY, verbatim
    std::string error;                          ///< a malformed file (the runner fails the step)
};

/// Parses a GITHUB_ENV / GITHUB_OUTPUT / GITHUB_STATE file as the runner does: `NAME=VALUE`
/// lines and `NAME<<DELIM` … `DELIM` heredocs (value lines joined with "\n"), blank lines
/// skipped, later names win. Errors name the line: an empty name, a line with neither `=` nor
/// `<<`, an unterminated heredoc.
std::optional<std::string> parse_key_value_file(const std::string& text,
                                                std::map<std::string, std::string>& into);

class runner_emulator {
public:
    struct options {
        std::filesystem::path home; ///< runner home (holds _work and externals); created
        std::string repo = "app";   ///< repository name: W/<repo>/<repo> is GITHUB_WORKSPACE
        std::string owner = "octo";
        std::string runner_pod_name = "runner-abc"; ///< ACTIONS_RUNNER_POD_NAME ("" = unset)
        std::string kubeconfig;  ///< KUBECONFIG (unset if empty)
        std::string ns;          ///< ACTIONS_RUNNER_KUBERNETES_NAMESPACE (unset if empty)
        std::string hook_shim;   ///< the .sh the runner is configured with (tools/hook.sh)
        std::string hook_binary; ///< PODPIPE_HOOK_BIN (unset if empty)
        /// More runner-process variables (ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE, PODPIPE_*);
        /// a value here overrides the emulator's own for the same name.
        std::map<std::string, std::string> extra_env;
        /// W/_temp/_github_workflow/event.json; empty: a small push event for owner/repo.
        std::string event_json;
        /// The hook is killed (SIGKILL) after this long; hook_run::timed_out says so.
        std::chrono::seconds timeout{300};
        /// Cancellation escalates like the runner's: SIGINT, SIGTERM after cancel_int_grace,
        /// SIGKILL after cancel_term_grace more.
        std::chrono::milliseconds cancel_int_grace{7500};
        std::chrono::milliseconds cancel_term_grace{2500};
        /// The runner's user (the actions-runner image runs as 1001:123): when set, the hook
        /// runs with that uid and gid (no supplementary groups), home and everything the
        /// emulator writes there are theirs, the kubeconfig is copied to home/.kube/config,
        /// and the directories above home get search permission for others.
        std::optional<std::pair<uid_t, gid_t>> user;
    };

    /// Lays out the runner's directories under options.home (creating them); throws
    /// std::runtime_error if that fails or options.hook_shim is empty.
    explicit runner_emulator(options opts);

    // ---- the four commands ----

    /// `args_json` = {"container": HookContainer|null, "services": [...]}. Checks the response as
    /// the runner does (hook_run::runner_error) and keeps its `state`.
    hook_run prepare_job(const std::string& args_json);
    /// prepare_job with the args the runner builds for `container` and `services`.
    hook_run prepare_job(const job_container& container, const std::vector<job_container>& services = {});
    /// {"container": HookContainer|null, "services": [...]}: the job container gets workingDirectory
    /// /__w/<repo>/<repo> and HOME=/github/home in its env (the hook must drop it, spec §3.1),
    /// services no working directory; both get the docker-mode systemMountVolumes.
    std::string prepare_job_args(const std::optional<job_container>& container,
                                 const std::vector<job_container>& services) const;
    /// Writes the script to W/_temp/<guid>.sh, recreates the file-command files, sends the
    /// run_script_step args the runner sends for a `run:` step, then reads the file commands
    /// back (last_file_commands()); GITHUB_ENV and GITHUB_PATH carry into later steps.
    hook_run run_script_step(const std::string& script_body, const script_step& step = {});
    /// Sends `args_json` (a HookContainer) as is; recreates the file-command files first and
    /// reads them back after, like the runner.
    hook_run run_container_step(const std::string& args_json);
    /// Builds the HookContainer the runner would send for `action` (container_step_args) and
    /// sends it.
    hook_run run_container_step(const container_action& action);
    hook_run cleanup_job();
    /// Sends `stdin_text` verbatim (a response file is still created and removed); for
    /// malformed-input tests. No state is taken from the response.
    hook_run raw(const std::string& stdin_text);
    /// Sends {"command": command, "responseFile": ..., "args": args_json, "state": ...} without
    /// any step preparation (for unknown commands or hand-made args).
    hook_run call(const std::string& command, const std::string& args_json);

    /// Cancels the next call as the runner cancels a job (spec §2.1): once `marker` appears in
    /// the hook's stdout or stderr, SIGINT to the hook process, then SIGTERM and SIGKILL after
    /// the options' grace periods if it is still running. One call only.
    void cancel_next_call_on(std::string marker) { cancel_marker_ = std::move(marker); }

    /// The run_container_step args for `action`: entryPointArgs quoted and split like the
    /// runner, env with GITHUB_* translated to /github/... paths, workingDirectory
    /// /github/workspace, the docker-mode systemMountVolumes. The file-command paths are those
    /// of the current step (run_container_step(action) starts a new step first; for inspection
    /// call begin_step_for_test() before this).
    std::string container_step_args(const container_action& action) const;

    // ---- what the runner knows ----

    const std::filesystem::path& home() const { return home_; }
    const std::filesystem::path& work_root() const { return work_; }      ///< W
    std::filesystem::path runner_workspace() const { return work_ / repo_; }
    std::filesystem::path github_workspace() const { return work_ / repo_ / repo_; }
    std::filesystem::path runner_temp() const { return work_ / "_temp"; }
    std::filesystem::path file_commands_dir() const { return runner_temp() / "_runner_file_commands"; }
    std::filesystem::path responses_dir() const { return runner_temp() / "_runner_hook_responses"; }
    std::filesystem::path event_path() const { return runner_temp() / "_github_workflow" / "event.json"; }
    std::filesystem::path github_home() const { return runner_temp() / "_github_home"; }
    std::filesystem::path externals() const { return home_ / "externals"; }
    const std::string& repo() const { return repo_; }

    /// The carried state (raw JSON object text); empty before a response carried one.
    const std::string& state_json() const { return state_; }
    /// File commands of the last step (empty before any step).
    const file_commands& last_file_commands() const { return last_; }
    std::map<std::string, std::string> outputs() const { return last_.outputs; }
    std::map<std::string, std::string> env() const { return last_.env; }
    std::vector<std::string> path() const { return last_.path; }
    std::string summary() const { return last_.summary; }
    /// Env and PATH accumulated from every step's GITHUB_ENV / GITHUB_PATH, as the runner
    /// applies them to later steps (path newest first).
    const std::map<std::string, std::string>& job_env() const { return job_env_; }
    const std::vector<std::string>& job_path() const { return job_path_; }
    /// The runner-side files of the current step, by kind (set_env, add_path, set_output,
    /// save_state, step_summary).
    const std::map<std::string, std::filesystem::path>& step_files() const { return step_files_; }
    /// The runner-side path of the last run_script_step's script (deleted by the runner after
    /// the step in real life; kept here so tests can look at it).
    const std::filesystem::path& last_script() const { return last_script_; }

    /// Deletes the previous step's file-command files and creates fresh empty ones (what the
    /// runner does before every step).
    void begin_step_for_test();

    /// A random lowercase UUID, like the runner's Guid.NewGuid().ToString().
    static std::string new_guid();
    /// `s` as a JSON string literal.
    static std::string json_quote(const std::string& s);

private:
    /// With options.user: chowns home and everything under it to that user, following
    /// directory links when `into_links` (no-op without a user).
    void give_home_to_user(bool into_links) const;
    /// With options.user: chowns `p` (not following a link) to that user.
    void own(const std::filesystem::path& p) const;
    hook_run invoke(const std::string& command, const std::filesystem::path& response,
                    const std::string& stdin_text);
    std::filesystem::path new_response_file() const;
    std::string envelope(const std::string& command, const std::string& response_file,
                         const std::string& args_json) const;
    std::map<std::string, std::string> process_env() const;
    std::map<std::string, std::string> container_step_env() const;
    std::string hook_container(const job_container& c, bool is_job) const;
    void finish_step(hook_run& run);

    options opts_;
    std::filesystem::path home_;
    std::filesystem::path work_;
    std::string repo_;
    std::string state_;
    std::map<std::string, std::filesystem::path> step_files_;
    std::string step_guid_;
    file_commands last_;
    std::map<std::string, std::string> job_env_;
    std::vector<std::string> job_path_;
    std::filesystem::path last_script_;
    std::string cancel_marker_;
};

/// The runner's check of prepare_job's response (spec §2.3): "" when it would accept it.
/// `args_json` is what was sent (for "was a container requested" and the services count).
std::string check_prepare_response(const std::string& args_json,
                                   const std::optional<std::string>& response);

} // namespace podpipe::hook::testing
