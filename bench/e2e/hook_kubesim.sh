#!/usr/bin/env bash
# End-to-end: a job through podpipe-hook on kubesim (prepare_job, then script steps that change
# nothing in _temp), against a reference pipeline doing what the existing TypeScript hook does
# (spec/hook-behavior.md §4.1, §4.2, §4.5): uncompressed `tar cf` into `tar xf` through
# `kubectl exec -i`, the two chmod finds, the find/stat listing hashed on both sides; per step
# the whole _temp to _temp_pre + verification + the find/cp merge + the script + the file
# commands back + verification. Both start from pod creation (the reference with kubectl
# create + wait, podpipe-hook with its own prepare_job: fs-init, wait, copy, alpine check).
# Usage: bench/e2e/hook_kubesim.sh [TREE] [RUNS] [LINKS] [STEPS]
#   TREE  default build/bench-tree (bench/e2e/make_tree.sh); becomes the job's workspace
#   RUNS  default 3 (median, min-max reported), round-robin
#   LINKS default "25M unlimited": kubesim --exec-bandwidth values (bytes/s per direction)
#   STEPS default 5 script steps per job
# CPU_LIMITS="1 2" adds, per limit, podpipe-hook jobs whose job pod has that limits.cpu (a hook
# template): the in-pod podpipe's threads from the quota, and PODPIPE_POD_THREADS=<node cores>
# (what a program that counts the node's cores would run). VOLUME=0 leaves out volume mode.
# Needs root, kubectl, the release build (podpipe-hook, static podpipe, kubesim).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-3}
links=${3:-25M unlimited}
steps=${4:-5}
build=${BUILD:-$root/build/release}
hook_bin=$build/hooks/podpipe-hook
kubesim=$build/tools/kubesim/kubesim
static=$build/static/podpipe
. "$root/bench/e2e/lib.sh"
bench_find_kubectl
bench_require "$hook_bin" "$kubesim" "$static"
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"

# Pod volumes on tmpfs (see cp_kubesim.sh: the VM's ext4+discard would dominate).
bench_kubesim_work hookbench 6g
trap 'echo "hook_kubesim.sh: failed at line $LINENO; the hook log ends:" >&2; tail -20 "$work/hook.log" >&2 2>/dev/null' ERR

# The runner's layout: W=_work, the workspace W/app/app, _temp with what the runner puts there.
W=$work/runner/_work
mkdir -p "$W/app" "$W/_actions" "$W/_tool" "$W/_temp/_github_home" "$W/_temp/_github_workflow" \
    "$W/_temp/_runner_file_commands" "$W/_temp/_runner_hook_responses"
cp -a "$tree" "$W/app/app"
echo '{"ref":"refs/heads/main","repository":{"full_name":"o/app"}}' >"$W/_temp/_github_workflow/event.json"
mkdir -p "$work/ext/podpipe" && cp "$static" "$work/ext/podpipe/podpipe"
# The runner's own externals beside _work (volume mode copies them onto the claim once).
mkdir -p "$work/runner/externals" && cp -a "$work/ext/." "$work/runner/externals/"
files=$(find "$W" -type f | wc -l)
bytes=$(du -sb "$W" | cut -f1)
tar cf - -C "$W" . | cat >/dev/null # warm the page cache
results=$work/results.tsv
: >"$results"

export ACTIONS_RUNNER_POD_NAME=runner-bench RUNNER_WORKSPACE=$W/app GITHUB_WORKSPACE=$W/app/app \
    RUNNER_TEMP=$W/_temp PODPIPE_HOOK_BIN=$hook_bin
hook() { # COMMAND ARGS_JSON STATE_JSON
    local resp
    resp=$W/_temp/_runner_hook_responses/$RANDOM$RANDOM.json
    : >"$resp"
    printf '{"command":"%s","responseFile":"%s","args":%s,"state":%s}\n' "$1" "$resp" "$2" "$3" |
        bash --noprofile --norc -e -o pipefail "$root/tools/hook.sh" >>"$work/hook.log" 2>&1
    rm -f "$resp"
}
job_args='{"container":{"image":"debian:12","entryPoint":null,"entryPointArgs":[],"workingDirectory":"/__w/app/app","environmentVariables":{},"portMappings":[],"systemMountVolumes":[],"userMountVolumes":[]},"services":[]}'
state='{"jobPod":"runner-bench-workflow"}'
step_args() { # SCRIPT_NAME
    printf '{"entryPoint":"bash","entryPointArgs":["--noprofile","--norc","-e","-o","pipefail","/__w/_temp/%s"],"environmentVariables":{"GITHUB_OUTPUT":"/__w/_temp/_runner_file_commands/set_output_x"},"prependPath":[],"workingDirectory":"/__w/app/app"}' "$1"
}
new_step_script() { # -> name; what the runner writes before each step
    local name=step-$RANDOM$RANDOM.sh
    printf 'echo "n=$(ls | wc -l)" >> "$GITHUB_OUTPUT"\n' >"$W/_temp/$name"
    : >"$W/_temp/_runner_file_commands/set_output_x"
    echo "$name"
}

