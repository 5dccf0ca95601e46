// Watch semantics beyond ADDED/MODIFIED/DELETED: BOOKMARK events for allowWatchBookmarks (kubesim
// started with a short --bookmark-interval), and MODIFIED events that move an object into or out
// of a field selector arriving as ADDED / DELETED (what informers rely on).
#include "kubesim_fixture.hpp"
#include "test_client.hpp"

#include <thread>

namespace podpipe::kubesim::testing {
namespace {

class watch_test : public kubesim_fixture {
protected:
    void SetUp() override {
        extra_args_ = {"--bookmark-interval", "200ms"};
        kubesim_fixture::SetUp();
    }

    std::string current_rv() {
        auto list = https_request(port(), ca_file(), admin_token(), "GET",
                                  "/api/v1/namespaces/default/pods");
        auto p = list.body.find(R"("resourceVersion":")");
        return p == std::string::npos
                   ? ""
                   : list.body.substr(p + 19, list.body.find('"', p + 19) - p - 19);
    }

    http_reply watch(const std::string& query) {
        return https_request(port(), ca_file(), admin_token(), "GET",
                             "/api/v1/namespaces/default/pods?watch=true&" + query);
    }
};

/// The event types of a watch stream, one JSON object per line.
std::vector<std::string> types_of(const std::string& stream) {
    std::vector<std::string> out;
    const std::string prefix = R"({"type":")";
    for (std::size_t p = 0; p < stream.size();) {
        std::size_t nl = stream.find('\n', p);
        if (nl == std::string::npos)
            nl = stream.size();
        if (stream.compare(p, prefix.size(), prefix) == 0)
            out.push_back(stream.substr(p + prefix.size(),
                                        stream.find('"', p + prefix.size()) - p - prefix.size()));
        p = nl + 1;
    }
    return out;
}

TEST_F(watch_test, bookmarks_only_when_allowed) {
    std::string rv = current_rv();
    ASSERT_FALSE(rv.empty());
    auto with = watch("allowWatchBookmarks=true&resourceVersion=" + rv + "&timeoutSeconds=1");
    EXPECT_EQ(with.status, 200);
    auto types = types_of(with.body);
    ASSERT_FALSE(types.empty()) << with.body;
    for (const auto& t : types)
        EXPECT_EQ(t, "BOOKMARK");
    EXPECT_NE(
        with.body.find(
            R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":")" +
            rv + "\"}}}\n"),
        std::string::npos)
        << with.body;
    auto without = watch("resourceVersion=" + rv + "&timeoutSeconds=1");
    EXPECT_EQ(without.body, "");
    // Jobs carry their own kind/apiVersion in bookmarks.
    auto jobs = https_request(port(), ca_file(), admin_token(), "GET",
                              "/apis/batch/v1/namespaces/default/"
                              "jobs?watch=true&allowWatchBookmarks=true&resourceVersion=" +
                                  rv + "&timeoutSeconds=1");
    EXPECT_NE(jobs.body.find(R"("kind":"Job","apiVersion":"batch/v1")"), std::string::npos)
        << jobs.body;
}

TEST_F(watch_test, leaving_a_field_selector_is_deleted) {
    std::string rv = current_rv();
    http_reply seen;
    std::thread watcher([&] {
        seen = watch("fieldSelector=status.phase%3DRunning&resourceVersion=" + rv +
                     "&timeoutSeconds=6");
    });
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: brief}
spec:
  restartPolicy: Never
  containers: [{name: c, image: busybox, command: ["sh", "-c", "sleep 1"]}]
)");
    EXPECT_EQ(wait_phase("brief", "Succeeded"), "Succeeded");
    watcher.join();
    auto types = types_of(seen.body);
    // Running → ADDED (it entered the selection), updates while Running → MODIFIED, Succeeded →
    // DELETED carrying the final object.
    ASSERT_GE(types.size(), 2u) << seen.body;
    EXPECT_EQ(types.front(), "ADDED") << seen.body;
    EXPECT_EQ(types.back(), "DELETED") << seen.body;
    for (std::size_t i = 1; i + 1 < types.size(); ++i)
        EXPECT_EQ(types[i], "MODIFIED") << seen.body;
    auto last = seen.body.rfind(R"({"type":"DELETED")");
    EXPECT_NE(seen.body.find(R"("phase":"Succeeded")", last), std::string::npos) << seen.body;
    EXPECT_EQ(seen.body.find(R"("phase":"Pending")"), std::string::npos) << seen.body;
}

} // namespace
} // namespace podpipe::kubesim::testing
