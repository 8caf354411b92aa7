#!/bin/sh
# Measures how much memory the heaviest single list requests cost the server:
# the largest hook body the API accepts, copied to N hooks, and N events with
# their own payload, response_content and attempt bodies at their caps, then
# GET hooks/ and hook_events/ with page_size=N. For each request it prints
# the server's resident set before (VmRSS) and its peak during the request
# (VmHWM, reset first through /proc/PID/clear_refs), and the growth; each
# request runs on a freshly started server.
#
#   sh scripts/memory.sh                  # builds ./cmd/whisperer
#   BIN=/tmp/whisperer-main sh scripts/memory.sh   # another build
#
# Knobs (environment): N (1000: rows and page_size), PAYLOAD (1048000 bytes,
# just under server.max_body_bytes), RESPONSE (65536, delivery.max_response_bytes),
# ATTEMPTS (18 attempts per event, delivery.max_retries), CONFIG (1000000:
# the config size tried first; smaller sizes are tried until one is
# accepted). Needs sqlite3, curl and Linux /proc. Everything stays on
# loopback and in a temporary directory.
set -eu
cd "$(dirname "$0")/.."
N=${N:-1000}
PAYLOAD=${PAYLOAD:-1048000}
RESPONSE=${RESPONSE:-65536}
ATTEMPTS=${ATTEMPTS:-18}
CONFIG=${CONFIG:-1000000}

dir=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$dir"
}
trap cleanup EXIT INT TERM

if [ -z "${BIN:-}" ]; then
	go build -o "$dir/whisperer" ./cmd/whisperer
	BIN=$dir/whisperer
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port/whisperer
mkdir -p "$dir/plugins"
cat >"$dir/config.yaml" <<EOF
server:
  addr: "127.0.0.1:$port"
  write_timeout: 0
database:
  url: "sqlite://$dir/w.db"
plugins:
  dir: "$dir/plugins"
  cache_dir: "$dir/cache"
retention:
  days: 0
log:
  level: warn
EOF
export WHISPERER_CONFIG="$dir/config.yaml"

"$BIN" migrate >/dev/null
token=$("$BIN" users create memtest | tail -n 1)

start() {
	"$BIN" serve >"$dir/server.log" 2>&1 &
	pid=$!
	i=0
	until curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -lt 100 ] || { cat "$dir/server.log"; exit 1; }
		sleep 0.1
	done
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

# The largest config the API takes, as a list of zeros (two bytes each as
# JSON, a few dozen decoded: the costliest shape to hold), with
# additional_headers filled as far as they go too.
start
for size in $CONFIG 65536 16384 16000 15000 8192 4096 1024; do
	python3 - "$size" >"$dir/hook.json" <<'PY'
import json, sys
size = int(sys.argv[1])
headers = {}
for i in range(50):
    headers["X-Fill-%02d" % i] = "v" * (16000 // 50 - 12)
print(json.dumps({"target_url": "http://127.0.0.1:9/", "event_type": "package-created",
                  "additional_headers": headers, "config": {"fill": [0] * ((size - 11) // 2)}},
                 separators=(",", ":")))
PY
	code=$(curl -s -o "$dir/answer.json" -w '%{http_code}' -H "Authorization: Token $token" \
		-H 'Content-Type: application/json' --data-binary "@$dir/hook.json" "$base/hooks/")
	[ "$code" = 201 ] && break
done
[ "$code" = 201 ] || { echo "no hook accepted: $(cat "$dir/answer.json")"; exit 1; }
echo "hook accepted with a config of $size bytes and $(wc -c <"$dir/hook.json") bytes in all"
stop

# Copies of the hook and events with their own payloads, filled in SQL: the
# rows are what the API would store, without N slow round trips.
sqlite3 "$dir/w.db" <<EOF
PRAGMA foreign_keys = OFF;
WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO webhooks (user_id, target_url, event_type, secret_key, is_active, callback,
	retry_countdown_config, additional_headers, config, created_at, modified_at)
SELECT user_id, target_url || '?n=' || i, event_type, secret_key, 0, callback,
	retry_countdown_config, additional_headers, config, created_at, modified_at
FROM webhooks, n WHERE webhooks.id = 1;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO messages (id, event_type, payload, created_at)
SELECT i, 'package-created', '"' || replace(hex(zeroblob(($PAYLOAD - 2) / 2)), '0', 'p') || '"', datetime('now') FROM n;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $N)
INSERT INTO webhook_events (id, uuid, message_id, webhook_id, user_id, event_type, state, delivered,
	retry_count, next_attempt_at, response_http_status, response_content, created_at, modified_at)
SELECT i, lower(hex(randomblob(16))), i, 1 + (i - 1) % $N, 1, 'package-created', 'given_up', 0,
	$ATTEMPTS, 0, 500, replace(hex(zeroblob($RESPONSE / 2)), '0', 'r'), datetime('now'), datetime('now') FROM n;
WITH RECURSIVE a(j) AS (SELECT 1 UNION ALL SELECT j + 1 FROM a WHERE j < $ATTEMPTS)
INSERT INTO delivery_attempts (event_id, attempted_at, duration_us, status, body, error)
SELECT e.id, datetime('now'), 1000, 500, e.response_content, '' FROM webhook_events e, a;
EOF
echo "$N hooks; $N events with a $PAYLOAD-byte payload, $RESPONSE-byte response_content and $ATTEMPTS attempts of $RESPONSE bytes"
echo "database: $(du -h "$dir/w.db" | cut -f1)"

kib() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$pid/status"; }

measure() { # name path: on a fresh server, so that each starts from idle
	start
	curl -fs -o /dev/null -H "Authorization: Token $token" "$base/$2?page_size=1" # warm up
	sleep 1
	idle=$(kib VmRSS)
	echo 5 >"/proc/$pid/clear_refs" # VmHWM := VmRSS
	out=$(curl -s -o /dev/null -w '%{http_code} %{size_download} %{time_total}' \
		-H "Authorization: Token $token" "$base/$2?page_size=$N")
	peak=$(kib VmHWM)
	set -- "$1" $out
	printf '%-12s status %s, %s bytes in %ss: RSS idle %d MiB, peak %d MiB, growth %d MiB\n' \
		"$1" "$2" "$3" "$4" $((idle / 1024)) $((peak / 1024)) $(((peak - idle) / 1024))
	stop
}

measure hooks hooks/
measure hook_events hook_events/
