// Validation as the v1.32 API server does it: a table of valid and invalid objects POSTed over
// HTTPS, each with the expected HTTP code and the exact Status message (upstream's wording, field
// paths and cause reasons); plus kubectl's view of one 422.
#include <boost/json.hpp>

#include "kubesim_fixture.hpp"
#include "test_client.hpp"

namespace podpipe::kubesim::testing {
namespace {

namespace json = boost::json;

struct table_case {
    const char* what;
    const char* resource; ///< pods, secrets, persistentvolumeclaims
    std::string body;
    int code;
    std::string message; ///< exact Status message; empty for 201
    std::string first_cause_reason = "";
    std::string first_cause_field = "";
};

std::string pod(const std::string& name, const std::string& spec_extra,
                const std::string& containers = R"([{"name":"c","image":"busybox"}])") {
    return R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":")" + name +
           R"("},"spec":{"containers":)" + containers + spec_extra + "}}";
}

std::string with_meta(const std::string& metadata) {
    return R"({"metadata":)" + metadata +
           R"(,"spec":{"containers":[{"name":"c","image":"busybox"}]}})";
}

const std::string label_msg =
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const std::string subdomain_msg =
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used "
    "for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const std::string qname_msg =
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const std::string label_value_msg =
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  "
    "or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

std::vector<table_case> cases() {
    std::string long_name(254, 'a');
    std::string long_label(64, 'a');
    std::string big_annotation(256 * 1024, 'x');
    return {
        {"valid pod", "pods",
         pod("ok", R"(,"volumes":[{"name":"w","emptyDir":{}}],"restartPolicy":"Never")",
             R"([{"name":"c","image":"busybox","env":[{"name":"A.b-c 1","value":"x"}],
                  "volumeMounts":[{"name":"w","mountPath":"/w"}],
                  "ports":[{"name":"http","containerPort":80}],
                  "resources":{"limits":{"cpu":"1","memory":"64Mi"},"requests":{"cpu":"500m"}}}])"),
         201, ""},
        {"pod name not a subdomain", "pods", pod("Bad_Name", ""), 422,
         "Pod \"Bad_Name\" is invalid: metadata.name: Invalid value: \"Bad_Name\": " +
             subdomain_msg,
         "FieldValueInvalid", "metadata.name"},
        {"pod name too long", "pods", pod(long_name, ""), 422,
         "Pod \"" + long_name + "\" is invalid: metadata.name: Invalid value: \"" + long_name +
             "\": must be no more than 253 characters",
         "FieldValueInvalid", "metadata.name"},
        {"container name with a dot", "pods", pod("p", "", R"([{"name":"a.b","image":"busybox"}])"),
         422,
         "Pod \"p\" is invalid: spec.containers[0].name: Invalid value: \"a.b\": must not contain "
         "dots",
         "FieldValueInvalid", "spec.containers[0].name"},
        {"container name upper case", "pods", pod("p", "", R"([{"name":"C","image":"busybox"}])"),
         422, "Pod \"p\" is invalid: spec.containers[0].name: Invalid value: \"C\": " + label_msg},
        {"image required", "pods", pod("p", "", R"([{"name":"c"}])"), 422,
         "Pod \"p\" is invalid: spec.containers[0].image: Required value", "FieldValueRequired",
         "spec.containers[0].image"},
        {"containers required", "pods", pod("p", "", "[]"), 422,
         "Pod \"p\" is invalid: spec.containers: Required value", "FieldValueRequired",
         "spec.containers"},
        {"duplicate container names across init and main", "pods",
         pod("p", R"(,"initContainers":[{"name":"c","image":"busybox"}])"), 422,
         "Pod \"p\" is invalid: spec.initContainers[0].name: Duplicate value: \"c\"",
         "FieldValueDuplicate", "spec.initContainers[0].name"},
        {"duplicate container names", "pods",
         pod("p", "", R"([{"name":"c","image":"busybox"},{"name":"c","image":"busybox"}])"), 422,
         "Pod \"p\" is invalid: spec.containers[1].name: Duplicate value: \"c\""},
        {"duplicate volume names", "pods",
         pod("p", R"(,"volumes":[{"name":"v","emptyDir":{}},{"name":"v","emptyDir":{}}])"), 422,
         "Pod \"p\" is invalid: spec.volumes[1].name: Duplicate value: \"v\"",
         "FieldValueDuplicate", "spec.volumes[1].name"},
        {"volume name too long", "pods",
         pod("p", R"(,"volumes":[{"name":")" + long_label + R"(","emptyDir":{}}])"), 422,
         "Pod \"p\" is invalid: spec.volumes[0].name: Invalid value: \"" + long_label +
             "\": must be no more than 63 characters"},
        {"volume without a type", "pods", pod("p", R"(,"volumes":[{"name":"v"}])"), 422,
         "Pod \"p\" is invalid: spec.volumes[0]: Required value: must specify a volume type"},
        {"duplicate mountPath", "pods",
         pod("p", R"(,"volumes":[{"name":"a","emptyDir":{}},{"name":"b","emptyDir":{}}])",
             R"([{"name":"c","image":"busybox","volumeMounts":[{"name":"a","mountPath":"/x"},
                 {"name":"b","mountPath":"/x"}]}])"),
         422,
         "Pod \"p\" is invalid: spec.containers[0].volumeMounts[1].mountPath: Invalid value: "
         "\"/x\": must be unique"},
        {"mount of an undeclared volume", "pods",
         pod("p", "",
             R"([{"name":"c","image":"busybox",)"
             R"("volumeMounts":[{"name":"nope","mountPath":"/x"}]}])"),
         422, "Pod \"p\" is invalid: spec.containers[0].volumeMounts[0].name: Not found: \"nope\"",
         "FieldValueNotFound", "spec.containers[0].volumeMounts[0].name"},
        {"env name with =", "pods",
         pod("p", "", R"([{"name":"c","image":"busybox","env":[{"name":"A=B","value":"1"}]}])"),
         422,
         "Pod \"p\" is invalid: spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid "
         "environment variable name must consist only of printable ASCII characters other than "
         "'='"},
        {"env name empty", "pods",
         pod("p", "", R"([{"name":"c","image":"busybox","env":[{"name":"","value":"1"}]}])"), 422,
         "Pod \"p\" is invalid: spec.containers[0].env[0].name: Required value"},
        {"port name too long", "pods",
         pod("p", "",
             R"([{"name":"c","image":"busybox",)"
             R"("ports":[{"name":"a-very-long-port-name","containerPort":80}]}])"),
         422,
         "Pod \"p\" is invalid: spec.containers[0].ports[0].name: Invalid value: "
         "\"a-very-long-port-name\": must be no more than 15 characters"},
        {"port out of range", "pods",
         pod("p", "", R"([{"name":"c","image":"busybox","ports":[{"containerPort":70000}]}])"), 422,
         "Pod \"p\" is invalid: spec.containers[0].ports[0].containerPort: Invalid value: 70000: "
         "must be between 1 and 65535, inclusive"},
        {"malformed quantity is a decode error", "pods",
         pod("p", "", R"([{"name":"c","image":"busybox","resources":{"limits":{"cpu":"1x"}}}])"),
         400,
         "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular "
         "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
        {"unknown quantity suffix", "pods",
         pod("p", "",
             R"([{"name":"c","image":"busybox","resources":{"limits":{"memory":"1Mb"}}}])"),
         400,
         "Pod in version \"v1\" cannot be handled as a Pod: quantities must match the regular "
         "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"},
        {"negative quantity", "pods",
         pod("p", "", R"([{"name":"c","image":"busybox","resources":{"limits":{"cpu":"-1"}}}])"),
         422,
         "Pod \"p\" is invalid: spec.containers[0].resources.limits[cpu]: Invalid value: \"-1\": "
         "must be greater than or equal to 0"},
        {"request above limit", "pods",
         pod("p", "",
             R"([{"name":"c","image":"busybox",)"
             R"("resources":{"limits":{"cpu":"1"},"requests":{"cpu":"2"}}}])"),
         422,
         "Pod \"p\" is invalid: spec.containers[0].resources.requests: Invalid value: \"2\": must "
         "be less than or equal to cpu limit of 1"},
        {"restartPolicy value", "pods", pod("p", R"(,"restartPolicy":"Sometimes")"), 422,
         "Pod \"p\" is invalid: spec.restartPolicy: Unsupported value: \"Sometimes\": supported "
         "values: \"Always\", \"OnFailure\", \"Never\"",
         "FieldValueNotSupported", "spec.restartPolicy"},
        {"label key", "pods", with_meta(R"({"name":"p","labels":{"a b":"x"}})"), 422,
         "Pod \"p\" is invalid: metadata.labels: Invalid value: \"a b\": " + qname_msg},
        {"label value", "pods", with_meta(R"({"name":"p","labels":{"a":"-x"}})"), 422,
         "Pod \"p\" is invalid: metadata.labels: Invalid value: \"-x\": " + label_value_msg},
        {"annotation key", "pods", with_meta(R"({"name":"p","annotations":{"/x":"1"}})"), 422,
         "Pod \"p\" is invalid: metadata.annotations: Invalid value: \"/x\": prefix part must be "
         "non-empty"},
        {"annotations over 256 KiB", "pods",
         R"({"metadata":{"name":"p","annotations":{"a":")" + big_annotation +
             R"("}},"spec":{"containers":[{"name":"c","image":"busybox"}]}})",
         422,
         "Pod \"p\" is invalid: metadata.annotations: Too long: must have at most 262144 bytes",
         "FieldValueTooLong", "metadata.annotations"},
        {"several errors in one message", "pods",
         pod("p", R"(,"restartPolicy":"x")", R"([{"name":"C"}])"), 422,
         "Pod \"p\" is invalid: [spec.containers[0].name: Invalid value: \"C\": " + label_msg +
             ", spec.containers[0].image: Required value, spec.restartPolicy: Unsupported value: "
             "\"x\": supported values: \"Always\", \"OnFailure\", \"Never\"]"},
        {"secret data key", "secrets", R"({"metadata":{"name":"s"},"data":{"a/b":"eA=="}})", 422,
         "Secret \"s\" is invalid: data[a/b]: Invalid value: \"a/b\": a valid config key must "
         "consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  "
         "or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')"},
        {"secret name", "secrets", R"({"metadata":{"name":"S"},"data":{}})", 422,
         "Secret \"S\" is invalid: metadata.name: Invalid value: \"S\": " + subdomain_msg},
        {"valid secret", "secrets", R"({"metadata":{"name":"s2"},"stringData":{"k":"v"}})", 201,
         ""},
        {"claim without storage request", "persistentvolumeclaims",
         R"({"metadata":{"name":"c"},"spec":{"accessModes":["ReadWriteOnce"]}})", 422,
         "PersistentVolumeClaim \"c\" is invalid: spec.resources[storage]: Required value"},
        {"claim access mode", "persistentvolumeclaims",
         R"({"metadata":{"name":"c"},"spec":{"accessModes":["Sometimes"],)"
         R"("resources":{"requests":{"storage":"1Gi"}}}})",
         422,
         "PersistentVolumeClaim \"c\" is invalid: spec.accessModes: Unsupported value: "
         "\"Sometimes\": supported values: \"ReadOnlyMany\", \"ReadWriteMany\", "
         "\"ReadWriteOnce\", \"ReadWriteOncePod\""},
    };
}

