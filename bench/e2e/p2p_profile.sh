#!/usr/bin/env bash
# Where the CPU goes in one copy between pods, podpipe against plain tar, on kubesim.
#
#   bash bench/e2e/p2p_profile.sh [TREE]      (default: the synthetic tree of bench/e2e/suite.sh)
#
# One kubesim (link: $LINK, default unlimited) with the pods "bench" and "bench2" of lib.sh;
# TREE is put into bench:/data/src first. Then each of
#   podpipe cp bench:/data/src bench2:/data/out
#   kubectl exec bench -- tar cf - | kubectl exec -i bench2 -- tar xf -
# runs once under a system-wide `perf record` (cpu-clock at 1 kHz: a sample is 1 ms of a core).
# Printed per tool: wall time, then CPU seconds per process (kubesim, the client, the in-pod
# processes: pods share the host's PID namespace and CPUs under kubesim) with each process's
# hottest symbols. The in-pod podpipe is resolved against $BUILD/static/podpipe.
# Needs perf (Debian: linux-perf) and root (kubesim); the run directory is kept for perf report.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$root/build/release}
kubesim=$build/tools/kubesim/kubesim
podpipe=$build/tools/podpipe/podpipe
tree=${1:-$root/build/trees/synthetic-files-20000-size-250M-dist-source}
link=${LINK:-unlimited}
die() { echo "p2p_profile: $*" >&2; exit 1; }
command -v perf >/dev/null || die "needs perf (apt-get install linux-perf)"
[ -d "$tree" ] || die "no tree at $tree (see BENCHMARKS.md for make_synthetic)"
# shellcheck source=bench/e2e/lib.sh
source "$root/bench/e2e/lib.sh"
bench_find_kubectl

work=$(mktemp -d /var/tmp/p2p-profile.XXXXXX)
mkdir -p "$work/fs" "$work/symfs/__e/podpipe"
mount -t tmpfs -o size=6g p2p-profile "$work/fs"
trap 'bench_stop_kubesim; umount "$work/fs"; echo "perf data kept in $work"' EXIT
# perf resolves every binary under --symfs: the in-pod podpipe at its pod path, the rest as on
# the host.
cp "$build/static/podpipe" "$work/symfs/__e/podpipe/podpipe"
for d in /*; do [ "$d" = /__e ] || ln -s "$d" "$work/symfs/${d#/}"; done
bench_start_kubesim "$link" "$work/fs" --nodes 1
bench_create_pod "$build/static"
bench_create_pod "$build/static" bench2
"$podpipe" cp --level 1 "$tree" bench:/data/src >/dev/null

# Samples of one recording grouped by process: CPU seconds and the top symbols of each.
summarise() { # DATA
    local data=$1
    # pid, samples, its most frequent comm; the 8 busiest processes with >= 20 ms.
    perf script -i "$data" -F comm,pid 2>/dev/null |
        awk '{n[$2]++; c[$2 " " $1]++} END {for (k in c) {split(k, a, " ");
             if (c[k] > best[a[1]]) {best[a[1]] = c[k]; name[a[1]] = a[2]}}
             for (p in n) if (n[p] >= 20) print n[p], p, name[p]}' |
        sort -rn | awk 'NR <= 8' >"$data.pids"
    while read -r samples pid comm; do
        awk -v s="$samples" -v p="$pid" -v c="$comm" \
            'BEGIN {printf "  %-13s pid %-7s %5.2f CPU-s:", c, p, s / 1000}'
        perf report -i "$data" --symfs="$work/symfs" --kallsyms=/proc/kallsyms --no-children \
            --pid "$pid" --sort sym -g none --stdio 2>/dev/null |
            awk '/^ +[0-9.]+%/ && n < 3 {
                     sub(/^ +[0-9.]+% +\[[^]]*\] +/, ""); print substr($0, 1, 48); n++}' |
            paste -sd ';' | sed 's/^/ /'
    done <"$data.pids"
}

profile() { # LABEL COMMAND
    "$kubectl" exec bench2 -- rm -rf /data/out
    local t0 t1
    t0=$(date +%s.%N)
    perf record -F 1000 -a -o "$work/$1.data" -- bash -c "$2" >"$work/$1.out" 2>&1 ||
        { cat "$work/$1.out" >&2; die "$1 failed (its output above)"; }
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" -v l="$1" \
        'BEGIN {printf "%s: %.2f s wall (perf included)\n", l, b - a}'
    summarise "$work/$1.data"
}

profile podpipe "'$podpipe' cp bench:/data/src bench2:/data/out"
profile tar "'$kubectl' exec bench -- tar cf - -C /data/src . |
    '$kubectl' exec -i bench2 -- sh -c 'mkdir -p /data/out && tar xf - -C /data/out'"
