// podpipe: the transfer CLI. Exceptions stop here; everything below returns result<T>.
#include "engine/common/limits.hpp"
#include "engine/gzip/member_compressor.hpp"
#include "engine/pipeline/ledger.hpp"
#include "engine/pipeline/recv.hpp"
#include "engine/pipeline/send.hpp"
#include "remote/protocol.hpp"
#include "tools/podpipe/cli_util.hpp"
#include "tools/podpipe/run_step.hpp"
#ifndef PODPIPE_POD_ONLY
#include "tools/podpipe/bench.hpp"
#include "tools/podpipe/cp.hpp"
#endif

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace podpipe {
namespace {

constexpr const char* exit_codes_help = R"(Exit codes:
  0  success
  1  I/O or system error, or a stream that stalled (--stall-timeout)
  2  bad command line
  3  an archive entry would have landed outside the target directory (refused)
  4  corrupt or truncated stream, or the manifest did not match (verification failed)
  5  interrupted (SIGINT/SIGTERM))";

struct common_flags {
    bool pod_side = false; ///< recv/send: the in-pod end of `podpipe cp` (quiet, stdin/stdout)
    std::string threads = "0";
    std::string memory; ///< "": default_memory_budget() (engine/common/limits.hpp)
    bool progress = false;
    std::string stats_json;
    std::string stall_timeout = cli::default_stall_timeout;
};

struct pack_flags : common_flags {
    std::string dir;
    std::string output = "-";
    std::string level = "1";
    std::string chunk = "1M";
    std::vector<std::string> excludes;
    bool acks = false; ///< send: read the receiver's acknowledgements on stdin (see acks.hpp)
    bool allow_incomplete = false; ///< pack: files not read as on disk are warnings only
    bool watch_stdin = false; ///< send: stdin's end means the receiver is gone: stop
    std::string resume_from;  ///< send: a resumable receiver's offer (protocol::resume_word)
};

struct unpack_flags : common_flags {
    std::string dir;
    std::string input = "-";
    bool require_manifest = false;
    bool same_owner = false;
    bool no_verify = false; ///< recv: accept a stream without a manifest
    bool report = false;    ///< recv: print the stats JSON on stdout when done
    bool acks = false;      ///< recv: acknowledge the stream's start on stdout (see acks.hpp)
    std::vector<std::string> excludes; ///< recv: entries not to write
    bool allow_incomplete = false; ///< unpack: accept a stream whose sender reported problems
    std::string resumable;  ///< recv: the transfer's id: keep a ledger (pipeline/ledger.hpp)
    bool resume = false;    ///< recv: continue from the ledger, offer first on stdout
    std::string abandon;    ///< recv: remove the ledger of this transfer id, receive nothing
};

void add_common(CLI::App& cmd, common_flags& f) {
    cmd.add_option("--threads", f.threads, "Worker threads for (de)compression (default: the cores this process may use: its "
                   "CPU affinity, capped by the cgroup CPU quota)");
    cmd.add_option("--memory", f.memory,
                   "Memory budget for all transfer buffers, e.g. 64M, 1G (default 256M, or a quarter of "
                   "the cgroup memory limit when that is less, at least 32M)");
    cmd.add_flag("--progress", f.progress, "Print entries, bytes and MB/s to stderr while running");
    cmd.add_option("--stats-json", f.stats_json,
                   "Write per-stage counters (bytes, busy and blocked time) as JSON to FILE (- = stderr)");
    cmd.add_option("--stall-timeout", f.stall_timeout,
                   "Fail (exit 1) when the stream moves no byte for this long, e.g. 30s, 2m; "
                   "0 = wait forever (default 60s)");
}

int usage_error(const std::string& msg) {
    std::fprintf(stderr, "podpipe: %s (see --help)\n", msg.c_str());
    return cli::exit_usage;
}

bool parse_common(const common_flags& f, unsigned& threads, std::size_t& memory,
                  std::chrono::milliseconds& stall, int& rc) {
    auto t = cli::parse_size(f.threads);
    if (!t || *t > 256) {
        rc = usage_error("--threads takes a number from 0 (auto) to 256");
        return false;
    }
    auto m = f.memory.empty() ? std::optional<std::uint64_t>(default_memory_budget())
                              : cli::parse_size(f.memory);
    if (!m || *m < (32u << 20)) {
        rc = usage_error("--memory takes a size of at least 32M, e.g. 256M");
        return false;
    }
    auto st = cli::parse_duration(f.stall_timeout);
    if (!st) {
        rc = usage_error("--stall-timeout takes a duration like 60s, 500ms or 2m (0 = none)");
        return false;
    }
    threads = static_cast<unsigned>(*t);
    memory = static_cast<std::size_t>(*m);
    stall = *st;
    return true;
}

// A failed transfer: the message on stderr and, for `recv --report`, the protocol's failure
// line on stdout, which the local side reads where the report would have been.
int report_error(int code, const std::string& msg, bool failure_line) {
    std::fprintf(stderr, "podpipe: %s\n", msg.c_str());
    if (failure_line) {
        const std::string line = remote::protocol::failure_line({code, msg});
        if (std::fwrite(line.data(), 1, line.size(), stdout) == line.size())
            std::fflush(stdout);
    }
    return code;
}

// A stream that stopped moving: say which end and for how long, exit 1 (an I/O failure: the
// bytes that came are not at fault, the peer stopped).
int report_stall(const char* verb, const char* what, const common_flags& f,
                 bool failure_line = false) {
    return report_error(cli::exit_failure,
                        std::string(verb) + " failed: " + what + " stalled: no byte moved for " +
                            f.stall_timeout + " (--stall-timeout)",
                        failure_line);
}

int report_failure(const char* verb, const pipeline::transfer_error& e,
                   bool failure_line = false) {
    return report_error(pipeline::exit_status_for(e), std::string(verb) + " failed: " + e.what(),
                        failure_line);
}

int finish_ok(const char* verb, const common_flags& f, const pipeline::transfer_stats& s) {
    if (!f.pod_side)
        std::fprintf(stderr, "podpipe: %s\n", cli::summary_line(verb, s).c_str());
    if (!f.stats_json.empty() && !cli::write_text_file(f.stats_json, cli::stats_json(verb, s))) {
        std::fprintf(stderr, "podpipe: cannot write %s: %s\n", f.stats_json.c_str(),
                     std::strerror(errno));
        return cli::exit_failure;
    }
    return cli::exit_ok;
}

int run_pack(const pack_flags& f) {
    pipeline::send_options opt;
    int rc = 0;
    std::chrono::milliseconds stall{};
    if (!parse_common(f, opt.threads, opt.memory_bytes, stall, rc))
        return rc;
    auto chunk = cli::parse_size(f.chunk);
    if (!chunk)
        return usage_error("--chunk-size takes a size like 1M or 256K");
    opt.chunk_bytes = static_cast<std::size_t>(*chunk);
    const auto level = cli::parse_level(f.level);
    if (!level)
        return usage_error("--level takes 0 (stored) to 12, or auto");
    opt.level = *level;
    opt.excludes = f.excludes;
    if (auto ok = pipeline::check_send_options(opt); !ok)
        return usage_error(ok.error());
    if (!f.resume_from.empty()) {
        auto offer = remote::protocol::parse_resume_word(f.resume_from);
        if (!offer)
            return usage_error("--resume-from takes OFFSET:ENTRIES:BYTES:DIGEST as a resumable "
                               "receiver offers it");
        opt.resume_from = pipeline::resume_offer{offer->offset, offer->before};
    }

    int fd = STDOUT_FILENO;
    if (f.output != "-") {
        fd = ::open(f.output.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) {
            std::fprintf(stderr, "podpipe: cannot create %s: %s\n", f.output.c_str(),
                         std::strerror(errno));
            return cli::exit_failure;
        }
    } else if (::isatty(STDOUT_FILENO) && !f.pod_side) {
        return usage_error("refusing to write a compressed stream to a terminal; use -o FILE or a pipe");
    }
    pipeline::live_progress progress;
    opt.progress = &progress;
    std::stop_source stop;
    cli::signal_stop signals(stop);
    pipeline::ack_counter acks;
    std::optional<pipeline::ack_listener> listener;
    std::atomic<bool> receiver_gone{false};
    const bool read_acks = f.acks && opt.level == pipeline::auto_level;
    if (read_acks || f.watch_stdin) {
        std::function<void()> on_end;
        if (f.watch_stdin) // the receiver holds stdin open while it reads: its end is a cancel
            on_end = [&] {
                receiver_gone.store(true);
                stop.request_stop();
            };
        listener.emplace(STDIN_FILENO, acks, std::move(on_end));
        if (read_acks)
            opt.acks = &acks;
    }
    pipeline::fd_sink sink(fd, stall);
    result<pipeline::transfer_stats, pipeline::transfer_error> r =
        fail(std::make_error_code(std::errc::interrupted));
    {
        cli::progress_printer printer(progress, f.progress, "packed");
        r = pipeline::send_tree(f.dir, sink, opt, stop.get_token());
    }
    if (fd != STDOUT_FILENO && ::close(fd) != 0 && r) {
        std::fprintf(stderr, "podpipe: closing %s: %s\n", f.output.c_str(), std::strerror(errno));
        return cli::exit_failure;
    }
    const char* verb = f.pod_side ? "send" : "pack";
    if (!r && sink.stalled())
        return report_stall(verb, fd == STDOUT_FILENO ? "writing to stdout" : "writing the output",
                            f);
    if (!r && receiver_gone.load()) {
        std::fprintf(stderr, "podpipe: %s stopped: the receiver closed stdin (it is gone)\n", verb);
        return cli::exit_interrupted;
    }
    if (!r)
        return report_failure(verb, r.error());
    if (const int done = finish_ok("packed", f, *r); done != cli::exit_ok)
        return done;
    // The in-pod sender reports its problems in the stream; the receiving side decides.
    return f.pod_side ? cli::exit_ok : cli::problems_exit("pack", *r, f.allow_incomplete, false);
}

// `recv --abandon ID`: the copy that kept ledger ID failed for good, nothing continues it.
int abandon_ledger(const unpack_flags& f) {
    if (!pipeline::valid_transfer_id(f.abandon))
        return usage_error("--abandon takes an id of 1 to 64 letters, digits, '-', '_'");
    if (!f.resumable.empty() || f.resume)
        return usage_error("--abandon receives nothing: no --resumable or --resume with it");
    // A receiver of the cut session may still be running (its stdin not yet closed): it holds
    // the lock until it ends, and would commit again after a removal without it.
    auto files = pipeline::ledger_files::open(f.dir, f.abandon, std::chrono::seconds(10));
    if (!files) {
        if (files.error() == std::errc::no_such_file_or_directory)
            return cli::exit_ok; // no DIR: nothing to remove
        std::fprintf(stderr, "podpipe: recv --abandon: %s: %s\n", f.dir.c_str(),
                     files.error().message().c_str());
        return cli::exit_failure;
    }
    files->remove();
    return cli::exit_ok;
}

int run_unpack(const unpack_flags& f) {
    if (!f.abandon.empty())
        return abandon_ledger(f);
    pipeline::recv_options opt;
    int rc = 0;
    std::chrono::milliseconds stall{};
    if (!parse_common(f, opt.threads, opt.memory_bytes, stall, rc))
        return rc;
    opt.require_manifest = f.pod_side ? !f.no_verify : f.require_manifest;
    opt.restore_owner = f.same_owner;
    opt.excludes = f.excludes;
    if (f.resume && f.resumable.empty())
        return usage_error("--resume needs --resumable ID");
    if (!f.resumable.empty()) {
        if (!pipeline::valid_transfer_id(f.resumable))
            return usage_error("--resumable takes an id of 1 to 64 letters, digits, '-', '_'");
        pipeline::resume_options r;
        r.id = f.resumable;
        r.resume = f.resume;
        // With --resume the sender waits for this line before it sends anything.
        if (f.resume)
            r.on_offer = [](const pipeline::resume_offer& o, const std::string& why) {
                const std::string line = remote::protocol::resume_line({o.offset, o.before, why});
                if (std::fwrite(line.data(), 1, line.size(), stdout) == line.size())
                    std::fflush(stdout);
            };
        opt.resumable = std::move(r);
    }

    int fd = STDIN_FILENO;
    if (f.input != "-") {
        fd = ::open(f.input.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return report_error(cli::exit_failure,
                                "cannot open " + f.input + ": " + std::strerror(errno), f.report);
    }
    pipeline::live_progress progress;
    opt.progress = &progress;
    std::stop_source stop;
    cli::signal_stop signals(stop);
    pipeline::fd_source source(fd, stall);
    pipeline::fd_sink ack_out(STDOUT_FILENO, stall);
    pipeline::acking_source acking(source, ack_out);
    result<pipeline::transfer_stats, pipeline::transfer_error> r =
        fail(std::make_error_code(std::errc::interrupted));
    {
        cli::progress_printer printer(progress, f.progress, "unpacked");
        pipeline::byte_source& in = f.acks ? static_cast<pipeline::byte_source&>(acking) : source;
        r = pipeline::recv_tree(in, f.dir, opt, stop.get_token());
    }
    if (fd != STDIN_FILENO)
        ::close(fd);
    if (!r && source.stalled())
        return report_stall(f.pod_side ? "recv" : "unpack",
                            fd == STDIN_FILENO ? "reading stdin" : "reading the input", f,
                            f.report);
    if (!r)
        return report_failure(f.pod_side ? "recv" : "unpack", r.error(), f.report);
    if (f.report) {
        const std::string json = cli::stats_json("recv", *r);
        if (std::fwrite(json.data(), 1, json.size(), stdout) != json.size() || std::fflush(stdout) != 0)
            return cli::exit_failure;
    }
    if (const int done = finish_ok("unpacked", f, *r); done != cli::exit_ok)
        return done;
    // recv's report carries the problems to the caller, which decides.
    return f.pod_side ? cli::exit_ok : cli::problems_exit("unpack", *r, f.allow_incomplete, true);
}

int run(int argc, char** argv) {
    CLI::App app{"podpipe: fast, verified directory transfer (parallel gzip'd tar streams)\n"
                 "for Kubernetes pods and local pipes."};
    app.require_subcommand(1);
    app.footer(exit_codes_help);
    app.set_version_flag("--version", [] {
        return std::string(cli::version_line) + "\ngzip level 1: " +
               (gzip::isal_available() ? "ISA-L igzip" : "libdeflate");
    });

    pack_flags pf;
    auto* pack = app.add_subcommand(
        "pack", "Write DIR as a gzip'd tar stream (parallel members, any `tar xzf` reads it)");
    pack->add_option("DIR", pf.dir, "Directory to send")->required()->check(CLI::ExistingDirectory);
    pack->add_option("-o,--output", pf.output, "Output file, - for stdout (default)");
    pack->add_option("-l,--level", pf.level,
                     "Compression level 0 (stored) to 12 (default 1, chosen by benchmark), or "
                     "auto: per chunk, higher while the output is the bottleneck");
    pack->add_option("--chunk-size", pf.chunk, "Uncompressed bytes per gzip member, 64K..8M (default 1M)");
    pack->add_option("--exclude", pf.excludes,
                     "Skip paths matching this pattern (GNU tar --exclude rules); repeatable");
    pack->add_flag("--allow-incomplete", pf.allow_incomplete,
                   "Exit 0 even if some files could not be read, or changed while being read "
                   "(they are warnings; the stream tells the receiver)");
    add_common(*pack, pf);

    unpack_flags uf;
    auto* unpack = app.add_subcommand(
        "unpack", "Extract a podpipe stream, any gzip'd tar, or a plain tar into DIR (created if "
                  "missing); refuses entries that would land outside DIR");
    unpack->add_option("DIR", uf.dir, "Target directory")->required();
    unpack->add_option("-i,--input", uf.input, "Input file, - for stdin (default)");
    unpack->add_flag("--require-manifest", uf.require_manifest,
                     "Fail unless the stream carries a podpipe manifest (and it matches)");
    unpack->add_flag("--same-owner", uf.same_owner, "Restore owners (uid/gid) from the stream");
    unpack->add_flag("--allow-incomplete", uf.allow_incomplete,
                     "Exit 0 even if the sender reported files it could not send as they are "
                     "on its disk (printed as warnings)");
    add_common(*unpack, uf);

    // The in-pod ends of `podpipe cp`: the caller runs them through exec, stdin/stdout carry the
    // stream, stderr carries errors only.
    pack_flags sf;
    sf.pod_side = true;
    auto* send = app.add_subcommand(
        "send", "In-pod end of `podpipe cp`: write DIR as a podpipe stream to stdout, quietly");
    send->add_option("DIR", sf.dir, "Directory to send")->required()->check(CLI::ExistingDirectory);
    send->add_option("-l,--level", sf.level, "Compression level 0..12 or auto (default 1)");
    send->add_option("--chunk-size", sf.chunk, "Uncompressed bytes per gzip member (default 1M)");
    send->add_option("--exclude", sf.excludes, "Skip paths matching this pattern; repeatable");
    send->add_flag("--acks", sf.acks,
                   "With --level auto: read the receiver's \"podpipe-ack BYTES\" lines on stdin "
                   "and measure the link with them before picking levels");
    send->add_flag("--watch-stdin", sf.watch_stdin,
                   "The receiver holds stdin open while it reads: its end before the stream's "
                   "end means the receiver is gone, and the send stops (exit 5)");
    send->add_option("--resume-from", sf.resume_from,
                     "Continue a transfer a resumable receiver has part of: its offer "
                     "(OFFSET:ENTRIES:BYTES:DIGEST); nothing before OFFSET is sent, and a source "
                     "that changed before it fails (exit 4, \"cannot resume\")");
    add_common(*send, sf);

    unpack_flags rf;
    rf.pod_side = true;
    auto* recv = app.add_subcommand(
        "recv", "In-pod end of `podpipe cp`: extract the stream on stdin into DIR (created if "
                "missing) and verify it against its manifest");
    recv->add_option("DIR", rf.dir, "Target directory")->required();
    recv->add_flag("--no-verify", rf.no_verify, "Accept a stream that carries no manifest");
    recv->add_flag("--report", rf.report, "Print the transfer's stats as one JSON line on stdout");
    recv->add_flag("--acks", rf.acks,
                   "Report on stdout how far the stream has been read (\"podpipe-ack BYTES\" lines, "
                   "every 32 KiB, later 256 KiB): the sender's auto level measures the link with them");
    recv->add_flag("--same-owner", rf.same_owner, "Restore owners (uid/gid) from the stream");
    recv->add_option("--exclude", rf.excludes, "Do not write entries matching this pattern; repeatable");
    recv->add_option("--resumable", rf.resumable,
                     "Keep a ledger (.podpipe-resume-ID in DIR, removed when done) so that a "
                     "later recv of the same ID continues this one if it is cut off");
    recv->add_flag("--resume", rf.resume,
                   "With --resumable: continue from the ledger; the first stdout line says where "
                   "the sender starts (a JSON `resume` message; offset 0: from the beginning)");
    recv->add_option("--abandon", rf.abandon,
                     "Receive nothing: remove the ledger of transfer ID from DIR (a copy that "
                     "failed for good; waits a few seconds for a receiver of it still running). "
                     "No ledger, or no DIR: success");
    add_common(*recv, rf);

    // What the local side of `podpipe cp` asks first (remote/protocol.hpp): this binary's
    // protocol version and capabilities, as one JSON line.
    auto* hello = app.add_subcommand(
        "hello", "In-pod: print this podpipe's protocol version and capabilities as one JSON "
                 "line (what `podpipe cp` asks a pod's copy first)");

    cli::run_flags runf;
    auto* run_cmd = cli::add_run_command(app, runf);

#ifndef PODPIPE_POD_ONLY
    cli::cp_flags cf;
    auto* cp = app.add_subcommand(
        "cp", "Copy a directory into a pod, out of a pod, or between pods through exec "
              "(SRC/DST: local PATH or [NAMESPACE/]POD:[CONTAINER:]PATH)");
    cp->add_option("SRC", cf.src, "Source directory: local path or [NAMESPACE/]POD:[CONTAINER:]PATH")
        ->required();
    cp->add_option("DST", cf.dst, "Target directory (created if missing), same forms")->required();
    cp->add_option("-l,--level", cf.level,
                   "Compression level 0 (stored) to 12, or auto (default): level 1, raised per "
                   "chunk up to 7 while a slow link (< 100 Mbit/s) is the bottleneck");
    cp->add_option("--chunk-size", cf.chunk, "Uncompressed bytes per gzip member, 64K..8M (default 1M)");
    cp->add_option("--threads", cf.threads, "Local (de)compression threads (default: cores available)");
    cp->add_option("--pod-threads", cf.pod_threads,
                   "(De)compression threads of the in-pod podpipe (default 0: the cores the pod "
                   "may use, its CPU quota included)");
    cp->add_option("--memory", cf.memory, "Local memory budget for transfer buffers (default as for pack)");
    cp->add_option("--exclude", cf.excludes, "Skip paths matching this pattern (GNU tar rules); repeatable");
    cp->add_flag("--progress", cf.progress, "Print bytes and MB/s to stderr while running");
    cp->add_flag("--no-verify", cf.no_verify,
                 "Do not require the receiver to check the stream against its manifest");
    cp->add_flag("--allow-incomplete", cf.allow_incomplete,
                 "Exit 0 even if the sender could not read some files, or they changed while "
                 "being read (listed as warnings; by default the copy fails)");
    cp->add_option("--stats-json", cf.stats_json,
                   "Write the transfer's counters (and the pod side's) as JSON to FILE (- = stderr)");
    cp->add_option("--pod-binary", cf.pod_binary,
                   "Path of podpipe inside pods (default /__e/podpipe/podpipe); 'none' = use the "
                   "pod's tar");
    cp->add_option("--kubeconfig", cf.kubeconfig, "Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)");
    cp->add_option("--context", cf.context, "Kubeconfig context (default: current-context)");
    cp->add_option("-n,--namespace", cf.ns, "Namespace of pods given without one");
    cp->add_flag("-v,--verbose", cf.verbose, "Say how each pod is reached (in-pod podpipe or tar, exec protocol)");
    cp->add_flag("--exec-v4", cf.exec_v4, "Offer only the v4.channel.k8s.io exec protocol (old clusters, tests)");
    cp->add_option("--stall-timeout", cf.stall_timeout,
                   "Fail (exit 1) when the stream moves no byte for this long, e.g. 30s, 2m; "
                   "0 = wait forever (default 60s). Also given to the in-pod podpipe");
    cp->add_option("--retry-for", cf.retry_for,
                   "After a failure that can pass (a dropped or refused connection, an API-server "
                   "restart, a killed in-pod podpipe), try the copy again with backoff for this "
                   "long, e.g. 30s, 5m; 0 = one attempt (default: $PODPIPE_COPY_RETRY_SECONDS "
                   "seconds, else 2m). Between podpipe ends a retry continues where the "
                   "receiver stopped");
    cp->add_flag("--no-resume", cf.no_resume,
                 "Retries start the copy over: the receiver keeps no ledger (.podpipe-resume-*) "
                 "in the target");

    cli::bench_flags bf;
    auto* bench = app.add_subcommand(
        "bench", "Measure the exec path to a pod and transfers with a matrix of levels, chunk "
                 "sizes and threads, both directions, in-pod podpipe vs the pod's tar; recommend "
                 "settings");
    bench->add_option("--pod", bf.pod, "[NAMESPACE/]POD[:CONTAINER] to measure against")->required();
    bench->add_option("--dir", bf.dir, "Local tree to transfer");
    bench->add_option("--synthetic", bf.synthetic,
                      "Generate a deterministic tree instead: files=N,size=S,dist=source|node_modules|binaries");
    bench->add_option("--budget", bf.budget, "Time budget for the matrix, e.g. 60s, 2m (default 60s)");
    bench->add_option("--pod-dir", bf.pod_dir, "Scratch directory in the pod, removed at the end (default /tmp/podpipe-bench)");
    bench->add_flag("--json", bf.json, "Print the results as one JSON object");
    bench->add_option("--pod-binary", bf.connection.pod_binary, "Path of podpipe inside the pod; 'none' = the pod's tar only");
    bench->add_option("--kubeconfig", bf.connection.kubeconfig, "Kubeconfig file");
    bench->add_option("--context", bf.connection.context, "Kubeconfig context");
    bench->add_option("-n,--namespace", bf.connection.ns, "Namespace when --pod has none");
    bench->add_flag("--exec-v4", bf.connection.exec_v4, "Offer only the v4.channel.k8s.io exec protocol");
#endif

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int rc = app.exit(e);
        return rc == 0 ? 0 : cli::exit_usage;
    }
    if (*hello) {
        const std::string line = remote::protocol::hello_line(
            remote::protocol::this_hello(gzip::isal_available() ? "ISA-L igzip" : "libdeflate"));
        const bool ok = std::fwrite(line.data(), 1, line.size(), stdout) == line.size() &&
                        std::fflush(stdout) == 0;
        return ok ? cli::exit_ok : cli::exit_failure;
    }
    if (*run_cmd)
        return cli::run_step(runf);
    if (*pack)
        return run_pack(pf);
    if (*unpack)
        return run_unpack(uf);
#ifndef PODPIPE_POD_ONLY
    if (*cp)
        return cli::run_cp(cf);
    if (*bench)
        return cli::run_bench(bf);
#endif
    if (*send)
        return run_pack(sf);
    if (*recv)
        return run_unpack(rf);
    return cli::exit_usage;
}

} // namespace
} // namespace podpipe

int main(int argc, char** argv) {
    try {
        return podpipe::run(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "podpipe: fatal: %s\n", e.what());
        return podpipe::cli::exit_failure;
    }
}
