#include "kube/client.hpp"

#include "engine/transport/channel_socket.hpp"
#include "engine/transport/error.hpp"
#include "engine/transport/http_client.hpp"
#include "engine/transport/tls.hpp"
#include "kube/json.hpp"
#include "kube/watch_stream.hpp"

#include <charconv>
#include <mutex>

namespace podpipe::kube {

namespace {

using transport::http_request;
using transport::http_response;

std::string ns_name(std::string_view ns, std::string_view name) {
    return std::string(ns) + "/" + std::string(name);
}

/// Transport failures: the code stays the transport's (so conditions work), the message says
/// what happened without any request data.
api_error transport_error(std::error_code ec, const std::string& call, std::string_view detail) {
    api_error e(ec, call);
    e.message = ec.message();
    if (!detail.empty())
        e.message += " [" + sanitize_for_message(detail, 256) + "]";
    return e;
}

/// Whether a failed create-like request (POST, exec upgrade) may be sent again: only when the
/// server certainly did not act on it.
bool safe_to_repeat(const api_error& e) {
    return e.is(errc::too_many_requests) || e.is(errc::service_unavailable) ||
           e.code == transport::errc::resolve_failed || e.code == transport::errc::connect_failed;
}

bool is_2xx(unsigned status) { return status >= 200 && status < 300; }

} // namespace

result<server_endpoint, api_error> parse_server_url(std::string_view server) {
    auto bad = [&](std::string_view why) {
        return fail(api_error(errc::config_invalid, "server URL \"" +
                                                         sanitize_for_message(server, 256) +
                                                         "\": " + std::string(why)));
    };
    constexpr std::string_view https = "https://";
    if (server.substr(0, https.size()) != https) {
        if (server.substr(0, 7) == "http://")
            return bad("plain http is not supported (credentials are only sent over https)");
        return bad("expected https://host[:port][/path]");
    }
    std::string_view rest = server.substr(https.size());
    const auto slash = rest.find('/');
    std::string_view authority = rest.substr(0, slash);
    std::string_view path =
        slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
    while (!path.empty() && path.back() == '/')
        path.remove_suffix(1);
    if (authority.find('@') != std::string_view::npos)
        return bad("user information in the URL is not supported");
    server_endpoint ep;
    std::string_view port_text;
    if (!authority.empty() && authority.front() == '[') {
        const auto close = authority.find(']');
        if (close == std::string_view::npos)
            return bad("unterminated IPv6 literal");
        ep.host = std::string(authority.substr(1, close - 1));
        std::string_view after = authority.substr(close + 1);
        if (!after.empty()) {
            if (after.front() != ':')
                return bad("garbage after the IPv6 literal");
            port_text = after.substr(1);
        }
    } else {
        const auto colon = authority.rfind(':');
        ep.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos)
            port_text = authority.substr(colon + 1);
    }
    if (ep.host.empty())
        return bad("no host");
    if (!port_text.empty()) {
        unsigned v = 0;
        auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
        if (ec != std::errc() || ptr != port_text.data() + port_text.size() || v == 0 || v > 65535)
            return bad("bad port");
        ep.port = static_cast<std::uint16_t>(v);
    }
    ep.path_prefix = std::string(path);
    return ep;
}

struct api_client::impl {
    impl(cluster_config c, client_options o, server_endpoint e)
        : cfg(std::move(c))
        , opts(std::move(o))
        , ep(std::move(e))
        , clock(opts.clock != nullptr ? *opts.clock : real_time()) {}

    cluster_config cfg;
    client_options opts;
    server_endpoint ep;
    time_source& clock;

    // The process's TLS context; replaced only when an exec plugin hands out a new client
    // certificate. Connections keep the context they were made with alive (shared_ptr).
    std::mutex tls_mu;
    std::shared_ptr<transport::tls_context> tls;
    std::string tls_cert_pem, tls_key_pem;

    // The keep-alive REST connection, one request at a time.
    std::mutex rest_mu;
    std::shared_ptr<transport::tls_context> http_tls; // outlives `http`
    std::unique_ptr<transport::http_client> http;
    std::size_t old_connections = 0;

