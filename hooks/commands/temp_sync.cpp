#include "hooks/commands/temp_sync.hpp"

#include "engine/io/error.hpp"
#include "engine/io/paths.hpp"
#include "kube/pod_spec.hpp"

#include <string_view>
#include <utility>

namespace podpipe::hook {

const std::vector<std::string> temp_skip = {"_runner_hook_responses"};

result<io::tree_snapshot, hook_error> scan_temp(const std::string& root) {
    std::string detail;
    auto s = io::snapshot_tree(root, temp_skip, {}, &detail);
    if (!s)
        return fail(make_error(errc::temp_sync, "cannot walk the _temp root: " + detail));
    return std::move(*s);
}

result<io::tree_snapshot, hook_error> load_temp_record(const std::string& file) {
    std::string detail;
    auto s = io::load_snapshot(file, &detail);
    if (!s) {
        if (s.error() == io::errc::bad_snapshot)
            return fail(make_error(errc::temp_manifest, "bad _temp manifest: " + detail));
        return fail(make_error(errc::temp_sync, detail));
    }
    return std::move(*s);
}

result<void, hook_error> save_temp_record(const std::string& file, const io::tree_snapshot& s) {
    std::string detail;
    if (auto saved = io::save_snapshot(file, s, &detail); !saved)
        return fail(make_error(errc::temp_sync, detail));
    return {};
}

std::string removal_script(const std::string& pod_root, const std::vector<std::string>& paths) {
    constexpr std::size_t max_line_bytes = std::size_t{64} * 1024;
    constexpr std::string_view command = "rm -rf --";
    std::string script;
    if (pod_root.empty() || pod_root.find('\0') != std::string::npos)
        return script; // a relative or unusable root would delete beneath the shell's cwd
    const std::string root = pod_root.back() == '/' ? pod_root : pod_root + '/';
    std::string line;
    for (const auto& p : paths) {
        // Only paths that are already clean (the engine's own normalisation, which drops "."
        // components and repeated '/', must not change them: "a/./b" is skipped, not fixed).
        auto clean = io::normalize_entry_path(p);
        if (!clean || clean->empty() || *clean != p)
            continue;
        const std::string word = kube::single_quote(root + p);
        if (!line.empty() && line.size() + 1 + word.size() + 1 > max_line_bytes) {
            script += line;
            script += '\n';
            line.clear();
        }
        if (line.empty())
            line = command;
        line += ' ';
        line += word;
    }
    if (!line.empty()) {
        script += line;
        script += '\n';
    }
    return script;
}

} // namespace podpipe::hook
