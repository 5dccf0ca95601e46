#include "kube/json.hpp"

#include <gtest/gtest.h>

namespace podpipe::kube {
namespace {

constexpr std::string_view running_pod = R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {
    "name": "runner-abc-workflow", "generateName": "runner-", "namespace": "arc-runners",
    "uid": "3f1c", "resourceVersion": "12345", "creationTimestamp": "2024-05-01T10:00:00Z",
    "deletionTimestamp": "2024-05-01T11:00:00Z", "deletionGracePeriodSeconds": 30,
    "labels": {"runner-pod": "runner-abc"}, "annotations": {"a": "b"}, "ownerReferences": [],
    "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}}}]
  },
  "spec": {
    "restartPolicy": "Never", "serviceAccountName": "sa", "nodeName": "node-1",
    "initContainers": [{"name": "fs-init", "image": "busybox"}],
    "containers": [{"name": "job", "image": "node:20", "command": ["tail"],
                    "ports": [{"containerPort": 8080, "protocol": "TCP"}]},
                   {"name": "redis", "image": "redis"}],
    "terminationGracePeriodSeconds": 30
  },
  "status": {
    "phase": "Running", "reason": "Evicted", "message": "low on memory",
    "hostIP": "10.0.0.5", "podIP": "10.244.1.7", "qosClass": "Burstable",
    "conditions": [
      {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"},
      {"type": "Ready", "status": "False", "reason": "ContainersNotReady", "message": "m"}
    ],
    "initContainerStatuses": [{"name": "fs-init", "ready": false, "restartCount": 0,
      "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": "x"}}}],
    "containerStatuses": [
      {"name": "job", "ready": true, "started": true, "restartCount": 2,
       "state": {"running": {"startedAt": "2024-05-01T10:00:05Z"}}, "lastState": {}},
      {"name": "redis", "ready": false, "restartCount": 0,
       "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}}
    ]
  }
})";

TEST(K8sJson, ParsesPod) {
    auto r = parse_pod(running_pod);
    ASSERT_TRUE(r) << r.error().what();
    const pod& p = *r;
    EXPECT_EQ(p.metadata.name, "runner-abc-workflow");
    EXPECT_EQ(p.metadata.ns, "arc-runners");
    EXPECT_EQ(p.metadata.uid, "3f1c");
    EXPECT_EQ(p.metadata.resource_version, "12345");
    EXPECT_EQ(p.metadata.deletion_timestamp, "2024-05-01T11:00:00Z");
    EXPECT_EQ(p.metadata.labels.at("runner-pod"), "runner-abc");
    EXPECT_EQ(p.metadata.annotations.at("a"), "b");
    EXPECT_EQ(p.spec.node_name, "node-1");
    ASSERT_EQ(p.spec.containers.size(), 2u);
    EXPECT_EQ(p.spec.containers[1].name, "redis");
    ASSERT_EQ(p.spec.init_containers.size(), 1u);
    EXPECT_EQ(p.status.phase, "Running");
    EXPECT_EQ(p.status.reason, "Evicted");
    EXPECT_EQ(p.status.host_ip, "10.0.0.5");
    EXPECT_EQ(p.status.pod_ip, "10.244.1.7");
    ASSERT_EQ(p.status.conditions.size(), 2u);
    EXPECT_EQ(p.status.conditions[1].reason, "ContainersNotReady");
    ASSERT_EQ(p.status.init_container_statuses.size(), 1u);
    ASSERT_TRUE(p.status.init_container_statuses[0].state.terminated);
    EXPECT_EQ(p.status.init_container_statuses[0].state.terminated->reason, "Completed");
    ASSERT_EQ(p.status.container_statuses.size(), 2u);
    EXPECT_TRUE(p.status.container_statuses[0].ready);
    EXPECT_EQ(p.status.container_statuses[0].restart_count, 2);
    EXPECT_TRUE(p.status.container_statuses[0].state.running);
    ASSERT_TRUE(p.status.container_statuses[1].state.waiting);
    EXPECT_EQ(p.status.container_statuses[1].state.waiting->reason, "ImagePullBackOff");
}

TEST(K8sJson, TerminatedState) {
    auto r = parse_pod(R"({"metadata":{"name":"p"},"status":{"phase":"Failed","containerStatuses":[
        {"name":"c","state":{"terminated":{"exitCode":137,"signal":9,"reason":"OOMKilled","message":"m"}}}]}})");
    ASSERT_TRUE(r);
    const auto& t = r->status.container_statuses.at(0).state.terminated;
    ASSERT_TRUE(t);
    EXPECT_EQ(t->exit_code, 137);
    EXPECT_EQ(t->signal, 9);
    EXPECT_EQ(t->reason, "OOMKilled");
}

