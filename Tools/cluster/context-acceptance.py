#!/usr/bin/env python3
"""The LUN's SCSI context across nodes, with real clients: three tesserad nodes
(Targets/cluster-node{1,2,3}.toml), one distributed LUN, initiators on different
nodes (Tools/lib/iscsi_client.py; ARCHITECTURE.md "Shared context: the rules").

Who is where (each node is its own target port group and relative target port):
  A  iqn.2026-11.dev.tessera:ctx-a through node 1 (InitialR2T=Yes, ImmediateData=No: every byte R2T-solicited)
  B  iqn.2026-11.dev.tessera:ctx-b through node 2 (immediate data, unsolicited Data-Out, then R2Ts)
  C  iqn.2026-11.dev.tessera:ctx-c through node 3, never registered (immediate data, then R2Ts)
  O1, O2, O3  ...:ctx-observer through nodes 1, 2, 3: PERSISTENT RESERVE IN, read-back, cleanup
The nodes' [iscsi] limits are small (MaxRecvDataSegmentLength 16 KiB, FirstBurstLength 32 KiB,
MaxBurstLength 64 KiB, NOP-In every 2 s) so 128 KiB commands take several PDUs, R2Ts and pings.
Before each check every node's PR state is cleared (an observer registers and CLEARs through each
node; a LOGICAL UNIT RESET where an SPC-2 reservation refuses it) and every session's unit
attentions are drained.

Checks (--checks picks some; each prints "PASS name: detail" / "FAIL name: detail"):
  register       REGISTER through A and B; READ KEYS through node 3 = both keys, same PRgeneration as 1 and 2
  reserve        each of the six types: READ RESERVATION through node 2; READ/WRITE from B (node 2) and C
                 (node 3) GOOD or RESERVATION CONFLICT as SPC-4 table 63 says; RELEASE; gone on every node
  preempt        B PREEMPTs A's key through node 2: A gets 06/2A/05, then RESERVATION CONFLICT
  preempt-abort  A's WRITE outstanding on node 1 (Data-Out held back); B PREEMPT AND ABORT through node 2;
                 the data never lands (read through node 3); A gets 06/2A/05, then conflicts
  clear          B CLEARs through node 2: nothing left on any node; A gets 06/2A/03; A can write
  full-status    READ FULL STATUS through each node: A on node 1's relative target port, B on node 2's,
                 their TransportIDs
  register-move  A moves its reservation to B's I_T nexus (node 2); READ RESERVATION through node 3
  spc2-reset     RESERVE(6) by A on node 1; B conflicts on node 2; LOGICAL UNIT RESET by B on node 2 frees
                 it; B and A get 06/29/xx; B writes
  spc2-logout    RESERVE(6) by A on node 1; A logs out; B writes through node 2
  concurrent     20 I_T nexuses through node 1 and 20 through node 2 register/unregister in two threads;
                 READ KEYS on every node shows exactly the expected keys
  tmf            ABORT TASK of A's own held WRITE (node 1); CLEAR TASK SET by B through node 2 while A's
                 WRITE is held on node 1 (never lands; A gets 06/2F/00)
  nop            an idle session answers the target's NOP-In pings and still works
  libiscsi       iscsi-test-cu MultipathIO with its paths on node 2 and node 1, then the persistent
                 reservation and RESERVE(6) suites through node 2 (Tools/conformance expectations)
Ends with "context: N passed, N failed".

--one-node puts every session on node 1: the same checks through one node, which the single-node
target already gets right; a failure there is this client's (or a single-node bug), not the cluster's.

Usage: context-acceptance.py --tesserad BIN [--base-port B] [--keep] [--checks a,b,...] [--one-node]
                             [--suite-timeout S]
"""
import argparse
import os
import sys
import threading

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "Tools", "lib"))
import iscsi_client as ic  # noqa: E402
import scsi_cmds as scsi  # noqa: E402
from stagekit import info, run, run_stage, short  # noqa: E402

IQN = "iqn.2026-11.dev.tessera:"
SUITE_TARGET = IQN + "cluster-context-suite"
ALL_CHECKS = ["register", "reserve", "preempt", "preempt-abort", "clear", "full-status", "register-move",
              "spc2-reset", "spc2-logout", "concurrent", "tmf", "nop", "libiscsi"]

# Appended to node 1's TOML: a LUN of its own for libiscsi (MultipathIO.CompareAndWrite wants
# LBAs nothing has written; the suites' leftovers stay off the LUN the checks use).
SUITE_TOML = f"""
[[target]]
name = "{SUITE_TARGET}"
alias = "cluster-context-suite"

[[target.lun]]
id = 0
size = "64MiB"
block_size = 512
backing = "file"
path = "context-suite.img"
thin = true
serial = "TSR-CTX-SUITE-0"
replicas = 2
sub_unit_size = "8MiB"
"""
# Appended to every node: small limits, so one 128 KiB command is many PDUs; frequent NOP-Ins.
ISCSI_TOML = """
[iscsi]
max_recv_data_segment_length = 16384
first_burst_length = 32768
max_burst_length = 65536
nop_in_interval = 2
nop_in_timeout = 20
"""

