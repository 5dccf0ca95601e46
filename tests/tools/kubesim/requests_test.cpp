// Requests as the API server takes them: selectors with upstream's 400 messages, supported pod
// field selectors, request headers up to 1 MiB (431 beyond), and a bad bearer token is 401 on
// every path, /version included.
#include <boost/json.hpp>

#include "kubesim_fixture.hpp"
#include "test_client.hpp"

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;

class requests_test : public kubesim_fixture {
protected:
    http_reply get(const std::string& target,
                   const std::map<std::string, std::string>& headers = {},
                   const std::string& token = "") {
        return https_request(port(), ca_file(), token.empty() ? admin_token() : token, "GET",
                             target, "", headers);
    }

    std::string pods_query(const std::string& query) {
        return "/api/v1/namespaces/default/pods?" + query;
    }

    static std::string message(const http_reply& r) {
        return std::string(json::parse(r.body).at("message").as_string());
    }
};

std::string escaped(const std::string& s) {
    std::string out;
    for (unsigned char c : s) {
        if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            out.push_back(static_cast<char>(c));
        } else {
            char buf[4];
            std::snprintf(buf, sizeof buf, "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

TEST_F(requests_test, malformed_selectors_are_400_with_upstream_messages) {
    struct bad {
        std::string query, message;
    };

    const std::vector<bad> cases = {
        {"labelSelector=" + escaped("a b"),
         "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"},
        {"labelSelector=" + escaped("app in (a"),
         "unable to parse requirement: found '', expected: ',' or ')'"},
        {"labelSelector=" + escaped("a=-x"),
         "unable to parse requirement: values[0][a]: Invalid value: \"-x\": a valid label must be "
         "an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
         "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
         "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"},
        {"labelSelector=" + escaped("-a"),
         "unable to parse requirement: <nil>: Invalid value: \"-a\": name part must consist of "
         "alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
         "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
         "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"},
        {"labelSelector=" + escaped("a,"), "found '', expected: identifier after ','"},
        {"labelSelector=" + escaped("a>x"),
         "unable to parse requirement: values[0]: Invalid value: \"x\": for 'Gt', 'Lt' operators, "
         "the value must be an integer"},
        {"fieldSelector=novalue", "invalid selector: 'novalue'; can't understand 'novalue'"},
        {"fieldSelector=" + escaped("spec.foo=x"), "field label not supported: spec.foo"},
        {"fieldSelector=" + escaped("status.containerStatuses=x"),
         "field label not supported: status.containerStatuses"},
    };
    for (const auto& c : cases) {
        SCOPED_TRACE(c.query);
        auto r = get(pods_query(c.query));
        EXPECT_EQ(r.status, 400) << r.body;
        auto st = json::parse(r.body).as_object();
        EXPECT_EQ(std::string(st.at("reason").as_string()), "BadRequest");
        EXPECT_EQ(std::string(st.at("message").as_string()), c.message);
    }
    // A field label that only pods support is 400 on secrets.
    auto sec = get("/api/v1/namespaces/default/secrets?fieldSelector=spec.nodeName%3Dx");
    EXPECT_EQ(sec.status, 400);
    EXPECT_EQ(message(sec), "field label not supported: spec.nodeName");
}

TEST_F(requests_test, supported_pod_field_selectors) {
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {num: "5"}}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: ["sleep", "1000"]}]
)");
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    auto count = [&](const std::string& q) {
        auto r = get(pods_query(q));
        EXPECT_EQ(r.status, 200) << q << " " << r.body;
        return r.status == 200 ? json::parse(r.body).at("items").as_array().size() : 99u;
    };
    for (const char* f :
         {"metadata.name=p1", "metadata.namespace=default", "spec.restartPolicy=Never",
          "spec.schedulerName=default-scheduler", "spec.serviceAccountName=default",
          "spec.hostNetwork=false", "status.phase=Running",
          "status.nominatedNodeName=", "spec.nodeName!=", "status.podIP!="})
        EXPECT_EQ(count("fieldSelector=" + escaped(f)), 1u) << f;
    EXPECT_EQ(count("fieldSelector=" + escaped("spec.hostNetwork=true")), 0u);
    EXPECT_EQ(count("labelSelector=" + escaped("num>4")), 1u);
    EXPECT_EQ(count("labelSelector=" + escaped("num<5")), 0u);
    EXPECT_EQ(count("labelSelector=" + escaped("num in (5,6),!m")), 1u);
}

TEST_F(requests_test, headers_up_to_one_mebibyte) {
    auto headers = [](int n) {
        std::map<std::string, std::string> h;
        for (int i = 0; i < n; ++i)
            h["X-Big-" + std::to_string(i)] = std::string(60 * 1024, 'a');
        return h;
    };
    auto ok = get("/api/v1/namespaces/default/pods", headers(15)); // 900 KiB
    EXPECT_EQ(ok.status, 200);
    std::string selector = "app in (" + std::string(60, 'x');
    for (int i = 0; i < 500; ++i)
        selector += "," + std::string(50, static_cast<char>('a' + i % 26)) + std::to_string(i);
    selector += ")";
    EXPECT_GT(selector.size(), 16u * 1024);
    auto long_target = get(pods_query("labelSelector=" + escaped(selector)));
    EXPECT_EQ(long_target.status, 200) << long_target.body.substr(0, 300);
    auto too_big = get("/api/v1/namespaces/default/pods", headers(19)); // 1140 KiB
    EXPECT_EQ(too_big.status, 431);
    EXPECT_EQ(too_big.body, "431 Request Header Fields Too Large");
    // The connection is gone, kubesim is not: the next request is served.
    EXPECT_EQ(get("/api/v1/namespaces/default/pods").status, 200);
}

TEST_F(requests_test, a_bad_token_is_401_everywhere) {
    for (const char* path : {"/version", "/healthz", "/api", "/api/v1/namespaces/default/pods"}) {
        SCOPED_TRACE(path);
        auto r = get(path, {}, "not-a-token");
        EXPECT_EQ(r.status, 401) << r.body;
    }
    // Without credentials /version stays open (system:public-info-viewer).
    auto anon = https_request(port(), ca_file(), "", "GET", "/version");
    EXPECT_EQ(anon.status, 200);
}

} // namespace
} // namespace podpipe::kubesim::testing
