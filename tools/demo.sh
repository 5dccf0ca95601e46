#!/usr/bin/env bash
# The main job on the embedded default: installs dependencies, builds podpipe, then moves a
# real tree (Debian's installed C/C++ headers) through `podpipe pack | podpipe unpack`,
# verifies it in-stream (manifest) and with diff, and prints the transfer summary.
# (Once kubesim lands, this runs the same transfer into a simulated pod.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target podpipe -j "$(nproc)"
pp=build/release/tools/podpipe/podpipe
src=${1:-/usr/include}
dst=$(mktemp -d /var/tmp/podpipe-demo.XXXXXX)
trap 'rm -rf "$dst"' EXIT
echo "demo: podpipe pack $src | podpipe unpack $dst/copy"
"$pp" pack "$src" --progress --stats-json "$dst/send.json" |
    "$pp" unpack "$dst/copy" --require-manifest
diff -r --no-dereference "$src" "$dst/copy" >/dev/null && echo "demo: diff -r: identical"
echo "demo: per-stage counters of the sender:"
cat "$dst/send.json"
