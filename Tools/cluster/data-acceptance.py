#!/usr/bin/env python3
"""The distributed LUN's data path with three real tesserad nodes (Targets/cluster-node{1,2,3}.toml).

Node 1's TOML defines iqn.2026-11.dev.tessera:cluster LUN 0 (64 MiB, replicas 2,
8 MiB sub-units); nodes 2 and 3 serve it from the store. The work copy of node
1's TOML also gets a 256 MiB LUN of the same shape for the conformance suite
(target ...:cluster-suite). Checks, each "PASS name" / "FAIL name: detail":

  multipath  iscsi-test-cu ALL.MultipathIO with its two paths on node 1 and node 2
             (first: its CompareAndWrite needs a LUN nothing has written yet)
  data       64 MiB of random data written through node 1 (qemu-img convert -n)
             reads back byte-identical through node 2 and node 3
  pattern    qemu-io write -P 0x5a 7M 3M (across the 8 MiB sub-unit boundary)
             through node 2, read -P 0x5a through node 3 and node 1
  discovery  iscsi-ls -s on each node lists the target on all three portals
             (P1,1 P2,2 P3,3); iscsiadm SendTargets through node 2 if installed
  identity   standard INQUIRY, VPD 0x80 0xB0 0xB1 0xB2, READ CAPACITY(16) byte-identical
             on the three nodes (raw, with Tools/conformance/pr_client.py's initiator,
             and as iscsi-inq / iscsi-readcapacity16 print them); VPD 0x83 identical
             but for the target port's designators: relative target port and target
             port group i on node i, target port name "<iqn>,t,0x000i"
  hostile    node 2's wire port gets garbage, a 1 GiB length, an unknown request
             kind after hello, stale-epoch reads and a stale-epoch write, while a
             qemu-io write/read loop runs through node 2's portal; node 2 must stay
             up, never hang a peer connection, and the loop must see no error
  suite      iscsi-test-cu -t ALL suite by suite through node 2 (MultipathIO's
             second path on node 3), judged against Tools/conformance/expected-all.txt
             overridden by Tools/cluster/expected-all-cluster.txt
  alua       nodes 2 and 3 SIGSTOPped: node 1's lease lapses and its group turns
             unavailable (06/2A/06, then TEST UNIT READY 02/04/0C; RTPG says so;
             INQUIRY peripheral qualifier 001b); SIGCONT: 06/2A/06, then GOOD again
Then every node gets SIGTERM (SIGKILL after 10 s). Ends with "data: N passed, N failed".

Usage: data-acceptance.py --tesserad BIN [--base-port B] [--keep] [--checks a,b,...]
                          [--strip-new-keys] [--suite-timeout S]
"""
import argparse
import os
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "Tools", "lib"))
import localcluster  # noqa: E402
import peerwire  # noqa: E402
import cluster_secret  # noqa: E402
import scsi_cmds as scsi  # noqa: E402
from iscsi_client import Session  # noqa: E402
from stagekit import info, run, run_stage, short  # noqa: E402

MiB = 1 << 20
SUB_UNIT = 8 * MiB
SUITE_TARGET = "iqn.2026-11.dev.tessera:cluster-suite"
ALL_CHECKS = ["multipath", "data", "pattern", "discovery", "identity", "hostile", "suite", "alua"]

# Appended to node 1's TOML: the conformance suite's LUN (the single-node stage's
# suite-config.sh shape, 256 MiB, ACL-free) as a distributed LUN.
SUITE_TOML = f"""
[[target]]
name = "{SUITE_TARGET}"
alias = "cluster-suite"

[[target.lun]]
id = 0
size = "256MiB"
block_size = 512
backing = "file"
path = "suite.img"
thin = true
serial = "TSR-SUITE-0"
replicas = 2
sub_unit_size = "8MiB"
"""
# Appended to every node: libiscsi's Sanitize.Reset sleeps 60 s without servicing
# its socket (see Tools/conformance/suite-config.sh).
ISCSI_TOML = """
[iscsi]
nop_in_interval = 30
nop_in_timeout = 120
"""


