#include "tools/podpipe/bench.hpp"

#include "tools/podpipe/bench_report.hpp"

#include "engine/pipeline/send.hpp"
#include "kube/client.hpp"
#include "tools/podpipe/cli_util.hpp"
#include "tools/podpipe/copier.hpp"
#include "tools/podpipe/location.hpp"
#include "tools/podpipe/synthetic.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

namespace podpipe::cli {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double cpu_seconds() {
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

long max_rss_kib() {
    struct rusage ru {};
    ::getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

class bench_run {
public:
    /// `stop` (SIGINT/SIGTERM) aborts the exec or copy that runs and every later one.
    bench_run(const bench_flags& f, kube::api_client& client, remote::pod_end pod, fs::path tree,
              fs::path scratch, std::stop_token stop)
        : f_(f)
        , client_(client)
        , pod_(std::move(pod))
        , tree_(std::move(tree))
        , scratch_(std::move(scratch))
        , stop_(std::move(stop)) {}

    // Raw exec: bytes through stdin and stdout with nothing else in the way, and the cost of
    // one exec round trip (connect, upgrade, run `true`, status).
    result<exec_numbers, std::string> measure_exec(std::uint64_t bytes) {
        exec_numbers out;
        std::vector<double> rtts;
        for (int i = 0; i < 5; ++i) {
            const auto t0 = clock_type::now();
            auto code = run({"true"}, nullptr);
            if (!code)
                return fail(code.error());
            rtts.push_back(seconds_since(t0) * 1000);
        }
        std::sort(rtts.begin(), rtts.end());
        out.rtt_ms = rtts[rtts.size() / 2];

        // head -c: ends by itself also where stdin cannot be half-closed (v4).
        std::vector<std::byte> zeros(256 << 10);
        const auto t_up = clock_type::now();
        auto up = run({"sh", "-c", "head -c " + std::to_string(bytes) + " >/dev/null"},
                      [&](pipeline::byte_sink& in) {
                          for (std::uint64_t sent = 0; sent < bytes;) {
                              const std::size_t n = static_cast<std::size_t>(
                                  std::min<std::uint64_t>(zeros.size(), bytes - sent));
                              if (auto w = in.write(std::span(zeros).first(n)); !w)
                                  return false;
                              sent += n;
                          }
                          return static_cast<bool>(in.finish());
                      });
        if (!up)
            return fail("upload: " + up.error());
        out.upload_mbps = static_cast<double>(bytes) / 1e6 / seconds_since(t_up);

        const auto t_down = clock_type::now();
        auto down = run({"head", "-c", std::to_string(bytes), "/dev/zero"}, nullptr);
        if (!down)
            return fail("download: " + down.error());
        out.download_mbps = static_cast<double>(bytes) / 1e6 / seconds_since(t_down);
        return out;
    }

    bench_cell transfer(const std::string& direction, bool use_binary, const std::string& level,
                  std::size_t chunk, unsigned threads) {
        bench_cell c;
        c.direction = direction;
        c.pod_side = use_binary ? "podpipe" : "tar";
        c.level = level;
        c.chunk = chunk;
        c.threads = threads;
        cp_flags flags = f_.connection;
        flags.level = level;
        flags.chunk = size_label(chunk);
        flags.threads = std::to_string(threads);
        auto options = copy_options_from(flags);
        if (!options) {
            c.error = options.error();
            return c;
        }
        remote::pod_end pod = pod_;
        pod.has_binary = use_binary;
        pod.loc.path = f_.pod_dir + "/tree";
        const fs::path local = scratch_ / "from-pod";
        std::error_code ec;
        fs::remove_all(local, ec);
        if (direction == "to pod")
            (void)run({"rm", "-rf", pod.loc.path}, nullptr);
        remote::pod_copier copier(client_, std::move(*options), stop_);
        const double cpu0 = cpu_seconds();
        const auto t0 = clock_type::now();
        const remote::copy_result copied = direction == "to pod"
                                               ? copier.local_to_pod(tree_.string(), pod)
                                               : copier.pod_to_local(pod, local.string());
        c.seconds = seconds_since(t0);
        c.local_cpu_s = cpu_seconds() - cpu0;
        c.ok = copied.has_value();
        if (!c.ok) {
            const remote::copy_error& e = copied.error();
            c.error = "exit " + std::to_string(e.status) + ": " + e.message;
            return c;
        }
        const remote::copy_report& o = *copied;
        const auto& s = o.stats;
        c.content_bytes = s.content_bytes;
        c.wire_bytes = s.wire_bytes;
        if (o.remote) { // the pod ran podpipe recv: its report says what it cost there
            c.remote_cpu_s = o.remote->usage.cpu_user_s + o.remote->usage.cpu_sys_s;
            c.remote_rss_mib = static_cast<double>(o.remote->usage.max_rss_kib) / 1024;
        }
        return c;
    }

    /// Removes the pod's scratch directory. Not stopped by the stop token: it runs after an
    /// interruption too. Then the aborted copy's in-pod receiver may still be writing what it
    /// had buffered (it ends when it reads the end of its closed stdin), and could create
    /// files again after one `rm`: the pod removes the directory until it stays gone for a
    /// second (at most ten tries).
    void cleanup(bool after_interrupt) {
        std::vector<std::string> command{"rm", "-rf", "--", f_.pod_dir};
        if (after_interrupt)
            command = {"sh", "-c",
                       "i=0; while [ $i -lt 10 ]; do rm -rf -- \"$1\"; sleep 1; "
                       "[ -e \"$1\" ] || exit 0; i=$((i+1)); done; "
                       "echo \"$1 keeps coming back\" >&2; exit 1",
                       "sh", f_.pod_dir};
        if (auto r = run(std::move(command), nullptr, {}); !r)
            std::fprintf(stderr, "podpipe: bench: could not remove %s from the pod: %s\n",
                         f_.pod_dir.c_str(), r.error().c_str());
    }

    // Prepares the tree inside the pod for the from-pod runs (with the fastest settings).
    bool seed_pod() {
        return transfer("to pod", pod_.has_binary, "1", 1 << 20, 0).ok;
    }

private:
    using stdin_writer = std::function<bool(pipeline::byte_sink&)>;

    result<int, std::string> run(std::vector<std::string> command, const stdin_writer& writer) {
        return run(std::move(command), writer, stop_);
    }

    result<int, std::string> run(std::vector<std::string> command, const stdin_writer& writer,
                                 std::stop_token stop) {
        kube::exec_options o;
        o.ns = pod_.loc.ns;
        o.pod = pod_.loc.pod;
        o.container = pod_.loc.container;
        o.command = std::move(command);
        o.use_stdin = static_cast<bool>(writer);
        kube::exec_session_options so;
        so.offer_v5 = !f_.connection.exec_v4;
        so.stop = stop;
        auto s = client_.exec(o, so);
        if (!s)
            return fail(s.error().what());
        std::stop_callback abort_on_stop(stop, [&s] { (*s)->abort(); });
        bool wrote = true;
        std::optional<result<int, kube::api_error>> code;
        {
            std::jthread reader([&] { code = (*s)->wait(); });
            if (writer)
                wrote = writer((*s)->stdin_sink());
            if (!wrote)
                (*s)->abort();
        }
        if (!*code)
            return fail(code->error().what());
        if (**code != 0)
            return fail("exit " + std::to_string(**code) + ": " + (*s)->stderr_tail());
        return **code;
    }

    const bench_flags& f_;
    kube::api_client& client_;
    remote::pod_end pod_;
    fs::path tree_;
    fs::path scratch_;
    std::stop_token stop_;
};

void print_table(const std::vector<bench_cell>& cells) {
    std::printf("\n| direction | pod side | level | chunk | threads | s | MB/s | wire MB "
                "| local CPU s | pod CPU s | pod RSS MiB |\n");
    std::printf("|---|---|---|---|---|---:|---:|---:|---:|---:|---:|\n");
    for (const bench_cell& c : cells) {
        const std::string threads = c.threads == 0 ? "auto" : std::to_string(c.threads);
        if (!c.ok) {
            std::printf("| %s | %s | %s | %s | %s | failed: %s | | | | | |\n", c.direction.c_str(),
                        c.pod_side.c_str(), c.level.c_str(), size_label(c.chunk).c_str(),
                        threads.c_str(), c.error.c_str());
            continue;
        }
        std::printf("| %s | %s | %s | %s | %s | %.2f | %.1f | %.1f | %.2f | %s | %s |\n",
                    c.direction.c_str(), c.pod_side.c_str(), c.level.c_str(),
                    size_label(c.chunk).c_str(), threads.c_str(), c.seconds, c.mbps(),
                    static_cast<double>(c.wire_bytes) / 1e6, c.local_cpu_s,
                    c.remote_cpu_s ? std::to_string(*c.remote_cpu_s).substr(0, 5).c_str() : "-",
                    c.remote_rss_mib ? std::to_string(static_cast<int>(*c.remote_rss_mib)).c_str()
                                     : "-");
    }
}

} // namespace

int run_bench(const bench_flags& f) {
    auto usage = [](const std::string& msg) {
        std::fprintf(stderr, "podpipe: bench: %s (see podpipe bench --help)\n", msg.c_str());
        return exit_usage;
    };
    if (f.dir.empty() == f.synthetic.empty())
        return usage("give exactly one of --dir TREE and --synthetic SPEC");
    const auto budget_time = parse_duration(f.budget);
    const std::optional<double> budget =
        budget_time && budget_time->count() > 0
            ? std::optional<double>(static_cast<double>(budget_time->count()) / 1e3)
            : std::nullopt;
    if (!budget)
        return usage("--budget takes seconds like 60s or 2m");
    if (!f.pod_dir.starts_with('/') || f.pod_dir == "/")
        return usage("--pod-dir must be an absolute directory other than /");
    auto loc = parse_location(f.pod + ":" + f.pod_dir);
    if (!loc || !loc->remote)
        return usage("--pod takes [NAMESPACE/]POD[:CONTAINER]");

    char tmpl[] = "/var/tmp/podpipe-bench.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
        std::perror("podpipe: bench: mkdtemp");
        return exit_failure;
    }
    const fs::path scratch = tmpl;
    std::stop_source stop;
    signal_stop signals(stop);
    struct remove_scratch {
        fs::path p;
        ~remove_scratch() {
            std::error_code ec;
            fs::remove_all(p, ec);
        }
    } guard{scratch};

