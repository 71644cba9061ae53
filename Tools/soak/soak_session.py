#!/usr/bin/env python3
"""One soak session: a thread that owns one iSCSI session and one region of the LUN.

It reads and writes extents of 1..64 units (a unit is 4 KiB) at random places
in its own region, and checks every read against what it last had
acknowledged. A unit's content is Tools/lib/verifying_writer.block_content(LBA,
generation): every 512-byte sector names its LBA and the generation of the
write, so a read tells which write it came from. A generation carries the
session's index in its high bits, so data of another session is never legal.

The ledger: unit -> the set of generations a read may return (one after an
acknowledged write, none written = zero; a write that failed leaves the old
and the new one legal, and is counted as an error).

Churn (a churner only): every `churn_every` seconds it logs out (or, every
`abrupt_every`-th cycle, closes the socket without a Logout, as a host that
crashed) and logs in again through the next portal with the same ISID.

A unit attention is retried at once; NOT READY 04/0A or 04/0C (the node's
store lease lapsed: it serves nothing until it renews it) is retried for up to
`patience` seconds, as a host waits for a path, and counted apart.

Every wait is bounded by `io_timeout` (iscsi_client raises Timeout past it);
a timed-out or broken session is closed, counted, and replaced by a new login.
The thread's life: log in, `ready`; wait for `go`; I/O (and churn) until
`stop`; read the whole region back; `parked` (still logged in, so the daemon's
fds can be counted with every session connected); wait for `leave`; log out.
"""
import os
import random
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_client as ic  # noqa: E402
import scsi_cmds as scsi  # noqa: E402
import verifying_writer as vw  # noqa: E402

UNIT = 4096
SIZES = (1, 1, 1, 2, 2, 4, 4, 8, 16, 32, 64)   # units per I/O: mostly small, up to 256 KiB
MAX_UA_RETRIES = 8
# NOT READY, ASYMMETRIC ACCESS STATE TRANSITION / TARGET PORT IN UNAVAILABLE STATE: the node
# serves nothing for now (its store lease lapsed); the command was not run, and is retried
UNAVAILABLE = {(0x04, 0x0A), (0x04, 0x0C)}


class Errors:
    """Every error of the run, by kind, with the first examples."""

    def __init__(self, keep=40):
        self.lock = threading.Lock()
        self.counts = {}
        self.examples = []
        self.keep = keep
        self.t0 = time.monotonic()

    def add(self, kind, who, text):
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            if len(self.examples) < self.keep:
                self.examples.append(f"t={time.monotonic() - self.t0:6.1f}s {who}: {kind}: {text}")

    def count(self, *kinds):
        with self.lock:
            return sum(self.counts.get(k, 0) for k in kinds)


class Phase:
    """The events every session follows (set by the driver)."""

    def __init__(self):
        self.go, self.stop, self.leave = threading.Event(), threading.Event(), threading.Event()


