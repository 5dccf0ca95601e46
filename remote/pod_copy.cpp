#include "remote/pod_copy.hpp"

#include "engine/pipeline/acks.hpp"
#include "engine/pipeline/errors.hpp"
#include "engine/pipeline/ledger.hpp"
#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"
#include "kube/client.hpp"
#include "remote/protocol_parse.hpp"
#include "remote/retry.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

namespace podpipe::remote {

// The Kubernetes client this copier drives (exec sessions, errors).
using namespace kube;

namespace {

using clock_type = std::chrono::steady_clock;

/// Keeps the first `limit` bytes written (the in-pod receiver's final line, a hello).
class capture_sink final : public pipeline::byte_sink {
public:
    explicit capture_sink(std::size_t limit) : limit_(limit) {}
    result<void> write(std::span<const std::byte> bytes) override {
        const std::size_t n = std::min(bytes.size(), limit_ - std::min(limit_, text.size()));
        text.append(reinterpret_cast<const char*>(bytes.data()), n);
        return {};
    }
    std::string text;

private:
    std::size_t limit_;
};

/// The first line of a resuming receiver's stdout, its `resume` offer, taken off before the
/// rest (acknowledgements, the report) goes on to `rest`. Any other first line goes on too.
class offer_tap final : public pipeline::byte_sink {
public:
    offer_tap(bool expect, pipeline::byte_sink& rest) : rest_(rest), waiting_(expect) {}

    result<void> write(std::span<const std::byte> bytes) override {
        std::string_view in(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        {
            std::lock_guard lock(mutex_);
            if (waiting_) {
                const std::size_t nl = in.find('\n');
                line_.append(in.substr(0, nl));
                if (nl == std::string_view::npos && line_.size() < 4096)
                    return {};
                waiting_ = false;
                if (auto r = protocol::parse_resume(line_))
                    offer_ = std::move(*r);
                else
                    pass_line_ = true;
                in = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);
            }
        }
        changed_.notify_all();
        if (pass_line_) {
            pass_line_ = false;
            line_ += '\n';
            PODPIPE_TRY(rest_.write(std::as_bytes(std::span(line_))));
        }
        return rest_.write(std::as_bytes(std::span(in)));
    }

    result<void> finish() override {
        {
            std::lock_guard lock(mutex_);
            waiting_ = false;
        }
        changed_.notify_all();
        return rest_.finish();
    }

    /// The offer, once the first line came; nullopt when it was something else, the output
    /// ended first, or `timeout` passed.
    std::optional<protocol::resume> wait(std::chrono::milliseconds timeout, std::stop_token stop) {
        std::unique_lock lock(mutex_);
        changed_.wait_for(lock, stop, timeout, [&] { return !waiting_; });
        return offer_;
    }

private:
    pipeline::byte_sink& rest_;
    std::mutex mutex_;
    std::condition_variable_any changed_;
    bool waiting_;
    bool pass_line_ = false;
    std::string line_;
    std::optional<protocol::resume> offer_;
};

/// Reads a receiving pod's stdout to the exit status on its own thread: the report, with the
/// acknowledgement lines of `recv --acks` split off into acks() (closed at the end), and with
/// `expect_offer` the `resume` line of `recv --resume` first (offer()).
class receiver_reader {
public:
    explicit receiver_reader(exec_session& s, bool expect_offer = false)
        : tap_(expect_offer, report_)
        , thread_([this, &s] {
              code_ = s.wait(&split_);
              (void)split_.finish();
              acks_.close();
              done_.store(true, std::memory_order_release);
          }) {}
    pipeline::ack_counter& acks() { return acks_; }
    std::optional<protocol::resume> offer(std::chrono::milliseconds timeout,
                                          std::stop_token stop) {
        return tap_.wait(timeout, std::move(stop));
    }
    /// Whether the session ended (its code is known), without waiting.
    bool done() const { return done_.load(std::memory_order_acquire); }
    void join() { thread_.join(); }
    /// After join(): the session's outcome, and the report.
    const std::optional<result<int, api_error>>& code() const { return code_; }
    const std::string& report() const { return report_.text; }

private:
    capture_sink report_{protocol::max_message_bytes + 1}; // longer: refused by the parser
    offer_tap tap_;
    pipeline::ack_counter acks_;
    pipeline::ack_splitter split_{acks_, tap_};
    std::optional<result<int, api_error>> code_;
    std::atomic<bool> done_{false};
    std::jthread thread_; ///< last: starts once the members above exist
};

/// Counts what goes through, for progress and stats of the pod-to-pod relay.
class counting_sink final : public pipeline::byte_sink {
public:
    counting_sink(pipeline::byte_sink& inner, pipeline::live_progress& progress)
        : inner_(inner)
        , progress_(progress) {}
    result<void> write(std::span<const std::byte> bytes) override {
        progress_.wire_bytes.fetch_add(bytes.size(), std::memory_order_relaxed);
        return inner_.write(bytes);
    }
    result<void> finish() override { return inner_.finish(); }

private:
    pipeline::byte_sink& inner_;
    pipeline::live_progress& progress_;
};


/// Ends a copy's exec sessions when the caller stops the copy (a signal: blocked reads, writes
/// and waits on any thread wake at once), and, while the stream runs, when no byte moved
/// through any of them for `stall` (0: never; then stalled() says so). Aborting a session
/// closes the pod command's stdin, which is how the pod side learns to stop (send_command).
class session_watch {
public:
    session_watch(std::stop_token stop, std::vector<exec_session*> sessions,
                  std::chrono::milliseconds stall)
        : sessions_(std::move(sessions))
        , on_stop_(std::move(stop), [this] { abort_all(); }) {
        if (stall.count() > 0)
            thread_ = std::jthread([this, stall](std::stop_token done) { watch(done, stall); });
    }
    /// The stream is over (what is left is waiting for the pod's status): no stall check.
    void stream_done() {
        thread_.request_stop();
        if (thread_.joinable())
            thread_.join();
    }
    bool stalled() const { return stalled_.load(std::memory_order_acquire); }

private:
    void abort_all() noexcept {
        for (exec_session* s : sessions_)
            s->abort();
    }

