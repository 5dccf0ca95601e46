#!/usr/bin/env bash
# The project's test command: installs dependencies, builds and runs the whole suite.
#   bash tools/test.sh            Release build + ctest
#   bash tools/test.sh --all      also the ASan+UBSan build, a short fuzz run, layering checks (CI)
set -euo pipefail
cd "$(dirname "$0")/.."

all=0
[ "${1:-}" = "--all" ] && all=1
jobs=$(nproc)

t0=$(date +%s)
# Each step says how long the run has taken so far (the CI has a 40-minute budget).
step() { printf '\n=== [%d s] %s\n' "$(($(date +%s) - t0))" "$*"; }

step "dependencies"
bash tools/install-deps.sh

step "layering: dependencies point one way (tools -> hooks -> remote -> kube -> engine)"
bash tools/check-layering.sh

step "release build"
cmake --preset release >/dev/null
cmake --build --preset release -j "$jobs"
step "release tests"
ctest --preset release

if [ "$all" = 1 ]; then
    step "asan+ubsan build"
    cmake --preset asan >/dev/null
    cmake --build --preset asan -j "$jobs"
    step "asan+ubsan tests"
    ctest --preset asan

    step "fuzz targets (clang libFuzzer), bounded run"
    cmake --preset fuzz >/dev/null
    cmake --build --preset fuzz -j "$jobs" --target podpipe_fuzz_targets
    bash fuzz/run.sh build/fuzz "${PODPIPE_FUZZ_SECONDS:-15}"
fi
echo
echo "tools/test.sh: all green in $(($(date +%s) - t0)) s"
