#!/usr/bin/env python3
"""The soak driver: many sessions of mixed verified I/O against running tesserad processes,
with hosts logging out and in, while the daemons' RSS and open fds are sampled.

N sessions (Tools/soak/soak_session.py, one thread each) are spread over the
portals and over H hosts (host h connects from 127.0.1.h with its own
initiator name; each session has its own ISID). Each reads and writes 4 KiB -
256 KiB extents in its own region of the LUN and checks every read against its
last acknowledged writes; a share of them (the churners) log out and in again
every few seconds through the next portal, every third time by closing the
socket without a Logout. At the end every session reads its whole region back.

Every --sample-every seconds a row: I/O rate, sessions connected, and per
tesserad process resident memory (its own: RssAnon + RssShmem), open fds and how many of those are iSCSI connections
(TCP sockets on a portal port, /proc/net/tcp). Then the figures and the checks,
"PASS name: ..." / "FAIL name: ...", and "driver: N passed, M failed":
  - no I/O errors (SCSI status, timeout, lost connection, short read), no
    miscompares, no login/logout failures, no session hung, every daemon alive;
  - every session did verified reads and writes; every churner did the churn
    cycles that were due;
  - RSS flat: after --warmup, growth below max(--rss-bound-mib, --rss-bound-pct);
  - fds: the daemons' fds that are not iSCSI connections, summed over the
    daemons (store connections move when the store's leadership does), as
    many at the end as after the warm-up (+ --fd-slack per daemon; a cluster
    node opens its peer connections with the first I/O), and no more once
    every session logged out; the LUN is assumed fresh (unwritten); the daemons
    hold exactly the iSCSI connections the driver has at the end, none after.

Usage: soak.py --portal HOST:PORT [--portal ...] --target IQN --pid [NAME=]PID [--pid ...]
               [--time 600] [--sessions 64] [--hosts 8] [--churn-share 0.25] [--churn-every 5]
               [--read-share 0.6] [--sample-every 5] [--warmup S] [--io-timeout 20] [--seed 1]
               [--log FILE ...]
"""
import argparse
import collections
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import procstat  # noqa: E402
import verifying_writer as vw  # noqa: E402
from soak_session import UNIT, Errors, Phase, SoakSession  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
from stagekit import Results  # noqa: E402

IO_ERRORS = ("scsi", "timeout", "connection lost", "short read", "crash")


class Snap(collections.namedtuple("Snap", "rss fds isc")):
    """One process at one moment: resident memory of its own (MiB), open fds, of them iSCSI connections."""

    @property
    def other(self):
        return None if self.fds is None else self.fds - self.isc


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portal", action="append", required=True, help="HOST:PORT (several: sessions spread over them)")
    ap.add_argument("--target", required=True)
    ap.add_argument("--pid", action="append", required=True, help="[NAME=]PID of a tesserad to sample")
    ap.add_argument("--log", action="append", default=[], help="a daemon log to scan for error/critical lines")
    ap.add_argument("--time", type=float, default=600.0, help="seconds of I/O")
    ap.add_argument("--sessions", type=int, default=64)
    ap.add_argument("--hosts", type=int, default=8, help="source addresses 127.0.1.1..H, one initiator name each")
    ap.add_argument("--churn-share", type=float, default=0.25, help="share of the sessions that log out and in")
    ap.add_argument("--churn-every", type=float, default=5.0, help="seconds between a churner's cycles")
    ap.add_argument("--abrupt-every", type=int, default=3, help="every Nth cycle closes without a Logout")
    ap.add_argument("--read-share", type=float, default=0.6)
    ap.add_argument("--sample-every", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=None, help="default: a quarter of --time, at most 60 s")
    ap.add_argument("--io-timeout", type=float, default=20.0, help="bound on every command and login")
    ap.add_argument("--unavailable-patience", type=float, default=10.0,
                    help="how long a command is retried while the port says unavailable (02/04/0A, 02/04/0C)")
    ap.add_argument("--rss-bound-mib", type=float, default=16.0)
    ap.add_argument("--rss-bound-pct", type=float, default=10.0)
    ap.add_argument("--fd-slack", type=int, default=4)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    a.portals = [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in a.portal]
    a.pids = []
    for i, item in enumerate(a.pid):
        name, _, pid = item.rpartition("=")
        a.pids.append((name or f"p{i + 1}", int(pid)))
    if a.warmup is None:
        a.warmup = min(60.0, a.time / 4)
    return a


# --- sampling --------------------------------------------------------------------

