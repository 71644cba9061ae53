#!/usr/bin/env python3
"""The loopback fault campaign: node failover under a verifying writer.

Three tesserad nodes (Targets/cluster-node{1,2,3}.toml, lease "2s", ports
shifted by --base-port: portal B+i, store B+10+i, wire B+20+i, admin B+30+i)
serve one distributed LUN. A verifying writer (Tools/lib/verifying_writer.py)
logs in through two portals on two nodes and writes 4 KiB blocks at random
LBAs round-robin over them, reading recorded blocks back now and then; a write
that fails moves to the other session, a session to a dead node is replaced
by one to a live node.

Each round picks a node (seeded) and `kill -9`s it, or (every 4th round,
--stop-every, unless --kill-only) SIGSTOPs it for --stop-seconds and SIGCONTs it. The node
stays down until every sub-unit has taken an acknowledged write again (at
least --down-min s, at most --down-max s); a killed node is then restarted and
the round waits until the cluster has converged: every node's GET /health
answers 200 with "replicas": {"stale": 0, "resyncing": 0} and "dead_nodes": []
(bounded by --converge-timeout; a round that does not converge is a FAIL and
ends the campaign). Per round it prints the fault, the node, the pause (the
longest wait for an acknowledgement from the fault to convergence, and the
delay of the first acknowledgement after the fault), the time until every
sub-unit was writable again, the resync time and the resync bytes (the sum of
the nodes' "resync_bytes_total" deltas).

At the end the writer stops and the whole LUN is read back through two
different nodes: every recorded block must hold its last acknowledged write
(or, if its last write was never acknowledged, that write or the one before),
every other block zero. Checks: 0 acknowledged writes lost, 0 wrong blocks
read (during the run and at the end), every write acknowledged within
--give-up s, every round converged, one PASS line per round. Ends with
"failover: N passed, N failed".

With --gone, after the last round one more node is killed and left down past
--replace-after (every node's cluster.replace_after, 45 s by default: longer
than any round's outage): the survivors must drop its replicas and make them
again on each other (full copies), until each survivor reports every sub-unit
with two in-sync replicas, nothing stale and the node dead; the node is then
started again and the cluster must converge once more.

--no-wait-resync skips the /health replica fields (for a daemon without
failover: the mechanics still run). --json FILE writes the rounds for
Tools/bench/failover.sh.

Usage: fault-campaign.py --tesserad BIN [--base-port 3360] [--rounds 10] [--seed S] [--kill-only]
                         [--no-wait-resync] [--gone] [--replace-after S] [--keep] [--json FILE]
"""
import argparse
import http.client
import json
import math
import os
import random
import re
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "Tools", "lib"))
import localcluster  # noqa: E402
import verifying_writer as vw  # noqa: E402
from stagekit import info, run_stage, short  # noqa: E402

try:
    import tomllib
except ImportError:  # the stage needs 3.11; localcluster says so too
    tomllib = None

NO_REPLICAS = "daemon has no replicas field in /health: failover not built?"


# --- what the nodes say ---------------------------------------------------------

def health(port, timeout=1.5):
    """(HTTP status, JSON object) of GET /health, or (None, why) when it does not answer in time.
    A 503 (lease not held) still carries the report."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", "/health")
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read().decode("utf-8", "replace"))
    except (OSError, ValueError, http.client.HTTPException) as e:
        return None, f"{type(e).__name__}: {e}"
    finally:
        conn.close()


def node_converged(i, status, report, wait_resync):
    """(converged, why not) for one node's /health answer."""
    if status is None:
        return False, f"node {i}: /health did not answer ({report})"
    if status != 200:
        return False, (f"node {i}: /health {status}, lease {report.get('lease')!r}, leader {report.get('leader_id')}, "
                       f"{report.get('ms_since_quorum_contact')} ms since quorum contact")
    if not wait_resync:
        return True, ""
    replicas = report.get("replicas")
    if not isinstance(replicas, dict) or "dead_nodes" not in report:
        return False, f"node {i}: {NO_REPLICAS}"
    why = []
    if replicas.get("stale", 1) or replicas.get("resyncing", 1):
        why.append(f"replicas {json.dumps(replicas, sort_keys=True)}")
    if report.get("dead_nodes"):
        why.append(f"dead_nodes {report.get('dead_nodes')}")
    for r in (report.get("resyncs") or [])[:2]:
        why.append(f"resync {r.get('sub_unit')} -> node {r.get('node')} {r.get('percent')}%")
    return not why, (f"node {i}: " + ", ".join(why)) if why else ""


