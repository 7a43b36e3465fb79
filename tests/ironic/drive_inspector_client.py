#!/usr/bin/env python3
"""Drive a server with python-ironic-inspector-client 5's own `ClientV1`.

No Keystone: `ClientV1(inspector_url=URL)` talks to the bare URL. Runs
`introspect`, `get_status` (not finished yet), then `--while-waiting`'s
command (the ramdisk's callback, e.g. drive_ipa.py --steps continue),
`wait_for_finish`, `get_status` (finished), `get_data` (the stored inventory
holds the node's MACs) and `list_statuses`.

Usage: drive_inspector_client.py URL NODE --macs MAC[,MAC...]
                                 [--uuid UUID] [--while-waiting CMD]

Prints one JSON line; exits 1 on any failure.
"""

import argparse
import json
import subprocess
import sys
import traceback

import ironic_inspector_client

STATUS_KEYS = {"uuid", "finished", "state", "error", "started_at",
               "finished_at", "links"}


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


def check_status(status, what):
    missing = STATUS_KEYS - set(status)
    expect(not missing, "%s lacks %s: %s" % (what, sorted(missing), status))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("node", help="node name or UUID to introspect")
    p.add_argument("--macs", required=True, help="MACs get_data must show")
    p.add_argument("--uuid", help="the node's expected UUID")
    p.add_argument("--while-waiting",
                   help="shell command run after introspect (the ramdisk)")
    p.add_argument("--retries", type=int, default=60,
                   help="wait_for_finish polls, one a second")
    args = p.parse_args()
    macs = {m.lower() for m in args.macs.split(",") if m}

    out = {"ok": False}
    try:
        client = ironic_inspector_client.ClientV1(inspector_url=args.url)
        out["api_versions"] = list(client.server_api_versions())
        client.introspect(args.node)
        out["introspect"] = "accepted"
        status = client.get_status(args.node)
        check_status(status, "status after introspect")
        expect(not status["finished"],
               "introspection finished before the ramdisk called back")
        uuid = status["uuid"]
        if args.uuid:
            expect(uuid == args.uuid, "status uuid %s, expected %s"
                   % (uuid, args.uuid))
        out["state_started"] = status["state"]
        if args.while_waiting:
            r = subprocess.run(args.while_waiting, shell=True,
                               capture_output=True, text=True, timeout=300)
            expect(r.returncode == 0, "--while-waiting failed (rc %d): %s %s"
                   % (r.returncode, r.stdout[-500:], r.stderr[-500:]))
            out["while_waiting"] = r.stdout.strip().splitlines()[-1:]
        result = client.wait_for_finish([args.node], retry_interval=1,
                                        max_retries=args.retries)
        expect(args.node in result, "wait_for_finish result lacks %s: %s"
               % (args.node, result))
        status = client.get_status(args.node)
        check_status(status, "status after finish")
        expect(status["finished"] and status["finished_at"],
               "not finished: %s" % status)
        expect(status["error"] is None, "introspection error: %s"
               % status["error"])
        out["state_finished"] = status["state"]
        data = client.get_data(args.node)
        expect(isinstance(data, dict), "get_data gave %r" % type(data))
        seen = {i.get("mac_address", "").lower()
                for i in (data.get("inventory") or {}).get("interfaces") or []}
        expect(macs <= seen, "get_data lacks MACs %s (has %s)"
               % (sorted(macs - seen), sorted(seen)))
        out["data_keys"] = sorted(data)
        statuses = client.list_statuses()
        expect(any(s.get("uuid") == uuid for s in statuses),
               "list_statuses lacks %s" % uuid)
        for s in statuses:
            check_status(s, "listed status")
        out["listed"] = len(statuses)
        out["uuid"] = uuid
        out["ok"] = True
    except Exception as e:
        out["error"] = "%s: %s" % (type(e).__name__, e)
        out["trace"] = traceback.format_exc(limit=3)[-800:]
    print(json.dumps(out, sort_keys=True))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