    fs::path tree = f.dir;
    if (!f.synthetic.empty()) {
        auto spec = parse_synthetic_spec(f.synthetic);
        if (!spec)
            return usage("--synthetic " + spec.error());
        tree = scratch / "tree";
        std::fprintf(stderr, "podpipe: bench: generating %s tree: %llu files, %llu MB\n",
                     spec->dist.c_str(), static_cast<unsigned long long>(spec->files),
                     static_cast<unsigned long long>(spec->bytes / 1000000));
        auto made = make_synthetic_tree(*spec, tree);
        if (!made) {
            std::fprintf(stderr, "podpipe: bench: %s\n", made.error().c_str());
            return exit_failure;
        }
    } else if (!fs::is_directory(tree)) {
        return usage("--dir " + f.dir + " is not a directory");
    }

    auto client = connect_cluster(f.connection);
    if (!client) {
        std::fprintf(stderr, "podpipe: bench: %s\n", client.error().c_str());
        return exit_failure;
    }
    auto probe_options = copy_options_from(f.connection);
    if (!probe_options)
        return usage(probe_options.error());
    probe_options->on_warning = [](const std::string& line) {
        std::fprintf(stderr, "podpipe: bench: warning: %s\n", line.c_str());
    };
    remote::pod_copier prober(**client, std::move(*probe_options), stop.get_token());
    auto pod = prober.probe({loc->ns, loc->pod, loc->container, loc->path});
    if (!pod) {
        std::fprintf(stderr, "podpipe: bench: %s\n", pod.error().message.c_str());
        return pod.error().status;
    }
    const auto t_start = clock_type::now();
    bench_run run(f, **client, *pod, tree, scratch, stop.get_token());
    // SIGINT/SIGTERM: what runs is aborted, nothing more starts, the pod's scratch goes.
    auto interrupted = [&] {
        run.cleanup(true);
        std::fprintf(stderr, "podpipe: bench: interrupted\n");
        return exit_interrupted;
    };
    auto progress = [&](const std::string& what) {
        if (!f.json || ::isatty(STDERR_FILENO))
            std::fprintf(stderr, "podpipe: bench [%5.1f s]: %s\n", seconds_since(t_start),
                         what.c_str());
    };
    progress(
        "pod " + pod->name() + ": " +
        (pod->has_binary ? "in-pod " + f.connection.pod_binary : std::string("no in-pod podpipe")) +
        ", exec " + pod->protocol);