    std::uint64_t moved() const {
        std::uint64_t n = 0;
        for (const exec_session* s : sessions_) {
            const auto st = s->stats();
            n += st.bytes_sent + st.bytes_received;
        }
        return n;
    }

    void watch(std::stop_token done, std::chrono::milliseconds stall) {
        std::mutex m;
        std::condition_variable_any never_notified;
        std::unique_lock lock(m);
        std::uint64_t last = moved();
        auto last_change = clock_type::now();
        const auto slice = std::min<std::chrono::milliseconds>(stall, std::chrono::seconds(1));
        while (!never_notified.wait_for(lock, done, slice, [] { return false; }) &&
               !done.stop_requested()) {
            if (const std::uint64_t now = moved(); now != last) {
                last = now;
                last_change = clock_type::now();
            } else if (clock_type::now() - last_change >= stall) {
                stalled_.store(true, std::memory_order_release);
                abort_all();
                return;
            }
        }
    }

    std::vector<exec_session*> sessions_;
    std::atomic<bool> stalled_{false};
    std::stop_callback<std::function<void()>> on_stop_;
    std::jthread thread_; ///< last: joined first
};

} // namespace

std::string problems_text(const tar::sender_problems& p) {
    std::string s = std::to_string(p.count) +
                    (p.count == 1 ? " entry was" : " entries were") +
                    " not copied as they are on the sender's disk";
    if (const std::string lines = tar::problem_list(p); !lines.empty())
        s += "\n" + lines;
    return s;
}

namespace {

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return s;
}

} // namespace

struct pod_copier::impl {
    impl(api_client& client, copy_options opt, std::stop_token stop)
        : opt_(std::move(opt))
        , client_(client)
        , stop_(std::move(stop)) {}

    exec_session_options session_options() const {
        exec_session_options o;
        o.offer_v5 = opt_.offer_v5;
        o.stop = stop_; // a signal while a session opens ends the opening too
        return o;
    }

    result<std::unique_ptr<exec_session>, api_error>
    open(const pod_end& end, std::vector<std::string> command, bool with_stdin) {
        exec_options o;
        o.ns = end.loc.ns;
        o.pod = end.loc.pod;
        o.container = end.loc.container;
        o.command = std::move(command);
        o.use_stdin = with_stdin;
        return client_.exec(o, session_options());
    }

    // Finds out whether the pod has our binary and which exec protocol it speaks, in one exec.
    result<pod_end, copy_error> probe(const pod_dir& loc) {
        pod_end end;
        end.loc = loc;
        if (end.loc.ns.empty())
            end.loc.ns = client_.default_namespace();
        const bool look = opt_.pod_binary != "none";
        std::vector<std::string> cmd = look ? std::vector<std::string>{opt_.pod_binary, "hello"}
                                            : std::vector<std::string>{"true"};
        auto s = open(end, cmd, false);
        if (!s)
            return open_failed(end, s.error());
        end.protocol = (*s)->protocol();
        end.half_close = (*s)->can_half_close_stdin();
        capture_sink out(protocol::max_message_bytes + 1);
        auto code = [&] {
            session_watch watch(stop_, {s->get()}, {});
            return (*s)->wait(&out);
        }();
        if (!code) {
            if (look && code.error().is(errc::exec_failed) && !stop_.stop_requested()) {
                // The runtime could not start it: either the binary is not there, or nothing
                // can run in this container (not running, gone). `true` tells which.
                auto t = open(end, {"true"}, false);
                if (!t)
                    return open_failed(end, t.error());
                session_watch watch(stop_, {t->get()}, {});
                auto tc = (*t)->wait();
                if (!tc && may_run_again(end))
                    return failed(stopped_or(pipeline::exit_failure),
                                  "pod " + end.name() + ": cannot run commands now: " +
                                      tc.error().what());
                if (!tc)
                    return permanent(stopped_or(pipeline::exit_failure),
                                     "pod " + end.name() + ": cannot run commands: " +
                                         tc.error().what());
                if (*tc != 0)
                    return failed(pipeline::exit_failure,
                                  "pod " + end.name() + ": `true` exited with " +
                                      std::to_string(*tc));
                say_which(end); // the binary is not there (what containerd reports for it)
                return end;
            }
            return failed(stopped_or(pipeline::exit_failure),
                          "pod " + end.name() + ": " + code.error().what());
        }
        if (look) {
            if (*code != 0) {
                // An older podpipe (no `hello`: a usage error), or something else at that path.
                std::string why = "`" + opt_.pod_binary + " hello` exited with " +
                                  std::to_string(*code);
                if (const std::string tail = trim((*s)->stderr_tail()); !tail.empty())
                    why += " (" + tail.substr(0, 300) + ")";
                warn(end, why + "; an older podpipe?");
            } else if (auto h = protocol::parse_hello(out.text); !h) {
                warn(end, h.error().what());
            } else {
                end.has_binary = true;
                end.has_acks = h->caps.recv_acks && h->acks_version == protocol::acks_version;
                end.has_send_acks = h->caps.send_acks && h->acks_version == protocol::acks_version;
                end.has_watch_stdin = h->caps.send_watch_stdin;
                end.has_failure_report = h->caps.recv_failure_report;
                end.has_step_run = h->caps.step_run;
                end.has_recv_resume = h->caps.recv_resume;
                end.has_send_resume = h->caps.send_resume;
            }
        }
        else if (*code != 0)
            return failed(stopped_or(pipeline::exit_failure),
                          "pod " + end.name() + ": `true` exited with " + std::to_string(*code));
        say_which(end);
        return end;
    }

    /// The probe's conclusion, for -v and the hook's debug log.
    void say_which(const pod_end& end) const {
        if (opt_.on_info)
            opt_.on_info("pod " + end.name() + ": " +
                         (end.has_binary ? "in-pod " + opt_.pod_binary
                                         : std::string("no podpipe in the pod: using its tar")) +
                         ", exec " + end.protocol);
    }

