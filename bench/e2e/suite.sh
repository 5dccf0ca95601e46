#!/usr/bin/env bash
# The issue 7 suite: every figure of BENCHMARKS.md's "Link models" section in one command.
# On kubesim, with the exec link modelled at each of LINKS, copies each tree into a debian:12 pod
# with podpipe (default and tuned settings, and a sweep of compression levels) and with the
# peers people use today, then measures the best components in isolation to draw the physical
# limit, and writes tables (markdown), raw data and gnuplot plots (SVG + PNG) to OUT.
#
# Usage: bench/e2e/suite.sh [OUT]            OUT default bench/results
# Environment (defaults = the full suite; see BENCHMARKS.md for the small validation run):
#   RUNS=3                        runs per measurement (round-robin; median, min-max)
#   LINKS="unlimited 125M 25M 6.25M"  kubesim --exec-bandwidth per direction (bytes/s):
#                                 unlimited, 1 Gbit/s, 200 Mbit/s, 50 Mbit/s
#   LATENCY=2ms                   kubesim --exec-latency for the throttled links
#   TREES="source node_modules synthetic"
#   SOURCE_TREE=build/bench-tree  made by make_tree.sh if missing (~245 MB, ~20k files)
#   NODE_TREE=build/trees/node_modules   made by make_node_modules.sh if missing
#   SYNTH_SPEC=files=20000,size=250M,dist=source   `podpipe bench --synthetic` spec
#   SYNTH_TREE=build/trees/synthetic-<spec>          made by make_synthetic if missing
#   LEVELS="0 1 2 3 6 7 9"          levels swept with podpipe cp (throughput vs level plot)
#   LEVEL_TREES=source            trees the level sweep runs on
#   PEERS="kubectl-cp tar-czf tar-pigz hook-method"   peers measured (all by default)
#   HOOK_RUNS=$RUNS               runs of the existing hook's method (100-250 s each on the
#                                 full trees, 40-100x podpipe's time: 1 run already decides it)
#   OUT_TREES=$TREES              trees also copied out of the pod (the way back: podpipe cp
#                                 default and tuned, and OUT_PEERS)
#   OUT_PEERS="kubectl-cp tar-czf tar-pigz"   peers measured out of the pod
#   P2P_TREES=$TREES              trees also copied from one pod to another (the hook's container
#                                 steps copy this way: through the client, one exec per pod):
#                                 podpipe cp POD:DIR POD:DIR default and tuned, and P2P_PEERS
#   P2P_PEERS="tar tar-czf tar-pigz"  peers between pods: kubectl exec tar cf | kubectl exec -i
#                                 tar xf (uncompressed, gzip, pigz); kubectl cp has no pod to pod
#   TUNED_unlimited="--level 1" TUNED_125M="--level 1" TUNED_25M="--level 1"
#   TUNED_6_25M="--level 7"       podpipe's tuned flags per link ('.' in the link name -> '_'):
#                                 the fixed level the default (--level auto) should find
#   COMPONENTS_ONLY=1             re-measure only the components (the limit line) into an
#                                 earlier run's OUT and redo its report
#   P2P_ONLY=1                    measure only the copies between pods into an earlier run's OUT
#                                 (its components give the limit line) and redo its report
# Needs root (kubesim's mount namespaces), kubectl, pigz, gnuplot (apt-get install gnuplot-nox),
# npm (node_modules tree), and the release build: podpipe, static podpipe, kubesim,
# make_synthetic (cmake --build build/release --target podpipe podpipe_static kubesim
# make_synthetic).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=${1:-$root/bench/results}
runs=${RUNS:-3}
links=${LINKS:-unlimited 125M 25M 6.25M}
latency=${LATENCY:-2ms}
trees=${TREES:-source node_modules synthetic}
levels=${LEVELS:-0 1 2 3 6 7 9}
level_trees=${LEVEL_TREES:-source}
peers=${PEERS:-kubectl-cp tar-czf tar-pigz hook-method}
hook_runs=${HOOK_RUNS:-$runs}
out_trees=${OUT_TREES-$trees}
out_peers=${OUT_PEERS-kubectl-cp tar-czf tar-pigz}
p2p_trees=${P2P_TREES-$trees}
p2p_peers=${P2P_PEERS-tar tar-czf tar-pigz}
synth_spec=${SYNTH_SPEC:-files=20000,size=250M,dist=source}
build=${BUILD:-$root/build/release}
podpipe=$build/tools/podpipe/podpipe
kubesim=$build/tools/kubesim/kubesim
make_synthetic=$build/bench/tools/make_synthetic/make_synthetic
static_dir=$build/static
. "$root/bench/e2e/lib.sh"
bench_find_kubectl
bench_require "$podpipe" "$kubesim" "$static_dir/podpipe" "$make_synthetic"
bench_latency=$latency
for c in pigz gnuplot python3 bc; do
    command -v "$c" >/dev/null || { echo "missing $c (apt-get install ${c/gnuplot/gnuplot-nox})" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "needs root (kubesim)" >&2; exit 1; }

