#!/usr/bin/env python3
"""Hostile hosts against the portal's bounds, over real sockets (Tools/hostile/bounds.sh starts the daemon).

The daemon runs with [limits] login_timeout = 2, max_connections_per_initiator_address = 8,
max_immediate_commands = 16. Checks:
  a. connections that never log in (silent, or stalled in the security stage) are closed
     after the login timeout, not before;
  b. connections over the per-address bound are closed at accept (before any login timeout),
     iscsi-inq fails at the bound and works once a session from the address has ended;
     another address is not affected;
  c. a WRITE whose ExpectedDataTransferLength is far above its CDB's length gets R2Ts for
     the CDB's length only, and a status with the underflow residual; one with EDTL below
     the CDB's gets R2Ts for EDTL and the overflow residual; one beyond the LUN's maximum
     transfer length gets no R2T at all, only its CHECK CONDITION; 32 WRITEs of 1 MiB get
     R2Ts for at most max_write_bytes_in_flight (16 MiB) at once, and all complete;
  d. immediate commands over the bound get Reject reason 0x06 and the session goes on;
  e. a host that sends READs and never reads the responses: the daemon's RSS stays within
     +64 MiB while a second, well-behaved session (iscsi-perf) keeps completing I/O.
Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on any failure.
"""
import argparse
import os
import re
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_client as ic  # noqa: E402
import procstat  # noqa: E402
import scsi_cmds as scsi  # noqa: E402

LOGIN_TIMEOUT = 2.0
PER_ADDRESS = 8
MAX_IMMEDIATE = 16
RSS_BOUND_MIB = 64
READ_BLOCKS = 2048  # 1 MiB READs from the host that never reads

results = []


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'PASS' if ok else 'FAIL'} {name}{(' — ' + detail) if detail else ''}", flush=True)


def time_to_close(sock, limit):
    """Seconds until the peer closes `sock` (EOF or reset), or None if still open after `limit`."""
    start = time.monotonic()
    sock.settimeout(limit)
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return time.monotonic() - start
    except socket.timeout:
        return None
    except OSError:
        return time.monotonic() - start


