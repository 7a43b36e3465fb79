#!/usr/bin/env python3
"""Drive a server with ironic-python-agent 13's own client code.

No ramdisk and no imitation: IPA's `ironic_api_client.APIClient` looks the
node up by its MACs and heartbeats, IPA's `agent.IronicPythonAgent.
process_lookup_data` judges the lookup reply (token kept, or lock-down), and
IPA's `inspector.inspect()` runs its real `default` collector over an
inventory of IPA's own hardware classes (a fake hardware manager stands in for
the machine's hardware) and posts it, to `/v1/continue` (inspector) and to
`/v1/continue_inspection` (Ironic's built-in inspection).

Usage: drive_ipa.py URL --macs MAC[,MAC...] [--uuid UUID] [--bmc ADDR]
                    [--serial S] [--steps lookup,heartbeat,...]

Prints one JSON line with what each step saw; exits 1 on the first failure
(the line then has "ok": false and "error").
"""

import argparse
import json
import sys
import traceback
from unittest import mock

# Order matters: `config` registers IPA's options at import (dialects.md §1.8).
from oslo_config import cfg
from ironic_python_agent import config  # noqa: F401
from ironic_python_agent import agent, errors, hardware, inspector
from ironic_python_agent import ironic_api_client, utils

CONF = cfg.CONF
STEPS = ("lookup", "heartbeat", "relookup", "badtoken", "continue",
         "continue_inspection", "rebooted")
ADVERTISE = ("192.0.2.10", 9999)


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


class FakeHardwareManager(hardware.HardwareManager):
    """The machine: what IPA's generic manager would find on it."""

    HARDWARE_MANAGER_NAME = "slipway_test_hardware"
    HARDWARE_MANAGER_VERSION = "1.0"

    def evaluate_hardware_support(self):
        return hardware.HardwareSupport.SERVICE_PROVIDER


def inventory(args):
    macs = args.macs
    interfaces = [
        hardware.NetworkInterface(
            "eth%d" % i, mac,
            ipv4_address="192.0.2.%d" % (20 + i) if i == 0 else None,
            has_carrier=True, vendor="0x8086", product="0x1572",
            speed_mbps=10000, pci_address="0000:19:00.%d" % i,
            driver="i40e")
        for i, mac in enumerate(macs)
    ]
    firmware = hardware.SystemFirmware(
        vendor="HPE", version="U30", build_date="2024-01-01")
    return {
        "interfaces": interfaces,
        "cpu": hardware.CPU(model_name="Intel Xeon", frequency="2400.0000",
                            count=args.cpus, architecture="x86_64",
                            flags=["vmx"], socket_count=2),
        "disks": [
            hardware.BlockDevice("/dev/sda", "LOGICAL VOLUME",
                                 480 * 10**9, False, serial="PDN0",
                                 hctl="0:0:0:0"),
            hardware.BlockDevice("/dev/sdb", "LOGICAL VOLUME",
                                 3840 * 10**9, False, serial="PDN1",
                                 hctl="0:0:1:0"),
        ],
        "memory": hardware.Memory(total=270 * 2**30,
                                  physical_mb=args.memory_mb),
        "bmc_address": args.bmc,
        "bmc_v6address": "::/0",
        "bmc_mac": "aa:bb:cc:00:00:01",
        "system_vendor": hardware.SystemVendorInfo(
            product_name="ProLiant DL380 Gen10",
            serial_number=args.serial, manufacturer="HPE",
            firmware=firmware),
        "boot": hardware.BootInfo(current_boot_mode="bios",
                                  pxe_interface=macs[0]),
        "hostname": "localhost.localdomain",
    }


def judge_lookup(content, agent_token=None):
    """IPA's own verdict on a lookup reply: the agent object it updates."""
    fake_agent = mock.Mock(standalone=False, agent_token=agent_token,
                           lockdown=False, serve_api=True)
    with mock.patch.object(hardware, "cache_node"):
        agent.IronicPythonAgent.process_lookup_data(fake_agent, content)
    return fake_agent


def lookup(url, args, node_uuid=None):
    client = ironic_api_client.APIClient(url)
    hw = {"interfaces": [hardware.NetworkInterface("eth%d" % i, m)
                         for i, m in enumerate(args.macs)]}
    content = client.lookup_node(hardware_info=hw, timeout=args.timeout,
                                 starting_interval=1, node_uuid=node_uuid)
    return client, content


