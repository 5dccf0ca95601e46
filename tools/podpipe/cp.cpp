#include "tools/podpipe/cp.hpp"

#include "tools/podpipe/copier.hpp"

#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"
#include "hooks/k8s/client.hpp"
#include "hooks/k8s/config.hpp"
#include "tools/podpipe/cli_util.hpp"
#include "tools/podpipe/location.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace podpipe::cli {
namespace {

using clock_type = std::chrono::steady_clock;

/// Keeps the first `limit` bytes written (the in-pod receiver's one-line JSON report).
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

void print_error(const std::string& msg) { std::fprintf(stderr, "podpipe: cp: %s\n", msg.c_str()); }

/// The unsigned integer value of "key" in a flat JSON object (the pod's report), 0 if absent.
std::uint64_t json_u64(std::string_view json, std::string_view key) {
    const std::string needle = "\"" + std::string(key) + "\":";
    const std::size_t at = json.find(needle);
    if (at == std::string_view::npos)
        return 0;
    std::uint64_t v = 0;
    for (std::size_t i = at + needle.size(); i < json.size() && json[i] >= '0' && json[i] <= '9'; ++i)
        v = v * 10 + static_cast<std::uint64_t>(json[i] - '0');
    return v;
}

std::string trim(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
        s.pop_back();
    return s;
}

class copier final : public pod_copier {
public:
    copier(const cp_flags& f, const copy_settings& settings, k8s::api_client& client,
           std::stop_token stop)
        : level_(settings.level)
        , chunk_bytes_(settings.chunk_bytes)
        , threads_(settings.threads)
        , memory_(settings.memory_bytes)
        , quiet_(settings.quiet)
        , f_(f)
        , client_(client)
        , stop_(std::move(stop)) {}

    result<pod_end, std::string> probe(const location& loc) override;
    int local_to_pod(const location& src, const pod_end& dst) override;
    int pod_to_local(const pod_end& src, const location& dst) override;
    int pod_to_pod(const pod_end& src, const pod_end& dst) override;
    const pipeline::transfer_stats& last_stats() const override { return last_stats_; }
    const std::string& last_report() const override { return last_report_; }

private:
    k8s::exec_session_options session_options() const {
        k8s::exec_session_options o;
        o.offer_v5 = !f_.exec_v4;
        return o;
    }

    result<std::unique_ptr<k8s::exec_session>, k8s::hook_error>
    open(const pod_end& end, std::vector<std::string> command, bool with_stdin) {
        k8s::exec_options o;
        o.ns = end.ns;
        o.pod = end.loc.pod;
        o.container = end.loc.container;
        o.command = std::move(command);
        o.use_stdin = with_stdin;
        return client_.exec(o, session_options());
    }

    // Finds out whether the pod has our binary and which exec protocol it speaks, in one exec.
    result<pod_end, std::string> probe_impl(const location& loc) {
        pod_end end;
        end.loc = loc;
        end.ns = loc.ns.empty() ? client_.default_namespace() : loc.ns;
        const bool look = f_.pod_binary != "none";
        std::vector<std::string> cmd = look ? std::vector<std::string>{f_.pod_binary, "--version"}
                                            : std::vector<std::string>{"true"};
        auto s = open(end, cmd, false);
        if (!s)
            return fail("pod " + end.name() + ": " + s.error().what());
        end.protocol = (*s)->protocol();
        end.half_close = (*s)->can_half_close_stdin();
        capture_sink out(4096);
        auto code = (*s)->wait(&out);
        if (!code) {
            if (look && code.error().is(k8s::errc::exec_failed)) {
                // The runtime could not start it: either the binary is not there, or nothing
                // can run in this container (not running, gone). `true` tells which.
                auto t = open(end, {"true"}, false);
                if (!t)
                    return fail("pod " + end.name() + ": " + t.error().what());
                auto tc = (*t)->wait();
                if (!tc)
                    return fail("pod " + end.name() + ": cannot run commands: " + tc.error().what());
                return end;
            }
            return fail("pod " + end.name() + ": " + code.error().what());
        }
        if (look)
            end.has_binary = *code == 0 && out.text.starts_with("podpipe ");
        else if (*code != 0)
            return fail("pod " + end.name() + ": `true` exited with " + std::to_string(*code));
        if (f_.verbose)
            std::fprintf(stderr, "podpipe: cp: pod %s: %s, exec %s\n", end.name().c_str(),
                         end.has_binary ? ("in-pod " + f_.pod_binary).c_str()
                                        : "no podpipe in the pod: using its tar",
                         end.protocol.c_str());
        return end;
    }

