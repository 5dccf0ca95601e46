// The pods podpipe's kubesim tests copy to and from: a container that sleeps, the in-pod podpipe
// mounted read-only at /__e/podpipe from the host's `podpipe_dir`, an emptyDir at /data; and a
// fixture that runs the two the cp tests use.
#pragma once

#include "tests/tools/kubesim/kubesim_fixture.hpp"

#include <string>

namespace podpipe::kubesim::testing {

/// `resources`: a flow mapping for the container's resources, e.g. "{limits: {cpu: 1}}".
inline std::string podpipe_pod_yaml(const std::string& name, const std::string& image,
                                    const std::string& podpipe_dir,
                                    const std::string& resources = "{}") {
    return R"(apiVersion: v1
kind: Pod
metadata: {name: )" + name + R"(}
spec:
  containers:
  - name: main
    image: )" + image + R"(
    command: ["sleep", "1000000"]
    resources: )" + resources + R"(
    volumeMounts:
    - {name: bin, mountPath: /__e/podpipe, readOnly: true}
    - {name: data, mountPath: /data}
  volumes:
  - {name: bin, hostPath: {path: )" + podpipe_dir + R"(}}
  - {name: data, emptyDir: {}}
)";
}

#ifdef PODPIPE_BB_IMAGE
/// A kubesim with the two pods the cp tests use, running: `bb` (PODPIPE_BB_IMAGE: busybox and
/// its tar, or a host root under sanitizers) and `gnu` (the host's GNU tar), both with the
/// in-pod podpipe from PODPIPE_STATIC_DIR.
class bb_and_gnu_pods : public kubesim_fixture {
protected:
    void SetUp() override {
        kubesim_fixture::SetUp();
        if (IsSkipped() || HasFatalFailure())
            return;
        create_pod(podpipe_pod_yaml("bb", PODPIPE_BB_IMAGE, PODPIPE_STATIC_DIR));
        create_pod(podpipe_pod_yaml("gnu", "debian:12", PODPIPE_STATIC_DIR));
        ASSERT_EQ(wait_phase("bb", "Running"), "Running");
        ASSERT_EQ(wait_phase("gnu", "Running"), "Running");
    }
};
#endif

} // namespace podpipe::kubesim::testing
