#!/usr/bin/env bash
# End-to-end: podpipe pack/unpack against the tools people use today, same warm tree, one run.
# Usage: bench/e2e/pack_unpack.sh [TREE] [RUNS]
#   TREE defaults to build/bench-tree (made by make_tree.sh if missing); RUNS defaults to 5.
#   PODPIPE selects the binary; TMPFS=0 skips the tmpfs rows (they need root for mount);
#   ONLY=pack (or unpack, pipe, unpack→tmpfs, pipe→tmpfs) runs just that group of rows.
# Prints markdown tables: median wall time, min-max, ratio to podpipe, median CPU time
# (user+sys of the whole pipeline: load-insensitive), peak RSS, output size.
#
# The runs are interleaved (round 1 of every command, then round 2, ...) so that load from
# other work on the machine falls on all commands alike; compare ratios within one run only.
# Unpack and pipe rows appear twice: into a directory on the disk (the real case, but on a VM
# disk dominated by creating and later discarding 20k files) and into a tmpfs (the engine
# without the disk).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-5}
podpipe=${PODPIPE:-$root/build/release/tools/podpipe/podpipe}
threads=$(nproc)
work=$(mktemp -d /var/tmp/podpipe-bench.XXXXXX)
mnt=$work/tmpfs
cleanup() {
    mountpoint -q "$mnt" 2>/dev/null && umount "$mnt"
    rm -rf "$work"
}
trap cleanup EXIT

