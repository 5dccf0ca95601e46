#include "hooks/commands/response.hpp"

#include "engine/common/unique_fd.hpp"
#include "engine/common/json_writer.hpp"
#include "kube/pod_spec.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace podpipe::hook {

namespace {

void write_state(json_writer& w, const job_state& s) {
    w.begin_object();
    w.field("jobPod", s.job_pod);
    w.key("podpipe");
    w.begin_object();
    if (!s.namespace_name.empty())
        w.field("namespace", s.namespace_name);
    w.field("permissionsChecked", s.permissions_checked);
    if (!s.pull_secret.empty())
        w.field("pullSecret", s.pull_secret);
    if (s.step_run)
        w.field("stepRun", true);
    w.end_object();
    w.end_object();
}

void write_container(json_writer& w, const response_container& c) {
    w.begin_object();
    w.field("image", c.image);
    w.key("ports");
    w.begin_object();
    for (const auto& [k, v] : c.ports)
        w.field(k, v);
    w.end_object();
    w.end_object();
}

hook_error sys_error(std::string_view what, std::string_view path, int e) {
    return make_error(errc::response_file,
                      std::string(what) + " " + std::string(path) + ": " + std::strerror(e));
}

} // namespace

std::map<std::string, std::string> response_ports(const std::vector<kube::container_port>& ports) {
    std::map<std::string, std::string> out;
    for (const auto& p : ports)
        if (p.host_port)
            out[std::to_string(p.container_port)] = std::to_string(*p.host_port);
    return out;
}

prepare_job_response make_prepare_response(const kube::pod& job_pod,
                                           const std::vector<std::string>& service_names,
                                           job_state state, bool is_alpine) {
    prepare_job_response r;
    r.state = std::move(state);
    r.is_alpine = is_alpine;
    auto find = [&](std::string_view name) -> const kube::container* {
        for (const auto& ct : job_pod.spec.containers)
            if (ct.name == name)
                return &ct;
        return nullptr;
    };
    if (const auto* job = find(kube::job_container_name))
        r.container = response_container{job->image, response_ports(job->ports)};
    for (const auto& name : service_names) {
        const auto* svc = find(name);
        r.services.push_back(svc ? response_container{svc->image, response_ports(svc->ports)}
                                 : response_container{});
    }
    return r;
}

std::string to_json(const job_state& s) {
    json_writer w;
    write_state(w, s);
    return w.take();
}

std::string state_response_json(const job_state& s) {
    json_writer w;
    w.begin_object();
    w.key("state");
    write_state(w, s);
    w.end_object();
    return w.take();
}

std::string to_json(const prepare_job_response& r) {
    json_writer w;
    w.begin_object();
    w.key("state");
    write_state(w, r.state);
    w.key("context");
    w.begin_object();
    if (r.container) {
        w.key("container");
        write_container(w, *r.container);
    }
    if (!r.services.empty()) {
        w.key("services");
        w.begin_array();
        for (const auto& s : r.services)
            write_container(w, s);
        w.end_array();
    }
    w.end_object();
    w.field("isAlpine", r.is_alpine);
    w.end_object();
    return w.take();
}

result<void, hook_error> write_response_file(std::string_view path, std::string_view json) {
    if (path.empty())
        return fail(make_error(errc::response_file, "Expected file path"));
    const std::string p(path);

    struct stat st {};

    if (::stat(p.c_str(), &st) != 0) {
        if (errno == ENOENT)
            return fail(make_error(errc::response_file, "Missing file at path: " + p));
        return fail(sys_error("cannot stat", p, errno));
    }
    if (!S_ISREG(st.st_mode))
        return fail(make_error(errc::response_file, "not a regular file: " + p));
    std::string tmp = p + ".podpipe-XXXXXX";
    unique_fd fd(::mkstemp(tmp.data()));
    if (!fd)
        return fail(sys_error("cannot create a temporary file beside", p, errno));
    auto cleanup_fail = [&](std::string_view what, int e) {
        ::unlink(tmp.c_str());
        return fail(sys_error(what, tmp, e));
    };
    std::string body(json);
    body.push_back('\n');
    std::size_t off = 0;
    while (off < body.size()) {
        const ssize_t n = ::write(fd.get(), body.data() + off, body.size() - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return cleanup_fail("cannot write", errno);
        }
        off += static_cast<std::size_t>(n);
    }
    if (::fchmod(fd.get(), st.st_mode & 07777) != 0)
        return cleanup_fail("cannot chmod", errno);
    if (::fsync(fd.get()) != 0)
        return cleanup_fail("cannot fsync", errno);
    fd.reset();
    if (::rename(tmp.c_str(), p.c_str()) != 0)
        return cleanup_fail("cannot rename over the response file", errno);
    return {};
}

} // namespace podpipe::hook
