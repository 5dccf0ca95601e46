// validation: what the API server (v1.32) checks before it stores an object, with upstream's
// field paths, cause reasons and message text (README "Validation"). Pure functions over JSON:
// api.cpp runs them after defaulting and answers 422 Invalid with invalid_status().
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {

/// One field.Error: its cause type (`FieldValueInvalid`, ...), path and ErrorBody() text.
struct field_error {
    std::string type;
    std::string field;
    std::string body; ///< "Invalid value: \"x\": detail", without the field

    std::string text() const { return field + ": " + body; }
};

using field_errors = std::vector<field_error>;

/// Go's strconv.Quote (%q) for ASCII/UTF-8 text.
std::string go_quote(std::string_view s);

field_error required_error(std::string field, std::string_view detail = "");
/// `value` is already printed (go_quote() for strings, digits for numbers).
field_error invalid_error(std::string field, std::string_view value, std::string_view detail);
field_error not_supported_error(std::string field, std::string_view value,
                                const std::vector<std::string>& supported);
field_error duplicate_error(std::string field, std::string_view value);
field_error not_found_error(std::string field, std::string_view value);
field_error forbidden_error(std::string field, std::string_view detail);
field_error too_long_error(std::string field, std::size_t max_bytes);

/// The 422 Status of apierrors.NewInvalid: message `Kind "name" is invalid: ...` (one error bare,
/// several in [..] joined by ", ", duplicates dropped), details {name, group?, kind, causes}.
json::object invalid_status(std::string_view kind, std::string_view name, const field_errors& errs,
                            std::string_view group = "");

/// apimachinery/pkg/util/validation: the messages of each rule (empty = valid).
std::vector<std::string> dns1123_label_errors(std::string_view v);
std::vector<std::string> dns1123_subdomain_errors(std::string_view v);
std::vector<std::string> qualified_name_errors(std::string_view v);
std::vector<std::string> label_value_errors(std::string_view v);
std::vector<std::string> config_map_key_errors(std::string_view v);

/// resource.ParseQuantity: the value, or the decode error text (ErrFormatWrong / ErrSuffix).
struct quantity {
    long double value = 0;
    std::string text;
};

std::optional<quantity> parse_quantity(std::string_view s, std::string* error);

/// A decode failure (400) found while reading a typed field, e.g. a malformed quantity:
/// "quantities must match the regular expression ...". Empty when the object decodes.
std::string pod_decode_error(const json::object& pod);

/// ValidateObjectMeta (namespaced): name (DNS-1123 subdomain, or label when `name_is_label`),
/// generateName, labels, annotations (keys, 256 KiB total).
field_errors validate_object_meta(const json::object& obj, bool name_is_label = false);
/// ValidatePodCreate on a defaulted pod: metadata and spec (containers, init containers, volumes,
/// mounts, env, ports, resources, restartPolicy, dnsPolicy, pull policies).
field_errors validate_pod(const json::object& pod);
/// ValidateSecret: metadata and data keys (IsConfigMapKey), 1 MiB of data.
field_errors validate_secret(const json::object& secret, std::size_t data_bytes);
/// ValidatePersistentVolumeClaim: metadata, accessModes, resources.requests[storage].
field_errors validate_pvc(const json::object& pvc);
/// ValidateNamespace: name is a DNS-1123 label, labels and annotations.
field_errors validate_namespace(const json::object& ns);

/// ValidateObjectMetaAccessorUpdate (objectmeta.go): uid, creationTimestamp and
/// deletionTimestamp may not change (`field is immutable`); labels and annotations as on create.
/// Name and namespace changes are 400s before validation (the handlers' checkName).
field_errors validate_object_meta_update(const json::object& obj, const json::object& old);
/// ValidatePodUpdate (ValidatePod of the new pod first): containers may not be added or removed,
/// images must stay set, activeDeadlineSeconds may be set or lowered, tolerations only added,
/// terminationGracePeriodSeconds set to 1 when it was negative; any other spec change is the
/// Forbidden `pod updates may not change fields other than ...` with a diff of the fields.
field_errors validate_pod_update(const json::object& pod, const json::object& old);
/// ValidatePodStatusUpdate (status_validation.cpp) of a pods/status write whose spec is the
/// stored one: metadata as on update, custom condition types (qualified names),
/// nominatedNodeName (DNS-1123 subdomain), qosClass immutable, no container state going from
/// terminated back to waiting/running unless the restartPolicy restarts it,
/// resourceClaimStatuses naming spec.resourceClaims, podIPs/hostIPs valid (one per family).
/// The phase itself is not checked, as upstream.
field_errors validate_pod_status_update(const json::object& pod, const json::object& old);
/// ValidateSecretUpdate: `type` immutable; with `immutable: true` neither `immutable` nor `data`
/// may change; then ValidateSecret of the new secret.
field_errors validate_secret_update(const json::object& secret, const json::object& old,
                                    std::size_t data_bytes);

/// Drops the fields the v1 schema of `kind` (Pod, Secret, PersistentVolumeClaim, Namespace) does
/// not declare, as the API server's decoder does, and returns their paths in document order
/// ("spec.containers[0].foo"). Checked: the object, metadata, pod spec, containers (ports, env,
/// resources, volumeMounts, securityContext), volumes, claim and namespace specs; deeper
/// objects (affinity, probes, volume sources, ...) are kept as sent.
std::vector<std::string> prune_unknown_fields(std::string_view kind, boost::json::object& obj);

} // namespace podpipe::kubesim
