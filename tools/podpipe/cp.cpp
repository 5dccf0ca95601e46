#include "tools/podpipe/cp.hpp"

#include "tools/podpipe/copier.hpp"

#include "engine/common/limits.hpp"
#include "engine/pipeline/send.hpp"
#include "kube/client.hpp"
#include "kube/config.hpp"
#include "remote/protocol.hpp"
#include "remote/retry.hpp"
#include "tools/podpipe/cli_util.hpp"
#include "tools/podpipe/location.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

namespace podpipe::cli {
namespace {

void print_error(const std::string& msg) { std::fprintf(stderr, "podpipe: cp: %s\n", msg.c_str()); }

int usage(const std::string& msg) {
    std::fprintf(stderr, "podpipe: cp: %s (see podpipe cp --help)\n", msg.c_str());
    return exit_usage;
}

// The summary line, and --stats-json with the pod side's report inside as "remote".
int report(const cp_flags& f, const remote::copy_result& copied) {
    if (!copied) {
        print_error(copied.error().message);
        return copied.error().status;
    }
    const remote::copy_report& o = *copied;
    // Out of a pod the sender is the pod's podpipe: only its report knows what it stored.
    pipeline::transfer_stats shown_stored;
    const pipeline::transfer_stats* shown = &o.stats;
    if (o.stats.chunks_stored == 0 && o.remote && o.remote->stats.chunks_stored > 0) {
        shown_stored = o.stats;
        shown_stored.chunks_stored = o.remote->stats.chunks_stored;
        shown = &shown_stored;
    }
    std::fprintf(stderr, "podpipe: %s (%s)\n", summary_line(o.verb, *shown).c_str(),
                 o.where.c_str());
    if (o.stats.problems.count > 0) // allowed (--allow-incomplete), still said
        std::fprintf(stderr, "podpipe: cp: warning: %s\n",
                     remote::problems_text(o.stats.problems).c_str());
    if (f.stats_json.empty())
        return exit_ok;
    json_writer w;
    remote::protocol::write_report(w, {"cp", o.stats, remote::protocol::usage_now()},
                                   o.remote ? &*o.remote : nullptr);
    const std::string json = w.take() + "\n";
    if (!write_text_file(f.stats_json, json)) {
        print_error("cannot write " + f.stats_json + ": " + std::strerror(errno));
        return exit_failure;
    }
    return exit_ok;
}

remote::pod_dir to_pod_dir(const location& l) { return {l.ns, l.pod, l.container, l.path}; }

} // namespace

result<remote::copy_options, std::string> copy_options_from(const cp_flags& f) {
    remote::copy_options o;
    const auto level = parse_level(f.level);
    if (!level)
        return fail(std::string("--level takes 0 (stored) to 12, or auto"));
    auto chunk = parse_size(f.chunk);
    if (!chunk)
        return fail(std::string("--chunk-size takes a size like 1M or 256K"));
    auto threads = parse_size(f.threads);
    if (!threads || *threads > 256)
        return fail(std::string("--threads takes a number from 0 (auto) to 256"));
    auto memory = f.memory.empty() ? std::optional<std::uint64_t>(default_memory_budget())
                                   : parse_size(f.memory);
    if (!memory || *memory < (32u << 20))
        return fail(std::string("--memory takes a size of at least 32M, e.g. 256M"));
    auto stall = parse_duration(f.stall_timeout);
    if (!stall)
        return fail(std::string("--stall-timeout takes a duration like 60s, 500ms or 2m "
                                "(0 = none)"));
    o.stall_timeout = *stall;
    o.level = *level;
    o.level_text = f.level;
    o.chunk_bytes = static_cast<std::size_t>(*chunk);
    o.chunk_text = f.chunk;
    o.threads = static_cast<unsigned>(*threads);
    auto pod_threads = parse_size(f.pod_threads);
    if (!pod_threads || *pod_threads > 256)
        return fail(std::string("--pod-threads takes a number from 0 (auto) to 256"));
    o.pod_threads = static_cast<unsigned>(*pod_threads);
    o.memory_bytes = static_cast<std::size_t>(*memory);
    o.excludes = f.excludes;
    o.verify = !f.no_verify;
    o.allow_incomplete = f.allow_incomplete;
    o.pod_binary = f.pod_binary;
    o.offer_v5 = !f.exec_v4;
    o.resumable = !f.no_resume;
    pipeline::send_options check;
    check.level = o.level;
    check.chunk_bytes = o.chunk_bytes;
    check.memory_bytes = o.memory_bytes;
    if (auto ok = pipeline::check_send_options(check); !ok)
        return fail(ok.error());
    return o;
}

namespace {

result<remote::retry_policy, std::string> retry_policy_from(const cp_flags& f) {
    remote::retry_policy p;
    if (!f.retry_for.empty()) {
        auto d = parse_duration(f.retry_for);
        if (!d)
            return fail(std::string("--retry-for takes a duration like 30s, 5m or 0 (one "
                                    "attempt)"));
        p.retry_for = *d;
    } else if (const char* env = std::getenv("PODPIPE_COPY_RETRY_SECONDS");
               env != nullptr && *env != '\0') {
        auto d = parse_duration(std::string(env) + "s");
        if (!d || std::string(env).find_first_not_of("0123456789") != std::string::npos)
            return fail("PODPIPE_COPY_RETRY_SECONDS=" + std::string(env) +
                        ": expected a number of seconds");
        p.retry_for = *d;
    }
    return p;
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
    auto opt = copy_options_from(f);
    if (!opt)
        return usage(opt.error());
    auto policy = retry_policy_from(f);
    if (!policy)
        return usage(policy.error());
    auto client = connect_cluster(f);
    if (!client) {
        print_error(client.error());
        return exit_failure;
    }
    pipeline::live_progress progress;
    opt->progress = &progress;
    if (f.verbose)
        opt->on_info = [](const std::string& line) {
            std::fprintf(stderr, "podpipe: cp: %s\n", line.c_str());
        };
    // A pod whose podpipe does not answer as this one expects: always said, the copy goes on.
    opt->on_warning = [](const std::string& line) {
        std::fprintf(stderr, "podpipe: cp: warning: %s\n", line.c_str());
    };
    std::stop_source stop;
    signal_stop signals(stop);
    remote::pod_copier copier(**client, std::move(*opt), stop.get_token());

    // One attempt: the probes (a pod's podpipe may change between attempts), then the copy.
    auto attempt = [&]() -> remote::copy_result {
        std::optional<remote::pod_end> src_pod, dst_pod;
        for (auto [loc, end] : {std::pair{&*src, &src_pod}, std::pair{&*dst, &dst_pod}}) {
            if (!loc->remote)
                continue;
            auto p = copier.probe(to_pod_dir(*loc));
            if (!p)
                return fail(p.error());
            *end = *p;
        }
        progress_printer printer(progress, f.progress,
                                 src_pod && dst_pod ? "relayed" : src_pod ? "received" : "sent");
        if (src_pod && dst_pod)
            return copier.pod_to_pod(*src_pod, *dst_pod);
        if (src_pod)
            return copier.pod_to_local(*src_pod, dst->path);
        return copier.local_to_pod(src->path, *dst_pod);
    };
    remote::copy_result copied = remote::with_retries(
        attempt, *policy, stop.get_token(), [](const remote::retry_notice& n) {
            std::fprintf(stderr, "podpipe: cp: warning: %s\n", remote::retry_text(n).c_str());
        });
    if (!copied) // for good: the target's resume ledger goes, the error says what is left
        copied = fail(copier.give_up(std::move(copied.error())));
    return report(f, copied);
}

result<std::unique_ptr<kube::api_client>, std::string> connect_cluster(const cp_flags& f) {
    kube::config_sources sources = kube::config_sources::from_process();
    if (!f.kubeconfig.empty())
        sources.kubeconfig = f.kubeconfig;
    sources.context = f.context;
    auto cfg = kube::load_config(sources);
    if (!cfg)
        return fail(cfg.error().what());
    if (!f.ns.empty())
        cfg->ns = f.ns;
    if (cfg->insecure_skip_tls_verify)
        std::fprintf(stderr, "podpipe: warning: TLS verification is off for %s "
                             "(insecure-skip-tls-verify in the kubeconfig)\n", cfg->server.c_str());
    auto client = kube::api_client::connect(std::move(*cfg));
    if (!client)
        return fail(client.error().what());
    return std::move(*client);
}

} // namespace podpipe::cli
