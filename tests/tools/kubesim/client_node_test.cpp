// Conformance with @kubernetes/client-node@1 (spec §6.3 "client-node Exec"): Exec with stdin and a
// non-zero exit status, list pods with a label selector, create/read/delete a secret. The package
// is npm-installed once into PODPIPE_BINARY_DIR/kubesim-npm (a cache); the test skips with a
// message when node/npm are missing or the registry is unreachable.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "kubesim_fixture.hpp"

namespace podpipe::kubesim::testing {
namespace {

const char* const script = R"JS(
import * as k8s from '@kubernetes/client-node';
import { PassThrough, Writable } from 'node:stream';

const kc = new k8s.KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(k8s.CoreV1Api);

const list = await core.listNamespacedPod({ namespace: 'default', labelSelector: 'app=demo' });
console.log('pods ' + list.items.map((p) => p.metadata.name).join(','));

await core.createNamespacedSecret({ namespace: 'default',
                                    body: { metadata: { name: 's1', labels: { k: 'v' } }, stringData: { a: 'b' } } });
const s = await core.readNamespacedSecret({ name: 's1', namespace: 'default' });
console.log('secret ' + Buffer.from(s.data.a, 'base64').toString());
const sl = await core.listNamespacedSecret({ namespace: 'default', labelSelector: 'k=v' });
console.log('secrets ' + sl.items.length);
await core.deleteNamespacedSecret({ name: 's1', namespace: 'default' });
const after = await core.listNamespacedSecret({ namespace: 'default', labelSelector: 'k=v' });
console.log('secrets after delete ' + after.items.length);

async function run(command, input) {
  const exec = new k8s.Exec(kc);
  const stdin = new PassThrough();
  let out = '';
  const stdout = new Writable({ write(chunk, _enc, cb) { out += chunk; cb(); } });
  const status = await new Promise((resolve, reject) => {
    exec.exec('default', 'p1', 'c1', command, stdout, process.stderr, input === null ? null : stdin, false,
              (st) => resolve(st)).catch(reject);
    if (input !== null) stdin.end(input);
  });
  return { out, status };
}
const ok = await run(['sh', '-c', 'cat'], 'hello from client-node\n');
console.log('exec-ok ' + JSON.stringify(ok.out) + ' ' + ok.status.status);
const bad = await run(['sh', '-c', 'cat; exit 3'], 'x\n');
console.log('exec-bad ' + JSON.stringify(bad.out) + ' ' + bad.status.status + ' ' + bad.status.reason + ' ' +
            bad.status.details.causes[0].reason + '=' + bad.status.details.causes[0].message);
process.exit(0);
)JS";

class client_node_test : public kubesim_fixture {};

TEST_F(client_node_test, exec_list_and_secrets) {
    if (std::system("command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1") != 0)
        GTEST_SKIP() << "node/npm not installed";
    std::string cache = std::string(PODPIPE_BINARY_DIR) + "/kubesim-npm";
    std::string pkg = cache + "/node_modules/@kubernetes/client-node/package.json";
    if (!std::filesystem::exists(pkg)) {
        std::filesystem::create_directories(cache);
        auto r = shell("timeout 300 npm install --no-audit --no-fund --prefix '" + cache +
                           "' @kubernetes/client-node@1",
                       "", std::chrono::seconds(320));
        if (r.exit_code != 0 || !std::filesystem::exists(pkg))
            GTEST_SKIP() << "cannot npm install @kubernetes/client-node@1 (registry unreachable?): " << r.output;
    }
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: p1, labels: {app: demo}}
spec:
  containers: [{name: c1, image: busybox, command: ["sleep", "1000000"]}]
)");
    create_pod(R"(apiVersion: v1
kind: Pod
metadata: {name: other, labels: {app: other}}
spec:
  containers: [{name: c1, image: busybox, command: ["sleep", "1000000"]}]
)");
    ASSERT_EQ(wait_phase("p1", "Running"), "Running");
    // The script sits in the cache dir so Node resolves the package from its node_modules.
    std::string js = cache + "/conformance-" + std::to_string(::getpid()) + ".mjs";
    std::ofstream(js) << script;
    auto r = shell("node '" + js + "'", "", std::chrono::seconds(60));
    std::filesystem::remove(js);
    ASSERT_EQ(r.exit_code, 0) << r.output;
    EXPECT_EQ(r.output, "pods p1\n"
                        "secret b\n"
                        "secrets 1\n"
                        "secrets after delete 0\n"
                        "exec-ok \"hello from client-node\\n\" Success\n"
                        "exec-bad \"x\\n\" Failure NonZeroExitCode ExitCode=3\n");
}

} // namespace
} // namespace podpipe::kubesim::testing
