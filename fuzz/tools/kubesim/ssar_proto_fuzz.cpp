// libFuzzer target for kubesim's protobuf SelfSubjectAccessReview and SelfSubjectRulesReview
// decoders (untrusted request bodies). Checks: no crash or over-read, and a decoded review always
// came from a body that starts with the k8s magic.
#include "tools/kubesim/ssar_proto.hpp"

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    std::string error;
    auto r = podpipe::kubesim::parse_ssar_protobuf(bytes, error);
    if (r && bytes.substr(0, 4) != std::string_view("k8s\0", 4))
        std::abort();
    if (!r && error.empty())
        std::abort();
    std::string rules_error;
    auto ns = podpipe::kubesim::parse_ssrr_protobuf(bytes, rules_error);
    if (ns && bytes.substr(0, 4) != std::string_view("k8s\0", 4))
        std::abort();
    if (!ns && rules_error.empty())
        std::abort();
    return 0;
}