# ---- the trees ----
declare -A tree_dir
for t in $trees; do
    case $t in
    source)
        tree_dir[$t]=${SOURCE_TREE:-$root/build/bench-tree}
        [ -d "${tree_dir[$t]}" ] || bash "$root/bench/e2e/make_tree.sh" "${tree_dir[$t]}" ;;
    node_modules)
        tree_dir[$t]=${NODE_TREE:-$root/build/trees/node_modules}
        [ -d "${tree_dir[$t]}" ] || bash "$root/bench/e2e/make_node_modules.sh" "${tree_dir[$t]}" ;;
    synthetic)
        tree_dir[$t]=${SYNTH_TREE:-$root/build/trees/synthetic-${synth_spec//[,=]/-}}
        [ -d "${tree_dir[$t]}" ] || "$make_synthetic" "$synth_spec" "${tree_dir[$t]}" ;;
    *) echo "unknown tree $t (source, node_modules, synthetic)" >&2; exit 2 ;;
    esac
    tree_dir[$t]=$(cd "${tree_dir[$t]}" && pwd)
done

work=$(mktemp -d /var/tmp/podpipe-suite.XXXXXX)
# Everything written (the pod's emptyDir, local extractions, packed streams) on a tmpfs: this
# VM's ext4+discard would measure the disk (see the cp_kubesim section of BENCHMARKS.md).
mkdir -p "$work/fs" && mount -t tmpfs -o size=${SUITE_TMPFS:-6g} podpipe-suite "$work/fs"
trap 'bench_stop_kubesim; umount "$work/fs" 2>/dev/null; rm -rf "$work"' EXIT
mkdir -p "$out/stats" "$work/stats"
results=$work/results.tsv      # link tree tool run wall local_cpu cluster_cpu rss_kib
results_out=$work/results_out.tsv # the same + entries that arrived, copies out of the pod
results_p2p=$work/results_p2p.tsv # the same + entries that arrived, copies between pods
components=$work/components.tsv # tree component run wall cpu rss_kib bytes
: >"$results"
: >"$results_out"
: >"$results_p2p"
: >"$components"
declare -A tree_files tree_bytes
for t in $trees; do
    tree_files[$t]=$(find "${tree_dir[$t]}" ! -type d | wc -l)
    tree_bytes[$t]=$(du -sb --apparent-size "${tree_dir[$t]}" | cut -f1)
done
warm() { tar cf - -C "$1" . | cat >/dev/null; } # the page cache holds every tree (warm runs)
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }
t_start=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

p2p_only=${P2P_ONLY:-0}
if [ "$p2p_only" = 1 ]; then
    for f in results.tsv components.tsv meta.tsv tuned.tsv; do
        [ -f "$out/$f" ] || { echo "P2P_ONLY=1 needs an earlier run in $out (no $f)" >&2; exit 1; }
    done
    [ -n "$p2p_trees" ] || { echo "P2P_ONLY=1 with no P2P_TREES" >&2; exit 1; }
