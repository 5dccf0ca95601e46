#include "tools/kubesim/sandbox.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/mount.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tools/kubesim/util.hpp"

extern char** environ;

namespace podpipe::kubesim {
namespace {

json::array to_array(const std::vector<std::string>& v) {
    json::array a;
    for (const auto& s : v)
        a.emplace_back(s);
    return a;
}

std::vector<std::string> from_array(const json::object& o, std::string_view key) {
    std::vector<std::string> out;
    if (auto* a = arr_at(o, key))
        for (const auto& v : *a)
            if (v.is_string())
                out.emplace_back(v.get_string());
    return out;
}

std::string encode(const sandbox_spec& s) {
    json::object o;
    o["enter"] = s.enter;
    o["enter_pid"] = s.enter_pid;
    o["root"] = s.root;
    o["image_dir"] = s.image_dir;
    o["image_skip"] = to_array(s.image_skip);
    json::array mounts;
    for (const auto& m : s.mounts)
        mounts.push_back(json::object{{"source", m.source},
                                      {"target", m.target},
                                      {"read_only", m.read_only},
                                      {"optional", m.optional}});
    o["mounts"] = mounts;
    o["argv"] = to_array(s.argv);
    o["env"] = to_array(s.env);
    o["working_dir"] = s.working_dir;
    if (s.uid)
        o["uid"] = *s.uid;
    if (s.gid)
        o["gid"] = *s.gid;
    json::array groups;
    for (unsigned g : s.supplementary_groups)
        groups.emplace_back(g);
    o["groups"] = groups;
    o["cgroup_procs"] = to_array(s.cgroup_procs);
    o["layer_dir"] = s.layer_dir;
    o["read_only_root"] = s.read_only_root;
    return json::serialize(o);
}

[[noreturn]] void die(const char* what, const std::string& arg, int code = 127) {
    std::fprintf(stderr, "kubesim-sandbox: %s %s: %s\n", what, arg.c_str(), std::strerror(errno));
    std::exit(code);
}

bool mkdir_p(const std::string& path, mode_t mode = 0755) {
    std::string cur;
    std::size_t pos = 0;
    while (pos != std::string::npos) {
        pos = path.find('/', pos + 1);
        cur = path.substr(0, pos);
        if (cur.empty())
            continue;
        if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST)
            return false;
    }
    return true;
}

void make_readonly(const std::string& path) {
    struct mount_attr attr{};
    attr.attr_set = MOUNT_ATTR_RDONLY;
    if (syscall(SYS_mount_setattr, AT_FDCWD, path.c_str(), AT_RECURSIVE, &attr, sizeof attr) != 0) {
        // Older kernels: remount only the top mount read-only.
        ::mount(nullptr, path.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY, nullptr);
    }
}

void bind_mount(const std::string& src, const std::string& dst, bool ro) {
    if (::mount(src.c_str(), dst.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
        die("bind mount", src + " -> " + dst);
    if (ro)
        make_readonly(dst);
}

// One image directory as the container sees it: an overlay whose upper layer is in the
// container's writable layer (`layer`), so the container can change its image's files as on a
// real runtime; false when overlayfs refuses (the caller falls back to a read-only bind).
bool overlay_mount(const std::string& src, const std::string& dst, const std::string& layer,
                   const std::string& name) {
    const std::string upper = layer + "/upper/" + name, work = layer + "/work/" + name;
    if (!mkdir_p(upper) || !mkdir_p(work))
        return false;
    // The upper directory carries the image directory's owner and mode, as the merged top does.
    struct stat st{};
    if (::stat(src.c_str(), &st) == 0) {
        ::chmod(upper.c_str(), st.st_mode & 07777);
        const int ignored = ::lchown(upper.c_str(), st.st_uid, st.st_gid);
        (void)ignored;
    }
    const std::string options = "lowerdir=" + src + ",upperdir=" + upper + ",workdir=" + work;
    return ::mount("overlay", dst.c_str(), "overlay", 0, options.c_str()) == 0;
}

void setup_root(const sandbox_spec& s) {
    if (::unshare(CLONE_NEWNS) != 0)
        die("unshare", "CLONE_NEWNS");
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
        die("make-rprivate", "/");
    if (::mount("tmpfs", s.root.c_str(), "tmpfs", 0, "mode=755") != 0)
        die("mount tmpfs", s.root);
    const bool writable = !s.read_only_root && !s.layer_dir.empty() &&
                          ::mount("tmpfs", s.layer_dir.c_str(), "tmpfs", 0, "mode=700") == 0;
    DIR* d = ::opendir(s.image_dir.c_str());
    if (!d)
        die("opendir", s.image_dir);
    while (dirent* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name == "." || name == "..")
            continue;
        bool skipped = false;
        for (const auto& k : s.image_skip)
            if (k == name)
                skipped = true;
        if (skipped)
            continue;
        std::string src = (s.image_dir == "/" ? "" : s.image_dir) + "/" + name;
        std::string dst = s.root + "/" + name;
        struct stat st{};
        if (::lstat(src.c_str(), &st) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            char buf[4096];
            ssize_t n = ::readlink(src.c_str(), buf, sizeof buf - 1);
            if (n > 0) {
                buf[n] = 0;
                if (::symlink(buf, dst.c_str()) != 0)
                    die("symlink", dst);
            }
        } else if (S_ISDIR(st.st_mode)) {
            if (::mkdir(dst.c_str(), st.st_mode & 07777) != 0)
                die("mkdir", dst);
            if (!writable || !overlay_mount(src, dst, s.layer_dir, name))
                bind_mount(src, dst, true);
        } else if (S_ISREG(st.st_mode)) {
            int fd = ::open(dst.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (fd < 0)
                die("create", dst);
            ::close(fd);
            bind_mount(src, dst, true);
        }
    }
    ::closedir(d);
    std::string proc = s.root + "/proc", dev = s.root + "/dev", sys = s.root + "/sys",
                tmp = s.root + "/tmp";
    ::mkdir(proc.c_str(), 0555);
    ::mkdir(dev.c_str(), 0755);
    ::mkdir(sys.c_str(), 0555);
    ::mkdir(tmp.c_str(), 01777);
    ::chmod(tmp.c_str(), 01777);
    if (::mount("proc", proc.c_str(), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
        bind_mount("/proc", proc, false);
    bind_mount("/dev", dev, false);
    if (::mount("/sys", sys.c_str(), nullptr, MS_BIND | MS_REC, nullptr) == 0)
        make_readonly(sys);
    for (const auto& m : s.mounts) {
        std::string dst = s.root + m.target;
        struct stat st{};
        bool src_is_dir = ::stat(m.source.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
        bool ok;
        if (src_is_dir) {
            ok = mkdir_p(dst);
        } else {
            ok = mkdir_p(dst.substr(0, dst.rfind('/')));
            if (ok) {
                int fd = ::open(dst.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
                ok = fd >= 0 || errno == EISDIR;
                if (fd >= 0)
                    ::close(fd);
            }
        }
        if (!ok) {
            if (m.optional)
                continue;
            die("create mount point", m.target);
        }
        bind_mount(m.source, dst, m.read_only);
    }
    if (s.read_only_root) // the top level too; volumes, /dev, /proc keep their own modes
        ::mount(nullptr, s.root.c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr);
    if (::chroot(s.root.c_str()) != 0)
        die("chroot", s.root);
}

void enter_root(const sandbox_spec& s, bool report_exec_error) {
    std::string ns = "/proc/" + std::to_string(s.enter_pid) + "/ns/mnt";
    int fd = ::open(ns.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && report_exec_error) {
        // The container's process is gone (killed, exited) and kubesim has not seen it yet:
        // containerd's CRI refuses an exec into a container that is not running, before any
        // process starts (execInternal: "container is in CONTAINER_EXITED state"); the kubelet
        // reports it as the exec's failure, not as an exit code.
        const std::string text = std::string(runtime_refusal_mark) +
                                 "container is in CONTAINER_EXITED state";
        const ssize_t n = ::write(4, text.data(), text.size());
        (void)n;
        std::exit(127);
    }
    if (fd < 0)
        die("open", ns);
    if (::setns(fd, CLONE_NEWNS) != 0)
        die("setns", ns);
    ::close(fd);
    if (::chroot(s.root.c_str()) != 0)
        die("chroot", s.root);
}

} // namespace

std::string exec_error_text(const std::string& command, int err) {
    // runc: a name without '/' is looked up in $PATH; a path is stat'ed first.
    std::string why;
    if (command.find('/') == std::string::npos && err == ENOENT)
        why = "executable file not found in $PATH";
    else if (err == ENOENT)
        why = "stat " + command + ": no such file or directory";
    else if (err == EACCES)
        why = "permission denied";
    else
        why = std::strerror(err);
    return "exec: \"" + command + "\": " + why + ": unknown";
}

result<pid_t> spawn_sandbox(const sandbox_spec& spec, spawn_stdio stdio) {
    std::string payload = encode(spec);
    if (stdio.ready >= 0) {
        // The helper finds the ready pipe at fd 3 (see sandbox_main).
        payload.pop_back(); // '}'
        payload += ",\"ready_fd\":3}";
    }
    if (stdio.exec_error >= 0) {
        payload.pop_back();
        payload += ",\"exec_error_fd\":4}";
    }
    std::string arg0 = "kubesim", arg1 = "__sandbox";
    char* argv[] = {arg0.data(), arg1.data(), payload.data(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    int fds[3] = {stdio.in, stdio.out, stdio.err};
    for (int i = 0; i < 3; ++i) {
        if (fds[i] >= 0)
            posix_spawn_file_actions_adddup2(&fa, fds[i], i);
        else
            posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
    }
    if (stdio.ready >= 0)
        posix_spawn_file_actions_adddup2(&fa, stdio.ready, 3);
    if (stdio.exec_error >= 0)
        posix_spawn_file_actions_adddup2(&fa, stdio.exec_error, 4);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    pid_t pid = -1;
    int rc = posix_spawn(&pid, "/proc/self/exe", &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        return fail(std::error_code(rc, std::system_category()));
    return pid;
}

namespace {

// Only stdin/stdout/stderr reach the command, as with a container runtime: kubesim's sockets
// (other clients' connections, its listener) are not opened close-on-exec, and a command that
// held one would keep that connection open after kubesim closed it (a dropped exec would never
// reach its client while the command runs).
void close_inherited_fds() {
#ifdef SYS_close_range
    if (::syscall(SYS_close_range, 3U, ~0U, 4U /* CLOSE_RANGE_CLOEXEC */) == 0)
        return;
#endif
    if (DIR* d = ::opendir("/proc/self/fd")) {
        const int own = ::dirfd(d);
        while (dirent* e = ::readdir(d)) {
            const int fd = std::atoi(e->d_name);
            if (fd > 2 && fd != own)
                ::fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        ::closedir(d);
    }
}

} // namespace

int sandbox_main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "kubesim-sandbox: missing spec\n");
        return 127;
    }
    boost::system::error_code ec;
    json::value v = json::parse(argv[2], ec);
    if (ec || !v.is_object()) {
        std::fprintf(stderr, "kubesim-sandbox: bad spec\n");
        return 127;
    }
    const auto& o = v.get_object();
    if (int_at(o, "ready_fd", -1) == 3)
        ::fcntl(3, F_SETFD, FD_CLOEXEC); // closed by the exec below: the parent sees EOF then
    const bool report_exec_error = int_at(o, "exec_error_fd", -1) == 4;
    if (report_exec_error)
        ::fcntl(4, F_SETFD, FD_CLOEXEC); // a successful exec closes it without a word
    sandbox_spec s;
    s.enter = o.at("enter").as_bool();
    s.enter_pid = static_cast<int>(int_at(o, "enter_pid", 0));
    s.root = str_at(o, "root");
    s.image_dir = str_at(o, "image_dir");
    s.image_skip = from_array(o, "image_skip");
    if (auto* ms = arr_at(o, "mounts"))
        for (const auto& m : *ms)
            s.mounts.push_back({str_at(m.as_object(), "source"), str_at(m.as_object(), "target"),
                                m.as_object().at("read_only").as_bool(),
                                m.as_object().at("optional").as_bool()});
    s.argv = from_array(o, "argv");
    s.env = from_array(o, "env");
    s.working_dir = str_at(o, "working_dir");
    if (o.contains("uid"))
        s.uid = static_cast<unsigned>(int_at(o, "uid", 0));
    if (o.contains("gid"))
        s.gid = static_cast<unsigned>(int_at(o, "gid", 0));
    if (auto* g = arr_at(o, "groups"))
        for (const auto& x : *g)
            s.supplementary_groups.push_back(static_cast<unsigned>(x.to_number<std::int64_t>()));
    s.cgroup_procs = from_array(o, "cgroup_procs");
    s.layer_dir = str_at(o, "layer_dir");
    s.read_only_root = o.contains("read_only_root") && o.at("read_only_root").as_bool();
    if (s.argv.empty()) {
        std::fprintf(stderr, "kubesim-sandbox: empty command\n");
        return 127;
    }
    // Into the container's cgroups first: everything the helper and the command do is charged
    // to the container's limits, as under a runtime (and the files are still reachable).
    for (const std::string& procs : s.cgroup_procs) {
        const int fd = ::open(procs.c_str(), O_WRONLY | O_CLOEXEC);
        if (fd < 0 || ::write(fd, "0", 1) != 1)
            die("joining cgroup", procs);
        ::close(fd);
    }

    if (s.enter)
        enter_root(s, report_exec_error);
    else
        setup_root(s);
    std::string wd = s.working_dir.empty() ? "/" : s.working_dir;
    if (!mkdir_p(wd) || ::chdir(wd.c_str()) != 0)
        die("chdir", wd);
    if (s.gid || s.uid || !s.supplementary_groups.empty()) {
        std::vector<gid_t> groups(s.supplementary_groups.begin(), s.supplementary_groups.end());
        if (::setgroups(groups.size(), groups.data()) != 0)
            die("setgroups", "");
        if (s.gid && ::setgid(*s.gid) != 0)
            die("setgid", std::to_string(*s.gid));
        if (s.uid && ::setuid(*s.uid) != 0)
            die("setuid", std::to_string(*s.uid));
    }
    ::clearenv();
    bool has_path = false;
    for (auto& e : s.env) {
        if (e.rfind("PATH=", 0) == 0)
            has_path = true;
        ::putenv(e.data());
    }
    if (!has_path)
        ::setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
    std::vector<char*> args;
    for (auto& a : s.argv)
        args.push_back(a.data());
    args.push_back(nullptr);
    close_inherited_fds();
    ::execvp(args[0], args.data());
    const int exec_errno = errno;
    if (report_exec_error) {
        const std::string text = exec_error_text(s.argv[0], exec_errno);
        const ssize_t n = ::write(4, text.data(), text.size());
        (void)n;
    }
    errno = exec_errno;
    int code = errno == ENOENT ? 127 : 126;
    if (!report_exec_error) // an exec's caller reports it as the runtime does, not on stderr
        std::fprintf(stderr, "kubesim-sandbox: exec %s: %s\n", s.argv[0].c_str(),
                     std::strerror(errno));
    return code;
}

} // namespace podpipe::kubesim
