#include "engine/io/snapshot.hpp"

#include "engine/common/unique_fd.hpp"
#include "engine/io/error.hpp"
#include "engine/io/paths.hpp"
#include "engine/io/tree_reader.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <numeric>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>
#include <utility>

namespace podpipe::io {

/// The parser's way in: records arrive already in order and validated.
struct snapshot_access {
    static void append(tree_snapshot& s, const snapshot_entry& e) { s.append(e); }
    static void sort_unique(tree_snapshot& s) { s.sort_unique(); }
    static void shrink(tree_snapshot& s) { s.shrink(); }
};

namespace {

std::string errno_text(int e) { return std::strerror(e); }

void set_detail(std::string* out, std::string text) {
    if (out != nullptr)
        *out = std::move(text);
}

/// A relative path as the walk makes them: non-empty, no leading or trailing '/', no empty,
/// "." or ".." component, no NUL.
bool is_clean_relative(std::string_view p) {
    if (p.empty() || p.find('\0') != std::string_view::npos)
        return false;
    std::size_t start = 0;
    while (true) {
        const std::size_t slash = p.find('/', start);
        const std::string_view comp = p.substr(
            start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
        if (comp.empty() || comp == "." || comp == "..")
            return false;
        if (slash == std::string_view::npos)
            return true;
        start = slash + 1;
    }
}

std::string_view parent_of(std::string_view p) {
    const std::size_t slash = p.rfind('/');
    return slash == std::string_view::npos ? std::string_view() : p.substr(0, slash);
}

/// st_mtim as nanoseconds; wraps (defined: unsigned arithmetic) for times past 2262.
std::int64_t mtime_ns_of(std::int64_t sec, std::uint32_t nsec) {
    return static_cast<std::int64_t>(static_cast<std::uint64_t>(sec) * 1'000'000'000ULL +
                                     nsec);
}

/// Paths left out of a snapshot, with what lies below them.
class leave_out_set {
public:
    explicit leave_out_set(std::span<const std::string> paths) {
        for (const auto& k : paths)
            if (auto n = normalize_entry_path(k); n && !n->empty())
                paths_.push_back(std::move(*n));
    }
    bool covers(std::string_view path) const {
        return std::any_of(paths_.begin(), paths_.end(), [&](const std::string& k) {
            return path.starts_with(k) && (path.size() == k.size() || path[k.size()] == '/');
        });
    }

private:
    std::vector<std::string> paths_;
};

/// A walked entry as a snapshot keeps it; nullopt for kinds a snapshot does not hold and
/// for what `leave_out` covers. The views point into `w`.
std::optional<snapshot_entry> entry_of(const walked_entry& w, const leave_out_set& leave_out) {
    if (w.kind != file_kind::regular && w.kind != file_kind::directory &&
        w.kind != file_kind::symlink)
        return std::nullopt;
    if (leave_out.covers(w.path))
        return std::nullopt;
    snapshot_entry e;
    e.path = w.path;
    e.kind = w.kind;
    e.mode = w.mode;
    e.size = w.kind == file_kind::regular ? w.size : 0;
    e.mtime_ns = mtime_ns_of(w.mtime_sec, w.mtime_nsec);
    e.ino = w.ino;
    e.link_target = w.kind == file_kind::symlink ? std::string_view(w.link_target) : "";
    return e;
}

// ---------------------------------------------------------------- saved form

constexpr std::string_view magic = "podpipe temp manifest v1\n";
constexpr std::size_t min_entry_bytes = 1 + 4 + 8 + 8 + 4 + 8 + 4 + 1; // + a 1-byte path
constexpr std::uint32_t max_name_bytes = 1U << 20;

std::uint8_t kind_byte(file_kind k) {
    return k == file_kind::directory ? 1 : k == file_kind::symlink ? 2 : 0;
}

std::uint64_t fnv1a(std::string_view bytes) {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : bytes) {
        h ^= static_cast<unsigned char>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

template <class T>
void put(std::string& out, T v) {
    auto u = static_cast<std::make_unsigned_t<T>>(v);
    char b[sizeof(T)];
    for (std::size_t i = 0; i < sizeof(T); ++i) {
        b[i] = static_cast<char>(u & 0xff);
        u = static_cast<decltype(u)>(u >> 8);
    }
    out.append(b, sizeof(T));
}

class byte_reader {
public:
    explicit byte_reader(std::string_view b)
        : b_(b) {}

    template <class T>
    bool get(T& v) {
        using U = std::make_unsigned_t<T>;
        if (b_.size() - pos_ < sizeof(T))
            return false;
        U u = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            u = static_cast<U>(
                u | static_cast<U>(static_cast<U>(static_cast<unsigned char>(b_[pos_ + i]))
                                   << (8 * i)));
        pos_ += sizeof(T);
        v = static_cast<T>(u);
        return true;
    }

    bool get_bytes(std::size_t n, std::string_view& out) {
        if (b_.size() - pos_ < n)
            return false;
        out = b_.substr(pos_, n);
        pos_ += n;
        return true;
    }

    std::size_t remaining() const { return b_.size() - pos_; }

private:
    std::string_view b_;
    std::size_t pos_ = 0;
};

result<tree_snapshot> bad(std::string* detail, std::string what) {
    set_detail(detail, std::move(what));
    return fail(errc::bad_snapshot);
}

} // namespace

// ---------------------------------------------------------------- tree_snapshot

snapshot_entry tree_snapshot::view(const record& r) const {
    snapshot_entry e;
    e.path = path_of(r);
    e.kind = static_cast<file_kind>(r.kind);
    e.mode = r.mode;
    e.size = r.size;
    e.mtime_ns = r.mtime_ns;
    e.ino = r.ino;
    e.link_target = {names_.data() + r.at + r.path_len, r.link_len};
    return e;
}

snapshot_entry tree_snapshot::operator[](std::size_t i) const { return view(records_[i]); }

void tree_snapshot::append(const snapshot_entry& e) {
    record r{};
    r.size = e.size;
    r.mtime_ns = e.mtime_ns;
    r.ino = e.ino;
    r.at = names_.size();
    r.path_len = static_cast<std::uint32_t>(e.path.size());
    r.link_len = static_cast<std::uint32_t>(e.link_target.size());
    r.mode = static_cast<std::uint16_t>(e.mode & 0xffff);
    r.kind = static_cast<std::uint8_t>(e.kind);
    names_.append(e.path);
    names_.append(e.link_target);
    records_.push_back(r);
}

void tree_snapshot::sort_unique() {
    const auto less = [this](const record& a, const record& b) {
        return path_of(a) < path_of(b);
    };
    if (std::is_sorted(records_.begin(), records_.end(), less) &&
        std::adjacent_find(records_.begin(), records_.end(), [this](const record& a,
                                                                    const record& b) {
            return path_of(a) == path_of(b);
        }) == records_.end())
        return;
    // Stable, so that of a repeated path the last appended comes last and is kept.
    std::stable_sort(records_.begin(), records_.end(), less);
    std::vector<record> kept;
    kept.reserve(records_.size());
    for (std::size_t i = 0; i < records_.size(); ++i)
        if (i + 1 == records_.size() || path_of(records_[i]) != path_of(records_[i + 1]))
            kept.push_back(records_[i]);
    records_ = std::move(kept);
}

tree_snapshot tree_snapshot::from_walk(std::span<const walked_entry> entries,
                                       std::span<const std::string> leave_out) {
    const leave_out_set skip(leave_out);
    tree_snapshot s;
    std::size_t names = 0;
    for (const walked_entry& w : entries)
        names += w.path.size() + w.link_target.size();
    s.records_.reserve(entries.size());
    s.names_.reserve(names);
    for (const walked_entry& w : entries)
        if (const auto e = entry_of(w, skip))
            s.append(*e);
    s.sort_unique();
    return s;
}

tree_snapshot tree_snapshot::from_entries(std::span<const snapshot_entry> entries) {
    tree_snapshot s;
    s.records_.reserve(entries.size());
    for (const snapshot_entry& e : entries)
        s.append(e);
    s.sort_unique();
    return s;
}

std::optional<snapshot_entry> tree_snapshot::find(std::string_view path) const {
    const auto it = std::lower_bound(
        records_.begin(), records_.end(), path,
        [this](const record& r, std::string_view p) { return path_of(r) < p; });
    if (it == records_.end() || path_of(*it) != path)
        return std::nullopt;
    return view(*it);
}

bool tree_snapshot::erase(std::string_view path) {
    const auto it = std::lower_bound(
        records_.begin(), records_.end(), path,
        [this](const record& r, std::string_view p) { return path_of(r) < p; });
    if (it == records_.end() || path_of(*it) != path)
        return false;
    records_.erase(it); // its names stay in the arena until the snapshot goes
    return true;
}

std::size_t tree_snapshot::memory_bytes() const noexcept {
    return records_.capacity() * sizeof(record) + names_.capacity();
}

bool tree_snapshot::operator==(const tree_snapshot& o) const {
    if (size() != o.size())
        return false;
    for (std::size_t i = 0; i < size(); ++i)
        if ((*this)[i] != o[i])
            return false;
    return true;
}

// ---------------------------------------------------------------- diff

bool tree_delta::empty() const {
    return send.empty() && new_dirs.empty() && replaced.empty() && removed.empty();
}

tree_delta diff_snapshots(const tree_snapshot& before, const tree_snapshot& now) {
    tree_delta d;
    const auto add_new = [&d](const snapshot_entry& e) {
        if (e.kind == file_kind::directory) {
            d.new_dirs.emplace_back(e.path);
        } else {
            d.send.emplace_back(e.path);
            if (e.kind == file_kind::regular)
                d.send_bytes += e.size;
        }
    };
    const auto add_removed = [&](const snapshot_entry& e) {
        // Covered when the parent directory (as `before` has it) is itself removed or
        // replaced: one deletion takes the whole subtree.
        const std::string_view parent = parent_of(e.path);
        if (!parent.empty()) {
            const auto p_old = before.find(parent);
            const auto p_now = now.find(parent);
            if (p_old && p_old->kind == file_kind::directory &&
                !(p_now && p_now->kind == file_kind::directory))
                return;
        }
        d.removed.emplace_back(e.path);
    };
    std::size_t i = 0, j = 0;
    while (i < before.size() || j < now.size()) {
        if (j == now.size()) {
            add_removed(before[i++]);
            continue;
        }
        const snapshot_entry n = now[j];
        if (i == before.size()) {
            add_new(n);
            ++j;
            continue;
        }
        const snapshot_entry o = before[i];
        if (o.path < n.path) {
            add_removed(o);
            ++i;
            continue;
        }
        if (n.path < o.path) {
            add_new(n);
            ++j;
            continue;
        }
        ++i;
        ++j;
        if (o.kind != n.kind) {
            d.replaced.emplace_back(n.path);
            add_new(n);
        } else if (n.kind == file_kind::directory) {
            if (o.mode != n.mode || o.mtime_ns != n.mtime_ns)
                d.new_dirs.emplace_back(n.path);
        } else if (o != n) {
            add_new(n);
        }
    }
    return d; // each list was filled in path order, so it is sorted
}

// ---------------------------------------------------------------- walking

result<tree_snapshot> snapshot_tree(const std::string& root,
                                    std::span<const std::string> leave_out,
                                    std::stop_token stop, std::string* error_detail) {
    // Straight into the snapshot: the walk's entries are not kept on the way.
    const leave_out_set skip(leave_out);
    tree_snapshot s;
    auto problems = walk_tree_visit(
        root, {},
        [&](const walked_entry& w) {
            if (const auto e = entry_of(w, skip))
                snapshot_access::append(s, *e);
        },
        std::move(stop), error_detail);
    if (!problems)
        return fail(problems.error());
    // The walker's problems name what it could not list, stat or read; only a directory
    // that vanished before it was listed is not one (dir_walker's "vanished before" line).
    for (const std::string& p : *problems)
        if (p.find("vanished before") == std::string::npos) {
            set_detail(error_detail, "in " + root + ": " + p);
            return fail(errc::io_failed);
        }
    snapshot_access::sort_unique(s);
    snapshot_access::shrink(s); // the walk's count was not known ahead: growth over-allocated
    return s;
}

// ---------------------------------------------------------------- saved form

std::string serialize_snapshot(const tree_snapshot& s) {
    std::string out(magic);
    put<std::uint64_t>(out, s.size());
    for (const snapshot_entry e : s) {
        put<std::uint8_t>(out, kind_byte(e.kind));
        put<std::uint32_t>(out, static_cast<std::uint32_t>(e.path.size()));
        out += e.path;
        put<std::uint64_t>(out, e.size);
        put<std::int64_t>(out, e.mtime_ns);
        put<std::uint32_t>(out, e.mode);
        put<std::uint64_t>(out, e.ino);
        put<std::uint32_t>(out, static_cast<std::uint32_t>(e.link_target.size()));
        out += e.link_target;
    }
    put<std::uint64_t>(out, fnv1a(out));
    return out;
}

result<tree_snapshot> parse_snapshot(std::string_view bytes, std::string* error_detail) {
    if (!bytes.starts_with(magic))
        return bad(error_detail, "not a podpipe tree snapshot (or another version)");
    if (bytes.size() < magic.size() + 16)
        return bad(error_detail, "truncated");
    const std::string_view body = bytes.substr(0, bytes.size() - 8);
    byte_reader trailer(bytes.substr(bytes.size() - 8));
    std::uint64_t sum = 0;
    (void)trailer.get(sum);
    if (sum != fnv1a(body))
        return bad(error_detail, "checksum mismatch (truncated or damaged)");

    byte_reader r(body.substr(magic.size()));
    std::uint64_t count = 0;
    (void)r.get(count);
    if (count > r.remaining() / min_entry_bytes)
        return bad(error_detail, "entry count " + std::to_string(count) + " exceeds the file");
    tree_snapshot out;
    std::string_view last;
    for (std::uint64_t i = 0; i < count; ++i) {
        const auto at = [i](const char* what) {
            return "entry " + std::to_string(i) + ": " + what;
        };
        std::uint8_t kind = 0;
        std::uint32_t path_len = 0;
        std::uint32_t link_len = 0;
        std::uint32_t mode = 0;
        snapshot_entry e;
        if (!r.get(kind) || !r.get(path_len) || path_len > max_name_bytes ||
            !r.get_bytes(path_len, e.path) || !r.get(e.size) || !r.get(e.mtime_ns) ||
            !r.get(mode) || !r.get(e.ino) || !r.get(link_len) || link_len > max_name_bytes ||
            !r.get_bytes(link_len, e.link_target))
            return bad(error_detail, at("truncated"));
        if (kind > 2)
            return bad(error_detail, at("unknown kind ") + std::to_string(kind));
        e.kind = kind == 1 ? file_kind::directory
                 : kind == 2 ? file_kind::symlink
                             : file_kind::regular;
        if (!is_clean_relative(e.path))
            return bad(error_detail, at("path is not a clean relative path"));
        if (i != 0 && !(last < e.path))
            return bad(error_detail, at("paths out of order or repeated"));
        if (mode > 07777)
            return bad(error_detail, at("mode out of range"));
        e.mode = mode;
        if (e.kind != file_kind::regular && e.size != 0)
            return bad(error_detail, at("size on a non-file"));
        if ((e.kind == file_kind::symlink) == e.link_target.empty() ||
            e.link_target.find('\0') != std::string_view::npos)
            return bad(error_detail, at("bad symlink target"));
        snapshot_access::append(out, e);
        last = e.path;
    }
    if (r.remaining() != 0)
        return bad(error_detail, "trailing bytes after the last entry");
    return out;
}

result<void> save_snapshot(const std::string& file, const tree_snapshot& s,
                           std::string* error_detail) {
    namespace fs = std::filesystem;
    const auto io_fail = [error_detail](std::string what) -> result<void> {
        set_detail(error_detail, std::move(what));
        return fail(errc::io_failed);
    };
    const fs::path target(file);
    fs::path dir = target.parent_path();
    if (dir.empty())
        dir = ".";
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec)
        return io_fail("cannot create directory " + dir.string() + ": " + ec.message());
    const std::string bytes = serialize_snapshot(s);
    std::string tmp = (dir / ("." + target.filename().string() + ".XXXXXX")).string();
    unique_fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd)
        return io_fail("cannot create a temporary file beside " + file + ": " +
                       errno_text(errno));
    const auto cleanup_fail = [&](std::string_view what, int e) {
        ::unlink(tmp.c_str());
        return io_fail(std::string(what) + " " + tmp + ": " + errno_text(e));
    };
    for (std::size_t done = 0; done < bytes.size();) {
        const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cleanup_fail("cannot write", errno);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(fd.get()) != 0)
        return cleanup_fail("cannot fsync", errno);
    fd.reset();
    if (::rename(tmp.c_str(), file.c_str()) != 0) {
        const int e = errno;
        ::unlink(tmp.c_str());
        return io_fail("cannot rename a temporary file over " + file + ": " + errno_text(e));
    }
    // Make the rename itself durable; a failure here loses nothing already promised.
    if (unique_fd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)); dfd)
        (void)::fsync(dfd.get());
    return {};
}

result<tree_snapshot> load_snapshot(const std::string& file, std::string* error_detail) {
    unique_fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        if (errno == ENOENT)
            return tree_snapshot{};
        set_detail(error_detail, "cannot open snapshot " + file + ": " + errno_text(errno));
        return fail(errc::io_failed);
    }
    std::string bytes;
    struct stat st {};
    if (::fstat(fd.get(), &st) == 0 && st.st_size > 0)
        bytes.reserve(static_cast<std::size_t>(st.st_size));
    std::array<char, 1 << 16> buf{};
    while (true) {
        const ssize_t n = ::read(fd.get(), buf.data(), buf.size());
        if (n < 0) {
            if (errno == EINTR)
                continue;
            set_detail(error_detail, "cannot read snapshot " + file + ": " + errno_text(errno));
            return fail(errc::io_failed);
        }
        if (n == 0)
            break;
        bytes.append(buf.data(), static_cast<std::size_t>(n));
    }
    std::string why;
    auto parsed = parse_snapshot(bytes, &why);
    if (!parsed)
        set_detail(error_detail, why + " (" + file + ")");
    return parsed;
}

} // namespace podpipe::io