class validation_test : public kubesim_fixture {
protected:
    http_reply post(const std::string& resource, const std::string& body,
                    const std::string& query = "") {
        return https_request(port(), ca_file(), admin_token(), "POST",
                             "/api/v1/namespaces/default/" + resource + query, body,
                             {{"Content-Type", "application/json"}});
    }
};

TEST_F(validation_test, table_of_objects) {
    for (const auto& c : cases()) {
        SCOPED_TRACE(c.what);
        auto r = post(c.resource, c.body);
        EXPECT_EQ(r.status, c.code) << r.body.substr(0, 2000);
        if (c.code == 201)
            continue;
        auto st = json::parse(r.body).as_object();
        EXPECT_EQ(st.at("kind").as_string(), "Status");
        EXPECT_EQ(st.at("code").as_int64(), c.code);
        EXPECT_EQ(std::string(st.at("reason").as_string()),
                  c.code == 422 ? "Invalid" : "BadRequest");
        EXPECT_EQ(std::string(st.at("message").as_string()), c.message);
        if (!c.first_cause_reason.empty()) {
            const auto& cause = st.at("details").at("causes").at(0).as_object();
            EXPECT_EQ(std::string(cause.at("reason").as_string()), c.first_cause_reason);
            EXPECT_EQ(std::string(cause.at("field").as_string()), c.first_cause_field);
        }
    }
    // Nothing invalid was stored.
    auto list =
        https_request(port(), ca_file(), admin_token(), "GET", "/api/v1/namespaces/default/pods");
    auto items = json::parse(list.body).at("items").as_array();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(std::string(items[0].at("metadata").at("name").as_string()), "ok");
}

