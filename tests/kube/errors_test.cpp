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

TEST(K8sErrors, LoadBalancerHtmlPageBecomesItsTitle) {
    const std::string page =
        "<!DOCTYPE html>\r\n<html>\r\n<head>\r\n<title>503 Service\tTemporarily "
        "Unavailable</title>\r\n<style>body { width: 35em; }</style>\r\n</head>\r\n<body>"
        "<center><h1>503 Service Temporarily Unavailable</h1></center>" +
        std::string(3000, 'x') + "</body></html>\r\n";
    api_error e = error_from_http(503, page, "get pod ns1/p", "", "text/html");
    EXPECT_TRUE(e.is(errc::service_unavailable));
    EXPECT_TRUE(e.retryable());
    EXPECT_EQ(e.message, "HTML page: 503 Service Temporarily Unavailable");
    EXPECT_EQ(e.what(), "get pod ns1/p: HTML page: 503 Service Temporarily Unavailable (HTTP 503)");
    // Without a Content-Type the page is recognised by its start.
    EXPECT_EQ(error_from_http(502, page, "x").message,
              "HTML page: 503 Service Temporarily Unavailable");
}

TEST(K8sErrors, HtmlPageWithoutTitleIsItsTextShortAndClean) {
    const std::string page = "<html><head><style>h1 { color: red; }</style>"
                             "<script>var secret = 1;</script></head><body><!-- backend x -->"
                             "<h1>Bad&nbsp;Gateway</h1>\n\n<p>upstream &amp; co\x01 &lt;down&gt;"
                             "</p>" +
                             std::string(500, 'y') + "</body></html>";
    auto x = html_excerpt(page);
    ASSERT_TRUE(x);
    EXPECT_TRUE(x->starts_with("Bad Gateway upstream & co <down> yyy")) << *x;
    EXPECT_EQ(x->size(), 203u) << *x; // 200 bytes and "..."
    EXPECT_TRUE(x->ends_with("..."));
    EXPECT_EQ(x->find("color"), std::string::npos);
    EXPECT_EQ(x->find("secret"), std::string::npos);
    EXPECT_EQ(x->find("backend"), std::string::npos);
    for (char c : *x)
        EXPECT_GE(static_cast<unsigned char>(c), 0x20u);
    // Declared HTML without any tag at the start still is HTML; plain text is not.
    EXPECT_EQ(html_excerpt("  oops <b>down</b>", "text/html; charset=utf-8"), "oops down");
    EXPECT_EQ(html_excerpt("<html></html>"), "(no text)");
    EXPECT_FALSE(html_excerpt("Too many requests, please try again later.\n", "text/plain"));
    EXPECT_FALSE(html_excerpt(R"({"kind":"Status"})", "application/json"));
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
