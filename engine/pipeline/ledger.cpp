#include "engine/pipeline/ledger.hpp"

#include "engine/tar/limits.hpp"

#include <cerrno>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

namespace podpipe::pipeline {
namespace {

constexpr std::string_view record_magic = "podpipe-ledger v1\n";
constexpr std::string_view dir_magic = "D1";
// Bounds a decoder checks before it trusts a length (a path as tar allows, a manifest state
// of a few hundred bytes).
constexpr std::uint64_t max_text = 64 * 1024;

void put_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i)
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

void put_text(std::string& out, std::string_view s) {
    put_u64(out, s.size());
    out.append(s);
}

// A strict little reader: every take fails once the input is short.
struct reader {
    std::string_view in;
    bool ok = true;

    std::uint64_t u64() {
        if (!ok || in.size() < 8) {
            ok = false;
            return 0;
        }
        std::uint64_t v = 0;
        for (int i = 0; i < 8; ++i)
            v |= static_cast<std::uint64_t>(static_cast<unsigned char>(in[i])) << (8 * i);
        in.remove_prefix(8);
        return v;
    }
    std::string text() {
        const std::uint64_t n = u64();
        if (!ok || n > max_text || n > in.size()) {
            ok = false;
            return {};
        }
        std::string s(in.substr(0, n));
        in.remove_prefix(n);
        return s;
    }
    std::uint32_t u32() {
        const std::uint64_t v = u64();
        if (v > 0xffffffffu)
            ok = false;
        return static_cast<std::uint32_t>(v);
    }
};

void put_tar_entry(std::string& out, const tar::entry& e) {
    put_text(out, e.path);
    put_u64(out, static_cast<std::uint64_t>(e.type));
    put_u64(out, e.mode);
    put_u64(out, e.size);
    put_u64(out, static_cast<std::uint64_t>(e.mtime_sec));
    put_u64(out, e.uid);
    put_u64(out, e.gid);
    put_text(out, e.uname);
    put_text(out, e.gname);
    put_text(out, e.link_target);
}

tar::entry take_tar_entry(reader& r) {
    tar::entry e;
    e.path = r.text();
    const std::uint64_t type = r.u64();
    e.type = static_cast<tar::entry_type>(static_cast<char>(type));
    e.mode = r.u32();
    if (type > 0x7f || e.mode > 07777u) // what put_tar_entry never writes
        r.ok = false;
    e.size = r.u64();
    e.mtime_sec = static_cast<std::int64_t>(r.u64());
    e.uid = r.u32();
    e.gid = r.u32();
    e.uname = r.text();
    e.gname = r.text();
    e.link_target = r.text();
    return e;
}

std::uint64_t checksum(std::string_view body) { return XXH3_64bits(body.data(), body.size()); }

std::string record_name(std::string_view id) { return ".podpipe-resume-" + std::string(id); }

// Reads a whole file beneath `dir` (no symlink followed); empty when missing.
std::string read_file_at(int dir, const std::string& name, std::uint64_t limit) {
    unique_fd fd(::openat(dir, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (fd.get() < 0)
        return {};
    std::string out;
    char buf[64 * 1024];
    while (out.size() < limit) {
        const ssize_t n = ::read(fd.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        out.append(buf, static_cast<std::size_t>(n));
    }
    if (out.size() > limit)
        out.resize(limit);
    return out;
}

result<void> write_all(int fd, std::string_view bytes) {
    while (!bytes.empty()) {
        const ssize_t n = ::write(fd, bytes.data(), bytes.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(std::error_code(errno, std::system_category()));
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return {};
}

std::error_code last_error() { return {errno, std::system_category()}; }

} // namespace

bool valid_transfer_id(std::string_view id) {
    if (id.empty() || id.size() > 64)
        return false;
    for (const char c : id)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '-'))
            return false;
    return true;
}

std::string encode_ledger(const ledger_record& r) {
    std::string body(record_magic);
    put_u64(body, r.point.offset);
    put_u64(body, r.point.in_content ? 1 : 0);
    if (r.point.in_content) {
        put_tar_entry(body, r.point.current);
        put_u64(body, r.point.content_done);
    }
    put_text(body, r.manifest_state);
    put_u64(body, r.before.entries);
    put_u64(body, r.before.content_bytes);
    put_u64(body, r.before.digest);
    put_u64(body, r.dirs_bytes);
    put_u64(body, checksum(body));
    return body;
}

std::optional<ledger_record> decode_ledger(std::string_view bytes) {
    if (!bytes.starts_with(record_magic) || bytes.size() < record_magic.size() + 8)
        return std::nullopt;
    const std::string_view body = bytes.substr(0, bytes.size() - 8);
    reader tail{bytes.substr(bytes.size() - 8)};
    if (tail.u64() != checksum(body))
        return std::nullopt;
    reader r{body.substr(record_magic.size())};
    ledger_record rec;
    rec.point.offset = r.u64();
    const std::uint64_t in_content = r.u64();
    if (in_content > 1)
        return std::nullopt;
    rec.point.in_content = in_content == 1;
    if (rec.point.in_content) {
        rec.point.current = take_tar_entry(r);
        rec.point.content_done = r.u64();
        if (rec.point.current.type != tar::entry_type::regular ||
            rec.point.content_done >= rec.point.current.size ||
            rec.point.content_done > rec.point.offset || rec.point.current.path.empty())
            return std::nullopt;
    } else if (rec.point.offset % 512 != 0) {
        return std::nullopt;
    }
    rec.manifest_state = r.text();
    rec.before.entries = r.u64();
    rec.before.content_bytes = r.u64();
    rec.before.digest = r.u64();
    rec.dirs_bytes = r.u64();
    if (!r.ok || !r.in.empty() || rec.point.offset == 0)
        return std::nullopt;
    return rec;
}

std::string encode_dir_record(const io::file_entry& dir) {
    std::string out(dir_magic);
    put_text(out, dir.path);
    put_u64(out, dir.mode);
    put_u64(out, static_cast<std::uint64_t>(dir.mtime_sec));
    put_u64(out, dir.mtime_nsec);
    put_u64(out, dir.uid);
    put_u64(out, dir.gid);
    return out;
}

std::optional<std::vector<io::file_entry>> decode_dir_log(std::string_view log) {
    std::vector<io::file_entry> dirs;
    reader r{log};
    while (r.ok && !r.in.empty()) {
        if (!r.in.starts_with(dir_magic))
            return std::nullopt;
        r.in.remove_prefix(dir_magic.size());
        io::file_entry e;
        e.kind = io::file_kind::directory;
        e.path = r.text();
        e.mode = r.u32();
        if (e.mode > 07777u)
            return std::nullopt;
        e.mtime_sec = static_cast<std::int64_t>(r.u64());
        e.mtime_nsec = r.u32();
        e.uid = r.u32();
        e.gid = r.u32();
        if (!r.ok || e.path.empty() || e.mtime_nsec >= 1000000000u)
            return std::nullopt;
        dirs.push_back(std::move(e));
    }
    if (!r.ok)
        return std::nullopt;
    return dirs;
}

std::optional<resume_offer> peek_resume_offer(const std::string& root, std::string_view id) {
    if (!valid_transfer_id(id))
        return std::nullopt;
    unique_fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0)
        return std::nullopt;
    auto rec = decode_ledger(read_file_at(dir.get(), record_name(id), 1 << 20));
    if (!rec)
        return std::nullopt;
    return resume_offer{rec->point.offset, rec->before};
}

result<ledger_files> ledger_files::open(const std::string& root, std::string_view id,
                                        std::chrono::milliseconds wait) {
    if (!valid_transfer_id(id))
        return fail(std::make_error_code(std::errc::invalid_argument));
    unique_fd dir(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dir.get() < 0)
        return fail(last_error());
    const std::string record = record_name(id);
    const std::string dirs = record + ".dirs";
    unique_fd log(::openat(dir.get(), dirs.c_str(),
                           O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (log.get() < 0)
        return fail(last_error());
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (::flock(log.get(), LOCK_EX | LOCK_NB) != 0) {
        if (errno == EINTR)
            continue;
        if (errno != EWOULDBLOCK)
            return fail(last_error());
        if (std::chrono::steady_clock::now() >= deadline)
            return fail(std::make_error_code(std::errc::timed_out));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    struct stat st {};
    if (::fstat(log.get(), &st) != 0)
        return fail(last_error());
    if (!S_ISREG(st.st_mode))
        return fail(std::make_error_code(std::errc::invalid_argument));
    return ledger_files(std::move(dir), record, dirs, std::move(log),
                        static_cast<std::uint64_t>(st.st_size));
}

std::optional<ledger_record> ledger_files::read_record() const {
    auto rec = decode_ledger(read_file_at(root_.get(), record_name_, 1 << 20));
    if (!rec || rec->dirs_bytes > dirs_bytes_)
        return std::nullopt;
    return rec;
}

std::string ledger_files::read_dir_log(std::uint64_t bytes) const {
    return read_file_at(root_.get(), dirs_name_, bytes);
}

result<void> ledger_files::append_dirs(std::string_view records) {
    if (records.empty())
        return {};
    PODPIPE_TRY(write_all(dirs_.get(), records));
    dirs_bytes_ += records.size();
    return {};
}

result<void> ledger_files::commit(const ledger_record& r) {
    const std::string tmp = record_name_ + ".tmp";
    unique_fd fd(::openat(root_.get(), tmp.c_str(),
                          O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (fd.get() < 0)
        return fail(last_error());
    PODPIPE_TRY(write_all(fd.get(), encode_ledger(r)));
    fd.reset();
    if (::renameat(root_.get(), tmp.c_str(), root_.get(), record_name_.c_str()) != 0)
        return fail(last_error());
    return {};
}

result<void> ledger_files::keep_dirs(std::uint64_t bytes) {
    if (bytes > dirs_bytes_)
        return fail(std::make_error_code(std::errc::invalid_argument));
    if (::ftruncate(dirs_.get(), static_cast<off_t>(bytes)) != 0)
        return fail(last_error());
    dirs_bytes_ = bytes;
    return {};
}

result<void> ledger_files::reset() {
    if (::unlinkat(root_.get(), record_name_.c_str(), 0) != 0 && errno != ENOENT)
        return fail(last_error());
    if (::ftruncate(dirs_.get(), 0) != 0)
        return fail(last_error());
    dirs_bytes_ = 0;
    return {};
}

void ledger_files::remove() {
    (void)::unlinkat(root_.get(), record_name_.c_str(), 0);
    (void)::unlinkat(root_.get(), (record_name_ + ".tmp").c_str(), 0);
    (void)::unlinkat(root_.get(), dirs_name_.c_str(), 0);
}

} // namespace podpipe::pipeline
