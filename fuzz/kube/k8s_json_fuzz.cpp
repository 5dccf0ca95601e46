// libFuzzer target for the Kubernetes JSON edge (kube/json.hpp): every parser runs on
// every input (seeds are plain API bodies), plus the HTTP error mapping and the exec status
// decoder, an exec credential's expiry (parse_rfc3339), and the watch stream decoder fed in
// chunks sized by the first byte. Invariants checked:
// nothing crashes or throws, and a pod (or job) we parsed serializes to JSON that our own parser accepts
// again with the same names.
#include "kube/credentials.hpp"
#include "kube/errors.hpp"
#include "kube/exec_request.hpp"
#include "kube/json.hpp"
#include "kube/watch_stream.hpp"

#include <cstdint>
#include <cstdlib>
#include <string_view>

using namespace podpipe::kube;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view in(reinterpret_cast<const char*>(data), size);

    if (auto p = parse_pod(in)) {
        const std::string again = to_json(*p);
        auto back = parse_pod(again);
        if (!back || back->metadata.name != p->metadata.name ||
            back->metadata.labels != p->metadata.labels ||
            back->spec.containers.size() != p->spec.containers.size())
            std::abort();
    }
    (void)parse_pod_list(in);
    if (auto ev = parse_watch_event(in)) {
        if ((ev->type == watch_event::kind::error) != ev->error.has_value())
            std::abort();
    }
    (void)parse_status(in);
    (void)parse_access_review(in);
    (void)parse_secret(in);
    (void)parse_secret_list(in);
    (void)parse_node(in);
    (void)parse_pvc(in);
    (void)parse_node_list(in);
    if (auto j = parse_job(in)) {
        auto back = parse_job(to_json(*j));
        if (!back || back->metadata.name != j->metadata.name ||
            back->spec.backoff_limit != j->spec.backoff_limit ||
            back->spec.pod.spec.containers.size() != j->spec.pod.spec.containers.size())
            std::abort();
    }
    (void)parse_job_list(in);
    // The plugin's expiry is read as the exec plugin reads it: a far-future one must not wrap.
    if (auto cred = parse_exec_credential(in); cred && !cred->expiration_timestamp.empty())
        (void)parse_rfc3339(cred->expiration_timestamp);
    if (auto code = exec_exit_code(in, "fuzz"); code && (*code < 0 || *code > 255))
        std::abort();
    const int http = size > 0 ? 400 + data[0] % 110 : 500;
    const bool html = size > 1 && (data[1] & 1) != 0;
    api_error e = error_from_http(http, in, "fuzz", in.substr(0, 8), html ? "text/html" : "");
    if (e.message.size() > 2048 + 3 || e.http_status != http)
        std::abort();
    (void)e.what();
    // A proxy's HTML page: a short excerpt without control characters.
    if (auto x = html_excerpt(in, "text/html", 64)) {
        if (x->size() > 64 + 3)
            std::abort();
        for (char c : *x)
            if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F)
                std::abort();
    }

    watch_decoder decoder(4096);
    const std::size_t step = size > 0 ? 1 + data[0] % 64 : 1;
    auto sink = [](watch_event&&) -> podpipe::result<void, api_error> { return {}; };
    bool ok = true;
    for (std::size_t i = 0; ok && i < size; i += step)
        ok = static_cast<bool>(decoder.feed(in.substr(i, step), sink));
    if (ok) {
        if (decoder.buffered() > 4096)
            std::abort();
        (void)decoder.finish(sink);
    }
    return 0;
}