    result<std::shared_ptr<transport::tls_context>, api_error> tls_for(const credentials& cr) {
        std::lock_guard lk(tls_mu);
        if (tls && cr.client_cert_pem == tls_cert_pem && cr.client_key_pem == tls_key_pem)
            return tls;
        transport::tls_config tc;
        tc.ca_pem = cfg.ca_pem;
        tc.verify = !cfg.insecure_skip_tls_verify;
        tc.server_name = cfg.tls_server_name;
        tc.client_cert_pem = cr.client_cert_pem;
        tc.client_key_pem = cr.client_key_pem;
        auto made = transport::tls_context::create(tc);
        if (!made) {
            api_error e(errc::config_invalid, "TLS configuration");
            e.message = "the CA bundle or the client certificate/key does not parse (" +
                        made.error().message() + ")";
            return fail(std::move(e));
        }
        tls = std::shared_ptr<transport::tls_context>(std::move(*made));
        tls_cert_pem = cr.client_cert_pem;
        tls_key_pem = cr.client_key_pem;
        return tls;
    }

    result<credentials, api_error> creds() {
        auto c = cfg.credentials->current();
        if (!c)
            return fail(c.error());
        return c;
    }

    http_request make_request(std::string_view method, std::string_view path, std::string body,
                              const credentials& cr, std::string_view accept) const {
        http_request req;
        req.method = std::string(method);
        req.target = ep.path_prefix + std::string(path);
        req.headers.push_back({"Accept", std::string(accept)});
        req.headers.push_back({"User-Agent", opts.user_agent});
        if (!cr.bearer_token.empty())
            req.headers.push_back({"Authorization", "Bearer " + cr.bearer_token});
        if (!body.empty() || method == "POST")
            req.headers.push_back({"Content-Type", "application/json"});
        req.body = std::move(body);
        return req;
    }

    static std::string retry_after_of(const http_response& r) {
        const std::string* h = transport::find_header(r.headers, "Retry-After");
        return h != nullptr ? *h : std::string();
    }
    static std::string content_type_of(const http_response& r) {
        const std::string* h = transport::find_header(r.headers, "Content-Type");
        return h != nullptr ? *h : std::string();
    }

    /// The stop for a call starting now: client_options::stop until it is requested; a call
    /// made after it (a cancelled command's clean-up) runs to its own end.
    std::stop_token stop_for_new_call() const {
        return opts.stop.stop_requested() ? std::stop_token{} : opts.stop;
    }

    /// A 401 that persists after the token was re-read: the credentials themselves are
    /// rejected (an expired or revoked token, a token file nobody refreshes). Says whose.
    api_error rejected(api_error e) const {
        std::string whose = cfg.source == cluster_config::origin::in_cluster
                                ? std::string("the in-cluster service account")
                                : "kubeconfig user \"" + cfg.user_name + "\"";
        if (const auto* ts = dynamic_cast<const token_source*>(cfg.credentials.get()))
            whose += " (token file " + ts->file().string() + ", re-read after the first 401)";
        e.message = "the API server rejected the credentials of " + whose +
                    ": expired or revoked (" + (e.message.empty() ? "Unauthorized" : e.message) +
                    ")";
        return e;
    }

    /// One REST request with the 401 re-read; no retries.
    result<http_response, api_error> rest_once(std::string_view method, std::string_view path,
                                                const std::string& body, const std::string& call,
                                                std::string_view accept, std::stop_token stop) {
        for (int auth_try = 0;; ++auth_try) {
            auto cr = creds();
            if (!cr)
                return fail(cr.error());
            auto t = tls_for(*cr);
            if (!t)
                return fail(t.error());
            auto req = make_request(method, path, body, *cr, accept);
            std::unique_lock lk(rest_mu);
            if (!http || http_tls != *t) {
                if (http)
                    old_connections += http->connections_opened();
                transport::http_options ho;
                ho.connect_timeout = opts.request_timeout;
                ho.faults = opts.faults;
                http = std::make_unique<transport::http_client>(**t, ep.host, ep.port, ho);
                http_tls = *t;
            }
            auto r = http->request(req, opts.request_timeout, stop);
            if (!r)
                return fail(transport_error(r.error(), call, http->last_error_detail()));
            lk.unlock();
            if (r->status == 401 && auth_try == 0) {
                cfg.credentials->invalidate(); // rotated token file / expired plugin token
                continue;
            }
            if (r->status == 401)
                return fail(rejected(error_from_http(401, r->body, call, retry_after_of(*r),
                                                     content_type_of(*r))));
            if (!is_2xx(r->status))
                return fail(error_from_http(static_cast<int>(r->status), r->body, call,
                                            retry_after_of(*r), content_type_of(*r)));
            return std::move(*r);
        }
    }

