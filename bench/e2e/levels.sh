#!/usr/bin/env bash
# How compression level and chunk size trade speed for size on one tree (chooses defaults).
# Usage: bench/e2e/levels.sh [TREE] [RUNS]   (median of RUNS, default 3)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-3}
podpipe=${PODPIPE:-$root/build/release/tools/podpipe/podpipe}
work=$(mktemp -d /var/tmp/podpipe-levels.XXXXXX)
trap 'rm -rf "$work"' EXIT
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"
bytes=$(du -sb "$tree" | cut -f1)
tar cf - -C "$tree" . | cat >/dev/null

median() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(x) for x in sys.argv[1:]):.2f}")' "$@"; }

echo "## level × chunk size, $(date -u +%Y-%m-%d), $(nproc) cores, tree $((bytes / 1000000)) MB"
echo
echo "| level | chunk | pack s | pack MB/s | unpack s | output MB | ratio |"
echo "|---:|---:|---:|---:|---:|---:|---:|"
for chunk in 1M; do
    for level in 0 1 2 3 4 6 9; do
        p=() u=()
        for ((i = 0; i < runs; i++)); do
            s=$( { /usr/bin/time -f %e "$podpipe" pack "$tree" -l "$level" --chunk-size "$chunk" -o "$work/s.tgz" 2>/dev/null; } 2>&1 | tail -1)
            p+=("$s")
            rm -rf "$work/out"
            s=$( { /usr/bin/time -f %e "$podpipe" unpack "$work/out" -i "$work/s.tgz" 2>/dev/null; } 2>&1 | tail -1)
            u+=("$s")
        done
        out=$(stat -c %s "$work/s.tgz")
        mp=$(median "${p[@]}")
        echo "| $level | $chunk | $mp | $(python3 -c "print(round($bytes/1e6/$mp))") | $(median "${u[@]}") | $((out / 1000000)) | $(python3 -c "print(f'{$bytes/$out:.2f}')") |"
    done
done
for chunk in 256K 4M; do
    level=1
    p=()
    for ((i = 0; i < runs; i++)); do
        s=$( { /usr/bin/time -f %e "$podpipe" pack "$tree" -l "$level" --chunk-size "$chunk" -o "$work/s.tgz" 2>/dev/null; } 2>&1 | tail -1)
        p+=("$s")
    done
    out=$(stat -c %s "$work/s.tgz")
    mp=$(median "${p[@]}")
    echo "| $level | $chunk | $mp | $(python3 -c "print(round($bytes/1e6/$mp))") | – | $((out / 1000000)) | $(python3 -c "print(f'{$bytes/$out:.2f}')") |"
done
