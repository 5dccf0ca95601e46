#include "hooks/commands/session.hpp"

#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/send.hpp"
#include "kube/client.hpp"
#include "kube/pod_spec.hpp"
#include "remote/retry.hpp"

#include <cstdio>

namespace podpipe::hook {

remote::copy_options copy_options_for(const hook_session& s) {
    remote::copy_options o;
    o.level = s.env.compression_level == auto_compression_level ? pipeline::auto_level
                                                                : s.env.compression_level;
    o.level_text = s.env.compression_level == auto_compression_level
                       ? "auto"
                       : std::to_string(s.env.compression_level);
    o.threads = s.env.threads;
    o.pod_threads = s.env.pod_threads;
    o.chunk_bytes = s.env.chunk_bytes;
    o.chunk_text = std::to_string(s.env.chunk_bytes);
    o.memory_bytes = s.env.memory_budget_bytes;
    o.pod_binary = s.env.recv_path + "/podpipe";
    o.verify = true;
    o.allow_incomplete = s.env.allow_incomplete;
    hook_log* log = &s.log;
    o.on_info = [log](const std::string& line) { log->debug(line); };
    o.on_warning = [log](const std::string& line) { log->warning(line); };
    return o;
}

result<remote::pod_end, remote::copy_error> probe_job_pod(hook_session& s,
                                                          remote::pod_copier& copier,
                                                          const remote::pod_dir& where) {
    if (s.job_end && s.job_end->loc.pod == where.pod && s.job_end->loc.container == where.container &&
        (where.ns.empty() || s.job_end->loc.ns == where.ns)) {
        remote::pod_end end = *s.job_end;
        end.loc.path = where.path;
        return end;
    }
    // One attempt: a probe is the first exec of a copy, and grouped_copy tries the two again
    // as one operation (retries at one depth: at most PODPIPE_COPY_RETRY_SECONDS in all).
    auto end = copier.probe(where);
    if (end)
        s.job_end = *end;
    return end;
}

exec_retry one_shot_retry(hook_session& s, std::string what, bool idempotent) {
    exec_retry r;
    r.policy = s.env.copy_retry_policy();
    r.idempotent = idempotent;
    r.what = std::move(what);
    hook_log* log = &s.log;
    r.on_warning = [log](const std::string& line) { log->warning(line); };
    return r;
}

rest_retry rest_retry_of(hook_session& s) {
    rest_retry r;
    r.policy = s.env.copy_retry_policy();
    r.stop = s.stop;
    hook_log* log = &s.log;
    r.on_warning = [log](const std::string& line) { log->warning(line); };
    return r;
}

bool job_pod_runs_steps(hook_session& s, const std::string& job_pod) {
    if (s.env.step_reattach.count() == 0)
        return false;
    remote::pod_copier copier(s.client, copy_options_for(s), s.stop);
    // Outside any copy: tried again here, as a copy would be.
    hook_log* log = &s.log;
    const std::string what = "probing " + job_pod + ":/__w";
    auto end = remote::with_retries(
        [&] {
            return probe_job_pod(s, copier,
                                 {s.ns, job_pod, std::string(kube::job_container_name), "/__w"});
        },
        s.env.copy_retry_policy(), s.stop,
        [log, &what](const remote::retry_notice& n) {
            log->warning(what + " " + remote::retry_text(n));
        });
    if (!end) {
        s.log.debug("probing the job pod's podpipe: " + end.error().message);
        return false;
    }
    return end->has_step_run;
}

resumable_step step_under_run(const hook_env& env, std::string podpipe, std::string spool,
                              std::function<void(const std::string&)> on_warning) {
    resumable_step how;
    how.podpipe = std::move(podpipe);
    how.spool = std::move(spool);
    how.reattach_for = env.step_reattach;
    how.on_warning = std::move(on_warning);
    return how;
}

result<int, kube::api_error> exec_script_step(hook_session& s, const step_target& job,
                                              const std::vector<std::string>& argv,
                                              const std::string& name, bool runs_steps,
                                              const std::string& why_not) {
    const heartbeat hb{s.env.heartbeat_period, s.env.heartbeat_deadline};
    if (runs_steps && s.env.step_reattach.count() > 0) {
        hook_log* log = &s.log;
        const resumable_step how =
            step_under_run(s.env, s.env.recv_path + "/podpipe", "/tmp/podpipe-steps/" + name,
                           [log](const std::string& w) { log->warning(w); });
        return exec_step_resumable(s.client, job, how, argv, s.out_fd, s.err_fd, s.stop, hb);
    }
    s.log.debug("the step runs in its exec session (" +
                (s.env.step_reattach.count() == 0 ? std::string("PODPIPE_STEP_REATTACH_SECONDS=0")
                 : runs_steps                     ? std::string("re-attaching is off")
                                                  : why_not) +
                "): a broken session fails it");
    return exec_step(s.client, job, argv, s.out_fd, s.err_fd, s.stop, hb);
}

std::string transfer_summary(const remote::copy_report& o) {
    const auto& st = o.stats;
    const double mb = static_cast<double>(st.content_bytes) / 1e6;
    const double wire = static_cast<double>(st.wire_bytes) / 1e6;
    const double rate = st.seconds > 0 ? mb / st.seconds : 0.0;
    char buf[256];
    std::snprintf(buf, sizeof buf,
                  "%llu files, %.1f MB, %.1f MB on the wire, %.2f s, %.1f MB/s",
                  static_cast<unsigned long long>(st.files), mb, wire, st.seconds, rate);
    std::string line = buf;
    if (st.resumed_at > 0) { // a retry that continued a cut attempt (issue 21)
        std::snprintf(buf, sizeof buf, ", resumed at stream byte %llu (%.1f MB were already there)",
                      static_cast<unsigned long long>(st.resumed_at),
                      static_cast<double>(st.resumed_at) / 1e6);
        line += buf;
    }
    return line;
}

hook_error copy_failed(std::error_code code, const std::string& before,
                       const remote::copy_error& e, const std::string& after) {
    hook_error err(code, std::string());
    err.message = before + e.message + after;
    return err;
}

give_up_fn giving_up(remote::pod_copier& copier) {
    return [&copier](remote::copy_error e) { return copier.give_up(std::move(e)); };
}

result<remote::copy_report, hook_error>
grouped_copy(hook_session& s, const std::string& title, const std::string& what,
             const std::function<remote::copy_result()>& run, const give_up_fn& give_up) {
    s.log.group(title);
    // Dropped connections, an API server that restarts, killed execs: tried again with
    // backoff for PODPIPE_COPY_RETRY_SECONDS; between podpipe ends a retry continues where the
    // receiver stopped (the copier keeps the transfer's id), else the receiver overwrites.
    // Corrupt or unsafe streams are not retried, nor copies whose sender could not read some
    // files, nor what cannot succeed (the API refused, the container cannot run the command).
    const remote::retry_policy policy = s.env.copy_retry_policy();
    hook_log* log = &s.log;
    remote::copy_result out = remote::with_retries(
        run, policy, s.stop,
        [log, &what](const remote::retry_notice& n) {
            log->warning(what + " " + remote::retry_text(n));
        });
    if (!out && give_up)
        out = fail(give_up(std::move(out.error())));
    if (!out) {
        s.log.info(what + " failed: " + out.error().message);
        s.log.end_group();
        return fail(copy_failed(errc::transfer, what + " failed: ", out.error()));
    }
    if (out->stats.problems.count > 0) // PODPIPE_ALLOW_INCOMPLETE=true
        s.log.warning(what + ": " + remote::problems_text(out->stats.problems));
    s.log.info(what + ": " + transfer_summary(*out));
    s.log.end_group();
    return std::move(*out);
}

result<void, hook_error> check_permissions(hook_session& s, bool volume_mode) {
    struct need {
        const char* group;
        const char* resource;
        const char* subresource;
        const char* verb;
    };
    std::vector<need> needs = {
        {"", "pods", "", "get"},        {"", "pods", "", "list"},
        {"", "pods", "", "create"},     {"", "pods", "", "delete"},
        {"", "pods", "exec", "get"},    {"", "pods", "exec", "create"},
        {"", "pods", "log", "get"},     {"", "pods", "log", "list"},
        {"", "pods", "log", "watch"},   {"", "secrets", "", "create"},
        {"", "secrets", "", "delete"},  {"", "secrets", "", "get"},
        {"", "secrets", "", "list"},
    };
    if (volume_mode)
        for (const char* verb : {"get", "list", "create", "delete"})
            needs.push_back({"batch", "jobs", "", verb});
    std::vector<kube::resource_attributes> reviews;
    for (const auto& n : needs) {
        kube::resource_attributes a;
        a.ns = s.ns;
        a.group = n.group;
        a.resource = n.resource;
        a.subresource = n.subresource;
        a.verb = n.verb;
        reviews.push_back(std::move(a));
    }
    // Access reviews store nothing: asking again is harmless.
    auto answers = rest_retried(rest_retry_of(s), "checking the permissions",
                                [&] { return s.client.access_reviews(reviews); });
    if (!answers)
        return fail(answers.error());
    std::string missing;
    for (std::size_t i = 0; i < needs.size() && i < answers->size(); ++i) {
        if ((*answers)[i].allowed)
            continue;
        const auto& n = needs[i];
        missing += std::string(missing.empty() ? "" : ",") + R"({"group":")" + n.group +
                   R"(","verb":")" + n.verb + R"(","resource":")" + n.resource +
                   R"(","subresource":")" + n.subresource + R"("})";
    }
    if (missing.empty())
        return {};
    return fail(make_error(errc::permissions,
                           "The Service account needs the following permissions [" + missing +
                               "] on the pod resource in the '" + s.ns +
                               "' namespace. Please contact your self hosted runner "
                               "administrator."));
}

} // namespace podpipe::hook
