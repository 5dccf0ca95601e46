#!/usr/bin/env bash
# Installs everything podpipe needs to build, test, fuzz and benchmark on Debian 12.
# Safe to run again; does nothing for packages already installed.
set -euo pipefail

packages=(
    build-essential cmake ninja-build pkg-config git ca-certificates
    liburing-dev libdeflate-dev libisal-dev libboost1.81-dev libssl-dev libsimdjson-dev
    libbenchmark-dev libgtest-dev libgmock-dev libxxhash-dev libcli11-dev zlib1g-dev libyaml-cpp-dev
    clang-14 libclang-rt-14-dev
    nasm   # ISA-L's assembly, built static for the in-pod podpipe (build-static-isal.sh)
    # real tools the interop tests and benchmarks talk to
    tar gzip busybox-static pigz xz-utils time iproute2 util-linux procps
    python3-kubernetes  # a third client for kubesim's conformance tests, beside kubectl and client-node
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    echo "install-deps: installing ${missing[*]}" >&2
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
    echo "install-deps: all packages present" >&2
fi

# The in-pod podpipe is linked fully static; Debian has no static ISA-L, so it is built from
# Debian's source package (seconds; once per libisal-dev version). Without it the pod's level 1
# falls back to libdeflate: slower, not broken, so a failure here only warns.
bash "$(dirname "$0")/build-static-isal.sh" ||
    echo "install-deps: WARNING: no static ISA-L; the in-pod podpipe compresses level 1 with libdeflate" >&2