fi

# ---- 1. the best components in isolation (for the physical-limit line) ----
# read: walk + read the tree, no compression, nothing written (podpipe pack -l 0, tar cf | cat;
# the faster counts); packed bytes per level: podpipe pack -l L to a file (also the local pack
# rate per level); extraction: podpipe unpack of the level-1 stream from a file into the tmpfs.
component() { # TREE NAME RUN CMD [BYTES_FILE]
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" bash -c "$4" >/dev/null 2>"$work/err" || {
        echo "FAILED: $2 on $1" >&2; cat "$work/err" >&2; exit 1; }
    read -r secs user sys rss <"$work/time"
    local bytes=0
    [ -n "${5:-}" ] && bytes=$(stat -c %s "$5")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$secs" "$(echo "$user + $sys" | bc)" "$rss" "$bytes" >>"$components"
}
for t in $trees; do
    [ "$p2p_only" = 1 ] && break
    d=${tree_dir[$t]}
    warm "$d"
    log "components: $t"
    for ((r = 0; r < runs; r++)); do
        component "$t" "read: podpipe pack -l 0 >/dev/null" "$r" "'$podpipe' pack -l 0 '$d' -o /dev/null"
        component "$t" "read: tar cf - | cat >/dev/null" "$r" "tar cf - -C '$d' . | cat >/dev/null"
        for l in $levels; do
            component "$t" "pack -l $l" "$r" "'$podpipe' pack -l $l '$d' -o '$work/fs/pack-$l.pp'" "$work/fs/pack-$l.pp"
        done
        rm -rf "$work/fs/x"
        component "$t" "extract: podpipe unpack (level 1)" "$r" "'$podpipe' unpack -i '$work/fs/pack-1.pp' '$work/fs/x'"
        rm -rf "$work/fs/x"
    done
    rm -f "$work/fs"/pack-*.pp
done

# COMPONENTS_ONLY=1: re-measure only the components above (the limit line) into an earlier
# run's OUT, keeping its transfers, and redo the report (meta.tsv notes when and under what load).
if [ "${COMPONENTS_ONLY:-0}" = 1 ]; then
    [ -f "$out/results.tsv" ] && [ -f "$out/meta.tsv" ] || {
        echo "COMPONENTS_ONLY=1 needs an earlier run in $out (results.tsv, meta.tsv)" >&2; exit 1; }
    { grep -v '^components_' "$out/meta.tsv"
      echo "components_date	$(date -u +%Y-%m-%dT%H:%MZ)"
      echo "components_load	$load_start, then $(cut -d' ' -f1-3 /proc/loadavg)"
    } >"$work/meta.tsv"
    cp "$work/components.tsv" "$work/meta.tsv" "$out/"
    python3 "$root/bench/e2e/suite_report.py" "$out"
    log "components re-measured in $(($(date +%s) - t_start)) s: $out/tables.md"
    exit 0
fi

# ---- 2. transfers into a pod, per link model ----
# CPU seconds of kubesim and everything it reaped (the pod's processes: tar, pigz, podpipe recv,
# sh, find, stat): utime+stime+cutime+cstime from /proc/PID/stat.
cluster_cpu() {
    local a
    read -r -a a < <(sed 's/^.*) //' "/proc/$ks_pid/stat")
    echo "(${a[11]} + ${a[12]} + ${a[13]} + ${a[14]}) / $(getconf CLK_TCK)" | bc -l
}

# The existing hook's method (spec/hook-behavior.md §4.1/§4.5, as bench/e2e/hook_kubesim.sh):
# uncompressed tar into tar xf, the two chmod finds, then the find/stat listing hashed on both
# sides (one stat process per file) and compared.
cat >"$work/hook_method.sh" <<'SH'
set -euo pipefail
tree=$1 kubectl=$2
tar cf - -C "$tree" . | "$kubectl" exec -i bench -- sh -c \
    "mkdir -p /data/out && tar xf - --no-same-owner -C /data/out 2>/dev/null; find /data/out -type f -exec chmod u+rw {} \\; 2>/dev/null; find /data/out -type d -exec chmod u+rwx {} \\; 2>/dev/null"