TEST_F(validation_test, kubectl_prints_the_invalid_status) {
    auto r = kubectl("create --validate=false -f -", R"(apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers: [{name: c, image: busybox, volumeMounts: [{name: w, mountPath: /w}]}]
)");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_NE(r.output.find("The Pod \"p\" is invalid: spec.containers[0].volumeMounts[0].name: "
                            "Not found: \"w\""),
              std::string::npos)
        << r.output;
}

} // namespace
} // namespace podpipe::kubesim::testing

namespace podpipe::kubesim::testing {
namespace {

const std::string pod_with_unknown =
    R"({"metadata":{"name":"u","colour":"red"},"spec":{"foo":1,"containers":[{"name":"c",)"
    R"("image":"busybox","bar":true,"command":["sleep","1000"]}]}})";

TEST_F(validation_test, unknown_fields_are_dropped_with_a_warning) {
    auto r = post("pods", pod_with_unknown);
    ASSERT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.headers["warning"], "299 - \"unknown field \\\"metadata.colour\\\"\", "
                                    "299 - \"unknown field \\\"spec.foo\\\"\", "
                                    "299 - \"unknown field \\\"spec.containers[0].bar\\\"\"");
    auto got =
        https_request(port(), ca_file(), admin_token(), "GET", "/api/v1/namespaces/default/pods/u");
    auto pod = json::parse(got.body).as_object();
    EXPECT_FALSE(pod.at("spec").as_object().contains("foo"));
    EXPECT_FALSE(pod.at("metadata").as_object().contains("colour"));
    EXPECT_FALSE(pod.at("spec").at("containers").at(0).as_object().contains("bar"));
    EXPECT_TRUE(pod.at("spec").at("containers").at(0).as_object().contains("command"));
}

TEST_F(validation_test, unknown_fields_are_400_under_strict_and_silent_under_ignore) {
    auto strict = post("pods", pod_with_unknown, "?fieldValidation=Strict");
    EXPECT_EQ(strict.status, 400) << strict.body;
    EXPECT_EQ(std::string(json::parse(strict.body).at("message").as_string()),
              "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown "
              "field \"metadata.colour\", unknown field \"spec.foo\", unknown field "
              "\"spec.containers[0].bar\"");
    auto sec = post("secrets", R"({"metadata":{"name":"s"},"extra":1})", "?fieldValidation=Strict");
    EXPECT_EQ(sec.status, 400);
    auto ignore = post("pods", pod_with_unknown, "?fieldValidation=Ignore");
    EXPECT_EQ(ignore.status, 201) << ignore.body;
    EXPECT_EQ(ignore.headers.count("warning"), 0u);
}

TEST_F(validation_test, dry_run_creates_and_deletes_nothing) {
    auto r = post("pods", pod("dry", ""), "?dryRun=All");
    ASSERT_EQ(r.status, 201) << r.body;
    auto body = json::parse(r.body).as_object();
    EXPECT_EQ(std::string(body.at("metadata").at("name").as_string()), "dry");
    EXPECT_FALSE(body.at("metadata").at("uid").as_string().empty());
    EXPECT_FALSE(body.at("metadata").as_object().contains("resourceVersion"));
    EXPECT_EQ(std::string(body.at("spec").at("restartPolicy").as_string()), "Always");
    auto get = https_request(port(), ca_file(), admin_token(), "GET",
                             "/api/v1/namespaces/default/pods/dry");
    EXPECT_EQ(get.status, 404);
    // An invalid pod is still rejected under dryRun.
    EXPECT_EQ(post("pods", pod("Dry", ""), "?dryRun=All").status, 422);

    ASSERT_EQ(post("secrets", R"({"metadata":{"name":"keep"},"stringData":{"a":"b"}})").status,
              201);
    auto del = https_request(port(), ca_file(), admin_token(), "DELETE",
                             "/api/v1/namespaces/default/secrets/keep?dryRun=All");
    EXPECT_EQ(del.status, 200) << del.body;
    EXPECT_EQ(https_request(port(), ca_file(), admin_token(), "GET",
                            "/api/v1/namespaces/default/secrets/keep")
                  .status,
              200);
    auto sdry =
        post("secrets", R"({"metadata":{"name":"nope"},"stringData":{"a":"b"}})", "?dryRun=All");
    EXPECT_EQ(sdry.status, 201);
    EXPECT_EQ(https_request(port(), ca_file(), admin_token(), "GET",
                            "/api/v1/namespaces/default/secrets/nope")
                  .status,
              404);
}

TEST_F(validation_test, body_namespace_must_match_the_path) {
    auto r = post("pods", R"({"metadata":{"name":"p","namespace":"other"},"spec":{"containers":)"
                          R"([{"name":"c","image":"busybox"}]}})");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(std::string(json::parse(r.body).at("message").as_string()),
              "the namespace of the provided object does not match the namespace sent on the "
              "request");
}

} // namespace
} // namespace podpipe::kubesim::testing
