#include "kube/errors.hpp"

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

TEST(K8sErrors, NotFoundStatusCarriesCodeReasonMessage) {
    const std::string body =
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)"
        R"("message":"pods \"p1\" not found","reason":"NotFound",)"
        R"("details":{"name":"p1","kind":"pods"},"code":404})";
    api_error e = error_from_http(404, body, "get pod ns1/p1");
    EXPECT_TRUE(e.is(errc::not_found));
    EXPECT_EQ(e.http_status, 404);
    EXPECT_EQ(e.reason, "NotFound");
    EXPECT_EQ(e.message, "pods \"p1\" not found");
    EXPECT_EQ(e.what(), "get pod ns1/p1: pods \"p1\" not found (HTTP 404 NotFound)");
    EXPECT_FALSE(e.retryable());
}

TEST(K8sErrors, ConflictSplitsOnReason) {
    EXPECT_TRUE(error_from_http(409, R"({"status":"Failure","reason":"AlreadyExists"})", "c")
                    .is(errc::already_exists));
    EXPECT_TRUE(error_from_http(409, R"({"status":"Failure","reason":"Conflict"})", "c")
                    .is(errc::conflict));
}

TEST(K8sErrors, PlainText429WithRetryAfter) {
    api_error e =
        error_from_http(429, "Too many requests, please try again later.\n", "list pods", "1");
    EXPECT_TRUE(e.is(errc::too_many_requests));
    EXPECT_TRUE(e.retryable());
    EXPECT_EQ(e.code, condition::retryable);
    EXPECT_EQ(e.message, "Too many requests, please try again later.");
    ASSERT_TRUE(e.retry_after);
    EXPECT_EQ(*e.retry_after, std::chrono::seconds(1));
}

TEST(K8sErrors, HtmlBodyIsKeptTruncatedAndClean) {
    std::string html = "<html>\r\n<body>bad gateway</body>\n</html>";
    html += std::string(2000, 'x');
    api_error e = error_from_http(503, html, "create pod");
    EXPECT_TRUE(e.is(errc::service_unavailable));
    EXPECT_TRUE(e.retryable());
    EXPECT_LE(e.message.size(), 515u);
    EXPECT_EQ(e.message.find('\n'), std::string::npos);
}

TEST(K8sErrors, TimeoutStatusRetryAfterSecondsFromDetails) {
    api_error e = error_from_http(
        504,
        R"({"status":"Failure","reason":"Timeout","details":{"retryAfterSeconds":3},"code":504})",
        "x");
    EXPECT_TRUE(e.is(errc::timeout));
    EXPECT_TRUE(e.retryable());
    ASSERT_TRUE(e.retry_after);
    EXPECT_EQ(*e.retry_after, std::chrono::seconds(3));
}

TEST(K8sErrors, Conditions) {
    EXPECT_EQ(make_error_code(errc::server_error), condition::retryable);
    EXPECT_EQ(make_error_code(errc::too_many_requests), condition::retryable);
    EXPECT_EQ(make_error_code(errc::timeout), condition::retryable);
    EXPECT_EQ(make_error_code(errc::unauthorized), condition::fatal);
    EXPECT_EQ(make_error_code(errc::forbidden), condition::fatal);
    EXPECT_EQ(make_error_code(errc::invalid), condition::fatal);
    EXPECT_NE(make_error_code(errc::not_found), condition::retryable);
    EXPECT_NE(make_error_code(errc::not_found), condition::fatal);
    EXPECT_EQ(make_error_code(errc::bad_response), condition::bad_input);
    EXPECT_TRUE(error_from_http(500, "", "x").retryable());
    EXPECT_FALSE(
        error_from_http(
            401,
            R"({"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})",
            "x")
            .retryable());
    EXPECT_TRUE(error_from_http(418, "", "x").is(errc::unexpected_status));
}

TEST(K8sErrors, RetryAfterParsing) {
    EXPECT_EQ(parse_retry_after(" 5 "), std::chrono::seconds(5));
    EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"));
    EXPECT_FALSE(parse_retry_after("-1"));
    EXPECT_FALSE(parse_retry_after(""));
    EXPECT_FALSE(parse_retry_after("3x"));
}

} // namespace
} // namespace podpipe::kube
