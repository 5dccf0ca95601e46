// pod_copier: moves a directory tree into a pod, out of one, or between two, through exec
// sessions and the engine (spec/kube-api.md §2; tools/podpipe/README.md "How cp works").
// `podpipe cp`, `podpipe bench` and podpipe-hook use it.
#pragma once

#include "engine/common/result.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/stats.hpp"
#include "remote/protocol.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::kube {
class api_client;
} // namespace podpipe::kube

namespace podpipe::remote {

/// A directory inside a pod's container.
struct pod_dir {
    std::string ns;        ///< empty: the client's default namespace
    std::string pod;
    std::string container; ///< empty: the pod's default container
    std::string path;
};

/// One pod end of a copy, after probe().
struct pod_end {
    pod_dir loc;             ///< ns filled in
    /// The in-pod podpipe answered `hello` in this protocol's major version (protocol.hpp);
    /// the rest is what its hello says.
    bool has_binary = false;
    bool has_acks = false;    ///< ... and its recv acknowledges (see pipeline/acks.hpp)
    bool has_send_acks = false; ///< ... and its send reads acknowledgements on stdin
    /// ... and its send stops when stdin ends (--watch-stdin), send/recv take --stall-timeout
    bool has_watch_stdin = false;
    /// ... and its `recv --report` ends with a failure line when it fails
    bool has_failure_report = false;
    /// ... and it has `podpipe run` (a step that outlives its session, step_spool.hpp)
    bool has_step_run = false;
    /// ... and its recv keeps a ledger a later recv continues (--resumable, --resume)
    bool has_recv_resume = false;
    /// ... and its send starts at a receiver's resume point (--resume-from)
    bool has_send_resume = false;
    bool half_close = true;   ///< the exec protocol can deliver EOF to stdin (v5)
    std::string protocol;

    std::string name() const {
        return loc.ns + "/" + loc.pod + (loc.container.empty() ? "" : ":" + loc.container);
    }
};

struct copy_options {
    int level = 1;                 ///< 0..12 or pipeline::auto_level (local sender)
    std::string level_text = "1";  ///< the same, for the in-pod `podpipe send --level`
    std::size_t chunk_bytes = 1 << 20;
    std::string chunk_text = "1M"; ///< the same, for `podpipe send --chunk-size`
    unsigned threads = 0;          ///< local (de)compression threads; 0 = cores
    /// `--threads` of the in-pod podpipe; 0 = its own default (the pod's usable cores).
    unsigned pod_threads = 0;
    std::size_t memory_bytes = 256u << 20;
    std::vector<std::string> excludes; ///< applied by whichever side can filter
    /// local_to_pod only: a selection and deletions (pipeline::send_options::only, ::deletions).
    /// A podpipe receiver applies the deletions before extracting and its verified manifest
    /// covers them; a pod's tar ignores them (the caller deletes some other way).
    std::optional<std::vector<std::string>> only;
    bool only_descend = true;
    std::vector<std::string> deletions;
    bool verify = true;            ///< require the manifest where podpipe receives podpipe
    /// A copy whose sender reported entries it could not send as they are on its disk
    /// (transfer_stats::problems) succeeds with warnings instead of failing.
    bool allow_incomplete = false;
    std::string pod_binary = "/__e/podpipe/podpipe"; ///< "none": always the pod's tar
    bool offer_v5 = true;          ///< false: v4.channel.k8s.io only
    /// A repeat of a cut copy continues it where both ends can (pod_copier::local_to_pod);
    /// false: every attempt starts over and no ledger is kept (`cp --no-resume`).
    bool resumable = true;
    /// A copy whose stream moves no byte for this long fails (exit 1) and its sessions are
    /// closed; also given to the in-pod podpipe (its own reads and writes). 0: no limit.
    std::chrono::milliseconds stall_timeout{60'000};
    pipeline::live_progress* progress = nullptr; ///< updated while a copy runs
    std::function<void(const std::string&)> on_info; ///< how each pod is reached
    /// Why a pod's podpipe is not used (it did not answer `hello` as this protocol expects);
    /// unset: said through on_info.
    std::function<void(const std::string&)> on_warning;
};

/// A copy that went through.
struct copy_report {
    const char* verb = "copied"; ///< "copied", or "relayed" (pod to pod)
    std::string where;           ///< "SRC -> DST"
    pipeline::transfer_stats stats; ///< seconds: until the receiver confirmed
    /// The receiving pod's report, when it ran `podpipe recv --report`.
    std::optional<protocol::report> remote;
};

/// A probe or copy that failed: what a caller prints, the exit status it returns, and what it
/// needs to decide whether a second attempt could help.
struct copy_error {
    pipeline::exit_status status = pipeline::exit_failure;
    /// One line (and the sender's problem lines below it) naming the pod, the path and the
    /// pod-side stderr, or the local side's reason.
    std::string message;
    /// Entries the sender could not send as they are on its disk, when that is why the copy
    /// failed (copy_options::allow_incomplete unset); count 0 otherwise. Reading them again
    /// would not help.
    tar::sender_problems problems;
    /// A repeat cannot succeed: the API refused (404, 403, 400: pod or container gone, not
    /// running, no permission) or the runtime could not run the command in the container.
    /// Callers that retry a failed copy (the hook, once) do not retry these.
    bool permanent = false;

    const std::string& what() const { return message; }
};

/// What every pod_copier copy returns.
using copy_result = result<copy_report, copy_error>;

/// "N entries were not copied as they are on the sender's disk" and the sender's lines, one
/// per line below it: for errors and warnings about a copy with problems.
std::string problems_text(const tar::sender_problems& p);

class pod_copier {
public:
    pod_copier(kube::api_client& client, copy_options opt, std::stop_token stop = {});
    ~pod_copier();
    pod_copier(const pod_copier&) = delete;
    pod_copier& operator=(const pod_copier&) = delete;

    /// One exec of `pod_binary hello` (and of `true` when that fails to start): whether the
    /// pod runs podpipe and what it can do, which exec protocol it speaks, whether commands can
    /// run at all. A binary that does not answer a hello of this protocol is not used (the
    /// pod's tar is), with a warning that says why.
    /// A failure is exit_interrupted when the copier's stop ended it, else exit_failure.
    result<pod_end, copy_error> probe(const pod_dir& where);

    /// A copy that fails after part of it arrived and is asked for again (the same source and
    /// target, on this copier: what with_retries does) continues where the receiver stopped
    /// when both ends are podpipe with resume (a ledger in the target, engine/pipeline/
    /// ledger.hpp); a source that changed before that point is copied again from the start,
    /// with a warning. Otherwise a repeat starts over.
    copy_result local_to_pod(const std::string& src, const pod_end& dst);
    copy_result pod_to_local(const pod_end& src, const std::string& dst);
    copy_result pod_to_pod(const pod_end& src, const pod_end& dst);

    /// The copy failed for good (retries ran out, a failure no repeat mends, a stop): `e`, and
    /// when a receiver had started writing the target, that the target holds a partial copy
    /// (naming pod and path). The transfer's resume ledger in the target is removed (best
    /// effort: in a pod by `podpipe recv --abandon`, locally directly; the message says when
    /// it stays): nothing continues it. Call it once, after the last attempt (with_retries()).
    copy_error give_up(copy_error e);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace podpipe::remote
