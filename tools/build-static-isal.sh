#!/usr/bin/env bash
# Builds ISA-L as a static library from Debian's own source package (the version of the
# installed libisal-dev, whose headers podpipe compiles against), for the fully static in-pod
# podpipe: Debian ships libisal only as a shared library, and without it the pod's sender
# compresses level 1 with libdeflate, ~2.4x slower per core (BENCHMARKS.md).
#
#   bash tools/build-static-isal.sh [OUT_DIR]     # default: build/third_party/isa-l
#
# Writes OUT_DIR/isa-l.a and OUT_DIR/VERSION; does nothing when they match the installed
# libisal-dev already. Needs nasm and make (tools/install-deps.sh), network access to the
# Debian archive, and no change to the system's apt sources (a private deb-src list is used).
# CMake picks the library up by itself (PODPIPE_STATIC_ISAL); without it the static podpipe
# still builds, with libdeflate at level 1.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/build/third_party/isa-l}

version=$(dpkg-query -W -f='${Version}' libisal-dev 2>/dev/null) || {
    echo "build-static-isal: libisal-dev is not installed (tools/install-deps.sh)" >&2
    exit 1
}
if [ -f "$out/isa-l.a" ] && [ "$(cat "$out/VERSION" 2>/dev/null)" = "$version" ]; then
    echo "build-static-isal: $out/isa-l.a ($version) is up to date" >&2
    exit 0
fi
command -v nasm >/dev/null || { echo "build-static-isal: nasm is missing (tools/install-deps.sh)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
. /etc/os-release
mkdir -p "$work/apt/lists/partial" "$work/src"
cat > "$work/apt/src.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: ${VERSION_CODENAME}
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
apt_private=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$work/apt"
             -o "Dir::State::Lists=$work/apt/lists" -o APT::Sandbox::User=root)
echo "build-static-isal: fetching Debian's libisal $version source" >&2
apt-get -qq "${apt_private[@]}" update
(cd "$work/src" && apt-get -qq "${apt_private[@]}" source --download-only "libisal=$version")
upstream=${version%-*}
tar -xf "$work/src/libisal_${upstream}.orig.tar."* -C "$work/src"
srcdir=$(find "$work/src" -mindepth 1 -maxdepth 1 -type d -name '*isa*l*' | head -1)
# Debian's only patch is for s390x; the x86-64 build uses the upstream tree as is.
echo "build-static-isal: building $srcdir" >&2
make -s -C "$srcdir" -f Makefile.unx -j"$(nproc)" lib >"$work/build.log" 2>&1 || {
    tail -30 "$work/build.log" >&2
    exit 1
}
install -D -m 0644 "$srcdir/bin/isa-l.a" "$out/isa-l.a"
echo "$version" > "$out/VERSION"
echo "build-static-isal: wrote $out/isa-l.a ($version)" >&2
