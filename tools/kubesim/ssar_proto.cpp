#include "tools/kubesim/ssar_proto.hpp"

#include <cstdint>
#include <functional>

namespace podpipe::kubesim {
namespace {

/// A protobuf field reader over one message's bytes.
class reader {
public:
    explicit reader(std::string_view b)
        : b_(b) {}

    bool done() const { return pos_ >= b_.size(); }

    bool varint(std::uint64_t& v) {
        v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos_ >= b_.size())
                return false;
            auto byte = static_cast<std::uint8_t>(b_[pos_++]);
            v |= static_cast<std::uint64_t>(byte & 0x7f) << shift;
            if (!(byte & 0x80))
                return true;
        }
        return false; // more than 10 bytes
    }

    /// Next field: its number, wire type, and for length-delimited fields the payload.
    bool next(std::uint32_t& field, std::uint32_t& wire, std::string_view& payload) {
        std::uint64_t key = 0;
        if (!varint(key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff)
            return false;
        field = static_cast<std::uint32_t>(key >> 3);
        wire = static_cast<std::uint32_t>(key & 7);
        payload = {};
        std::uint64_t v = 0;
        switch (wire) {
        case 0:
            return varint(v);
        case 1:
            return skip(8);
        case 5:
            return skip(4);
        case 2:
            if (!varint(v) || v > b_.size() - pos_)
                return false;
            payload = b_.substr(pos_, static_cast<std::size_t>(v));
            pos_ += static_cast<std::size_t>(v);
            return true;
        default:
            return false; // groups (3, 4) are not used by Kubernetes
        }
    }

private:
    bool skip(std::size_t n) {
        if (n > b_.size() - pos_)
            return false;
        pos_ += n;
        return true;
    }

    std::string_view b_;
    std::size_t pos_ = 0;
};

/// Calls on_field for every length-delimited field of `bytes`; false on malformed input.
bool each_field(std::string_view bytes,
                const std::function<bool(std::uint32_t, std::string_view)>& on_field) {
    reader r(bytes);
    while (!r.done()) {
        std::uint32_t field = 0, wire = 0;
        std::string_view payload;
        if (!r.next(field, wire, payload))
            return false;
        if (wire == 2 && !on_field(field, payload))
            return false;
    }
    return true;
}

/// The runtime.Unknown envelope: TypeMeta and the raw message; false with `error` set.
bool unwrap(std::string_view bytes, std::string& api_version, std::string& kind,
            std::string_view& raw, std::string& error) {
    static constexpr std::string_view magic{"k8s\0", 4};
    if (bytes.substr(0, 4) != magic) {
        error = "missing the k8s protobuf magic";
        return false;
    }
    bool has_raw = false;
    bool ok = each_field(bytes.substr(4), [&](std::uint32_t f, std::string_view p) {
        if (f == 1)
            return each_field(p, [&](std::uint32_t tf, std::string_view tp) {
                if (tf == 1)
                    api_version = tp;
                else if (tf == 2)
                    kind = tp;
                return true;
            });
        if (f == 2) {
            raw = p;
            has_raw = true;
        }
        return true;
    });
    if (!ok || !has_raw) {
        error = "malformed runtime.Unknown envelope";
        return false;
    }
    return true;
}

} // namespace

std::optional<std::string> parse_ssrr_protobuf(std::string_view bytes, std::string& error) {
    std::string api_version, kind, ns;
    std::string_view raw;
    if (!unwrap(bytes, api_version, kind, raw, error))
        return std::nullopt;
    if (kind != "SelfSubjectRulesReview") {
        error = "expected kind SelfSubjectRulesReview, got \"" + kind + "\"";
        return std::nullopt;
    }
    bool ok = each_field(raw, [&](std::uint32_t f, std::string_view p) {
        if (f != 2)
            return true; // metadata, status
        return each_field(p, [&](std::uint32_t sf, std::string_view sp) {
            if (sf == 1)
                ns = sp;
            return true;
        });
    });
    if (!ok) {
        error = "malformed SelfSubjectRulesReview";
        return std::nullopt;
    }
    return ns;
}

std::optional<ssar_request> parse_ssar_protobuf(std::string_view bytes, std::string& error) {
    ssar_request out;
    std::string_view raw;
    if (!unwrap(bytes, out.api_version, out.kind, raw, error))
        return std::nullopt;
    if (out.kind != "SelfSubjectAccessReview") {
        error = "expected kind SelfSubjectAccessReview, got \"" + out.kind + "\"";
        return std::nullopt;
    }
    bool ok = each_field(raw, [&](std::uint32_t f, std::string_view p) {
        if (f != 2)
            return true; // metadata, status
        return each_field(p, [&](std::uint32_t sf, std::string_view sp) {
            if (sf == 1) {
                out.has_resource = true;
                return each_field(sp, [&](std::uint32_t af, std::string_view ap) {
                    std::string* dst[] = {nullptr,      &out.ns,       &out.verb,        &out.group,
                                          &out.version, &out.resource, &out.subresource, &out.name};
                    if (af < std::size(dst) && dst[af])
                        *dst[af] = ap;
                    return true;
                });
            }
            if (sf == 2) {
                out.has_non_resource = true;
                return each_field(sp, [&](std::uint32_t nf, std::string_view np) {
                    if (nf == 1)
                        out.path = np;
                    else if (nf == 2)
                        out.non_resource_verb = np;
                    return true;
                });
            }
            return true;
        });
    });
    if (!ok) {
        error = "malformed SelfSubjectAccessReview";
        return std::nullopt;
    }
    return out;
}

} // namespace podpipe::kubesim
