#include "tools/kubesim/jobs.hpp"

#include "tools/kubesim/util.hpp"

#include <algorithm>
#include <condition_variable>

namespace podpipe::kubesim {
namespace {

using clock_type = std::chrono::steady_clock;

const char* const label_controller_uid = "batch.kubernetes.io/controller-uid";
const char* const label_job_name = "batch.kubernetes.io/job-name";

json::object& ensure_obj(json::object& o, std::string_view key) {
    json::value& v = o[key];
    if (!v.is_object())
        v = json::object{};
    return v.as_object();
}

bool has_true_condition(const json::object& job, std::string_view type) {
    if (auto* st = obj_at(job, "status"))
        if (auto* conds = arr_at(*st, "conditions"))
            for (const auto& c : *conds)
                if (c.is_object() && str_at(c.as_object(), "type") == type &&
                    str_at(c.as_object(), "status") == "True")
                    return true;
    return false;
}

std::string condition_time(const json::object& job, std::string_view type) {
    if (auto* st = obj_at(job, "status"))
        if (auto* conds = arr_at(*st, "conditions"))
            for (const auto& c : *conds)
                if (c.is_object() && str_at(c.as_object(), "type") == type)
                    return str_at(c.as_object(), "lastTransitionTime");
    return "";
}

json::object job_condition(const char* type, const char* reason, const char* message) {
    std::string now = now_rfc3339();
    return json::object{{"type", type},         {"status", "True"},
                        {"lastProbeTime", now}, {"lastTransitionTime", now},
                        {"reason", reason},     {"message", message}};
}

bool owned_by(const json::object& pod, const std::string& uid) {
    if (auto* md = obj_at(pod, "metadata"))
        if (auto* refs = arr_at(*md, "ownerReferences"))
            for (const auto& r : *refs)
                if (r.is_object() && str_at(r.as_object(), "uid") == uid)
                    return true;
    return false;
}

/// The uid of the Job controlling `pod` ("" when none).
std::string owning_job(const json::object& pod) {
    if (auto* md = obj_at(pod, "metadata"))
        if (auto* refs = arr_at(*md, "ownerReferences"))
            for (const auto& r : *refs)
                if (r.is_object() && str_at(r.as_object(), "kind") == "Job" &&
                    str_at(r.as_object(), "apiVersion").rfind("batch/", 0) == 0)
                    return str_at(r.as_object(), "uid");
    return "";
}

std::string phase_of(const json::object& pod) {
    if (auto* st = obj_at(pod, "status"))
        return str_at(*st, "phase");
    return "";
}

bool terminating(const json::object& pod) {
    auto* md = obj_at(pod, "metadata");
    return md && md->contains("deletionTimestamp");
}

bool pod_ready(const json::object& pod) {
    if (auto* st = obj_at(pod, "status"))
        if (auto* conds = arr_at(*st, "conditions"))
            for (const auto& c : *conds)
                if (c.is_object() && str_at(c.as_object(), "type") == "Ready")
                    return str_at(c.as_object(), "status") == "True";
    return false;
}

std::int64_t restart_sum(const json::object& pod) {
    std::int64_t n = 0;
    if (auto* st = obj_at(pod, "status"))
        for (const char* key : {"initContainerStatuses", "containerStatuses"})
            if (auto* cs = arr_at(*st, key))
                for (const auto& c : *cs)
                    if (c.is_object())
                        n += int_at(c.as_object(), "restartCount", 0);
    return n;
}

std::string name_of(const json::object& o) {
    if (auto* md = obj_at(o, "metadata"))
        return str_at(*md, "name");
    return "";
}

std::string uid_of(const json::object& o) {
    if (auto* md = obj_at(o, "metadata"))
        return str_at(*md, "uid");
    return "";
}

std::string ns_of(const json::object& o) {
    if (auto* md = obj_at(o, "metadata"))
        return str_at(*md, "namespace");
    return "";
}

} // namespace

std::optional<job_invalid> admit_job(json::object& job, const std::string& uid) {
    // Create every parent first: inserting into a json::object may move its other members, so no
    // reference is held across an insertion into the same object.
    ensure_obj(job, "metadata");
    ensure_obj(job, "spec");
    ensure_obj(job, "status");
    std::string name = str_at(job.at("metadata").as_object(), "name");
    json::object& spec = job.at("spec").as_object();
    if (!obj_at(spec, "template"))
        return job_invalid{"spec.template.spec.containers", "FieldValueRequired", "Required value"};
    {
        json::object& t = spec.at("template").as_object();
        ensure_obj(t, "metadata");
        ensure_obj(t, "spec");
        ensure_obj(t.at("metadata").as_object(), "labels");
    }
    for (const char* key : {"parallelism", "completions", "backoffLimit", "completionMode",
                            "suspend", "podReplacementPolicy", "selector"})
        if (!spec.contains(key))
            spec[key] = nullptr; // placeholders, filled below without further insertions
    json::object& tmpl = spec.at("template").as_object();
    json::object& tmd = tmpl.at("metadata").as_object();
    json::object& pspec = tmpl.at("spec").as_object();
    auto* containers = pspec.if_contains("containers");
    if (!containers || !containers->is_array() || containers->as_array().empty())
        return job_invalid{"spec.template.spec.containers", "FieldValueRequired", "Required value"};
    std::size_t i = 0;
    for (auto& c : containers->as_array()) {
        if (!c.is_object() || str_at(c.as_object(), "name").empty())
            return job_invalid{"spec.template.spec.containers[" + std::to_string(i) + "].name",
                               "FieldValueRequired", "Required value"};
        if (str_at(c.as_object(), "image").empty())
            return job_invalid{"spec.template.spec.containers[" + std::to_string(i) + "].image",
                               "FieldValueRequired", "Required value"};
        ++i;
    }
    // The pod template defaults restartPolicy to Always, which a Job does not accept (upstream).
    std::string policy = str_at(pspec, "restartPolicy", "Always");
    pspec["restartPolicy"] = policy;
    if (policy != "Never" && policy != "OnFailure")
        return job_invalid{"spec.template.spec.restartPolicy", "FieldValueNotSupported",
                           "Unsupported value: \"" + policy +
                               "\": supported values: \"OnFailure\", \"Never\""};
    for (const char* key : {"parallelism", "completions", "backoffLimit", "activeDeadlineSeconds",
                            "ttlSecondsAfterFinished"})
        if (spec.contains(key) && !spec.at(key).is_null() && int_at(spec, key, -1) < 0)
            return job_invalid{std::string("spec.") + key, "FieldValueInvalid",
                               "Invalid value: must be greater than or equal to 0"};
    if (spec.at("parallelism").is_null())
        spec.at("parallelism") = 1;
    if (spec.at("completions").is_null() && int_at(spec, "parallelism", 1) == 1)
        spec.at("completions") = 1;
    if (spec.at("backoffLimit").is_null())
        spec.at("backoffLimit") = 6;
    if (spec.at("completionMode").is_null())
        spec.at("completionMode") = "NonIndexed";
    if (spec.at("suspend").is_null())
        spec.at("suspend") = false;
    if (spec.at("podReplacementPolicy").is_null())
        spec.at("podReplacementPolicy") = "TerminatingOrFailed";
    if (!pspec.contains("terminationGracePeriodSeconds"))
        pspec["terminationGracePeriodSeconds"] = 30;
    if (!pspec.contains("dnsPolicy"))
        pspec["dnsPolicy"] = "ClusterFirst";
    if (!pspec.contains("schedulerName"))
        pspec["schedulerName"] = "default-scheduler";
    if (!pspec.contains("securityContext"))
        pspec["securityContext"] = json::object{};
    // Generated selector and template labels (manualSelector is not supported).
    spec.at("selector") = json::object{{"matchLabels", json::object{{label_controller_uid, uid}}}};
    json::object& tlabels = tmd.at("labels").as_object();
    tlabels[label_controller_uid] = uid;
    tlabels[label_job_name] = name;
    tlabels["controller-uid"] = uid;
    tlabels["job-name"] = name;
    json::object labels = tlabels;
    json::object& md = job.at("metadata").as_object();
    if (!obj_at(md, "labels") || obj_at(md, "labels")->empty())
        md["labels"] = std::move(labels);
    job.at("status") = json::object{};
    if (spec.at("completions").is_null())
        spec.erase("completions"); // last: erasing may move the other members (tmpl, ...)
    return std::nullopt;
}

job_controller::job_controller(object_store& store, kubelet& kubelet, event_recorder& events,
                               pod_creator create_pod)
    : store_(store)
    , kubelet_(kubelet)
    , events_(events)
    , create_pod_(std::move(create_pod)) {}

job_controller::~job_controller() { stop(); }

void job_controller::start() {
    thread_ = std::jthread([this](std::stop_token st) { run(st); });
}

void job_controller::stop() {
    if (thread_.joinable()) {
        thread_.request_stop();
        thread_.join();
    }
}

std::chrono::milliseconds job_controller::retry_delay(std::int64_t failures) {
    if (failures <= 0)
        return std::chrono::milliseconds(0);
    std::int64_t ms = 500;
    for (std::int64_t i = 1; i < failures && ms < 4000; ++i)
        ms *= 2;
    return std::chrono::milliseconds(std::min<std::int64_t>(ms, 4000));
}

void job_controller::run(std::stop_token stop) {
    std::mutex m;
    std::condition_variable_any cv;
    while (!stop.stop_requested()) {
        reconcile_all();
        std::unique_lock lk(m);
        cv.wait_for(lk, stop, std::chrono::milliseconds(100), [] { return false; });
    }
}

void job_controller::reconcile_all() {
    std::uint64_t rv = 0;
    auto jobs = store_.list("jobs", "", rv);
    auto pods = store_.list("pods", "", rv);
    collect_garbage(jobs, pods);
    std::set<std::string> live;
    for (const auto& j : jobs) {
        live.insert(uid_of(j));
        auto* md = obj_at(j, "metadata");
        if (md && md->contains("deletionTimestamp"))
            continue;
        std::vector<json::object> owned;
        for (const auto& p : pods)
            if (ns_of(p) == ns_of(j) && owned_by(p, uid_of(j)))
                owned.push_back(p);
        reconcile(j, owned);
    }
    std::lock_guard lk(mu_);
    for (auto it = state_.begin(); it != state_.end();)
        it = live.count(it->first) ? std::next(it) : state_.erase(it);
}

void job_controller::collect_garbage(const std::vector<json::object>& jobs,
                                     const std::vector<json::object>& pods) {
    std::set<std::string> job_uids;
    for (const auto& j : jobs)
        job_uids.insert(uid_of(j));
    // Background propagation (and TTL): pods whose owning Job is gone are deleted.
    for (const auto& p : pods) {
        std::string owner = owning_job(p);
        if (!owner.empty() && !job_uids.count(owner) && !terminating(p))
            kubelet_.delete_pod(ns_of(p), name_of(p), std::nullopt);
    }
    // Foreground propagation: delete the dependents, then the Job once they are gone.
    for (const auto& j : jobs) {
        auto* md = obj_at(j, "metadata");
        if (!md || !md->contains("deletionTimestamp"))
            continue;
        bool foreground = false;
        if (auto* fin = arr_at(*md, "finalizers"))
            for (const auto& f : *fin)
                foreground =
                    foreground || (f.is_string() && f.get_string() == "foregroundDeletion");
        if (!foreground)
            continue;
        bool any = false;
        for (const auto& p : pods) {
            if (ns_of(p) != ns_of(j) || !owned_by(p, uid_of(j)))
                continue;
            any = true;
            if (!terminating(p))
                kubelet_.delete_pod(ns_of(p), name_of(p), std::nullopt);
        }
        if (!any)
            store_.remove("jobs", ns_of(j), name_of(j), uid_of(j));
    }
}

void job_controller::orphan_pods(const std::string& ns, const std::string& job_uid) {
    std::uint64_t rv = 0;
    for (const auto& p : store_.list("pods", ns, rv)) {
        if (!owned_by(p, job_uid))
            continue;
        store_.update("pods", ns, name_of(p), uid_of(p), [&](json::object& o) {
            auto& md = o["metadata"].as_object();
            json::array kept;
            if (auto* refs = arr_at(md, "ownerReferences"))
                for (const auto& r : *refs)
                    if (!(r.is_object() && str_at(r.as_object(), "uid") == job_uid))
                        kept.push_back(r);
            if (kept.empty())
                md.erase("ownerReferences");
            else
                md["ownerReferences"] = kept;
        });
    }
}

void job_controller::reconcile(const json::object& job, const std::vector<json::object>& pods) {
    const std::string ns = ns_of(job), name = name_of(job), uid = uid_of(job);
    const json::object& spec = job.at("spec").as_object();
    const json::object empty;
    const json::object* cur = obj_at(job, "status");
    if (!cur)
        cur = &empty;
    bool complete = has_true_condition(job, "Complete");
    bool failed_cond = has_true_condition(job, "Failed");
    auto now = std::chrono::system_clock::now();

    // TTL after finished: delete the Job (background: the garbage collector takes its pods).
    if ((complete || failed_cond) && spec.contains("ttlSecondsAfterFinished")) {
        std::string finished =
            complete ? str_at(*cur, "completionTime") : condition_time(job, "Failed");
        if (!finished.empty() &&
            now >= parse_rfc3339(finished) +
                       std::chrono::seconds(int_at(spec, "ttlSecondsAfterFinished", 0))) {
            store_.remove("jobs", ns, name, uid);
            return;
        }
    }

    std::unique_lock lk(mu_);
    job_state& s = state_[uid];
    if (!s.loaded) {
        s.succeeded = int_at(*cur, "succeeded", 0);
        s.failed = int_at(*cur, "failed", 0);
        s.loaded = true;
    }
    const std::int64_t failed_before = s.failed;
    // Count pods.
    std::vector<const json::object*> active;
    std::int64_t n_terminating = 0, ready = 0;
    std::set<std::string> seen_active;
    for (const auto& p : pods) {
        std::string puid = uid_of(p);
        std::string phase = phase_of(p);
        if (phase == "Succeeded" || phase == "Failed") {
            if (s.counted.insert(puid).second)
                (phase == "Succeeded" ? s.succeeded : s.failed)++;
            continue;
        }
        if (terminating(p)) {
            ++n_terminating;
            if (s.counted.insert(puid).second)
                ++s.failed; // a pod deleted while active counts as failed
            continue;
        }
        active.push_back(&p);
        seen_active.insert(puid);
        if (pod_ready(p))
            ++ready;
    }
    for (const auto& a : s.active)
        if (!seen_active.count(a) && s.counted.insert(a).second)
            ++s.failed; // vanished while active
    s.active = seen_active;
    if (s.failed > failed_before) // pace the replacement like the upstream pod-failure backoff
        s.next_create = clock_type::now() + retry_delay(s.failed);

    json::object st = *cur;
    json::array conds;
    if (auto* c = arr_at(*cur, "conditions"))
        conds = *c;
    if (!st.contains("startTime"))
        st["startTime"] = now_rfc3339();
    const std::int64_t backoff_limit = int_at(spec, "backoffLimit", 6);
    const bool has_completions = spec.contains("completions");
    const std::int64_t completions = int_at(spec, "completions", 1);
    const std::int64_t parallelism = int_at(spec, "parallelism", 1);
    std::vector<std::pair<std::string, std::string>> to_delete; // (name, why)
    std::vector<std::pair<std::string, std::string>> warn_events, normal_events;
    bool create_failed = false;

    if (!complete && !failed_cond) {
        bool has_failure_target = false;
        for (const auto& c : conds)
            has_failure_target =
                has_failure_target || str_at(c.as_object(), "type") == "FailureTarget";
        const char* fail_reason = nullptr;
        const char* fail_message = nullptr;
        if (!has_failure_target) {
            std::int64_t restarts = 0;
            if (str_at(obj_at(spec, "template") ? *obj_at(*obj_at(spec, "template"), "spec")
                                                : empty,
                       "restartPolicy") == "OnFailure")
                for (const auto* p : active)
                    restarts += restart_sum(*p);
            bool past_on_failure = backoff_limit == 0 ? restarts > 0 : restarts >= backoff_limit;
            if (s.failed > backoff_limit || (restarts > 0 && past_on_failure)) {
                fail_reason = "BackoffLimitExceeded";
                fail_message = "Job has reached the specified backoff limit";
            } else if (spec.contains("activeDeadlineSeconds") &&
                       now >= parse_rfc3339(str_at(st, "startTime")) +
                                  std::chrono::seconds(int_at(spec, "activeDeadlineSeconds", 0))) {
                fail_reason = "DeadlineExceeded";
                fail_message = "Job was active longer than specified deadline";
            }
            if (fail_reason) {
                conds.push_back(job_condition("FailureTarget", fail_reason, fail_message));
                warn_events.emplace_back(fail_reason, fail_message);
                has_failure_target = true;
            }
        }
        bool succeeded_enough = has_completions ? s.succeeded >= completions : s.succeeded > 0;
        if (has_failure_target) {
            for (const auto* p : active)
                to_delete.emplace_back(name_of(*p), "");
            if (active.empty() && n_terminating == 0) {
                json::object ft;
                for (const auto& c : conds)
                    if (str_at(c.as_object(), "type") == "FailureTarget")
                        ft = c.as_object();
                json::object f = job_condition("Failed", "", "");
                f["reason"] = ft["reason"];
                f["message"] = ft["message"];
                conds.push_back(f);
                failed_cond = true;
            }
        } else if (succeeded_enough) {
            for (const auto* p : active)
                to_delete.emplace_back(name_of(*p), "");
            bool has_scm = false;
            for (const auto& c : conds)
                has_scm = has_scm || str_at(c.as_object(), "type") == "SuccessCriteriaMet";
            if (!has_scm)
                conds.push_back(job_condition("SuccessCriteriaMet", "CompletionsReached",
                                              "Reached expected number of succeeded pods"));
            if (active.empty() && n_terminating == 0) {
                conds.push_back(job_condition("Complete", "CompletionsReached",
                                              "Reached expected number of succeeded pods"));
                st["completionTime"] = now_rfc3339();
                complete = true;
                normal_events.emplace_back("Completed", "Job completed");
            }
        } else if (!(spec.contains("suspend") && spec.at("suspend").is_bool() &&
                     spec.at("suspend").get_bool())) {
            std::int64_t want = parallelism;
            if (has_completions)
                want = std::min(want, completions - s.succeeded);
            std::int64_t missing = want - static_cast<std::int64_t>(active.size());
            if (missing > 0 && clock_type::now() >= s.next_create) {
                const json::object& tmpl = spec.at("template").as_object();
                lk.unlock(); // pod creation runs admission and scheduling
                for (std::int64_t i = 0; i < missing; ++i) {
                    json::object pmd;
                    if (auto* tmd = obj_at(tmpl, "metadata"))
                        pmd = *tmd;
                    pmd.erase("name");
                    pmd["generateName"] = name + "-";
                    pmd["ownerReferences"] =
                        json::array{json::object{{"apiVersion", "batch/v1"},
                                                 {"kind", "Job"},
                                                 {"name", name},
                                                 {"uid", uid},
                                                 {"controller", true},
                                                 {"blockOwnerDeletion", true}}};
                    json::object pod{{"apiVersion", "v1"},
                                     {"kind", "Pod"},
                                     {"metadata", pmd},
                                     {"spec", tmpl.at("spec")}};
                    auto created = create_pod_(ns, std::move(pod));
                    if (auto* obj = std::get_if<json::object>(&created)) {
                        normal_events.emplace_back("SuccessfulCreate",
                                                   "Created pod: " + name_of(*obj));
                        lk.lock();
                        s.active.insert(uid_of(*obj));
                        lk.unlock();
                    } else {
                        warn_events.emplace_back(
                            "FailedCreate", "Error creating: " + std::get<std::string>(created));
                        create_failed = true;
                        break;
                    }
                }
                lk.lock();
            }
        }
    }
    if (!lk.owns_lock())
        lk.lock();
    if (create_failed)
        s.next_create = clock_type::now() + std::chrono::seconds(1);
    // Status, omitting zero counters as upstream does (omitempty).
    std::int64_t n_active =
        static_cast<std::int64_t>(s.active.size()) - static_cast<std::int64_t>(to_delete.size());
    auto set_count = [&](const char* key, std::int64_t v) {
        if (v > 0)
            st[key] = v;
        else
            st.erase(key);
    };
    set_count("active", complete || failed_cond ? 0 : n_active);
    set_count("succeeded", s.succeeded);
    set_count("failed", s.failed);
    st["ready"] = complete || failed_cond ? 0 : ready;
    st["terminating"] = n_terminating + static_cast<std::int64_t>(to_delete.size());
    st["uncountedTerminatedPods"] = json::object{};
    if (!conds.empty())
        st["conditions"] = conds;
    lk.unlock();

    if (json::value(st) != json::value(*cur))
        store_.update("jobs", ns, name, uid, [&](json::object& o) { o["status"] = st; });
    for (const auto& [pod_name, why] : to_delete) {
        if (kubelet_.delete_pod(ns, pod_name, std::nullopt))
            normal_events.emplace_back("SuccessfulDelete", "Deleted pod: " + pod_name);
    }
    auto io = involved(job);
    for (const auto& [reason, msg] : normal_events)
        events_.record(io, "Normal", reason, msg, "job-controller");
    for (const auto& [reason, msg] : warn_events)
        events_.record(io, "Warning", reason, msg, "job-controller");
}

} // namespace podpipe::kubesim
