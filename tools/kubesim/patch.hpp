// patch: the three patch formats the API server accepts for built-in resources (README "PATCH and
// PUT"): RFC 7386 merge patch, strategic merge patch (apimachinery strategicpatch, with the
// patchMergeKeys of core/v1 and the `$patch` directives) and RFC 6902 JSON patch (errors worded
// as evanphx/json-patch v4, which the API server uses). Pure functions over JSON.
#pragma once

#include "engine/common/result.hpp"

#include <optional>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace podpipe::kubesim {

enum class patch_type { json, merge, strategic };

/// The patch type named by a Content-Type (parameters after `;` ignored); nullopt for any other
/// type, which the API server answers 415 with `unsupported_patch_message`.
std::optional<patch_type> patch_type_of(std::string_view content_type);

/// negotiation.NewUnsupportedMediaTypeError for the patch types of a built-in resource.
inline constexpr std::string_view unsupported_patch_message =
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, "
    "application/strategic-merge-patch+json";

/// How a patch failed, as the API server answers it.
struct patch_error {
    int code = 400;      ///< 400 BadRequest (undecodable patch) or 422 (a JSON patch op failed)
    std::string message; ///< 400: the Status message; 422: the cause (UnexpectedServerResponse)
};

/// Applies `patch` (the request body) to `target`. The result is the patched document.
result<boost::json::value, patch_error>
apply_patch(patch_type type, const boost::json::value& target, std::string_view patch);

/// RFC 7386: null deletes a member, objects merge recursively, anything else replaces.
void merge_patch(boost::json::value& target, const boost::json::value& patch);

} // namespace podpipe::kubesim
