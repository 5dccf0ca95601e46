// Test fixture that runs one kubesim per test: temp STATE dir, its own HOME (kubectl discovery
// cache), waits for the "kubesim: listening on" line, and on teardown stops it with SIGTERM and
// checks it exited 0 leaving no processes rooted in its state dir and no mounts behind.
// Skips (GTEST_SKIP) only when mount namespaces are not permitted or kubectl is missing.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace podpipe::kubesim::testing {

struct command_result {
    int exit_code = -1;
    std::string output; ///< stdout and stderr interleaved
};

class kubesim_fixture : public ::testing::Test {
protected:
    void SetUp() override;
    void TearDown() override;

    /// Runs `kubectl ARGS` (a shell fragment) with this cluster's KUBECONFIG and HOME, feeding
    /// `input` on stdin; bounded by `timeout`.
    command_result kubectl(const std::string& args, const std::string& input = "",
                           std::chrono::seconds timeout = std::chrono::seconds(60));
    /// Runs a shell command with the same environment.
    command_result shell(const std::string& script, const std::string& input = "",
                         std::chrono::seconds timeout = std::chrono::seconds(60));
    /// Creates a pod from YAML via `kubectl create -f - --validate=false`.
    void create_pod(const std::string& yaml);
    /// Polls the pod phase until it equals `phase` (or the deadline passes); returns the last phase.
    std::string wait_phase(const std::string& pod, const std::string& phase,
                           std::chrono::seconds timeout = std::chrono::seconds(20));

    /// Reads the admin bearer token from the kubeconfig kubesim wrote.
    std::string admin_token() const;
    /// POSTs `json` to kubesim's /kubesim/faults as the admin; a non-200 answer fails the test.
    void faults(const std::string& json);
    /// TCP port of server_.
    int port() const;
    /// CA certificate file (STATE/serviceaccount/ca.crt).
    std::string ca_file() const { return dir_ + "/state/serviceaccount/ca.crt"; }

    /// Extra kubesim command-line arguments; set before SetUp() (in a derived SetUp).
    std::vector<std::string> extra_args_;
    std::string dir_;        ///< per-test temp dir
    std::string kubeconfig_;
    std::string server_;     ///< https://127.0.0.1:PORT
    std::string kubectl_bin_;
    pid_t pid_ = -1;
};

} // namespace podpipe::kubesim::testing
