// grouped_copy's retry rule with copies that fail in each way a pod_copier's can (the copy is a
// function here: the rule, not the transfer, is under test; the transfers are tested on kubesim
// in tests/tools/podpipe): a failed connection is tried once more, a permanent failure (the API
// refused, the container cannot run the command), an unsafe stream or a sender's problems are not.
#include "hooks/commands/session.hpp"

#include "kube/client.hpp"
#include "kube/credentials.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace podpipe::hook {
namespace {

class grouped_copy_test : public ::testing::Test {
protected:
    void SetUp() override {
        kube::cluster_config cfg;
        cfg.server = "https://127.0.0.1:1"; // never contacted: the copies below are functions
        cfg.credentials = std::make_shared<kube::static_credentials>(kube::credentials{});
        auto c = kube::api_client::connect(cfg);
        ASSERT_TRUE(c) << c.error().what();
        client_ = std::move(*c);
        log_file_ = std::tmpfile();
        ASSERT_NE(log_file_, nullptr);
        log_ = std::make_unique<hook_log>(log_file_);
        session_ = std::make_unique<hook_session>(
            hook_session{*client_, "default", env_, *log_, {}, 1, 2, std::nullopt});
    }
    void TearDown() override {
        if (log_file_)
            std::fclose(log_file_);
    }

    // Runs grouped_copy with a copy that fails with `e` every time; returns the attempts.
    int attempts_for(const remote::copy_error& e) {
        int calls = 0;
        auto r = grouped_copy(*session_, "Copying", "the copy", [&]() -> remote::copy_result {
            ++calls;
            return fail(e);
        });
        EXPECT_FALSE(r);
        if (!r) {
            EXPECT_EQ(r.error().message, "the copy failed: " + e.message);
        }
        return calls;
    }

    std::string log_text() {
        std::fflush(log_file_);
        std::rewind(log_file_);
        std::string text;
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, log_file_)) > 0)
            text.append(buf, n);
        return text;
    }

    std::unique_ptr<kube::api_client> client_;
    hook_env env_;
    std::FILE* log_file_ = nullptr;
    std::unique_ptr<hook_log> log_;
    std::unique_ptr<hook_session> session_;
};

TEST_F(grouped_copy_test, a_failed_connection_is_tried_again_for_the_retry_time) {
    env_.copy_retry = std::chrono::milliseconds(1200); // waits from 0.25-0.5 s, doubling
    int calls = 0;
    auto r = grouped_copy(*session_, "Copying", "the copy", [&]() -> remote::copy_result {
        ++calls;
        return fail(remote::copy_error{pipeline::exit_failure, "exec dropped", {}, false});
    });
    ASSERT_FALSE(r);
    EXPECT_GE(calls, 2);
    EXPECT_LE(calls, 4);
    EXPECT_EQ(r.error().message.rfind("the copy failed: exec dropped (after " +
                                          std::to_string(calls) + " attempts over ",
                                      0),
              0u)
        << r.error().message;
    EXPECT_NE(log_text().find("::warning::the copy failed (attempt 1): exec dropped; trying "
                              "again in 0."),
              std::string::npos)
        << log_text();
}

TEST_F(grouped_copy_test, no_retry_time_is_one_attempt) {
    env_.copy_retry = std::chrono::milliseconds(0);
    EXPECT_EQ(attempts_for({pipeline::exit_failure, "exec dropped", {}, false}), 1);
    EXPECT_EQ(log_text().find("trying again"), std::string::npos) << log_text();
}

TEST_F(grouped_copy_test, a_permanent_failure_is_not_repeated) {
    EXPECT_EQ(attempts_for({pipeline::exit_failure,
                            "pod default/p: cannot run commands: container c is not running",
                            {},
                            true}),
              1);
    EXPECT_EQ(log_text().find("trying again"), std::string::npos) << log_text();
}

TEST_F(grouped_copy_test, unsafe_streams_and_sender_problems_are_not_repeated) {
    EXPECT_EQ(attempts_for({pipeline::exit_unsafe, "entry escapes the target", {}, false}), 1);
    remote::copy_error problems{pipeline::exit_failure, "1 entry was not sent", {}, false};
    problems.problems.count = 1;
    EXPECT_EQ(attempts_for(problems), 1);
}

TEST_F(grouped_copy_test, a_success_after_a_dropped_connection_is_a_success) {
    int calls = 0;
    auto r = grouped_copy(*session_, "Copying", "the copy", [&]() -> remote::copy_result {
        if (++calls == 1)
            return fail(remote::copy_error{pipeline::exit_failure, "dropped", {}, false});
        return remote::copy_report{};
    });
    EXPECT_TRUE(r);
    EXPECT_EQ(calls, 2);
}

} // namespace
} // namespace podpipe::hook
