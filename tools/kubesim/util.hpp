// Small helpers shared by kubesim components: time stamps, random names, the apiserver's lenient
// boolean rule, and Status objects in the upstream JSON shape (spec kube-api.md §3.9).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include <boost/json.hpp>

namespace podpipe::kubesim {

namespace json = boost::json;

/// RFC 3339 UTC, second precision ("2024-05-01T10:00:00Z").
std::string rfc3339(std::chrono::system_clock::time_point t);
std::string now_rfc3339();
/// Go's time.RFC3339Nano in UTC: "2024-05-01T10:00:00.123456789Z", trailing zeros of the fraction
/// dropped (no fraction at all when it is 0), as kubelet log timestamps.
std::string rfc3339_nano(std::chrono::system_clock::time_point t);
/// Parses rfc3339() output back; returns epoch on malformed input.
std::chrono::system_clock::time_point parse_rfc3339(std::string_view s);

/// Standard base64 decode; characters outside the alphabet (padding, newlines) are skipped.
/// `valid` (optional) says whether `in` was strict base64 as the API server requires: a length
/// that is a multiple of 4, only the alphabet, '=' only as the last one or two characters.
std::string b64decode(std::string_view in, bool* valid = nullptr);
/// Standard base64 with padding.
std::string b64encode(std::string_view in);
/// n random lowercase hex characters (from /dev/urandom via OpenSSL RAND_bytes).
std::string random_hex(std::size_t n);
/// A random version-4 style UUID string.
std::string random_uuid();
/// The 5-character suffix generateName appends (consonants and digits, as upstream).
std::string random_name_suffix();

/// The apiserver's query boolean rule (spec §1): absent → false; "0"/"false" (any case) → false;
/// anything else, including "" and "True", → true. `present` says whether the key was present.
bool lenient_bool(bool present, std::string_view value);

/// A Status failure object: {"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
/// "message":..,"reason":..,"details":..,"code":..}. `details` is omitted when null.
json::object status_failure(int code, std::string_view reason, std::string_view message,
                            json::value details = nullptr);
/// details {"name":name,"kind":kind} (name omitted when empty).
json::value status_details(std::string_view name, std::string_view kind);

/// Human age like kubectl's ("5s", "3m", "2h", "4d").
std::string human_age(std::chrono::system_clock::duration d);

/// Helpers reading optional JSON members without throwing.
const json::object* obj_at(const json::value& v, std::string_view key);
const json::object* obj_at(const json::object& o, std::string_view key);
const json::array* arr_at(const json::object& o, std::string_view key);
std::string str_at(const json::object& o, std::string_view key, std::string_view dflt = "");
std::int64_t int_at(const json::object& o, std::string_view key, std::int64_t dflt);

} // namespace podpipe::kubesim
