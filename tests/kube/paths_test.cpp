#include "kube/paths.hpp"

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

TEST(K8sPaths, Objects) {
    EXPECT_EQ(pods_path("ns1"), "/api/v1/namespaces/ns1/pods");
    EXPECT_EQ(pod_path("ns1", "p1"), "/api/v1/namespaces/ns1/pods/p1");
    EXPECT_EQ(pod_path("ns 1", "p/1"), "/api/v1/namespaces/ns%201/pods/p%2F1");
    EXPECT_EQ(secret_path("ns1", "s"), "/api/v1/namespaces/ns1/secrets/s");
    EXPECT_EQ(secrets_path("ns1"), "/api/v1/namespaces/ns1/secrets");
    EXPECT_EQ(pvc_path("ns1", "work"), "/api/v1/namespaces/ns1/persistentvolumeclaims/work");
    EXPECT_EQ(node_path("node-1"), "/api/v1/nodes/node-1");
}

TEST(K8sPaths, ListAndWatchQueries) {
    EXPECT_EQ(list_path(pods_path("n"), {}), "/api/v1/namespaces/n/pods");
    list_options l;
    l.label_selector = "runner-pod=abc,env in (a,b)";
    l.limit = 500;
    l.continue_token = "eyJ2Ijo=";
    EXPECT_EQ(list_path(pods_path("n"), l),
              "/api/v1/namespaces/n/pods?continue=eyJ2Ijo%3D&labelSelector=runner-pod%3Dabc%2Cenv%"
              "20in%20%28a%2Cb%29&limit=500");
    list_options w;
    w.field_selector = "metadata.name=p1";
    w.resource_version = "12345";
    w.watch = true;
    w.allow_watch_bookmarks = true;
    w.timeout_seconds = 300;
    EXPECT_EQ(list_path(pods_path("n"), w),
              "/api/v1/namespaces/n/pods?allowWatchBookmarks=true&fieldSelector=metadata.name%3Dp1&"
              "resourceVersion=12345&timeoutSeconds=300&watch=true");
}

TEST(K8sPaths, Logs) {
    EXPECT_EQ(pod_log_path("ns1", "p1", {.container = "c1", .follow = true}),
              "/api/v1/namespaces/ns1/pods/p1/log?container=c1&follow=true");
    EXPECT_EQ(pod_log_path("ns1", "p1", {.since_time = "2024-05-01T10:00:00Z"}),
              "/api/v1/namespaces/ns1/pods/p1/log?sinceTime=2024-05-01T10%3A00%3A00Z");
}

} // namespace
} // namespace podpipe::kube
