// Test-only stand-in for podpipe-hook's dispatcher in volume mode, until hooks/main.cpp routes
// PODPIPE_WORKSPACE_MODE=volume to the volume_mode.hpp entry points (the lead's wiring). It
// does what main.cpp does around the commands (stdin, env, config, client, session, the
// permission record, ::error:: output, exit codes) and calls prepare_job_volume,
// run_script_step_volume, run_container_step_volume and cleanup_job. Once main.cpp is wired,
// tests/hooks/volume/CMakeLists.txt points the tests at podpipe-hook and this file goes.
#include "hooks/commands/cleanup_job.hpp"
#include "hooks/commands/env.hpp"
#include "hooks/commands/input.hpp"
#include "hooks/commands/log.hpp"
#include "hooks/commands/session.hpp"
#include "hooks/commands/volume_mode.hpp"
#include "hooks/k8s/client.hpp"
#include "hooks/k8s/config.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

extern char** environ;

namespace podpipe::hook {
namespace {

int error_exit(std::string text) {
    for (char& c : text)
        if (c == '\n' || c == '\r')
            c = ' ';
    std::printf("::error::%s\n", text.c_str());
    std::fflush(stdout);
    return 1;
}

int run() {
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    auto input = parse_input(text);
    if (!input)
        return error_exit(input.error().what());
    auto env = read_env(env_from_environ(environ));
    if (!env)
        return error_exit(env.error().what());
    for (const auto& w : env->warnings)
        std::printf("::warning::%s\n", w.c_str());
    auto cfg = k8s::load_config(k8s::config_sources::from_process());
    if (!cfg)
        return error_exit(cfg.error().what());
    std::string ns = env->namespace_name;
    if (ns.empty() && input->state && !input->state->namespace_name.empty())
        ns = input->state->namespace_name;
    if (ns.empty())
        ns = cfg->ns;
    auto client = k8s::api_client::connect(std::move(*cfg));
    if (!client)
        return error_exit(client.error().what());
    hook_log log(stdout);
    hook_session session{**client, ns, *env, log, {}};
    if (input->cmd != command::prepare_job && !(input->state && input->state->permissions_checked))
        if (auto ok = check_permissions(session, true); !ok)
            return error_exit(ok.error().what());
    switch (input->cmd) {
    case command::cleanup_job: {
        auto done = cleanup_job(**client, ns, env->runner_pod_name);
        return done ? 0 : error_exit("cleanup_job: " + done.error().what());
    }
    case command::prepare_job: {
        auto done = prepare_job_volume(session, std::get<prepare_job_args>(input->args), input->response_file);
        return done ? 0 : error_exit(done.error().what());
    }
    case command::run_script_step: {
        if (!input->state)
            return error_exit("run_script_step: no state from prepare_job in the input");
        auto code = run_script_step_volume(session, *input->state, std::get<run_script_step_args>(input->args));
        return code ? *code : error_exit(code.error().what());
    }
    case command::run_container_step: {
        auto code = run_container_step_volume(session, input->state.value_or(job_state{}),
                                              std::get<container_request>(input->args));
        return code ? *code : error_exit(code.error().what());
    }
    }
    return 1;
}

} // namespace
} // namespace podpipe::hook

int main() {
    try {
        return podpipe::hook::run();
    } catch (const std::exception& e) {
        std::printf("::error::podpipe-hook: fatal: %s\n", e.what());
        return 1;
    }
}
