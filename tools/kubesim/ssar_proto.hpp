// ssar_proto: decodes a SelfSubjectAccessReview (and a SelfSubjectRulesReview) sent as
// Kubernetes protobuf (`Content-Type: application/vnd.kubernetes.protobuf`), which is what
// `kubectl auth can-i` posts
// (spec kube-api.md §3.8, §6.2). Untrusted bytes: every length is bounds-checked; fuzzed by
// fuzz/tools/kubesim. Depends on the standard library only (the fuzz build has no kubesim).
//
// Wire format: the 4-byte magic "k8s\0", then a runtime.Unknown message {1: TypeMeta {1:
// apiVersion, 2: kind}, 2: raw bytes, 3: contentEncoding, 4: contentType}; `raw` is the
// SelfSubjectAccessReview {1: metadata, 2: spec {1: resourceAttributes {1: namespace, 2: verb,
// 3: group, 4: version, 5: resource, 6: subresource, 7: name, ...}, 2: nonResourceAttributes {1:
// path, 2: verb}}, 3: status}. Unknown fields of any wire type are skipped.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace podpipe::kubesim {

struct ssar_request {
    std::string api_version, kind; ///< from the envelope's TypeMeta
    bool has_resource = false;
    std::string ns, verb, group, version, resource, subresource, name;
    bool has_non_resource = false;
    std::string path, non_resource_verb;
};

/// The decoded review, or nullopt with `error` set when the bytes are not a well-formed envelope
/// holding a SelfSubjectAccessReview.
std::optional<ssar_request> parse_ssar_protobuf(std::string_view bytes, std::string& error);

/// `spec.namespace` of a SelfSubjectRulesReview (`kubectl auth can-i --list`) in the same
/// envelope (raw = {1: metadata, 2: spec {1: namespace}, 3: status}); nullopt with `error` set
/// when malformed or of another kind.
std::optional<std::string> parse_ssrr_protobuf(std::string_view bytes, std::string& error);

} // namespace podpipe::kubesim