container_args='{"image":"debian:12","entryPoint":"sh","entryPointArgs":["-c","ls | wc -l > count.txt && echo n=1 >> $GITHUB_OUTPUT"],"workingDirectory":"/github/workspace","environmentVariables":{"GITHUB_OUTPUT":"/github/file_commands/set_output_x"},"portMappings":[],"systemMountVolumes":[],"userMountVolumes":[]}'

# A job through podpipe-hook: prepare, the script steps, one container step, cleanup. Writes the
# end times of prepare, of the script steps and of the container step to $work/steps-window.
podpipe_job() {
    hook prepare_job "$job_args" null
    local t0 t1 t2
    t0=$(date +%s.%N)
    for ((i = 0; i < steps; i++)); do
        local s
        s=$(new_step_script)
        hook run_script_step "$(step_args "$s")" "$state"
        rm -f "$W/_temp/$s"
    done
    t1=$(date +%s.%N)
    : >"$W/_temp/_runner_file_commands/set_output_x"
    hook run_container_step "$container_args" "$state"
    t2=$(date +%s.%N)
    echo "$t0 $t1 $t2" >"$work/steps-window"
    if [ -n "${EXPECT_CPU:-}" ]; then # limited_job: the limit really reached the job pod
        local got
        got=$("$kubectl" get pod runner-bench-workflow -o jsonpath='{.spec.containers[0].resources.limits.cpu}')
        [ "$got" = "$EXPECT_CPU" ] || { echo "job pod's limits.cpu is '$got', not $EXPECT_CPU" >&2; exit 1; }
    fi
    hook cleanup_job '{}' "$state"
}

# Volume mode: the runner's _work is a claim (kubesim's claim directory is a link to W, so the
# runner's files and the pods' /__w are the same bytes, as with a real RWX volume), a runner pod
# holds it on node-1.
volume_setup() { # LINK
    "$kubectl" create --validate=false -f - >/dev/null <<YAML
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: runner-bench-work}
spec:
  accessModes: [ReadWriteMany]
  resources: {requests: {storage: 10Gi}}
YAML
    local d=$work/state/state-$1/claims/default/runner-bench-work # bench_start_kubesim's --dir
    mkdir -p "$(dirname "$d")" && rm -rf "$d" && ln -s "$W" "$d"
    "$kubectl" create --validate=false -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: runner-bench}
spec:
  nodeName: node-1
  containers:
  - {name: runner, image: ghcr.io/actions/actions-runner:latest, command: [sleep, "1000000"],
     volumeMounts: [{name: work, mountPath: /home/runner/_work}]}
  volumes: [{name: work, persistentVolumeClaim: {claimName: runner-bench-work}}]
YAML
    "$kubectl" wait --for=jsonpath='{.status.phase}'=Running pod/runner-bench --timeout=60s >/dev/null
}
volume_job() {
    PODPIPE_WORKSPACE_MODE=volume podpipe_job
}

# The job pod with a CPU limit: a hook template per limit (the hook merges it into the $job
# container). limited_job LIMIT [POD_THREADS]
limited_job() {
    local tmpl=$work/template-cpu$1.yaml
    printf 'spec:\n  containers:\n  - name: $job\n    resources:\n' >"$tmpl"
    printf '      limits: {cpu: "%s", memory: 2Gi}\n' "$1" >>"$tmpl"
    EXPECT_CPU=$1 ACTIONS_RUNNER_CONTAINER_HOOK_TEMPLATE=$tmpl PODPIPE_POD_THREADS=${2:-0} \
        podpipe_job
}

# ---- the reference pipeline, step by step as the TypeScript hook does it ----
ref_listing() { # DIR: the verification digest (one stat process per file, sorted, sha256)
    (cd "$1" && find . -type f -not -path '*/_runner_hook_responses*' -exec stat -c '%s %n' {} \; ) |
        sort | sha256sum | cut -d' ' -f1
}
ref_pod_listing() { # DIR
    "$kubectl" exec ref -c job -- sh -c "cd $1 && find . -type f -not -path '*/_runner_hook_responses*' -exec stat -c '%s %n' {} \\;" |
        sort | sha256sum | cut -d' ' -f1
}
ref_cp_to_pod() { # LOCAL POD_DIR
    tar cf - -C "$1" . | "$kubectl" exec -i ref -c job -- sh -c \
        "mkdir -p $2 && tar xf - --no-same-owner -C $2 2>/dev/null; find $2 -type f -exec chmod u+rw {} \\; 2>/dev/null; find $2 -type d -exec chmod u+rwx {} \\; 2>/dev/null"
    [ "$(ref_listing "$1")" = "$(ref_pod_listing "$2")" ] || echo "reference: verification mismatch for $2" >&2
}
ref_job() {
    "$kubectl" create --validate=false -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: ref, labels: {runner-pod: runner-ref}}
spec:
  restartPolicy: Never
  containers:
  - name: job
    image: debian:12
    command: [tail, -f, /dev/null]
    volumeMounts: [{name: work, mountPath: /__w}, {name: github, mountPath: /github}]
  volumes: [{name: work, emptyDir: {}}, {name: github, emptyDir: {}}]