def raw_connect(host, port, source="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((source, 0))
    s.connect((host, port))
    return s


def partial_login(sock, initiator, target):
    """A first Login Request in the security stage without T: the target answers and waits for more."""
    data = ic.encode_text([("InitiatorName", initiator), ("TargetName", target), ("SessionType", "Normal"),
                           ("AuthMethod", "None")])
    b = bytearray(48)
    b[0] = ic.OP_LOGIN | 0x40
    b[1] = 0x00  # CSG = NSG = 0, no transit
    b[5:8] = len(data).to_bytes(3, "big")
    b[8:14] = bytes.fromhex("80000000b001")
    sock.sendall(bytes(b) + data + b"\0" * ic.pad4(len(data)))


def iscsi_inq(url):
    try:
        return subprocess.run(["iscsi-inq", url], capture_output=True, timeout=20).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def rss_mib(pid):
    """Resident memory of the daemon's own (procstat.rss_mib: without the file
    pages it maps for reads, which are the page cache)."""
    return procstat.rss_mib(pid) or 0.0


def log_has(path, text):
    try:
        with open(path, errors="replace") as f:
            return text in f.read()
    except OSError:
        return False


# --- a. login timeout -----------------------------------------------------
def login_timeout(args):
    silent = [raw_connect(args.host, args.port) for _ in range(4)]
    stalled = raw_connect(args.host, args.port)
    partial_login(stalled, "iqn.2026-11.dev.tessera:stalled", args.target)
    opened = time.monotonic()
    times = [time_to_close(s, LOGIN_TIMEOUT + 3) for s in silent + [stalled]]
    # time_to_close runs one after another: measure from when they were opened
    closed_at = []
    for t in times:
        closed_at.append(None if t is None else time.monotonic() - opened)
    for s in silent + [stalled]:
        s.close()
    silent_ok = all(t is not None for t in times[:4])
    first = times[0]
    check("login timeout: 4 silent connections are closed", silent_ok,
          f"first closed after {first:.2f} s (login_timeout {LOGIN_TIMEOUT:.0f} s)" if first else "still open")
    check("login timeout: not before login_timeout", first is not None and first >= LOGIN_TIMEOUT - 0.3,
          f"{first:.2f} s" if first else "")
    check("login timeout: a login stalled in the security stage is closed", times[4] is not None)
    check("login timeout: logged with the reason", log_has(args.log, "login not completed within login_timeout"))


# --- b. connection bounds ---------------------------------------------------
def connection_bounds(args):
    url = f"iscsi://{args.host}:{args.port}/{args.target}/0"
    sessions = []
    try:
        for i in range(PER_ADDRESS):
            sessions.append(ic.Session(args.host, args.port, f"iqn.2026-11.dev.tessera:fill{i}", args.target,
                                       isid=bytes.fromhex(f"80000000c0{i:02x}")))
        check(f"bounds: {PER_ADDRESS} sessions from 127.0.0.1 log in", len(sessions) == PER_ADDRESS)
        extra = raw_connect(args.host, args.port)
        t = time_to_close(extra, LOGIN_TIMEOUT + 2)
        extra.close()
        check("bounds: the next connection from the address is closed at accept",
              t is not None and t < LOGIN_TIMEOUT / 2, f"closed after {t:.3f} s" if t is not None else "still open")
        check("bounds: iscsi-inq fails at the bound", not iscsi_inq(url))
        check("bounds: the refusal is logged", log_has(args.log, "refused at accept"))
        other = raw_connect(args.host, args.port, source="127.0.0.2")
        t = time_to_close(other, 0.5)
        other.close()
        check("bounds: another address (127.0.0.2) is not refused", t is None)
        sessions.pop().logout()
        ok = False
        for _ in range(10):
            if iscsi_inq(url):
                ok = True
                break
            time.sleep(0.3)
        check("bounds: iscsi-inq from the address works once a session has ended", ok)
        alive = True
        for s in sessions:
            s.nop(b"ping")
        check("bounds: the sessions under the bound still answer", alive)
    except ic.ISCSIError as e:
        check("bounds: sessions under the bound", False, str(e))
    finally:
        for s in sessions:
            try:
                s.logout()
            except ic.ISCSIError:
                s.close()


# --- c. WRITE data bounded by the CDB ---------------------------------------
def write_bounded_by_cdb(args):
    offer = {"InitialR2T": "Yes", "ImmediateData": "No", "MaxOutstandingR2T": "4"}
    with ic.Session(args.host, args.port, "iqn.2026-11.dev.tessera:writer", args.target,
                    isid=bytes.fromhex("80000000d001"), offer=offer) as s:
        for _ in range(3):  # the new nexus's unit attention (SAM-5 §5.14) goes to a TEST UNIT READY
            if s.command(scsi.tur()).good:
                break
        edtl = 16 << 20
        payload = bytes((i * 7) & 0xFF for i in range(4096)) + bytes(edtl - 4096)
        task = s.start(scsi.write10(100, 8), data_out=payload, hold=True)
        s.wait_r2t(task)
        s.release(task)
        r = s.wait(task)
        solicited = sum(length for _, _, length in task.r2ts)
        end = max((offset + length for _, offset, length in task.r2ts), default=0)
        check("write: EDTL 16 MiB, CDB 8 blocks: R2Ts ask for at most the CDB's 4096 bytes",
              solicited == 4096 and end <= 4096, f"{len(task.r2ts)} R2T(s) for {solicited} bytes")
        check("write: GOOD with the underflow residual (RFC 7143 §11.4.5.2)",
              r.status == ic.GOOD and r.flags & 0x02 and r.residual == edtl - 4096,
              f"status {r.status}, flags {r.flags:#04x}, residual {r.residual}, sense {r.sense.hex()}")
        back = s.command(scsi.read10(100, 8), read_length=4096)
        check("write: the 4096 bytes the CDB wrote read back", back.good and back.data == payload[:4096])
        # EDTL below the CDB: solicit EDTL, report the overflow.
        task = s.start(scsi.write10(200, 8), data_out=bytes(2048), hold=True)
        s.wait_r2t(task)
        s.release(task)
        r = s.wait(task)
        solicited = sum(length for _, _, length in task.r2ts)
        check("write: EDTL 2048 below the CDB's 4096: R2Ts for 2048, overflow residual 2048",
              solicited == 2048 and r.flags & 0x04 and r.residual == 2048,
              f"{solicited} solicited, status {r.status}, flags {r.flags:#04x}, residual {r.residual}")
        # A WRITE beyond MAXIMUM TRANSFER LENGTH (8 MiB) fails whatever its data: nothing is solicited.
        task = s.start(scsi.write10(0, 65535), data_out=bytes(65535 * 512), hold=True)
        r = s.wait(task, timeout=5)
        check("write: 32 MiB WRITE beyond the maximum transfer: no R2T, ILLEGAL REQUEST / INVALID FIELD IN CDB",
              not task.r2ts and r.status == ic.CHECK_CONDITION and r.key == 5 and r.asc_ascq == (0x24, 0),
              f"{len(task.r2ts)} R2T(s), {r}")
        # 32 WRITEs of 1 MiB whose R2Ts the host holds: only max_write_bytes_in_flight (16 MiB) is solicited.
        tasks = [s.start(scsi.write10(4096 + 2048 * i, 2048), data_out=bytes([i]) * (1 << 20), hold=True)
                 for i in range(32)]
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                s.pump(deadline)
            except ic.Timeout:
                break
        soliciting = sum(1 for t in tasks if t.r2ts)
        check("write: 32 held 1 MiB WRITEs: R2Ts for at most 16 of them (max_write_bytes_in_flight 16 MiB)",
              0 < soliciting <= 16, f"{soliciting} WRITEs got R2Ts")
        for t in tasks:
            s.release(t)
        results = [s.wait(t, timeout=20) for t in tasks]
        check("write: once the host answers, all 32 complete GOOD, in their turn",
              all(r.good for r in results), ", ".join(sorted({str(r) for r in results})))
        check("write: the session goes on", s.command(scsi.tur()).good)


# --- d. immediate commands --------------------------------------------------
def immediate_commands(args):
    offer = {"InitialR2T": "Yes", "ImmediateData": "No"}
    with ic.Session(args.host, args.port, "iqn.2026-11.dev.tessera:immediate", args.target,
                    isid=bytes.fromhex("80000000e001"), offer=offer) as s:
        count = MAX_IMMEDIATE + 4
        for i in range(count):
            itt = s._next_itt()
            # An immediate WRITE whose R2T is never answered: it stays at the target.
            s.tasks[itt] = ic.Task(itt, scsi.write10(i, 1), b"", 0, True)
            b = s._bhs(ic.OP_SCSI_CMD, 0x80 | 0x20 | 1, 0, itt, immediate=True)
            b[20:24] = (512).to_bytes(4, "big")
            b[24:28] = s.cmdsn.to_bytes(4, "big")
            b[28:32] = s.expstatsn.to_bytes(4, "big")
            b[32:48] = scsi.write10(i, 1).ljust(16, b"\0")
            s._send(b)
        s.idle(1.0)
        rejected = [reason for reason, _ in s.rejects]
        check(f"immediate: {count} held immediate commands, the {count - MAX_IMMEDIATE} over the bound get Reject 0x06",
              rejected == [0x06] * (count - MAX_IMMEDIATE), f"rejects {rejected}")
        check("immediate: the session goes on", s.nop(b"still here") == b"still here")


# --- e. a host that never reads ---------------------------------------------
def perf(url, seconds):
    """iscsi-perf for `seconds`: its last reported throughput in MB/s (None when it did not run)."""
    try:
        out = subprocess.run(["iscsi-perf", "-t", str(seconds), "-b", "128", "-m", "8", url], capture_output=True,
                             text=True, timeout=seconds + 30)
    except subprocess.TimeoutExpired:
        return None, "timed out"
    text = out.stdout + out.stderr
    # iscsi-perf ends with "iops average N (M MB/s)"
    averages = re.findall(r"iops average ([0-9]+) \(([0-9.]+) MB/s\)", text)
    if not averages:
        return None, text.strip().splitlines()[-1][-200:] if text.strip() else f"rc {out.returncode}"
    iops, rate = averages[-1]
    return float(rate), f"{rate} MB/s, {iops} IOPS (64 KiB reads, 8 in flight)"


def never_reads(args):
    url = f"iscsi://{args.host}:{args.port}/{args.target}/0"
    baseline, detail = perf(url, 4)
    print(f"    well-behaved iscsi-perf before: {detail}", flush=True)
    rss_before = rss_mib(args.pid)
    hostile = ic.Session(args.host, args.port, "iqn.2026-11.dev.tessera:deaf", args.target,
                         isid=bytes.fromhex("80000000f001"))
    stop = threading.Event()
    sent = [0]

    def blast():
        # Immediate READs (RFC 7143 §4.2.2.1: outside the CmdSN window, so a host that reads
        # nothing can keep them coming: up to max_immediate_commands run at once, the rest get
        # Reject) interleaved with in-order windowed READs; 1 MiB of Data-In each.
        sock = hostile.sock
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(0.2)
        cmdsn = hostile.cmdsn
        itt = 0x1000
        pending = b""
        while not stop.is_set():
            if not pending:
                burst = bytearray()
                for immediate in (False, True):
                    b = hostile._bhs(ic.OP_SCSI_CMD, 0x80 | 0x40 | 1, 0, itt, immediate=immediate)
                    b[20:24] = (READ_BLOCKS * 512).to_bytes(4, "big")
                    b[24:28] = cmdsn.to_bytes(4, "big")
                    b[28:32] = hostile.expstatsn.to_bytes(4, "big")
                    b[32:48] = scsi.read10((itt * READ_BLOCKS) % (500000 - READ_BLOCKS), READ_BLOCKS).ljust(16, b"\0")
                    burst += b
                    itt = (itt + 1) & 0xFFFFFFFF
                    sent[0] += 1
                cmdsn = (cmdsn + 1) & 0xFFFFFFFF
                pending = bytes(burst)
            try:
                n = sock.send(pending)
                pending = pending[n:]
            except socket.timeout:
                continue
            except OSError:
                return

    thread = threading.Thread(target=blast, daemon=True)
    thread.start()
    peak = [rss_before]

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_mib(args.pid))
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    time.sleep(3)
    during, detail_during = perf(url, 6)
    print(f"    well-behaved iscsi-perf during: {detail_during}", flush=True)
    time.sleep(1)
    stop.set()
    thread.join(5)
    sampler.join(2)
    growth = peak[0] - rss_before
    check(f"never reads: RSS stays within +{RSS_BOUND_MIB} MiB",
          growth <= RSS_BOUND_MIB,
          f"RSS {rss_before:.0f} MiB before, peak {peak[0]:.0f} MiB (+{growth:.0f}); "
          f"{sent[0]} READs of {READ_BLOCKS // 2} KiB sent by the host")
    check("never reads: the well-behaved session keeps completing I/O",
          during is not None and during > 0 and (baseline is None or during >= baseline * 0.1),
          f"{baseline} MB/s before, {during} MB/s during")
    hostile.close()
    check("never reads: the daemon answers after the host went away", iscsi_inq(url))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4510)
    parser.add_argument("--target", required=True)
    parser.add_argument("--pid", type=int, required=True, help="the tesserad process (for its resident memory)")
    parser.add_argument("--log", required=True, help="the tesserad log file")
    parser.add_argument("--only", action="append", help="run only these checks (a-e)")
    args = parser.parse_args()
    steps = {"a": login_timeout, "b": connection_bounds, "c": write_bounded_by_cdb, "d": immediate_commands,
             "e": never_reads}
    for key, step in steps.items():
        if args.only and key not in args.only:
            continue
        try:
            step(args)
        except Exception as e:  # a check that could not finish is a failure, and the next ones still run
            check(f"{step.__name__} finished", False, f"{type(e).__name__}: {e}")
    passed = sum(results)
    failed = len(results) - passed
    print(f"{passed} passed, {failed} failed")
    sys.exit(0 if failed == 0 else 1)


if __name__ == "__main__":
    main()