[ -x "$podpipe" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"
tree=$(cd "$tree" && pwd -P) # du/find would not follow a symlinked tree
command -v pigz >/dev/null || apt-get install -y -qq pigz >/dev/null

use_tmpfs=${TMPFS:-1}
if [ "$use_tmpfs" = 1 ]; then
    mkdir -p "$mnt"
    mount -t tmpfs -o size=2g,mode=0755 podpipe-bench "$mnt" 2>/dev/null || {
        echo "note: cannot mount a tmpfs (not root?); skipping the tmpfs rows" >&2
        use_tmpfs=0
    }
fi

files=$(find "$tree" -type f | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
# Warm the page cache.
tar cf - -C "$tree" . | cat >/dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

P="$podpipe"
# Inputs for the unpack-only comparisons.
"$P" pack "$tree" -o "$work/podpipe.tgz" 2>/dev/null
tar czf "$work/tar.tgz" -C "$tree" .
tar cf - -C "$tree" . | pigz -p "$threads" -1 >"$work/pigz1.tgz"

names=() cmds=() outs=()
# add NAME OUTDIR CMD: OUTDIR (may be empty) is emptied before each run; CMD may use $out.
add() {
    [ -z "${ONLY:-}" ] || [ "${1%%:*}" = "$ONLY" ] || return 0
    names+=("$1"); outs+=("$2"); cmds+=("$3")
}

d=$work/out
add "pack: podpipe (level 1)"              "" "'$P' pack '$tree' -o /dev/null"
add "pack: tar cf - | pigz -p $threads -1" "" "tar cf - -C '$tree' . | pigz -p $threads -1 >/dev/null"
add "pack: tar czf -"                      "" "tar czf - -C '$tree' . >/dev/null"
add "unpack: podpipe (podpipe stream)"     "$d" "'$P' unpack '$d' -i '$work/podpipe.tgz'"
add "unpack: tar xzf - (podpipe stream)"   "$d" "tar xzf - -C '$d' <'$work/podpipe.tgz'"
add "unpack: tar xzf - (tar czf stream)"   "$d" "tar xzf - -C '$d' <'$work/tar.tgz'"
add "unpack: pigz -d | tar xf - (pigz -1 stream)" "$d" "pigz -d <'$work/pigz1.tgz' | tar xf - -C '$d'"
add "pipe: podpipe pack | podpipe unpack"  "$d" "'$P' pack '$tree' | '$P' unpack '$d'"
add "pipe: tar czf - | tar xzf -"          "$d" "tar czf - -C '$tree' . | tar xzf - -C '$d'"
add "pipe: tar | pigz -1 | pigz -d | tar"  "$d" "tar cf - -C '$tree' . | pigz -p $threads -1 | pigz -d | tar xf - -C '$d'"
add "pipe: tar cf - | tar xf - (no compression)" "$d" "tar cf - -C '$tree' . | tar xf - -C '$d'"
if [ "$use_tmpfs" = 1 ]; then
    d=$mnt/out
    add "unpack→tmpfs: podpipe (podpipe stream)"   "$d" "'$P' unpack '$d' -i '$work/podpipe.tgz'"
    add "unpack→tmpfs: tar xzf - (podpipe stream)" "$d" "tar xzf - -C '$d' <'$work/podpipe.tgz'"
    add "unpack→tmpfs: tar xzf - (tar czf stream)" "$d" "tar xzf - -C '$d' <'$work/tar.tgz'"
    add "unpack→tmpfs: pigz -d | tar xf - (pigz -1 stream)" "$d" "pigz -d <'$work/pigz1.tgz' | tar xf - -C '$d'"
    add "pipe→tmpfs: podpipe pack | podpipe unpack" "$d" "'$P' pack '$tree' | '$P' unpack '$d'"
    add "pipe→tmpfs: tar | pigz -1 | pigz -d | tar" "$d" "tar cf - -C '$tree' . | pigz -p $threads -1 | pigz -d | tar xf - -C '$d'"
fi

results=$work/results.tsv
: >"$results"
for ((i = 0; i < runs; i++)); do
    for j in "${!names[@]}"; do
        out=${outs[$j]}
        if [ -n "$out" ]; then
            rm -rf "$out" && mkdir -p "$out"
            sync
        fi
        # %e wall, %M peak RSS (KiB, the largest process), %U+%S CPU of the whole pipeline.
        /usr/bin/time -f "%e %M %U %S" -o "$work/time" bash -c "${cmds[$j]}" >/dev/null 2>"$work/err" || {
            echo "FAILED: ${names[$j]}" >&2; cat "$work/err" >&2; exit 1; }
        read -r secs rss usr sys <"$work/time"
        printf '%s\t%s\t%s\t%s\n' "${names[$j]}" "$secs" "$rss" "$(python3 -c "print($usr+$sys)")" >>"$results"
    done
done
rm -rf "$work/out" "$mnt/out"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "## pack / unpack, $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(uname -r)"
echo
echo "Tree: $tree — $files files, $((bytes / 1000000)) MB. Runs: $runs each, interleaved, warm cache."
echo "Load average (1, 5, 15 min) before: $load_before; after: $load_after."
echo
echo "Output sizes: podpipe level 1: $(stat -c %s "$work/podpipe.tgz") B;" \
     "pigz -1: $(stat -c %s "$work/pigz1.tgz") B; tar czf (gzip -6): $(stat -c %s "$work/tar.tgz") B;" \
     "podpipe/pigz-1 = $(python3 -c "print(f'{$(stat -c %s "$work/podpipe.tgz")/$(stat -c %s "$work/pigz1.tgz"):.3f}')")"
echo
TREE_MB=$((bytes / 1000000)) python3 - "$results" <<'PY'
import os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs, rss, cpu = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(secs), int(rss), float(cpu)))
tree_mb = float(os.environ["TREE_MB"])
base = {}  # the first row of each group (pack/unpack/pipe...) is podpipe's
print("| run | median s | min–max s | MB/s of tree | time ÷ podpipe's | CPU s (user+sys) | CPU ÷ podpipe's | peak RSS MiB |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for name, v in rows.items():
    group = name.split(":")[0]
    secs = [s for s, _, _ in v]
    cpus = [c for _, _, c in v]
    med = statistics.median(secs)
    cmed = statistics.median(cpus)
    base.setdefault(group, (med, cmed))
    rss = max(r for _, r, _ in v) / 1024
    label = name.replace("|", "\\|")
    print(f"| {label} | {med:.2f} | {min(secs):.2f}–{max(secs):.2f} | {tree_mb / med:.0f} | "
          f"{med / base[group][0]:.2f} | {cmed:.2f} | {cmed / base[group][1]:.2f} | {rss:.0f} |")
PY