def run_inspection(args, builtin):
    """IPA's inspect() with its real `default` collector."""
    if builtin:
        CONF.clear_override("inspection_callback_url")
        CONF.set_override("api_url", args.url)
        CONF.set_override("inspection_collectors", "default")
    else:
        CONF.clear_override("api_url")
        CONF.set_override("inspection_callback_url",
                          args.url.rstrip("/") + "/v1/continue")
        CONF.set_override("inspection_collectors", "default")
    CONF.set_override("inspection_dhcp_wait_timeout", 0)
    manager = FakeHardwareManager()
    with mock.patch.object(hardware, "list_hardware_info",
                           lambda *a, **k: inventory(args)), \
            mock.patch.object(hardware, "get_managers",
                              lambda: [manager]):
        expect(inspector.is_enabled(), "IPA considers inspection disabled")
        return inspector.inspect()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("url")
    p.add_argument("--macs", required=True,
                   help="the node's MACs, comma-separated; the first boots")
    p.add_argument("--uuid", help="the node's expected UUID")
    p.add_argument("--bmc", default="0.0.0.0",
                   help="BMC address the machine reports")
    p.add_argument("--serial", default="SLIPWAY-TEST-0001")
    p.add_argument("--cpus", type=int, default=64)
    p.add_argument("--memory-mb", type=int, default=262144)
    p.add_argument("--timeout", type=int, default=20,
                   help="lookup timeout in seconds (IPA retries until then)")
    p.add_argument("--steps", default=",".join(STEPS),
                   help="comma-separated, in this order: " + ",".join(STEPS))
    args = p.parse_args()
    args.macs = [m for m in args.macs.split(",") if m]
    steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        p.error("unknown steps: %s" % ", ".join(unknown))
    CONF([], project="ironic-python-agent")

    out = {"ok": False, "steps": []}
    state = {}
    try:
        for step in STEPS:
            if step not in steps:
                continue
            out["steps"].append(step)
            if step == "lookup":
                client, content = lookup(args.url, args)
                uuid = content["node"]["uuid"]
                if args.uuid:
                    expect(uuid == args.uuid,
                           "lookup gave node %s, expected %s" % (uuid, args.uuid))
                token = content["config"].get("agent_token") or ""
                expect(len(token) >= 32,
                       "first lookup's agent_token has %d characters, IPA keeps >= 32"
                       % len(token))
                judged = judge_lookup(content)
                expect(judged.agent_token == token and not judged.lockdown,
                       "IPA did not keep the token")
                state.update(client=client, uuid=uuid, token=token)
                out.update(uuid=uuid, token_length=len(token),
                           heartbeat_timeout=content["config"]["heartbeat_timeout"],
                           node_keys=sorted(content["node"]))
            elif step == "heartbeat":
                client = state["client"]
                client.agent_token = state["token"]
                client.heartbeat(state["uuid"], ADVERTISE)  # raises unless 202
                out["heartbeat"] = 202
            elif step == "relookup":
                # The same running agent looks up again: a masked token is
                # fine because it holds the real one.
                _, content = lookup(args.url, args, node_uuid=state["uuid"])
                masked = content["config"].get("agent_token")
                judged = judge_lookup(content, agent_token=state["token"])
                expect(not judged.lockdown, "a running agent locked itself down")
                out["relookup_token"] = masked
            elif step == "badtoken":
                bad = ironic_api_client.APIClient(args.url)
                bad.agent_token = "x" * 43
                try:
                    bad.heartbeat(state["uuid"], ADVERTISE)
                except errors.HeartbeatError as e:
                    out["badtoken_refused"] = str(e)[:200]
                else:
                    raise Failed("a heartbeat with a wrong token got 202")
                bad.agent_token = None
                try:
                    bad.heartbeat(state["uuid"], ADVERTISE)
                except errors.HeartbeatError as e:
                    out["notoken_refused"] = str(e)[:200]
                else:
                    raise Failed("a heartbeat without a token got 202")
            elif step in ("continue", "continue_inspection"):
                uuid = run_inspection(args, builtin=step == "continue_inspection")
                expect(uuid, "%s replied without a uuid" % step)
                if "uuid" in state:
                    expect(uuid == state["uuid"],
                           "%s named %s, lookup %s" % (step, uuid, state["uuid"]))
                elif args.uuid:
                    expect(uuid == args.uuid, "%s named %s, expected %s"
                           % (step, uuid, args.uuid))
                out[step + "_uuid"] = uuid
            elif step == "rebooted":
                # A new agent process (the machine rebooted into the ramdisk):
                # it inspects first, as IPA does at start when inspection is
                # on, then looks up with the uuid that returned, holding no
                # token. It must get a fresh one, or IPA locks itself down.
                uuid = run_inspection(args, builtin=False)
                client, content = lookup(args.url, args, node_uuid=uuid)
                judged = judge_lookup(content)
                token = content["config"].get("agent_token") or ""
                expect(not judged.lockdown,
                       "the rebooted agent got %r and locked itself down" % token)
                expect(len(token) >= 32 and token != state.get("token"),
                       "the rebooted agent got no fresh token")
                client.agent_token = token
                client.heartbeat(content["node"]["uuid"], ADVERTISE)
                if "token" in state:
                    old = ironic_api_client.APIClient(args.url)
                    old.agent_token = state["token"]
                    try:
                        old.heartbeat(content["node"]["uuid"], ADVERTISE)
                    except errors.HeartbeatError:
                        out["old_token_refused"] = True
                    else:
                        raise Failed("the previous agent's token still heartbeats")
                out["rebooted_heartbeat"] = 202
        out["ok"] = True
    except Exception as e:  # every failure is one JSON line and rc 1
        out["error"] = "%s: %s" % (type(e).__name__, e)
        out["trace"] = traceback.format_exc(limit=3)[-800:]
    print(json.dumps(out, sort_keys=True))
    return 0 if out["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
