#!/usr/bin/env bash
# Runs every libFuzzer target in BUILD_DIR for SECONDS each, from a copy of its seed corpus.
# Usage: bash fuzz/run.sh build/fuzz 20
set -euo pipefail
build=${1:-build/fuzz}
seconds=${2:-20}
root=$(cd "$(dirname "$0")/.." && pwd)
# Every sanitizer finding fails the run. The fuzz preset builds with -fno-sanitize-recover=all;
# halt_on_error also stops a binary built without it, which would print a UBSan report and go
# on (so the run passed). A caller's own options come after, and win.
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export ASAN_OPTIONS="halt_on_error=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
status=0
while IFS= read -r -d '' exe; do
    name=$(basename "$exe")
    src=$(dirname "${exe#"$build"/}")
    corpus_src="$root/$src/corpus"
    work=$(mktemp -d)
    [ -d "$corpus_src" ] && cp -r "$corpus_src/." "$work/"
    echo "fuzz: $name for ${seconds}s (seeds: $(ls "$work" | wc -l))"
    if ! "$exe" -max_total_time="$seconds" -rss_limit_mb=2048 -artifact_prefix="$work/" -print_final_stats=0 "$work" >"$work.log" 2>&1; then
        echo "fuzz: $name FAILED; last lines:" >&2
        tail -n 40 "$work.log" >&2
        status=1
    else
        grep -E '^Done|^#[0-9]+.*DONE' "$work.log" | tail -n 1 || true
    fi
    rm -rf "$work" "$work.log"
done < <(find "$build/fuzz" -type f -name '*_fuzz' -perm -u+x -print0 | sort -z)
exit $status
