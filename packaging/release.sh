#!/usr/bin/env bash
# Reproducible release builds of chatctl: one static binary per platform
# in dist/, with SHA256SUMS. The same commit built with the same Go
# version gives the same bytes on any machine, in any folder.
#
#   packaging/release.sh            # the eight platforms into dist/
#   packaging/release.sh --check    # build twice (the second time from a
#                                   # clone elsewhere, with an empty build
#                                   # cache) and compare the checksums
#   TARGETS="linux/amd64" packaging/release.sh
#
# Each binary is built with
#
#   CGO_ENABLED=0 go build -trimpath -buildvcs=true -ldflags='-s -w -buildid=' -o chatctl .
#
# CGO_ENABLED=0: no C toolchain or libc in the result; -trimpath: no
# build paths; -buildid= and -s -w: no build id or symbol tables that
# vary; -buildvcs=true: the commit and its time go in (`chatctl version`
# shows them), which is why the tree must be clean; the script builds
# from a fresh clone of HEAD. GOAMD64/GOARM64 are
# pinned to Go's defaults so an environment setting cannot change the code.
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_TARGETS="linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64 freebsd/amd64 freebsd/arm64"
TARGETS="${TARGETS:-$ALL_TARGETS}"

# build SRC OUT: every target of $TARGETS from the checkout SRC into OUT.
build() {
  local src=$1 out=$2 version t goos goarch ext
  version=$(git -C "$src" describe --tags --always --dirty)
  mkdir -p "$out"
  for t in $TARGETS; do
    goos=${t%/*} goarch=${t#*/} ext=""
    [ "$goos" = windows ] && ext=.exe
    echo "--- $t"
    (cd "$src" && env CGO_ENABLED=0 GOOS="$goos" GOARCH="$goarch" GOAMD64=v1 GOARM64=v8.0 GOFLAGS= \
      go build -trimpath -buildvcs=true -ldflags='-s -w -buildid=' \
        -o "$out/chatctl-$version-$goos-$goarch$ext" .)
  done
  (cd "$out" && sha256sum chatctl-* > SHA256SUMS)
}

if [ "${1:-}" = "--check" ]; then
  tmp=$(mktemp -d)
  trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
  # Two clones of this commit in different folders: no local changes,
  # different paths.
  rev=$(git rev-parse HEAD)
  for d in one other/src; do
    git clone -q . "$tmp/$d"
    git -C "$tmp/$d" checkout -q "$rev"
  done
  build "$tmp/one" "$tmp/dist1"
  GOCACHE="$tmp/cache" build "$tmp/other/src" "$tmp/dist2"
  if ! diff "$tmp/dist1/SHA256SUMS" "$tmp/dist2/SHA256SUMS"; then
    echo "error: two builds of ${rev:0:7} differ" >&2
    exit 1
  fi
  cat "$tmp/dist1/SHA256SUMS"
  echo "ok: two builds of ${rev:0:7} are identical"
  exit 0
fi

if [ -n "$(git status --porcelain)" ]; then
  echo "error: the working tree has changes; commit them first (a release records its commit)" >&2
  exit 1
fi
# Built from a fresh clone of the commit: the same inputs as --check, and
# the VCS stamp is there even where Go cannot read it (a git worktree).
tmp=$(mktemp -d)
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
git clone -q . "$tmp/src"
git -C "$tmp/src" checkout -q "$(git rev-parse HEAD)"
rm -rf dist
build "$tmp/src" "$PWD/dist"
cat dist/SHA256SUMS