here=$(cd "$tree" && find . -type f -exec stat -c '%s %n' {} \; | sort | sha256sum)
there=$("$kubectl" exec bench -- sh -c "cd /data/out && find . -type f -exec stat -c '%s %n' {} \\;" | sort | sha256sum)
[ "$here" = "$there" ] || { echo "hook method: verification mismatch" >&2; exit 1; }
SH

# One timed copy. WAY: in (local -> /data/out of the pod "bench"), out (/data/src-TREE of
# "bench" -> $work/fs/back) or p2p (/data/src-TREE of "bench" -> /data/out of "bench2"; every
# byte crosses the link twice, out of one pod and into the other). The destination is emptied
# before (not timed) and its entries counted after: every tool must deliver all of them into
# the pod; out of a pod and between pods podpipe must, and a peer that drops some (kubectl cp
# skips symlinks on the way out) is recorded with its count (results_out/results_p2p) and
# reported so.
measure_copy() { # WAY LINK TREE TOOL RUN CMD
    local way=$1 c0 c1 got file=$results what
    shift
    case $way in
    in) "$kubectl" exec bench -- rm -rf /data/out; what="" ;;
    out) rm -rf "$work/fs/back" && mkdir -p "$work/fs/back"; file=$results_out; what=", out of the pod" ;;
    p2p) "$kubectl" exec bench2 -- rm -rf /data/out; file=$results_p2p; what=", pod to pod" ;;
    esac
    c0=$(cluster_cpu)
    /usr/bin/time -f "%e %U %S %M" -o "$work/time" bash -c "$5" >/dev/null 2>"$work/err" || {
        echo "FAILED: $3 ($1, $2$what)" >&2; cat "$work/err" >&2; exit 1; }
    c1=$(cluster_cpu)
    read -r secs user sys rss <"$work/time"
    case $way in
    in) got=$("$kubectl" exec bench -- sh -c 'find /data/out ! -type d | wc -l') ;;
    out) got=$(find "$work/fs/back" -mindepth 1 ! -type d | wc -l) ;;
    p2p) got=$("$kubectl" exec bench2 -- sh -c 'find /data/out ! -type d | wc -l') ;;
    esac
    [ "$got" = "${tree_files[$2]}" ] || { [ "$way" != in ] && [[ "$3" != podpipe* ]]; } || {
        echo "$3 ($1, $2$what): $got entries arrived, expected ${tree_files[$2]}" >&2; exit 1; }
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s' "$1" "$2" "$3" "$4" "$secs" "$(echo "$user + $sys" | bc)" \
        "$(echo "$c1 - $c0" | bc -l)" "$rss" >>"$file"
    if [ "$way" = in ]; then echo >>"$file"; else printf '\t%s\n' "$got" >>"$file"; fi
}
measure() { measure_copy in "$@"; }
measure_out() { measure_copy out "$@"; }
measure_p2p() { measure_copy p2p "$@"; }

