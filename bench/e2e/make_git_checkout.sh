#!/usr/bin/env bash
# Builds a checkout whose bytes are mostly git packfiles, as in a monorepo with binary assets
# in its history: Python 3.11's standard library without its bytecode as the source (~42 MB in
# ~900 files of code nobody here wrote), and a history of ASSET_VERSIONS commits that each
# replace an 8 MB binary asset (pseudo-random, so neither git's deltas nor DEFLATE shrink it),
# packed by `git gc`. With the default 48 versions .git is ~400 MB, ~90% of the tree.
# Deterministic content (seeded); the pack's bytes depend on the git version.
# Usage: bench/e2e/make_git_checkout.sh DEST [ASSET_VERSIONS]
set -euo pipefail
dest=${1:?usage: make_git_checkout.sh DEST [ASSET_VERSIONS]}
versions=${2:-48}
command -v git >/dev/null || apt-get install -y -qq --no-install-recommends git >/dev/null
rm -rf "$dest"
mkdir -p "$dest"
cp -a /usr/lib/python3.11 "$dest/src"
rm -rf "$dest/src/__pycache__" "$dest"/src/*/__pycache__
cd "$dest"
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
export GIT_AUTHOR_DATE=2026-01-01T00:00:00Z GIT_COMMITTER_DATE=2026-01-01T00:00:00Z
git init -q -b main .
git add -A && git commit -q -m "the sources"
mkdir -p assets
for ((v = 1; v <= versions; v++)); do
    python3 -c 'import random, sys; random.seed(int(sys.argv[1]))
sys.stdout.buffer.write(random.randbytes(8 << 20))' "$v" >assets/model.bin
    git add assets/model.bin && git commit -q -m "asset version $v"
done
git gc -q
files=$(find "$dest" -type f | wc -l)
bytes=$(du -sb "$dest" | cut -f1)
git_bytes=$(du -sb "$dest/.git" | cut -f1)
echo "checkout: $dest: $files files, $((bytes / 1000000)) MB," \
    ".git $((git_bytes / 1000000)) MB ($((100 * git_bytes / bytes))%)"
