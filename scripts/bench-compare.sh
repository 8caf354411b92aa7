#!/bin/sh
# Before/after: runs the main scenarios of scripts/bench.sh with the
# whisperer binary built from a git ref ("before") and from the working tree
# ("after"), back to back, so both see the same machine load, and prints
# one table of both. The scenarios measure one-hook throughput (20,000
# events from 64 publishers, deliveries/s and CPU), end-to-end latency at
# a steady 1,000 events/s (p50/p99 from publish to the receiver) on each
# backend, and PostgreSQL fan-out (1,000 events to 100 hooks each).
#
#   sh scripts/bench-compare.sh REF    # REF: the commit to compare against; about 4 minutes
set -eu
cd "$(dirname "$0")/.."
if [ $# -ne 1 ]; then
	echo "usage: sh scripts/bench-compare.sh REF  (REF: the git commit or tag to measure as \"before\")" >&2
	exit 2
fi
ref=$1
git rev-parse --verify --quiet "$ref^{commit}" >/dev/null || { echo "bench-compare: $ref is not a commit" >&2; exit 2; }
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
