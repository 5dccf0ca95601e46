#include "hooks/commands/scripts.hpp"

#include "engine/common/unique_fd.hpp"
#include "kube/pod_spec.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace podpipe::hook {
namespace {


} // namespace

result<std::string, hook_error> env_prefix(const env_list& env) {
    if (env.empty())
        return std::string();
    std::string out = "env ";
    for (const auto& [k, v] : env) {
        if (k.empty() || k.find_first_of("=$'\"") != std::string::npos ||
            k.find('\0') != std::string::npos || v.find('\0') != std::string::npos)
            return fail(make_error(errc::bad_input,
                                   "environment key " + k +
                                       " is invalid - the key must not contain =, $, ', or \""));
        out += kube::single_quote(k + "=" + v);
        out += ' ';
    }
    return out;
}

result<std::string, hook_error> run_script(const run_script_step_args& args,
                                           const std::string& extra_lines) {
    auto prefix = env_prefix(args.environment_variables);
    if (!prefix)
        return fail(prefix.error());
    std::string s = "#!/bin/sh -l\nset -e\nrm \"$0\" # it may hold secrets: gone before the step runs\n";
    s += extra_lines;
    if (!args.prepend_path.empty()) {
        std::string path;
        for (const auto& p : args.prepend_path)
            path += kube::shell_quote(p) + ":";
        s += "export PATH=" + path + "\"$PATH\"\n";
    }
    const std::string wd = args.working_directory.empty() ? "/__w" : args.working_directory;
    s += "cd " + kube::shell_quote(wd) + " && exec " + *prefix + args.entry_point;
    for (const auto& a : args.entry_point_args)
        s += " " + a;
    s += "\n";
    return s;
}

std::string script_file_name() {
    std::string name = "podpipe-";
    for (int i = 0; i < 4; ++i)
        name += kube::random_name_suffix();
    return name + ".sh";
}

result<void, hook_error> write_script(const std::string& path, const std::string& text) {
    unique_fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
    if (!fd)
        return fail(make_error(errc::step, "cannot write the step script " + path + ": " +
                                               std::strerror(errno)));
    std::size_t off = 0;
    while (off < text.size()) {
        const ssize_t n = ::write(fd.get(), text.data() + off, text.size() - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(make_error(errc::step, "cannot write the step script " + path + ": " +
                                                   std::strerror(errno)));
        off += static_cast<std::size_t>(n);
    }
    return {};
}

} // namespace podpipe::hook