TEST(K8sJson, MinimalAndNullFields) {
    auto r = parse_pod(R"({"metadata":{"name":"p","labels":null},"spec":null})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->metadata.name, "p");
    EXPECT_TRUE(r->status.phase.empty());
}

TEST(K8sJson, WrongTypesAreErrors) {
    auto r = parse_pod(R"({"metadata":{"name":42}})");
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::bad_response));
    EXPECT_NE(r.error().detail.find("metadata.name"), std::string::npos) << r.error().detail;
    EXPECT_FALSE(parse_pod(R"({"status":{"containerStatuses":{}}})"));
    EXPECT_FALSE(parse_pod(R"({"metadata":{"labels":{"a":1}}})"));
    EXPECT_FALSE(parse_pod(
        R"({"status":{"containerStatuses":[{"state":{"terminated":{"exitCode":1e99}}}]}})"));
    EXPECT_FALSE(parse_pod(R"({"status":{"containerStatuses":[{"restartCount":4294967296}]}})"));
}

TEST(K8sJson, BadDocuments) {
    EXPECT_FALSE(parse_pod(""));
    EXPECT_FALSE(parse_pod("[]"));
    EXPECT_FALSE(parse_pod("{\"metadata\":"));
    EXPECT_FALSE(parse_pod("Too many requests, please try again later."));
    std::string deep;
    for (int i = 0; i < 200; ++i)
        deep += "{\"a\":";
    deep += "1";
    for (int i = 0; i < 200; ++i)
        deep += "}";
    auto r = parse_pod(deep);
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is(errc::bad_response));
    std::string shallow;
    for (int i = 0; i < 100; ++i)
        shallow += "{\"a\":";
    shallow += "1";
    for (int i = 0; i < 100; ++i)
        shallow += "}";
    EXPECT_TRUE(parse_pod(shallow));
}

TEST(K8sJson, PodListWithoutItemKinds) {
    auto r = parse_pod_list(R"({"kind":"PodList","apiVersion":"v1",
        "metadata":{"resourceVersion":"77","continue":"eyJ2Ijo","remainingItemCount":3},
        "items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"},"status":{"phase":"Pending"}}]})");
    ASSERT_TRUE(r) << r.error().what();
    EXPECT_EQ(r->resource_version, "77");
    EXPECT_EQ(r->continue_token, "eyJ2Ijo");
    ASSERT_EQ(r->items.size(), 2u);
    EXPECT_EQ(r->items[1].status.phase, "Pending");
    auto empty =
        parse_pod_list(R"({"kind":"PodList","metadata":{"resourceVersion":"1"},"items":[]})");
    ASSERT_TRUE(empty);
    EXPECT_TRUE(empty->items.empty());
    EXPECT_TRUE(empty->continue_token.empty());
}

TEST(K8sJson, WatchEvents) {
    auto added = parse_watch_event(
        R"({"type":"ADDED","object":{"kind":"Pod","apiVersion":"v1","metadata":{"name":"p","resourceVersion":"5"},"status":{"phase":"Pending"}}})");
    ASSERT_TRUE(added);
    EXPECT_EQ(added->type, watch_event::kind::added);
    EXPECT_EQ(added->object.metadata.name, "p");
    auto bookmark = parse_watch_event(
        R"({"type":"BOOKMARK","object":{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"12346","annotations":{"k8s.io/initial-events-end":"true"}}}})");
    ASSERT_TRUE(bookmark);
    EXPECT_EQ(bookmark->type, watch_event::kind::bookmark);
    EXPECT_EQ(bookmark->object.metadata.resource_version, "12346");
    auto err = parse_watch_event(
        R"js({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 123 (456)","reason":"Expired","code":410}})js");
    ASSERT_TRUE(err);
    EXPECT_EQ(err->type, watch_event::kind::error);
    ASSERT_TRUE(err->error);
    EXPECT_EQ(err->error->code, 410);
    EXPECT_EQ(err->error->reason, "Expired");
    for (auto ev : {"MODIFIED", "DELETED"}) {
        auto r = parse_watch_event(std::string(R"({"type":")") + ev +
                                   R"(","object":{"metadata":{"name":"p"}}})");
        ASSERT_TRUE(r) << ev;
    }
    EXPECT_FALSE(parse_watch_event(R"({"type":"WHATEVER","object":{}})"));
    EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED"})"));
    EXPECT_FALSE(parse_watch_event(R"({"type":"ADDED","object":"x"})"));
}

TEST(K8sJson, StatusWithCauses) {
    auto r = parse_status(
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Pod \"p1\" is invalid: spec.containers[0].image: Required value","reason":"Invalid","details":{"name":"p1","kind":"Pod","causes":[{"reason":"FieldValueRequired","message":"Required value","field":"spec.containers[0].image"}]},"code":422})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, "Failure");
    EXPECT_EQ(r->code, 422);
    EXPECT_EQ(r->details_name, "p1");
    EXPECT_EQ(r->details_kind, "Pod");
    ASSERT_EQ(r->causes.size(), 1u);
    EXPECT_EQ(r->causes[0].field, "spec.containers[0].image");
}

