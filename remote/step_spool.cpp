#include "remote/step_spool.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

namespace podpipe::remote::step {

result<step_status, std::string> parse_status(std::string_view text, const std::string& path) {
    step_status st;
    std::string_view rest;
    if (text.starts_with("exit ")) {
        rest = text.substr(5);
    } else if (text.starts_with("signal ")) {
        st.signalled = true;
        rest = text.substr(7);
    } else {
        return fail(path + ": not a step status: " + std::string(text.substr(0, 40)));
    }
    if (rest.size() < 2 || rest.back() != '\n' || rest.size() > 4) // "N\n" .. "NNN\n"
        return fail(path + ": not a step status: " + std::string(text.substr(0, 40)));
    rest.remove_suffix(1);
    int v = 0;
    for (char c : rest) {
        if (c < '0' || c > '9')
            return fail(path + ": not a step status: " + std::string(text.substr(0, 40)));
        v = v * 10 + (c - '0');
    }
    if (v > 255)
        return fail(path + ": not a step status: " + std::string(text.substr(0, 40)));
    st.value = v;
    return st;
}

std::optional<long> parse_pid(std::string_view text) {
    long v = 0;
    std::size_t i = 0;
    for (; i < text.size() && text[i] != '\n'; ++i) {
        if (text[i] < '0' || text[i] > '9' || v > (1L << 30))
            return std::nullopt;
        v = v * 10 + (text[i] - '0');
    }
    if (i == 0 || v <= 1)
        return std::nullopt;
    return v;
}

namespace {

std::string path_in(const std::string& dir, const char* name) { return dir + "/" + name; }

std::string errno_text(const std::string& what, int e) {
    return what + ": " + std::strerror(e);
}

/// Decimal text of `v` into `buf` without allocating (safe after fork); returns its length.
std::size_t format_decimal(long v, char* buf) {
    char tmp[24];
    std::size_t n = 0;
    const bool negative = v < 0;
    unsigned long u = static_cast<unsigned long>(v);
    if (negative)
        u = 0ul - u;
    do {
        tmp[n++] = static_cast<char>('0' + u % 10);
        u /= 10;
    } while (u != 0);
    std::size_t len = 0;
    if (negative)
        buf[len++] = '-';
    while (n > 0)
        buf[len++] = tmp[--n];
    return len;
}

/// Closes every descriptor from `low` on except `keep` (-1: none); system calls only.
void close_from(int low, int keep) {
    auto close_range_of = [](unsigned first, unsigned last) {
        if (first > last)
            return;
        if (::syscall(SYS_close_range, first, last, 0) == 0)
            return;
        const long max = ::sysconf(_SC_OPEN_MAX); // kernels before 5.9
        for (long fd = first; fd <= static_cast<long>(last) && fd < max; ++fd)
            ::close(static_cast<int>(fd));
    };
    if (keep < low) {
        close_range_of(static_cast<unsigned>(low), ~0u);
        return;
    }
    close_range_of(static_cast<unsigned>(low), static_cast<unsigned>(keep) - 1);
    close_range_of(static_cast<unsigned>(keep) + 1, ~0u);
}

/// Writes `text` to `tmp` and renames it to `final`, all with system calls only (after fork).
void write_atomically(const char* tmp, const char* final, const char* text, std::size_t len) {
    const int fd = ::open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    std::size_t done = 0;
    while (done < len) {
        const ssize_t w = ::write(fd, text + done, len - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += static_cast<std::size_t>(w);
    }
    // A short write (a full disk) leaves no file under the final name: a status that is not
    // there reads as "not recorded", which the follower explains; a cut one would not parse.
    const bool whole = done == len && ::fsync(fd) == 0;
    if (::close(fd) != 0 || !whole) {
        ::unlink(tmp);
        return;
    }
    ::rename(tmp, final);
}

/// "; the filesystem of DIR is full ..." when it has no free block left (the likely reason a
/// status was not written), else "".
std::string full_disk_note(const std::string& dir) {
    struct statvfs v {};
    if (::statvfs(dir.c_str(), &v) != 0 || v.f_bavail > 0)
        return {};
    return "; the filesystem of " + dir + " is full (no space left on device)";
}

result<std::string, std::string> read_small(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(errno_text(path, errno));
    std::array<char, 64> buf{};
    ssize_t n;
    do
        n = ::read(fd, buf.data(), buf.size());
    while (n < 0 && errno == EINTR);
    const int e = errno;
    ::close(fd);
    if (n < 0)
        return fail(errno_text(path, e));
    return std::string(buf.data(), static_cast<std::size_t>(n));
}


/// Writes all of `data` to `fd`, waiting while it is full; false when it cannot be written.
bool write_all(int fd, const char* data, std::size_t len) {
    while (len > 0) {
        const ssize_t w = ::write(fd, data, len);
        if (w > 0) {
            data += w;
            len -= static_cast<std::size_t>(w);
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 1000);
            continue;
        }
        return false;
    }
    return true;
}

/// A spool file being followed: from where the caller is to its current end.
struct followed {
    int in = -1;
    int out = -1;
    const char* name = "";
    ~followed() {
        if (in >= 0)
            ::close(in);
    }
};

/// Copies what `f.in` holds beyond its offset to `f.out`. Returns whether anything moved, or
/// the error that stopped it.
result<bool, std::string> copy_available(followed& f) {
    std::array<char, 64 * 1024> buf{};
    bool moved = false;
    for (;;) {
        const ssize_t n = ::read(f.in, buf.data(), buf.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return fail(errno_text(std::string("reading the step's ") + f.name, errno));
        if (n == 0)
            return moved;
        if (!write_all(f.out, buf.data(), static_cast<std::size_t>(n)))
            return fail(std::string("writing the step's ") + f.name + ": " +
                        std::strerror(errno) + " (the caller is gone; the step goes on)");
        moved = true;
    }
}


/// Whether the supervisor named in the spool still runs (a zombie does not: it was killed, or
/// it ended and the pod's init has not reaped it yet).
bool supervisor_alive(const std::string& dir) {
    auto text = read_small(path_in(dir, "supervisor"));
    if (!text)
        return true; // an older layout or a race with start(): keep waiting for the status
    const std::optional<long> pid = parse_pid(*text);
    if (!pid)
        return true;
    auto stat_text = read_small("/proc/" + std::to_string(*pid) + "/stat");
    if (!stat_text)
        return false;
    const auto paren = stat_text->rfind(')');
    if (paren == std::string::npos || paren + 2 >= stat_text->size())
        return true;
    const char state = (*stat_text)[paren + 2];
    return state != 'Z' && state != 'X';
}

result<void, std::string> open_at(followed& f, const std::string& path, std::uint64_t from) {
    f.in = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (f.in < 0)
        return fail(errno_text(path, errno));
    struct stat st {};
    if (::fstat(f.in, &st) != 0)
        return fail(errno_text(path, errno));
    if (static_cast<std::uint64_t>(st.st_size) < from)
        return fail(path + " holds " + std::to_string(st.st_size) + " bytes, fewer than the " +
                    std::to_string(from) + " already printed: not the spool of this step");
    if (::lseek(f.in, static_cast<off_t>(from), SEEK_SET) < 0)
        return fail(errno_text(path, errno));
    return {};
}

} // namespace

result<void, std::string> start(const std::string& dir, const std::vector<std::string>& argv,
                                const std::string& cwd) {
    if (argv.empty())
        return fail(std::string("no command to run"));
    // Its parents as `mkdir -p` makes them (a spool under /tmp/podpipe-steps, say).
    for (std::size_t slash = dir.find('/', 1); slash != std::string::npos;
         slash = dir.find('/', slash + 1)) {
        const std::string parent = dir.substr(0, slash);
        if (::mkdir(parent.c_str(), 0700) != 0 && errno != EEXIST)
            return fail(std::string(not_started) + errno_text("creating " + parent, errno));
    }
    if (::mkdir(dir.c_str(), 0700) != 0) {
        if (errno == EEXIST)
            return fail(dir + " exists already: a step was started there (follow it with "
                              "--attach)");
        return fail(std::string(not_started) + errno_text("creating " + dir, errno));
    }
    const std::string out_path = path_in(dir, "stdout"), err_path = path_in(dir, "stderr");
    const std::string pgid_tmp = path_in(dir, ".pgid"), pgid_path = path_in(dir, "pgid");
    const std::string status_tmp = path_in(dir, ".status"), status_path = path_in(dir, "status");
    const std::string sup_tmp = path_in(dir, ".supervisor");
    const std::string sup_path = path_in(dir, "supervisor");
    const int flags = O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC;
    const int out = ::open(out_path.c_str(), flags, 0600);
    const int err = out < 0 ? -1 : ::open(err_path.c_str(), flags, 0600);
    const int null = err < 0 ? -1 : ::open("/dev/null", O_RDWR | O_CLOEXEC);
    int hs[2] = {-1, -1};
    if (out < 0 || err < 0 || null < 0 || ::pipe2(hs, O_CLOEXEC) != 0) {
        const int e = errno;
        for (int fd : {out, err, null})
            if (fd >= 0)
                ::close(fd);
        return fail(std::string(not_started) + errno_text("preparing the spool " + dir, e));
    }
    // Everything the children need, built before fork.
    std::vector<std::string> args = argv;
    std::vector<char*> argp;
    for (auto& a : args)
        argp.push_back(a.data());
    argp.push_back(nullptr);

    const pid_t first = ::fork();
    if (first < 0) {
        const int e = errno;
        for (int fd : {out, err, null, hs[0], hs[1]})
            ::close(fd);
        return fail(std::string(not_started) + errno_text("fork", e));
    }
    if (first == 0) {
        // A session of its own, and a supervisor that is not our child: it outlives the exec
        // session and this process, and is reaped by the pod's init.
        ::setsid();
        const pid_t supervisor = ::fork();
        if (supervisor != 0)
            ::_exit(supervisor < 0 ? 1 : 0);
        {
            char text[24];
            std::size_t n = format_decimal(::getpid(), text);
            text[n++] = '\n';
            write_atomically(sup_tmp.c_str(), sup_path.c_str(), text, n);
        }
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        for (int sig : {SIGPIPE, SIGHUP, SIGINT, SIGTERM})
            ::signal(sig, sig == SIGPIPE || sig == SIGHUP ? SIG_IGN : SIG_DFL);
        const pid_t child = ::fork();
        if (child == 0) {
            ::setpgid(0, 0); // its own group: --signal reaches it and whatever it starts
            ::signal(SIGPIPE, SIG_DFL);
            ::signal(SIGHUP, SIG_DFL);
            if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
                const int e = errno;
                (void)!::write(hs[1], &e, sizeof e);
                ::_exit(127);
            }
            ::dup2(null, 0);
            ::dup2(out, 1);
            ::dup2(err, 2);
            close_from(3, hs[1]); // nothing the caller held open (an exec's pipes) stays open
            ::execvp(argp[0], argp.data());
            const int e = errno;
            (void)!::write(hs[1], &e, sizeof e);
            ::_exit(127);
        }
        if (child < 0) {
            const int e = errno;
            (void)!::write(hs[1], &e, sizeof e);
            write_atomically(status_tmp.c_str(), status_path.c_str(), "exit 127\n", 9);
            ::_exit(1);
        }
        ::setpgid(child, child);
        char text[24];
        std::size_t n = format_decimal(child, text);
        text[n++] = '\n';
        write_atomically(pgid_tmp.c_str(), pgid_path.c_str(), text, n);
        // Nothing of the caller's session stays open here: its stdio would hold the exec open.
        ::close(hs[1]);
        ::dup2(null, 0);
        ::dup2(null, 1);
        ::dup2(null, 2);
        close_from(3, -1);
        int st = 0;
        while (::waitpid(child, &st, 0) < 0 && errno == EINTR) {
        }
        char line[32];
        std::size_t len = 0;
        const char* word = WIFSIGNALED(st) ? "signal " : "exit ";
        for (const char* p = word; *p != '\0'; ++p)
            line[len++] = *p;
        len += format_decimal(WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st), line + len);
        line[len++] = '\n';
        write_atomically(status_tmp.c_str(), status_path.c_str(), line, len);
        ::_exit(0);
    }
    ::close(hs[1]);
    for (int fd : {out, err, null})
        ::close(fd);
    int st = 0;
    while (::waitpid(first, &st, 0) < 0 && errno == EINTR) {
    }
    // EOF once the step has exec'd and the supervisor has written the pgid; an errno when the
    // step could not be started.
    int e = 0;
    ssize_t n;
    do
        n = ::read(hs[0], &e, sizeof e);
    while (n < 0 && errno == EINTR);
    ::close(hs[0]);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return fail(std::string("could not start the step's supervisor"));
    if (n == static_cast<ssize_t>(sizeof e)) {
        // The supervisor records "exit 127" as it reaps the step: let the spool say so before
        // this returns, so that a status asked next is the final one.
        for (int i = 0; i < 200; ++i) {
            struct stat sst {};
            if (::stat(status_path.c_str(), &sst) == 0)
                break;
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        return fail("cannot run " + argv[0] + ": " + std::strerror(e));
    }
    return {};
}

result<std::optional<step_status>, std::string> status(const std::string& dir) {
    const std::string path = path_in(dir, "status");
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0)
        return fail(errno_text(dir, errno));
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return std::optional<step_status>();
        return fail(errno_text(path, errno));
    }
    auto text = read_small(path);
    if (!text)
        return fail(text.error());
    auto parsed = parse_status(*text, path);
    if (!parsed)
        return fail(parsed.error() + full_disk_note(dir));
    return std::optional<step_status>(*parsed);
}