    std::vector<std::string> recv_command(const pod_end& end, bool verify) const {
        if (end.has_binary) {
            std::vector<std::string> c{f_.pod_binary, "recv", "--report"};
            if (!verify)
                c.push_back("--no-verify");
            for (const auto& e : f_.excludes) { // for senders that cannot filter (a pod's tar)
                c.push_back("--exclude");
                c.push_back(e);
            }
            c.push_back(end.loc.path);
            return c;
        }
        // GNU and busybox tar: -o on extraction = do not restore owners (as `podpipe recv`).
        return {"sh", "-c", "mkdir -p -- \"$1\" && exec tar -xzof - -C \"$1\"", "podpipe-recv",
                end.loc.path};
    }

    std::vector<std::string> send_command(const pod_end& end) const {
        if (end.has_binary) {
            std::vector<std::string> c{f_.pod_binary, "send", "--level", f_.level,
                                       "--chunk-size", f_.chunk};
            for (const auto& e : f_.excludes) {
                c.push_back("--exclude");
                c.push_back(e);
            }
            c.push_back(end.loc.path);
            return c;
        }
        // busybox tar has no --exclude: the receiver filters instead (recv_options::excludes).
        return {"sh", "-c", "cd -- \"$1\" && exec tar -czf - .", "podpipe-send", end.loc.path};
    }

    // The exit code and message for a pod-side command that failed.
    int remote_failure(const pod_end& end, const char* what, int code, const std::string& stderr_tail) {
        std::string msg = "pod " + end.name() + ": " + what + " " + end.loc.path + " failed (exit " +
                          std::to_string(code) + ")";
        const std::string tail = trim(stderr_tail);
        if (!tail.empty())
            msg += ": " + tail;
        else if (!end.has_binary && code == 127)
            msg += ": the pod has neither " + f_.pod_binary + " nor tar";
        else if (code > 128 && code < 160)
            msg += ": killed by signal " + std::to_string(code - 128) +
                   (code == 137 ? " (SIGKILL: out of memory, or the pod was stopped)" : "");
        print_error(msg);
        if (end.has_binary && (code == exit_unsafe || code == exit_bad_input || code == exit_interrupted))
            return code;
        return exit_failure;
    }

    int finish(const char* verb, const std::string& where, const pipeline::transfer_stats& s,
               const std::string& remote_report);

    pipeline::send_options send_options() const {
        pipeline::send_options o;
        o.level = level_;
        o.chunk_bytes = chunk_bytes_;
        o.threads = threads_;
        o.memory_bytes = memory_;
        o.excludes = f_.excludes;
        return o;
    }

