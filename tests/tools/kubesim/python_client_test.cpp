// Conformance with Debian's python3-kubernetes (a client kubesim was not built against: its own
// REST models, the v4.channel.k8s.io exec protocol, its watch and log readers): list with a label
// selector, a pod's log, exec with stdin/stdout/stderr and a non-zero exit code read from the
// status channel, a watch that sees a pod's phase change and ends at its timeout, and a 404 as the
// client's ApiException. The test skips with a message when the module is not installed
// (tools/install-deps.sh installs it).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kubesim_fixture.hpp"

namespace podpipe::kubesim::testing {
namespace {

const char* const script = R"PY(
import sys
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException
from kubernetes.stream import stream

config.load_kube_config(config_file=sys.argv[1])
v1 = client.CoreV1Api()

pods = v1.list_namespaced_pod('default', label_selector='app=demo')
print('pods', ','.join(sorted(p.metadata.name for p in pods.items)))
print('log', repr(v1.read_namespaced_pod_log('p1', 'default', container='c1')))

resp = stream(v1.connect_get_namespaced_pod_exec, 'p1', 'default', container='c1',
              command=['sh', '-c', 'head -n 1; echo to-stderr >&2; exit 3'],
              stdin=True, stdout=True, stderr=True, tty=False, _preload_content=False)
resp.write_stdin('hello from python\n')
out, err = '', ''
while resp.is_open():
    resp.update(timeout=1)
    if resp.peek_stdout():
        out += resp.read_stdout()
    if resp.peek_stderr():
        err += resp.read_stderr()
print('exec', repr(out), repr(err), resp.returncode)

ok = stream(v1.connect_get_namespaced_pod_exec, 'p1', 'default', container='c1',
            command=['echo', 'plain'], stdin=False, stdout=True, stderr=True, tty=False)
print('exec-preloaded', repr(ok))

v1.create_namespaced_pod('default', {
    'apiVersion': 'v1', 'kind': 'Pod', 'metadata': {'name': 'short'},
    'spec': {'restartPolicy': 'Never',
             'containers': [{'name': 'c', 'image': 'busybox', 'command': ['sh', '-c', 'sleep 1']}]}})
phases = []
w = watch.Watch()
for ev in w.stream(v1.list_namespaced_pod, 'default', field_selector='metadata.name=short',
                   timeout_seconds=20):
    phase = ev['object'].status.phase
    if not phases or phases[-1] != phase:
        phases.append(phase)
    if phase == 'Succeeded':
        w.stop()
print('watch', phases[-1], 'Running' in phases or 'Pending' in phases)

try:
    v1.read_namespaced_pod('nosuch', 'default')
except ApiException as e:
    print('missing', e.status, e.reason)
)PY";

class python_client_test : public kubesim_fixture {};

TEST_F(python_client_test, list_logs_exec_watch_and_errors) {
    if (std::system("/usr/bin/python3 -c 'import kubernetes' >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "python3-kubernetes is not installed (tools/install-deps.sh installs it)";
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: demo}}
spec:
  containers: [{name: c1, image: busybox, command: ["sh", "-c", "echo started; sleep 1000000"]}]
)");
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec:
  containers: [{name: c1, image: busybox, command: ["sleep", "1000000"]}]
)");
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    const std::string py = dir_ + "/conformance.py";
    std::ofstream(py) << script;
    auto r = shell("/usr/bin/python3 '" + py + "' '" + kubeconfig_ + "'", "",
                   std::chrono::seconds(90));
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "pods p1\n"
                        "log 'started\\n'\n"
                        "exec 'hello from python\\n' 'to-stderr\\n' 3\n"
                        "exec-preloaded 'plain\\n'\n"
                        "watch Succeeded True\n"
                        "missing 404 Not Found\n");
}

} // namespace
} // namespace podpipe::kubesim::testing
