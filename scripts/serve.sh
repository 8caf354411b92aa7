#!/bin/sh
# Quick start: builds the example plugins into plugins/ and runs the server
# on the embedded SQLite database with config.koanf.yaml. Needs only Go.
# Extra arguments go to `whisperer serve`.
set -eu
cd "$(dirname "$0")/.."
sh scripts/build-plugins.sh plugins
exec go run ./cmd/whisperer serve --config config.koanf.yaml "$@"
