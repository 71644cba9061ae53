#!/usr/bin/env python3
"""A verifying writer over Tools/lib/iscsi_client.py, standard library only.

It logs in to one target through TWO portals (two sessions on two different
nodes) and, in a thread, writes blocks at random LBAs of the LUN round-robin
over the two sessions, reading recorded blocks back now and then. What it
proves: no acknowledged write is lost and nothing is read that was never
written, while nodes die, stop and come back; and how long the host waits.

Block content: every 512-byte sector of a write carries a header (magic, the
write's first LBA, its sequence number, the sector's index, a CRC-32 of the
sector) and a fill derived from those, so any sector read back says which
write it came from, or that it is garbage.

The ledger (what may be read back, per block):
- acknowledged: the seq of the last write that got GOOD;
- in doubt: a write that met a timeout, a dropped connection or a CHECK
  CONDITION other than a UNIT ATTENTION may have landed (or may still land:
  a stopped node still holds it in its socket), so its content and the
  previous one are both legal until a retry of the SAME content is
  acknowledged. Such a block is never written again (quarantined): a late
  landing of the old write would otherwise look like a lost write.
- a UNIT ATTENTION means the command was not processed (SAM-5 §5.14): it is
  retried on the same session and does not put the block in doubt.

Failures move the write to the other session, and the session that failed
is used only when the other cannot be, for a second (as a multipath host sets
a failed path aside: every write sent down a bad path is one more block in
doubt). A session whose connection failed or timed out is closed (its
command window is unknown) and replaced by one to another node, never the
node the other session is on. Every socket operation is bounded by
`io_timeout` (a dead or stopped node's connection is abandoned after that
long); a write not acknowledged within `give_up` seconds is abandoned (left
in doubt) and counted.

Timing: every acknowledgement's time is kept, so `pause(since, until)` can
say how long the host waited around a fault.

As a command (a smoke test against running nodes):
  verifying_writer.py --portal 1=127.0.0.1:3261 --portal 2=127.0.0.1:3262 [--portal 3=...]
                      --target IQN [--seconds 10] [--seed S]
"""
import argparse
import bisect
import hashlib
import os
import random
import struct
import sys
import threading
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import iscsi_client as ic  # noqa: E402
import scsi_cmds as scsi  # noqa: E402

SECTOR = 512
MAGIC = b"TSRVW001"
HEAD = struct.Struct(">8sQQI")          # magic, first LBA of the write, seq, sector index
CRC = struct.Struct(">I")
FILL = SECTOR - HEAD.size - CRC.size
ZERO = "zero"                            # the state of a sector nothing has written
INITIATOR = "iqn.2026-11.dev.tessera:verifying-writer"
VERIFIER = "iqn.2026-11.dev.tessera:verifying-reader"


# --- block content ------------------------------------------------------------