    /// The pod has a binary at pod_binary that does not speak this protocol: it is not used.
    void warn(const pod_end& end, const std::string& why) const {
        const std::string line = "pod " + end.name() + ": not using " + opt_.pod_binary + ": " +
                                 why + "; using the pod's tar";
        if (opt_.on_warning)
            opt_.on_warning(line);
        else if (opt_.on_info)
            opt_.on_info(line);
    }

    /// `acks`: the caller splits acknowledgements off the pod's stdout (local -> pod with auto).
    /// `resumable`: the transfer's id (a ledger in the target); `resume`: continue it.
    std::vector<std::string> recv_command(const pod_end& end, bool verify, bool acks,
                                          const std::string* resumable = nullptr,
                                          bool resume = false) const {
        if (end.has_binary) {
            std::vector<std::string> c{opt_.pod_binary, "recv", "--report"};
            if (!verify)
                c.push_back("--no-verify");
            if (acks)
                c.push_back("--acks");
            if (resumable != nullptr) {
                c.push_back("--resumable");
                c.push_back(*resumable);
                if (resume)
                    c.push_back("--resume");
            }
            add_stall_timeout(end, c);
            add_threads(c);
            for (const auto& e : opt_.excludes) { // for senders that cannot filter (a pod's tar)
                c.push_back("--exclude");
                c.push_back(e);
            }
            c.push_back(end.loc.path);
            return c;
        }
        // GNU and busybox tar: -o on extraction = do not restore owners (as `podpipe recv`).
        // The stream's root entry "./" is left alone, as `podpipe recv` ignores it: GNU tar
        // would restore its mode and mtime on the target, which a non-root user cannot do on
        // a directory it does not own (an emptyDir or volume root under Pod Security
        // restricted), and exit 2. --no-recursion keeps the exclusion to "." itself.
        // BusyBox has no --exclude and leaves an existing directory's mode alone.
        return {"sh", "-c",
                "mkdir -p -- \"$1\" && case $(tar --version 2>/dev/null) in *GNU*) "
                "exec tar -xzof - --no-recursion --exclude=. -C \"$1\";; esac; "
                "exec tar -xzof - -C \"$1\"",
                "podpipe-recv", end.loc.path};
    }

    /// `acks`: the caller acknowledges on the pod's stdin (pod -> local with auto).
    /// `from`: where the receiver resumes (`send --resume-from`).
    std::vector<std::string> send_command(const pod_end& end, bool acks,
                                          const protocol::resume* from = nullptr) const {
        if (end.has_binary) {
            std::vector<std::string> c{opt_.pod_binary, "send", "--level", opt_.level_text,
                                       "--chunk-size", opt_.chunk_text};
            if (acks)
                c.push_back("--acks");
            if (from != nullptr) {
                c.push_back("--resume-from");
                c.push_back(protocol::resume_word(*from));
            }
            if (end.has_watch_stdin)
                c.push_back("--watch-stdin");
            add_stall_timeout(end, c);
            add_threads(c);
            for (const auto& e : opt_.excludes) {
                c.push_back("--exclude");
                c.push_back(e);
            }
            c.push_back(end.loc.path);
            return c;
        }
        // busybox tar has no --exclude: the receiver filters instead (recv_options::excludes).
        // A kubelet does not stop an exec's command when its session goes, it closes the
        // command's stdin: a watcher reading stdin stops tar (and its gzip child: the exec'd
        // shell leads the process group; without a group of its own, tar alone) at that end.
        // The shell waits for tar and ends the watcher on success. Stdin is saved on fd 3 first:
        // a background list starts with /dev/null as stdin.
        return {"sh", "-c",
                "cd -- \"$1\" || exit 1; exec 3<&0; tar -czf - . & t=$!; "
                "{ while read -r _; do :; done; kill -TERM -$$ || kill -TERM $t; } "
                "<&3 >/dev/null 2>&1 & w=$!; exec 3<&-; wait $t; s=$?; kill $w 2>/dev/null; "
                "exit $s",
                "podpipe-send", end.loc.path};
    }

    /// Whether send_command's process reads stdin: acknowledgements, or the end of the session
    /// (the in-pod podpipe with --watch-stdin, the pod's tar through its watcher).
    static bool send_reads_stdin(const pod_end& end, bool acks) {
        return acks || end.has_watch_stdin || !end.has_binary;
    }

    void add_threads(std::vector<std::string>& c) const {
        if (opt_.pod_threads == 0) // every in-pod podpipe takes --threads
            return;
        c.push_back("--threads");
        c.push_back(std::to_string(opt_.pod_threads));
    }

    void add_stall_timeout(const pod_end& end, std::vector<std::string>& c) const {
        if (!end.has_watch_stdin) // older in-pod binaries do not take it
            return;
        c.push_back("--stall-timeout");
        c.push_back(std::to_string(opt_.stall_timeout.count()) + "ms");
    }

    /// A resuming receiver that gave no `resume` line (it failed first, or said something
    /// else, or nothing in time): its session is ended, and its own failure is the error when
    /// it has one.
    failure<copy_error> no_offer(const pod_end& dst, exec_session& s, receiver_reader& reader) {
        s.abort();
        reader.join();
        const auto& code = reader.code();
        if (code && *code && **code != 0)
            return remote_failure(dst, "podpipe recv into", **code, s.stderr_tail(), false,
                                  reader.report());
        return failed(stopped_or(pipeline::exit_failure),
                      "pod " + dst.name() + ": podpipe recv into " + dst.loc.path +
                          " did not say where to resume");
    }

    /// The error of a copy whose stream stopped moving (session_watch::stalled()).
    std::string stall_message(const pod_end& end, const char* what) const {
        char secs[32];
        std::snprintf(secs, sizeof secs, "%g",
                      static_cast<double>(opt_.stall_timeout.count()) / 1e3);
        return "pod " + end.name() + ": " + what + " " + end.loc.path + " moved no byte for " +
               secs + " s (--stall-timeout): the pod side or the link stalled";
    }