    /// A REST request through the retry policy. `idempotent` false: repeated only when the
    /// server certainly did not act on it.
    result<http_response, api_error> rest(std::string_view method, std::string_view path,
                                           std::string body, const std::string& call,
                                           bool idempotent,
                                           std::string_view accept = "application/json") {
        retry_policy policy(opts.retry, clock);
        const auto stop = stop_for_new_call();
        policy.interrupt_on(stop);
        auto once = [&] { return rest_once(method, path, body, call, accept, stop); };
        if (idempotent)
            return policy.run(once);
        return policy.run_if(once, safe_to_repeat);
    }

    /// A streamed GET on its own connection (watch, followed logs). Retried only while no
    /// body byte was delivered. `on_body` returns false to stop.
    result<void, api_error> stream(std::string_view path, const std::string& call,
                                    std::chrono::milliseconds idle,
                                    const std::function<bool(std::string_view)>& on_body,
                                    std::string_view accept, std::stop_token caller_stop = {}) {
        bool delivered = false;
        retry_policy policy(opts.retry, clock);
        // The client's stop or the caller's, whichever comes first.
        std::stop_source either;
        const std::stop_callback on_client(stop_for_new_call(), [&] { either.request_stop(); });
        const std::stop_callback on_caller(caller_stop, [&] { either.request_stop(); });
        const auto stop = either.get_token();
        policy.interrupt_on(stop);
        auto once = [&]() -> result<void, api_error> {
            for (int auth_try = 0;; ++auth_try) {
                auto cr = creds();
                if (!cr)
                    return fail(cr.error());
                auto t = tls_for(*cr);
                if (!t)
                    return fail(t.error());
                auto req = make_request("GET", path, {}, *cr, accept);
                transport::http_options ho;
                ho.connect_timeout = opts.request_timeout;
                ho.faults = opts.faults;
                transport::http_client client(**t, ep.host, ep.port, ho);
                auto r = client.request_streaming(
                    req, opts.request_timeout, idle, [&](std::span<const std::byte> piece) {
                        delivered = true;
                        return on_body(std::string_view(reinterpret_cast<const char*>(piece.data()),
                                                        piece.size()));
                    },
                    stop);
                if (!r)
                    return fail(transport_error(r.error(), call, client.last_error_detail()));
                if (r->status == 401 && auth_try == 0) {
                    cfg.credentials->invalidate();
                    continue;
                }
                if (r->status == 401)
                    return fail(rejected(error_from_http(401, r->body, call, retry_after_of(*r),
                                                         content_type_of(*r))));
                if (!is_2xx(r->status))
                    return fail(error_from_http(static_cast<int>(r->status), r->body, call,
                                                retry_after_of(*r), content_type_of(*r)));
                return {};
            }
        };
        return policy.run_if(once, [&](const api_error&) { return !delivered; });
    }

    std::string ns_or_default(std::string_view ns) const {
        return ns.empty() ? cfg.ns : std::string(ns);
    }

    template <class T, class Parse>
    result<T, api_error> parsed(result<http_response, api_error> r, Parse&& parse,
                                 const std::string& call) {
        if (!r)
            return fail(r.error());
        auto v = parse(r->body);
        if (!v) {
            api_error e = v.error();
            e.detail = call + ": " + e.detail;
            return fail(std::move(e));
        }
        return std::move(*v);
    }

