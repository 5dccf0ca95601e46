// Label and field selectors as the apiserver parses them (spec §3.2), with upstream's error text.
// Label syntax (apimachinery labels.Parse): k=v, k==v, k!=v, k in (a,b), k notin (a,b), k
// (exists), !k, k>N, k<N; comma = AND; keys and values validated as label keys and values.
// Field syntax (fields.ParseSelector): k=v, k==v, k!=v; comma = AND; `\` escapes `,` `=` `\`.
// Field values come from a caller-supplied getter.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/common/result.hpp"

namespace podpipe::kubesim {

struct selector_requirement {
    enum class op { eq, neq, in, notin, exists, not_exists, gt, lt };
    std::string key;
    op operation = op::eq;
    std::vector<std::string> values;
};

struct selector {
    std::vector<selector_requirement> requirements; ///< empty = matches everything
};

/// Parses a label selector; std::errc::invalid_argument on errors (caller answers 400 with
/// `*message`, upstream's text: "unable to parse requirement: found 'b', expected: in, ...").
result<selector> parse_label_selector(std::string_view text, std::string* message = nullptr);
/// Parses a field selector (only =, ==, != allowed); `*message` as upstream on errors
/// ("invalid selector: 'x'; can't understand 'x'").
result<selector> parse_field_selector(std::string_view text, std::string* message = nullptr);

bool matches_labels(const selector& s, const std::map<std::string, std::string>& labels);
/// `field` returns the value of a field path, or nullopt when the field is unsupported
/// (a requirement on an unsupported field never matches).
bool matches_fields(const selector& s,
                    const std::function<std::optional<std::string>(const std::string&)>& field);

} // namespace podpipe::kubesim
