#!/bin/sh
# Measures how fast `whisperer serve` starts with the two Go example
# plugins, and what it holds in memory once they are loaded: for each run,
# the time from exec to the first accepted TCP connection (listening), to
# the first /healthz 200, and to every plugin file listed as loaded in
# GET /whisperer/plugins/; then the resident set (VmRSS) 2 seconds after
# that and after IDLE seconds without traffic (past plugins.idle_timeout,
# 30s by default, idle instances are closed and idle modules released). "cold" runs start with an empty compilation cache
# (plugins.cache_dir), "warm" runs with the one the previous run left.
#
#   sh scripts/startup.sh                        # builds ./cmd/whisperer
#   BIN=/tmp/whisperer-main sh scripts/startup.sh  # another build
#
# Knobs (environment): RUNS (3 of each), IDLE (35 seconds before the idle
# VmRSS is read). Needs python3 and Linux /proc; everything stays on loopback and in
# a temporary directory.
set -eu
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
IDLE=${IDLE:-35}

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT INT TERM

if [ -z "${BIN:-}" ]; then
	go build -o "$dir/whisperer" ./cmd/whisperer
	BIN=$dir/whisperer
fi
sh scripts/build-plugins.sh "$dir/plugins" >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$dir/config.yaml" <<EOF
server:
  addr: "127.0.0.1:$port"
database:
  url: "sqlite://$dir/w.db"
plugins:
  dir: "$dir/plugins"
  cache_dir: "$dir/cache"
log:
  level: info
EOF
export WHISPERER_CONFIG="$dir/config.yaml"
"$BIN" migrate >/dev/null
token=$("$BIN" users create startup | tail -n 1)

python3 - "$BIN" "$port" "$token" "$dir" "$RUNS" "$IDLE" <<'PY'
import json, os, shutil, socket, subprocess, sys, time, urllib.request

binary, port, token, d, runs, idle = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), float(sys.argv[6])
files = len([f for f in os.listdir(d + "/plugins") if f.endswith(".wasm")])

def get(path, auth=False):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if auth:
        req.add_header("Authorization", "Token " + token)
    try:
        with urllib.request.urlopen(req, timeout=1) as r:
            return r.status, r.read()
    except Exception:
        return None, None

def listening():
    s = socket.socket()
    s.settimeout(0.2)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()

def loaded():
    status, body = get("/whisperer/plugins/", auth=True)
    if status != 200:
        return False
    res = json.loads(body)["results"]
    return len(res) == files and all(p.get("loaded") or p.get("error") for p in res)

def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

def run(mode):
    if mode == "cold":
        shutil.rmtree(d + "/cache", ignore_errors=True)
    log = open(d + "/server.log", "w")
    t0 = time.monotonic()
    p = subprocess.Popen([binary, "serve"], stdout=log, stderr=log)
    marks = {}
    try:
        while "loaded" not in marks:
            if p.poll() is not None:
                sys.exit("server exited; see its log:\n" + open(d + "/server.log").read())
            if time.monotonic() - t0 > 120:
                sys.exit("not loaded after 120 s")
            now = time.monotonic() - t0
            if "listening" not in marks and listening():
                marks["listening"] = now
            if "listening" in marks and "healthz" not in marks and get("/healthz")[0] == 200:
                marks["healthz"] = time.monotonic() - t0
            if "healthz" in marks and loaded():
                marks["loaded"] = time.monotonic() - t0
            time.sleep(0.002)
        time.sleep(2)
        marks["rss"] = rss_mib(p.pid)
        time.sleep(max(idle - 2, 0))
        marks["idle"] = rss_mib(p.pid)
    finally:
        p.terminate()
        p.wait()
        log.close()
    return marks

print("%-5s %12s %12s %16s %16s %14s" % ("cache", "listening s", "/healthz s", "plugins loaded s", "RSS +2 s MiB", "RSS +%g s MiB" % idle))
for mode in ["cold", "warm"]:
    for _ in range(runs):
        m = run(mode)
        print("%-5s %12.3f %12.3f %16.3f %16.1f %14.1f" % (mode, m["listening"], m["healthz"], m["loaded"], m["rss"], m["idle"]))
PY