def resync_totals(c):
    """{node: resync_bytes_total} of the nodes that answer (absent when the field is)."""
    out = {}
    for i in localcluster.NODES:
        status, report = health(c.admin(i), timeout=1.0)
        if status is not None and isinstance(report.get("resync_bytes_total"), int):
            out[i] = report["resync_bytes_total"]
    return out


def resync_delta(before, after, restarted):
    """Bytes copied for resyncs between two resync_totals; a restarted node counts from zero."""
    total = 0
    for i, now in after.items():
        base = 0 if i in restarted else before.get(i, 0)
        total += now - base if now >= base else now
    return total


def wait_converged(c, wait_resync, within, missing_patience=10.0):
    """(converged, seconds, last reason) polling every node's /health every 0.5 s. A daemon whose
    /health has no replica fields at all gets `missing_patience` s, not `within`: they will not appear."""
    start = time.monotonic()
    deadline = start + within
    why = "not polled"
    while True:
        reasons = []
        for i in localcluster.NODES:
            status, report = health(c.admin(i))
            ok, text = node_converged(i, status, report, wait_resync)
            if not ok:
                reasons.append(text)
        if not reasons:
            return True, time.monotonic() - start, ""
        why = "; ".join(reasons)
        if len(reasons) == len(localcluster.NODES) and len({r.split(": ", 1)[1] for r in reasons}) == 1:
            why = "every node: " + reasons[0].split(": ", 1)[1]
        elapsed = time.monotonic() - start
        no_fields = all(NO_REPLICAS in text for text in reasons) and len(reasons) == len(localcluster.NODES)
        if time.monotonic() >= deadline or (no_fields and elapsed >= missing_patience) or \
                any(not c.alive(i) for i in localcluster.NODES):
            return False, elapsed, why
        time.sleep(0.5)


def ready_count(c, i):
    return c.log_text(i).count("tesserad ready")


def wait_restarted(c, i, before, within):
    """True once node i logged "tesserad ready" more often than `before` (its log is appended to)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if ready_count(c, i) > before:
            return True
        if not c.alive(i):
            return False
        time.sleep(0.2)
    return False


def log_tails(c, lines=8):
    for i in localcluster.NODES:
        for line in c.log_text(i).splitlines()[-lines:]:
            info(f"node {i} log: {line[:300]}")


# --- the LUN --------------------------------------------------------------------

def sub_unit_bytes(c):
    """sub_unit_size of node 1's first LUN (8 MiB when absent), from its TOML."""
    try:
        with open(c.node[1]["config"], "rb") as f:
            doc = tomllib.load(f)
        return localcluster.parse_size(doc["target"][0]["lun"][0].get("sub_unit_size", "8MiB"))
    except (OSError, KeyError, IndexError, ValueError, TypeError, AttributeError):
        return 8 << 20


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


# --- one round ------------------------------------------------------------------

class Round:
    """What one round did and measured."""

    def __init__(self, number, kind, node):
        self.number, self.kind, self.node = number, kind, node
        self.fault_at = self.end_at = 0.0
        self.first_ack = None
        self.pause = 0.0
        self.acks = 0
        self.writable_after = None     # s from the fault until every sub-unit took a write again
        self.restart_s = None
        self.resync_s = None
        self.resync_bytes = 0
        self.converged = False
        self.why = ""
        self.wrong_reads = 0
        self.given_up = 0

    @property
    def label(self):
        return "kill -9" if self.kind == "kill" else "SIGSTOP"

    def as_dict(self):
        return {"round": self.number, "fault": self.kind, "node": self.node, "pause_ms": round(self.pause * 1000),
                "first_ack_ms": None if self.first_ack is None else round(self.first_ack * 1000),
                "writable_after_s": self.writable_after, "restart_s": self.restart_s, "resync_s": self.resync_s,
                "resync_bytes": self.resync_bytes, "converged": self.converged, "why": self.why,
                "wrong_reads": self.wrong_reads, "given_up": self.given_up}


