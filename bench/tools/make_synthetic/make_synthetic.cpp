// make_synthetic SPEC DEST: writes the deterministic synthetic tree of `podpipe bench
// --synthetic SPEC` (tools/podpipe/synthetic.hpp) under DEST, for bench/e2e/suite.sh.
#include "tools/podpipe/synthetic.hpp"

#include <cinttypes>
#include <cstdio>

int main(int argc, char** argv) {
    if (argc != 3) {
        std::fprintf(stderr, "usage: make_synthetic files=N,size=S,dist=source|node_modules|binaries DEST\n");
        return 2;
    }
    auto spec = podpipe::cli::parse_synthetic_spec(argv[1]);
    if (!spec) {
        std::fprintf(stderr, "make_synthetic: %s\n", spec.error().c_str());
        return 2;
    }
    auto written = podpipe::cli::make_synthetic_tree(*spec, argv[2]);
    if (!written) {
        std::fprintf(stderr, "make_synthetic: %s\n", written.error().c_str());
        return 1;
    }
    std::printf("tree: %s: %" PRIu64 " files, %" PRIu64 " bytes (synthetic %s)\n", argv[2], spec->files,
                *written, argv[1]);
    return 0;
}
