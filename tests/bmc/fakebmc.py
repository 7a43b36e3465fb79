#!/usr/bin/env python3
"""Loopback IPMI BMCs for slipway's power tests (pyghmi's server side).

One process serves COUNT fake BMCs, each on its own UDP port of 127.0.0.1
(never another address). The ports are chosen by the kernel; the first line
printed is `READY <port> <port> ...`, in order, so the test knows where they are.
Every change the BMCs are asked for is appended to EVENTS as one JSON line
(`{"port", "event", "power", "boot", "identify"}`): the test reads what the
BMC observed from there, independently of ipmitool's own output.
"""

import argparse
import json
import sys
import threading

import pyghmi.ipmi.bmc as bmc

IDENTIFY_CMD = 0x04  # NetFn chassis (0x00), Chassis Identify (IPMI 2.0 §28.5)


class LoopBmc(bmc.Bmc):
    """One fake BMC bound to 127.0.0.1 with a power state, boot device and LED."""

    def __init__(self, auth, port, power, events):
        super().__init__(auth, port, address="127.0.0.1")
        self.port = self.serversocket.getsockname()[1]
        self.power = power
        self.boot = "default"
        self.identify = "off"
        self.events = events

    def record(self, event):
        self.events.write(self.port, event, self.power, self.boot, self.identify)

    def get_power_state(self):
        return self.power

    def power_on(self):
        self.power = "on"
        self.record("on")

    def power_off(self):
        self.power = "off"
        self.record("off")

    def power_shutdown(self):
        self.power = "off"
        self.record("soft")

    def power_reset(self):
        # a hard reset of a running machine: it stays on, freshly started
        self.record("reset")

    def power_cycle(self):
        self.power = "on"
        self.record("cycle")

    def get_boot_device(self):
        return self.boot

    def set_boot_device(self, bootdevice):
        self.boot = bootdevice
        self.record("bootdev")

    def is_active(self):
        return self.power == "on"

    def handle_raw_request(self, request, session):
        if request["netfn"] == 0 and request["command"] == IDENTIFY_CMD:
            data = request.get("data") or []
            # data[0] = interval in seconds (0 = off), data[1] bit 0 = force on
            forced = len(data) > 1 and data[1] & 1
            interval = data[0] if data else 15
            self.identify = "on" if forced or interval else "off"
            self.record("identify")
            return session.send_ipmi_response()
        return super().handle_raw_request(request, session)


class Events:
    """The JSON-lines log every BMC of the process writes to."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.out = open(path, "a", buffering=1) if path else None

    def write(self, port, event, power, boot, identify):
        if self.out is None:
            return
        line = json.dumps({"port": port, "event": event, "power": power, "boot": boot, "identify": identify})
        with self.lock:
            self.out.write(line + "\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--count", type=int, default=1, help="number of BMCs")
    p.add_argument("--user", default="admin")
    p.add_argument("--password-file", required=True, help="file holding the BMC password")
    p.add_argument("--power", default="off", choices=["on", "off"], help="initial power state")
    p.add_argument("--events", help="JSON-lines file of observed changes")
    args = p.parse_args()
    with open(args.password_file) as f:
        password = f.read().strip()
    events = Events(args.events)
    bmcs = [LoopBmc({args.user: password}, 0, args.power, events) for _ in range(args.count)]
    print("READY " + " ".join(str(b.port) for b in bmcs), flush=True)
    # every BMC's socket is registered with pyghmi's one session loop
    bmc.Bmc.listen(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