def hold_down(c, w, rnd, args):
    """Keeps the fault in place: SIGSTOP for --stop-seconds then SIGCONT; a kill until every
    sub-unit took an acknowledged write since the fault and --down-min passed (at most --down-max)."""
    start = rnd.fault_at
    if rnd.kind == "stop":
        time.sleep(args.stop_seconds)
        c.procs[rnd.node].send_signal(signal.SIGCONT)
    while True:
        now = time.monotonic()
        if rnd.writable_after is None and w.all_sub_units_acked_since(start):
            rnd.writable_after = round(now - start, 2)
        if rnd.writable_after is not None and now - start >= args.down_min:
            return
        if now - start >= args.down_max or not w.alive():
            return
        time.sleep(0.1)


def run_round(c, w, rnd, args, stopped):
    """One fault, its restart and the wait for convergence; fills `rnd`."""
    before = resync_totals(c)
    wrong_before, given_before = w.stats["wrong_reads"], w.stats["given_up"]
    proc = c.procs[rnd.node]
    ready_before = ready_count(c, rnd.node)
    rnd.fault_at = time.monotonic()
    if rnd.kind == "kill":
        proc.kill()
        proc.wait(timeout=10)
    else:
        proc.send_signal(signal.SIGSTOP)
        stopped.add(rnd.node)
    try:
        hold_down(c, w, rnd, args)
    finally:
        if rnd.kind == "stop" and proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            stopped.discard(rnd.node)
    restarted = set()
    if rnd.kind == "kill":
        t = time.monotonic()
        c.start(rnd.node)
        restarted.add(rnd.node)
        if not wait_restarted(c, rnd.node, ready_before, args.restart_timeout):
            rnd.why = f"node {rnd.node} did not log 'tesserad ready' within {args.restart_timeout:.0f} s of its restart"
            measure(w, rnd, wrong_before, given_before)
            return
        rnd.restart_s = round(time.monotonic() - t, 2)
    if rnd.writable_after is None and w.all_sub_units_acked_since(rnd.fault_at):
        rnd.writable_after = round(time.monotonic() - rnd.fault_at, 2)
    rnd.converged, secs, rnd.why = wait_converged(c, not args.no_wait_resync, args.converge_timeout)
    rnd.resync_s = round(secs, 2)
    measure(w, rnd, wrong_before, given_before)
    rnd.resync_bytes = resync_delta(before, resync_totals(c), restarted)


def measure(w, rnd, wrong_before, given_before):
    """The round ends now: the writer's pause, wrong reads and given-up writes since the fault."""
    rnd.end_at = time.monotonic()
    rnd.first_ack, rnd.pause, rnd.acks = w.pause(rnd.fault_at, rnd.end_at)
    rnd.wrong_reads = w.stats["wrong_reads"] - wrong_before
    rnd.given_up = w.stats["given_up"] - given_before


def summarize_events(texts, n=4):
    """The writer's most frequent event texts in a round, with counts."""
    counts = {}
    for text in texts:
        counts[text] = counts.get(text, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:n]
    return "; ".join(f"{count} x {text}" for text, count in top)


def report_round(r, rnd, w, total):
    first = "none" if rnd.first_ack is None else f"{rnd.first_ack * 1000:.0f} ms"
    writable = "never" if rnd.writable_after is None else f"{rnd.writable_after:.1f} s"
    restart = "" if rnd.restart_s is None else f", restart {rnd.restart_s:.1f} s"
    print(f"round {rnd.number}/{total}: {rnd.label} node {rnd.node}: pause {rnd.pause * 1000:.0f} ms "
          f"(first ack after the fault {first}, every sub-unit written after {writable}){restart}, "
          f"resync {rnd.resync_s if rnd.resync_s is not None else '-'} s, resync bytes {rnd.resync_bytes}, "
          f"{rnd.acks} acks", flush=True)
    events = summarize_events(w.events_between(rnd.fault_at, rnd.end_at or time.monotonic()))
    if events:
        info(f"round {rnd.number} writer: {short(events, 500)}")
    detail = "converged" if rnd.converged else f"did not converge: {rnd.why}"
    if rnd.wrong_reads:
        detail += f"; {rnd.wrong_reads} wrong reads"
    if rnd.given_up:
        detail += f"; {rnd.given_up} writes given up"
    return r.check(f"round {rnd.number}: {rnd.label} node {rnd.node}", rnd.converged and not rnd.wrong_reads,
                   detail)


