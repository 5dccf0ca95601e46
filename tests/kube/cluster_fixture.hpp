// A kubesim per test plus an api_client on it (kube/client.hpp), and small byte
// sinks/sources for exec tests. Header-only: shared by the client and exec test files.
#pragma once

#include "engine/pipeline/byte_stream.hpp"
#include "kube/client.hpp"
#include "kube/config.hpp"
#include "kube/wait.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/kubesim/test_client.hpp"

#include <chrono>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::kube::testing {

/// Collects everything written into a string.
class string_sink final : public pipeline::byte_sink {
public:
    result<void> write(std::span<const std::byte> bytes) override {
        data.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
        return {};
    }

    std::string data;
};

inline std::string random_bytes(std::size_t n, std::uint64_t seed = 42) {
    std::mt19937_64 rng(seed);
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; i += 8) {
        const std::uint64_t v = rng();
        std::memcpy(s.data() + i, &v, std::min<std::size_t>(8, n - i));
    }
    return s;
}

inline std::span<const std::byte> as_bytes(std::string_view s) {
    return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

/// Writes `data` into `sink` in pieces of `piece` bytes, then finish().
inline result<void> send_all(pipeline::byte_sink& sink, std::string_view data,
                             std::size_t piece = 100'000) {
    for (std::size_t off = 0; off < data.size(); off += piece)
        PODPIPE_TRY(sink.write(as_bytes(data.substr(off, piece))));
    return sink.finish();
}

class cluster_test : public kubesim::testing::kubesim_fixture {
protected:
    void SetUp() override {
        kubesim_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        config_sources src;
        src.kubeconfig = kubeconfig_;
        src.env = {{"HOME", dir_ + "/home"}};
        auto cfg = load_config(src);
        ASSERT_TRUE(cfg) << cfg.error().what();
        config_ = *cfg;
        client_ = make_client(config_);
        ASSERT_NE(client_, nullptr);
    }

    /// A client on `cfg` with simulated time (retries do not sleep).
    std::unique_ptr<api_client> make_client(const cluster_config& cfg) {
        client_options o;
        o.clock = &clock_;
        o.retry.max_attempts = 5;
        auto c = api_client::connect(cfg, o);
        EXPECT_TRUE(c) << (c ? "" : c.error().what());
        return c ? std::move(*c) : nullptr;
    }

    /// POST /kubesim/faults with the admin token.
    void arm(const std::string& json) {
        auto r = kubesim::testing::https_request(port(), ca_file(), admin_token(), "POST",
                                                 "/kubesim/faults", json);
        ASSERT_EQ(r.status, 200) << r.body;
    }

    static pod busybox_pod(const std::string& name,
                           std::vector<std::string> command = {"sleep", "1000000"}) {
        pod p;
        p.metadata.name = name;
        p.spec.restart_policy = "Never";
        container c;
        c.name = "c1";
        c.image = "busybox";
        c.command = std::move(command);
        p.spec.containers.push_back(std::move(c));
        return p;
    }

    /// Waits (kube::wait_for_pod) until the pod's phase is `phase` (deadline 20 s); returns
    /// the last phase seen.
    std::string wait_for_phase(const std::string& name, const std::string& phase) {
        std::string last;
        pod_wait_options o;
        o.deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        (void)wait_for_pod(*client_, "", name, [&](const pod& p) {
            last = p.status.phase;
            return last == phase ? pod_check::done : pod_check::wait;
        }, o);
        return last;
    }

    /// Creates a running busybox pod `name`.
    void running_pod(const std::string& name) {
        auto p = client_->create_pod(busybox_pod(name));
        ASSERT_TRUE(p) << p.error().what();
        ASSERT_EQ(wait_for_phase(name, "Running"), "Running");
    }

    exec_options sh(const std::string& pod, const std::string& script, bool with_stdin = false) {
        exec_options e;
        e.pod = pod;
        e.command = {"sh", "-c", script};
        e.use_stdin = with_stdin;
        return e;
    }

    simulated_time clock_;
    cluster_config config_;
    std::unique_ptr<api_client> client_;
};

} // namespace podpipe::kube::testing