class Sampler:
    """Rows of (t, {name: Snap}); prints each as it is taken."""

    def __init__(self, pids, ports, sessions):
        self.pids, self.ports, self.sessions = pids, set(ports), sessions
        self.rows = []
        self.t0 = None
        self.last = (None, 0, 0)

    def procs(self):
        return {name: Snap(procstat.rss_mib(pid), *procstat.fds_on_ports(pid, self.ports)) for name, pid in self.pids}

    def settle(self, done, within):
        """procs() once `done(procs)` holds, or after `within` s."""
        deadline = time.monotonic() + within
        while True:
            now = self.procs()
            if done(now) or time.monotonic() >= deadline:
                return now
            time.sleep(0.25)

    def header(self):
        cols = "".join(f" | {name:>3} RSS MiB  fds isc" for name, _ in self.pids)
        print(f"{'t s':>6} {'IO/s':>7} {'MB/s':>6} {'conn':>4}{cols}", flush=True)

    def sample(self):
        now = time.monotonic()
        ios = sum(s.stats["reads"] + s.stats["writes"] for s in self.sessions)
        nbytes = sum(s.stats["read_bytes"] + s.stats["written_bytes"] for s in self.sessions)
        connected = sum(s.connected for s in self.sessions)
        procs = self.procs()
        t_last, ios_last, bytes_last = self.last
        dt = (now - t_last) if t_last else 0
        rate = (ios - ios_last) / dt if dt else 0.0
        mbs = (nbytes - bytes_last) / dt / 1e6 if dt else 0.0
        self.last = (now, ios, nbytes)
        t = now - self.t0
        self.rows.append((t, procs))
        cols = "".join(f" | {'-' if p.rss is None else f'{p.rss:11.1f}'} {p.fds if p.fds is not None else '-':>4}"
                       f" {p.isc if p.isc is not None else '-':>3}" for p in procs.values())
        print(f"{t:6.0f} {rate:7.0f} {mbs:6.1f} {connected:4d}{cols}", flush=True)


def rss_verdict(rows, name, warmup, bound_mib, bound_pct):
    """(ok, detail): the median of the first three samples after the warm-up against that of the
    last three. Why max(16 MiB, 10 %): once warmed up, every buffer pool, NIO allocator and glibc
    malloc arena (one per thread that allocates, up to 8 per core) has the size this load needs;
    what still moves is allocator noise, arenas trimmed and grown by a few MiB. A leak that grows
    with the work is far larger over a soak: ~1000 I/Os/s leaking 64 bytes each is 37 MiB in
    10 minutes, ~3 logins/s leaking 8 KiB each is 14 MiB; 10 % allows for noise that scales with
    a larger daemon. A short run catches only fast leaks; the 10-minute run is the real figure.
    A fresh cluster node also grows by ~2 MiB/min for its first ~23 minutes, whatever the load (its
    store's Raft log filling up to dqlite's 8,192 trailing entries of lease heartbeats), so the long
    run starts against nodes that have idled that long (soak.sh --idle)."""
    steady = [(t, procs[name].rss) for t, procs in rows if t >= warmup and procs[name].rss is not None]
    if len(steady) < 6:
        return False, f"only {len(steady)} samples after the {warmup:.0f} s warm-up (need 6: longer --time)"
    start = statistics.median(r for _, r in steady[:3])
    end = statistics.median(r for _, r in steady[-3:])
    bound = max(bound_mib, start * bound_pct / 100)
    ts, rs = [t for t, _ in steady], [r for _, r in steady]
    slope = statistics.linear_regression(ts, rs).slope * 60 if len(set(ts)) > 1 else 0.0
    detail = (f"{name}: {start:.1f} MiB at t={steady[0][0]:.0f} s, {end:.1f} MiB at t={steady[-1][0]:.0f} s, "
              f"growth {end - start:+.1f} MiB (bound {bound:.1f}), trend {slope:+.2f} MiB/min, "
              f"peak {max(rs):.1f} MiB")
    return end - start < bound, detail


def steady_other_fds(rows, name, warmup):
    """The median count of a process's fds that are not iSCSI connections in the first three samples
    after the warm-up (sampled while sessions come and go, so one sample may be off by one)."""
    others = [procs[name].other for t, procs in rows if t >= warmup and procs[name].other is not None][:3]
    return statistics.median(others) if others else None


def log_lines(paths, levels):
    """The daemon log lines ("TIMESTAMP LEVEL LABEL: ...") at one of `levels`."""
    out = []
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                out += [f"{os.path.basename(path)}: {line.strip()[:300]}" for line in f
                        if line.split(" ", 2)[1:2] and line.split(" ", 2)[1] in levels]
        except OSError as e:
            out.append(f"{path}: {e}")
    return out


# --- the run ---------------------------------------------------------------------

def wait_all(events, deadline):
    for e in events:
        e.wait(max(0.0, deadline - time.monotonic()))
    return sum(not e.is_set() for e in events)