TEST(K8sJson, AccessReview) {
    auto r = parse_access_review(
        R"({"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"verb":"create"}},"status":{"allowed":true,"reason":"RBAC: allowed by RoleBinding"}})");
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->allowed);
    EXPECT_FALSE(r->denied);
    EXPECT_EQ(r->reason, "RBAC: allowed by RoleBinding");
    auto d = parse_access_review(R"({"status":{"allowed":false,"denied":true}})");
    ASSERT_TRUE(d);
    EXPECT_FALSE(d->allowed);
    EXPECT_TRUE(d->denied);
    EXPECT_FALSE(parse_access_review(R"({"status":{}})"));
    EXPECT_FALSE(parse_access_review(R"({"spec":{}})"));
}

TEST(K8sJson, SecretNodePvc) {
    auto s = parse_secret(
        R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"runner-abc-regcred","labels":{"runner-pod":"r"}},"type":"kubernetes.io/dockerconfigjson","immutable":true,"data":{".dockerconfigjson":"e30="}})");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->metadata.name, "runner-abc-regcred");
    EXPECT_EQ(s->metadata.labels.at("runner-pod"), "r");
    EXPECT_TRUE(s->immutable);
    auto sl = parse_secret_list(
        R"({"kind":"SecretList","metadata":{},"items":[{"metadata":{"name":"a"}}]})");
    ASSERT_TRUE(sl);
    EXPECT_EQ(sl->items.at(0).metadata.name, "a");
    auto n = parse_node(
        R"({"kind":"Node","metadata":{"name":"node-1","labels":{"kubernetes.io/hostname":"n1"}},"spec":{"unschedulable":true}})");
    ASSERT_TRUE(n);
    EXPECT_EQ(n->name, "node-1");
    EXPECT_TRUE(n->unschedulable);
    EXPECT_EQ(n->labels.at("kubernetes.io/hostname"), "n1");
    auto v = parse_pvc(
        R"({"kind":"PersistentVolumeClaim","metadata":{"name":"work"},"spec":{"accessModes":["ReadWriteOnce"]},"status":{"phase":"Bound"}})");
    ASSERT_TRUE(v);
    EXPECT_EQ(v->name, "work");
    ASSERT_EQ(v->access_modes.size(), 1u);
    EXPECT_EQ(v->access_modes[0], "ReadWriteOnce");
    EXPECT_EQ(v->phase, "Bound");
}

TEST(K8sJson, ExecCredentialErrorsNeverQuoteToken) {
    auto ok = parse_exec_credential(
        R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"token":"sekrit","expirationTimestamp":"2024-05-01T11:00:00Z"}})");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->token, "sekrit");
    auto bad = parse_exec_credential(
        R"({"kind":"ExecCredential","status":{"token":"sekrit","expirationTimestamp":5}})");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().what().find("sekrit"), std::string::npos);
    auto broken = parse_exec_credential(R"({"status":{"token":"sekrit")");
    ASSERT_FALSE(broken);
    EXPECT_EQ(broken.error().what().find("sekrit"), std::string::npos);
}

pod sample_pod() {
    pod p;
    p.metadata.name = "runner-abc-workflow";
    p.metadata.ns = "arc";
    p.metadata.labels = {{"runner-pod", "runner-abc"}};
    p.metadata.annotations = {{"note", "say \"hi\"\n"}};
    container job;
    job.name = "job";
    job.image = "node:20";
    job.command = {"tail"};
    job.args = {"-f", "/dev/null"};
    job.working_dir = "/__w/repo/repo";
    job.env = {{"K", "v\u00e9", std::nullopt}, {"S", "", secret_key_ref{"s", "k", true}}};
    job.env_from = {{"envs"}};
    job.ports = {{80, 8080, "TCP"}, {53, std::nullopt, "UDP"}};
    job.volume_mounts = {{"work", "/__w", "", false}, {"ro", "/ro", "sub", true}};
    job.security = security_context{.privileged = false, .run_as_user = 1001};
    job.resources.limits = {{"memory", "2Gi"}};
    p.spec.containers.push_back(job);
    container init;
    init.name = "fs-init";
    init.image = "busybox";
    init.command = {"sh", "-c", "chown -R 1001:1001 /__w"};
    p.spec.init_containers.push_back(init);
    p.spec.volumes = {{"work", empty_dir_source{}},
                      {"mem", empty_dir_source{"Memory", "1Gi"}},
                      {"pvc", pvc_source{"runner-work", true}},
                      {"sec", secret_volume_source{"s", 0400}}};
    p.spec.node_selector = {{"kubernetes.io/os", "linux"}};
    node_affinity a;
    a.required.push_back({{}, {{"metadata.name", "In", {"node-1"}}}});
    a.preferred.push_back({100, {{{"kubernetes.io/hostname", "In", {"node-1"}}}, {}}});
    p.spec.affinity = a;
    p.spec.restart_policy = "Never";
    p.spec.service_account_name = "runner";
    p.spec.image_pull_secrets = {"runner-abc-regcred"};
    p.spec.security = pod_security_context{.fs_group = 1001};
    return p;
}