    auto exec = run.measure_exec(32u << 20);
    if (stop.stop_requested())
        return interrupted();
    if (!exec) {
        std::fprintf(stderr, "podpipe: bench: raw exec: %s\n", exec.error().c_str());
        return exit_failure;
    }
    progress("raw exec: upload " + std::to_string(static_cast<int>(exec->upload_mbps)) +
             " MB/s, download " + std::to_string(static_cast<int>(exec->download_mbps)) +
             " MB/s, round trip " + std::to_string(static_cast<int>(exec->rtt_ms)) + " ms");

    std::vector<bench_cell> cells;
    cells.reserve(32);
    auto record = [&](bench_cell c) { // said as it ends, kept for the table
        progress(
            c.direction + ", pod side " + c.pod_side + ", level " + c.level + ", chunk " +
            size_label(c.chunk) + ": " +
            (c.ok ? std::to_string(c.mbps()).substr(0, 6) + " MB/s" : "failed (" + c.error + ")"));
        cells.push_back(std::move(c));
    };
    auto within_budget = [&] {
        return seconds_since(t_start) < *budget && !stop.stop_requested();
    };
    auto add = [&](const std::string& dir, bool binary, const std::string& level, std::size_t chunk,
                   unsigned threads) {
        if (!within_budget())
            return;
        record(run.transfer(dir, binary, level, chunk, threads));
    };
    auto best = [&](const std::string& dir, const std::string& side) -> const bench_cell* {
        const bench_cell* b = nullptr;
        for (const bench_cell& c : cells)
            if (c.ok && c.direction == dir && c.pod_side == side && (!b || c.mbps() > b->mbps()))
                b = &c;
        return b;
    };