    int level_;
    std::size_t chunk_bytes_;
    unsigned threads_;
    std::size_t memory_;
    bool quiet_;
    const cp_flags& f_;
    k8s::api_client& client_;
    std::stop_token stop_;
    pipeline::live_progress progress_;
    pipeline::transfer_stats last_stats_;
    std::string last_report_;
};

result<pod_end, std::string> copier::probe(const location& loc) { return probe_impl(loc); }

int copier::finish(const char* verb, const std::string& where, const pipeline::transfer_stats& s,
                   const std::string& remote_report) {
    last_stats_ = s;
    last_report_ = trim(remote_report);
    if (!quiet_)
        std::fprintf(stderr, "podpipe: %s (%s)\n", summary_line(verb, s).c_str(), where.c_str());
    if (f_.stats_json.empty())
        return exit_ok;
    std::string json = trim(stats_json("cp", s));
    const std::string report = trim(remote_report);
    if (report.starts_with('{') && report.ends_with('}') && json.ends_with('}')) {
        json.pop_back();
        json += ",\"remote\":" + report + "}";
    }
    json += "\n";
    if (!write_text_file(f_.stats_json, json)) {
        print_error("cannot write " + f_.stats_json + ": " + std::strerror(errno));
        return exit_failure;
    }
    return exit_ok;
}

int copier::local_to_pod(const location& src, const pod_end& dst) {
    const bool verify = !f_.no_verify && dst.has_binary;
    if (!dst.half_close && !dst.has_binary) {
        print_error("pod " + dst.name() + " speaks only " + dst.protocol +
                    " (no stdin half-close) and has no " + f_.pod_binary +
                    ": its tar would never see the end of the stream; install podpipe in the "
                    "image (see --pod-binary) or use a cluster with v5.channel.k8s.io");
        return exit_failure;
    }
    auto session = open(dst, recv_command(dst, verify), true);
    if (!session) {
        print_error("pod " + dst.name() + ": " + session.error().what());
        return exit_failure;
    }
    k8s::exec_session& s = **session;
    const auto t0 = clock_type::now();
    capture_sink report(64 << 10);
    std::optional<result<int, k8s::hook_error>> code;
    std::jthread reader([&] { code = s.wait(&report); });

    pipeline::send_options opt = send_options();
    opt.progress = &progress_;
    result<pipeline::transfer_stats> sent = fail(std::make_error_code(std::errc::interrupted));
    {
        progress_printer printer(progress_, f_.progress, "sent");
        sent = pipeline::send_tree(src.path, s.stdin_sink(), opt, stop_);
    }
    const std::string detail = pipeline::last_failure_detail();
    if (!sent && !stop_.stop_requested()) {
        // The pod may have ended first (its error is the real story): give it a moment to
        // deliver its status before tearing the session down.
        for (int i = 0; i < 50 && !code; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (!sent)
        s.abort();
    reader.join();
    if (code && *code && **code != 0)
        return remote_failure(dst, dst.has_binary ? "podpipe recv into" : "tar extraction into",
                              **code, s.stderr_tail());
    if (!sent && code && !*code && (*code).error().is(k8s::errc::exec_failed)) {
        // The pod side ended with a failure status (e.g. the container stopped): that is the
        // story, not the broken pipe it caused here.
        print_error("pod " + dst.name() + ": " + (*code).error().what() + "; " + dst.loc.path +
                    " is incomplete");
        return exit_failure;
    }
    if (!sent) {
        if (stop_.stop_requested()) {
            print_error("interrupted; " + dst.name() + ":" + dst.loc.path + " is incomplete");
            return exit_interrupted;
        }
        print_error("sending " + src.path + " into pod " + dst.name() + " failed: " +
                    sent.error().message() +
                    (detail.empty() ? "" : ": " + detail) + "; " + dst.name() + ":" +
                    dst.loc.path + " is incomplete");
        return exit_code_for(sent.error());
    }
    if (!*code) {
        print_error("pod " + dst.name() + ": " + code->error().what() + "; the copy into " +
                    dst.loc.path + " is not confirmed");
        return exit_failure;
    }
    sent->seconds = std::chrono::duration<double>(clock_type::now() - t0).count(); // until the pod confirmed
    return finish("copied", src.path + " -> " + dst.name() + ":" + dst.loc.path, *sent, report.text);
}

int copier::pod_to_local(const pod_end& src, const location& dst) {
    auto session = open(src, send_command(src), false);
    if (!session) {
        print_error("pod " + src.name() + ": " + session.error().what());
        return exit_failure;
    }
    k8s::exec_session& s = **session;
    pipeline::recv_options opt;
    opt.threads = threads_;
    opt.memory_bytes = memory_;
    opt.require_manifest = src.has_binary && !f_.no_verify;
    opt.excludes = f_.excludes;
    opt.progress = &progress_;
    result<pipeline::transfer_stats> got = fail(std::make_error_code(std::errc::interrupted));
    {
        progress_printer printer(progress_, f_.progress, "received");
        got = pipeline::recv_tree(s.stdout_source(), dst.path, opt, stop_);
    }
    const std::string detail = pipeline::last_failure_detail();
    if (!got)
        s.abort();
    auto code = s.wait();
    if (code && *code != 0)
        return remote_failure(src, src.has_binary ? "podpipe send of" : "tar of", *code,
                              s.stderr_tail());
    if (!got) {
        if (stop_.stop_requested()) {
            print_error("interrupted; " + dst.path + " is incomplete");
            return exit_interrupted;
        }
        print_error("receiving from pod " + src.name() + ":" + src.loc.path + " into " + dst.path +
                    " failed: " + got.error().message() +
                    (detail.empty() ? "" : ": " + detail) + "; " + dst.path + " is incomplete");
        return exit_code_for(got.error());
    }
    if (!code) {
        print_error("pod " + src.name() + ": " + code.error().what() + "; " + dst.path +
                    " may be incomplete");
        return exit_failure;
    }
    return finish("copied", src.name() + ":" + src.loc.path + " -> " + dst.path, *got, {});
}

int copier::pod_to_pod(const pod_end& src, const pod_end& dst) {
    // The receiver needs an end it can see: EOF (v5 half-close), or the end member that only
    // `podpipe send` writes.
    if (!dst.half_close && !(dst.has_binary && src.has_binary)) {
        print_error("pod " + dst.name() + " speaks only " + dst.protocol +
                    " (no stdin half-close): streaming into it needs podpipe in both pods");
        return exit_failure;
    }
    if (!f_.excludes.empty() && !src.has_binary && !dst.has_binary) {
        print_error("--exclude between two pods without podpipe: neither side can filter "
                    "(busybox tar has no --exclude); copy through a local directory instead");
        return exit_usage;
    }
    const bool verify = !f_.no_verify && src.has_binary && dst.has_binary;
    auto from = open(src, send_command(src), false);
    if (!from) {
        print_error("pod " + src.name() + ": " + from.error().what());
        return exit_failure;
    }
    auto to = open(dst, recv_command(dst, verify), true);
    if (!to) {
        (*from)->abort();
        print_error("pod " + dst.name() + ": " + to.error().what());
        return exit_failure;
    }
    k8s::exec_session& in = **from;
    k8s::exec_session& out = **to;
    capture_sink report(64 << 10);
    std::optional<result<int, k8s::hook_error>> dst_code;
    std::jthread reader([&] { dst_code = out.wait(&report); });

    // Relay: the source's stdout into the destination's stdin, through this process's memory.
    const auto t0 = clock_type::now();
    counting_sink relay(out.stdin_sink(), progress_);
    std::vector<std::byte> buf(256 << 10);
    std::string relay_error;
    {
        progress_printer printer(progress_, f_.progress, "relayed");
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
                    relay_error = "closing the stream into " + dst.name() + ": " + fin.error().message();
                break;
            }
            if (auto w = relay.write(std::span(buf).first(*n)); !w) {
                relay_error = "writing into " + dst.name() + ": " + w.error().message();
                break;
            }
        }
    }
    if (!relay_error.empty()) {
        in.abort();
        for (int i = 0; i < 50 && !dst_code; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        out.abort();
    }
    auto src_code = in.wait();
    reader.join();
    if (src_code && *src_code != 0)
        return remote_failure(src, src.has_binary ? "podpipe send of" : "tar of", *src_code,
                              in.stderr_tail());
    if (dst_code && *dst_code && **dst_code != 0)
        return remote_failure(dst, dst.has_binary ? "podpipe recv into" : "tar extraction into",
                              **dst_code, out.stderr_tail());
    if (!relay_error.empty()) {
        print_error(relay_error + "; " + dst.name() + ":" + dst.loc.path + " is incomplete");
        return stop_.stop_requested() ? exit_interrupted : exit_failure;
    }
    if (!src_code) {
        print_error("pod " + src.name() + ": " + src_code.error().what());
        return exit_failure;
    }
    if (!*dst_code) {
        print_error("pod " + dst.name() + ": " + (*dst_code).error().what() + "; the copy into " +
                    dst.loc.path + " is not confirmed");
        return exit_failure;
    }
    pipeline::transfer_stats s;
    // Counts come from the receiving pod's report when it ran podpipe recv.
    s.files = json_u64(report.text, "files");
    s.directories = json_u64(report.text, "directories");
    s.symlinks = json_u64(report.text, "symlinks");
    s.hardlinks = json_u64(report.text, "hardlinks");
    s.content_bytes = json_u64(report.text, "content_bytes");
    s.chunks = json_u64(report.text, "chunks");
    s.manifest_checked = report.text.find("\"checked\":true") != std::string::npos;
    s.wire_bytes = progress_.wire_bytes.load();
    s.seconds = std::chrono::duration<double>(clock_type::now() - t0).count();
    return finish("relayed", src.name() + ":" + src.loc.path + " -> " + dst.name() + ":" +
                                 dst.loc.path,
                  s, report.text);
}

int run_copy(pod_copier& c, const location& src, const location& dst) {
    std::optional<pod_end> src_pod, dst_pod;
    if (src.remote) {
        auto p = c.probe(src);
        if (!p) {
            print_error(p.error());
            return exit_failure;
        }
        src_pod = *p;
    }
    if (dst.remote) {
        auto p = c.probe(dst);
        if (!p) {
            print_error(p.error());
            return exit_failure;
        }
        dst_pod = *p;
    }
    if (src_pod && dst_pod)
        return c.pod_to_pod(*src_pod, *dst_pod);
    if (src_pod)
        return c.pod_to_local(*src_pod, dst);
    return c.local_to_pod(src, *dst_pod);
}

int usage(const std::string& msg) {
    std::fprintf(stderr, "podpipe: cp: %s (see podpipe cp --help)\n", msg.c_str());
    return exit_usage;
}

} // namespace

int run_cp(const cp_flags& f) {
    auto src = parse_location(f.src);
    if (!src)
        return usage("SRC " + src.error());
    auto dst = parse_location(f.dst);
    if (!dst)
        return usage("DST " + dst.error());
    if (!src->remote && !dst->remote)
        return usage("one side must be a pod ([NAMESPACE/]POD:[CONTAINER:]PATH); for local "
                     "copies use `podpipe pack DIR | podpipe unpack DIR`");
    if (!src->remote) {
        struct stat st {};
        if (::stat(src->path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            return usage("SRC " + src->path + " is not a directory (cp copies directory trees)");
    }
    auto chunk = parse_size(f.chunk);
    if (!chunk)
        return usage("--chunk-size takes a size like 1M or 256K");
    auto threads = parse_size(f.threads);
    if (!threads || *threads > 256)
        return usage("--threads takes a number from 0 (auto) to 256");
    auto memory = parse_size(f.memory);
    if (!memory || *memory < (32u << 20))
        return usage("--memory takes a size of at least 32M, e.g. 256M");
    pipeline::send_options check;
    const auto level = parse_level(f.level);
    if (!level)
        return usage("--level takes 0 (stored) to 12, or auto");
    check.level = *level;
    check.chunk_bytes = static_cast<std::size_t>(*chunk);
    check.memory_bytes = static_cast<std::size_t>(*memory);
    if (auto ok = pipeline::check_send_options(check); !ok)
        return usage(ok.error());

    auto client = connect_cluster(f);
    if (!client) {
        print_error(client.error());
        return exit_failure;
    }
    std::stop_source stop;
    signal_stop signals(stop);
    copy_settings settings;
    settings.level = *level;
    settings.chunk_bytes = static_cast<std::size_t>(*chunk);
    settings.threads = static_cast<unsigned>(*threads);
    settings.memory_bytes = static_cast<std::size_t>(*memory);
    copier c(f, settings, **client, stop.get_token());
    return run_copy(c, *src, *dst);
}

std::unique_ptr<pod_copier> pod_copier::create(const cp_flags& flags, const copy_settings& settings,
                                               k8s::api_client& client, std::stop_token stop) {
    return std::make_unique<copier>(flags, settings, client, std::move(stop));
}

result<std::unique_ptr<k8s::api_client>, std::string> connect_cluster(const cp_flags& f) {
    k8s::config_sources sources = k8s::config_sources::from_process();
    if (!f.kubeconfig.empty())
        sources.kubeconfig = f.kubeconfig;
    sources.context = f.context;
    auto cfg = k8s::load_config(sources);
    if (!cfg)
        return fail(cfg.error().what());
    if (!f.ns.empty())
        cfg->ns = f.ns;
    if (cfg->insecure_skip_tls_verify)
        std::fprintf(stderr, "podpipe: warning: TLS verification is off for %s "
                             "(insecure-skip-tls-verify in the kubeconfig)\n", cfg->server.c_str());
    auto client = k8s::api_client::connect(std::move(*cfg));
    if (!client)
        return fail(client.error().what());
    return std::move(*client);
}

} // namespace podpipe::cli
