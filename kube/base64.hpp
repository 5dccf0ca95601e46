// Standard base64 (RFC 4648 §4, padded): Secret data and kubeconfig *-data fields.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace podpipe::kube {

std::string base64_encode(std::string_view bytes);

/// Decodes padded or unpadded standard base64; ASCII whitespace is skipped (PEM data pasted
/// with line breaks). nullopt on any other character or a bad length.
std::optional<std::string> base64_decode(std::string_view text);

} // namespace podpipe::kube
