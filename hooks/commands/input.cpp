#include "hooks/commands/input.hpp"

#include <simdjson.h>

namespace podpipe::hook {

namespace {

namespace dom = simdjson::dom;

constexpr std::size_t max_json_depth = 64; // real input nests 5 levels

// Collects the first schema error; helpers become no-ops once it is set.
struct ctx {
    std::string error;

    bool ok() const { return error.empty(); }

    void wrong(const std::string& where, const char* want) {
        if (error.empty())
            error = where + ": expected " + want;
    }
};

std::string join(const std::string& where, std::string_view key) {
    return where.empty() ? std::string(key) : where + "." + std::string(key);
}

// The member `key` of `o`, nullopt if absent or null.
std::optional<dom::element> member(const dom::object& o, std::string_view key) {
    dom::element e;
    if (o.at_key(key).get(e) != simdjson::SUCCESS || e.is_null())
        return std::nullopt;
    return e;
}

void get_str(ctx& c, const dom::object& o, const std::string& where, std::string_view key,
             std::string& out) {
    auto e = member(o, key);
    if (!e)
        return;
    std::string_view sv;
    if (e->get_string().get(sv) != simdjson::SUCCESS)
        return c.wrong(join(where, key), "a string");
    out.assign(sv);
}

void get_opt_str(ctx& c, const dom::object& o, const std::string& where, std::string_view key,
                 std::optional<std::string>& out) {
    if (!member(o, key))
        return;
    std::string v;
    get_str(c, o, where, key, v);
    if (c.ok())
        out = std::move(v);
}

void get_bool(ctx& c, const dom::object& o, const std::string& where, std::string_view key,
              bool& out) {
    auto e = member(o, key);
    if (!e)
        return;
    if (e->get_bool().get(out) != simdjson::SUCCESS)
        c.wrong(join(where, key), "a boolean");
}

std::optional<dom::object> get_obj(ctx& c, const dom::object& o, const std::string& where,
                                   std::string_view key) {
    auto e = member(o, key);
    if (!e)
        return std::nullopt;
    dom::object obj;
    if (e->get_object().get(obj) != simdjson::SUCCESS) {
        c.wrong(join(where, key), "an object");
        return std::nullopt;
    }
    return obj;
}

void get_strings(ctx& c, const dom::object& o, const std::string& where, std::string_view key,
                 std::vector<std::string>& out) {
    auto e = member(o, key);
    if (!e)
        return;
    dom::array arr;
    if (e->get_array().get(arr) != simdjson::SUCCESS)
        return c.wrong(join(where, key), "an array of strings");
    std::size_t i = 0;
    for (dom::element item : arr) {
        std::string_view sv;
        if (item.get_string().get(sv) != simdjson::SUCCESS)
            return c.wrong(join(where, key) + "[" + std::to_string(i) + "]", "a string");
        out.emplace_back(sv);
        ++i;
    }
}

// environmentVariables: {string: string}; null values become "" (the runner's dictionaries
// may hold nulls), anything else is an error.
void get_env(ctx& c, const dom::object& o, const std::string& where, env_list& out) {
    auto obj = get_obj(c, o, where, "environmentVariables");
    if (!obj)
        return;
    for (auto field : *obj) {
        std::string_view v;
        if (field.value.is_null()) {
            out.emplace_back(std::string(field.key), std::string());
            continue;
        }
        if (field.value.get_string().get(v) != simdjson::SUCCESS)
            return c.wrong(join(where, "environmentVariables") + "." +
                               kube::sanitize_for_message(field.key, 64),
                           "a string");
        out.emplace_back(std::string(field.key), std::string(v));
    }
}

// prependPath: an array of strings, or one string (runners <= 2.293.0).
void get_prepend_path(ctx& c, const dom::object& o, const std::string& where,
                      std::vector<std::string>& out) {
    auto e = member(o, "prependPath");
    if (!e)
        return;
    std::string_view sv;
    if (e->get_string().get(sv) == simdjson::SUCCESS) {
        if (!sv.empty())
            out.emplace_back(sv);
        return;
    }
    get_strings(c, o, where, "prependPath", out);
}

void get_mounts(ctx& c, const dom::object& o, const std::string& where, std::string_view key,
                std::vector<mount>& out) {
    auto e = member(o, key);
    if (!e)
        return;
    dom::array arr;
    if (e->get_array().get(arr) != simdjson::SUCCESS)
        return c.wrong(join(where, key), "an array of mounts");
    std::size_t i = 0;
    for (dom::element item : arr) {
        const std::string w = join(where, key) + "[" + std::to_string(i++) + "]";
        dom::object m;
        if (item.get_object().get(m) != simdjson::SUCCESS)
            return c.wrong(w, "an object");
        mount mt;
        get_str(c, m, w, "sourceVolumePath", mt.source_volume_path);
        get_str(c, m, w, "targetVolumePath", mt.target_volume_path);
        get_bool(c, m, w, "readOnly", mt.read_only);
        if (!c.ok())
            return;
        out.push_back(std::move(mt));
    }
}

void read_container(ctx& c, const dom::object& o, const std::string& w, container_request& r) {
    get_str(c, o, w, "image", r.image);
    get_opt_str(c, o, w, "dockerfile", r.dockerfile);
    get_str(c, o, w, "entryPoint", r.entry_point);
    get_strings(c, o, w, "entryPointArgs", r.entry_point_args);
    get_str(c, o, w, "workingDirectory", r.working_directory);
    get_opt_str(c, o, w, "createOptions", r.create_options);
    if (auto reg = get_obj(c, o, w, "registry")) {
        const std::string rw = join(w, "registry");
        kube::registry_credentials cred;
        get_str(c, *reg, rw, "username", cred.username);
        get_str(c, *reg, rw, "password", cred.password);
        get_str(c, *reg, rw, "serverUrl", cred.server_url);
        r.registry = std::move(cred);
    }
    get_env(c, o, w, r.environment_variables);
    get_strings(c, o, w, "portMappings", r.port_mappings);
    get_mounts(c, o, w, "systemMountVolumes", r.system_mount_volumes);
    get_mounts(c, o, w, "userMountVolumes", r.user_mount_volumes);
    get_prepend_path(c, o, w, r.prepend_path);
}

void read_state(ctx& c, const dom::object& o, job_state& s) {
    get_str(c, o, "state", "jobPod", s.job_pod);
    if (auto pp = get_obj(c, o, "state", "podpipe")) {
        get_str(c, *pp, "state.podpipe", "namespace", s.namespace_name);
        get_bool(c, *pp, "state.podpipe", "permissionsChecked", s.permissions_checked);
        get_str(c, *pp, "state.podpipe", "pullSecret", s.pull_secret);
        get_bool(c, *pp, "state.podpipe", "stepRun", s.step_run);
    }
}

hook_error bad_input(std::string what) {
    return make_error(errc::bad_input, "invalid hook input on stdin: " + std::move(what));
}

result<hook_input, hook_error> parse_document(std::string_view text) {
    dom::parser parser(max_input_bytes);
    if (parser.allocate(std::max<std::size_t>(text.size(), 64), max_json_depth) !=
        simdjson::SUCCESS)
        return fail(bad_input("cannot allocate the JSON parser"));
    dom::element root;
    // parse(const char*, len) copies into a padded buffer of its own.
    if (auto err = parser.parse(text.data(), text.size()).get(root); err != simdjson::SUCCESS)
        return fail(bad_input(std::string("not JSON (") + simdjson::error_message(err) + ")"));
    dom::object o;
    if (root.get_object().get(o) != simdjson::SUCCESS)
        return fail(bad_input("expected a JSON object"));

    ctx c;
    hook_input in;
    std::string cmd;
    get_str(c, o, "", "command", cmd);
    if (c.ok() && !member(o, "command"))
        c.wrong("command", "a string");
    if (!c.ok())
        return fail(bad_input(c.error));
    auto parsed = command_from_string(cmd);
    if (!parsed)
        return fail(make_error(errc::unknown_command,
                               "Command not recognized: " + kube::sanitize_for_message(cmd, 128)));
    in.cmd = *parsed;
    get_str(c, o, "", "responseFile", in.response_file);
    if (auto st = get_obj(c, o, "", "state")) {
        job_state s;
        read_state(c, *st, s);
        in.state = std::move(s);
    }
    // args may be absent in old runners (cleanup_job); treat absent/null as {}.
    std::optional<dom::object> args = get_obj(c, o, "", "args");
    if (!c.ok())
        return fail(bad_input(c.error));
    dom::object empty_args;
    switch (in.cmd) {
    case command::prepare_job: {
        prepare_job_args a;
        if (args) {
            if (auto ct = get_obj(c, *args, "args", "container")) {
                container_request r;
                read_container(c, *ct, "args.container", r);
                a.container = std::move(r);
            }
            if (auto svc = member(*args, "services")) {
                dom::array arr;
                if (svc->get_array().get(arr) != simdjson::SUCCESS) {
                    c.wrong("args.services", "an array");
                } else {
                    std::size_t i = 0;
                    for (dom::element item : arr) {
                        const std::string w = "args.services[" + std::to_string(i++) + "]";
                        dom::object so;
                        if (item.get_object().get(so) != simdjson::SUCCESS) {
                            c.wrong(w, "an object");
                            break;
                        }
                        container_request r;
                        read_container(c, so, w, r);
                        if (!c.ok())
                            break;
                        a.services.push_back(std::move(r));
                    }
                }
            }
        }
        in.args = std::move(a);
        break;
    }
    case command::run_script_step: {
        run_script_step_args a;
        if (args) {
            get_str(c, *args, "args", "entryPoint", a.entry_point);
            get_strings(c, *args, "args", "entryPointArgs", a.entry_point_args);
            get_env(c, *args, "args", a.environment_variables);
            get_prepend_path(c, *args, "args", a.prepend_path);
            get_str(c, *args, "args", "workingDirectory", a.working_directory);
        }
        in.args = std::move(a);
        break;
    }
    case command::run_container_step: {
        container_request r;
        if (args)
            read_container(c, *args, "args", r);
        in.args = std::move(r);
        break;
    }
    case command::cleanup_job:
        in.args = cleanup_job_args{};
        break;
    }
    if (!c.ok())
        return fail(bad_input(c.error));
    return in;
}

} // namespace

std::optional<command> command_from_string(std::string_view s) {
    if (s == "prepare_job")
        return command::prepare_job;
    if (s == "cleanup_job")
        return command::cleanup_job;
    if (s == "run_script_step")
        return command::run_script_step;
    if (s == "run_container_step")
        return command::run_container_step;
    return std::nullopt;
}

std::string_view to_string(command c) {
    switch (c) {
    case command::prepare_job:
        return "prepare_job";
    case command::cleanup_job:
        return "cleanup_job";
    case command::run_script_step:
        return "run_script_step";
    case command::run_container_step:
        return "run_container_step";
    }
    return "unknown";
}

result<hook_input, hook_error> parse_input(std::string_view text) {
    if (text.size() > max_input_bytes)
        return fail(bad_input("larger than 16 MiB"));
    auto trim = [](std::string_view s) {
        while (!s.empty() &&
               (s.front() == ' ' || s.front() == '\t' || s.front() == '\r' || s.front() == '\n'))
            s.remove_prefix(1);
        while (!s.empty() &&
               (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
            s.remove_suffix(1);
        return s;
    };
    text = trim(text);
    if (text.empty())
        return fail(bad_input("empty (the runner writes one JSON object)"));
    auto whole = parse_document(text);
    if (whole || whole.error().code != make_error_code(errc::bad_input))
        return whole;
    // The reference reads only the last line of stdin.
    const auto nl = text.rfind('\n');
    if (nl == std::string_view::npos)
        return whole;
    auto last = parse_document(trim(text.substr(nl + 1)));
    return last ? std::move(last) : std::move(whole);
}

kube::container_source to_container_source(const container_request& req) {
    kube::container_source s;
    s.image = req.image;
    s.entry_point = req.entry_point;
    s.entry_point_args = req.entry_point_args;
    s.working_directory = req.working_directory;
    s.environment = req.environment_variables;
    s.port_mappings = req.port_mappings;
    return s;
}

} // namespace podpipe::hook
