#!/bin/sh
# Builds release binaries: static (CGO_ENABLED=0), stripped (-s -w), with
# no build paths (-trimpath), for linux/amd64 and linux/arm64, into
# dist/whisperer-VERSION-OS-ARCH, with dist/SHA256SUMS. Needs Go and git.
#
# Usage: scripts/release.sh [VERSION]   (default: git describe)
#
# `whisperer version` of each binary names the version, commit, commit time
# and whether the tree had uncommitted changes. The go command stamps the
# commit itself from a .git directory; the same values go in as -X flags
# for trees it cannot read (a git worktree, whose .git is a file). Set
# PLATFORMS="linux/amd64 darwin/arm64 ..." for others.
set -eu
cd "$(dirname "$0")/.."
version=${1:-$(git describe --tags --always --dirty)}
revision=$(git rev-parse HEAD)
committed=$(git log -1 --format=%cI)
modified=false
[ -z "$(git status --porcelain)" ] || modified=true
platforms=${PLATFORMS:-"linux/amd64 linux/arm64"}
mkdir -p dist
rm -f dist/SHA256SUMS
for p in $platforms; do
	os=${p%/*} arch=${p#*/}
	out=dist/whisperer-$version-$os-$arch
	CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -buildvcs=auto \
		-ldflags "-s -w -X main.buildVersion=$version -X main.buildRevision=$revision -X main.buildTime=$committed -X main.buildModified=$modified" \
		-o "$out" ./cmd/whisperer
	echo "built $out ($(wc -c <"$out") bytes)"
done
(cd dist && sha256sum whisperer-"$version"-* >SHA256SUMS)
echo "checksums in dist/SHA256SUMS"
