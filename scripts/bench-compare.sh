#!/bin/sh
# Before/after: runs the main scenarios with the whisperer binary of a git
# ref (default 9c58cc8, before the store's one-statement queries) and of the
# working tree, back to back, so both see the same machine load.
#
#   sh scripts/bench-compare.sh [REF]    # about 4 minutes
set -eu
cd "$(dirname "$0")/.."
ref=${1:-9c58cc8}
pg=${WHISPERER_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
git archive "$ref" | tar -x -C "$tmp/src"
(cd "$tmp/src" && go build -o "$tmp/before" ./cmd/whisperer)
go build -o "$tmp/after" ./cmd/whisperer
go build -o "$tmp/wb" ./cmd/whisperer-bench
out="$tmp/pairs.jsonl"
for v in before after; do
	w() { "$tmp/wb" --bin "$tmp/$v" --postgres "$pg" --json --timeout 5m "$@" >>"$out"; }
	w --name "$v: throughput PostgreSQL 20k" --backend postgres --events 20000 -c 64
	w --name "$v: throughput SQLite 20k" --backend sqlite --events 20000 -c 64
	w --name "$v: latency PostgreSQL 1,000/s" --backend postgres --events 10000 --rate 1000 -c 32
	w --name "$v: latency SQLite 1,000/s" --backend sqlite --events 10000 --rate 1000 -c 32
	w --name "$v: fan-out PostgreSQL 1,000 × 100" --backend postgres --events 1000 --hooks 100 -c 8 --warmup 10
done
"$tmp/wb" report "$out"
