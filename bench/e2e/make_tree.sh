#!/usr/bin/env bash
# Builds the benchmark's "real source tree": header trees installed by Debian packages that
# nobody here wrote (Boost 1.81, LLVM 14, Linux UAPI and libstdc++ headers)
# and Python 3.11's standard library: ~245 MB in ~20k files. Deterministic for a given set of package versions.
# Usage: bench/e2e/make_tree.sh DEST
set -euo pipefail
dest=${1:?usage: make_tree.sh DEST}
pkgs=(libboost1.81-dev llvm-14-dev linux-libc-dev libstdc++-12-dev libpython3.11-stdlib)
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
rm -rf "$dest"
mkdir -p "$dest"
for d in boost llvm-14 linux c++; do
    cp -a "/usr/include/$d" "$dest/$d"
done
cp -a /usr/lib/python3.11 "$dest/python3.11"
files=$(find "$dest" -type f | wc -l)
bytes=$(du -sb "$dest" | cut -f1)
echo "tree: $dest: $files files, $((bytes / 1000000)) MB (packages: ${pkgs[*]})"
