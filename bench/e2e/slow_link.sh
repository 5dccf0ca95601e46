#!/usr/bin/env bash
# Peak RSS of podpipe pack and unpack when the other end of the pipe runs at 10 MB/s: memory
# must stay under --memory however slow the link. Usage: bench/e2e/slow_link.sh [TREE] [RATE]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
rate=${2:-10M}
podpipe=${PODPIPE:-$root/build/release/tools/podpipe/podpipe}
work=$(mktemp -d /var/tmp/podpipe-slow.XXXXXX)
trap 'rm -rf "$work"' EXIT
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"
throttle="python3 $root/bench/e2e/throttle.py $rate"

"$podpipe" pack "$tree" -o "$work/s.tgz" 2>/dev/null
echo "## slow link ($rate/s), $(date -u +%Y-%m-%d), $(nproc) cores"
echo
echo "Stream: $(($(stat -c %s "$work/s.tgz") / 1000000)) MB compressed, tree $(du -sm "$tree" | cut -f1) MiB."
echo
echo "| direction | --memory | seconds | peak RSS MiB | within budget |"
echo "|---|---:|---:|---:|---|"
for mem in 256M 64M; do
    /usr/bin/time -f "%e %M" -o "$work/t" "$podpipe" pack "$tree" --memory "$mem" 2>/dev/null | $throttle >/dev/null
    read -r secs rss <"$work/t"
    budget=$(( ${mem%M} * 1024 ))
    echo "| pack → slow pipe | $mem | $secs | $((rss / 1024)) | $([ "$rss" -lt "$budget" ] && echo yes || echo NO) |"
    rm -rf "$work/out"
    $throttle <"$work/s.tgz" | /usr/bin/time -f "%e %M" -o "$work/t" "$podpipe" unpack "$work/out" --memory "$mem" 2>/dev/null
    read -r secs rss <"$work/t"
    echo "| slow pipe → unpack | $mem | $secs | $((rss / 1024)) | $([ "$rss" -lt "$budget" ] && echo yes || echo NO) |"
done
