// libFuzzer target for kubeconfig parsing and resolution (kube/config.hpp). Referenced
// files are not opened and exec plugins are not run (they only run on current()), so the
// target touches nothing outside the process.
#include "kube/config.hpp"

#include <cstdint>
#include <string_view>

using namespace podpipe::kube;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size > 64 * 1024)
        return 0;
    static const config_sources sources = [] {
        config_sources s;
        s.read_files = false;
        return s;
    }();
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    auto c = load_kubeconfig_text(in, "/nonexistent", sources);
    if (c)
        (void)c->server.size();
    else
        (void)c.error().what();
    return 0;
}
