// What `podpipe bench` measured, and its `--json` document (written with json_writer, the one
// JSON writer; the field names and number formats are the ones scripts read, see bench_json).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace podpipe::cli {

/// One transfer of the matrix.
struct bench_cell {
    std::string direction; ///< "to pod" / "from pod"
    std::string pod_side;  ///< "podpipe" / "tar"
    std::string level;     ///< "0".."12" / "auto"
    std::size_t chunk = 1 << 20;
    unsigned threads = 0;
    bool ok = false;
    std::string error; ///< "exit N: message" when !ok
    double seconds = 0;
    std::uint64_t content_bytes = 0;
    std::uint64_t wire_bytes = 0;
    double local_cpu_s = 0;
    std::optional<double> remote_cpu_s;   ///< the pod ran podpipe recv (its report says)
    std::optional<double> remote_rss_mib; ///< ditto

    double mbps() const {
        return seconds > 0 ? static_cast<double>(content_bytes) / 1e6 / seconds : 0;
    }
};

/// Raw exec: bytes through stdin and stdout, and one exec's round trip.
struct exec_numbers {
    double upload_mbps = 0;
    double download_mbps = 0;
    double rtt_ms = 0;
};

struct bench_summary {
    std::string pod;  ///< pod_end::name()
    bool pod_binary = false;
    std::string protocol; ///< the exec protocol
    std::string tree;     ///< the local tree sent
    exec_numbers exec;
    long local_max_rss_kib = 0;
    std::vector<bench_cell> cells;
    std::optional<bench_cell> recommended; ///< the best of `cells`; none: none succeeded
};

/// "1M" or "256K": how `podpipe cp --chunk-size` takes a chunk size.
std::string size_label(std::size_t bytes);

/// The same size as podpipe-hook's PODPIPE_CHUNK_SIZE takes it (Ki/Mi suffixes): "1Mi".
std::string hook_size(std::size_t bytes);

/// The `--json` document, one line ending in a newline: pod, pod_binary, protocol, tree,
/// exec {upload_mbps, download_mbps, rtt_ms: 1 decimal}, local_max_rss_kib, cells [{direction,
/// pod_side, level, chunk, threads, ok, seconds (3 decimals), mbps (2), content_bytes,
/// wire_bytes, local_cpu_s (3), pod_cpu_s (3; -1: not known)}], recommended {level,
/// chunk_size, threads, hook_env {PODPIPE_COMPRESSION_LEVEL, PODPIPE_CHUNK_SIZE,
/// PODPIPE_THREADS}} or null. Strings are escaped (RFC 8259); a rate that is not finite is null.
std::string bench_json(const bench_summary& s);

} // namespace podpipe::cli
