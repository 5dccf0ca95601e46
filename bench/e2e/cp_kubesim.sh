#!/usr/bin/env bash
# End-to-end: copying a tree into a pod on kubesim with `podpipe cp` and the tools people use
# today, with the exec link unthrottled and throttled, in one run.
# Usage: bench/e2e/cp_kubesim.sh [TREE] [RUNS] [LINKS]
#   TREE  default build/bench-tree (made by make_tree.sh if missing)
#   RUNS  default 3 (median, min-max reported)
#   LINKS default "unlimited 25M": kubesim --exec-bandwidth values (bytes/s per direction)
# Needs root (kubesim's mount namespaces), kubectl, the release build (podpipe, static
# podpipe, kubesim). Prints a markdown table; the pod is debian:12 (kubesim maps it to the
# host root: GNU tar and gzip), with the static podpipe mounted at /__e/podpipe.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-3}
links=${3:-unlimited 25M}
build=${BUILD:-$root/build/release}
podpipe=$build/tools/podpipe/podpipe
kubesim=$build/tools/kubesim/kubesim
static_dir=$build/static
. "$root/bench/e2e/lib.sh"
bench_find_kubectl
bench_require "$podpipe" "$kubesim" "$static_dir/podpipe"
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"

# kubesim's state (the pod's emptyDir) on a tmpfs: on this VM's disk, creating 20k files after
# deleting the previous run's costs 10-15 s of kernel time whatever the tool (ext4 + discard),
# which would measure the disk, not the transfer. CP_BENCH_DISK=1 keeps it on disk.
bench_kubesim_work cpbench 4g "$([ "${CP_BENCH_DISK:-0}" = 1 ] && echo disk)"

bench_tree_facts "$tree"
results=$work/results.tsv
: >"$results"

# measure NAME CMD: one run, the pod's /data/out emptied before it (not timed); checks that
# the tool delivered every file.
measure() {
    local name=$1 cmd=$2 got
    "$kubectl" exec bench -- rm -rf /data/out
    sync
    /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$cmd" >/dev/null 2>"$work/err" || {
        echo "FAILED: $name" >&2; cat "$work/err" >&2; exit 1; }
    read -r secs rss <"$work/time"
    printf '%s\t%s\t%s\n' "$name" "$secs" "$rss" >>"$results"
    got=$("$kubectl" exec bench -- sh -c 'find /data/out -type f | wc -l')
    [ "$got" = "$files" ] || { echo "$name: $got files in the pod, expected $files" >&2; exit 1; }
}

for link in $links; do
    bench_start_kubesim "$link" "$work/state" --nodes 1
    bench_create_pod "$static_dir"
    # Round-robin: round 1 of every tool, then round 2, ... so drifting load hits all alike.
    for ((round = 0; round < runs; round++)); do
        measure "$link: podpipe cp (in-pod podpipe)" "'$podpipe' cp '$tree' bench:/data/out"
        measure "$link: podpipe cp --level auto" "'$podpipe' cp --level auto '$tree' bench:/data/out"
        measure "$link: podpipe cp --pod-binary none (pod's tar)" \
            "'$podpipe' cp --pod-binary none '$tree' bench:/data/out"
        measure "$link: tar czf - | kubectl exec -i -- tar xzf -" \
            "tar czf - -C '$tree' . | '$kubectl' exec -i bench -- sh -c 'mkdir -p /data/out && tar xzf - -C /data/out'"
        measure "$link: kubectl cp" "'$kubectl' cp '$tree' bench:/data/out"
    done
    bench_stop_kubesim
done

echo "## podpipe cp into a kubesim pod, $(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Tree: $tree — $files files, $((bytes / 1000000)) MB. Runs: $runs each, round-robin, warm cache;"
echo "pod volume on $( [ "${CP_BENCH_DISK:-0}" = 1 ] && echo "the VM's disk" || echo tmpfs)."
echo "kubectl: $("$kubectl" version --client 2>/dev/null | head -1). Link: kubesim --exec-bandwidth per direction, 2 ms latency when throttled."
echo
TREE_MB=$((bytes / 1000000)) python3 - "$results" <<'PY'
import os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(secs), int(rss)))
tree_mb = float(os.environ["TREE_MB"])
base = {}
print("| run | median s | min–max s | MB/s of tree | time ÷ podpipe's | peak RSS MiB (local) |")
print("|---|---:|---:|---:|---:|---:|")
for name, v in rows.items():
    group = name.split(":")[0]
    secs = [s for s, _ in v]
    med = statistics.median(secs)
    base.setdefault(group, med)
    rss = max(r for _, r in v) / 1024
    label = name.replace("|", "\\|")
    print(f"| {label} | {med:.2f} | {min(secs):.2f}–{max(secs):.2f} | {tree_mb / med:.0f} | "
          f"{med / base[group]:.2f} | {rss:.0f} |")
PY
