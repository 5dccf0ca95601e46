// The two sides of `podpipe cp`: a local path or [NAMESPACE/]POD:[CONTAINER:]PATH.
#pragma once

#include "engine/common/result.hpp"

#include <string>
#include <string_view>

namespace podpipe::cli {

struct location {
    bool remote = false;
    std::string ns;        ///< remote: empty = the configured namespace
    std::string pod;       ///< remote
    std::string container; ///< remote: empty = the pod's default container
    std::string path;      ///< local path, or the path inside the container

    /// "ns/pod:container:/path" or the local path, for messages.
    std::string display() const;
};

/// Parses one cp argument. Local: starts with '/', './' or '../', or has no ':' at all.
/// Remote: [NAMESPACE/]POD:[CONTAINER:]PATH; the text between the first two colons is taken as
/// the container when it is a valid container name (DNS-1123 label), so `pod:/a:b` is the path
/// "/a:b" in the default container and `pod:app:/src` is "/src" in container "app".
result<location, std::string> parse_location(std::string_view arg);

/// DNS-1123 label: 1..63 of [a-z0-9-], starting and ending alphanumeric.
bool is_dns_label(std::string_view s);

/// DNS-1123 subdomain (pod names): 1..253 of labels joined by '.'.
bool is_dns_subdomain(std::string_view s);

} // namespace podpipe::cli
