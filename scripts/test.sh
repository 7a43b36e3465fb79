#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what it needs, then runs
# formatting, lint, and every test. Used by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
    if need apt-get; then
        if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "$@"; else sudo apt-get update -qq && sudo apt-get install -y -qq "$@"; fi
    fi
}

# System tools the tests drive: git (real repositories), python3 (gen-site),
# curl and tar (the real-client boot-data test).
need git || apt_install git
need python3 || apt_install python3
# PyYAML: tests/pyyaml_differential.rs reads the same documents with it (as Drydock does).
python3 -c 'import yaml' 2>/dev/null || apt_install python3-yaml
# curl and tar: the real-client test drives the server with them; the schemathesis
# step waits for the server's health with curl.
need curl || apt_install curl
need tar || apt_install tar
# The power tests drive real BMC emulators: the real ipmitool against pyghmi fake
# BMCs, sushy-emulator for Redfish, and openssl makes the TLS test's certificate.
need ipmitool || apt_install ipmitool
need openssl || apt_install openssl
# sushy-tools and pyghmi go into the virtualenv schemathesis shares (the tests find
# it at $SLIPWAY_TEST_VENV, default target/venv).
venv=${SLIPWAY_TEST_VENV:-target/venv}
if [ ! -x "$venv/bin/sushy-emulator" ] || ! "$venv/bin/python" -c 'import pyghmi' 2>/dev/null; then
    echo "== installing sushy-tools and pyghmi into $venv"
    mkdir -p "$(dirname "$venv")"
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || { apt_install python3-venv && python3 -m venv "$venv"; } \
        || { echo "error: python3 -m venv failed (install python3-venv)" >&2; exit 2; }
    "$venv/bin/pip" install -q sushy-tools pyghmi || { echo "error: cannot install sushy-tools and pyghmi into $venv" >&2; exit 2; }
fi
# The Ironic agent and inspector tests drive the server with the real clients'
# own code (tests/ironic/*.py): ironic-python-agent 13.x (Python >= 3.11) and
# python-ironic-inspector-client 5.x, in the same virtualenv.
if ! "$venv/bin/python" -c 'import ironic_python_agent.ironic_api_client, ironic_inspector_client' 2>/dev/null; then
    echo "== installing ironic-python-agent 13.x and python-ironic-inspector-client 5.x into $venv"
    "$venv/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { echo "error: ironic-python-agent 13 needs Python >= 3.11; $venv has $("$venv/bin/python" --version 2>&1) (set SLIPWAY_TEST_VENV to a newer one)" >&2; exit 2; }
    "$venv/bin/pip" install -q 'ironic-python-agent>=13,<14' 'python-ironic-inspector-client>=5,<6' \
        || { echo "error: cannot install ironic-python-agent 13.x and python-ironic-inspector-client 5.x into $venv" >&2; exit 2; }
fi
# The Luna2 tests drive Luna2's own `luna` CLI and `lpower` (../shared/reference/clients/,
# not on PyPI; run from source by tests/luna2/luna_cli.py) with their PyPI dependencies:
# luna2-cli's and luna2-utils' requirements, unpinned where they would downgrade what IPA
# needs (requests, urllib3), but PyJWT==2.8.0 as the CLI pins it (its token check).
if ! "$venv/bin/python" -c 'import jwt, hostlist, prettytable, pyfiglet, nested_lookup, termcolor, argcomplete; assert jwt.__version__ == "2.8.0"' 2>/dev/null; then
    echo "== installing the luna2-cli and lpower requirements into $venv"
    "$venv/bin/pip" install -q 'PyJWT==2.8.0' python-hostlist prettytable pyfiglet nested_lookup termcolor argcomplete \
        requests requests-unixsocket fire shtab openpyxl \
        || { echo "error: cannot install the luna2-cli and lpower requirements into $venv" >&2; exit 2; }
fi
# The Commissaire tests drive the real `commctl` 0.0.7 (../shared/reference/clients/commctl,
# not on PyPI): installed without its deps (py-bcrypt is only for `commctl passhash`).
if [ ! -x "$venv/bin/commctl" ] || ! "$venv/bin/python" -c 'import commctl.cli, requests, six, yaml' 2>/dev/null; then
    echo "== installing commctl into $venv"
    "$venv/bin/pip" install -q --no-deps ../shared/reference/clients/commctl \
        && "$venv/bin/pip" install -q requests six PyYAML \
        || { echo "error: cannot install commctl into $venv" >&2; exit 2; }
fi
# c++: the fuzz targets' libFuzzer is compiled by `cargo check` below.
need c++ || apt_install g++
if [ ! -x ../shared/tools/gen-site ] && [ ! -f ../shared/tools/gen-site ]; then
    echo "error: ../shared/tools/gen-site not found (the shared folder must sit beside this checkout)" >&2
    exit 2
fi

echo "== cargo fetch"
cargo fetch --quiet
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets -- -D warnings"
cargo clippy --quiet --all-targets -- -D warnings
# The cargo-fuzz targets (fuzz/, their own workspace) are run with nightly by
# hand; on stable they are only checked, so they keep compiling.
echo "== cargo check --manifest-path fuzz/Cargo.toml"
cargo check --quiet --manifest-path fuzz/Cargo.toml --bins
echo "== cargo test"
mkdir -p target
set +e
cargo test --no-fail-fast 2>&1 | tee target/test-output.txt
status=${PIPESTATUS[0]}
set -e
# API contract: schemathesis against the real server (installs into target/venv once).
echo "== schemathesis (scripts/schemathesis.sh)"
contract=1
if ! scripts/schemathesis.sh; then
    echo "schemathesis: FAILED" >&2
    contract=0
    status=1
fi
# One closing line for the whole suite (cargo's own last line is the doc-test run);
# the schemathesis run counts as one test.
awk -v c="$contract" '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed;?$/) p += $(i-1); if ($(i) ~ /^failed;?$/) f += $(i-1); if ($(i) ~ /^ignored;?$/) s += $(i-1) } }
     END { p += c; f += 1 - c; printf "total: %d passed, %d failed, %d skipped\n", p, f, s }' target/test-output.txt
# Benchmarks are compiled (and linted) by clippy --all-targets, timed only by `cargo bench`.
exit "$status"
