// table: meta.k8s.io/v1 Table rendering for `kubectl get` (spec §6.3 item 5).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <boost/json.hpp>

namespace podpipe::kubesim {

/// True when the Accept header asks for as=Table.
bool wants_table(const std::string& accept);

/// Table of `objects` (full objects of `resource`: pods, secrets, nodes, namespaces; others get
/// Name/Age) at resourceVersion `rv`.
boost::json::object make_table(const std::string& resource,
                               const std::vector<boost::json::object>& objects, std::uint64_t rv);

} // namespace podpipe::kubesim