# --- the campaign ---------------------------------------------------------------

def start_writer(c, args, work):
    """The LUN's geometry through node 1, then the writer on nodes 1 and 2 (seeded)."""
    block_size, blocks = vw.read_capacity("127.0.0.1", c.portal(1), c.target, io_timeout=10.0)
    su = sub_unit_bytes(c)
    portals = {i: ("127.0.0.1", c.portal(i)) for i in localcluster.NODES}
    w = vw.VerifyingWriter(portals, c.target, block_size, blocks, first_nodes=(1, 2), seed=args.seed + 1,
                           io_timeout=args.io_timeout, give_up=args.give_up, read_every=args.read_every,
                           interval=args.interval, sub_unit_bytes=su)
    info(f"LUN {c.target}: {blocks} blocks of {block_size} bytes, {w.sub_units} sub-units of {su >> 20} MiB; "
         f"writes of {w.write_bytes} bytes through nodes 1 and 2; seed {args.seed}; work dir {work}")
    w.start()
    return w


def warm_up(r, w, within=30.0):
    """True once the writer has 50 acknowledgements (before any fault)."""
    start = time.monotonic()
    while time.monotonic() < start + within and w.acks() < 50 and w.alive():
        time.sleep(0.1)
    trouble = w.error or summarize_events(w.events_between(0, time.monotonic()))
    return r.check("writer: 50 writes acknowledged before any fault", w.acks() >= 50,
                   f"{w.acks()} in {time.monotonic() - start:.1f} s" + (f"; {trouble}" if trouble else ""))


def final_checks(c, r, w, rounds, args):
    """Stops the writer, reads the whole LUN back through two nodes, prints the summary checks."""
    stopped = w.stop()
    r.check("writer: stops within its bounds", stopped and w.error is None, w.error or "")
    st = w.stats
    info(f"writer: {st['writes']} writes, {st['acked']} acknowledged, {st['failed_attempts']} failed attempts, "
         f"{st['given_up']} given up, {len(w.ledger.doubt)} blocks in doubt, {st['reads']} reads "
         f"({st['read_failures']} failed), {st['logins']} logins ({st['login_failures']} failed)")
    live = [i for i in localcluster.NODES if c.alive(i)]
    live.sort(key=lambda i: health(c.admin(i))[0] != 200)  # nodes holding their lease first
    lost = wrong = unreadable = 0
    examples = []
    for i in live[:2]:
        v = vw.verify_all(w.ledger, "127.0.0.1", c.portal(i), c.target, w.block_size, w.blocks, w.write_blocks,
                          isid=bytes.fromhex(f"80000000f1{i:02x}"), io_timeout=10.0,
                          deadline=time.monotonic() + args.verify_timeout)
        info(f"read back through node {i}: {v['checked']} blocks checked, {v['lost']} lost, {v['wrong']} wrong, "
             f"{v['unreadable']} unreadable")
        lost, wrong, unreadable = lost + v["lost"], wrong + v["wrong"], unreadable + v["unreadable"]
        examples += [f"node {i}: {e}" for e in v["examples"][:5]]
    r.check("the LUN read back through two different nodes", len(live) >= 2 and unreadable == 0,
            f"nodes {live[:2]}; {unreadable} blocks unreadable" + ("; " + short("; ".join(examples), 500)
                                                                   if unreadable else ""))
    r.check("0 acknowledged writes lost", lost == 0,
            f"{lost} blocks older than their last acknowledged write" +
            (": " + short("; ".join(e for e in examples if "lost" in e), 500) if lost else ""))
    during = st["wrong_reads"]
    r.check("0 wrong blocks read", during == 0 and wrong == 0,
            f"{during} during the run, {wrong} at the end" +
            (": " + short("; ".join(w.wrong_examples[:3] + [e for e in examples if "wrong" in e][:3]), 600)
             if during or wrong else ""))
    r.check(f"every write acknowledged within {args.give_up:.0f} s", st["given_up"] == 0,
            f"{st['given_up']} given up")
    r.check("every round converged", bool(rounds) and all(x.converged for x in rounds) and
            len(rounds) == args.rounds, f"{sum(x.converged for x in rounds)} of {args.rounds}")
    pauses = [x.pause * 1000 for x in rounds if x.fault_at]
    if pauses:
        print(f"pause over {len(pauses)} faults: p50 {percentile(pauses, 50):.0f} ms, "
              f"p99 {percentile(pauses, 99):.0f} ms, max {max(pauses):.0f} ms", flush=True)


