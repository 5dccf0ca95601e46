// Deletions carried in the stream (pipeline::send_options::deletions through
// remote::copy_options), on a real kubesim: the in-pod podpipe applies them before it extracts
// the selection (busybox and GNU tar pods alike), and a pod's own tar extracts the same stream
// harmlessly, leaving the deletions undone (the hook then deletes through sh).
#include "kube/client.hpp"
#include "kube/config.hpp"
#include "remote/pod_copy.hpp"
#include "tests/support/tree_fixture.hpp"
#include "tests/tools/kubesim/kubesim_fixture.hpp"
#include "tests/tools/podpipe/pod_yaml.hpp"

#include <filesystem>
#include <memory>

namespace podpipe::kubesim::testing {
namespace {

namespace fs = std::filesystem;
using podpipe::testing::shell_quote;
using podpipe::testing::write_file;

class cp_deletions_test : public bb_and_gnu_pods {
protected:
    void SetUp() override {
        bb_and_gnu_pods::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        kube::config_sources sources;
        sources.kubeconfig = kubeconfig_;
        sources.env = {{"HOME", dir_ + "/home"}};
        auto cfg = kube::load_config(sources);
        ASSERT_TRUE(cfg) << cfg.error().what();
        auto client = kube::api_client::connect(*cfg);
        ASSERT_TRUE(client) << client.error().what();
        client_ = std::move(*client);
        // The runner's side now: "kind" became a directory, "new" appeared.
        write_file(fs::path(dir_) / "src/kind/inner", "inner");
        write_file(fs::path(dir_) / "src/new", "new");
        write_file(fs::path(dir_) / "src/unchanged", "not selected");
    }

    // The pod's older copy in /data/del.
    void make_old_copy(const std::string& pod) {
        auto r = kubectl("exec " + pod + " -- sh -c " +
                         shell_quote("rm -rf /data/del && mkdir -p /data/del/olddir/sub && "
                                     "echo x > /data/del/olddir/sub/f && echo o > /data/del/gone "
                                     "&& echo k > /data/del/keep && echo f > /data/del/kind && "
                                     "mkdir -p /data/outside && echo v > /data/outside/victim"));
        ASSERT_EQ(r.exit_code, 0) << r.output;
    }

    std::string listing(const std::string& pod) {
        return kubectl("exec " + pod + " -- sh -c 'cd /data/del && find . | sort'").output;
    }

    remote::copy_result copy(const std::string& pod, remote::copy_options opt) {
        opt.only = std::vector<std::string>{"kind", "new"};
        opt.only_descend = true;
        remote::pod_copier copier(*client_, opt);
        auto end = copier.probe({"", pod, "", "/data/del"});
        EXPECT_TRUE(end) << end.error().message;
        if (!end)
            return fail(end.error());
        EXPECT_EQ(end->has_binary, opt.pod_binary != "none");
        return copier.local_to_pod(dir_ + "/src", *end);
    }

    std::unique_ptr<kube::api_client> client_;
};

TEST_F(cp_deletions_test, the_in_pod_podpipe_applies_them_before_extracting) {
    for (const std::string pod : {"bb", "gnu"}) {
        SCOPED_TRACE(pod);
        make_old_copy(pod);
        remote::copy_options opt;
        opt.deletions = {"gone", "olddir", "kind", "never/was"};
        const auto out = copy(pod, opt);
        ASSERT_TRUE(out) << out.error().message;
        EXPECT_EQ(listing(pod), ".\n./keep\n./kind\n./kind/inner\n./new\n");
        EXPECT_EQ(kubectl("exec " + pod + " -- cat /data/del/kind/inner").output, "inner");
    }
}

TEST_F(cp_deletions_test, the_in_pod_podpipe_refuses_a_deletion_outside_its_root) {
    make_old_copy("bb");
    auto r = kubectl("exec bb -- ln -s /data/outside /data/del/out");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    remote::copy_options opt;
    opt.deletions = {"out/victim"};
    const auto out = copy("bb", opt);
    ASSERT_FALSE(out);
    EXPECT_EQ(out.error().status, pipeline::exit_unsafe) << out.error().message;
    EXPECT_NE(out.error().message.find("through a symlink"), std::string::npos)
        << out.error().message;
    EXPECT_EQ(kubectl("exec bb -- cat /data/outside/victim").output, "v\n");
}

TEST_F(cp_deletions_test, a_pods_tar_extracts_the_stream_and_leaves_them_undone) {
    for (const std::string pod : {"bb", "gnu"}) {
        SCOPED_TRACE(pod);
        make_old_copy(pod);
        auto r = kubectl("exec " + pod + " -- rm /data/del/kind");
        ASSERT_EQ(r.exit_code, 0) << r.output;
        remote::copy_options opt;
        opt.pod_binary = "none";
        opt.deletions = {"gone", "olddir"};
        const auto out = copy(pod, opt);
        ASSERT_TRUE(out) << out.error().message;
        EXPECT_EQ(listing(pod), ".\n./gone\n./keep\n./kind\n./kind/inner\n./new\n./olddir\n"
                                "./olddir/sub\n./olddir/sub/f\n");
    }
}

} // namespace
} // namespace podpipe::kubesim::testing