copies_p2p() { # LINK TUNED
    local link=$1 tuned=$2 t r p src
    bench_create_pod "$static_dir" bench2
    for t in $p2p_trees; do
        "$kubectl" exec bench -- test -d "/data/src-$t" 2>/dev/null ||
            "$podpipe" cp --level 1 "${tree_dir[$t]}" "bench:/data/src-$t" >/dev/null 2>&1
    done
    for ((r = 0; r < runs; r++)); do
        for t in $p2p_trees; do
            src=/data/src-$t
            measure_p2p "$link" "$t" "podpipe cp" "$r" "'$podpipe' cp bench:$src bench2:/data/out"
            measure_p2p "$link" "$t" "podpipe cp tuned ($tuned)" "$r" "'$podpipe' cp $tuned bench:$src bench2:/data/out"
            for p in $p2p_peers; do
                case $p in
                tar) measure_p2p "$link" "$t" "kubectl exec tar cf | kubectl exec tar xf" "$r" \
                    "'$kubectl' exec bench -- tar cf - -C $src . | '$kubectl' exec -i bench2 -- sh -c 'mkdir -p /data/out && tar xf - -C /data/out'" ;;
                tar-czf) measure_p2p "$link" "$t" "kubectl exec tar czf | kubectl exec tar xzf" "$r" \
                    "'$kubectl' exec bench -- tar czf - -C $src . | '$kubectl' exec -i bench2 -- sh -c 'mkdir -p /data/out && tar xzf - -C /data/out'" ;;
                tar-pigz) measure_p2p "$link" "$t" "kubectl exec tar cf | pigz | kubectl exec pigz -d | tar xf" "$r" \
                    "'$kubectl' exec bench -- sh -c 'tar cf - -C $src . | pigz' | '$kubectl' exec -i bench2 -- sh -c 'mkdir -p /data/out && pigz -d | tar xf - -C /data/out'" ;;
                *) echo "unknown pod-to-pod peer $p" >&2; exit 2 ;;
                esac
            done
        done
    done
    "$kubectl" exec bench2 -- rm -rf /data/out
}

copies_out() { # LINK TUNED
    local link=$1 tuned=$2 t r p src back=$work/fs/back
    for t in $out_trees; do
        "$podpipe" cp --level 1 "${tree_dir[$t]}" "bench:/data/src-$t" >/dev/null 2>&1
    done
    for ((r = 0; r < runs; r++)); do
        for t in $out_trees; do
            src=/data/src-$t
            measure_out "$link" "$t" "podpipe cp" "$r" "'$podpipe' cp bench:$src '$back'"
            measure_out "$link" "$t" "podpipe cp tuned ($tuned)" "$r" "'$podpipe' cp $tuned bench:$src '$back'"
            for p in $out_peers; do
                case $p in
                kubectl-cp) measure_out "$link" "$t" "kubectl cp" "$r" "'$kubectl' cp bench:$src '$back'" ;;
                tar-czf) measure_out "$link" "$t" "kubectl exec tar czf | tar xzf" "$r" \
                    "'$kubectl' exec bench -- tar czf - -C $src . | tar xzf - -C '$back'" ;;
                tar-pigz) measure_out "$link" "$t" "kubectl exec tar cf | pigz | pigz -d | tar xf" "$r" \
                    "'$kubectl' exec bench -- sh -c 'tar cf - -C $src . | pigz' | pigz -d | tar xf - -C '$back'" ;;
                *) echo "unknown peer $p" >&2; exit 2 ;;
                esac
            done
        done
    done
}