def campaign(c, r, work, args):
    """The rounds under the writer, then the final read-back and checks (skipped when interrupted)."""
    rng = random.Random(args.seed)
    w = start_writer(c, args, work)
    rounds, stopped = [], set()
    interrupted = False
    try:
        if not warm_up(r, w):
            return
        for n in range(1, args.rounds + 1):
            kind = "stop" if (not args.kill_only and n % args.stop_every == 0) else "kill"
            rnd = Round(n, kind, rng.choice(localcluster.NODES))
            rounds.append(rnd)
            run_round(c, w, rnd, args, stopped)
            report_round(r, rnd, w, args.rounds)
            if not rnd.converged or not w.alive() or any(not c.alive(i) for i in localcluster.NODES):
                info(f"campaign stops after round {n}" + (f" (writer: {w.error})" if w.error else ""))
                break
        else:
            if args.gone and w.alive():
                gone_round(c, r, w, rng, args)
    except BaseException:
        interrupted = True
        raise
    finally:
        for i in stopped:
            c.procs[i].send_signal(signal.SIGCONT)
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"seed": args.seed, "rounds": [x.as_dict() for x in rounds]}, f, indent=1)
        try:
            if not interrupted:
                restart_missing(c, args)
                final_checks(c, r, w, rounds, args)
        finally:
            w.stop(within=1)
            if r.failed or interrupted:
                args.keep = True   # the logs stay for whoever looks
                info(f"work dir kept: {work}")
                log_tails(c)


def gone_round(c, r, w, rng, args):
    """A node killed and left down past replace_after: the survivors drop its replicas and make
    them again on each other (full copies), so every sub-unit has two in-sync replicas without it.
    Then it is started again and rejoins holding only what the map still gives it."""
    node = rng.choice(localcluster.NODES)
    survivors = [i for i in localcluster.NODES if i != node]
    _, report = health(c.admin(survivors[0]))
    before = resync_totals(c)
    start = time.monotonic()
    c.procs[node].kill()
    c.procs[node].wait(timeout=10)
    info(f"gone for good: node {node} killed, not restarted (replace_after {args.replace_after:.0f} s)")
    deadline = start + args.replace_after + args.converge_timeout
    why = "not polled"
    while time.monotonic() < deadline:
        reasons = []
        for i in survivors:
            status, report = health(c.admin(i))
            if status != 200 or not isinstance(report, dict):
                reasons.append(f"node {i}: /health {status}")
                continue
            replicas = report.get("replicas") or {}
            if report.get("dead_nodes") != [node]:
                reasons.append(f"node {i}: dead_nodes {report.get('dead_nodes')}")
            if replicas.get("stale", 1) or replicas.get("resyncing", 1) or replicas.get("in_sync") != 2 * w.sub_units:
                reasons.append(f"node {i}: replicas {json.dumps(replicas, sort_keys=True)}")
        if not reasons:
            break
        why = "; ".join(reasons)
        time.sleep(0.5)
    else:
        r.check(f"gone for good: node {node}'s replicas made again on nodes {survivors}", False,
                f"not within {args.replace_after + args.converge_timeout:.0f} s: {why}")
        return False
    took = time.monotonic() - start
    copied = resync_delta(before, resync_totals(c), set())
    r.check(f"gone for good: node {node}'s replicas made again on nodes {survivors}", True,
            f"{2 * w.sub_units} in-sync replicas on the survivors {took:.1f} s after the kill "
            f"({copied >> 20} MiB copied in full)")
    events = [line for i in survivors for line in c.log_text(i).splitlines() if "gone for good" in line]
    r.check("gone for good: a survivor logged the re-replication", bool(events), short(events[0], 300) if events else "")
    before_ready = ready_count(c, node)
    c.start(node)
    back = wait_restarted(c, node, before_ready, args.restart_timeout)
    converged, secs, why = wait_converged(c, True, args.converge_timeout) if back else (False, 0, "no restart")
    r.check(f"gone for good: node {node} restarted and the cluster converged", converged,
            f"{secs:.1f} s" if converged else why)
    return converged