    result<api_status, api_error> deleted_status(result<http_response, api_error> r,
                                                  std::string_view name, const std::string& call) {
        if (!r)
            return fail(r.error());
        auto st = parse_status(r->body);
        if (st && !st->status.empty())
            return std::move(*st);
        if (!st) {
            api_error e = st.error();
            e.detail = call + ": " + e.detail;
            return fail(std::move(e));
        }
        // Some resources answer with the object (still terminating, or deleted): success.
        api_status ok;
        ok.status = "Success";
        ok.details_name = std::string(name);
        return ok;
    }
};

api_client::api_client(std::unique_ptr<impl> i)
    : impl_(std::move(i)) {}

api_client::~api_client() = default;

result<std::unique_ptr<api_client>, api_error> api_client::connect(cluster_config cfg,
                                                                    client_options opts) {
    if (!cfg.credentials)
        return fail(api_error(errc::config_invalid, "cluster configuration has no credentials"));
    auto ep = parse_server_url(cfg.server);
    if (!ep)
        return fail(ep.error());
    auto i = std::make_unique<impl>(std::move(cfg), std::move(opts), std::move(*ep));
    auto cr = i->creds();
    if (!cr)
        return fail(cr.error());
    auto t = i->tls_for(*cr);
    if (!t)
        return fail(t.error());
    return std::unique_ptr<api_client>(new api_client(std::move(i))); // NOLINT: private ctor
}

const std::string& api_client::default_namespace() const noexcept { return impl_->cfg.ns; }

std::size_t api_client::rest_connections_opened() const {
    std::lock_guard lk(impl_->rest_mu);
    return impl_->old_connections + (impl_->http ? impl_->http->connections_opened() : 0);
}

// ---- pods ----------------------------------------------------------------------------------

result<pod, api_error> api_client::create_pod(const pod& p, std::string_view ns) {
    const std::string n = impl_->ns_or_default(ns.empty() ? std::string_view(p.metadata.ns) : ns);
    const std::string call =
        "create pod " +
        ns_name(n, p.metadata.name.empty() ? p.metadata.generate_name + "*" : p.metadata.name);
    return impl_->parsed<pod>(impl_->rest("POST", pods_path(n), to_json(p), call, false), parse_pod,
                              call);
}

result<pod, api_error> api_client::get_pod(std::string_view ns, std::string_view name) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "get pod " + ns_name(n, name);
    return impl_->parsed<pod>(impl_->rest("GET", pod_path(n, name), {}, call, true), parse_pod,
                              call);
}

result<pod_list, api_error> api_client::list_pods(std::string_view ns, const list_options& opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "list pods in " + n;
    list_options page_opts = opts;
    page_opts.watch = false;
    pod_list all;
    bool restarted = false;
    for (;;) {
        auto page = impl_->parsed<pod_list>(
            impl_->rest("GET", list_path(pods_path(n), page_opts), {}, call, true), parse_pod_list,
            call);
        if (!page) {
            if (page.error().is(errc::gone) && !page_opts.continue_token.empty() && !restarted) {
                restarted = true; // the continue token expired: list again from the start
                all = {};
                page_opts.continue_token.clear();
                continue;
            }
            return fail(page.error());
        }
        for (auto& p : page->items)
            all.items.push_back(std::move(p));
        all.resource_version = page->resource_version;
        if (page->continue_token.empty())
            return all;
        page_opts.continue_token = page->continue_token;
    }
}

result<pod, api_error> api_client::delete_pod(std::string_view ns, std::string_view name,
                                               const delete_options& opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "delete pod " + ns_name(n, name);
    return impl_->parsed<pod>(impl_->rest("DELETE", pod_path(n, name), to_json(opts), call, true),
                              parse_pod, call);
}

