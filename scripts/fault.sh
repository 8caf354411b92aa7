#!/bin/sh
# Fault runs of docs/RELIABILITY.md. Each publishes under load through the
# API, injects one fault, waits until every accepted event reads delivered
# and checks the receiver's uuid set against the database (lost must be 0;
# whisperer-bench exits non-zero otherwise).
#
#   sh scripts/fault.sh kill        # SIGKILL the server mid-run, restart it
#   sh scripts/fault.sh multinode   # 3 nodes on one PostgreSQL, no fault: 0 lost, 0 duplicates
#   sh scripts/fault.sh killone     # 3 nodes, SIGKILL one mid-run: 0 lost
#   sh scripts/fault.sh receiver    # receiver answers 500 for 5 s, then 204
#   sh scripts/fault.sh pgrestart   # restart PostgreSQL mid-run (affects every
#                                   # user of the server: run it alone, last)
#   sh scripts/fault.sh all         # all but pgrestart
#
# Results (JSON lines) are appended to $FAULT_OUT
# (default /tmp/whisperer-fault-results.jsonl); BIN=path runs that server
# binary instead of one built from this tree (a before/after comparison);
# the table of docs/RELIABILITY.md is printed at the end
# (whisperer-bench report).
set -eu
cd "$(dirname "$0")/.."
pg=${WHISPERER_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
out=${FAULT_OUT:-${TMPDIR:-/tmp}/whisperer-fault-results.jsonl}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
if [ -n "${BIN:-}" ]; then cp "$BIN" "$bin/whisperer"; else go build -o "$bin/whisperer" ./cmd/whisperer; fi
go build -o "$bin/whisperer-bench" ./cmd/whisperer-bench
: >"$out.run"

run() {
	case $1 in
	kill)
		for backend in postgres sqlite; do
			"$bin/whisperer-bench" --bin "$bin/whisperer" --postgres "$pg" --timeout 5m --json \
				--name "SIGKILL + restart ($backend)" --backend $backend --events 10000 -c 32 --rate 2000 \
				--kill-after 3000 --down 1s | tee -a "$out" "$out.run"
		done ;;
	multinode)
		"$bin/whisperer-bench" --bin "$bin/whisperer" --postgres "$pg" --timeout 5m --json \
			--name "3 nodes, no fault" --backend postgres --nodes 3 --events 10000 -c 48 \
			--expect-no-duplicates | tee -a "$out" "$out.run" ;;
	killone)
		"$bin/whisperer-bench" --bin "$bin/whisperer" --postgres "$pg" --timeout 5m --json \
			--name "3 nodes, one SIGKILLed" --backend postgres --nodes 3 --events 10000 -c 48 --rate 2000 \
			--kill-one-after 3000 | tee -a "$out" "$out.run" ;;
	receiver)
		for backend in postgres sqlite; do
			"$bin/whisperer-bench" --bin "$bin/whisperer" --postgres "$pg" --timeout 5m --json \
				--name "receiver 500 for 5 s ($backend)" --backend $backend --events 3000 -c 16 --rate 1000 \
				--fail-for 5s --retry-seconds 1 --warmup 0 | tee -a "$out" "$out.run"
		done ;;
	pgrestart)
		"$bin/whisperer-bench" --bin "$bin/whisperer" --postgres "$pg" --timeout 5m --json \
			--name "PostgreSQL restarted" --backend postgres --events 6000 -c 32 --rate 1000 \
			--pg-restart-after 2000 | tee -a "$out" "$out.run" ;;
	*) echo "unknown fault run $1" >&2; exit 2 ;;
	esac
}
if [ "${1:-all}" = all ]; then
	for r in kill multinode killone receiver; do run $r; done
else
	run "$1"
fi
"$bin/whisperer-bench" report "$out.run"
