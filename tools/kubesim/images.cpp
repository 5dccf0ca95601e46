#include "tools/kubesim/images.hpp"

#include <fnmatch.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tools/kubesim/util.hpp"

namespace podpipe::kubesim {
namespace fs = std::filesystem;

namespace {

const std::vector<std::string> default_sleep = {"sleep", "2147483647"};

std::vector<std::string> host_skip(const std::string& state_dir) {
    std::vector<std::string> skip = {"proc", "sys", "dev", "tmp", "lost+found"};
    // Never expose kubesim's own state directory's top-level parent if it is /tmp-like: it is
    // skipped above; other locations stay visible read-only, which is harmless.
    (void)state_dir;
    return skip;
}

result<void> build_busybox_root(const fs::path& root, const std::string& busybox) {
    std::error_code ec;
    fs::remove_all(root, ec);
    fs::create_directories(root / "bin", ec);
    fs::create_directories(root / "etc", ec);
    fs::create_directories(root / "usr", ec);
    if (ec)
        return fail(ec);
    fs::copy_file(busybox, root / "bin" / "busybox", ec);
    if (ec)
        return fail(ec);
    fs::permissions(root / "bin" / "busybox", fs::perms(0755), ec);
    // busybox --list names every applet; symlink each to /bin/busybox (absolute inside the root).
    std::string cmd = "'" + busybox + "' --list";
    FILE* p = popen(cmd.c_str(), "r");
    if (!p)
        return fail(std::error_code(errno, std::system_category()));
    char line[256];
    while (fgets(line, sizeof line, p)) {
        std::string name(line);
        while (!name.empty() && (name.back() == '\n' || name.back() == '\r'))
            name.pop_back();
        if (name.empty() || name == "busybox" || name.find('/') != std::string::npos)
            continue;
        fs::create_symlink("/bin/busybox", root / "bin" / name, ec);
        ec.clear();
    }
    pclose(p);
    fs::create_directory_symlink("bin", root / "sbin", ec);
    fs::create_directory_symlink("../bin", root / "usr" / "bin", ec);
    fs::create_directory_symlink("../bin", root / "usr" / "sbin", ec);
    std::ofstream(root / "etc" / "passwd")
        << "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n";
    std::ofstream(root / "etc" / "group") << "root:x:0:\nnobody:x:65534:\n";
    std::ofstream(root / "etc" / "hosts") << "127.0.0.1 localhost\n";
    fs::create_directories(root / "root", ec);
    fs::create_directories(root / "home", ec);
    fs::create_directories(root / "var", ec);
    return {};
}

} // namespace

result<void> image_map::init(const std::string& state_dir, const std::string& map_file,
                             const std::string& busybox_path, const std::string& externals_dir) {
    fs::path bb = fs::path(state_dir) / "images" / "busybox";
    if (auto r = build_busybox_root(bb, busybox_path); !r)
        return r;
    image_root busybox_root{bb.string(), {"proc", "sys", "dev", "tmp"}, default_sleep};
    // The actions-runner image: busybox tools, user runner (1001), /home/runner/externals.
    fs::path rr = fs::path(state_dir) / "images" / "runner";
    if (auto r = build_busybox_root(rr, busybox_path); !r)
        return r;
    {
        std::error_code ec;
        std::ofstream(rr / "etc" / "passwd", std::ios::app) << "runner:x:1001:1001:runner:/home/runner:/bin/sh\n";
        std::ofstream(rr / "etc" / "group", std::ios::app) << "runner:x:1001:\ndocker:x:123:runner\n";
        fs::create_directories(rr / "home" / "runner" / "externals", ec);
        fs::create_directories(rr / "home" / "runner" / "_work", ec);
        if (!externals_dir.empty()) {
            fs::copy(externals_dir, rr / "home" / "runner" / "externals",
                     fs::copy_options::recursive | fs::copy_options::overwrite_existing, ec);
            if (ec)
                return fail(ec);
        }
        for (const char* d : {"home/runner", "home/runner/externals", "home/runner/_work"}) {
            int rc = ::chown((rr / d).c_str(), 1001, 1001);
            (void)rc;
        }
        // What the runner image ships in externals belongs to runner:docker (1001:123) there.
        for (auto it = fs::recursive_directory_iterator(rr / "home" / "runner" / "externals", ec);
             !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
            int rc = ::lchown(it->path().c_str(), 1001, 123);
            (void)rc;
        }
    }
    image_root runner_root{rr.string(), {"proc", "sys", "dev", "tmp"}, default_sleep};
    // alpine: busybox tools plus the release files real alpine images carry (what the hook's
    // alpine detection and other tools read). The busybox image has none.
    fs::path ar = fs::path(state_dir) / "images" / "alpine";
    if (auto r = build_busybox_root(ar, busybox_path); !r)
        return r;
    std::ofstream(ar / "etc" / "os-release")
        << "NAME=\"Alpine Linux\"\nID=alpine\nVERSION_ID=3.19.1\n"
           "PRETTY_NAME=\"Alpine Linux v3.19\"\nHOME_URL=\"https://alpinelinux.org/\"\n";
    std::ofstream(ar / "etc" / "alpine-release") << "3.19.1\n";
    image_root alpine_root{ar.string(), {"proc", "sys", "dev", "tmp"}, default_sleep};
    image_root host_root{"/", host_skip(state_dir), default_sleep};

    if (!map_file.empty()) {
        std::ifstream in(map_file);
        if (!in)
            return fail(std::make_error_code(std::errc::no_such_file_or_directory));
        std::stringstream ss;
        ss << in.rdbuf();
        boost::system::error_code ec;
        json::value doc = json::parse(ss.str(), ec);
        if (ec || !doc.is_object() || !arr_at(doc.get_object(), "images"))
            return fail(std::make_error_code(std::errc::invalid_argument));
        for (const auto& e : *arr_at(doc.get_object(), "images")) {
            if (!e.is_object())
                return fail(std::make_error_code(std::errc::invalid_argument));
            const auto& o = e.get_object();
            rule r;
            r.match = str_at(o, "match");
            std::string root = str_at(o, "root", "host");
            if (root == "busybox")
                r.root = busybox_root;
            else if (root == "host")
                r.root = host_root;
            else
                r.root = image_root{root, {"proc", "sys", "dev", "tmp"}, default_sleep};
            std::string pull = str_at(o, "pull", "ok");
            if (pull != "ok" && pull != "fail")
                return fail(std::make_error_code(std::errc::invalid_argument));
            r.root.pull_fails = pull == "fail";
            if (const auto* a = o.if_contains("auth")) {
                if (!a->is_object())
                    return fail(std::make_error_code(std::errc::invalid_argument));
                r.root.auth_username = str_at(a->get_object(), "username");
                r.root.auth_password = str_at(a->get_object(), "password");
                if (!r.root.needs_auth())
                    return fail(std::make_error_code(std::errc::invalid_argument));
            }
            if (auto* c = arr_at(o, "command")) {
                r.root.default_command.clear();
                for (const auto& a : *c)
                    if (a.is_string())
                        r.root.default_command.emplace_back(a.get_string());
            }
            if (r.match.empty())
                return fail(std::make_error_code(std::errc::invalid_argument));
            rules_.push_back(std::move(r));
        }
    }
    rules_.push_back({"ghcr.io/actions/actions-runner:*", runner_root});
    image_root unpullable = busybox_root;
    unpullable.pull_fails = true;
    rules_.push_back({"*does-not-exist*", unpullable});
    rules_.push_back({"*invalid.registry*", unpullable});
    rules_.push_back({"*busybox*", busybox_root});
    rules_.push_back({"*alpine*", alpine_root});
    rules_.push_back({"*", host_root});
    return {};
}

std::string normalize_image(const std::string& image) {
    std::string ref = image;
    auto slash = ref.find('/');
    std::string first = slash == std::string::npos ? "" : ref.substr(0, slash);
    bool has_registry = !first.empty() && (first.find('.') != std::string::npos ||
                                           first.find(':') != std::string::npos || first == "localhost");
    if (!has_registry)
        ref = (slash == std::string::npos ? "docker.io/library/" : "docker.io/") + ref;
    auto last_slash = ref.rfind('/');
    if (ref.find('@') == std::string::npos && ref.find(':', last_slash) == std::string::npos)
        ref += ":latest";
    return ref;
}

std::string pull_error_message(const std::string& image, bool unauthorized) {
    std::string ref = normalize_image(image);
    std::string host = ref.substr(0, ref.find('/'));
    if (unauthorized)
        return "rpc error: code = Unknown desc = failed to pull and unpack image \"" + ref +
               "\": failed to resolve reference \"" + ref + "\": pull access denied, repository does not "
               "exist or may require authorization: authorization failed: 401 Unauthorized";
    if (host.find("invalid") != std::string::npos) {
        std::string path = ref.substr(host.size() + 1);
        std::string tag = "latest";
        if (auto c = path.rfind(':'); c != std::string::npos) {
            tag = path.substr(c + 1);
            path.resize(c);
        }
        return "rpc error: code = Unknown desc = failed to pull and unpack image \"" + ref +
               "\": failed to resolve reference \"" + ref + "\": failed to do request: Head \"https://" + host +
               "/v2/" + path + "/manifests/" + tag + "\": dial tcp: lookup " + host + ": no such host";
    }
    return "rpc error: code = NotFound desc = failed to pull and unpack image \"" + ref +
           "\": failed to resolve reference \"" + ref + "\": " + ref + ": not found";
}

bool docker_config_allows(const std::string& docker_config_json, const std::string& image,
                          const std::string& username, const std::string& password) {
    boost::system::error_code ec;
    json::value doc = json::parse(docker_config_json, ec);
    if (ec || !doc.is_object())
        return false;
    const auto* auths = doc.get_object().if_contains("auths");
    if (!auths || !auths->is_object())
        return false;
    const std::string ref = normalize_image(image);
    const std::string host = ref.substr(0, ref.find('/'));
    auto host_of = [](std::string key) {
        for (std::string_view scheme : {"https://", "http://"})
            if (key.rfind(scheme, 0) == 0)
                key.erase(0, scheme.size());
        return key.substr(0, key.find('/'));
    };
    for (const auto& [key, entry] : auths->get_object()) {
        std::string h = host_of(std::string(key));
        if (h == "index.docker.io" || h == "registry-1.docker.io")
            h = "docker.io";
        if (h != host || !entry.is_object())
            continue;
        const auto& e = entry.get_object();
        std::string u = str_at(e, "username"), pw = str_at(e, "password");
        if (u.empty() && pw.empty()) {
            std::string both = b64decode(str_at(e, "auth"));
            if (auto colon = both.find(':'); colon != std::string::npos) {
                u = both.substr(0, colon);
                pw = both.substr(colon + 1);
            }
        }
        if (u == username && pw == password)
            return true;
    }
    return false;
}

image_root image_map::resolve(const std::string& image) const {
    for (const auto& r : rules_)
        if (fnmatch(r.match.c_str(), image.c_str(), 0) == 0)
            return r.root;
    return rules_.back().root;
}

} // namespace podpipe::kubesim