result<step_status, std::string> follow(const std::string& dir, const follow_options& opts) {
    followed out, err;
    out.out = 1;
    out.name = "stdout";
    err.out = 2;
    err.name = "stderr";
    PODPIPE_TRY(open_at(out, path_in(dir, "stdout"), opts.stdout_from));
    PODPIPE_TRY(open_at(err, path_in(dir, "stderr"), opts.stderr_from));
    auto idle = std::chrono::milliseconds(5);
    for (;;) {
        // The status first: output written before it is then certain to be read below.
        auto ended = status(dir);
        if (!ended)
            return fail(ended.error());
        auto a = copy_available(out);
        if (!a)
            return fail(a.error());
        auto b = copy_available(err);
        if (!b)
            return fail(b.error());
        if (*a || *b) {
            idle = std::chrono::milliseconds(5);
            continue;
        }
        if (*ended)
            return **ended;
        if (!supervisor_alive(dir)) {
            auto last = status(dir); // it may have ended just now
            if (last && *last)
                continue;
            const std::string full = full_disk_note(dir);
            return fail(std::string("the step's supervisor is gone without recording how the "
                                    "step ended") +
                        (full.empty() ? " (killed?)" : full));
        }
        std::this_thread::sleep_for(idle);
        idle = std::min(idle * 2, opts.max_idle_poll);
    }
}

