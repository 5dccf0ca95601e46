#!/usr/bin/env bash
# Fails when a source file includes a header of a package above its own. Direction (README,
# "Layout"): tools -> hooks -> remote -> kube -> engine; kubesim (tools/kubesim) shares nothing
# with the rest but engine/common; engine/ knows nothing of Kubernetes.
# Usage: bash tools/check-layering.sh   (from anywhere; exit 1 and the offending lines)
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
# forbid DIR REGEX WHY: no #include under DIR (sources and headers) may match REGEX.
forbid() {
    local dir=$1 regex=$2 why=$3 hits
    hits=$(grep -rnE --include='*.cpp' --include='*.hpp' --include='*.h' \
        "^[[:space:]]*#[[:space:]]*include[[:space:]]+\"($regex)" "$dir" || true)
    if [ -n "$hits" ]; then
        echo "layering: $why" >&2
        echo "$hits" >&2
        status=1
    fi
}

forbid engine 'kube/|remote/|hooks/|tools/' "engine/ must not include kube, remote, hooks or tools"
forbid engine/transport 'engine/(io|tar|gzip|pipeline)/' \
    "engine/transport sits on engine/common only (the exec session is the sink/source)"
forbid kube 'remote/|hooks/|tools/' "kube/ must not include remote, hooks or tools"
forbid remote 'hooks/|tools/' "remote/ must not include hooks or tools"
forbid hooks 'tools/' "hooks/ must not include tools"
forbid tools/kubesim 'engine/(io|tar|gzip|pipeline|transport)/|kube/|remote/|hooks/|tools/podpipe/' \
    "kubesim shares nothing but engine/common"
forbid tools/podpipe 'hooks/' "the podpipe CLI must not depend on the hook package"

if grep -rniE 'kube|k8s|\bpods?\b|simdjson' engine/ >&2; then
    echo "layering: engine/ must not mention Kubernetes or simdjson (see STYLE.md)" >&2
    status=1
fi
[ "$status" = 0 ] && echo "layering: ok"
exit $status
