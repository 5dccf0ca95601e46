// batch/v1 Jobs: admission (defaults + validation of a new Job) and the job controller with the
// garbage collector it needs (README "Jobs").
//
// The controller is one thread that reconciles every Job every `tick` (100 ms): it creates the
// Job's pods from spec.template (generateName `<job>-`, the upstream labels
// `batch.kubernetes.io/controller-uid`, `batch.kubernetes.io/job-name`, `controller-uid`,
// `job-name`, and a controlling ownerReference), counts succeeded/failed pods (a pod that vanishes
// while active counts as failed, as upstream), retries failed pods with a short exponential delay
// until `backoffLimit` is exceeded, enforces `activeDeadlineSeconds`, writes status (active,
// ready, terminating, succeeded, failed, startTime, completionTime, conditions
// SuccessCriteriaMet/Complete or FailureTarget/Failed) and Events, and deletes finished Jobs after
// `ttlSecondsAfterFinished`. The garbage collector deletes pods whose owning Job is gone
// (background propagation) and completes foreground deletions.
//
// Thread safety: every public member may be called from any thread.
#pragma once

#include "tools/kubesim/events.hpp"
#include "tools/kubesim/kubelet.hpp"
#include "tools/kubesim/store.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>

#include <boost/json.hpp>

namespace podpipe::kubesim {

/// A field error of Job validation: HTTP 422 with `field: detail`.
struct job_invalid {
    std::string field;
    std::string reason; ///< FieldValueRequired, FieldValueNotSupported, FieldValueInvalid
    std::string detail; ///< "Required value: ..." / "Unsupported value: ..."
};

/// Validates and defaults a Job before it is stored; `uid` is the uid it will be stored with (the
/// selector and template labels name it). Returns the problem when the Job is invalid.
std::optional<job_invalid> admit_job(boost::json::object& job, const std::string& uid);

/// Creates a pod through the API's admission (defaults, validation, scheduling); returns the
/// stored pod or an error message.
using pod_creator = std::function<std::variant<boost::json::object, std::string>(
    const std::string& ns, boost::json::object pod)>;

class job_controller {
public:
    job_controller(object_store& store, kubelet& kubelet, event_recorder& events,
                   pod_creator create_pod);
    ~job_controller();
    job_controller(const job_controller&) = delete;
    job_controller& operator=(const job_controller&) = delete;

    void start();
    void stop();

    /// Upstream retry delay for a failed pod is 10 s doubling up to 6 min; kubesim uses
    /// 500 ms doubling up to 4 s so tests stay short.
    static std::chrono::milliseconds retry_delay(std::int64_t failures);

    /// Orphan deletion: removes this Job's ownerReferences from its pods.
    void orphan_pods(const std::string& ns, const std::string& job_uid);

private:
    struct job_state {
        std::set<std::string> counted; ///< pod uids already counted as succeeded/failed
        std::set<std::string> active;  ///< pod uids seen active (vanishing ones count as failed)
        std::int64_t succeeded = 0, failed = 0;
        std::chrono::steady_clock::time_point next_create{};
        bool loaded = false; ///< counters initialised from the stored status
    };

    void run(std::stop_token stop);
    void reconcile_all();
    void reconcile(const boost::json::object& job, const std::vector<boost::json::object>& pods);
    void collect_garbage(const std::vector<boost::json::object>& jobs,
                         const std::vector<boost::json::object>& pods);

    object_store& store_;
    kubelet& kubelet_;
    event_recorder& events_;
    pod_creator create_pod_;
    std::mutex mu_;
    std::map<std::string, job_state> state_; // by job uid
    std::jthread thread_;
};

} // namespace podpipe::kubesim