def diff_report(expected_path, actual_path, size):
    """Which 8 MiB sub-units differ, and whether the differing ones read back as zeros."""
    bad = []
    with open(expected_path, "rb") as e, open(actual_path, "rb") as a:
        for index in range((size + SUB_UNIT - 1) // SUB_UNIT):
            want, got = e.read(SUB_UNIT), a.read(SUB_UNIT)
            if want != got:
                first = next((k for k in range(min(len(want), len(got))) if want[k] != got[k]), min(len(want), len(got)))
                zero = got.count(0) == len(got)
                bad.append(f"sub-unit {index} (first difference at byte {index * SUB_UNIT + first}"
                           f"{', reads as zeros' if zero else ''}{', short read' if len(got) < len(want) else ''})")
    return "; ".join(bad) if bad else "identical"


# --- checks -----------------------------------------------------------------

def check_multipath(c, r, work, args):
    # libiscsi 1.19's MultipathIO.CompareAndWrite zeroes LBAs 0-255 with WRITE
    # SAME and then compares LBAs 0-256 with zeros: LBA 256 must already be
    # zero. On the fresh LUN it is; after the "data" check wrote random bytes
    # there, the target's MISCOMPARE is right and the test fails. Zero it
    # through another node than the test's first path.
    rc, out = run(["qemu-io", "-f", "raw", "-c", "write -z 128K 512", c.url(3)], timeout=60)
    if rc != 0:
        r.check("multipath: LBA 256 zeroed through node 3 for MultipathIO.CompareAndWrite", False, short(out))
        return
    rc, out = run([sys.executable, os.path.join(REPO, "Tools", "conformance", "iscsi_test_cu.py"),
                   "--url", c.url(1), "--multipath-url", c.url(2), "--suite", "MultipathIO",
                   "--expected", os.path.join(REPO, "Tools", "conformance", "expected-all.txt"),
                   "--expected", os.path.join(HERE, "expected-all-cluster.txt"),
                   "--label", "multipath", "--timeout", "180", "--log", os.path.join(work, "iscsi-test-cu-multipath.log")],
                  timeout=240)
    lines = [line for line in out.splitlines() if "REGRESSION" in line or line.startswith("multipath:")]
    r.check("multipath: iscsi-test-cu ALL.MultipathIO with its two paths on node 1 and node 2",
            rc == 0, short("\n".join(lines)))


def check_data(c, r, work, args):
    size = c.lun_bytes
    src = os.path.join(work, "random.img")
    with open(src, "wb") as f:
        f.write(os.urandom(size))
    rc, out = run(["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", src, c.url(1)], timeout=300)
    wrote = r.check(f"data: {size // MiB} MiB of random data written through node 1 (qemu-img convert -n)",
                    rc == 0, short(out) if rc else "")
    for i in (2, 3):
        back = os.path.join(work, f"back{i}.img")
        rc, out = run(["qemu-img", "convert", "-f", "raw", "-O", "raw", c.url(i), back], timeout=300)
        if rc != 0:
            r.check(f"data: reads back byte-identical through node {i}", False, "qemu-img convert: " + short(out))
            continue
        same = subprocess.run(["cmp", "-s", "-n", str(size), src, back]).returncode == 0
        r.check(f"data: reads back byte-identical through node {i}", wrote and same,
                "" if same else diff_report(src, back, size))
        os.remove(back)
    c.random_image = src


def check_pattern(c, r, work, args):
    rng = "7M 3M"
    rc, out = run(["qemu-io", "-f", "raw", "-c", f"write -P 0x5a {rng}", c.url(2)], timeout=60)
    r.check("pattern: qemu-io write -P 0x5a 7M 3M (spans the 8 MiB sub-unit boundary) through node 2",
            rc == 0 and "wrote 3145728/3145728" in out, short(out) if rc else "")
    for i in (3, 1):
        rc, out = run(["qemu-io", "-f", "raw", "-c", f"read -P 0x5a {rng}", c.url(i)], timeout=60)
        r.check(f"pattern: read -P 0x5a 7M 3M through node {i}", rc == 0 and "verification failed" not in out,
                short(out))


def check_discovery(c, r, work, args):
    want = {f"127.0.0.1:{c.portal(i)},{c.group(i)}" for i in localcluster.NODES}
    for i in localcluster.NODES:
        rc, out = run(["iscsi-ls", "-s", f"iscsi://127.0.0.1:{c.portal(i)}"], timeout=30)
        got = set(re.findall(rf"^Target:{re.escape(c.target)} Portal:(\S+)", out, re.M))
        lun = re.search(r"^Lun:0\s+Type:DIRECT_ACCESS", out, re.M) is not None
        r.check(f"discovery: iscsi-ls -s through node {i} lists {c.target} on {' '.join(sorted(want))}",
                rc == 0 and got == want and lun, f"got {sorted(got)}" + ("" if lun else "; no Lun:0 line") +
                ("" if got == want else " | " + short(out, 300)))
    if shutil.which("iscsiadm"):
        rc, out = run(["iscsiadm", "-m", "discovery", "-t", "sendtargets", "-p", f"127.0.0.1:{c.portal(2)}",
                       "-o", "nonpersistent"], timeout=30)
        got = set(re.findall(rf"^(\S+) {re.escape(c.target)}$", out, re.M))
        if not got and "can not connect to iSCSI daemon" in out:
            # open-iscsi's iscsiadm does SendTargets through iscsid; none runs on this host
            # (the VM stage runs one): reported, not judged
            info("iscsiadm is installed but no iscsid runs here: SendTargets through iscsiadm not checked "
                 "(the VM stage's cluster scenario does it)")
            return
        r.check(f"discovery: iscsiadm -m discovery -t sendtargets -p 127.0.0.1:{c.portal(2)} lists all three portals",
                got == want, f"got {sorted(got)}" + ("" if got == want else " | " + short(out, 300)))
    else:
        info("iscsiadm not installed (open-iscsi): SendTargets through it is checked in the VM stage")


def raw_identity(port, target, isid):
    """{name: bytes} of the identity answers through one portal (pr_client.py's initiator)."""
    s = Session("127.0.0.1", port, "iqn.2026-11.dev.tessera:identity-check", target, isid)
    try:
        for _ in range(5):  # clear the power-on / reset unit attentions
            if s.command(scsi.tur()).good:
                break
        out = {}

        def get(name, cdb, length):
            r = s.command(cdb, read_length=length)
            out[name] = r.data if r.good else f"{r}".encode()

        get("standard INQUIRY", bytes([0x12, 0, 0, 0x04, 0x00, 0]), 1024)
        for page in (0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2):
            get(f"VPD {page:#04x}", bytes([0x12, 1, page, 0x04, 0x00, 0]), 1024)
        get("READ CAPACITY(16)", bytes([0x9E, 0x10]) + bytes(8) + (32).to_bytes(4, "big") + bytes(2), 32)
        get("REPORT TARGET PORT GROUPS", bytes([0xA3, 0x0A, 0, 0, 0, 0]) + (1024).to_bytes(4, "big") + bytes(2), 1024)
        return out
    finally:
        s.close()


def designators(page):
    """VPD 0x83 -> [(association, type, header bytes, designator bytes)]."""
    out = []
    if len(page) < 4:
        return out
    body = page[4:4 + int.from_bytes(page[2:4], "big")]
    i = 0
    while i + 4 <= len(body):
        n = body[i + 3]
        out.append(((body[i + 1] >> 4) & 3, body[i + 1] & 0x0F, body[i:i + 4], body[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def check_identity(c, r, work, args):
    raw = {}
    for i in localcluster.NODES:
        try:
            raw[i] = raw_identity(c.portal(i), c.target, bytes([0x80, 0, 0, 0, 0x10, i]))
        except Exception as e:  # noqa: BLE001 - any failure is the check's detail
            raw[i] = None
            info(f"node {i}: identity session failed: {e}")
    if any(v is None for v in raw.values()):
        r.check("identity: INQUIRY / VPD / READ CAPACITY(16) through every node", False,
                "a session failed: " + ", ".join(f"node {i}" for i, v in raw.items() if v is None))
        return
    text = {}
    tools = {"standard INQUIRY": ["iscsi-inq"], "VPD 0x80": ["iscsi-inq", "-e", "1", "-c", "128"],
             "VPD 0xb0": ["iscsi-inq", "-e", "1", "-c", "176"], "VPD 0xb1": ["iscsi-inq", "-e", "1", "-c", "177"],
             "VPD 0xb2": ["iscsi-inq", "-e", "1", "-c", "178"], "READ CAPACITY(16)": ["iscsi-readcapacity16"]}
    for name, cmd in tools.items():
        text[name] = {i: run(cmd + [c.url(i)], timeout=30) for i in localcluster.NODES}
    for name in ("standard INQUIRY", "VPD 0x00", "VPD 0x80", "VPD 0xb0", "VPD 0xb1", "VPD 0xb2", "READ CAPACITY(16)"):
        answers = [raw[i][name] for i in localcluster.NODES]
        same_raw = all(a == answers[0] for a in answers)
        detail = "" if same_raw else " / ".join(f"node {i}: {raw[i][name].hex()}" for i in localcluster.NODES)
        same_text = True
        if name in text:
            outs = [text[name][i] for i in localcluster.NODES]
            same_text = all(o == outs[0] for o in outs) and outs[0][0] == 0
            if not same_text:
                detail += (" | " if detail else "") + " / ".join(
                    f"node {i} ({text[name][i][0]}): {short(text[name][i][1], 160)}" for i in localcluster.NODES)
        tool = {"READ CAPACITY(16)": " and iscsi-readcapacity16", "VPD 0x00": ""}.get(name, " and iscsi-inq")
        r.check(f"identity: {name} byte-identical on the three nodes (raw{tool})",
                same_raw and same_text and not answers[0].startswith(b"status"), detail or f"{len(answers[0])} bytes")

    # VPD 0x83: the same but for the target port's own designators.
    parsed = {i: designators(raw[i]["VPD 0x83"]) for i in localcluster.NODES}
    port_types = {4: "relative target port", 5: "target port group", 8: "target port name"}
    common = {i: [d for d in parsed[i] if not (d[0] == 1 and d[1] in port_types)] for i in localcluster.NODES}
    problems = []
    if not all(common[i] == common[1] for i in localcluster.NODES):
        problems.append("logical-unit / target-device designators differ: " +
                        " / ".join(f"node {i}: {[(d[0], d[1], d[3].hex()) for d in common[i]]}" for i in localcluster.NODES))
    if not any(d[0] == 0 and d[1] == 3 for d in common[1]):
        problems.append("no NAA designator for the logical unit")
    seen = []
    for i in localcluster.NODES:
        port = {d[1]: d[3] for d in parsed[i] if d[0] == 1 and d[1] in port_types}
        rel = int.from_bytes(port[4][2:4], "big") if 4 in port and len(port[4]) >= 4 else None
        tpg = int.from_bytes(port[5][2:4], "big") if 5 in port and len(port[5]) >= 4 else None
        name = port[8].rstrip(b"\0").decode("utf-8", "replace") if 8 in port else None
        seen.append(f"node {i}: relative port {rel}, port group {tpg}, port name {name}")
        if rel != i:
            problems.append(f"node {i}: relative target port {rel}, want {i}")
        if tpg != i:
            problems.append(f"node {i}: target port group {tpg}, want {i}")
        want_name = f"{c.target},t,0x{c.group(i):04x}"
        if name is not None and name.lower() != want_name.lower():
            problems.append(f"node {i}: target port name {name!r}, want {want_name!r}")
    r.check("identity: VPD 0x83 identical on the three nodes except the target port (relative port and "
            "port group 1, 2, 3)", not problems, "; ".join(problems) if problems else "; ".join(seen))
    # ARCHITECTURE.md rule 4 and "ALUA": the same REPORT TARGET PORT GROUPS on every node, one
    # active/optimized group per node whose one relative target port is the node's tag
    # (length-only header; descriptor: state, supported states, group, status, count, then ports).
    rtpg = [raw[i]["REPORT TARGET PORT GROUPS"] for i in localcluster.NODES]
    tags = [c.group(i).to_bytes(2, "big") for i in localcluster.NODES]
    want = b"".join(bytes([0x00, 0x8F]) + t + bytes([0, 0, 0, 1, 0, 0]) + t for t in tags)
    want = len(want).to_bytes(4, "big") + want
    r.check("identity: REPORT TARGET PORT GROUPS identical on the three nodes (groups 1, 2, 3 active/optimized)",
            all(x == want for x in rtpg), " / ".join(f"node {i}: {rtpg[i - 1].hex()}" for i in localcluster.NODES))


class IOLoop(threading.Thread):
    """qemu-io write -P then read -P of 30M..34M (across a sub-unit boundary) through one portal, until stopped."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.halt = threading.Event()
        self.iterations = 0
        self.errors = []

    def run(self):
        while not self.halt.is_set():
            pattern = 0x10 + self.iterations % 0xE0
            rc, out = run(["qemu-io", "-f", "raw", "-c", f"write -P {pattern:#x} 30M 4M",
                           "-c", f"read -P {pattern:#x} 30M 4M", self.url], timeout=60)
            self.iterations += 1
            if rc != 0 or "failed" in out.lower() or "error" in out.lower():
                self.errors.append(f"iteration {self.iterations}: exit {rc}: {short(out, 300)}")


def vm_hwm_kib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def check_hostile(c, r, work, args):
    port = c.wire(2)
    if port is None:
        r.check("hostile: node 2 has a wire port (cluster.wire in its TOML)", False, "no wire key")
        return
    node2 = c.procs[2].pid
    hwm_before = vm_hwm_kib(node2)
    lun = peerwire.lun_id(c.target, 0)
    loop = IOLoop(c.url(2))
    loop.start()
    time.sleep(1.0)
    T = args.wire_timeout
    key = cluster_secret.read(c.secret_path(2))

    def connect():
        return peerwire.Connection("127.0.0.1", port, timeout=T, secret=key)

    def refused(outcome):
        kind, frame, _ = outcome
        return kind == "closed" or (kind == "frame" and frame[0] == peerwire.ERROR)

    # (o) the cluster handshake: nothing reaches the peer protocol without the secret
    outcomes = {}
    for what, secret in (("the cluster's secret", key), ("another secret", b"0123456789abcdef-not-the-secret")):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=T) as sock:
                outcomes[what] = cluster_secret.handshake(sock, secret, b"PEER", check_responder=False)
        except OSError as e:
            outcomes[what] = f"connect failed: {e}"
    try:
        with peerwire.Connection("127.0.0.1", port, timeout=T) as conn:
            conn.send(peerwire.hello(1, 1, 99))
            outcomes["a hello without the handshake"] = conn.outcome()[0]
    except (OSError, peerwire.Closed) as e:
        outcomes["a hello without the handshake"] = f"closed: {e}"
    r.check("hostile (o): node 2's wire port takes the cluster handshake with the secret and refuses another "
            "secret and a hello without the handshake",
            outcomes.get("the cluster's secret") == "accepted" and outcomes.get("another secret") == "refused"
            and str(outcomes.get("a hello without the handshake")).startswith("closed"),
            "; ".join(f"{w}: {o}" for w, o in outcomes.items()))

    # (i) garbage after the handshake, before any hello
    results = []
    seeded = random.Random(0x7e55e4a).randbytes(4096)
    cases = [("4 KiB of random bytes, then end of stream", seeded, True),
             ("an HTTP request", b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", False),
             ("a complete frame of unknown type 0xee before hello", peerwire.frame(0xEE, 7, b"\x01" * 23), False),
             ("a hello with magic 'XXXX'", peerwire.frame(peerwire.HELLO, 0, b"XXXX" + struct.pack(">HHQ", 1, 1, 99)), False),
             ("a hello offering only version 99", peerwire.hello(99, 99, 99), False),
             ("a frame shorter than its header (length 3)", struct.pack(">I", 3) + b"\x01\x00\x00", False)]
    for what, raw, eof in cases:
        try:
            with connect() as conn:
                conn.send(raw)
                if eof:
                    conn.shutdown_write()
                outcome = conn.outcome()
        except (OSError, peerwire.Closed) as e:
            outcome = ("closed", None, f"connection failed/closed: {e}")
        results.append((what, refused(outcome), outcome[2]))
    r.check("hostile (i): garbage on node 2's wire port gets an error frame or a close, never a hang",
            all(ok for _, ok, _ in results), "; ".join(f"{w}: {d}" for w, ok, d in results if not ok) or
            "; ".join(f"{w}: {d}" for w, _, d in results))

    # (ii) a length field of 1 GiB, before and after hello
    results = []
    for after_hello in (False, True):
        what = "after hello" if after_hello else "before hello"
        try:
            with connect() as conn:
                if after_hello:
                    conn.hello()
                conn.send(struct.pack(">IBQ", 1 << 30, peerwire.REQUEST, 1) + bytes([peerwire.READ]) + b"\0" * 64)
                outcome = conn.outcome()
        except (OSError, peerwire.Closed, ValueError) as e:
            outcome = ("closed", None, f"{type(e).__name__}: {e}")
        results.append((what, refused(outcome), outcome[2]))
    hwm_after = vm_hwm_kib(node2)
    grew = (hwm_after - hwm_before) if hwm_before is not None and hwm_after is not None else 0
    r.check("hostile (ii): a frame whose length says 1 GiB gets an error frame or a close (no 1 GiB allocation)",
            all(ok for _, ok, _ in results) and grew < 512 * 1024,
            "; ".join(f"{w}: {d}" for w, _, d in results) + f"; node 2 peak RSS grew {grew // 1024} MiB")

    # (iii) unknown request kind after a good hello
    detail = ""
    try:
        with connect() as conn:
            version, node = conn.hello()
            info(f"wire hello: helloAck version {version} from node {node}")
            conn.send(peerwire.request(0x1234, 0x7F, b"\0" * 32))
            kind, frame, detail = conn.outcome()
            ok = refused((kind, frame, detail)) or (
                kind == "frame" and frame[0] == peerwire.REPLY and frame[1] == 0x1234
                and peerwire.parse_reply(frame[2])["status"] == peerwire.FAILURE)
    except (OSError, peerwire.Closed, ValueError) as e:
        ok, detail = False, f"hello failed: {type(e).__name__}: {e}"
    r.check("hostile (iii): after a good hello, request kind 0x7f gets a failure reply, an error frame or a close",
            ok, detail)

    # (iv) stale epoch (0): a failure reply with code 1 (stale epoch), on the same connection
    codes, detail, ok = [], "", True
    sub_units = (c.lun_bytes + SUB_UNIT - 1) // SUB_UNIT
    try:
        with connect() as conn:
            conn.hello()
            for index in range(sub_units):
                rid = 0x100 + index
                ftype, got_rid, body = conn.call(peerwire.read(rid, lun, index, 0, 0, 8))
                if ftype != peerwire.REPLY or got_rid != rid:
                    ok = False
                    codes.append(f"{index}: {peerwire.describe(ftype, got_rid, body)}")
                    break
                rep = peerwire.parse_reply(body)
                if rep["status"] != peerwire.FAILURE:
                    ok = False
                    codes.append(f"{index}: {rep['status_name']} (a stale read was served)")
                    continue
                codes.append(f"{index}: {rep['code']} {rep['code_name']}" +
                             (f" (current {rep['epoch']})" if rep["epoch"] is not None else ""))
                if rep["code"] not in (peerwire.STALE_EPOCH, 2):
                    ok = False
            stale = sum(1 for x in codes if ": 1 stale epoch" in x)
            ok = ok and stale > 0
            detail = "by sub-unit: " + ", ".join(codes)
    except (OSError, peerwire.Closed, ValueError, socket.timeout) as e:
        ok, detail = False, f"{type(e).__name__}: {e}; so far {codes}"
    r.check("hostile (iv): after a good hello, reads with epoch 0 get status 4 failure, code 1 stale epoch "
            "(code 2 where node 2 holds no replica)", ok, detail)

    # (v) a write with a stale epoch is refused and changes nothing (read back through node 1)
    try:
        s = Session("127.0.0.1", c.portal(1), "iqn.2026-11.dev.tessera:stale-check", c.target,
                    bytes([0x80, 0, 0, 0, 0x11, 1]))
        for _ in range(5):
            if s.command(scsi.tur()).good:
                break
        read16 = scsi.read16(0, 8)
        before = s.command(read16, read_length=4096).data
        with connect() as conn:
            conn.hello()
            ftype, rid, body = conn.call(peerwire.write(0x200, lun, 0, 0, 0, 8, b"\xee" * 4096))
        refused_write = ftype == peerwire.REPLY and peerwire.parse_reply(body)["status"] == peerwire.FAILURE
        after = s.command(read16, read_length=4096).data
        s.close()
        ok = refused_write and before == after and len(after) == 4096
        detail = peerwire.describe(ftype, rid, body) + ("" if before == after else "; LBA 0..7 CHANGED")
    except (OSError, peerwire.Closed, ValueError, RuntimeError, socket.timeout) as e:
        ok, detail = False, f"{type(e).__name__}: {e}"
    r.check("hostile (v): a write with epoch 0 to sub-unit 0 is refused and LBA 0..7 are unchanged (read via node 1)",
            ok, detail)

    time.sleep(1.0)
    loop.halt.set()
    loop.join(timeout=90)
    r.check("hostile: node 2 still running after the hostile peer input", c.alive(2))
    r.check(f"hostile: the qemu-io write/read loop through node 2 saw no error ({loop.iterations} iterations)",
            loop.iterations >= 2 and not loop.errors and not loop.is_alive(),
            "; ".join(loop.errors[:3]) or ("" if loop.iterations >= 2 else "fewer than 2 iterations ran"))


def check_suite(c, r, work, args):
    if SUITE_TARGET not in [name for name, _ in c.targets]:
        r.check("suite: the 256 MiB suite LUN is configured", False)
        return
    rc, out = run([sys.executable, os.path.join(REPO, "Tools", "conformance", "iscsi_test_cu.py"),
                   "--url", c.url(2, SUITE_TARGET), "--multipath-url", c.url(3, SUITE_TARGET), "--first", "MultipathIO",
                   "--expected", os.path.join(REPO, "Tools", "conformance", "expected-all.txt"),
                   "--expected", os.path.join(HERE, "expected-all-cluster.txt"),
                   "--label", "cluster", "--timeout", str(args.suite_timeout),
                   "--log", os.path.join(work, "iscsi-test-cu.log"), "--per-suite", os.path.join(work, "per-suite.json")]
                  + args.suite_args, timeout=args.suite_timeout * 3 + 300)
    for line in out.splitlines():
        if "REGRESSION" in line or "improved" in line or "slowest suites" in line or line.startswith("cluster:"):
            print(line, flush=True)
    summary = next((line for line in out.splitlines() if line.startswith("cluster:")), short(out, 200))
    r.check("suite: iscsi-test-cu -t ALL through node 2 (expected-all.txt + expected-all-cluster.txt)",
            rc == 0, summary)


TEST_UNIT_READY = bytes(6)
ASYMMETRIC_ACCESS_STATE_CHANGED, UNAVAILABLE = (0x06, 0x2A, 0x06), (0x02, 0x04, 0x0C)


def await_tur(s, want, within):
    """Polls TEST UNIT READY until it ends with sense `want` (None: GOOD); (seconds or None, senses seen)."""
    started, seen = time.monotonic(), []
    while time.monotonic() - started < within:
        result = s.command(TEST_UNIT_READY)
        status = result.status
        sense = (result.sense[2] & 0x0F, result.sense[12], result.sense[13]) \
            if status == 2 and len(result.sense) >= 14 else None
        if sense and sense not in seen:
            seen.append(sense)
        if (status == 0 and want is None) or (sense is not None and sense == want):
            return time.monotonic() - started, seen
        time.sleep(0.1)
    return None, seen


def rtpg_states(s):
    """{group: (ASYMMETRIC ACCESS STATE, STATUS CODE)} of REPORT TARGET PORT GROUPS."""
    result = s.command(bytes([0xA3, 0x0A, 0, 0, 0, 0]) + (1024).to_bytes(4, "big") + bytes(2), read_length=1024)
    status, d = result.status, result.data
    groups, i = {}, 4
    while status == 0 and i + 8 <= len(d):
        groups[int.from_bytes(d[i + 2:i + 4], "big")] = (d[i] & 0x0F, d[i + 5])
        i += 8 + 4 * d[i + 7]
    return groups


def check_alua(c, r, work, args):
    """ARCHITECTURE.md "ALUA": a node without its lease is unavailable, and says so."""
    s = Session("127.0.0.1", c.portal(1), "iqn.2026-11.dev.tessera:alua-check", c.target, bytes([0x80, 0, 0, 0, 0x20, 1]))
    try:
        t, seen = await_tur(s, None, within=10)
        states = rtpg_states(s)
        r.check("alua: before: TEST UNIT READY GOOD on node 1, RTPG groups 1, 2, 3 active/optimized",
                t is not None and states == {1: (0, 0), 2: (0, 0), 3: (0, 0)}, f"senses {seen}, groups {states}")
        stopped = [2, 3]
        for i in stopped:
            os.kill(c.procs[i].pid, signal.SIGSTOP)
        try:
            t, seen = await_tur(s, UNAVAILABLE, within=15)
            r.check("alua: nodes 2 and 3 stopped: node 1's lease lapses, 06/2A/06 then TEST UNIT READY 02/04/0C",
                    t is not None and ASYMMETRIC_ACCESS_STATE_CHANGED in seen,
                    f"after {t:.1f} s, senses {seen}" if t is not None else f"senses {seen}")
            states = rtpg_states(s)
            r.check("alua: RTPG through node 1: group 1 unavailable, altered implicitly (state 3, status 02h)",
                    states.get(1) == (3, 2), f"groups {states}")
            inquiry = s.command(bytes([0x12, 0, 0, 0, 96, 0]), read_length=96)
            status, inq = inquiry.status, inquiry.data
            # PERIPHERAL QUALIFIER stays 000b: Linux attaches sd only to 000b (and LIO keeps it).
            r.check("alua: INQUIRY through the unavailable group: PERIPHERAL QUALIFIER 000b, TPGS 01b",
                    status == 0 and inq[0] >> 5 == 0 and (inq[5] >> 4) & 3 == 1, inq[:8].hex())
        finally:
            for i in stopped:
                os.kill(c.procs[i].pid, signal.SIGCONT)
        t, seen = await_tur(s, None, within=30)
        states = rtpg_states(s)
        r.check("alua: nodes 2 and 3 continued: 06/2A/06 then TEST UNIT READY GOOD, RTPG group 1 active/optimized",
                t is not None and ASYMMETRIC_ACCESS_STATE_CHANGED in seen and states.get(1) == (0, 0),
                f"after {t:.1f} s, senses {seen}, groups {states}" if t is not None else f"senses {seen}")
    finally:
        s.close()


CHECKS = {"multipath": check_multipath, "data": check_data, "pattern": check_pattern,
          "discovery": check_discovery, "identity": check_identity, "hostile": check_hostile, "suite": check_suite,
          "alua": check_alua}


def main():
    # no abbreviations: unknown options (e.g. --suite Read10) go to the suite runner
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                 allow_abbrev=False)
    ap.add_argument("--tesserad", required=True)
    ap.add_argument("--base-port", type=int, default=None,
                    help="rewrite the TOMLs' ports: portal B+i, store B+10+i, wire B+20+i, admin B+30+i")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--checks", default=",".join(ALL_CHECKS), help="comma-separated subset of " + ",".join(ALL_CHECKS))
    ap.add_argument("--strip-new-keys", action="store_true",
                    help="drop wire/replicas/sub_unit_size from the TOMLs (a tesserad without the distributed LUN)")
    ap.add_argument("--suite-timeout", type=int, default=300, help="per-suite timeout of iscsi-test-cu")
    ap.add_argument("--wire-timeout", type=float, default=5.0, help="socket timeout of each hostile peer case")
    args, rest = ap.parse_known_args()
    args.suite_args = rest  # anything else goes to the suite runner (e.g. --suite Read10)
    wanted = [x for x in args.checks.split(",") if x]
    unknown = [x for x in wanted if x not in CHECKS]
    if unknown:
        ap.error(f"unknown checks {unknown}")

    def prepare(c):
        c.lun_bytes = localcluster.parse_size(dict(c.targets[0][1])[0])
    return run_stage(args, CHECKS, wanted, "tessera-data-", node1_extra=SUITE_TOML if "suite" in wanted else "",
                     all_extra=ISCSI_TOML, prepare=prepare)

if __name__ == "__main__":
    results = main()
    print(f"data: {results.passed} passed, {results.failed} failed")
    sys.exit(1 if results.failed else 0)