for link in $links; do
    log "link $link"
    bench_start_kubesim "$link" "$work/fs" --nodes 1
    bench_create_pod "$static_dir"
    tv=TUNED_${link//./_}
    case $link in 6.25M) tuned_default="--level 7" ;; *) tuned_default="--level 1" ;; esac
    tuned=${!tv:-$tuned_default}
    echo "$link	$tuned" >>"$work/tuned.tsv"
    # Round-robin: round r of every tool on every tree, then round r+1, so drifting load from
    # other processes falls on all of them alike.
    for ((r = 0; r < runs; r++)); do
        [ "$p2p_only" = 1 ] && break
        for t in $trees; do
            d=${tree_dir[$t]}
            warm "$d"
            measure "$link" "$t" "podpipe cp" "$r" \
                "'$podpipe' cp --stats-json '$work/stats/$link-$t-$r.json' '$d' bench:/data/out"
            measure "$link" "$t" "podpipe cp tuned ($tuned)" "$r" "'$podpipe' cp $tuned '$d' bench:/data/out"
            for p in $peers; do
                case $p in
                kubectl-cp) measure "$link" "$t" "kubectl cp" "$r" "'$kubectl' cp '$d' bench:/data/out" ;;
                tar-czf) measure "$link" "$t" "tar czf | kubectl exec tar xzf" "$r" \
                    "tar czf - -C '$d' . | '$kubectl' exec -i bench -- sh -c 'mkdir -p /data/out && tar xzf - -C /data/out'" ;;
                tar-pigz) measure "$link" "$t" "tar cf | pigz | kubectl exec pigz -d | tar xf" "$r" \
                    "tar cf - -C '$d' . | pigz | '$kubectl' exec -i bench -- sh -c 'mkdir -p /data/out && pigz -d | tar xf - -C /data/out'" ;;
                hook-method)
                    ((r < hook_runs)) || continue
                    measure "$link" "$t" "existing hook's method" "$r" \
                    "bash '$work/hook_method.sh' '$d' '$kubectl'" ;;
                *) echo "unknown peer $p" >&2; exit 2 ;;
                esac
            done
        done
        for t in $level_trees; do
            [[ " $trees " == *" $t "* ]] || continue
            for l in $levels; do
                measure "$link" "$t" "podpipe cp --level $l" "$r" \
                    "'$podpipe' cp --level $l '${tree_dir[$t]}' bench:/data/out"
            done
        done
    done
    if [ -n "$out_trees" ] && [ "$p2p_only" != 1 ]; then
        log "link $link: out of the pod"
        copies_out "$link" "$tuned"
    fi
    if [ -n "$p2p_trees" ]; then
        log "link $link: pod to pod"
        copies_p2p "$link" "$tuned"
    fi
    "$kubectl" exec bench -- sh -c 'rm -rf /data/src-* /data/out'
    bench_stop_kubesim
done
t_end=$(date +%s)

# ---- 3. tables and plots ----
if [ "$p2p_only" = 1 ]; then
    { grep -v '^p2p_' "$out/meta.tsv"
      echo "p2p_date	$(date -u +%Y-%m-%dT%H:%MZ)"
      echo "p2p_commit	$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
      echo "p2p_load	$load_start, then $(cut -d' ' -f1-3 /proc/loadavg)"
      echo "p2p_seconds	$((t_end - t_start))"
    } >"$work/meta.tsv"
    cp "$work/results_p2p.tsv" "$work/meta.tsv" "$out/"
    python3 "$root/bench/e2e/suite_report.py" "$out"
    log "pod to pod measured in $((t_end - t_start)) s: $out/tables.md"
    exit 0
fi
{
    echo "date	$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "commit	$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo "cores	$(nproc)"
    echo "cpu	$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
    echo "mem_gib	$(awk '/MemTotal/ {printf "%.0f", $2 / 1048576}' /proc/meminfo)"
    echo "kernel	$(uname -r)"
    echo "kubectl	$("$kubectl" version --client 2>/dev/null | head -1 | sed 's/.*: //')"
    echo "load_start	$load_start"
    echo "load_end	$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "seconds	$((t_end - t_start))"
    echo "runs	$runs"
    echo "hook_runs	$hook_runs"
    echo "latency	$latency"
    echo "synth_spec	$synth_spec"
    # Which compressor the pod's sender uses at level 1 (a static ISA-L, or libdeflate).
    echo "pod_level1	$("$static_dir/podpipe" --version | sed -n 's/^gzip level 1: //p')"
    for t in $trees; do echo "tree	$t	${tree_dir[$t]}	${tree_files[$t]}	${tree_bytes[$t]}"; done
} >"$work/meta.tsv"
cp "$work/results.tsv" "$work/results_out.tsv" "$work/results_p2p.tsv" "$work/components.tsv" "$work/meta.tsv" "$work/tuned.tsv" "$out/"
rm -f "$out"/stats/*.json
cp "$work"/stats/*.json "$out/stats/" 2>/dev/null || true
python3 "$root/bench/e2e/suite_report.py" "$out"
log "done in $((t_end - t_start)) s: $out/tables.md and $out/*.svg, *.png"