TEST(K8sJson, PodSerialization) {
    const std::string js = to_json(sample_pod());
    // Spot checks of the exact shapes the API expects.
    for (
        const char* want : {
            R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"runner-abc-workflow","namespace":"arc",)",
            R"("annotations":{"note":"say \"hi\"\n"})",
            R"("imagePullSecrets":[{"name":"runner-abc-regcred"}])",
            R"("securityContext":{"fsGroup":1001})",
            R"("command":["tail"],"args":["-f","/dev/null"],"workingDir":"/__w/repo/repo")",
            "{\"name\":\"K\",\"value\":\"v\xc3\xa9\"}",
            R"({"name":"S","valueFrom":{"secretKeyRef":{"name":"s","key":"k","optional":true}}})",
            R"("envFrom":[{"secretRef":{"name":"envs"}}])",
            R"("ports":[{"containerPort":80,"hostPort":8080,"protocol":"TCP"},{"containerPort":53,"protocol":"UDP"}])",
            R"("volumeMounts":[{"name":"work","mountPath":"/__w"},{"name":"ro","mountPath":"/ro","subPath":"sub","readOnly":true}])",
            R"("resources":{"limits":{"memory":"2Gi"}})",
            R"("securityContext":{"privileged":false,"runAsUser":1001})",
            R"("volumes":[{"name":"work","emptyDir":{}},{"name":"mem","emptyDir":{"medium":"Memory","sizeLimit":"1Gi"}},{"name":"pvc","persistentVolumeClaim":{"claimName":"runner-work","readOnly":true}},{"name":"sec","secret":{"secretName":"s","defaultMode":256}}])",
            R"("affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchFields":[{"key":"metadata.name","operator":"In","values":["node-1"]}]}]},"preferredDuringSchedulingIgnoredDuringExecution":[{"weight":100,"preference":{"matchExpressions":[{"key":"kubernetes.io/hostname","operator":"In","values":["node-1"]}]}}]}})",
            R"("initContainers":[{"name":"fs-init","image":"busybox","command":["sh","-c","chown -R 1001:1001 /__w"]}])",
            R"("restartPolicy":"Never","serviceAccountName":"runner","nodeSelector":{"kubernetes.io/os":"linux"})",
        })
        EXPECT_NE(js.find(want), std::string::npos) << want << "\n in \n" << js;
    EXPECT_EQ(js.find("nodeName"), std::string::npos);
    // What we send parses back with our own parser.
    auto back = parse_pod(js);
    ASSERT_TRUE(back) << back.error().what();
    EXPECT_EQ(back->metadata.annotations.at("note"), "say \"hi\"\n");
    EXPECT_EQ(back->spec.containers.at(0).name, "job");
    EXPECT_EQ(back->spec.init_containers.at(0).image, "busybox");
}

TEST(K8sJson, SecretSsarDeleteSerialization) {
    secret s;
    s.metadata.name = "runner-abc-regcred";
    s.metadata.labels = {{"runner-pod", "r"}};
    s.type = "kubernetes.io/dockerconfigjson";
    s.immutable = true;
    s.data = {{".dockerconfigjson", "{}"}};
    EXPECT_EQ(
        to_json(s),
        R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"runner-abc-regcred","labels":{"runner-pod":"r"}},"type":"kubernetes.io/dockerconfigjson","immutable":true,"data":{".dockerconfigjson":"e30="}})");
    EXPECT_EQ(
        to_json(resource_attributes{"ns1", "create", "", "pods", "exec", ""}),
        R"({"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectAccessReview","spec":{"resourceAttributes":{"namespace":"ns1","verb":"create","group":"","resource":"pods","subresource":"exec"}}})");
    EXPECT_EQ(to_json(delete_options{0, "Background", "", ""}),
              R"({"gracePeriodSeconds":0,"propagationPolicy":"Background"})");
    EXPECT_EQ(to_json(delete_options{std::nullopt, "", "u1", "7"}),
              R"({"preconditions":{"uid":"u1","resourceVersion":"7"}})");
    EXPECT_EQ(to_json(delete_options{}), "{}");
}

} // namespace
} // namespace podpipe::kube
