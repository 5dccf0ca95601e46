// Deterministic synthetic trees for `podpipe bench --synthetic files=N,size=S,dist=D`: the same
// spec gives the same bytes on every machine, so results compare across clusters.
#pragma once

#include "engine/common/result.hpp"

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace podpipe::cli {

struct synthetic_spec {
    std::uint64_t files = 20000;
    std::uint64_t bytes = 250'000'000;
    /// source: text files, median a few KiB, compress ~4:1. node_modules: many tiny files in
    /// deep directories. binaries: few large, barely compressible files.
    std::string dist = "source";
};

/// Parses "files=20000,size=250M,dist=source" (any subset, any order).
result<synthetic_spec, std::string> parse_synthetic_spec(std::string_view text);

/// Writes the tree under `root` (created; must not exist or be empty). Returns bytes written.
result<std::uint64_t, std::string> make_synthetic_tree(const synthetic_spec& spec,
                                                       const std::filesystem::path& root);

} // namespace podpipe::cli
