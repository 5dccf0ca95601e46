// kubesim CLI: see README.md. Exit codes: 0 clean shutdown, 2 usage error, 1 start-up failure.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include <openssl/evp.h>

#include "tools/kubesim/api.hpp"
#include "tools/kubesim/events.hpp"
#include "tools/kubesim/images.hpp"
#include "tools/kubesim/jobs.hpp"
#include "tools/kubesim/kubelet.hpp"
#include "tools/kubesim/sandbox.hpp"
#include "tools/kubesim/scheduler.hpp"
#include "tools/kubesim/server.hpp"
#include "tools/kubesim/store.hpp"
#include "tools/kubesim/tls_ca.hpp"
#include "tools/kubesim/util.hpp"

namespace fs = std::filesystem;
using namespace podpipe::kubesim;

namespace {

struct options {
    int nodes = 3;
    std::string dir;
    int port = 0;
    std::string kubeconfig_out;
    std::string ns = "default";
    std::string image_map;
    std::string busybox = "/bin/busybox";
    std::string rbac;
    std::string externals;
    std::uint64_t exec_bandwidth = 0;
    std::chrono::microseconds exec_latency{0};
    std::chrono::microseconds bookmark_interval{60'000'000};
    std::vector<std::string> cordoned; ///< --cordon NODE (repeatable)
};

/// "50M" → 50'000'000 bytes/s (K, M, G decimal; Ki, Mi, Gi binary; plain number = bytes/s).
std::uint64_t parse_rate(const std::string& s) {
    std::size_t used = 0;
    double v = std::stod(s, &used);
    std::string unit = s.substr(used);
    double mul = 1;
    if (unit == "K" || unit == "k") mul = 1e3;
    else if (unit == "M") mul = 1e6;
    else if (unit == "G") mul = 1e9;
    else if (unit == "Ki") mul = 1024.0;
    else if (unit == "Mi") mul = 1024.0 * 1024;
    else if (unit == "Gi") mul = 1024.0 * 1024 * 1024;
    else if (!unit.empty()) throw std::invalid_argument("unit");
    return static_cast<std::uint64_t>(v * mul);
}

/// "5ms", "250us", "1s" (plain number = milliseconds).
std::chrono::microseconds parse_duration(const std::string& s) {
    std::size_t used = 0;
    double v = std::stod(s, &used);
    std::string unit = s.substr(used);
    double us = unit == "us" ? v : unit == "s" ? v * 1e6 : (unit == "ms" || unit.empty()) ? v * 1e3 : -1;
    if (us < 0)
        throw std::invalid_argument("unit");
    return std::chrono::microseconds(static_cast<std::int64_t>(us));
}

void usage() {
    std::cerr << "usage: kubesim --dir STATE --kubeconfig-out FILE [--nodes N] [--port P]\n"
                 "               [--namespace NS] [--image-map FILE] [--busybox PATH] [--rbac FILE]\n"
                 "               [--exec-bandwidth RATE] [--exec-latency DURATION] [--externals DIR]\n"
                 "               [--bookmark-interval DURATION] [--cordon NODE]...\n";
}

std::string base64(std::string_view in) {
    std::string out(4 * ((in.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                            reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

bool write_file(const fs::path& p, const std::string& content, mode_t mode) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << content;
    out.close();
    ::chmod(p.c_str(), mode);
    return static_cast<bool>(out);
}

} // namespace

int main(int argc, char** argv) {
    if (argc >= 2 && std::strcmp(argv[1], "__sandbox") == 0)
        return sandbox_main(argc, argv);

    options opt;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        try {
            if (a == "--nodes")
                opt.nodes = std::stoi(value());
            else if (a == "--dir")
                opt.dir = value();
            else if (a == "--port")
                opt.port = std::stoi(value());
            else if (a == "--kubeconfig-out")
                opt.kubeconfig_out = value();
            else if (a == "--namespace")
                opt.ns = value();
            else if (a == "--image-map")
                opt.image_map = value();
            else if (a == "--busybox")
                opt.busybox = value();
            else if (a == "--rbac")
                opt.rbac = value();
            else if (a == "--externals")
                opt.externals = value();
            else if (a == "--exec-bandwidth")
                opt.exec_bandwidth = parse_rate(value());
            else if (a == "--exec-latency")
                opt.exec_latency = parse_duration(value());
            else if (a == "--bookmark-interval")
                opt.bookmark_interval = parse_duration(value());
            else if (a == "--cordon")
                opt.cordoned.push_back(value());
            else if (a == "-h" || a == "--help") {
                usage();
                return 0;
            } else {
                std::cerr << "kubesim: unknown argument " << a << "\n";
                usage();
                return 2;
            }
        } catch (const std::exception&) {
            std::cerr << "kubesim: bad value for " << a << "\n";
            return 2;
        }
    }
    if (opt.dir.empty() || opt.kubeconfig_out.empty() || opt.nodes < 1) {
        usage();
        return 2;
    }

    // Block the shutdown signals in every thread; main waits for them with sigwait.
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
    signal(SIGPIPE, SIG_IGN);

    try {
        std::error_code ec;
        fs::create_directories(opt.dir, ec);
        opt.dir = fs::absolute(opt.dir).lexically_normal().string();
        while (opt.dir.size() > 1 && opt.dir.back() == '/')
            opt.dir.pop_back();
        fs::create_directories(opt.dir + "/pods", ec);
        fs::create_directories(opt.dir + "/serviceaccount", ec);
        if (ec) {
            std::cerr << "kubesim: cannot create " << opt.dir << ": " << ec.message() << "\n";
            return 1;
        }
        auto tls = generate_tls_material();
        if (!tls) {
            std::cerr << "kubesim: TLS material: " << tls.error().message() << "\n";
            return 1;
        }
        std::string admin_token = "kubesim-admin-" + random_hex(32);
        std::string sa_token = "kubesim-sa-" + random_hex(32);
        std::map<std::string, std::string> tokens{{admin_token, "kubesim-admin"},
                                                  {sa_token, "system:serviceaccount:" + opt.ns + ":default"}};
        write_file(opt.dir + "/serviceaccount/token", sa_token, 0644);
        write_file(opt.dir + "/serviceaccount/ca.crt", tls->ca_cert_pem, 0644);
        write_file(opt.dir + "/serviceaccount/namespace", opt.ns, 0644);

        image_map images;
        if (auto r = images.init(opt.dir, opt.image_map, opt.busybox, opt.externals); !r) {
            std::cerr << "kubesim: image map: " << r.error().message() << "\n";
            return 1;
        }

        object_store store;
        auto nodes = make_nodes(opt.nodes);
        for (const auto& c : opt.cordoned) {
            auto it = std::find_if(nodes.begin(), nodes.end(), [&](const sim_node& n) { return n.name == c; });
            if (it == nodes.end()) {
                std::cerr << "kubesim: --cordon " << c << ": no such node\n";
                return 2;
            }
            it->unschedulable = true;
        }
        for (const auto& n : nodes)
            (void)store.create("nodes", "", node_object(n));
        for (const std::string& ns : {std::string("default"), std::string("kube-system"),
                                      std::string("kube-public"), opt.ns})
            (void)store.create("namespaces", "", api_server::namespace_object(ns));

        event_recorder events(store);
        kubelet kube(store, images, nodes, opt.dir);
        kube.set_events(&events);
        api_server api(store, kube, tokens);
        job_controller jobs(store, kube, events,
                            [&api](const std::string& ns, json::object pod) -> std::variant<json::object, std::string> {
                                auto r = api.create_pod(ns, std::move(pod));
                                if (auto* created = std::get_if<json::object>(&r))
                                    return std::move(*created);
                                auto body = json::parse(std::get<api_response>(r).body);
                                return str_at(body.as_object(), "message");
                            });
        api.set_jobs(&jobs);
        api.set_service_account(opt.dir + "/serviceaccount", sa_token);
        api.set_exec_throttle(opt.exec_bandwidth, opt.exec_latency);
        api.set_bookmark_interval(std::max(std::chrono::duration_cast<std::chrono::milliseconds>(opt.bookmark_interval),
                                           std::chrono::milliseconds(10)));
        if (!opt.rbac.empty()) {
            auto policy = rbac_policy::load(opt.rbac);
            if (!policy) {
                std::cerr << "kubesim: --rbac: " << policy.error() << "\n";
                return 1;
            }
            api.set_policy(std::move(*policy));
        }
        server srv(api, kube, server_options{tls->server_cert_pem, tls->server_key_pem, opt.port});
        auto port = srv.start();
        if (!port) {
            std::cerr << "kubesim: listen: " << port.error().message() << "\n";
            return 1;
        }
        kube.set_api_endpoint("127.0.0.1", *port);
        std::string server_url = "https://127.0.0.1:" + std::to_string(*port);
        std::string kubeconfig = "apiVersion: v1\n"
                                 "kind: Config\n"
                                 "clusters:\n"
                                 "- name: kubesim\n"
                                 "  cluster:\n"
                                 "    server: " + server_url + "\n"
                                 "    certificate-authority-data: " + base64(tls->ca_cert_pem) + "\n"
                                 "users:\n"
                                 "- name: kubesim-admin\n"
                                 "  user:\n"
                                 "    token: " + admin_token + "\n"
                                 "contexts:\n"
                                 "- name: kubesim\n"
                                 "  context:\n"
                                 "    cluster: kubesim\n"
                                 "    user: kubesim-admin\n"
                                 "    namespace: \"" + opt.ns + "\"\n"
                                 "current-context: kubesim\n";
        fs::path kc = fs::absolute(opt.kubeconfig_out);
        fs::create_directories(kc.parent_path(), ec);
        if (!write_file(kc, kubeconfig, 0600)) {
            std::cerr << "kubesim: cannot write " << kc << "\n";
            return 1;
        }
        jobs.start();
        std::printf("kubesim: listening on %s kubeconfig=%s\n", server_url.c_str(), kc.c_str());
        std::fflush(stdout);

        int sig = 0;
        sigwait(&sigs, &sig);
        std::fprintf(stderr, "kubesim: signal %d, shutting down\n", sig);
        api.stop();
        jobs.stop();
        store.shutdown();
        kube.shutdown(std::chrono::seconds(2));
        srv.stop();
        std::fprintf(stderr, "kubesim: stopped\n");
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "kubesim: fatal: " << e.what() << "\n";
        return 1;
    }
}
