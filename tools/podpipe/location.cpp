#include "tools/podpipe/location.hpp"

namespace podpipe::cli {

bool is_dns_label(std::string_view s) {
    if (s.empty() || s.size() > 63)
        return false;
    auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
    for (char c : s)
        if (!alnum(c) && c != '-')
            return false;
    return alnum(s.front()) && alnum(s.back());
}

bool is_dns_subdomain(std::string_view s) {
    if (s.empty() || s.size() > 253)
        return false;
    std::size_t start = 0;
    while (true) {
        const std::size_t dot = s.find('.', start);
        if (!is_dns_label(s.substr(start, dot == std::string_view::npos ? dot : dot - start)))
            return false;
        if (dot == std::string_view::npos)
            return true;
        start = dot + 1;
    }
}

std::string location::display() const {
    if (!remote)
        return path;
    std::string out;
    if (!ns.empty())
        out += ns + "/";
    out += pod + ":";
    if (!container.empty())
        out += container + ":";
    return out + path;
}

result<location, std::string> parse_location(std::string_view arg) {
    location loc;
    if (arg.empty())
        return fail(std::string("an empty path"));
    const bool explicit_local = arg.starts_with('/') || arg.starts_with("./") ||
                                arg.starts_with("../") || arg == "." || arg == "..";
    const std::size_t colon = arg.find(':');
    if (explicit_local || colon == std::string_view::npos) {
        loc.path = std::string(arg);
        return loc;
    }
    loc.remote = true;
    std::string_view head = arg.substr(0, colon);
    std::string_view rest = arg.substr(colon + 1);
    if (const std::size_t slash = head.find('/'); slash != std::string_view::npos) {
        loc.ns = std::string(head.substr(0, slash));
        head = head.substr(slash + 1);
        if (!is_dns_label(loc.ns))
            return fail("'" + std::string(arg) + "': '" + loc.ns +
                        "' is not a valid namespace name (use ./ for a local path with a colon)");
    }
    if (!is_dns_subdomain(head))
        return fail("'" + std::string(arg) + "': '" + std::string(head) +
                    "' is not a valid pod name (use ./ for a local path with a colon)");
    loc.pod = std::string(head);
    if (const std::size_t second = rest.find(':'); second != std::string_view::npos &&
                                                   is_dns_label(rest.substr(0, second))) {
        loc.container = std::string(rest.substr(0, second));
        rest = rest.substr(second + 1);
    }
    if (rest.empty())
        return fail("'" + std::string(arg) + "': no path inside the pod after the ':'");
    loc.path = std::string(rest);
    return loc;
}

} // namespace podpipe::cli
