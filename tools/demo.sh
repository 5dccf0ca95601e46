#!/usr/bin/env bash
# The main job on the embedded default cluster (kubesim): installs dependencies, builds podpipe
# and kubesim, starts kubesim, creates a job pod from the actions-runner image whose externals
# hold the static in-pod podpipe (as the runner image we document does), then
#   0. runs a job through podpipe-hook as the runner would: prepare_job (job pod + a service,
#      the workspace streamed in), script steps (one fails with its own exit code and still
#      returns its outputs), cleanup_job;
#   1. copies a real tree (Debian's installed headers) into the pod with `podpipe cp`,
#      verified in-stream by the in-pod `podpipe recv` (manifest),
#   2. copies it back out and compares it with the source (diff -r),
#   3. does the same into a busybox pod that has no podpipe (the pod's own tar),
# and prints the transfer summaries. kubesim is stopped on exit.
#   bash tools/demo.sh [TREE]      (default /usr/include; needs root for kubesim's namespaces)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bash tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target podpipe podpipe_static podpipe-hook kubesim -j "$(nproc)"
pp=$root/build/release/tools/podpipe/podpipe
src=$(realpath "${1:-/usr/include}")
work=$(mktemp -d /var/tmp/podpipe-demo.XXXXXX)
ks_pid=
cleanup() {
    echo "demo [$(date +%T)]: stopping kubesim"
    if [ -n "$ks_pid" ]; then kill -TERM "$ks_pid" 2>/dev/null || true; wait "$ks_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\ndemo [%s]: %s\n' "$(date +%T)" "$*"; }

step "starting kubesim (state in $work/state)"
mkdir -p "$work/externals/podpipe"
cp "$root/build/release/static/podpipe" "$work/externals/podpipe/podpipe"
"$root/build/release/tools/kubesim/kubesim" --dir "$work/state" --kubeconfig-out "$work/kubeconfig" \
    --externals "$work/externals" >"$work/kubesim.log" 2>&1 &
ks_pid=$!
for _ in $(seq 100); do grep -q 'listening on' "$work/kubesim.log" && break; sleep 0.1; done
grep 'listening on' "$work/kubesim.log" || { cat "$work/kubesim.log"; exit 1; }
export KUBECONFIG=$work/kubeconfig

# ---- 0. a job through podpipe-hook, as the runner calls it -----------------------------------
# The runner's layout: W=_work with the workspace W/demo/demo (the tree) and W/_temp.
W=$work/runner/_work
mkdir -p "$W/demo" "$W/_temp/_github_home" "$W/_temp/_github_workflow" "$W/_temp/_runner_file_commands" \
    "$W/_temp/_runner_hook_responses"
cp -a "$src" "$W/demo/demo"
echo '{"repository":{"full_name":"demo/demo"}}' >"$W/_temp/_github_workflow/event.json"
export ACTIONS_RUNNER_POD_NAME=demo-runner RUNNER_WORKSPACE=$W/demo GITHUB_WORKSPACE=$W/demo/demo \
    RUNNER_TEMP=$W/_temp PODPIPE_HOOK_BIN=$root/build/release/hooks/podpipe-hook
hook() { # COMMAND ARGS STATE: one invocation as the runner makes it; prints the response
    local resp=$W/_temp/_runner_hook_responses/$RANDOM.json rc=0
    : >"$resp"
    printf '{"command":"%s","responseFile":"%s","args":%s,"state":%s}\n' "$1" "$resp" "$2" "$3" |
        bash --noprofile --norc -e -o pipefail "$root/tools/hook.sh" || rc=$?
    [ -s "$resp" ] && { echo "demo: response: $(cat "$resp")"; }
    rm -f "$resp"
    return $rc
}
step "podpipe-hook prepare_job: job pod (debian:12) + service (redis), workspace $src streamed in"
hook prepare_job '{"container":{"image":"debian:12","workingDirectory":"/__w/demo/demo","environmentVariables":{"NODE_ENV":"demo"},"portMappings":[],"userMountVolumes":[]},"services":[{"image":"redis:7","portMappings":["6379"]}]}' null
state='{"jobPod":"demo-runner-workflow"}'
step "podpipe-hook run_script_step: a step that counts the workspace and sets an output"
printf 'echo "files in the workspace: $(find . -type f | wc -l)"\necho "count=$(find . -type f | wc -l)" >>"$GITHUB_OUTPUT"\n' >"$W/_temp/step1.sh"
: >"$W/_temp/_runner_file_commands/set_output_1"
hook run_script_step '{"entryPoint":"bash","entryPointArgs":["-e","/__w/_temp/step1.sh"],"environmentVariables":{"GITHUB_OUTPUT":"/__w/_temp/_runner_file_commands/set_output_1"},"prependPath":[],"workingDirectory":"/__w/demo/demo"}' "$state"
echo "demo: the step's GITHUB_OUTPUT on the runner: $(cat "$W/_temp/_runner_file_commands/set_output_1")"
step "podpipe-hook run_script_step: a step that writes an output, then exits 7"
printf 'echo "result=partial" >>"$GITHUB_OUTPUT"\nexit 7\n' >"$W/_temp/step2.sh"
: >"$W/_temp/_runner_file_commands/set_output_2"
rc=0
hook run_script_step '{"entryPoint":"bash","entryPointArgs":["-e","/__w/_temp/step2.sh"],"environmentVariables":{"GITHUB_OUTPUT":"/__w/_temp/_runner_file_commands/set_output_2"},"prependPath":[],"workingDirectory":"/__w/demo/demo"}' "$state" || rc=$?
echo "demo: hook exit code $rc; the failing step's GITHUB_OUTPUT still came back: $(cat "$W/_temp/_runner_file_commands/set_output_2")"
step "podpipe-hook cleanup_job"
hook cleanup_job '{}' "$state"

# kubectl only creates the pods here; Debian's kubernetes-client (1.20) is enough when none is installed.
command -v kubectl >/dev/null || apt-get install -y -qq --no-install-recommends kubernetes-client >/dev/null
create_pod() { kubectl create --validate=false -f - >/dev/null; }

# The job pod as the hook creates it: an init container copies the runner's externals into an
# emptyDir mounted at /__e, so /__e/podpipe/podpipe exists in the job container.
create_pod <<"YAML"
apiVersion: v1
kind: Pod
metadata: {name: job, labels: {app: podpipe-demo}}
spec:
  initContainers:
  - name: fs-init
    image: ghcr.io/actions/actions-runner:latest
    command: [sh, -c, 'cp -a /home/runner/externals/. /__e/']
    volumeMounts: [{name: externals, mountPath: /__e}]
  containers:
  - name: job
    image: debian:12
    command: [sleep, '1000000']
    volumeMounts:
    - {name: externals, mountPath: /__e}
    - {name: work, mountPath: /__w}
  volumes:
  - {name: externals, emptyDir: {}}
  - {name: work, emptyDir: {}}
YAML
create_pod <<"YAML"
apiVersion: v1
kind: Pod
metadata: {name: plain, labels: {app: podpipe-demo}}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: [sleep, '1000000']
    volumeMounts: [{name: work, mountPath: /__w}]
  volumes: [{name: work, emptyDir: {}}]
YAML
for _ in $(seq 100); do
    [ "$(kubectl get pods -o jsonpath='{.items[*].status.phase}')" = "Running Running" ] && break
    sleep 0.2
done
kubectl get pods

step "podpipe cp $src job:/__w/tree   (in-pod podpipe recv, manifest verified)"
"$pp" cp -v --progress --stats-json "$work/in.json" "$src" job:/__w/tree
step "podpipe cp job:/__w/tree $work/back"
"$pp" cp -v job:/__w/tree "$work/back"
diff -r --no-dereference "$src" "$work/back" >/dev/null && echo "demo: diff -r $src $work/back: identical"

step "podpipe cp into a busybox pod without podpipe (its own tar), then pod to pod"
"$pp" cp -v "$src" plain:/__w/tree
"$pp" cp -v plain:/__w/tree job:/__w/tree2
"$pp" cp job:/__w/tree2 "$work/back2"
diff -r --no-dereference "$src" "$work/back2" >/dev/null && echo "demo: diff -r $src $work/back2: identical"

step "per-stage counters of the first copy (local sender + in-pod receiver):"
cat "$work/in.json"
