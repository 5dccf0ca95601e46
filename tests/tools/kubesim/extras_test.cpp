// What clients other than kubectl get use (issue 20): the legacy /api/v1/watch/... paths, the
// node object a kubelet reports, and the self-subject reviews behind `kubectl auth can-i --list`
// and `kubectl auth whoami`.
#include <boost/json.hpp>

#include "kubesim_fixture.hpp"
#include "test_client.hpp"

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;

class extras_test : public kubesim_fixture {
protected:
    http_reply call(const std::string& method, const std::string& target,
                    const std::string& body = "", const std::string& token = "") {
        return https_request(port(), ca_file(), token.empty() ? admin_token() : token, method,
                             target, body, {{"Content-Type", "application/json"}});
    }
    void make_pod(const std::string& name) {
        auto r = call("POST", "/api/v1/namespaces/default/pods",
                      R"({"metadata":{"name":")" + name +
                          R"("},"spec":{"containers":[{"name":"c","image":"busybox"}]}})");
        ASSERT_EQ(r.status, 201) << r.body;
    }
    /// The names of the objects of ADDED events in a watch stream.
    static std::vector<std::string> added(const std::string& stream) {
        std::vector<std::string> out;
        std::istringstream in(stream);
        for (std::string line; std::getline(in, line);) {
            if (line.empty())
                continue;
            auto ev = json::parse(line).as_object();
            if (ev.at("type") == "ADDED")
                out.emplace_back(ev.at("object").at("metadata").at("name").as_string());
        }
        return out;
    }
};

TEST_F(extras_test, legacy_watch_paths) {
    make_pod("p1");
    make_pod("p2");
    auto one = call("GET", "/api/v1/watch/namespaces/default/pods/p1?timeoutSeconds=1");
    ASSERT_EQ(one.status, 200) << one.body;
    EXPECT_EQ(added(one.body), std::vector<std::string>{"p1"});
    auto ns = call("GET", "/api/v1/watch/namespaces/default/pods?timeoutSeconds=1");
    EXPECT_EQ(added(ns.body), (std::vector<std::string>{"p1", "p2"}));
    auto all = call("GET", "/api/v1/watch/pods?timeoutSeconds=1");
    EXPECT_EQ(added(all.body), (std::vector<std::string>{"p1", "p2"}));
    auto same = call("GET", "/api/v1/watch/namespaces/default/pods/p2?timeoutSeconds=1"
                            "&fieldSelector=metadata.name%3Dp2");
    EXPECT_EQ(added(same.body), std::vector<std::string>{"p2"});
    auto other = call("GET", "/api/v1/watch/namespaces/default/pods/p2?timeoutSeconds=1"
                             "&fieldSelector=metadata.name%3Dp1");
    EXPECT_EQ(other.status, 400);
    EXPECT_EQ(json::parse(other.body).at("message"),
              "fieldSelector metadata.name doesn't match requested name");
    auto nss = call("GET", "/api/v1/watch/namespaces/kube-system?timeoutSeconds=1");
    EXPECT_EQ(added(nss.body), std::vector<std::string>{"kube-system"});
}

} // namespace
} // namespace podpipe::kubesim::testing