    // The exit code and message for a pod-side command that failed. `final_line`: what a
    // receiving podpipe printed on stdout (its failure line), used when stderr says nothing.
    // `input_whole`: nothing of ours cut its input short (a sender reads its own disk; into a
    // pod we stop sending only when it has stopped reading, or for a failure of our own that
    // is reported first; a relay's error is reported with the receiver's). Then an exit of its
    // own (its status arrived: the session held; not a signal, not its stall timeout) is its
    // verdict on the tree or the target (a missing source, a read-only or full target), which
    // a repeat would meet again.
    failure<copy_error> remote_failure(const pod_end& end, const char* what, int code,
                                const std::string& stderr_tail, bool input_whole,
                                std::string_view final_line = {}) {
        std::string msg = "pod " + end.name() + ": " + what + " " + end.loc.path +
                          " failed (exit " + std::to_string(code) + ")";
        const std::string tail = trim(stderr_tail);
        std::optional<protocol::failure_report> told;
        if (end.has_failure_report && !final_line.empty())
            if (auto f = protocol::parse_failure(final_line))
                told = std::move(*f);
        if (!tail.empty())
            msg += ": " + tail;
        else if (told)
            msg += ": " + told->message;
        else if (!end.has_binary && code == 127)
            msg += ": the pod has neither " + opt_.pod_binary + " nor tar";
        else if (code > 128 && code < 160)
            msg += ": killed by signal " + std::to_string(code - 128) +
                   (code == 137 ? " (SIGKILL: out of memory, or the pod was stopped)" : "");
        if (end.has_binary && (code == pipeline::exit_unsafe || code == pipeline::exit_bad_input ||
                               code == pipeline::exit_interrupted))
            return failed(static_cast<pipeline::exit_status>(code), msg);
        if (input_whole && code < 128 && msg.find("--stall-timeout") == std::string::npos)
            return permanent(pipeline::exit_failure, msg);
        return failed(pipeline::exit_failure, msg);
    }

    // A copy's exec that did not open. A stop (a signal) ends an opening too: that is an
    // interruption (exit 5), not a failure of the pod. The message names the pod and the path
    // (an API server that refuses connections says nothing of either).
    failure<copy_error> open_failed(const pod_end& end, const api_error& e) const {
        return fail(copy_error{stopped_or(pipeline::exit_failure),
                               "pod " + end.name() + ":" + end.loc.path + ": " + e.what(), {},
                               !e.retryable() && !stop_.stop_requested() &&
                                   !(e.is(errc::exec_failed) && may_run_again(end))});
    }

    /// A container that cannot run commands now but will again: its pod is not over and
    /// restarts what stops (restartPolicy Always or OnFailure: a killed container is being
    /// restarted, and "container not found" is the kubelet saying so meanwhile).
    bool may_run_again(const pod_end& end) const {
        auto p = client_.get_pod(end.loc.ns, end.loc.pod);
        return p && p->spec.restart_policy != "Never" &&
               (p->status.phase == "Running" || p->status.phase == "Pending");
    }

    /// `status`, or exit_interrupted when the caller's stop ended the copy.
    pipeline::exit_status stopped_or(pipeline::exit_status status) const {
        return stop_.stop_requested() ? pipeline::exit_interrupted : status;
    }

    static failure<copy_error> failed(pipeline::exit_status status, std::string msg) {
        return fail(copy_error{status, std::move(msg), {}});
    }
    /// A failure a repeat cannot mend (copy_error::permanent).
    static failure<copy_error> permanent(pipeline::exit_status status, std::string msg) {
        return fail(copy_error{status, std::move(msg), {}, status == pipeline::exit_failure});
    }

    /// The exit status of a transfer that failed here (send_tree, recv_tree).
    static pipeline::exit_status status_of(const pipeline::transfer_error& e) {
        return static_cast<pipeline::exit_status>(pipeline::exit_status_for(e));
    }

    /// The report of a receiving podpipe that exited 0: its last line on stdout.
    static result<protocol::report, std::string> received_report(const pod_end& end,
                                                                 std::string_view text) {
        auto fin = protocol::parse_final(text);
        if (!fin)
            return fail("pod " + end.name() + ": podpipe recv into " + end.loc.path +
                        " exited 0 but its report is not usable: " + fin.error().what());
        if (auto* r = std::get_if<protocol::report>(&*fin))
            return std::move(*r);
        return fail("pod " + end.name() + ": podpipe recv into " + end.loc.path +
                    " exited 0 but reported a failure: " +
                    std::get<protocol::failure_report>(*fin).message);
    }

    // A copy that went through. It fails after all when the sender could not send everything
    // as it is on its disk (the manifest covers only what was sent), unless allowed.
    copy_result finish(const char* verb, std::string where, pipeline::transfer_stats s,
                       std::optional<protocol::report> remote) const {
        if (s.problems.count > 0 && !opt_.allow_incomplete) {
            std::string msg = where + ": " + problems_text(s.problems) +
                              "; the copy is not the source's tree (allow it with "
                              "--allow-incomplete)";
            return fail(copy_error{pipeline::exit_failure, std::move(msg), std::move(s.problems)});
        }
        return copy_report{verb, std::move(where), std::move(s), std::move(remote)};
    }

    copy_result local_to_pod(const std::string& src, const pod_end& dst);
    copy_result pod_to_local(const pod_end& src, const std::string& dst);
    copy_result pod_to_pod(const pod_end& src, const pod_end& dst);

    pipeline::send_options send_options() const {
        pipeline::send_options o;
        o.level = opt_.level;
        o.chunk_bytes = opt_.chunk_bytes;
        o.threads = opt_.threads;
        o.memory_bytes = opt_.memory_bytes;
        o.excludes = opt_.excludes;
        return o;
    }

    pipeline::live_progress& progress() {
        return opt_.progress != nullptr ? *opt_.progress : own_progress_;
    }

    /// The copy a repeat of the same copy continues (pod_copier::local_to_pod).
    struct resume_state {
        std::string key;  ///< which copy: direction, source, target
        std::string id;   ///< its transfer id (the receiver's ledger)
        bool resume = false; ///< the next attempt continues (false: starts over under id)
    };