def block_content(lba, seq, length):
    """The bytes write `seq` puts at `lba`: per 512-byte sector a header, its CRC and a fill."""
    out = bytearray()
    for i in range(length // SECTOR):
        head = HEAD.pack(MAGIC, lba, seq, i)
        fill = (hashlib.sha512(head).digest() * (FILL // 64 + 1))[:FILL]
        out += head + CRC.pack(zlib.crc32(head + fill)) + fill
    return bytes(out)


def sector_state(sector, lba, index):
    """ZERO, the seq of the write the sector holds, or a string saying why it is garbage."""
    if not any(sector):
        return ZERO
    magic, first, seq, i = HEAD.unpack_from(sector)
    crc = CRC.unpack_from(sector, HEAD.size)[0]
    if magic != MAGIC:
        return "garbage (no header)"
    if zlib.crc32(sector[:HEAD.size] + sector[HEAD.size + CRC.size:]) != crc:
        return f"garbage (bad CRC, header says seq {seq})"
    if first != lba or i != index:
        return f"misplaced (sector {i} of a write to LBA {first}, seq {seq})"
    return seq


def block_states(data, lba):
    """The state of every sector of one block read back."""
    return [sector_state(data[o:o + SECTOR], lba, o // SECTOR) for o in range(0, len(data), SECTOR)]


# --- the ledger ---------------------------------------------------------------

class Ledger:
    """What was written where: acknowledged seq, in-doubt seq and every seq issued, per block."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked = {}        # lba -> seq of the last acknowledged write
        self.doubt = {}        # lba -> seq of a write not (yet) acknowledged that may have landed
        self.issued = {}       # lba -> every seq sent there
        self.quarantined = set()
        self.order = []        # every LBA written, in first-write order (for random picks)

    def issue(self, lba, seq):
        with self.lock:
            if lba not in self.issued:
                self.issued[lba] = set()
                self.order.append(lba)
            self.issued[lba].add(seq)

    def in_doubt(self, lba, seq):
        """The write may have landed: both contents are legal and the block is never written again."""
        with self.lock:
            self.doubt[lba] = seq
            self.quarantined.add(lba)

    def ack(self, lba, seq):
        with self.lock:
            self.acked[lba] = seq
            if self.doubt.get(lba) == seq:
                del self.doubt[lba]

    def writable(self, lba):
        return lba not in self.quarantined

    def recorded(self):
        with self.lock:
            return list(self.order)

    def legal(self, lba):
        """The sector states a read of `lba` may return now."""
        with self.lock:
            acked, doubt = self.acked.get(lba), self.doubt.get(lba)
        out = {acked if acked is not None else ZERO}
        if doubt is not None:
            out.add(doubt)
        return out

    def judge(self, lba, data):
        """("ok" | "lost" | "wrong", detail) of one block read back.
        lost: a sector older than the block's last acknowledged write (or zero after one);
        wrong: a sector with content never written there (garbage, misplaced, unknown seq)."""
        legal = self.legal(lba)
        with self.lock:
            acked, issued = self.acked.get(lba), set(self.issued.get(lba, ()))
        verdict, notes = "ok", []
        for i, state in enumerate(block_states(data, lba)):
            if state in legal:
                continue
            if isinstance(state, int) and state in issued and acked is not None and state < acked:
                kind = "lost"
                notes.append(f"sector {i}: seq {state}, older than acknowledged seq {acked}")
            elif state == ZERO and acked is not None:
                kind = "lost"
                notes.append(f"sector {i}: zero, acknowledged seq {acked}")
            else:
                kind = "wrong"
                notes.append(f"sector {i}: {state if isinstance(state, str) else f'seq {state}'} "
                             f"(legal: {sorted(map(str, legal))})")
            if verdict != "wrong":
                verdict = kind
        return verdict, f"LBA {lba}: " + "; ".join(notes[:3]) if notes else ""


# --- sessions -----------------------------------------------------------------

class Slot:
    """One of the writer's sessions: its ISID, the node it is on, the Session (None while it has none)."""

    def __init__(self, name, isid, node):
        self.name, self.isid, self.node = name, isid, node
        self.session = None
        self.retry_at = 0.0
        self.fresh = True      # never logged in: its own node first
        self.penalty_until = 0.0  # its last command failed: the other slot first until then

    def close(self):
        if self.session is not None:
            self.session.close()
        self.session = None


def bounded_command(session, cdb, data_out=b"", read_length=0, timeout=3.0):
    """(Result, connection still usable). A timeout or a connection failure closes the session
    (its command window is unknown) and becomes a Result without status."""
    try:
        return session.command(cdb, data_out, read_length, timeout=timeout), True
    except ic.Timeout as e:
        session.close()
        return ic.Result(None, reason=f"timeout ({e})"), False
    except (ic.ISCSIError, OSError) as e:
        session.close()
        return ic.Result(None, reason=f"connection: {e}"), False


def failure_kind(result):
    """A short name of how a command failed (for the per-round summary)."""
    if result.status is None:
        reason = result.reason or "no status"
        return "timeout" if reason.startswith("timeout") else "connection lost" if reason.startswith(
            "connection") else reason
    return str(result)


class VerifyingWriter:
    """The writer thread and its ledger. `portals`: {node id: (host, port)}, at least two."""

    def __init__(self, portals, target, block_size, blocks, first_nodes=None, write_bytes=4096, seed=0,
                 io_timeout=3.0, give_up=20.0, read_every=8, interval=0.0, sub_unit_bytes=None,
                 initiator=INITIATOR, path_penalty=1.0):
        if len(portals) < 2:
            raise ValueError("needs two portals")
        self.portals, self.target = dict(portals), target
        self.block_size, self.blocks = block_size, blocks
        self.write_blocks = max(1, write_bytes // block_size)
        self.write_bytes = self.write_blocks * block_size
        self.slots_per_lun = blocks // self.write_blocks
        self.io_timeout, self.give_up, self.read_every, self.interval = io_timeout, give_up, read_every, interval
        self.path_penalty = path_penalty
        self.sub_unit_blocks = (sub_unit_bytes // block_size) if sub_unit_bytes else blocks
        self.sub_units = max(1, -(-blocks // self.sub_unit_blocks))
        self.initiator = initiator
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        nodes = list(first_nodes or sorted(self.portals))[:2]
        self.slots = [Slot("A", bytes.fromhex("80000000f001"), nodes[0]),
                      Slot("B", bytes.fromhex("80000000f002"), nodes[1])]
        self.turn = 0
        self.seq = 0
        self.lock = threading.Lock()
        self.ack_times = []                   # monotonic time of every acknowledgement, in order
        self.sub_acked = [0.0] * self.sub_units   # last acknowledgement per sub-unit
        self.events = []                      # (time, text): failures, session moves
        self.stats = {"writes": 0, "acked": 0, "failed_attempts": 0, "given_up": 0, "reads": 0,
                      "read_failures": 0, "wrong_reads": 0, "lost_reads": 0, "logins": 0, "login_failures": 0}
        self.wrong_examples = []
        self.error = None
        self._stop = threading.Event()
        self._thread = None

    # --- life cycle ---------------------------------------------------------
    def start(self):
        self._thread = threading.Thread(target=self._main, name="verifying-writer", daemon=True)
        self._thread.start()

    def stop(self, within=None):
        """Ends the loop (a write in retries is abandoned, in doubt) and logs out; True if the thread ended."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(within if within is not None else self.io_timeout * 3 + 5)
        return not self._thread.is_alive()

    def alive(self):
        return self._thread is not None and self._thread.is_alive()

    def _main(self):
        try:
            while not self._stop.is_set():
                self.write_one()
                if self.read_every and self.stats["writes"] % self.read_every == 0:
                    self.read_one()
                if self.interval:
                    self._stop.wait(self.interval)
        except Exception as e:  # noqa: BLE001 - reported by the campaign, not swallowed
            self.error = f"{type(e).__name__}: {e}"
            self.event(f"writer died: {self.error}")
        finally:
            for slot in self.slots:
                if slot.session is not None:
                    try:
                        slot.session.logout(timeout=2)
                    except (ic.ISCSIError, OSError):
                        pass
                slot.close()

    # --- bookkeeping --------------------------------------------------------
    def event(self, text):
        with self.lock:
            if len(self.events) < 200000:
                self.events.append((time.monotonic(), text))

    def events_between(self, since, until):
        with self.lock:
            return [text for t, text in self.events if since <= t <= until]

    def _acked_now(self, lba):
        now = time.monotonic()
        with self.lock:
            self.ack_times.append(now)
            self.sub_acked[min(lba // self.sub_unit_blocks, self.sub_units - 1)] = now
            self.stats["acked"] += 1

    def acks(self):
        with self.lock:
            return len(self.ack_times)

    def all_sub_units_acked_since(self, t):
        """Whether every sub-unit has taken an acknowledged write after time `t` (all of the LUN writable)."""
        with self.lock:
            return all(x > t for x in self.sub_acked)

    def pause(self, since, until):
        """(first acknowledgement's delay after `since` or None, the longest wait for an acknowledgement
        in [since, until], acknowledgements in between). The longest wait counts from `since` to the
        first acknowledgement, between consecutive ones, and from the last one to `until`."""
        with self.lock:
            lo = bisect.bisect_right(self.ack_times, since)
            hi = bisect.bisect_right(self.ack_times, until)
            times = self.ack_times[lo:hi]
        if not times:
            return None, until - since, 0
        points = [since] + times + [until]
        return times[0] - since, max(b - a for a, b in zip(points, points[1:])), len(times)

    # --- sessions -----------------------------------------------------------
    def _connect(self, slot):
        """A session for `slot`: the nodes after the one it was on first (that one failed it, and a
        stopped node costs a whole login timeout), that node last; never the node the other slot
        has a session on (two sessions, two nodes). Each login is bounded by io_timeout."""
        other = next(s for s in self.slots if s is not slot)
        nodes = sorted(self.portals)
        start = (nodes.index(slot.node) + (0 if slot.fresh else 1)) if slot.node in nodes else 0
        order = nodes[start:] + nodes[:start]
        busy = other.node if other.session is not None else None
        for node in [n for n in order if n != busy]:
            host, port = self.portals[node]
            try:
                s = ic.Session(host, port, self.initiator, self.target, slot.isid, timeout=self.io_timeout)
            except (ic.ISCSIError, OSError) as e:
                self.stats["login_failures"] += 1
                self.event(f"login of session {slot.name} on node {node} failed: {type(e).__name__}")
                continue
            self.stats["logins"] += 1
            if node != slot.node:
                self.event(f"session {slot.name} moved from node {slot.node} to node {node}")
            slot.node, slot.session, slot.fresh = node, s, False
            return True
        slot.node = order[0]  # the next round of logins starts one node further on
        slot.retry_at = time.monotonic() + 0.5
        return False

    def _slot(self):
        """The next slot round-robin that has (or gets) a session, skipping a slot whose last command
        failed less than `path_penalty` ago while the other one is usable (as a multipath host sets a
        failed path aside: each write sent down a bad path is one more block in doubt); None when
        neither can log in now."""
        now = time.monotonic()
        n = len(self.slots)
        order = [self.slots[(self.turn + k) % n] for k in range(n)]
        order.sort(key=lambda slot: slot.penalty_until > now)  # stable: round-robin among equals
        for slot in order:
            if slot.session is None or slot.session.closed:
                slot.close()
                if time.monotonic() < slot.retry_at or not self._connect(slot):
                    continue
            self.turn = (self.slots.index(slot) + 1) % n
            return slot
        return None

    # --- writes and reads ---------------------------------------------------
    def _pick_lba(self):
        """A random block not quarantined (a block whose write was in doubt is never written again)."""
        for _ in range(256):
            lba = self.rng.randrange(self.slots_per_lun) * self.write_blocks
            if self.ledger.writable(lba):
                return lba
        raise RuntimeError(f"no writable block found: {len(self.ledger.quarantined)} of {self.slots_per_lun} "
                           "blocks quarantined (in doubt)")

    def write_one(self):
        """One write of a new seq at a random block, retried until acknowledged, `give_up` or stop.
        True when acknowledged."""
        lba = self._pick_lba()
        self.seq += 1
        seq = self.seq
        data = block_content(lba, seq, self.write_bytes)
        cdb = scsi.write10(lba, self.write_blocks)
        self.ledger.issue(lba, seq)
        self.stats["writes"] += 1
        deadline = time.monotonic() + self.give_up
        attentions = 0
        while True:
            slot = self._slot()
            if slot is not None:
                result, _ = bounded_command(slot.session, cdb, data_out=data, timeout=self.io_timeout)
                if result.good:
                    slot.penalty_until = 0.0
                    self.ledger.ack(lba, seq)
                    self._acked_now(lba)
                    return True
                if result.unit_attention() and attentions < 8:
                    attentions += 1   # not processed: the same session again, the block not in doubt
                    self.turn = self.slots.index(slot)
                    continue
                self.ledger.in_doubt(lba, seq)
                slot.penalty_until = time.monotonic() + self.path_penalty
                self.stats["failed_attempts"] += 1
                self.event(f"write on node {slot.node}: {failure_kind(result)}")
            if self._stop.is_set() or time.monotonic() >= deadline:
                self.ledger.in_doubt(lba, seq)
                if not self._stop.is_set():
                    self.stats["given_up"] += 1
                    self.event(f"write of seq {seq} at LBA {lba} given up after {self.give_up:.0f} s")
                return False
            self._stop.wait(0.05 if slot is not None else 0.2)

    def read_one(self):
        """Reads one recorded block back through the next session and judges it (no retry)."""
        recorded = self.ledger.recorded()
        if not recorded:
            return
        lba = self.rng.choice(recorded)
        slot = self._slot()
        if slot is None:
            return
        self.stats["reads"] += 1
        result, _ = bounded_command(slot.session, scsi.read10(lba, self.write_blocks),
                                    read_length=self.write_bytes, timeout=self.io_timeout)
        if not result.good or len(result.data) != self.write_bytes:
            if not result.unit_attention():
                slot.penalty_until = time.monotonic() + self.path_penalty
            self.stats["read_failures"] += 1
            self.event(f"read on node {slot.node}: {failure_kind(result)}")
            return
        verdict, detail = self.ledger.judge(lba, result.data)
        if verdict != "ok":
            self.stats["wrong_reads"] += 1
            if verdict == "lost":
                self.stats["lost_reads"] += 1
            with self.lock:
                if len(self.wrong_examples) < 20:
                    self.wrong_examples.append(f"read through node {slot.node}: {verdict}: {detail}")
            self.event(f"WRONG read through node {slot.node}: {verdict}: {detail}")


# --- read back everything -----------------------------------------------------

def verify_all(ledger, host, port, target, block_size, blocks, write_blocks, isid=b"\x80\x00\x00\x00\xf1\x01",
               chunk_bytes=256 * 1024, io_timeout=10.0, deadline=None, chunk_patience=15.0, initiator=VERIFIER):
    """Reads the whole LUN through one portal and judges every block: recorded blocks against the
    ledger, the others must be zero. A chunk that fails is tried again (new login after a connection
    failure) for up to `chunk_patience` s. Returns a dict: checked, lost, wrong, unreadable, examples."""
    out = {"checked": 0, "lost": 0, "wrong": 0, "unreadable": 0, "examples": []}
    deadline = deadline or time.monotonic() + 300
    recorded = set(ledger.recorded())
    chunk_blocks = max(write_blocks, (chunk_bytes // block_size) // write_blocks * write_blocks)
    session = None
    lba = 0
    failed_in_a_row = 0
    while lba < blocks:
        n = min(chunk_blocks, blocks - lba)
        data = None
        if failed_in_a_row >= 3:  # the portal does not serve: the rest counts unreadable at once
            out["unreadable"] += (blocks - lba) // write_blocks
            out["examples"].append(f"stopped at LBA {lba} after 3 unreadable chunks in a row")
            break
        give_up = min(deadline, time.monotonic() + chunk_patience)
        first = True
        while time.monotonic() < give_up:
            if not first:
                time.sleep(0.5)
            first = False
            try:
                if session is None or session.closed:
                    session = ic.Session(host, port, initiator, target, isid, timeout=io_timeout)
            except (ic.ISCSIError, OSError) as e:
                if len(out["examples"]) < 20:
                    out["examples"].append(f"login to {host}:{port}: {e}")
                session = None
                continue
            result, _ = bounded_command(session, scsi.read10(lba, n), read_length=n * block_size,
                                        timeout=io_timeout)
            if result.good and len(result.data) == n * block_size:
                data = result.data
                break
            if not result.unit_attention() and len(out["examples"]) < 20:
                out["examples"].append(f"READ(10) LBA {lba} x {n}: {result}")
        if data is None:
            out["unreadable"] += n // write_blocks
            failed_in_a_row += 1
            lba += n
            continue
        failed_in_a_row = 0
        for b in range(lba, lba + n - write_blocks + 1, write_blocks):
            piece = data[(b - lba) * block_size:(b - lba + write_blocks) * block_size]
            if b in recorded:
                verdict, detail = ledger.judge(b, piece)
            else:
                verdict, detail = ("ok", "") if not any(piece) else (
                    "wrong", f"LBA {b}: never written, holds {block_states(piece, b)[:2]}")
            out["checked"] += 1
            if verdict != "ok":
                out[verdict] += 1
                if len(out["examples"]) < 20:
                    out["examples"].append(f"{verdict}: {detail}")
        lba += n
    if session is not None:
        try:
            session.logout(timeout=3)
        except (ic.ISCSIError, OSError):
            session.close()
    return out


def read_capacity(host, port, target, io_timeout=10.0, initiator=VERIFIER):
    """(block size, block count) of LUN 0 through one portal, past unit attentions."""
    s = ic.Session(host, port, initiator, target, bytes.fromhex("80000000f1ff"), timeout=io_timeout)
    try:
        for _ in range(8):
            r = s.command(scsi.read_capacity16(), read_length=32, timeout=io_timeout)
            if not r.unit_attention():
                break
        if not r.good or len(r.data) < 12:
            raise ic.ISCSIError(f"READ CAPACITY(16): {r}")
        block_size = int.from_bytes(r.data[8:12], "big")
        blocks = int.from_bytes(r.data[0:8], "big") + 1
        try:
            s.logout(timeout=3)
        except ic.ISCSIError:
            pass
        return block_size, blocks
    finally:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--portal", action="append", required=True, help="NODE=HOST:PORT (two or more)")
    ap.add_argument("--target", required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--io-timeout", type=float, default=3.0)
    a = ap.parse_args()
    portals = {}
    for item in a.portal:
        node, address = item.split("=", 1)
        host, port = address.rsplit(":", 1)
        portals[int(node)] = (host, int(port))
    first = portals[min(portals)]
    block_size, blocks = read_capacity(first[0], first[1], a.target)
    w = VerifyingWriter(portals, a.target, block_size, blocks, seed=a.seed, io_timeout=a.io_timeout)
    w.start()
    time.sleep(a.seconds)
    w.stop()
    _, worst, n = w.pause(w.ack_times[0] if w.ack_times else time.monotonic(), time.monotonic())
    print(f"{w.stats}; longest wait for an acknowledgement {worst * 1000:.0f} ms over {n} acknowledgements")
    nodes = sorted(portals)
    bad = 0
    for node in nodes[:2]:
        v = verify_all(w.ledger, *portals[node], a.target, block_size, blocks, w.write_blocks)
        print(f"read back through node {node}: {v}")
        bad += v["lost"] + v["wrong"] + v["unreadable"]
    return 1 if bad or w.stats["wrong_reads"] or w.error else 0


if __name__ == "__main__":
    sys.exit(main())
