#include "kube/exec_request.hpp"

#include "kube/json.hpp"

#include <charconv>

namespace podpipe::kube {

std::string percent_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
                                c == '~';
        if (unreserved) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0xF]);
        }
    }
    return out;
}

result<std::string, api_error> exec_path(const exec_options& o) {
    if (o.ns.empty() || o.pod.empty())
        return fail(api_error(errc::bad_request, "exec: namespace and pod name are required"));
    if (o.command.empty())
        return fail(
            api_error(errc::bad_request, "exec in " + o.ns + "/" + o.pod + ": empty command"));
    if (!o.use_stdin && !o.use_stdout && !o.use_stderr)
        return fail(
            api_error(errc::bad_request, "exec in " + o.ns + "/" + o.pod +
                                              ": one of stdin, stdout, stderr is required"));
    std::string p =
        "/api/v1/namespaces/" + percent_encode(o.ns) + "/pods/" + percent_encode(o.pod) + "/exec?";
    bool first = true;
    auto add = [&](std::string_view k, std::string_view v) {
        if (!first)
            p.push_back('&');
        first = false;
        p.append(k);
        p.push_back('=');
        p += percent_encode(v);
    };
    for (const auto& arg : o.command)
        add("command", arg);
    if (!o.container.empty())
        add("container", o.container);
    add("stdin", o.use_stdin ? "true" : "false");
    add("stdout", o.use_stdout ? "true" : "false");
    add("stderr", o.use_stderr ? "true" : "false");
    if (o.tty)
        add("tty", "true");
    return p;
}

result<int, api_error> exec_exit_code(std::optional<std::string_view> payload,
                                       std::string_view call) {
    if (!payload)
        return fail(api_error(errc::missing_status, std::string(call)));
    auto st = parse_status(*payload);
    if (!st) {
        api_error e = st.error();
        e.detail = std::string(call) + ": status channel: " + e.detail;
        return fail(std::move(e));
    }
    if (st->status == "Success")
        return 0;
    if (st->status != "Failure") {
        return fail(api_error(errc::bad_response,
                               std::string(call) + ": status channel: unknown status \"" +
                                   sanitize_for_message(st->status, 32) + "\""));
    }
    if (st->reason == "NonZeroExitCode") {
        for (const auto& cause : st->causes) {
            if (cause.reason != "ExitCode")
                continue;
            unsigned v = 0;
            const char* b = cause.message.data();
            const char* e = b + cause.message.size();
            auto [ptr, ec] = std::from_chars(b, e, v);
            if (ec != std::errc() || ptr != e || cause.message.empty() || v > 255)
                return fail(api_error(errc::bad_response,
                                       std::string(call) + ": status channel: bad exit code \"" +
                                           sanitize_for_message(cause.message, 32) + "\""));
            return static_cast<int>(v);
        }
        return fail(api_error(errc::bad_response, std::string(call) +
                                                       ": status channel: NonZeroExitCode without "
                                                       "an ExitCode cause"));
    }
    api_error e(errc::exec_failed, std::string(call));
    e.reason = st->reason;
    e.message = sanitize_for_message(st->message, 2048);
    e.http_status = st->code;
    return fail(std::move(e));
}

} // namespace podpipe::kube
