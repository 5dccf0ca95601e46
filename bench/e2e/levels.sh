#!/usr/bin/env bash
# How compression level and chunk size trade speed for size on one tree (chooses the defaults).
# Usage: bench/e2e/levels.sh [TREE] [RUNS]   (median of RUNS, default 3)
# Reports wall time and CPU time (user+sys, load-insensitive) of `podpipe pack` to a file and
# of `podpipe unpack` into a tmpfs (when root can mount one; else into a directory on disk),
# the output size and its ratio to pigz -1's output of the same tree.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
runs=${2:-3}
podpipe=${PODPIPE:-$root/build/release/tools/podpipe/podpipe}
work=$(mktemp -d /var/tmp/podpipe-levels.XXXXXX)
target=$work/tmpfs
cleanup() {
    mountpoint -q "$target" 2>/dev/null && umount "$target"
    rm -rf "$work"
}
trap cleanup EXIT
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"
tree=$(cd "$tree" && pwd -P)
mkdir -p "$target"
where="tmpfs"
mount -t tmpfs -o size=2g podpipe-levels "$target" 2>/dev/null || where="disk"
bytes=$(du -sb "$tree" | cut -f1)
tar cf - -C "$tree" . | cat >/dev/null
pigz_bytes=$(tar cf - -C "$tree" . | pigz -p "$(nproc)" -1 | wc -c)

# run_timed FILE CMD...: appends "wall_s cpu_s" of one run of CMD to FILE.
run_timed() {
    local file=$1 wall usr sys
    shift
    /usr/bin/time -f "%e %U %S" -o "$work/one" "$@" >/dev/null 2>&1
    read -r wall usr sys <"$work/one"
    python3 -c "print($wall, $usr + $sys)" >>"$file"
}
# med FILE COLUMN: median of one column of a run_timed file.
med() { python3 -c 'import statistics,sys; print(f"{statistics.median(float(l.split()[int(sys.argv[2])]) for l in open(sys.argv[1])):.2f}")' "$@"; }

echo "## level × chunk size, $(date -u '+%Y-%m-%d %H:%M') UTC, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Tree $tree: $((bytes / 1000000)) MB; pigz -1 output $pigz_bytes B. Median of $runs runs;" \
     "unpack into a $where directory."
echo
echo "| level | chunk | pack s | pack CPU s | pack MB/s | unpack s | unpack CPU s | output MB | tree ÷ output | output ÷ pigz -1's |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
row() {
    local level=$1 chunk=$2
    local p=$work/pack.times u=$work/unpack.times
    : >"$p"
    : >"$u"
    for ((i = 0; i < runs; i++)); do
        run_timed "$p" "$podpipe" pack "$tree" -l "$level" --chunk-size "$chunk" -o "$work/s.tgz"
        rm -rf "$target/out"
        run_timed "$u" "$podpipe" unpack "$target/out" -i "$work/s.tgz"
    done
    rm -rf "$target/out"
    local out mp
    out=$(stat -c %s "$work/s.tgz")
    mp=$(med "$p" 0)
    echo "| $level | $chunk | $mp | $(med "$p" 1) | $(python3 -c "print(round($bytes/1e6/$mp))") |" \
         "$(med "$u" 0) | $(med "$u" 1) | $(python3 -c "print(f'{$out/1e6:.1f}')") |" \
         "$(python3 -c "print(f'{$bytes/$out:.2f}')") | $(python3 -c "print(f'{$out/$pigz_bytes:.3f}')") |"
}
for level in 0 1 2 3 4 6 9; do
    row "$level" 1M
done
for chunk in 128K 256K 512K 2M 4M 8M; do
    row 1 "$chunk"
done
