#include "engine/io/paths.hpp"

#include "engine/io/error.hpp"

#include <fnmatch.h>

#include <algorithm>

namespace podpipe::io {

bool is_excluded(std::span<const std::string> patterns, std::string_view rel_path) {
    if (patterns.empty())
        return false;
    const std::string path(rel_path);
    for (const std::string& pat : patterns) {
        // Whole path, then every suffix after a '/' (the last one is the basename).
        std::size_t start = 0;
        for (;;) {
            if (::fnmatch(pat.c_str(), path.c_str() + start, 0) == 0)
                return true;
            const std::size_t slash = path.find('/', start);
            if (slash == std::string::npos)
                break;
            start = slash + 1;
        }
    }
    return false;
}

result<std::string> normalize_entry_path(std::string_view path) {
    if (path.empty() || path.front() == '/' || path.find('\0') != std::string_view::npos)
        return fail(make_error_code(errc::unsafe_path));
    std::string out;
    out.reserve(path.size());
    std::size_t i = 0;
    while (i < path.size()) {
        std::size_t j = path.find('/', i);
        if (j == std::string_view::npos)
            j = path.size();
        const std::string_view comp = path.substr(i, j - i);
        i = j + 1;
        if (comp.empty() || comp == ".")
            continue;
        if (comp == "..")
            return fail(make_error_code(errc::unsafe_path));
        if (!out.empty())
            out.push_back('/');
        out.append(comp);
    }
    return out;
}

std::string dfs_key(std::string_view rel_path) {
    std::string k(rel_path);
    std::replace(k.begin(), k.end(), '/', '\0');
    return k;
}

result<path_selection> path_selection::make(std::span<const std::string> paths, bool descend) {
    path_selection s;
    s.descend_ = descend;
    for (const std::string& p : paths) {
        auto n = normalize_entry_path(p);
        if (!n)
            return fail(n.error());
        if (n->empty()) {
            s.all_ = true;
            continue;
        }
        for (std::size_t slash = n->find('/'); slash != std::string::npos;
             slash = n->find('/', slash + 1))
            s.on_the_way_.insert(n->substr(0, slash));
        s.selected_.insert(std::move(*n));
    }
    return s;
}

bool path_selection::below_selected(std::string_view rel) const {
    for (std::size_t slash = rel.rfind('/'); slash != std::string_view::npos && slash > 0;
         slash = rel.rfind('/', slash - 1)) {
        if (selected_.contains(rel.substr(0, slash)))
            return true;
    }
    return false;
}

bool path_selection::keeps(std::string_view rel) const {
    if (all_ || selected_.contains(rel) || on_the_way_.contains(rel))
        return true;
    return descend_ && below_selected(rel);
}

bool path_selection::lists(std::string_view rel) const {
    if (all_ || rel.empty() || on_the_way_.contains(rel))
        return true;
    return descend_ && (selected_.contains(rel) || below_selected(rel));
}

} // namespace podpipe::io