def restart_missing(c, args):
    """Starts every node that is not running (a round cut short), so the read-back and the stop see three."""
    for i in localcluster.NODES:
        if not c.alive(i):
            before = ready_count(c, i)
            c.start(i)
            wait_restarted(c, i, before, args.restart_timeout)


def set_cluster_key(text, key, value):
    """`text` (a node TOML) with `key = value` in [cluster], replaced or added."""
    if re.search(rf'(?m)^{key}\s*=', text):
        return re.sub(rf'(?m)^{key}\s*=.*$', f'{key} = {value}', text)
    return re.sub(r'(?m)^\[cluster\]\s*$', f'[cluster]\n{key} = {value}', text, count=1)


def force_lease(c, lease="2s", replace_after=None):
    """Every node's TOML with `lease = "<lease>"` in [cluster] (the shipped value; set here so a change
    to the shipped files does not change what the campaign measures), and replace_after."""
    for i in localcluster.NODES:
        path = c.node[i]["config"]
        with open(path) as f:
            text = set_cluster_key(f.read(), "lease", f'"{lease}"')
        if replace_after is not None:
            text = set_cluster_key(text, "replace_after", f'"{int(replace_after)}s"')
        with open(path, "w") as f:
            f.write(text)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tesserad", required=True)
    ap.add_argument("--base-port", type=int, default=3360,
                    help="portal B+i, store B+10+i, wire B+20+i, admin B+30+i (default 3360)")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    ap.add_argument("--kill-only", action="store_true", help="kill -9 in every round (no SIGSTOP rounds)")
    ap.add_argument("--no-wait-resync", action="store_true",
                    help="convergence = every node answers /health 200 (ignore replicas/dead_nodes)")
    ap.add_argument("--stop-every", type=int, default=4, help="every Nth round SIGSTOPs instead of killing")
    ap.add_argument("--stop-seconds", type=float, default=3.5, help="how long a SIGSTOP lasts")
    ap.add_argument("--down-min", type=float, default=3.0, help="least time a killed node stays down")
    ap.add_argument("--down-max", type=float, default=30.0, help="most time a fault lasts before the restart")
    ap.add_argument("--restart-timeout", type=float, default=60.0)
    ap.add_argument("--converge-timeout", type=float, default=120.0)
    ap.add_argument("--io-timeout", type=float, default=8.0, help="bound on every login and command of the writer")
    ap.add_argument("--give-up", type=float, default=20.0, help="a write not acknowledged after this is abandoned")
    ap.add_argument("--read-every", type=int, default=8, help="one read-back per N writes")
    ap.add_argument("--interval", type=float, default=0.002, help="pause between writes (s)")
    ap.add_argument("--verify-timeout", type=float, default=300.0, help="bound on each final read-back")
    ap.add_argument("--json", default=None, help="write the rounds' measurements to this file")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (kept anyway on failure)")
    ap.add_argument("--gone", action="store_true",
                    help="after the rounds, kill a node and leave it down until its replicas are made again")
    ap.add_argument("--replace-after", type=float, default=45.0,
                    help="cluster.replace_after of every node (s); above --down-max plus a restart, so that "
                         "only the --gone round outlasts it")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = int(time.time()) % 100000
    args.strip_new_keys = False
    info(f"fault campaign: {args.rounds} rounds, seed {args.seed}, base port {args.base_port}"
         + (", kill -9 only" if args.kill_only else "") + (", not waiting for resync" if args.no_wait_resync else ""))
    return run_stage(args, {"campaign": campaign}, ["campaign"], "tessera-failover-",
                     prepare=lambda c: force_lease(c, replace_after=args.replace_after))


if __name__ == "__main__":
    results = main()
    print(f"failover: {results.passed} passed, {results.failed} failed", flush=True)
    sys.exit(1 if results.failed else 0)