result<void, api_error> api_client::watch_pods(std::string_view ns, list_options opts,
                                                const watch_callback& on_event,
                                                std::stop_token stop) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "watch pods in " + n;
    opts.watch = true;
    const auto idle =
        opts.timeout_seconds
            ? std::chrono::milliseconds(std::chrono::seconds(*opts.timeout_seconds + 30))
            : impl_->opts.stream_idle_timeout;
    watch_decoder decoder;
    std::optional<api_error> failure;
    bool stopped = false;
    const watch_decoder::event_sink sink = [&](watch_event&& ev) -> result<void, api_error> {
        if (ev.type == watch_event::kind::error) {
            const api_status st = ev.error.value_or(api_status{});
            api_error e(st.code == 410 ? errc::gone : errc_for_http(st.code, st.reason), call);
            e.http_status = st.code;
            e.reason = st.reason;
            e.message = sanitize_for_message(st.message, 2048);
            return fail(std::move(e));
        }
        if (!on_event(ev)) {
            stopped = true;
            return fail(api_error(errc::bad_request, "stopped")); // ends decoding only
        }
        return {};
    };
    auto r = impl_->stream(
        list_path(pods_path(n), opts), call, idle,
        [&](std::string_view chunk) {
            if (auto f = decoder.feed(chunk, sink); !f) {
                if (!stopped)
                    failure = f.error();
                return false;
            }
            return true;
        },
        "application/json", std::move(stop));
    if (failure)
        return fail(std::move(*failure));
    if (stopped)
        return {};
    if (!r)
        return fail(r.error());
    if (auto f = decoder.finish(sink); !f && !stopped)
        return fail(f.error());
    return {};
}

result<std::string, api_error> api_client::get_pod_log(std::string_view ns, std::string_view name,
                                                        log_options opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "get log of pod " + ns_name(n, name);
    opts.follow = false;
    auto r = impl_->rest("GET", pod_log_path(n, name, opts), {}, call, true, "text/plain, */*");
    if (!r)
        return fail(r.error());
    return std::move(r->body);
}

result<void, api_error> api_client::follow_pod_log(std::string_view ns, std::string_view name,
                                                    log_options opts,
                                                    const log_callback& on_chunk) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "follow log of pod " + ns_name(n, name);
    opts.follow = true;
    return impl_->stream(pod_log_path(n, name, opts), call, impl_->opts.stream_idle_timeout,
                         on_chunk, "text/plain, */*");
}

// ---- secrets -------------------------------------------------------------------------------

result<secret, api_error> api_client::create_secret(const secret& s, std::string_view ns) {
    const std::string n = impl_->ns_or_default(ns.empty() ? std::string_view(s.metadata.ns) : ns);
    const std::string call = "create secret " + ns_name(n, s.metadata.name);
    return impl_->parsed<secret>(impl_->rest("POST", secrets_path(n), to_json(s), call, false),
                                 parse_secret, call);
}

result<secret, api_error> api_client::get_secret(std::string_view ns, std::string_view name) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "get secret " + ns_name(n, name);
    return impl_->parsed<secret>(impl_->rest("GET", secret_path(n, name), {}, call, true),
                                 parse_secret, call);
}

result<secret_list, api_error> api_client::list_secrets(std::string_view ns,
                                                         const list_options& opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "list secrets in " + n;
    list_options o = opts;
    o.watch = false;
    secret_list all;
    for (;;) {
        auto page = impl_->parsed<secret_list>(
            impl_->rest("GET", list_path(secrets_path(n), o), {}, call, true), parse_secret_list,
            call);
        if (!page)
            return fail(page.error());
        for (auto& s : page->items)
            all.items.push_back(std::move(s));
        if (page->continue_token.empty())
            return all;
        o.continue_token = page->continue_token;
    }
}

result<api_status, api_error> api_client::delete_secret(std::string_view ns, std::string_view name,
                                                         const delete_options& opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "delete secret " + ns_name(n, name);
    return impl_->deleted_status(
        impl_->rest("DELETE", secret_path(n, name), to_json(opts), call, true), name, call);
}

// ---- persistent volume claims --------------------------------------------------------------

result<pvc, api_error> api_client::create_pvc(const pvc& claim, std::string_view ns) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "create persistentvolumeclaim " + ns_name(n, claim.name);
    return impl_->parsed<pvc>(impl_->rest("POST", pvcs_path(n), to_json(claim), call, false),
                              parse_pvc, call);
}