# role: (initiator name, ISID, node, what it offers at login)
ROLES = {
    "A": (IQN + "ctx-a", "80000000a001", 1, {"InitialR2T": "Yes", "ImmediateData": "No"}),
    "B": (IQN + "ctx-b", "80000000b002", 2, {"InitialR2T": "No", "ImmediateData": "Yes"}),
    "C": (IQN + "ctx-c", "80000000c003", 3, {"InitialR2T": "Yes", "ImmediateData": "Yes"}),
    "O1": (IQN + "ctx-observer", "8000000000e1", 1, {}),
    "O2": (IQN + "ctx-observer", "8000000000e2", 2, {}),
    "O3": (IQN + "ctx-observer", "8000000000e3", 3, {}),
}
KEY_A, KEY_B, KEY_B_MOVED, KEY_CLEANUP = 0xAAAA0000000000A1, 0xBBBB0000000000B2, 0xBBBB0000000000B7, 0xC1EA000000000C1E

# SPC-4 §5.13.1, table 63 (READ is SBC-3's read class, WRITE its write class), for an I_T nexus that
# does not hold the reservation: (READ allowed, WRITE allowed), registered and not registered.
# All-registrants types (7, 8) make every registrant a holder.
ACCESS = {
    scsi.WRITE_EXCLUSIVE: {"registered": (True, False), "unregistered": (True, False)},
    scsi.EXCLUSIVE_ACCESS: {"registered": (False, False), "unregistered": (False, False)},
    scsi.WRITE_EXCLUSIVE_REGISTRANTS_ONLY: {"registered": (True, True), "unregistered": (True, False)},
    scsi.EXCLUSIVE_ACCESS_REGISTRANTS_ONLY: {"registered": (True, True), "unregistered": (False, False)},
    scsi.WRITE_EXCLUSIVE_ALL_REGISTRANTS: {"registered": (True, True), "unregistered": (True, False)},
    scsi.EXCLUSIVE_ACCESS_ALL_REGISTRANTS: {"registered": (True, True), "unregistered": (False, False)},
}


def outcome(r):
    return "GOOD" if r.good else str(r)


