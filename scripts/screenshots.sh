#!/bin/sh
# The console's screenshots in docs/console/*.png (README.md and
# docs/CONSOLE.md show them): a whole node on SQLite with sample data,
# each page captured by headless chromium (chromedp) at 1280×800, the
# events list also at 375 px. Needs chromium on PATH.
#
#   sh scripts/screenshots.sh
set -eu
cd "$(dirname "$0")/.."
WHISPERER_TEST_SCREENSHOTS=1 WHISPERER_TEST_BROWSER=1 go test -count=1 -run '^TestScreenshots$' -v ./core/internal/console/ | grep -E '\.png|^(ok|FAIL|---)'
ls -l docs/console/