result<void, std::string> signal(const std::string& dir, int sig) {
    auto ended = status(dir);
    if (!ended)
        return fail(ended.error());
    if (*ended)
        return {};
    auto text = read_small(path_in(dir, "pgid"));
    if (!text)
        return fail(text.error());
    const std::optional<long> pgid = parse_pid(*text);
    if (!pgid)
        return fail(path_in(dir, "pgid") + ": not a process group");
    if (::kill(static_cast<pid_t>(-*pgid), sig) != 0 && errno != ESRCH)
        return fail(errno_text("signalling the step", errno));
    return {};
}

result<void, std::string> remove(const std::string& dir) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return {}; // removed already (a second ask after a cut)
        return fail(errno_text(dir, errno));
    }
    if (!S_ISDIR(st.st_mode))
        return fail(dir + ": not a spool directory");
    auto ended = status(dir);
    if (!ended)
        return fail(ended.error());
    if (!*ended && supervisor_alive(dir))
        return fail("the step of " + dir + " still runs: its spool stays");
    // The names start() writes, its temporaries included; anything else makes rmdir fail, so
    // that a directory that was never a spool is not emptied.
    for (const char* name : {"stdout", "stderr", "pgid", "supervisor", "status", ".pgid",
                             ".status", ".supervisor"})
        if (::unlink(path_in(dir, name).c_str()) != 0 && errno != ENOENT)
            return fail(errno_text(path_in(dir, name), errno));
    if (::rmdir(dir.c_str()) != 0 && errno != ENOENT)
        return fail(errno_text(dir, errno));
    return {};
}

std::size_t remove_ended_siblings(const std::string& dir) {
    const std::filesystem::path self(dir);
    const std::filesystem::path parent = self.parent_path();
    std::error_code ec;
    std::filesystem::directory_iterator it(parent.empty() ? "." : parent, ec);
    std::size_t removed = 0;
    for (; !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        if (it->path().filename() == self.filename() || !it->is_directory(ec) ||
            it->is_symlink(ec))
            continue;
        const std::string sibling = it->path().string();
        auto st = status(sibling);
        if (st && *st && remove(sibling))
            ++removed;
    }
    return removed;
}

} // namespace podpipe::remote::step