class Ctx:
    """The sessions of one check: opened on first use, unit attentions drained, all closed at the end."""

    def __init__(self, c, args, tag):
        self.c, self.args, self.tag = c, args, tag
        self.sessions = {}
        self.notes = []
        self.block_size = args.block_size

    def node(self, role):
        return 1 if self.args.one_node else ROLES[role][2]

    def where(self, role):
        return f"{role} (node {self.node(role)})"

    def session(self, role):
        s = self.sessions.get(role)
        if s is not None and not s.closed:
            return s
        if s is not None:
            self.notes.append(f"{role}'s connection had closed; logged in again with the same ISID")
        initiator, isid, _, offer = ROLES[role]
        s = ic.Session("127.0.0.1", self.c.portal(self.node(role)), initiator, self.c.target,
                       bytes.fromhex(isid), offer=offer, timeout=self.args.command_timeout)
        self.sessions[role] = s
        settle(s)
        return s

    def cmd(self, role, cdb, data_out=b"", read_length=0, timeout=None):
        """A command from `role`; a connection failure or a timeout becomes a Result without status."""
        try:
            return self.session(role).command(cdb, data_out, read_length, timeout=timeout)
        except ic.ISCSIError as e:
            s = self.sessions.get(role)
            if s is not None and isinstance(e, ic.Timeout):
                s.close()  # its command window is unknown now
            return ic.Result(None, reason=f"{type(e).__name__}: {e}")

    def cmd_past_ua(self, role, cdb, data_out=b"", read_length=0, tries=6):
        """The command, repeated while it meets unit attentions (observers and access checks)."""
        for _ in range(tries):
            r = self.cmd(role, cdb, data_out, read_length)
            if not r.unit_attention():
                return r
        return r

    def write(self, role, lba, data, past_ua=True):
        run_ = self.cmd_past_ua if past_ua else self.cmd
        return run_(role, scsi.write10(lba, len(data) // self.block_size), data_out=data)

    def read(self, role, lba, length, past_ua=True):
        run_ = self.cmd_past_ua if past_ua else self.cmd
        return run_(role, scsi.read10(lba, length // self.block_size), read_length=length)

    def pr_out(self, role, action, params, pr_type=0, timeout=None):
        return self.cmd(role, scsi.pr_out(action, pr_type, len(params)), data_out=params, timeout=timeout)

    def register(self, role, key):
        return self.pr_out(role, scsi.PROUT_REGISTER, scsi.pr_out_params(0, key))

    def pr_in(self, node, action):
        r = self.cmd_past_ua(f"O{1 if self.args.one_node else node}", scsi.pr_in(action, 8192), read_length=8192)
        if not r.good:
            raise CheckError(f"PERSISTENT RESERVE IN through node {node}: {r}")
        return r.data

    def keys(self, node):
        return scsi.parse_read_keys(self.pr_in(node, scsi.PRIN_READ_KEYS))

    def reservation(self, node):
        return scsi.parse_read_reservation(self.pr_in(node, scsi.PRIN_READ_RESERVATION))[1]

    def expect_ua(self, role, asc, ascq=None):
        """(ok, detail): `role`'s next command (TEST UNIT READY) is CHECK CONDITION, UNIT ATTENTION,
        and the unit attentions it then reports include ASC/ASCQ (any ASCQ when None)."""
        seen = [self.cmd(role, scsi.tur())]
        while seen[-1].unit_attention() and len(seen) < 6:
            seen.append(self.cmd(role, scsi.tur()))
        ok = seen[0].unit_attention() and any(r.unit_attention(asc, ascq) for r in seen)
        return ok, f"{self.where(role)} TEST UNIT READY: " + ", then ".join(str(r) for r in seen)

    def clean_slate(self):
        """No registration, no reservation, no SPC-2 reservation on any node; unit attentions drained."""
        for node in self.nodes():
            o = f"O{node}"
            for attempt in range(2):
                r = self.pr_out(o, scsi.PROUT_REGISTER_AND_IGNORE, scsi.pr_out_params(0, KEY_CLEANUP))
                if r.conflict and attempt == 0:
                    # SPC-4 §5.13.3: an SPC-2 reservation of another nexus refuses PERSISTENT RESERVE OUT
                    code = self.session(o).tmf(ic.TMF_LOGICAL_UNIT_RESET)
                    self.notes.append(f"cleanup: LOGICAL UNIT RESET through node {node} (an SPC-2 reservation): "
                                      f"{ic.TMF_RESPONSES.get(code, code)}")
                    settle(self.session(o))
                    continue
                break
            if r.good:
                r = self.pr_out(o, scsi.PROUT_CLEAR, scsi.pr_out_params(KEY_CLEANUP))
            if not r.good:
                self.notes.append(f"cleanup through node {node}: {r}")
        for s in self.sessions.values():
            if not s.closed:
                try:
                    settle(s)
                except ic.ISCSIError:
                    s.close()

    def nodes(self):
        return (1,) if self.args.one_node else (1, 2, 3)

    def close(self):
        for s in self.sessions.values():
            if not s.closed:
                try:
                    s.logout(timeout=5)
                except ic.ISCSIError:
                    s.close()
        for note in self.notes:
            info(f"{self.tag}: {note}")
        self.notes = []


class CheckError(Exception):
    """A step a check needs did not work (reported as that check's failure)."""


def settle(s, tries=8):
    """TEST UNIT READY until it is not a unit attention; returns the unit attentions it drained."""
    drained = []
    for _ in range(tries):
        r = s.command(scsi.tur())
        if not r.unit_attention():
            break
        drained.append(str(r))
    return drained


def pattern(byte, length):
    return bytes([byte]) * length


def describe_block(data, want):
    if data == want:
        return "as expected"
    if len(data) != len(want):
        return f"{len(data)} bytes, want {len(want)}"
    first = next(i for i in range(len(data)) if data[i] != want[i])
    values = sorted(set(data))
    return f"differs from byte {first} (holds byte values {[hex(v) for v in values[:4]]})"


def let_go(s, task, within=5):
    """Sends a held task's data (answering its R2Ts); (its Result or None, what became of it)."""
    try:
        if not task.done:
            s.release(task)
        got = s.wait(task, timeout=within)
        return got, str(got)
    except ic.Timeout:
        return None, f"no status within {within} s (aborted without a response)"
    except ic.ISCSIError as e:
        return None, str(e)


def with_ctx(fn):
    """Runs a check with a fresh Ctx (clean slate first), closes its sessions after."""
    def wrapper(c, r, work, args):
        ctx = Ctx(c, args, fn.__name__.replace("check_", "").replace("_", "-"))
        try:
            ctx.clean_slate()
            fn(ctx, r)
        except CheckError as e:
            r.check(f"{ctx.tag}: ran to completion", False, str(e))
        finally:
            ctx.close()
    wrapper.__name__ = fn.__name__
    return wrapper


def need(ok, what):
    if not ok:
        raise CheckError(what)


def a_holds(ctx, pr_type, register_b=True):
    """A (and B) registered through their nodes; A holds a reservation of `pr_type`."""
    need(ctx.register("A", KEY_A).good, "A's REGISTER failed")
    need(not register_b or ctx.register("B", KEY_B).good, "B's REGISTER failed")
    res = ctx.pr_out("A", scsi.PROUT_RESERVE, scsi.pr_out_params(KEY_A), pr_type)
    need(res.good, f"A's RESERVE: {res}")


def a_learns(ctx, r, ua, write_allowed, status=None):
    """A's next command through its node reports the unit attention `ua` (ASC, ASCQ), unless `status`
    (the outstanding WRITE's own Result) already did; then A's WRITE is GOOD or RESERVATION CONFLICT."""
    if status is not None and status.unit_attention(*ua):
        ok, detail = True, f"reported on the outstanding WRITE itself: {status}"
    else:
        ok, detail = ctx.expect_ua("A", *ua)
    r.check(f"{ctx.tag}: A's next command through node {ctx.node('A')} gets 06/{ua[0]:02X}/{ua[1]:02X} "
            f"{ic.ASC_NAMES[ua]}", ok, detail)
    w = ctx.write("A", ctx.args.access_lba, pattern(0x41, ctx.args.access_bytes), past_ua=False)
    r.check(f"{ctx.tag}: A's WRITE through node {ctx.node('A')} then " +
            ("GOOD (nothing reserved)" if write_allowed else "gets RESERVATION CONFLICT"),
            w.good if write_allowed else w.conflict, outcome(w))


# --- the checks -------------------------------------------------------------

@with_ctx
def check_register(ctx, r):
    ra, rb = ctx.register("A", KEY_A), ctx.register("B", KEY_B)
    r.check(f"register: REGISTER through {ctx.where('A')} and {ctx.where('B')}", ra.good and rb.good,
            f"A: {outcome(ra)}, B: {outcome(rb)}")
    seen = {node: ctx.keys(node) for node in ctx.nodes()}
    last = ctx.nodes()[-1]
    gen, keys = seen[last]
    r.check(f"register: READ KEYS through node {last} shows A's and B's keys", sorted(keys) == sorted([KEY_A, KEY_B]),
            f"PRgeneration {gen}, keys {[hex(k) for k in keys]}")
    others = " and ".join(str(n) for n in ctx.nodes() if n != last) or "(none: --one-node)"
    r.check(f"register: READ KEYS through node {last} gives the same PRgeneration and keys as nodes {others}",
            all(v[0] == gen and sorted(v[1]) == sorted(keys) for v in seen.values()),
            "; ".join(f"node {n}: generation {g}, keys {[hex(k) for k in ks]}" for n, (g, ks) in seen.items()))


def check_reserve(c, r, work, args):
    for pr_type in (1, 3, 5, 6, 7, 8):
        reserve_one(c, r, work, args, pr_type)


def reserve_one(c, r, work, args, pr_type):
    ctx = Ctx(c, args, f"reserve type {pr_type}")
    name = f"reserve type {pr_type} ({scsi.PR_TYPE_NAMES[pr_type]})"
    try:
        ctx.clean_slate()
        need(ctx.register("A", KEY_A).good and ctx.register("B", KEY_B).good, "REGISTER of A or B failed")
        res = ctx.pr_out("A", scsi.PROUT_RESERVE, scsi.pr_out_params(KEY_A), pr_type)
        if not r.check(f"{name}: RESERVE through {ctx.where('A')}", res.good, outcome(res)):
            return
        node_b = ctx.node("B")
        held = ctx.reservation(node_b)
        # SPC-4 §6.15.3.2: an all-registrants reservation reports RESERVATION KEY 0
        want_key = 0 if pr_type in (7, 8) else KEY_A
        r.check(f"{name}: READ RESERVATION through node {node_b} shows key {want_key:#x}, type {pr_type}",
                held is not None and held[0] == want_key and held[2] == pr_type,
                "none" if held is None else f"key {held[0]:#x} scope {held[1]} type {held[2]}")
        lba = args.access_lba
        data = pattern(0x30 + pr_type, args.access_bytes)
        results, wrong = [], []
        for role, registered in (("A", None), ("B", "registered"), ("C", "unregistered")):
            want_read, want_write = (True, True) if registered is None else ACCESS[pr_type][registered]
            got_read = ctx.read(role, lba, len(data))
            got_write = ctx.write(role, lba, data)
            for op, got, want in (("READ", got_read, want_read), ("WRITE", got_write, want_write)):
                text = f"{ctx.where(role)} {op}: {outcome(got)}"
                good = got.good if want else got.conflict
                if not good:
                    wrong.append(f"{text}, want {'GOOD' if want else 'RESERVATION CONFLICT'}")
                results.append(text)
        r.check(f"{name}: READ and WRITE of the holder A, registered B and unregistered C as SPC-4 table 63 says",
                not wrong, "; ".join(wrong) if wrong else "; ".join(results))
        rel = ctx.pr_out("A", scsi.PROUT_RELEASE, scsi.pr_out_params(KEY_A), pr_type)
        left = {node: ctx.reservation(node) for node in ctx.nodes()}
        r.check(f"{name}: RELEASE through {ctx.where('A')}, then no reservation through any node",
                rel.good and all(v is None for v in left.values()),
                f"RELEASE: {outcome(rel)}; " + ", ".join(
                    f"node {n}: {'none' if v is None else f'key {v[0]:#x} type {v[2]}'}" for n, v in left.items()))
    except CheckError as e:
        r.check(f"{name}: ran to completion", False, str(e))
    finally:
        ctx.close()


@with_ctx
def check_preempt(ctx, r):
    a_holds(ctx, scsi.WRITE_EXCLUSIVE)
    p = ctx.pr_out("B", scsi.PROUT_PREEMPT, scsi.pr_out_params(KEY_B, KEY_A), scsi.WRITE_EXCLUSIVE)
    r.check(f"preempt: PREEMPT of A's key through {ctx.where('B')}", p.good, outcome(p))
    last = ctx.nodes()[-1]
    held = ctx.reservation(last)
    gen, keys = ctx.keys(last)
    r.check(f"preempt: through node {last} B holds WRITE EXCLUSIVE and A's key is gone",
            held is not None and held[0] == KEY_B and held[2] == 1 and keys == [KEY_B],
            ("no reservation" if held is None else f"reservation key {held[0]:#x} type {held[2]}") +
            f"; keys {[hex(k) for k in keys]}")
    # SPC-4 §5.13.11.4 (preempting): every I_T nexus that lost its registration gets
    # REGISTRATIONS PREEMPTED, which is 2A/05 (2A/03 is RESERVATIONS PREEMPTED).
    a_learns(ctx, r, (0x2A, 0x05), write_allowed=False)


@with_ctx
def check_preempt_abort(ctx, r):
    lba, length = ctx.args.abort_lba, ctx.args.access_bytes
    before = pattern(0x11, length)
    need(ctx.write("C", lba, before).good, "the baseline WRITE through C failed")
    a_holds(ctx, scsi.WRITE_EXCLUSIVE)
    a = ctx.session("A")
    task = a.start(scsi.write10(lba, length // ctx.block_size), data_out=pattern(0xEE, length), hold=True)
    try:
        asked = a.wait_r2t(task, timeout=5)
    except ic.ISCSIError as e:
        asked = False
        ctx.notes.append(f"waiting for the R2T: {e}")
    info(f"preempt-abort: A's WRITE of {length} bytes at LBA {lba} outstanding on node {ctx.node('A')}, "
         f"{'its first R2T received, data held back' if asked else 'no R2T yet, data held back'}")
    p = ctx.pr_out("B", scsi.PROUT_PREEMPT_AND_ABORT, scsi.pr_out_params(KEY_B, KEY_A), scsi.WRITE_EXCLUSIVE,
                   timeout=20)
    r.check(f"preempt-abort: PREEMPT AND ABORT of A's key through {ctx.where('B')} while A's WRITE is outstanding",
            p.good, outcome(p))
    # Now A lets its data go: an aborted task must not take it.
    got, fate = let_go(a, task)
    back = ctx.read(f"O{ctx.nodes()[-1]}", lba, length)
    r.check(f"preempt-abort: A's WRITE did not land (read through node {ctx.nodes()[-1]})",
            back.good and back.data == before and not (got is not None and got.good),
            f"A's WRITE after its data went: {fate}; read back: " +
            (describe_block(back.data, before) if back.good else str(back)))
    # SPC-4 §5.13.11.4 (PREEMPT AND ABORT): the preempted nexuses' tasks are aborted, so the WRITE ends
    # without a status (TAS = 0) or with TASK ABORTED (TAS = 1); a status of its own means it ran after.
    r.check(f"preempt-abort: A's outstanding WRITE on node {ctx.node('A')} was aborted (no status or TASK ABORTED)",
            got is None or got.status == ic.TASK_ABORTED, f"A's WRITE: {fate}")
    # A learns of the preemption on its next command; where the WRITE was not aborted, that was the WRITE.
    a_learns(ctx, r, (0x2A, 0x05), write_allowed=False, status=got)

@with_ctx
def check_clear(ctx, r):
    a_holds(ctx, scsi.EXCLUSIVE_ACCESS)
    cl = ctx.pr_out("B", scsi.PROUT_CLEAR, scsi.pr_out_params(KEY_B))
    r.check(f"clear: CLEAR through {ctx.where('B')}", cl.good, outcome(cl))
    left = {node: (ctx.keys(node), ctx.reservation(node)) for node in ctx.nodes()}
    r.check("clear: no registration and no reservation through any node",
            all(not ks[1] and res is None for ks, res in left.values()),
            "; ".join(f"node {n}: keys {[hex(k) for k in ks[1]]}, " +
                      ("no reservation" if res is None else f"reservation key {res[0]:#x} type {res[2]}")
                      for n, (ks, res) in left.items()))
    # SPC-4 §5.13.11 (the CLEAR service action, "clearing"): a unit attention for every registered
    # I_T nexus but the sender's, with RESERVATIONS PREEMPTED: 2A/03. (There is no "RESERVATIONS
    # CLEARED"; 2A/04 is RESERVATIONS RELEASED, for RELEASE of a registrants-only or
    # all-registrants reservation.)
    a_learns(ctx, r, (0x2A, 0x03), write_allowed=True)


@with_ctx
def check_full_status(ctx, r):
    a_holds(ctx, scsi.WRITE_EXCLUSIVE)
    want = {KEY_A: (True, ctx.c.group(ctx.node("A")), ctx.session("A").port_name.lower()),
            KEY_B: (False, ctx.c.group(ctx.node("B")), ctx.session("B").port_name.lower())}
    answers = {}
    for node in ctx.nodes():
        gen, entries = scsi.parse_full_status(ctx.pr_in(node, scsi.PRIN_READ_FULL_STATUS))
        answers[node] = entries
        got = {e["key"]: (e["holder"], e["relative_target_port"], e["transport_id"].lower()) for e in entries}
        problems = []
        if sorted(got) != sorted(want) or len(entries) != len(want):
            problems.append(f"keys {[hex(e['key']) for e in entries]}, want {[hex(k) for k in want]}")
        for key, (holder, rtpi, name) in want.items():
            if key not in got:
                continue
            g = got[key]
            e = next(x for x in entries if x["key"] == key)
            who = "A" if key == KEY_A else "B"
            if g[1] != rtpi:
                problems.append(f"{who}: relative target port {g[1]}, want {rtpi}")
            if g[2] != name or e["format"] != 1:
                problems.append(f"{who}: TransportID format {e['format']} {g[2]!r}, want format 1 {name!r}")
            if g[0] != holder or (holder and e["type"] != scsi.WRITE_EXCLUSIVE):
                problems.append(f"{who}: R_HOLDER {g[0]} type {e['type']}, want R_HOLDER {holder}"
                                + (" type 1" if holder else ""))
        r.check(f"full-status: READ FULL STATUS through node {node} lists A (relative target port "
                f"{want[KEY_A][1]}) and B (port {want[KEY_B][1]}) with their TransportIDs",
                not problems, "; ".join(problems) if problems else
                f"generation {gen}: " + ", ".join(f"{e['key']:#x} port {e['relative_target_port']} "
                                                  f"{e['transport_id']}{' holder' if e['holder'] else ''}"
                                                  for e in entries))


@with_ctx
def check_register_move(ctx, r):
    a_holds(ctx, scsi.WRITE_EXCLUSIVE, register_b=False)
    b = ctx.session("B")
    tid = scsi.transport_id(b.initiator, b.isid)
    params = scsi.register_and_move_params(KEY_A, KEY_B_MOVED, ctx.c.group(ctx.node("B")), tid)
    mv = ctx.pr_out("A", scsi.PROUT_REGISTER_AND_MOVE, params, scsi.WRITE_EXCLUSIVE)
    r.check(f"register-move: REGISTER AND MOVE through {ctx.where('A')} to B's I_T nexus "
            f"({b.port_name}, relative target port {ctx.c.group(ctx.node('B'))})", mv.good, outcome(mv))
    last = ctx.nodes()[-1]
    held = ctx.reservation(last)
    r.check(f"register-move: READ RESERVATION through node {last} shows B's new key {KEY_B_MOVED:#x}",
            held is not None and held[0] == KEY_B_MOVED and held[2] == scsi.WRITE_EXCLUSIVE,
            "none" if held is None else f"key {held[0]:#x} type {held[2]}")
    data = pattern(0x44, ctx.args.access_bytes)
    wb = ctx.write("B", ctx.args.access_lba, data)
    wa = ctx.write("A", ctx.args.access_lba, data)
    r.check(f"register-move: now B's WRITE through node {ctx.node('B')} is GOOD and A's through node "
            f"{ctx.node('A')} gets RESERVATION CONFLICT", wb.good and wa.conflict,
            f"B: {outcome(wb)}; A: {outcome(wa)}")


def spc2_reserved_by_a(ctx, r, data):
    """A takes RESERVE(6) through its node; B's WRITE through its node must meet RESERVATION CONFLICT."""
    rs = ctx.cmd("A", scsi.reserve6())
    need(rs.good, f"A's RESERVE(6) through node {ctx.node('A')}: {rs}")
    w = ctx.write("B", ctx.args.access_lba, data)
    r.check(f"{ctx.tag}: while A holds RESERVE(6) from node {ctx.node('A')}, B's WRITE through node "
            f"{ctx.node('B')} gets RESERVATION CONFLICT", w.conflict, outcome(w))


@with_ctx
def check_spc2_reset(ctx, r):
    data = pattern(0x45, ctx.args.access_bytes)
    spc2_reserved_by_a(ctx, r, data)
    try:
        code = ctx.session("B").tmf(ic.TMF_LOGICAL_UNIT_RESET, timeout=20)
        text = ic.TMF_RESPONSES.get(code, f"response {code}")
    except ic.ISCSIError as e:
        code, text = None, str(e)
    r.check(f"spc2-reset: LOGICAL UNIT RESET by B through node {ctx.node('B')}", code == 0, text)
    # SAM-5 §6.3.3: a logical unit reset sets a unit attention (29/03 BUS DEVICE RESET FUNCTION
    # OCCURRED, or another 29/xx) for every I_T nexus, through whichever port it came.
    ok, detail = ctx.expect_ua("B", 0x29)
    r.check(f"spc2-reset: B's next command through node {ctx.node('B')} gets 06/29/xx", ok, detail)
    ok, detail = ctx.expect_ua("A", 0x29)
    r.check(f"spc2-reset: A's next command through node {ctx.node('A')} gets 06/29/xx too", ok, detail)
    w = ctx.write("B", ctx.args.access_lba, data)
    r.check(f"spc2-reset: after the reset B's WRITE through node {ctx.node('B')} is GOOD", w.good, outcome(w))


@with_ctx
def check_spc2_logout(ctx, r):
    data = pattern(0x46, ctx.args.access_bytes)
    spc2_reserved_by_a(ctx, r, data)
    try:
        code = ctx.session("A").logout()
        text = f"Logout Response {code}"
    except ic.ISCSIError as e:
        code, text = None, str(e)
    r.check(f"spc2-logout: A logs out of node {ctx.node('A')}", code == 0, text)
    # SPC-2 §5.5.1 / SAM-5 §6.3.4: an I_T nexus loss releases the nexus's SPC-2 reservation.
    w = ctx.write("B", ctx.args.access_lba, data)
    r.check(f"spc2-logout: B's WRITE through node {ctx.node('B')} right after A's logout is GOOD", w.good, outcome(w))


def check_concurrent(c, r, work, args):
    ctx = Ctx(c, args, "concurrent")
    per_side = args.concurrent_keys
    sides = {"X": (IQN + "ctx-many-x", 1, 0x1000), "Y": (IQN + "ctx-many-y", 1 if args.one_node else 2, 0x2000)}
    expected = []
    for _, (_, _, base) in sides.items():
        for i in range(per_side):
            if i % 2 == 0:
                expected.append(base + i)
            elif i % 4 == 1:
                expected.append(base + 0x100 + i)
    barrier = threading.Barrier(len(sides), timeout=60)
    outcome_by_side = {}
    sessions = {}

    def side(label, initiator, node, base):
        errors, done = [], 0
        mine = sessions.setdefault(label, [])
        try:
            for i in range(per_side):
                s = ic.Session("127.0.0.1", c.portal(node), initiator, c.target,
                               bytes.fromhex(f"8000{base >> 8:02x}{i:06x}"), timeout=args.command_timeout)
                mine.append(s)
                settle(s)
            barrier.wait()

            def out(s, sa, key, sark, what):
                nonlocal done
                p = scsi.pr_out_params(key, sark)
                res = s.command(scsi.pr_out(sa, 0, len(p)), data_out=p)
                done += 1
                if not res.good:
                    errors.append(f"{what}: {res}")
            for i, s in enumerate(mine):
                out(s, scsi.PROUT_REGISTER, 0, base + i, f"register {base + i:#x}")
            for i, s in enumerate(mine):
                if i % 2 == 1:
                    out(s, scsi.PROUT_REGISTER, base + i, 0, f"unregister {base + i:#x}")
            for i, s in enumerate(mine):
                if i % 4 == 1:
                    out(s, scsi.PROUT_REGISTER, 0, base + 0x100 + i, f"register {base + 0x100 + i:#x}")
        except (ic.ISCSIError, threading.BrokenBarrierError) as e:
            errors.append(f"{type(e).__name__}: {e}")
        outcome_by_side[label] = (done, errors)

    try:
        ctx.clean_slate()
        threads = [threading.Thread(target=side, args=(label, *spec), daemon=True) for label, spec in sides.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        hung = [t.name for t in threads if t.is_alive()]
        errors = [f"{label}: {e}" for label, (_, errs) in outcome_by_side.items() for e in errs]
        done = sum(d for d, _ in outcome_by_side.values())
        r.check(f"concurrent: {per_side} I_T nexuses through node {sides['X'][1]} and {per_side} through node "
                f"{sides['Y'][1]} register, unregister and re-register in two threads, every PR OUT GOOD",
                not hung and not errors and done == len(sides) * (per_side + per_side // 2 + (per_side + 2) // 4),
                f"{done} PERSISTENT RESERVE OUT commands" + (f"; hung: {hung}" if hung else "") +
                ("; " + "; ".join(errors[:6]) if errors else ""))
        seen = {node: ctx.keys(node) for node in ctx.nodes()}
        want = sorted(expected)
        for node, (gen, keys) in sorted(seen.items(), key=lambda kv: -kv[0]):
            missing = sorted(set(want) - set(keys))
            extra = sorted(set(keys) - set(want))
            dups = len(keys) - len(set(keys))
            r.check(f"concurrent: READ KEYS through node {node} shows exactly the {len(want)} expected keys",
                    sorted(keys) == want,
                    f"PRgeneration {gen}, {len(keys)} keys" +
                    (f"; missing {[hex(k) for k in missing]}" if missing else "") +
                    (f"; unexpected {[hex(k) for k in extra]}" if extra else "") +
                    (f"; {dups} duplicates" if dups else ""))
    finally:
        for mine in sessions.values():
            for s in mine:
                try:
                    s.logout(timeout=5)
                except ic.ISCSIError:
                    s.close()
        try:
            ctx.clean_slate()
        finally:
            ctx.close()


@with_ctx
def check_tmf(ctx, r):
    lba, length = ctx.args.abort_lba, ctx.args.access_bytes
    before = pattern(0x12, length)
    need(ctx.write("C", lba, before).good, "the baseline WRITE through C failed")
    last = f"O{ctx.nodes()[-1]}"
    a = ctx.session("A")

    # (a) ABORT TASK of A's own held write, on A's node
    task = a.start(scsi.write10(lba, length // ctx.block_size), data_out=pattern(0xE1, length), hold=True)
    asked = a.wait_r2t(task, timeout=5)
    code = a.abort_task(task, timeout=20)
    late = "no status"
    try:
        got = a.wait(task, timeout=1)
        late = str(got)
    except ic.Timeout:
        got = None
    back = ctx.read(last, lba, length)
    r.check(f"tmf: ABORT TASK by A through node {ctx.node('A')} of its WRITE held after "
            f"{'its R2T' if asked else 'the command'}: FUNCTION COMPLETE and nothing lands",
            code == 0 and back.good and back.data == before and not (got is not None and got.good),
            f"{ic.TMF_RESPONSES.get(code, code)}; the task: {late}; read back through node {ctx.nodes()[-1]}: " +
            (describe_block(back.data, before) if back.good else str(back)))
    settle(a)

    # (b) CLEAR TASK SET by B on another node while A's write is held on node 1
    task = a.start(scsi.write10(lba, length // ctx.block_size), data_out=pattern(0xE2, length), hold=True)
    a.wait_r2t(task, timeout=5)
    try:
        code = ctx.session("B").tmf(ic.TMF_CLEAR_TASK_SET, timeout=20)
        text = ic.TMF_RESPONSES.get(code, f"response {code}")
    except ic.ISCSIError as e:
        code, text = None, str(e)
    got, fate = let_go(a, task)
    back = ctx.read(last, lba, length)
    r.check(f"tmf: CLEAR TASK SET by B through node {ctx.node('B')} aborts A's WRITE held on node "
            f"{ctx.node('A')} (its data, sent afterwards, never lands)",
            code == 0 and back.good and back.data == before and not (got is not None and got.good),
            f"{text}; A's WRITE: {fate}; read back: " + (describe_block(back.data, before) if back.good else str(back)))
    # SAM-5 §7.5 (TAS = 0): other I_T nexuses whose tasks were aborted get COMMANDS CLEARED BY ANOTHER INITIATOR.
    ok, detail = ctx.expect_ua("A", 0x2F, 0x00)
    r.check(f"tmf: A's next command through node {ctx.node('A')} gets 06/2F/00 COMMANDS CLEARED BY ANOTHER "
            "INITIATOR", ok, detail)


@with_ctx
def check_nop(ctx, r):
    a = ctx.session("A")
    pings = a.idle(ctx.args.nop_idle)
    t = ctx.cmd("A", scsi.tur())
    echoed = a.nop(b"tessera!") if not a.closed else None
    r.check(f"nop: an idle session on node {ctx.node('A')} answers the target's NOP-In pings and still works",
            pings >= 1 and t.good and echoed == b"tessera!",
            f"{pings} pings answered in {ctx.args.nop_idle:.0f} s; then TEST UNIT READY: {outcome(t)}; "
            f"NOP-Out echo: {echoed!r}; asynchronous messages: {len(a.async_events)}; rejects: {len(a.rejects)}")


def check_libiscsi(c, r, work, args):
    if SUITE_TARGET not in [name for name, _ in c.targets]:
        r.check("libiscsi: the suite LUN is configured", False)
        return
    expected = ["--expected", os.path.join(REPO, "Tools", "conformance", "expected-all.txt"),
                "--expected", os.path.join(HERE, "expected-all-cluster.txt")]
    log = os.path.join(work, "iscsi-test-cu.log")
    first, second = (1, 1) if args.one_node else (2, 1)
    runs = [(f"libiscsi: iscsi-test-cu ALL.MultipathIO with its paths on node {first} and node {second}",
             ["--url", c.url(first, SUITE_TARGET), "--multipath-url", c.url(second, SUITE_TARGET),
              "--suite", "MultipathIO", "--label", "multipath"]),
            (f"libiscsi: iscsi-test-cu persistent reservation and RESERVE(6) suites through node {first}",
             ["--url", c.url(first, SUITE_TARGET), "--label", "pr"] +
             [x for suite in ("PrinReadKeys", "PrinServiceactionRange", "PrinReportCapabilities", "ProutRegister",
                              "ProutReserve", "ProutClear", "ProutPreempt", "Reserve6") for x in ("--suite", suite)])]
    for name, argv in runs:
        rc, out = run([sys.executable, os.path.join(REPO, "Tools", "conformance", "iscsi_test_cu.py")] + argv +
                      expected + ["--timeout", str(args.suite_timeout), "--log", log],
                      timeout=args.suite_timeout * 9 + 60)
        lines = [line.strip() for line in out.splitlines() if "REGRESSION" in line or
                 line.startswith(("multipath:", "pr:"))]
        r.check(name, rc == 0, short("\n".join(lines) or out, 600))


CHECKS = {"register": check_register, "reserve": check_reserve, "preempt": check_preempt,
          "preempt-abort": check_preempt_abort, "clear": check_clear, "full-status": check_full_status,
          "register-move": check_register_move, "spc2-reset": check_spc2_reset, "spc2-logout": check_spc2_logout,
          "concurrent": check_concurrent, "tmf": check_tmf, "nop": check_nop, "libiscsi": check_libiscsi}


def capacity(c, args):
    """Block size and block count of the LUN, through node 1; the LBAs the checks use."""
    s = ic.Session("127.0.0.1", c.portal(1), IQN + "ctx-observer", c.target, bytes.fromhex("8000000000e0"),
                   timeout=args.command_timeout)
    try:
        settle(s)
        rc = s.command(scsi.read_capacity16(), read_length=32)
        if not rc.good or len(rc.data) < 12:
            raise CheckError(f"READ CAPACITY(16): {rc}")
        args.block_size = int.from_bytes(rc.data[8:12], "big")
        blocks = int.from_bytes(rc.data[0:8], "big") + 1
        info(f"LUN {c.target}: {blocks} blocks of {args.block_size} bytes; negotiated on node 1: " +
             ", ".join(f"{k}={s.negotiated[k]}" for k in ("InitialR2T", "ImmediateData", "FirstBurstLength",
                                                          "MaxBurstLength")) +
             f", target MaxRecvDataSegmentLength={s.target_mrdsl}")
        s.logout(timeout=5)
    finally:
        s.close()
    # 128 KiB across the first sub-unit boundary (8 MiB) for the access checks, and across the second
    # for the held-back writes: both go to more than one sub-unit's primary.
    args.access_bytes = 128 * 1024
    half = args.access_bytes // args.block_size // 2
    args.access_lba = (8 << 20) // args.block_size - half
    args.abort_lba = (16 << 20) // args.block_size - half
    if args.abort_lba + 2 * half > blocks:
        raise CheckError(f"the LUN is too small ({blocks} blocks)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tesserad", required=True)
    ap.add_argument("--base-port", type=int, default=None,
                    help="rewrite the TOMLs' ports: portal B+i, store B+10+i, wire B+20+i, admin B+30+i")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--checks", default=",".join(ALL_CHECKS), help="comma-separated subset of " + ",".join(ALL_CHECKS))
    ap.add_argument("--one-node", action="store_true", help="every session through node 1 (validates the client)")
    ap.add_argument("--suite-timeout", type=int, default=180, help="per-suite timeout of iscsi-test-cu")
    ap.add_argument("--command-timeout", type=float, default=15.0, help="bound on each command and login")
    ap.add_argument("--concurrent-keys", type=int, default=20, help="I_T nexuses per side in the concurrent check")
    ap.add_argument("--nop-idle", type=float, default=5.0, help="seconds the nop check stays idle")
    args = ap.parse_args()
    args.strip_new_keys = False
    wanted = [x for x in args.checks.split(",") if x]
    unknown = [x for x in wanted if x not in CHECKS]
    if unknown:
        ap.error(f"unknown checks {unknown}")
    if args.one_node:
        info("--one-node: every session through node 1")

    def setup(c, r, work, a):
        try:
            capacity(c, a)
            return True
        except (CheckError, ic.ISCSIError) as e:
            return r.check("context: READ CAPACITY(16) through node 1", False, str(e))
    return run_stage(args, CHECKS, wanted, "tessera-context-", node1_extra=SUITE_TOML if "libiscsi" in wanted else "",
                     all_extra=ISCSI_TOML, setup=setup)


if __name__ == "__main__":
    results = main()
    print(f"context: {results.passed} passed, {results.failed} failed")
    sys.exit(1 if results.failed else 0)
