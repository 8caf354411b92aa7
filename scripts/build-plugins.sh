#!/bin/sh
# Builds the Go example plugins into the plugin directory (default plugins/)
# and copies the committed WAT filter next to them. Needs only Go.
# Usage: scripts/build-plugins.sh [DIR]
set -eu
cd "$(dirname "$0")/.."
dir=${1:-plugins}
mkdir -p "$dir"
for ex in custom-countdown callback transform; do
	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$dir/$ex.wasm" "./examples/$ex"
	echo "built $dir/$ex.wasm"
done
# examples/filter is WAT, built with wabt and committed (TestCommittedWasmIsFresh).
cp examples/filter/field-equals.wasm "$dir/field-equals.wasm"
echo "copied $dir/field-equals.wasm"