class SoakSession(threading.Thread):
    def __init__(self, index, portals, target, initiator, isid, source, first_unit, units, block_size,
                 errors, phase, io_timeout=20.0, read_share=0.6, churn_every=None, abrupt_every=3, seed=0,
                 patience=10.0):
        super().__init__(name=f"soak-{index}", daemon=True)
        self.index, self.portals, self.target = index, list(portals), target
        self.initiator, self.isid, self.source = initiator, isid, source
        self.first_unit, self.units = first_unit, units
        self.block_size = block_size
        self.unit_blocks = UNIT // block_size
        self.errors, self.phase = errors, phase
        self.io_timeout, self.read_share, self.patience = io_timeout, read_share, patience
        self.churn_every, self.abrupt_every = churn_every, abrupt_every
        self.rng = random.Random(seed * 1000003 + index)
        self.portal = index % len(self.portals)
        self.session = None
        self.ledger = {}          # unit -> set of legal generations (absent: zero)
        self.gen = 0
        self.ready, self.parked = threading.Event(), threading.Event()
        self.stats = dict(reads=0, writes=0, read_bytes=0, written_bytes=0, logins=0, logouts=0,
                          abrupt=0, cycles=0, attentions=0, unavailable=0, verified_units=0)
        self.max_latency = 0.0
        self.max_login = 0.0
        self.first_churn = None   # when the first churn was due (for the expected cycle count)

    @property
    def who(self):
        host, port = self.portals[self.portal]
        return f"session {self.index} ({self.source or 'lo'} -> {host}:{port})"

    @property
    def connected(self):
        return self.session is not None and not self.session.closed

    # --- sessions ------------------------------------------------------------
    def login(self):
        """Logs in through the current portal, retrying once a second until `stop` (each failure counted)."""
        while True:
            host, port = self.portals[self.portal]
            t = time.monotonic()
            try:
                self.session = ic.Session(host, port, self.initiator, self.target, self.isid,
                                          timeout=self.io_timeout, source=self.source)
                self.stats["logins"] += 1
                self.max_login = max(self.max_login, time.monotonic() - t)
                return True
            except (ic.ISCSIError, OSError) as e:
                self.session = None
                self.errors.add("login", self.who, f"{type(e).__name__}: {e}")
            if self.phase.stop.wait(1.0):
                return False

    def drop(self):
        if self.session is not None:
            self.session.close()
        self.session = None

    def churn(self):
        """One cycle: Logout (or an abrupt close), then a login through the next portal."""
        abrupt = (self.stats["cycles"] + self.index) % self.abrupt_every == self.abrupt_every - 1
        if not self.connected:
            self.drop()   # lost by an error already counted: only the login again
        elif abrupt:
            self.drop()
            self.stats["abrupt"] += 1
        else:
            try:
                code = self.session.logout(timeout=self.io_timeout)
                self.stats["logouts"] += 1
                if code != 0:
                    self.errors.add("logout", self.who, f"response {code}")
            except (ic.ISCSIError, OSError) as e:
                self.errors.add("logout", self.who, f"{type(e).__name__}: {e}")
            self.session = None
        self.portal = (self.portal + 1) % len(self.portals)
        if self.login():
            self.stats["cycles"] += 1

    # --- I/O -----------------------------------------------------------------
    def command(self, what, cdb, data_out=b"", read_length=0):
        """The GOOD Result of one command, or None (counted as an error). A unit attention is retried
        at once (up to 8 times), a port unavailable every 0.25 s for up to `patience` s."""
        if not self.connected and not self.login():
            return None
        attentions, give_up = 0, time.monotonic() + self.patience
        while True:
            t = time.monotonic()
            result, _ = vw.bounded_command(self.session, cdb, data_out, read_length, timeout=self.io_timeout)
            self.max_latency = max(self.max_latency, time.monotonic() - t)
            if result.good:
                return result
            if result.unit_attention() and attentions < MAX_UA_RETRIES:
                attentions += 1
                self.stats["attentions"] += 1
                continue
            if result.key == 0x02 and result.asc_ascq in UNAVAILABLE and time.monotonic() < give_up:
                self.stats["unavailable"] += 1
                time.sleep(0.25)
                continue
            break
        kind = "scsi" if result.status is not None else vw.failure_kind(result)
        self.errors.add(kind, self.who, f"{what}: {result}")
        if not self.session or self.session.closed:
            self.session = None
        return None

    def lba(self, unit):
        return unit * self.unit_blocks

    def extent(self):
        n = min(self.rng.choice(SIZES), self.units)
        return self.first_unit + self.rng.randrange(self.units - n + 1), n

    def write(self):
        start, n = self.extent()
        self.gen += 1
        gen = ((self.index + 1) << 40) | self.gen
        data = b"".join(vw.block_content(self.lba(u), gen, UNIT) for u in range(start, start + n))
        ok = self.command(f"WRITE(10) LBA {self.lba(start)} x {n * self.unit_blocks}",
                          scsi.write10(self.lba(start), n * self.unit_blocks), data_out=data)
        for u in range(start, start + n):
            # a failed write may or may not have landed: both stay legal until the next good write
            self.ledger[u] = {gen} if ok else self.ledger.get(u, {vw.ZERO}) | {gen}
        if ok:
            self.stats["writes"] += 1
            self.stats["written_bytes"] += len(data)

    def read(self, start=None, n=None):
        if start is None:
            start, n = self.extent()
        result = self.command(f"READ(10) LBA {self.lba(start)} x {n * self.unit_blocks}",
                              scsi.read10(self.lba(start), n * self.unit_blocks), read_length=n * UNIT)
        if result is None:
            return
        if len(result.data) != n * UNIT:
            self.errors.add("short read", self.who, f"LBA {self.lba(start)}: {len(result.data)} of {n * UNIT} bytes")
            return
        self.stats["reads"] += 1
        self.stats["read_bytes"] += len(result.data)
        for k in range(n):
            u = start + k
            legal = self.ledger.get(u, {vw.ZERO})
            states = vw.block_states(result.data[k * UNIT:(k + 1) * UNIT], self.lba(u))
            bad = [(i, s) for i, s in enumerate(states) if s not in legal]
            if bad:
                i, s = bad[0]
                self.errors.add("miscompare", self.who,
                                f"LBA {self.lba(u) + i}: holds {s if isinstance(s, str) else f'generation {s:#x}'}, "
                                f"legal {sorted(f'{g:#x}' if isinstance(g, int) else g for g in legal)}"
                                f" ({len(bad)} of {len(states)} sectors of the unit)")
        self.stats["verified_units"] += n

    def read_back_region(self):
        """Reads the whole region in 256 KiB pieces and checks every unit."""
        u = self.first_unit
        while u < self.first_unit + self.units:
            n = min(64, self.first_unit + self.units - u)
            self.read(u, n)
            u += n

    # --- the thread ----------------------------------------------------------
    def run(self):
        try:
            self.login()
            self.ready.set()
            while not self.phase.go.wait(1.0):
                if self.phase.stop.is_set():
                    return
            next_churn = None
            if self.churn_every:
                # staggered: the churners do not all log in at the same moment
                next_churn = time.monotonic() + self.churn_every * (1 + self.rng.random())
                self.first_churn = next_churn
            while not self.phase.stop.is_set():
                if next_churn is not None and time.monotonic() >= next_churn:
                    self.churn()
                    next_churn += self.churn_every
                    continue
                if self.rng.random() < self.read_share:
                    self.read()
                else:
                    self.write()
            self.read_back_region()
            if not self.connected:
                self.login()
        except Exception as e:  # noqa: BLE001 - a crashed session is an error, reported
            self.errors.add("crash", self.who, f"{type(e).__name__}: {e}")
        finally:
            self.ready.set()
            self.parked.set()
            self.phase.leave.wait(self.io_timeout * 3 + 60)
            if self.connected:
                try:
                    if self.session.logout(timeout=self.io_timeout) != 0:
                        self.errors.add("logout", self.who, "final logout refused")
                except (ic.ISCSIError, OSError) as e:
                    self.errors.add("logout", self.who, f"final: {type(e).__name__}: {e}")
            self.drop()

    def expected_cycles(self, until):
        """How many churn cycles were due by `until` (0 for a session that does not churn)."""
        if not self.churn_every or self.first_churn is None or until < self.first_churn:
            return 0
        return int((until - self.first_churn) // self.churn_every) + 1
