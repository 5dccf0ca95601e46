#!/usr/bin/env bash
# End-to-end: `podpipe cp` into and out of kubesim pods with a CPU limit (kubesim makes
# limits.cpu the container's cgroup quota, tools/kubesim/cgroups.hpp). The in-pod podpipe sizes
# its threads by the quota (engine/common/limits.hpp); `--pod-threads N` forces N, which is what
# a program that counts the node's cores would run. Both, round-robin, per limit.
# Usage: bench/e2e/cp_cpu_limit.sh [TREE] [RUNS] [LIMITS]
#   TREE    default build/bench-tree (made by make_tree.sh if missing)
#   RUNS    default 3 (median, min-max reported)
#   LIMITS  default "1 2": limits.cpu of the pod, one pod each
# Needs root, kubectl, the release build, and cgroup controllers kubesim can use (it says on
# stderr when limits are not enforced: then the numbers mean nothing). Unthrottled link; the
# pod volume on tmpfs.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-3}
limits=${3:-1 2}
build=${BUILD:-$root/build/release}
podpipe=$build/tools/podpipe/podpipe
kubesim=$build/tools/kubesim/kubesim
static_dir=$build/static
. "$root/bench/e2e/lib.sh"
bench_find_kubectl
bench_require "$podpipe" "$kubesim" "$static_dir/podpipe"
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"
node_cores=$(nproc)

bench_kubesim_work cpulimit 6g

bench_tree_facts "$tree"
results=$work/results.tsv
out=$work/state/out # the local side of copies out: tmpfs too, so the disk is not measured
: >"$results"

# measure NAME POD CMD: one run; the pod's /data/out and the local out dir emptied first.
measure() {
    local name=$1 pod=$2 cmd=$3
    "$kubectl" exec "$pod" -- rm -rf /data/out
    rm -rf "$out"
    sync
    /usr/bin/time -f "%e" -o "$work/time" bash -c "$cmd" >/dev/null 2>"$work/err" || {
        echo "FAILED: $name" >&2; cat "$work/err" >&2; exit 1; }
    printf '%s\t%s\n' "$name" "$(cat "$work/time")" >>"$results"
}

bench_start_kubesim unlimited "$work/state" --nodes 1
if grep -q "not enforced" "$work/state/kubesim-unlimited.log"; then
    echo "kubesim cannot enforce CPU limits here:" >&2
    cat "$work/state/kubesim-unlimited.log" >&2
    exit 1
fi
for cpu in $limits; do
    bench_create_pod "$static_dir" "cpu$cpu" "{limits: {cpu: \"$cpu\", memory: 2Gi}}"
    "$podpipe" cp "$tree" "cpu$cpu:/data/src" >/dev/null # the source of the copies out
done
for ((round = 0; round < runs; round++)); do
    for cpu in $limits; do
        p=cpu$cpu
        measure "limit $cpu: into, threads from the quota" "$p" \
            "'$podpipe' cp '$tree' $p:/data/out"
        measure "limit $cpu: into, --pod-threads $node_cores (node's cores)" "$p" \
            "'$podpipe' cp --pod-threads $node_cores '$tree' $p:/data/out"
        measure "limit $cpu: out of, threads from the quota" "$p" \
            "'$podpipe' cp $p:/data/src '$out'"
        measure "limit $cpu: out of, --pod-threads $node_cores (node's cores)" "$p" \
            "'$podpipe' cp --pod-threads $node_cores $p:/data/src '$out'"
        measure "limit $cpu: into, kubectl cp" "$p" "'$kubectl' cp '$tree' $p:/data/out"
        measure "limit $cpu: out of, kubectl cp" "$p" "'$kubectl' cp $p:/data/src '$out'"
    done
done

echo "## podpipe cp with a CPU-limited pod, $(date -u +%Y-%m-%d), $node_cores cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Tree: $tree — $files files, $((bytes / 1000000)) MB. Runs: $runs each, round-robin, warm"
echo "cache, pod volume and local output on tmpfs, unthrottled exec link."
echo
bench_median_table "$results"