result<pvc, api_error> api_client::get_pvc(std::string_view ns, std::string_view name) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "get persistentvolumeclaim " + ns_name(n, name);
    return impl_->parsed<pvc>(impl_->rest("GET", pvc_path(n, name), {}, call, true), parse_pvc,
                              call);
}

result<pvc, api_error> api_client::delete_pvc(std::string_view ns, std::string_view name,
                                               const delete_options& opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "delete persistentvolumeclaim " + ns_name(n, name);
    auto r = impl_->rest("DELETE", pvc_path(n, name), to_json(opts), call, true);
    if (!r)
        return fail(r.error());
    // The claim as deleted (kubesim, and upstream while it terminates), or a Status.
    if (auto st = parse_status(r->body); st && !st->status.empty()) {
        pvc gone;
        gone.name = std::string(name);
        return gone;
    }
    return impl_->parsed<pvc>(std::move(r), parse_pvc, call);
}

// ---- nodes ---------------------------------------------------------------------------------

result<std::vector<node>, api_error> api_client::list_nodes(const list_options& opts) {
    const std::string call = "list nodes";
    list_options o = opts;
    o.watch = false;
    return impl_->parsed<std::vector<node>>(
        impl_->rest("GET", list_path(nodes_path, o), {}, call, true), parse_node_list, call);
}

result<node, api_error> api_client::get_node(std::string_view name) {
    const std::string call = "get node " + std::string(name);
    return impl_->parsed<node>(impl_->rest("GET", node_path(name), {}, call, true), parse_node,
                               call);
}

// ---- jobs ----------------------------------------------------------------------------------

result<job, api_error> api_client::create_job(const job& j, std::string_view ns) {
    const std::string n = impl_->ns_or_default(ns.empty() ? std::string_view(j.metadata.ns) : ns);
    const std::string call =
        "create job " +
        ns_name(n, j.metadata.name.empty() ? j.metadata.generate_name + "*" : j.metadata.name);
    return impl_->parsed<job>(impl_->rest("POST", jobs_path(n), to_json(j), call, false), parse_job,
                              call);
}

result<job, api_error> api_client::get_job(std::string_view ns, std::string_view name) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "get job " + ns_name(n, name);
    return impl_->parsed<job>(impl_->rest("GET", job_path(n, name), {}, call, true), parse_job,
                              call);
}

result<job_list, api_error> api_client::list_jobs(std::string_view ns, const list_options& opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "list jobs in " + n;
    list_options o = opts;
    o.watch = false;
    job_list all;
    for (;;) {
        auto page = impl_->parsed<job_list>(
            impl_->rest("GET", list_path(jobs_path(n), o), {}, call, true), parse_job_list, call);
        if (!page)
            return fail(page.error());
        for (auto& j : page->items)
            all.items.push_back(std::move(j));
        all.resource_version = page->resource_version;
        if (page->continue_token.empty())
            return all;
        o.continue_token = page->continue_token;
    }
}

result<api_status, api_error> api_client::delete_job(std::string_view ns, std::string_view name,
                                                      delete_options opts) {
    const std::string n = impl_->ns_or_default(ns);
    const std::string call = "delete job " + ns_name(n, name);
    if (opts.propagation_policy.empty())
        opts.propagation_policy = "Background"; // else the job's pods are orphaned
    return impl_->deleted_status(
        impl_->rest("DELETE", job_path(n, name), to_json(opts), call, true), name, call);
}

// ---- access reviews --------------------------------------------------------------------------

result<access_review_result, api_error>
api_client::access_review(const resource_attributes& attrs) {
    std::string what = attrs.verb + " " + attrs.resource;
    if (!attrs.subresource.empty())
        what += "/" + attrs.subresource;
    const std::string call = "access review (" + what + " in " + attrs.ns + ")";
    // Creating a review changes nothing on the server: safe to repeat like a GET.
    return impl_->parsed<access_review_result>(
        impl_->rest("POST", access_review_path, to_json(attrs), call, true), parse_access_review,
        call);
}

result<std::vector<access_review_result>, api_error>
api_client::access_reviews(std::span<const resource_attributes> items) {
    std::vector<access_review_result> out;
    out.reserve(items.size());
    for (const auto& a : items) {
        auto r = access_review(a);
        if (!r)
            return fail(r.error());
        out.push_back(std::move(*r));
    }
    return out;
}

