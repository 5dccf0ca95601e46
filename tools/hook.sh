#!/bin/sh
# The runner starts container hooks by file extension (.js, .sh, .ps1): point
# ACTIONS_RUNNER_CONTAINER_HOOKS at this file. It execs podpipe-hook (beside it, or
# $PODPIPE_HOOK_BIN) so stdin, stdout, stderr, signals and the exit status pass through.
here=$(dirname "$0")
bin=${PODPIPE_HOOK_BIN:-$here/podpipe-hook}
if [ ! -x "$bin" ]; then
    echo "::error::podpipe hook shim: $bin is missing or not executable (install podpipe-hook beside $0 or set PODPIPE_HOOK_BIN)"
    exit 1
fi
exec "$bin" "$@"