    const bool binary = pod->has_binary;
    const std::string side = binary ? "podpipe" : "tar";
    // Baselines first, always (the budget bounds only the exploration after them): each
    // direction at the default settings, with the in-pod podpipe and with the pod's tar.
    auto always = [&](auto&&... args) {
        if (stop.stop_requested())
            return;
        record(run.transfer(args...));
    };
    always(std::string("to pod"), binary, std::string("1"), std::size_t{1} << 20, 0u);
    if (binary)
        always(std::string("to pod"), false, std::string("1"), std::size_t{1} << 20, 0u);
    // The last run into the pod left the tree there; copy it again only if that run failed.
    if (stop.stop_requested())
        return interrupted();
    if ((cells.back().ok && cells.back().direction == "to pod") || run.seed_pod()) {
        if (binary)
            always(std::string("from pod"), true, std::string("1"), std::size_t{1} << 20, 0u);
        always(std::string("from pod"), false, std::string("1"), std::size_t{1} << 20, 0u);
    }
    // Then the matrix: levels (the biggest lever), chunk size and threads around the best.
    // 7 is auto's top rung; 9 compresses a little smaller at several times the CPU.
    for (const char* level : {"auto", "0", "3", "6", "7"})
        add("to pod", binary, level, 1 << 20, 0);
    if (const bench_cell* b = best("to pod", side)) {
        const std::string level = b->level;
        for (std::size_t chunk : {std::size_t{256} << 10, std::size_t{4} << 20})
            add("to pod", binary, level, chunk, 0);
        b = best("to pod", side);
        const std::string best_level = b->level;
        const std::size_t best_chunk = b->chunk;
        add("to pod", binary, best_level, best_chunk, 1);
    }
    if (binary)
        add("from pod", true, "auto", 1 << 20, 0);
    if (stop.stop_requested())
        return interrupted();
    run.cleanup(false);

    const bench_cell* rec = best("to pod", side);
    if (f.json) {
        bench_summary summary;
        summary.pod = pod->name();
        summary.pod_binary = binary;
        summary.protocol = pod->protocol;
        summary.tree = tree.string();
        summary.exec = *exec;
        summary.local_max_rss_kib = max_rss_kib();
        if (rec != nullptr)
            summary.recommended = *rec;
        summary.cells = std::move(cells);
        std::fputs(bench_json(summary).c_str(), stdout);
        return rec ? exit_ok : exit_failure;
    }
    std::printf("podpipe bench: pod %s (%s, exec %s), tree %s\n", pod->name().c_str(),
                binary ? "in-pod podpipe" : "pod's tar", pod->protocol.c_str(), tree.c_str());
    std::printf("raw exec: upload %.1f MB/s, download %.1f MB/s, round trip %.1f ms\n",
                exec->upload_mbps, exec->download_mbps, exec->rtt_ms);
    print_table(cells);
    std::printf("\nlocal peak RSS: %ld MiB\n", max_rss_kib() / 1024);
    if (!rec) {
        std::printf("no transfer succeeded; see the errors above\n");
        return exit_failure;
    }
    std::printf("recommended: podpipe cp --level %s --chunk-size %s%s  (%.1f MB/s into the pod)\n",
                rec->level.c_str(), size_label(rec->chunk).c_str(),
                rec->threads == 0 ? "" : (" --threads " + std::to_string(rec->threads)).c_str(),
                rec->mbps());
    std::printf("for podpipe-hook, in the runner pod's env: PODPIPE_COMPRESSION_LEVEL=%s "
                "PODPIPE_CHUNK_SIZE=%s PODPIPE_THREADS=%u\n",
                rec->level.c_str(), hook_size(rec->chunk).c_str(), rec->threads);
    return exit_ok;
}

} // namespace podpipe::cli
