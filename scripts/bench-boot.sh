#!/usr/bin/env bash
# Boot-data GET timings against a release server on a gen-site site.
# Usage: cargo build --release && scripts/bench-boot.sh [NODES]   (default 10000)
set -euo pipefail
N=${1:-10000}
BIN="$(cd "$(dirname "$0")/.." && pwd)/target/release/slipway"
W=$(mktemp -d /tmp/bench-boot.XXXX)
python3 "$(cd "$(dirname "$0")/.." && pwd)/../shared/tools/gen-site" --nodes "$N" --out "$W/repo/designs" >/dev/null
cd "$W/repo" && git init -q -b main && git -c user.name=b -c user.email=b@x add -A && git -c user.name=b -c user.email=b@x -c commit.gpgsign=false commit -qm site
PORT=$((20000 + RANDOM % 20000))
SLIPWAY_LOG=warn $BIN serve --repo "$W/repo" --db "$W/s.db" --listen 127.0.0.1:$PORT --poll 3600 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$W"' EXIT
B=http://127.0.0.1:$PORT
for i in $(seq 1 600); do
  code=$(curl -s --noproxy '*' -o /dev/null -w '%{http_code}' $B/api/v1.0/health || true)
  [ "$code" = 204 ] && break; sleep 0.5
done
t() { curl -s --noproxy '*' -o /dev/null -w '%{time_total}' "$@"; }
host=$(printf 'n%05d' $((N / 2)))
echo "nodes=$N host=$host"
echo "identity (creates deployment): $(t $B/api/v1.0/nodes/$host/identity)s"
KEY=$(curl -s --noproxy '*' $B/api/v1.0/nodes/$host/identity | python3 -c 'import sys,json;print(json.load(sys.stdin)["identity_key"])')
echo "units first GET (render): $(t -H "X-Bootaction-Key: $KEY" $B/api/v1.0/bootactions/nodes/$host/units)s"
echo "units second GET (cached): $(t -H "X-Bootaction-Key: $KEY" $B/api/v1.0/bootactions/nodes/$host/units)s"
echo "files first GET: $(t -H "X-Bootaction-Key: $KEY" $B/api/v1.0/bootactions/nodes/$host/files)s"