    /// The id of the copy `key` names: the last attempt's when it is a repeat, a new one
    /// otherwise; `resume` tells whether the attempt continues the last one.
    std::string transfer_id(const std::string& key, bool& resume) {
        if (resumed_ && resumed_->key == key) {
            resume = resumed_->resume;
            resumed_->resume = true;
            return resumed_->id;
        }
        std::random_device rd;
        char id[24];
        std::snprintf(id, sizeof id, "%08x%08x", rd(), rd());
        resumed_ = resume_state{key, id, true};
        resume = false;
        return id;
    }

    void say(const std::string& line) const {
        if (opt_.on_warning)
            opt_.on_warning(line);
        else if (opt_.on_info)
            opt_.on_info(line);
    }

    /// The target of the last copy whose receiver started (it may hold part of the tree):
    /// what give_up() names and whose ledger it removes. Cleared when a copy succeeds.
    struct started_target {
        bool local = false; ///< `path` is a local directory (else in `pod`)
        pod_end pod;
        std::string path;
        std::string id; ///< the transfer id of its ledger; empty: no ledger kept
    };
    void started(const pod_end* pod, const std::string& path, const std::string& id) {
        started_ = started_target{pod == nullptr, pod != nullptr ? *pod : pod_end{}, path, id};
    }

    /// `podpipe recv --abandon ID PATH` in the pod: removes the ledger files of transfer ID
    /// (best effort; the reason when it did not).
    result<void, std::string> abandon_in_pod(const pod_end& end, const std::string& id);
    copy_error give_up(copy_error e);

    copy_options opt_;
    api_client& client_;
    std::stop_token stop_;
    pipeline::live_progress own_progress_;
    std::optional<resume_state> resumed_;
    std::optional<started_target> started_;
};

result<void, std::string> pod_copier::impl::abandon_in_pod(const pod_end& end,
                                                           const std::string& id) {
    // The outage that ended the copy may still be on (an API server that restarts): a few
    // more seconds of the copies' backoff. Removing a ledger that is gone is success, so an
    // exec that broke is simply run again.
    retry_schedule schedule(retry_policy{std::chrono::seconds(10), std::chrono::milliseconds(250),
                                         std::chrono::seconds(2)},
                            stop_);
    for (;;) {
        if (stop_.stop_requested())
            return fail(std::string("interrupted"));
        copy_error e;
        auto s = open(end, {opt_.pod_binary, "recv", "--abandon", id, end.loc.path}, false);
        if (!s) {
            e = copy_error{pipeline::exit_failure, s.error().what(), {}, !s.error().retryable()};
        } else {
            // The pod's recv waits a few seconds for a receiver of the cut session to let go
            // of the ledger's lock; a session that moves nothing for longer is given up.
            session_watch watch(stop_, {s->get()}, std::chrono::seconds(15));
            auto code = (*s)->wait();
            if (code && *code == 0)
                return {};
            if (code) // its own answer (an older podpipe without --abandon: exit 2)
                return fail("exit " + std::to_string(*code) + ": " + trim((*s)->stderr_tail()));
            e = copy_error{pipeline::exit_failure, code.error().what(), {}, false};
        }
        if (!schedule.again(e, {}))
            return fail(std::move(e.message));
    }
}

namespace {
// The receiver's "; kept for a resume at stream offset N (M files unfinished)" (engine
// recv.cpp) is no longer true once its ledger is gone: the clause goes from the message.
void drop_kept_for_resume(std::string& message) {
    static constexpr std::string_view clause = "; kept for a resume at stream offset ";
    const std::size_t at = message.find(clause);
    if (at == std::string::npos)
        return;
    const std::size_t close = message.find(')', at + clause.size());
    if (close != std::string::npos)
        message.erase(at, close + 1 - at);
}
} // namespace

copy_error pod_copier::impl::give_up(copy_error e) {
    resumed_.reset(); // whatever comes next is a new copy
    if (!started_)
        return e; // no receiver started: nothing of the tree was written
    const started_target t = std::move(*started_);
    started_.reset();
    const std::string where = t.local ? t.path : "pod " + t.pod.name() + ":" + t.path;
    std::string stays;
    if (!t.id.empty()) {
        // The ledger is of no use now: a later copy has a new transfer id, never this one.
        result<void, std::string> removed;
        if (t.local) {
            auto files = pipeline::ledger_files::open(t.path, t.id, std::chrono::seconds(5));
            if (files)
                files->remove();
            else if (files.error() != std::errc::no_such_file_or_directory)
                removed = fail(files.error().message());
        } else {
            removed = abandon_in_pod(t.pod, t.id);
        }
        if (!removed)
            stays = " (its resume ledger " + t.path + "/.podpipe-resume-" + t.id +
                    " stays: " + removed.error() + ")";
        else
            drop_kept_for_resume(e.message);
    }
    e.message += "; " + where + " holds a partial copy: what arrived before the failure" + stays;
    return e;
}

