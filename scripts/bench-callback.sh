#!/bin/sh
# The cost of a Go callback end to end: the server and example plugins of a
# git ref (default 9e81570, before the callback record) and of the working
# tree, each run without and with --callback foo.bar.app.callback on every
# hook, alternating so that all four see the same machine load.
#
#   sh scripts/bench-callback.sh [REF] [ROUNDS]    # about 1 minute a round
set -eu
cd "$(dirname "$0")/.."
ref=${1:-9e81570}
rounds=${2:-3}
pg=${WHISPERER_BENCH_POSTGRES:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
git archive "$ref" | tar -x -C "$tmp/src"
(cd "$tmp/src" && go build -o "$tmp/before" ./cmd/whisperer && sh scripts/build-plugins.sh "$tmp/before-plugins" >/dev/null)
go build -o "$tmp/after" ./cmd/whisperer
sh scripts/build-plugins.sh "$tmp/after-plugins" >/dev/null
go build -o "$tmp/wb" ./cmd/whisperer-bench
out="$tmp/runs.jsonl"
for r in $(seq "$rounds"); do
	for v in before after; do
		w() {
			"$tmp/wb" --bin "$tmp/$v" --postgres "$pg" --json --timeout 5m --backend postgres --events 20000 -c 64 \
				--env "WHISPERER_PLUGINS_DIR=$tmp/$v-plugins" "$@" >>"$out"
		}
		w --name "$v: no callback ($r)"
		w --name "$v: Go callback ($r)" --callback foo.bar.app.callback
	done
done
"$tmp/wb" report "$out"
