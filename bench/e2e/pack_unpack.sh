#!/usr/bin/env bash
# End-to-end: podpipe pack/unpack against the tools people use today, same warm tree, one run.
# Usage: bench/e2e/pack_unpack.sh [TREE] [RUNS]
#   TREE defaults to build/bench-tree (made by make_tree.sh if missing); RUNS defaults to 5.
# Prints markdown tables (median, min-max, ratio to podpipe, peak RSS, output size).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-5}
podpipe=${PODPIPE:-$root/build/release/tools/podpipe/podpipe}
threads=$(nproc)
work=$(mktemp -d /var/tmp/podpipe-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

[ -x "$podpipe" ] || { echo "build first: cmake --preset release && cmake --build --preset release" >&2; exit 1; }
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"
command -v pigz >/dev/null || apt-get install -y -qq pigz >/dev/null

files=$(find "$tree" -type f | wc -l)
bytes=$(du -sb "$tree" | cut -f1)
# Warm the page cache.
tar cf - -C "$tree" . | cat >/dev/null

results=$work/results.tsv
: >"$results"

# measure NAME CMD: runs CMD (bash -c) $runs times; records wall seconds and peak RSS (KiB,
# the largest process of the pipeline).
measure() {
    local name=$1 cmd=$2 i
    for ((i = 0; i < runs; i++)); do
        rm -rf "$work/out" && mkdir -p "$work/out"
        sync
        /usr/bin/time -f "%e %M" -o "$work/time" bash -c "$cmd" >/dev/null 2>"$work/err" || {
            echo "FAILED: $name" >&2; cat "$work/err" >&2; exit 1; }
        read -r secs rss <"$work/time"
        printf '%s\t%s\t%s\n' "$name" "$secs" "$rss" >>"$results"
    done
}

P="$podpipe"
# Inputs for the unpack-only comparisons.
"$P" pack "$tree" -o "$work/podpipe.tgz" 2>/dev/null
tar czf "$work/tar.tgz" -C "$tree" .
tar cf - -C "$tree" . | pigz -p "$threads" -1 >"$work/pigz1.tgz"

# pack to /dev/null
measure "pack: podpipe (level 1)"            "'$P' pack '$tree' -o /dev/null"
measure "pack: tar cf - | pigz -p $threads -1" "tar cf - -C '$tree' . | pigz -p $threads -1 >/dev/null"
measure "pack: tar czf -"                    "tar czf - -C '$tree' . >/dev/null"
# unpack
measure "unpack: podpipe (podpipe stream)"   "'$P' unpack '$work/out' -i '$work/podpipe.tgz'"
measure "unpack: tar xzf - (podpipe stream)" "tar xzf - -C '$work/out' <'$work/podpipe.tgz'"
measure "unpack: tar xzf - (tar czf stream)" "tar xzf - -C '$work/out' <'$work/tar.tgz'"
measure "unpack: pigz -d | tar xf - (pigz -1 stream)" "pigz -d <'$work/pigz1.tgz' | tar xf - -C '$work/out'"
# full pipe
measure "pipe: podpipe pack | podpipe unpack" "'$P' pack '$tree' | '$P' unpack '$work/out'"
measure "pipe: tar czf - | tar xzf -"         "tar czf - -C '$tree' . | tar xzf - -C '$work/out'"
measure "pipe: tar | pigz -1 | pigz -d | tar" "tar cf - -C '$tree' . | pigz -p $threads -1 | pigz -d | tar xf - -C '$work/out'"
measure "pipe: tar cf - | tar xf - (no compression)" "tar cf - -C '$tree' . | tar xf - -C '$work/out'"

echo "## pack / unpack, $(date -u +%Y-%m-%d), $(nproc) cores, $(uname -r)"
echo
echo "Tree: $tree — $files files, $((bytes / 1000000)) MB. Runs: $runs each, warm cache."
echo
echo "Output sizes: podpipe level 1: $(stat -c %s "$work/podpipe.tgz") B;" \
     "pigz -1: $(stat -c %s "$work/pigz1.tgz") B; tar czf (gzip -6): $(stat -c %s "$work/tar.tgz") B;" \
     "podpipe/pigz-1 = $(python3 -c "print(f'{$(stat -c %s "$work/podpipe.tgz")/$(stat -c %s "$work/pigz1.tgz"):.3f}')")"
echo
TREE_MB=$((bytes / 1000000)) python3 - "$results" <<'PY'
import os, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs, rss = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append((float(secs), int(rss)))
tree_mb = float(os.environ["TREE_MB"])
base = {}  # the first row of each group (pack/unpack/pipe) is podpipe's
print("| run | median s | min–max s | MB/s of tree | time ÷ podpipe's | peak RSS MiB |")
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
