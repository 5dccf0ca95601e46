# Shared by the bench/e2e scripts that run on kubesim (source it; it defines functions only).
#   bench_find_kubectl            sets $kubectl (KUBECTL, the Cloud SDK 1.32 binary, or PATH's)
#   bench_require FILE...         fails with the build command when a binary is missing
#   bench_start_kubesim LINK DIR [ARGS...]
#                                 starts kubesim with its state under DIR/state-LINK, the exec
#                                 link throttled to LINK bytes/s per direction with
#                                 $bench_latency (default 2ms) unless LINK is "unlimited"; sets
#                                 $ks_pid and exports KUBECONFIG
#   bench_stop_kubesim            stops it (safe to call twice; use it in the EXIT trap)
#   bench_create_pod STATIC_DIR [NAME] [RESOURCES]   the pod NAME (default "bench"): debian:12 (kubesim maps it to the host root:
#                                 GNU tar, gzip, pigz), the static podpipe at /__e/podpipe, an
#                                 emptyDir at /data; waits until it runs

bench_find_kubectl() {
    local k
    for k in "${KUBECTL:-}" /usr/lib/google-cloud-sdk/bin/kubectl.1.32 /usr/bin/kubectl /usr/local/bin/kubectl; do
        [ -n "$k" ] && [ -x "$k" ] && { kubectl=$k; return 0; }
    done
    echo "kubectl not found (set KUBECTL)" >&2
    exit 1
}

bench_require() {
    local f
    for f in "$@"; do
        [ -x "$f" ] || { echo "missing $f: cmake --build --preset release (see BENCHMARKS.md)" >&2; exit 1; }
    done
}

ks_pid=
bench_start_kubesim() { # LINK DIR [EXTRA KUBESIM ARGS...]
    local link=$1 dir=$2
    shift 2
    mkdir -p "$dir"
    local args=(--dir "$dir/state-$link" --kubeconfig-out "$dir/kc-$link" "$@")
    [ "$link" = unlimited ] || args+=(--exec-bandwidth "$link" --exec-latency "${bench_latency:-2ms}")
    "$kubesim" "${args[@]}" >"$dir/kubesim-$link.log" 2>&1 &
    ks_pid=$!
    local _
    for _ in $(seq 100); do grep -qs 'listening on' "$dir/kubesim-$link.log" && break; sleep 0.1; done
    grep -qs 'listening on' "$dir/kubesim-$link.log" || {
        echo "kubesim did not start; its log:" >&2; cat "$dir/kubesim-$link.log" >&2; exit 1; }
    export KUBECONFIG=$dir/kc-$link
}

bench_stop_kubesim() {
    if [ -n "$ks_pid" ]; then kill -TERM "$ks_pid" 2>/dev/null || true; wait "$ks_pid" 2>/dev/null || true; fi
    ks_pid=
}

bench_create_pod() { # STATIC_DIR [NAME] [RESOURCES, e.g. "{limits: {cpu: 1}}"]
    local name=${2:-bench} resources=${3:-"{}"}
    "$kubectl" create --validate=false -f - >/dev/null <<YAML
apiVersion: v1
kind: Pod
metadata: {name: $name}
spec:
  containers:
  - name: main
    image: debian:12
    command: [sleep, "1000000"]
    resources: $resources
    volumeMounts:
    - {name: bin, mountPath: /__e/podpipe, readOnly: true}
    - {name: data, mountPath: /data}
  volumes:
  - {name: bin, hostPath: {path: $1}}
  - {name: data, emptyDir: {}}
YAML
    local _
    for _ in $(seq 100); do
        [ "$("$kubectl" get pod "$name" -o jsonpath='{.status.phase}')" = Running ] && return 0
        sleep 0.1
    done
    echo "pod $name did not start" >&2
    exit 1
}

bench_median_table() { # RESULTS_TSV: "name<TAB>seconds" lines -> a Markdown table per name
    python3 - "$1" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, secs = line.rstrip("\n").split("\t")
    rows.setdefault(name, []).append(float(secs))
print("| run | median s | min–max s |")
print("|---|---:|---:|")
for name, v in rows.items():
    print(f"| {name} | {statistics.median(v):.2f} | {min(v):.2f}–{max(v):.2f} |")
PY
}

# bench_kubesim_work NAME SIZE [disk]: sets $work (a new /var/tmp/podpipe-NAME.* directory) with
# $work/state on a tmpfs of SIZE (kubesim's state and pods, local targets), unless the third
# argument is "disk"; on exit kubesim is stopped and both go away. This VM's ext4+discard would
# otherwise measure the disk (BENCHMARKS.md, cp_kubesim).
bench_kubesim_work() {
    work=$(mktemp -d "/var/tmp/podpipe-$1.XXXXXX")
    mkdir -p "$work/state"
    [ "${3:-}" = disk ] || mount -t tmpfs -o "size=$2" "podpipe-$1" "$work/state"
    # `|| true`: under set -e a failing umount (nothing mounted: disk) would end the trap early.
    trap 'bench_stop_kubesim; umount "$work/state" 2>/dev/null || true; rm -rf "$work"' EXIT
}

# bench_tree_facts TREE: sets $files and $bytes of TREE and reads it once into the page cache.
bench_tree_facts() {
    files=$(find "$1" -type f | wc -l)
    bytes=$(du -sb "$1" | cut -f1)
    tar cf - -C "$1" . | cat >/dev/null
}
