#!/usr/bin/env bash
# Load benchmark with a real HTTP load generator (wrk) against a release server on a
# gen-site site: boot-data GETs (many nodes, keep-alive) and boot-action signal POSTs,
# then counts the signal rows to show none was lost.
# Usage: cargo build --release && scripts/bench-load.sh [NODES] [SECONDS] [NODES_ASKING]
#        defaults 10000 nodes, 10 s per run, 1000 nodes asking for their data.
# Needs wrk (apt-get install wrk), curl, python3, sqlite3 is not needed (counts via the API).
set -euo pipefail
N=${1:-10000}
SECS=${2:-10}
ASK=${3:-1000}
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/target/release/slipway"
command -v wrk >/dev/null || { echo "wrk not found: apt-get install wrk" >&2; exit 2; }
W=$(mktemp -d /tmp/bench-load.XXXX)
python3 "$ROOT/../shared/tools/gen-site" --nodes "$N" --out "$W/repo/designs" >/dev/null 2>&1
cd "$W/repo" && git init -q -b main && git -c user.name=b -c user.email=b@x add -A \
  && git -c user.name=b -c user.email=b@x -c commit.gpgsign=false commit -qm site
PORT=$((20000 + RANDOM % 20000))
SLIPWAY_LOG=warn "$BIN" serve --repo "$W/repo" --db "$W/s.db" --listen 127.0.0.1:$PORT --poll 3600 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$W"' EXIT
B=http://127.0.0.1:$PORT
for i in $(seq 1 600); do
  [ "$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' $B/api/v1.0/health || true)" = 204 ] && break
  sleep 0.5
done
# Identity keys and action ids of the first ASK nodes (creates their deployments).
python3 - "$B" "$N" "$ASK" > "$W/targets.lua" <<'PY'
import json, sys, urllib.request
base, n, ask = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
width = 6 if n >= 100000 else 5
step = max(1, n // ask)
gets, posts = [], []
for i in range(1, n + 1, step):
    host = "n%0*d" % (width, i)
    ident = json.load(urllib.request.urlopen(f"{base}/api/v1.0/nodes/{host}/identity"))
    gets.append((f"/api/v1.0/bootactions/nodes/{host}/units", ident["identity_key"]))
    for a in ident["actions"]:
        if a["signaling"]:
            posts.append((f"/api/v1.0/bootactions/{a['action_id']}", ident["identity_key"]))
def lua(name, rows):
    print(f"{name} = {{")
    for p, k in rows:
        print(f'  {{"{p}", "{k}"}},')
    print("}")
lua("gets", gets)
lua("posts", posts)
PY
cat > "$W/get.lua" <<LUA
dofile("$W/targets.lua")
local i = 0
request = function()
  i = i + 1
  local t = gets[(i % #gets) + 1]
  return wrk.format("GET", t[1], {["X-Bootaction-Key"] = t[2]})
end
LUA
cat > "$W/post.lua" <<LUA
dofile("$W/targets.lua")
local i = 0
local body = '{"details":[{"message":"progress","error":false}]}'
request = function()
  i = i + 1
  local t = posts[(i % #posts) + 1]
  return wrk.format("POST", t[1], {["X-Bootaction-Key"] = t[2], ["Content-Type"] = "application/json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("posts_completed=%d non2xx=%d\n", summary.requests, summary.errors.status))
end
LUA
echo "== nodes=$N, $ASK nodes asking, ${SECS}s per run, server RSS before: $(ps -o rss= -p $PID) KB"
echo "== boot-data GET, keep-alive (wrk -t2 -c64)"
wrk -t2 -c64 -d${SECS}s --latency -s "$W/get.lua" $B | grep -E "Requests/sec|Non-2xx|Latency|50%|99%|requests in"
echo "== boot-data GET, a new connection per request (wrk -H 'Connection: close')"
wrk -t2 -c64 -d${SECS}s --latency -H "Connection: close" -s "$W/get.lua" $B | grep -E "Requests/sec|Non-2xx|Latency|50%|99%|requests in"
echo "== signal POSTs (details appended; wrk -t2 -c64)"
wrk -t2 -c64 -d${SECS}s --latency -s "$W/post.lua" $B | tee "$W/post.out" | grep -E "Requests/sec|Non-2xx|Latency|50%|99%|requests in|posts_completed"
echo "== server peak RSS: $(grep VmHWM /proc/$PID/status)"
# Every accepted POST is a build-data row: count them through the API.
python3 - "$B" "$W/targets.lua" "$W/post.out" <<'PY'
import json, re, sys, urllib.request
base, targets, out = sys.argv[1:4]
hosts = sorted(set(re.findall(r'/nodes/(n\d+)/units', open(targets).read())))
rows = 0
for h in hosts:
    rows += len(json.load(urllib.request.urlopen(f"{base}/api/v1.0/nodes/{h}/builddata")))
sent = int(re.search(r"posts_completed=(\d+)", open(out).read()).group(1))
bad = int(re.search(r"non2xx=(\d+)", open(out).read()).group(1))
print(f"signal rows recorded={rows} POSTs answered={sent} non-2xx={bad} -> {'none lost' if rows >= sent - bad else 'LOST ' + str(sent - bad - rows)}")
PY