def main():
    a = parse_args()
    r = Results()
    host, port = a.portals[0]
    block_size, blocks = vw.read_capacity(host, port, a.target, io_timeout=a.io_timeout)
    units = blocks * block_size // UNIT
    per = units // a.sessions
    if per < 1:
        r.check("soak: the LUN has room for every session", False, f"{units} units for {a.sessions} sessions")
        return finish(r)
    errors, phase = Errors(), Phase()
    # every step-th session churns: a host's sessions are contiguous, so each host has churners
    churners = max(1, round(a.sessions * a.churn_share)) if a.churn_share > 0 and a.churn_every > 0 else 0
    step = a.sessions // churners if churners else 0
    sessions = []
    for i in range(a.sessions):
        h = i * a.hosts // a.sessions
        churn = a.churn_every if churners and i % step == 0 and i // step < churners else None
        sessions.append(SoakSession(
            i, a.portals, a.target, f"iqn.2026-11.dev.tessera:soak-host{h + 1}",
            bytes.fromhex("800000") + i.to_bytes(3, "big"), f"127.0.1.{h + 1}", i * per, per, block_size,
            errors, phase, io_timeout=a.io_timeout, read_share=a.read_share, churn_every=churn,
            abrupt_every=a.abrupt_every, seed=a.seed, patience=a.unavailable_patience))
    print(f"LUN: {blocks} blocks of {block_size} bytes; {a.sessions} sessions of {per * UNIT >> 20} MiB "
          f"({per} units) through {len(a.portals)} portals from {a.hosts} hosts; {churners} churn every "
          f"{a.churn_every:g} s; {a.time:g} s of I/O, warm-up {a.warmup:g} s", flush=True)

    sampler = Sampler(a.pids, [p for _, p in a.portals], sessions)
    before = sampler.procs()
    login_deadline = time.monotonic() + a.io_timeout + 60
    for s in sessions:
        s.start()
    not_ready = wait_all([s.ready for s in sessions], login_deadline)
    start_connected = sum(s.connected for s in sessions)
    start = sampler.settle(lambda now: sum(p.isc or 0 for p in now.values()) == start_connected, 10)
    sampler.t0 = time.monotonic()
    phase.go.set()
    sampler.header()
    sampler.sample()
    end = sampler.t0 + a.time
    dead = []
    while time.monotonic() < end and not dead:
        time.sleep(max(0.0, min(a.sample_every - (time.monotonic() - sampler.t0) % a.sample_every,
                                end - time.monotonic())))
        sampler.sample()
        dead = [name for name, pid in a.pids if not procstat.alive(pid)]
    stopped = time.monotonic()
    io_seconds = stopped - sampler.t0
    ios = sum(s.stats["reads"] + s.stats["writes"] for s in sessions)
    nbytes = sum(s.stats["read_bytes"] + s.stats["written_bytes"] for s in sessions)
    phase.stop.set()
    chunks = -(-per // 64)
    hung = wait_all([s.parked for s in sessions], time.monotonic() + a.io_timeout * (chunks + 4) + 30)
    end_connected = sum(s.connected for s in sessions)
    # the daemons notice an abrupt close at once, a Logout within its answer: let them finish
    at_end = sampler.settle(lambda now: sum(p.isc or 0 for p in now.values()) == end_connected, 10)
    phase.leave.set()
    for s in sessions:
        s.join(max(0.1, a.io_timeout + 30 - (time.monotonic() - stopped)))
    hung += sum(s.is_alive() for s in sessions)
    after = sampler.settle(lambda now: all(p.isc == 0 and p.other is not None and p.other <= at_end[n].other
                                           for n, p in now.items()), 15)

    # --- figures -------------------------------------------------------------
    total = lambda key: sum(s.stats[key] for s in sessions)  # noqa: E731
    print(f"\nI/O: {ios} commands in {io_seconds:.0f} s ({ios / io_seconds:.0f}/s), "
          f"{nbytes / 1e6:.0f} MB ({nbytes / 1e6 / io_seconds:.1f} MB/s): {total('reads')} reads "
          f"({total('read_bytes') / 1e6:.0f} MB), {total('writes')} writes ({total('written_bytes') / 1e6:.0f} MB); "
          f"{total('verified_units')} units verified (with the read-back)")
    print(f"sessions: {total('logins')} logins, {total('logouts')} logouts, {total('abrupt')} abrupt closes, "
          f"{total('cycles')} churn cycles, {total('attentions')} unit attentions retried, "
          f"{total('unavailable')} retries on a port unavailable (02/04/0A, 02/04/0C); "
          f"slowest command {max(s.max_latency for s in sessions):.2f} s, "
          f"slowest login {max(s.max_login for s in sessions):.2f} s")
    fds_of = lambda p: f"{p.fds} ({p.isc} iSCSI)"  # noqa: E731
    for name, _ in a.pids:
        print(f"{name}: fds {fds_of(before[name])} before the logins, {fds_of(start[name])} at the start, "
              f"{fds_of(at_end[name])} at the end, {fds_of(after[name])} after the logouts; RSS "
              f"{before[name].rss:.1f} MiB before, {at_end[name].rss:.1f} MiB at the end")
    print(f"errors: {sum(errors.counts.values())}" + "".join(f", {k} {v}" for k, v in sorted(errors.counts.items())))
    for line in errors.examples:
        print(f"  {line}")
    problems = log_lines(a.log, ("error", "critical"))
    lapses = [line for line in log_lines(a.log, ("warning",)) if "lease LAPSED" in line]
    print(f"store: {len(lapses)} lease lapses logged (a node serves nothing until it renews its lease)")
    for line in log_lines(a.log, ("warning", "error", "critical"))[:10]:
        print(f"  log: {line}")

    # --- checks --------------------------------------------------------------
    r.check("daemons: every tesserad alive to the end", not dead, f"gone: {dead}" if dead else
            ", ".join(f"{n} pid {p}" for n, p in a.pids))
    r.check("logins: every session logged in at the start", not not_ready and start_connected == a.sessions,
            f"{start_connected} of {a.sessions} connected, {not_ready} never ready")
    r.check("no I/O errors", errors.count(*IO_ERRORS) == 0,
            f"{errors.count(*IO_ERRORS)} (SCSI status, timeout, lost connection, short read) in {ios} commands")
    r.check("no miscompares", errors.count("miscompare") == 0,
            f"{errors.count('miscompare')} in {total('verified_units')} units read back")
    r.check("no login or logout failures", errors.count("login", "logout") == 0,
            f"{errors.count('login')} login, {errors.count('logout')} logout failures in "
            f"{total('logins')} logins")
    r.check("no session hung", hung == 0, f"{hung} sessions did not finish within their bounds")
    idle = [s.index for s in sessions if not s.stats["writes"] or not s.stats["reads"]]
    r.check("every session did verified reads and writes", not idle, f"idle: {idle[:10]}" if idle else
            f"{a.sessions} sessions")
    churning = [s for s in sessions if s.churn_every]
    short = [(s.index, s.stats["cycles"], s.expected_cycles(stopped)) for s in churning
             if s.stats["cycles"] < max(1, s.expected_cycles(stopped) - 1)]
    r.check("every churning session completed its churn cycles", churning and not short,
            f"behind (session, done, due): {short[:8]}" if short else
            f"{len(churning)} sessions, {min((s.stats['cycles'] for s in churning), default=0)}.."
            f"{max((s.stats['cycles'] for s in churning), default=0)} cycles each, "
            f"{total('abrupt')} of them abrupt")
    # fds are judged on the daemons' total: when the store's leadership
    # moves (as a lease lapse under load can make it), every member's store
    # connections move to the new leader, where each costs three fds (the
    # TCP connection, the store tunnel's Unix end, dqlite's Unix end) against
    # one on a follower; a node's own count then jumps by 20 or so, the total
    # by a few. A leak grows the total.
    refs, ends, afters = [], [], []
    for name, _ in a.pids:
        r.check(f"RSS flat ({name})", *rss_verdict(sampler.rows, name, a.warmup, a.rss_bound_mib, a.rss_bound_pct))
        refs.append(steady_other_fds(sampler.rows, name, a.warmup))
        ends.append(at_end[name].other or 0)
        afters.append(after[name].other or 0)
    slack = a.fd_slack * len(a.pids)
    ref_total = None if None in refs else sum(refs)
    r.check("fds not leaking (all daemons)", ref_total is not None and sum(ends) - ref_total <= slack
            and sum(afters) <= sum(ends) + slack and all(after[name].isc == 0 for name, _ in a.pids),
            "fds besides iSCSI connections " + ", ".join(
                f"{name} {'-' if r0 is None else f'{r0:.0f}'} -> {e} -> {f}"
                for (name, _), r0, e, f in zip(a.pids, refs, ends, afters))
            + f" (after the warm-up -> at the end -> after the logouts; total slack {slack}); "
            f"{sum(after[name].isc or 0 for name, _ in a.pids)} iSCSI connections left")
    held = sum(p.isc or 0 for p in at_end.values())
    r.check("iSCSI connections: the daemons hold exactly the driver's", held == end_connected,
            f"{held} held for {end_connected} sessions connected at the end "
            f"({', '.join(f'{n} {p.isc}' for n, p in at_end.items())})")
    r.check("no error or critical lines in the daemon logs", not problems,
            f"{len(problems)} lines" + (f", first: {problems[0]}" if problems else ""))
    return finish(r)


def finish(r):
    print(f"driver: {r.passed} passed, {r.failed} failed", flush=True)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
