#!/usr/bin/env bash
# Peak RSS of podpipe pack and unpack when the other end of the pipe runs at a fixed rate
# (default 10 MB/s): memory must stay under --memory however slow the link.
# Usage: bench/e2e/slow_link.sh [TREE] [RATE]
# Proof that the link, not podpipe, set the pace: the pack rows show how long the send stages
# waited on the sink (--stats-json: the sink stage's busy time is time spent in write()), the
# unpack rows how long the source stage spent in read() waiting for input. Unpack from the
# slow pipe writes into a tmpfs (when root can mount one), so the link and not the disk is
# the slow side; a last row per budget unpacks a file at full speed onto the disk, where the
# disk is the slow sink.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tree=${1:-$root/build/bench-tree}
rate=${2:-10M}
podpipe=${PODPIPE:-$root/build/release/tools/podpipe/podpipe}
work=$(mktemp -d /var/tmp/podpipe-slow.XXXXXX)
fast=$work/tmpfs
cleanup() {
    mountpoint -q "$fast" 2>/dev/null && umount "$fast"
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$fast"
mount -t tmpfs -o size=2g podpipe-slow "$fast" 2>/dev/null || fast=$work
[ -d "$tree" ] || bash "$root/bench/e2e/make_tree.sh" "$tree"
tree=$(cd "$tree" && pwd -P) # du/find would not follow a symlinked tree
throttle="python3 $root/bench/e2e/throttle.py $rate"

# stage_ms FILE STAGE FIELD: one stage counter from --stats-json, in ms.
stage_ms() {
    python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(next(s[sys.argv[3]] for s in d["stages"] if s["name"] == sys.argv[2]) // 1000000)' "$@"
}

"$podpipe" pack "$tree" -o "$work/s.tgz" 2>/dev/null
echo "## slow link ($rate/s), $(date -u +%Y-%m-%d), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "Stream: $(($(stat -c %s "$work/s.tgz") / 1000000)) MB compressed; tree $(du -sb "$tree" | cut -f1) B" \
     "in $(find "$tree" -type f | wc -l) files."
echo
echo "| direction | --memory | seconds | peak RSS MiB | within budget | waited on the link s |"
echo "|---|---:|---:|---:|---|---:|"
for mem in 256M 64M 32M; do
    budget=$(( ${mem%M} * 1024 ))
    /usr/bin/time -f "%e %M" -o "$work/t" \
        "$podpipe" pack "$tree" --memory "$mem" --stats-json "$work/p.json" 2>/dev/null | $throttle >/dev/null
    read -r secs rss <"$work/t"
    waited=$(stage_ms "$work/p.json" sink busy_ns)
    echo "| pack → slow pipe | $mem | $secs | $((rss / 1024)) | $([ "$rss" -lt "$budget" ] && echo yes || echo NO) | $(python3 -c "print(f'{$waited/1000:.1f}')") |"
    rm -rf "$fast/out"
    $throttle <"$work/s.tgz" | /usr/bin/time -f "%e %M" -o "$work/t" \
        "$podpipe" unpack "$fast/out" --memory "$mem" --stats-json "$work/u.json" 2>/dev/null
    read -r secs rss <"$work/t"
    waited=$(stage_ms "$work/u.json" source busy_ns)
    echo "| slow pipe → unpack ($( [ "$fast" = "$work" ] && echo disk || echo tmpfs)) | $mem | $secs | $((rss / 1024)) | $([ "$rss" -lt "$budget" ] && echo yes || echo NO) | $(python3 -c "print(f'{$waited/1000:.1f}')") |"
    rm -rf "$fast/out" "$work/out"
    sync
    /usr/bin/time -f "%e %M" -o "$work/t" \
        "$podpipe" unpack "$work/out" -i "$work/s.tgz" --memory "$mem" 2>/dev/null
    read -r secs rss <"$work/t"
    echo "| file → unpack onto the disk (slow sink) | $mem | $secs | $((rss / 1024)) | $([ "$rss" -lt "$budget" ] && echo yes || echo NO) | – |"
    rm -rf "$work/out"
done
