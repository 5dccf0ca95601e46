#!/usr/bin/env bash
# What resume costs when nothing fails (issue 21): `podpipe cp` into and out of a kubesim pod
# with resume (the default: the receiver keeps a ledger, committing a resume point after a
# writer sync every 4 MiB of stream) and with --no-resume, round-robin; and the same for a
# local `podpipe pack | podpipe recv` with and without --resumable (the receiver alone, no
# exec link).
# Usage: bench/e2e/resume_cost.sh [TREE] [RUNS]
#   TREE  default build/bench-tree (made by make_tree.sh if missing)
#   RUNS  default 5 (median, min-max reported)
# Needs root, kubectl and the release build. Unthrottled link; the pod volume and the local
# output on tmpfs, so the disk is not what is measured.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-5}
build=${BUILD:-$root/build/release}
podpipe=$build/tools/podpipe/podpipe
kubesim=$build/tools/kubesim/kubesim
static_dir=$build/static
. "$root/bench/e2e/lib.sh"
bench_find_kubectl
bench_require "$podpipe" "$kubesim" "$static_dir/podpipe"
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"

bench_kubesim_work resume 6g

bench_tree_facts "$tree"
results=$work/results.tsv
out=$work/state/out
: >"$results"

measure() { # NAME CMD: one run, the pod's /data/out and the local out emptied first
    local name=$1 cmd=$2
    "$kubectl" exec p -- rm -rf /data/out
    rm -rf "$out"
    sync
    /usr/bin/time -f "%e" -o "$work/time" bash -c "$cmd" >/dev/null 2>"$work/err" || {
        echo "FAILED: $name" >&2; cat "$work/err" >&2; exit 1; }
    printf '%s\t%s\n' "$name" "$(cat "$work/time")" >>"$results"
}

bench_start_kubesim unlimited "$work/state" --nodes 1
bench_create_pod "$static_dir" p
"$podpipe" cp "$tree" p:/data/src >/dev/null
for ((round = 0; round < runs; round++)); do
    measure "cp into a pod, resumable" "'$podpipe' cp '$tree' p:/data/out"
    measure "cp into a pod, --no-resume" "'$podpipe' cp --no-resume '$tree' p:/data/out"
    measure "cp out of a pod, resumable" "'$podpipe' cp p:/data/src '$out'"
    measure "cp out of a pod, --no-resume" "'$podpipe' cp --no-resume p:/data/src '$out'"
    measure "local pipe: pack, recv --resumable" \
        "'$podpipe' pack '$tree' | '$podpipe' recv --resumable bench '$out'"
    measure "local pipe: pack, recv" "'$podpipe' pack '$tree' | '$podpipe' recv '$out'"
done

echo "## What resume costs when nothing fails, $(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Tree: $tree — $files files, $((bytes / 1000000)) MB. Runs: $runs each, round-robin, warm"
echo "cache, pod volume and local output on tmpfs, unthrottled exec link."
echo
bench_median_table "$results"