copy_result pod_copier::impl::local_to_pod(const std::string& src, const pod_end& dst) {
    const bool verify = !!opt_.verify && dst.has_binary;
    if (!dst.half_close && !dst.has_binary) {
        const std::string no_binary =
            opt_.pod_binary == "none" ? std::string(" and podpipe is not used (--pod-binary none)")
                                      : " and has no " + opt_.pod_binary;
        return permanent(pipeline::exit_failure,
                         "pod " + dst.name() + " speaks only " + dst.protocol +
                             " (no stdin half-close)" + no_binary +
                             ": its tar would never see the end of the stream; install podpipe "
                             "in the image (see --pod-binary) or use a cluster with "
                             "v5.channel.k8s.io");
    }
    const bool acks = dst.has_acks && opt_.level == pipeline::auto_level;
    // A repeat of this copy continues the last attempt when both ends can (see the header).
    const bool resumable = opt_.resumable && dst.has_binary && dst.has_recv_resume;
    bool resume = false;
    const std::string id =
        resumable ? transfer_id("in\n" + src + "\n" + dst.name() + "\n" + dst.loc.path, resume)
                  : std::string();
    auto session = open(dst, recv_command(dst, verify, acks, resumable ? &id : nullptr, resume),
                        true);
    if (!session) {
        return open_failed(dst, session.error());
    }
    exec_session& s = **session;
    started(&dst, dst.loc.path, id);
    session_watch watch(stop_, {&s}, opt_.stall_timeout);
    const auto t0 = clock_type::now();
    receiver_reader reader(s, resume);

    pipeline::send_options opt = send_options();
    opt.progress = &progress();
    opt.only = opt_.only;
    opt.only_descend = opt_.only_descend;
    opt.deletions = opt_.deletions;
    if (acks)
        opt.acks = &reader.acks();
    if (resume) {
        // The receiver says where to start before we send a byte.
        auto offer = reader.offer(opt_.stall_timeout, stop_);
        if (offer && offer->offset > 0) {
            opt.resume_from = pipeline::resume_offer{offer->offset, offer->before};
            if (opt_.on_info)
                opt_.on_info("pod " + dst.name() + ": resuming the copy into " + dst.loc.path +
                             " at stream byte " + std::to_string(offer->offset));
        } else if (offer && !offer->why_not.empty()) {
            say("pod " + dst.name() + ": copying into " + dst.loc.path +
                " from the start: " + offer->why_not);
        } else if (!offer) {
            return no_offer(dst, s, reader);
        }
    }
    auto sent = pipeline::send_tree(src, s.stdin_sink(), opt, stop_);
    if (!sent && sent.error() == pipeline::errc::resume_mismatch) {
        // Nothing was sent: the source changed under what the receiver already has. The
        // receiver's ledger is discarded by an attempt that starts over under the same id.
        s.abort();
        reader.join();
        say("pod " + dst.name() + ": " + src + " changed since the copy into " + dst.loc.path +
            " was cut (" + sent.error().detail + "); copying it again from the start");
        resumed_->resume = false;
        return local_to_pod(src, dst);
    }
    watch.stream_done();
    if (!sent && !stop_.stop_requested() && !watch.stalled()) {
        // The pod may have ended first (its error is the real story): give it a moment to
        // deliver its status before tearing the session down.
        for (int i = 0; i < 50 && !reader.done(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!sent)
        s.abort();
    reader.join();
    const auto& code = reader.code();
    const std::string& report = reader.report();
    if (code && *code && **code != 0)
        return remote_failure(dst, dst.has_binary ? "podpipe recv into" : "tar extraction into",
                              **code, s.stderr_tail(), true, report);
    if (!sent && code && !*code && (*code).error().is(errc::exec_failed)) {
        // The pod side ended with a failure status (e.g. the container stopped): that is the
        // story, not the broken pipe it caused here.
        return failed(pipeline::exit_failure, "pod " + dst.name() + ": " + (*code).error().what() +
                                                  "; " + dst.loc.path + " is incomplete");
    }
    if (!sent) {
        if (stop_.stop_requested()) {
            return failed(pipeline::exit_interrupted,
                          "interrupted; " + dst.name() + ":" + dst.loc.path + " is incomplete");
        }
        if (watch.stalled())
            return failed(pipeline::exit_failure,
                          stall_message(dst, "the copy into") + "; it is incomplete");
        return failed(status_of(sent.error()), "sending " + src + " into pod " + dst.name() +
                                                   " failed: " + sent.error().what() + "; " +
                                                   dst.name() + ":" + dst.loc.path +
                                                   " is incomplete");
    }
    if (!*code) {
        return failed(pipeline::exit_failure, "pod " + dst.name() + ": " + code->error().what() +
                                                  "; the copy into " + dst.loc.path +
                                                  " is not confirmed");
    }
    sent->seconds =
        std::chrono::duration<double>(clock_type::now() - t0).count(); // until the pod confirmed
    std::optional<protocol::report> remote;
    if (dst.has_binary) {
        auto r = received_report(dst, report);
        if (!r)
            return failed(pipeline::exit_failure, r.error());
        // The pod's receiver checked what we sent against our manifest: the summary says so.
        sent->manifest_checked = r->stats.manifest_checked;
        remote = std::move(*r);
    }
    if (resumable)
        resumed_.reset(); // done: a later copy of the same paths is a new one
    return finish("copied", src + " -> " + dst.name() + ":" + dst.loc.path, *sent,
                  std::move(remote));
}

copy_result pod_copier::impl::pod_to_local(const pod_end& src, const std::string& dst) {
    // With auto, the pod's sender measures the link with our acknowledgements (written to its
    // stdin as we read), as local_to_pod does with the pod's.
    const bool acks = src.has_send_acks && opt_.level == pipeline::auto_level;
    // A repeat of this copy continues the last attempt (our ledger in dst) when the pod's
    // podpipe can start its stream at our resume point.
    const bool resumable = opt_.resumable && src.has_binary && src.has_send_resume;
    bool resume = false;
    const std::string id =
        resumable ? transfer_id("out\n" + src.name() + "\n" + src.loc.path + "\n" + dst, resume)
                  : std::string();
    std::optional<protocol::resume> from;
    if (resume)
        if (auto offer = pipeline::peek_resume_offer(dst, id)) {
            from = protocol::resume{offer->offset, offer->before, {}};
            if (opt_.on_info)
                opt_.on_info("pod " + src.name() + ": resuming the copy of " + src.loc.path +
                             " at stream byte " + std::to_string(offer->offset));
        }
    auto session = open(src, send_command(src, acks, from ? &*from : nullptr),
                        send_reads_stdin(src, acks));
    if (!session) {
        return open_failed(src, session.error());
    }
    exec_session& s = **session;
    started(nullptr, dst, id);
    session_watch watch(stop_, {&s}, opt_.stall_timeout);
    pipeline::recv_options opt;
    opt.threads = opt_.threads;
    opt.memory_bytes = opt_.memory_bytes;
    opt.require_manifest = src.has_binary && !!opt_.verify;
    opt.excludes = opt_.excludes;
    opt.progress = &progress();
    if (resumable) {
        pipeline::resume_options r;
        r.id = id;
        // Continue only what the pod was told; without a trusted ledger both start over.
        r.resume = from.has_value();
        opt.resumable = std::move(r);
    }
    result<pipeline::transfer_stats, pipeline::transfer_error> got =
        fail(std::make_error_code(std::errc::interrupted));
    {
        pipeline::acking_source acking(s.stdout_source(), s.stdin_sink());
        pipeline::byte_source& in =
            acks ? static_cast<pipeline::byte_source&>(acking) : s.stdout_source();
        got = pipeline::recv_tree(in, dst, opt, stop_);
    }
    watch.stream_done();
    if (!got)
        s.abort();
    auto code = s.wait();
    if (code && *code == pipeline::exit_bad_input && from &&
        s.stderr_tail().find("cannot resume") != std::string::npos) {
        // The pod's tree changed under what we already have: start over under the same id
        // (our receive discards its ledger).
        say("pod " + src.name() + ": " + src.loc.path + " changed since the copy into " + dst +
            " was cut; copying it again from the start");
        resumed_->resume = false;
        return pod_to_local(src, dst);
    }
    if (!got && !stop_.stop_requested() && !watch.stalled())
        if (auto full = disk_refusal(got.error().what())) {
            // Our own write failed, and the pod's send ended because we stopped reading: ours
            // is the story, and no repeat mends a full (or read-only) disk.
            return permanent(pipeline::exit_failure,
                             std::string(*full) + " writing " + dst + " (receiving from pod " +
                                 src.name() + ":" + src.loc.path + "): " + got.error().what() +
                                 "; " + dst + " is incomplete");
        }
    if (code && *code != 0)
        return remote_failure(src, src.has_binary ? "podpipe send of" : "tar of", *code,
                              s.stderr_tail(), true);
    if (!got) {
        if (stop_.stop_requested()) {
            return failed(pipeline::exit_interrupted, "interrupted; " + dst + " is incomplete");
        }
        if (watch.stalled())
            return failed(pipeline::exit_failure, stall_message(src, "the copy out of") + "; " +
                                                      dst + " is incomplete");
        return failed(status_of(got.error()),
                      "receiving from pod " + src.name() + ":" + src.loc.path + " into " + dst +
                          " failed: " + got.error().what() + "; " + dst + " is incomplete");
    }
    if (!code) {
        return failed(pipeline::exit_failure, "pod " + src.name() + ": " + code.error().what() +
                                                  "; " + dst + " may be incomplete");
    }
    if (resumable)
        resumed_.reset();
    return finish("copied", src.name() + ":" + src.loc.path + " -> " + dst, *got, std::nullopt);
}

copy_result pod_copier::impl::pod_to_pod(const pod_end& src, const pod_end& dst) {
    // The receiver needs an end it can see: EOF (v5 half-close), or the end member that only
    // `podpipe send` writes.
    if (!dst.half_close && !(dst.has_binary && src.has_binary)) {
        return permanent(pipeline::exit_failure,
                         "pod " + dst.name() + " speaks only " + dst.protocol +
                             " (no stdin half-close): streaming into it needs podpipe in both "
                             "pods");
    }
    if (!opt_.excludes.empty() && !src.has_binary && !dst.has_binary) {
        return failed(pipeline::exit_usage,
                      "--exclude between two pods without podpipe: neither side can filter "
                      "(busybox tar has no --exclude); copy through a local directory instead");
    }
    const bool verify = !!opt_.verify && src.has_binary && dst.has_binary;
    // With auto, the source pod's sender measures the link with the destination pod's
    // acknowledgements, carried from the destination's stdout to the source's stdin.
    const bool acks =
        src.has_send_acks && dst.has_acks && opt_.level == pipeline::auto_level;
    // A repeat of this copy continues the last attempt when both pods can: the receiver is
    // started first and says where, then the sender starts there.
    const bool resumable = opt_.resumable && src.has_binary && src.has_send_resume &&
                           dst.has_binary && dst.has_recv_resume;
    bool resume = false;
    const std::string id = resumable ? transfer_id("between\n" + src.name() + "\n" +
                                                       src.loc.path + "\n" + dst.name() + "\n" +
                                                       dst.loc.path,
                                                   resume)
                                     : std::string();
    using opened = result<std::unique_ptr<exec_session>, api_error>;
    std::optional<opened> from;
    std::optional<opened> to;
    std::optional<receiver_reader> reader;
    std::optional<protocol::resume> offer;
    if (resumable) {
        to = open(dst, recv_command(dst, verify, acks, &id, resume), true);
        if (!*to)
            return open_failed(dst, to->error());
        started(&dst, dst.loc.path, id);
        reader.emplace(***to, resume);
        if (resume) {
            offer = reader->offer(opt_.stall_timeout, stop_);
            if (!offer)
                return no_offer(dst, ***to, *reader);
            if (offer->offset == 0) {
                if (!offer->why_not.empty())
                    say("pod " + dst.name() + ": copying into " + dst.loc.path +
                        " from the start: " + offer->why_not);
                offer.reset();
            } else if (opt_.on_info) {
                opt_.on_info("pods " + src.name() + " -> " + dst.name() +
                             ": resuming the relay at stream byte " +
                             std::to_string(offer->offset));
            }
        }
        from = open(src, send_command(src, acks, offer ? &*offer : nullptr),
                    send_reads_stdin(src, acks));
        if (!*from) {
            (**to)->abort();
            reader->join();
            return open_failed(src, from->error());
        }
    } else {
        from = open(src, send_command(src, acks), send_reads_stdin(src, acks));
        if (!*from)
            return open_failed(src, from->error());
        to = open(dst, recv_command(dst, verify, acks), true);
        if (!*to) {
            (**from)->abort();
            return open_failed(dst, to->error());
        }
        started(&dst, dst.loc.path, {});
        reader.emplace(***to);
    }
    exec_session& in = ***from;
    exec_session& out = ***to;
    session_watch watch(stop_, {&in, &out}, opt_.stall_timeout);
    pipeline::ack_counter& ack_count = reader->acks();
    std::jthread forwarder;
    if (acks) {
        forwarder = std::jthread([&](std::stop_token stop) {
            std::uint64_t sent = 0;
            while (!stop.stop_requested()) {
                const std::uint64_t v = ack_count.wait_for(sent + 1, std::chrono::seconds(1), stop);
                if (v > sent) {
                    const std::string line = pipeline::ack_line(v);
                    if (!in.stdin_sink().write(std::as_bytes(std::span(line))))
                        break; // advisory: the source stops waiting for them by itself
                    sent = v;
                } else if (ack_count.closed()) {
                    break;
                }
            }
        });
    }

    // Relay: the source's stdout into the destination's stdin, through this process's memory.
    const auto t0 = clock_type::now();
    counting_sink relay(out.stdin_sink(), progress());
    std::vector<std::byte> buf(256 << 10);
    std::string relay_error;
    {
        for (;;) {
            if (stop_.stop_requested()) {
                relay_error = "interrupted";
                break;
            }
            auto n = in.stdout_source().read(buf);
            if (!n) {
                relay_error = "reading from " + src.name() + ": " + n.error().message();
                break;
            }
            if (*n == 0) {
                if (auto fin = relay.finish(); !fin)
                    relay_error =
                        "closing the stream into " + dst.name() + ": " + fin.error().message();
                break;
            }
            if (auto w = relay.write(std::span(buf).first(*n)); !w) {
                relay_error = "writing into " + dst.name() + ": " + w.error().message();
                break;
            }
        }
    }
    watch.stream_done();
    if (stop_.stop_requested())
        relay_error = "interrupted";
    else if (watch.stalled())
        relay_error = stall_message(src, "the relay of");
    if (!relay_error.empty()) {
        in.abort();
        for (int i = 0; i < 50 && !reader->done(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        out.abort();
    }
    auto src_code = in.wait();
    reader->join();
    forwarder = {}; // stops and joins it before the sessions go
    const auto& dst_code = reader->code();
    const std::string& report = reader->report();
    if (src_code && *src_code == pipeline::exit_bad_input && offer &&
        in.stderr_tail().find("cannot resume") != std::string::npos) {
        // The source pod's tree changed under what the destination already has.
        say("pod " + src.name() + ": " + src.loc.path + " changed since the relay into " +
            dst.name() + ":" + dst.loc.path + " was cut; copying it again from the start");
        resumed_->resume = false;
        return pod_to_pod(src, dst);
    }
    if (src_code && *src_code != 0)
        return remote_failure(src, src.has_binary ? "podpipe send of" : "tar of", *src_code,
                              in.stderr_tail(), true);
    if (dst_code && *dst_code && **dst_code != 0)
        return remote_failure(dst, dst.has_binary ? "podpipe recv into" : "tar extraction into",
                              **dst_code, out.stderr_tail(), relay_error.empty(), report);
    if (!relay_error.empty()) {
        return failed(stopped_or(pipeline::exit_failure),
                      relay_error + "; " + dst.name() + ":" + dst.loc.path + " is incomplete");
    }
    if (!src_code) {
        return failed(pipeline::exit_failure, "pod " + src.name() + ": " + src_code.error().what());
    }
    if (!*dst_code) {
        return failed(pipeline::exit_failure, "pod " + dst.name() + ": " +
                                                  (*dst_code).error().what() + "; the copy into " +
                                                  dst.loc.path + " is not confirmed");
    }
    pipeline::transfer_stats s;
    std::optional<protocol::report> remote;
    if (dst.has_binary) {
        // Counts come from the receiving pod's report when it ran podpipe recv.
        auto r = received_report(dst, report);
        if (!r)
            return failed(pipeline::exit_failure, r.error());
        const pipeline::transfer_stats& got = r->stats;
        s.files = got.files;
        s.directories = got.directories;
        s.symlinks = got.symlinks;
        s.hardlinks = got.hardlinks;
        s.content_bytes = got.content_bytes;
        s.chunks = got.chunks;
        s.manifest_checked = got.manifest_checked;
        s.problems = got.problems;
        remote = std::move(*r);
    }
    s.wire_bytes = progress().wire_bytes.load();
    s.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    s.resumed_at = offer ? offer->offset : 0;
    if (resumable)
        resumed_.reset();
    return finish("relayed", src.name() + ":" + src.loc.path + " -> " + dst.name() + ":" +
                                 dst.loc.path,
                  s, std::move(remote));
}


pod_copier::pod_copier(api_client& client, copy_options opt, std::stop_token stop)
    : impl_(std::make_unique<impl>(client, std::move(opt), std::move(stop))) {}

pod_copier::~pod_copier() = default;

result<pod_end, copy_error> pod_copier::probe(const pod_dir& where) { return impl_->probe(where); }

namespace {

/// A copy into a pod whose receiver could not write (a full, over-quota or read-only target):
/// permanent (an exit of its own mostly is already: remote_failure), and said first. (Out of
/// a pod, pod_to_local says it where it knows.)
copy_result refused_by_disk(copy_result r, const pod_end& dst) {
    if (r || r.error().status != pipeline::exit_failure)
        return r;
    const auto full = disk_refusal(r.error().message);
    if (!full)
        return r;
    copy_error e = r.error();
    e.permanent = true;
    e.message = std::string(*full) + " writing " + dst.loc.path + " in pod " + dst.name() +
                ": " + e.message;
    return fail(std::move(e));
}

} // namespace

copy_result pod_copier::local_to_pod(const std::string& src, const pod_end& dst) {
    auto r = refused_by_disk(impl_->local_to_pod(src, dst), dst);
    if (r)
        impl_->started_.reset();
    return r;
}

copy_result pod_copier::pod_to_local(const pod_end& src, const std::string& dst) {
    auto r = impl_->pod_to_local(src, dst);
    if (r)
        impl_->started_.reset();
    return r;
}

copy_result pod_copier::pod_to_pod(const pod_end& src, const pod_end& dst) {
    auto r = refused_by_disk(impl_->pod_to_pod(src, dst), dst);
    if (r)
        impl_->started_.reset();
    return r;
}

copy_error pod_copier::give_up(copy_error e) { return impl_->give_up(std::move(e)); }

} // namespace podpipe::remote
