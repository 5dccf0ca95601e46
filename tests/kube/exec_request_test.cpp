#include "kube/exec_request.hpp"

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

TEST(ExecRequest, PathAndQuery) {
    const exec_options o{.ns = "ns1",
                         .pod = "p1",
                         .container = "c1",
                         .command = {"sh", "-c", "cat; echo err >&2; exit 3"}};
    auto p = exec_path(o);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, "/api/v1/namespaces/ns1/pods/p1/exec?command=sh&command=-c&command=cat%3B%20echo%"
                  "20err%20%3E%262%3B%20exit%203&container=c1&stdin=true&stdout=true&stderr=true");
}

TEST(ExecRequest, EncodingAndFlags) {
    const exec_options o{.ns = "n",
                         .pod = "p",
                         .command = {"a+b=c?d/e#f", "\xc3\xa9", ""},
                         .use_stdin = false,
                         .tty = true};
    auto p = exec_path(o);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, "/api/v1/namespaces/n/pods/p/exec?command=a%2Bb%3Dc%3Fd%2Fe%23f&command=%C3%A9&"
                  "command=&stdin=false&stdout=true&stderr=true&tty=true");
    EXPECT_EQ(percent_encode("AZaz09-._~ %"), "AZaz09-._~%20%25");
}

TEST(ExecRequest, Rejects) {
    exec_options o{.ns = "n", .pod = "p"};
    EXPECT_FALSE(exec_path(o)); // empty command
    o.command = {"true"};
    o.use_stdin = o.use_stdout = o.use_stderr = false;
    EXPECT_FALSE(exec_path(o));
    exec_options no_pod{.ns = "n", .command = {"true"}};
    EXPECT_FALSE(exec_path(no_pod));
}

TEST(ExecRequest, Subprotocols) {
    ASSERT_EQ(exec_subprotocols.size(), 2u);
    EXPECT_EQ(exec_subprotocols[0], "v5.channel.k8s.io");
    EXPECT_EQ(exec_subprotocols[1], "v4.channel.k8s.io");
}

TEST(ExecStatus, Success) {
    auto r = exec_exit_code(std::string_view(R"({"metadata":{},"status":"Success"})"), "exec");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 0);
}

TEST(ExecStatus, NonZeroExitCode) {
    auto r = exec_exit_code(
        std::string_view(
            R"({"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command terminated with exit code 3","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}})"),
        "exec");
    ASSERT_TRUE(r);
    EXPECT_EQ(*r, 3);
    // The ExitCode cause need not be first.
    auto r2 = exec_exit_code(
        std::string_view(
            R"({"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"Other","message":"x"},{"reason":"ExitCode","message":"255"}]}})"),
        "exec");
    ASSERT_TRUE(r2);
    EXPECT_EQ(*r2, 255);
}

TEST(ExecStatus, BadExitCodes) {
    for (const char* m : {"256", "-1", "3x", "", " 3", "1e2"}) {
        std::string js =
            std::string(
                R"({"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":")") +
            m + "\"}]}}";
        auto r = exec_exit_code(std::string_view(js), "exec");
        ASSERT_FALSE(r) << m;
        EXPECT_TRUE(r.error().is(errc::bad_response)) << m;
    }
    auto no_cause = exec_exit_code(
        std::string_view(R"({"status":"Failure","reason":"NonZeroExitCode"})"), "exec");
    ASSERT_FALSE(no_cause);
    EXPECT_TRUE(no_cause.error().is(errc::bad_response));
}

TEST(ExecStatus, OtherFailure) {
    auto r = exec_exit_code(
        std::string_view(
            R"({"metadata":{},"status":"Failure","message":"Internal error occurred: error executing command in container: boom","reason":"InternalError","details":{"causes":[{"message":"boom"}]},"code":500})"),
        "exec in ns1/p1");
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::exec_failed));
    EXPECT_EQ(r.error().reason, "InternalError");
    EXPECT_NE(r.error().what().find("error executing command"), std::string::npos);
    EXPECT_NE(r.error().what().find("exec in ns1/p1"), std::string::npos);
}

TEST(ExecStatus, MissingIsNeverSuccess) {
    auto r = exec_exit_code(std::nullopt, "exec in ns1/p1");
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::missing_status));
    EXPECT_FALSE(exec_exit_code(std::string_view(""), "exec"));
    EXPECT_FALSE(exec_exit_code(std::string_view("{}"), "exec"));
    EXPECT_FALSE(exec_exit_code(std::string_view("command terminated"), "exec"));
}

} // namespace
} // namespace podpipe::kube