YAML
    "$kubectl" wait --for=jsonpath='{.status.phase}'=Running pod/ref --timeout=60s >/dev/null
    ref_cp_to_pod "$W" /__w
    local t0 t1
    t0=$(date +%s.%N)
    for ((i = 0; i < steps; i++)); do
        local s
        s=$(new_step_script)
        "$kubectl" exec ref -c job -- sh -c "mkdir -p /__w && mkdir -p /__w/_temp && mkdir -p /__w/_temp_pre"
        ref_cp_to_pod "$W/_temp" /__w/_temp_pre
        "$kubectl" exec ref -c job -- sh -c 'set -e && mkdir -p /__w/_temp /__w/_temp_pre && SRC=/__w/_temp_pre && DST=/__w/_temp && cp -a "$SRC/_runner_file_commands/." "$DST/_runner_file_commands" && find "$SRC" -type f ! -path "*/_runner_file_commands/*" -exec sh -c '"'"'rel="${1#$2/}"; target="$3/$rel"; mkdir -p "$(dirname "$target")"; cp -a "$1" "$target"'"'"' _ {} "$SRC" "$DST" \; && rm -rf /__w/_temp_pre'
        "$kubectl" exec ref -c job -- env GITHUB_OUTPUT=/__w/_temp/_runner_file_commands/set_output_x sh -c "cd /__w/app/app && bash --noprofile --norc -e -o pipefail /__w/_temp/$s" >/dev/null
        "$kubectl" exec ref -c job -- tar cf - -C /__w/_temp _runner_file_commands | tar xf - -C "$W/_temp"
        [ "$(ref_listing "$W/_temp/_runner_file_commands")" = "$(ref_pod_listing /__w/_temp/_runner_file_commands)" ] ||
            echo "reference: file commands mismatch" >&2
        rm -f "$W/_temp/$s"
    done
    t1=$(date +%s.%N)
    echo "$t0 $t1 $t1" >"$work/steps-window"
    "$kubectl" delete pod ref --grace-period=0 --wait=false >/dev/null
}

measure() { # NAME FUNCTION
    local t0 t1 w
    t0=$(date +%s.%N)
    $2
    t1=$(date +%s.%N)
    read -r s0 s1 s2 <"$work/steps-window"
    # prepare = from the start to the first step; per step = the step window / steps;
    # container step = its own window (0: the method has none).
    printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$(echo "$s0 - $t0" | bc)" "$(echo "($s1 - $s0) / $steps" | bc -l)" \
        "$(echo "$s2 - $s1" | bc)" "$(echo "$t1 - $t0" | bc)" >>"$results"
}

for link in $links; do
    bench_start_kubesim "$link" "$work/state" --nodes 2 --externals "$work/ext"
    [ "${VOLUME:-1}" = 1 ] && volume_setup "$link"
    for ((round = 0; round < runs; round++)); do
        measure "$link|podpipe-hook" podpipe_job
        measure "$link|reference (existing hook's method)" ref_job
        [ "${VOLUME:-1}" = 1 ] && measure "$link|podpipe-hook volume mode" volume_job
        for cpu in ${CPU_LIMITS:-}; do
            measure "$link|podpipe-hook, limit $cpu CPU, threads from the quota" \
                "limited_job $cpu"
            measure "$link|podpipe-hook, limit $cpu CPU, PODPIPE_POD_THREADS=$(nproc)" \
                "limited_job $cpu $(nproc)"
        done
    done
    bench_stop_kubesim
done

echo "## podpipe-hook job on kubesim, $(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Workspace W: $files files, $((bytes / 1000000)) MB ($tree plus the runner's _temp). $steps script"
echo "steps per job that change nothing in _temp but their own script. Runs: $runs, round-robin."
echo "Link: kubesim --exec-bandwidth per direction, 2 ms latency when throttled; pod volumes on tmpfs."
echo
python3 - "$results" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, prep, step, cstep, total = line.rstrip("\n").split("\t")
    link, tool = name.split("|")
    rows.setdefault(link, {}).setdefault(tool, []).append((float(prep), float(step), float(cstep), float(total)))
def cell(v):
    return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"
print("| link | method | prepare_job s | per script step s | container step s | whole job s | prepare ratio | step ratio |")
print("|---|---|---|---|---|---|---|---|")
for link, tools in rows.items():
    ours = tools.get("podpipe-hook")
    for tool, v in tools.items():
        prep = [x[0] for x in v]; step = [x[1] for x in v]; cst = [x[2] for x in v]; tot = [x[3] for x in v]
        pr = sr = ""
        if ours:
            pr = f"{statistics.median(prep) / statistics.median([x[0] for x in ours]):.2f}x"
            sr = f"{statistics.median(step) / statistics.median([x[1] for x in ours]):.2f}x"
        cs = cell(cst) if max(cst) > 0 else "n/a"
        print(f"| {link} | {tool} | {cell(prep)} | {cell(step)} | {cs} | {cell(tot)} | {pr} | {sr} |")
PY
