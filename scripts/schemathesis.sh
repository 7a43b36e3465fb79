#!/usr/bin/env bash
# API contract test: runs schemathesis (all checks) against `slipway serve` on
# a free loopback port, serving the example site from a temporary git repository
# with a --tokens file (and a 1 s BMC timeout: the example BMCs do not exist,
# so the power route answers 502 quickly). Fails on any schemathesis failure, and fails loudly when
# schemathesis cannot be installed. Bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/venv
if [ ! -x "$venv/bin/schemathesis" ]; then
    echo "== installing schemathesis into $venv"
    python3 -m venv "$venv" || { echo "error: python3 -m venv failed (install python3-venv)" >&2; exit 2; }
    "$venv/bin/pip" install -q 'schemathesis>=4,<5' || { echo "error: cannot install schemathesis (pip install 'schemathesis>=4,<5' failed)" >&2; exit 2; }
fi

cargo build --quiet
work=$(mktemp -d)
pid=
cleanup() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; rm -rf "$work"; }
trap cleanup EXIT

git -C "$work" init -q -b main
cp -r designs "$work/designs"
git -C "$work" -c user.name=test -c user.email=test@example.com -c commit.gpgsign=false add -A
git -C "$work" -c user.name=test -c user.email=test@example.com -c commit.gpgsign=false commit -qm site
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf %s "$token" | sha256sum > "$work/tokens"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"

target/debug/slipway serve --repo "$work" --db "$work/slipway.db" --listen "127.0.0.1:$port" \
    --tokens "$work/tokens" --power-timeout 1 > "$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 200); do
    code=$(curl -s -o /dev/null -w '%{http_code}' "$base/api/v1.0/health" || true)
    [ "$code" = 204 ] && break
    sleep 0.1
done
[ "${code:-}" = 204 ] || { echo "error: slipway serve did not become healthy" >&2; cat "$work/serve.log" >&2; exit 1; }

echo "== schemathesis run $base/api/v1.0/openapi.json --checks all"
# Run from the temporary directory so schemathesis' cache stays out of the checkout.
root=$(pwd)
cd "$work"
timeout 300 "$root/$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run \
    "$base/api/v1.0/openapi.json" --url "$base" --checks all \
    -H "X-Auth-Token: $token" --max-examples 20 --seed 1 --no-color

# The ironic-inspector dialect (and Ironic's /v1/continue_inspection): its own
# document, generated from its route table, with its own error shapes.
echo "== schemathesis run $base/v1/openapi/inspector.json --checks all"
timeout 300 "$root/$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run \
    "$base/v1/openapi/inspector.json" --url "$base" --checks all \
    -H "X-Auth-Token: $token" --max-examples 20 --seed 1 --no-color
# The Luna2 dialect, from its own table, with a session token of a user added
# by `slipway user add` (the key file is created beside the database).
printf '%s\n' "$token" | "$root/target/debug/slipway" user add contract --users "$work/slipway.db.users" --password-stdin > /dev/null
luna_token=$(curl -s -X POST -H 'content-type: application/json' \
    -d "{\"username\":\"contract\",\"password\":\"$token\"}" "$base/token" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
echo "== schemathesis run $base/openapi/luna2.json --checks all"
timeout 300 "$root/$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run \
    "$base/openapi/luna2.json" --url "$base" --checks all \
    -H "x-access-tokens: $luna_token" --max-examples 20 --seed 1 --no-color
# The Ironic agent dialect (what ironic-python-agent calls), from its own table.
echo "== schemathesis run $base/v1/openapi/ironic.json --checks all"
timeout 300 "$root/$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run \
    "$base/v1/openapi/ironic.json" --url "$base" --checks all \
    --max-examples 20 --seed 1 --no-color
# The Commissaire dialect (what commctl calls), from its own table; errors are
# text/html reason phrases, authentication is the token as the basic password.
echo "== schemathesis run $base/api/v0/openapi.json --checks all"
timeout 300 "$root/$venv/bin/schemathesis" --config-file "$root/scripts/schemathesis.toml" run \
    "$base/api/v0/openapi.json" --url "$base" --checks all \
    -H "X-Auth-Token: $token" --max-examples 20 --seed 1 --no-color