// ---- exec ------------------------------------------------------------------------------------

result<std::unique_ptr<exec_session>, api_error>
api_client::exec(const exec_options& opts, const exec_session_options& session) {
    exec_options eo = opts;
    eo.ns = impl_->ns_or_default(opts.ns);
    auto path = exec_path(eo);
    if (!path)
        return fail(path.error());
    const std::string call = "exec in pod " + ns_name(eo.ns, eo.pod) +
                             (eo.container.empty() ? std::string() : " container " + eo.container);
    const std::string target = impl_->ep.path_prefix + *path;

    transport::channel_socket_options so;
    if (session.offer_v5)
        so.subprotocols.emplace_back(exec_subprotocols[0]);
    so.subprotocols.emplace_back(exec_subprotocols[1]);
    so.connect_timeout = session.connect_timeout;
    so.stop = session.stop;
    so.max_message_bytes = session.stdin_message_bytes + 1;
    so.max_in_flight_bytes = session.max_in_flight_bytes;
    so.max_receive_message_bytes = session.max_receive_message_bytes;
    so.receive_queue_bytes = session.receive_queue_bytes;
    so.ping_interval = session.ping_interval;
    so.pong_timeout = session.pong_timeout;
    so.close_timeout = session.close_timeout;
    so.faults = impl_->opts.faults;

    auto once = [&]() -> result<std::unique_ptr<exec_session>, api_error> {
        for (int auth_try = 0;; ++auth_try) {
            auto cr = impl_->creds();
            if (!cr)
                return fail(cr.error());
            auto t = impl_->tls_for(*cr);
            if (!t)
                return fail(t.error());
            so.headers.clear();
            so.headers.push_back({"User-Agent", impl_->opts.user_agent});
            if (!cr->bearer_token.empty())
                so.headers.push_back({"Authorization", "Bearer " + cr->bearer_token});
            transport::upgrade_failure uf;
            auto s = transport::channel_socket::connect(**t, impl_->ep.host, impl_->ep.port, target,
                                                        so, &uf);
            if (s)
                return std::make_unique<exec_session>(std::move(*s), *t, call, eo, session);
            if (s.error() != transport::errc::upgrade_rejected)
                return fail(transport_error(s.error(), call, uf.detail));
            if (uf.status == 401 && auth_try == 0) {
                impl_->cfg.credentials->invalidate();
                continue;
            }
            const bool rejected = uf.status == 401;
            if (uf.status == 403 && uf.body.empty()) {
                // x/net/websocket's answer when no offered subprotocol is acceptable (§2.2).
                api_error e(errc::forbidden, call);
                e.http_status = 403;
                e.message = "the server refused the WebSocket upgrade with an empty 403: it "
                            "accepts none of the offered subprotocols (" +
                            std::string(session.offer_v5 ? "v5.channel.k8s.io, " : "") +
                            "v4.channel.k8s.io)";
                return fail(std::move(e));
            }
            const std::string* ra = transport::find_header(uf.headers, "Retry-After");
            const std::string* ct = transport::find_header(uf.headers, "Content-Type");
            api_error e = error_from_http(
                static_cast<int>(uf.status), uf.body, call,
                ra != nullptr ? std::string_view(*ra) : std::string_view{},
                ct != nullptr ? std::string_view(*ct) : std::string_view{});
            if (rejected)
                return fail(impl_->rejected(std::move(e)));
            if (uf.status == 500 && e.reason.empty() &&
                e.message.starts_with("container not found (")) {
                // The kubelet's plain-text answer for a container that is not running (it
                // looks among running ones only): repeating the exec cannot mend that.
                e.code = make_error_code(errc::exec_failed);
            }
            return fail(std::move(e));
        }
    };
    retry_policy policy(impl_->opts.retry, impl_->clock);
    policy.interrupt_on(session.stop); // after a stop nothing is tried again
    return policy.run_if(once, safe_to_repeat);
}

} // namespace podpipe::kube
