// `podpipe cp` argument parsing: which side is a pod, and its namespace, container and path.
#include "tools/podpipe/location.hpp"

#include <gtest/gtest.h>

namespace podpipe::cli {
namespace {

location ok(std::string_view arg) {
    auto r = parse_location(arg);
    EXPECT_TRUE(r) << arg << ": " << (r ? "" : r.error());
    return r ? *r : location{};
}

TEST(cp_location, local_paths) {
    for (std::string_view arg : {"/abs/path", "./rel:with:colons", "../up", "plain", ".", "a/b/c"}) {
        const location l = ok(arg);
        EXPECT_FALSE(l.remote) << arg;
        EXPECT_EQ(l.path, arg);
    }
}

TEST(cp_location, pod_with_namespace_container_and_path) {
    location l = ok("ci/runner-abc-workflow:job:/__w/repo");
    EXPECT_TRUE(l.remote);
    EXPECT_EQ(l.ns, "ci");
    EXPECT_EQ(l.pod, "runner-abc-workflow");
    EXPECT_EQ(l.container, "job");
    EXPECT_EQ(l.path, "/__w/repo");
    EXPECT_EQ(l.display(), "ci/runner-abc-workflow:job:/__w/repo");

    l = ok("pod-1:/data");
    EXPECT_TRUE(l.ns.empty());
    EXPECT_TRUE(l.container.empty());
    EXPECT_EQ(l.path, "/data");

    // A colon inside an absolute path is not a container separator.
    l = ok("pod-1:/a:b");
    EXPECT_TRUE(l.container.empty());
    EXPECT_EQ(l.path, "/a:b");

    // Relative path inside the pod (the container's working directory).
    l = ok("my.pod.name:out");
    EXPECT_EQ(l.pod, "my.pod.name");
    EXPECT_EQ(l.path, "out");
}

TEST(cp_location, bad_remote_specs_say_what_is_wrong) {
    for (std::string_view arg : {"Pod:/x", "ns_bad/pod:/x", "pod:", "pod:ctr:", "/ns/pod:/x"}) {
        auto r = parse_location(arg);
        if (arg == "/ns/pod:/x") { // explicit local
            ASSERT_TRUE(r);
            EXPECT_FALSE(r->remote);
            continue;
        }
        ASSERT_FALSE(r) << arg;
        EXPECT_NE(r.error().find(std::string(arg)), std::string::npos) << r.error();
    }
    EXPECT_FALSE(parse_location(""));
}

TEST(cp_location, dns_names) {
    EXPECT_TRUE(is_dns_label("a"));
    EXPECT_TRUE(is_dns_label("a-1"));
    EXPECT_FALSE(is_dns_label("-a"));
    EXPECT_FALSE(is_dns_label("a-"));
    EXPECT_FALSE(is_dns_label("A"));
    EXPECT_FALSE(is_dns_label(std::string(64, 'a')));
    EXPECT_TRUE(is_dns_subdomain("a.b-c.d"));
    EXPECT_FALSE(is_dns_subdomain("a..b"));
    EXPECT_FALSE(is_dns_subdomain(".a"));
}

} // namespace
} // namespace podpipe::cli
