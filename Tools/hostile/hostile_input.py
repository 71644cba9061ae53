#!/usr/bin/env python3
"""Hostile input against a running target.

A well-behaved session logs in first and answers NOP pings between every hostile
case; each hostile case runs on its own connection and must end in a Reject PDU,
a closed connection, or (for an out-of-window CmdSN, RFC 7143 §3.2.2.1) silence
with the session still alive. Prints one line per case and a closing
"N passed, N failed" line; exits non-zero on any failure.
"""
import argparse
import os
import socket
import struct
import subprocess
import sys
import time

OP_NOP_OUT, OP_SCSI_CMD, OP_LOGIN, OP_DATA_OUT = 0x00, 0x01, 0x03, 0x05
OP_NOP_IN, OP_SCSI_RSP, OP_LOGIN_RSP, OP_R2T, OP_REJECT = 0x20, 0x21, 0x23, 0x31, 0x3F


def pad4(n):
    return (4 - n % 4) % 4


def bhs(opcode, flags=0, immediate=False, data=b"", lun=0, itt=0, rest=b""):
    """Builds a BHS: bytes 0-19 common, bytes 20-47 opcode-specific (`rest`)."""
    b = bytearray(48)
    b[0] = opcode | (0x40 if immediate else 0)
    b[1] = flags
    b[5:8] = len(data).to_bytes(3, "big")
    b[8:16] = lun.to_bytes(8, "big")
    b[16:20] = itt.to_bytes(4, "big")
    b[20:20 + len(rest)] = rest
    return bytes(b) + data + b"\0" * pad4(len(data))


def text(pairs):
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)


class Connection:
    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.cmdsn = 1
        self.expstatsn = 0
        self.itt = 0x100
        self.data_digest = False   # the target's PDUs carry a data digest after a data segment

    def send(self, raw):
        self.sock.sendall(raw)

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("closed")
            out += chunk
        return out

    def recv_pdu(self):
        h = self.recv_exact(48)
        ahs = h[4] * 4
        dlen = int.from_bytes(h[5:8], "big")
        digest = 4 if self.data_digest and dlen else 0
        body = self.recv_exact(ahs + dlen + pad4(dlen) + digest)
        return h, body[ahs:ahs + dlen]

    def login(self, initiator, target, extra=(), operational=None):
        """`operational` overrides the operational keys offered (e.g. DataDigest)."""
        isid = os.urandom(6)
        keys = [("InitiatorName", initiator), ("TargetName", target), ("SessionType", "Normal"),
                ("AuthMethod", "None")]
        csg, nsg = 0, 1
        for _ in range(6):
            data = text(keys + list(extra)) if keys else b""
            rest = b"\0\0" + b"\0\0" + self.cmdsn.to_bytes(4, "big") + self.expstatsn.to_bytes(4, "big")
            raw = bytearray(bhs(OP_LOGIN, 0x80 | (csg << 2) | nsg, True, data, itt=self.itt, rest=rest))
            raw[8:14] = b"\x80" + isid[1:]   # ISID type 2 ... fine for a test
            self.send(bytes(raw))
            h, body = self.recv_pdu()
            assert h[0] & 0x3F == OP_LOGIN_RSP, f"expected login response, got opcode {h[0]:#x}"
            if h[36] != 0:
                raise RuntimeError(f"login failed: class {h[36]:#x} detail {h[37]:#x}")
            self.expstatsn = int.from_bytes(h[24:28], "big") + 1
            if b"DataDigest=CRC32C" in body:
                self.data_digest = True
            transit, rsp_nsg = h[1] & 0x80, h[1] & 0x03
            if transit and rsp_nsg == 3:
                return
            if transit:
                csg, nsg = rsp_nsg, 3
                offered = {"HeaderDigest": "None", "DataDigest": "None", "ImmediateData": "Yes",
                           "InitialR2T": "No", "MaxRecvDataSegmentLength": "262144",
                           "MaxBurstLength": "262144", "FirstBurstLength": "65536",
                           "ErrorRecoveryLevel": "0", "MaxConnections": "1"}
                offered.update(operational or {})
                keys = list(offered.items())
            else:
                keys = []
        raise RuntimeError("login did not finish in 6 PDUs")

    def nop_ping(self):
        self.itt += 1
        itt = self.itt
        rest = (0xFFFFFFFF).to_bytes(4, "big") + self.cmdsn.to_bytes(4, "big") + self.expstatsn.to_bytes(4, "big")
        self.send(bhs(OP_NOP_OUT, 0x80, True, b"ping", itt=itt, rest=rest))
        while True:
            h, body = self.recv_pdu()
            if h[0] & 0x3F == OP_NOP_IN and int.from_bytes(h[16:20], "big") == itt:
                self.expstatsn = int.from_bytes(h[24:28], "big") + 1
                return body == b"ping"
            if h[0] & 0x3F == OP_NOP_IN:   # target-initiated NOP-In: answer it
                ttt = h[20:24]
                self.send(bhs(OP_NOP_OUT, 0x80, True, b"", itt=0xFFFFFFFF,
                              rest=ttt + self.cmdsn.to_bytes(4, "big") + self.expstatsn.to_bytes(4, "big")))

    def scsi(self, cdb, edtl=0, read=True, cmdsn=None, write=False):
        self.itt += 1
        rest = edtl.to_bytes(4, "big") + (cmdsn if cmdsn is not None else self.cmdsn).to_bytes(4, "big") \
            + self.expstatsn.to_bytes(4, "big") + cdb.ljust(16, b"\0")
        flags = 0x80 | (0x40 if read else 0) | (0x20 if write else 0) | 1
        self.send(bhs(OP_SCSI_CMD, flags, False, b"", itt=self.itt, rest=rest))
        if cmdsn is None:
            self.cmdsn += 1

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def task_outcome(conn, itt, wait=5.0):
    """How the task `itt` ended: 'ended' (its SCSI Response came, after any
    Rejects), 'closed', or 'hung' when neither happened within `wait`."""
    conn.sock.settimeout(wait)
    try:
        while True:
            h, _ = conn.recv_pdu()
            if h[0] & 0x3F == OP_SCSI_RSP and int.from_bytes(h[16:20], "big") == itt:
                return "ended"
    except (ConnectionError, ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        return "hung"


def outcome(conn, wait=5.0):
    """'reject', 'closed', or 'silent' for what the target did next."""
    conn.sock.settimeout(wait)
    try:
        while True:
            h, _ = conn.recv_pdu()
            if h[0] & 0x3F == OP_REJECT:
                return "reject"
            if h[0] & 0x3F in (OP_SCSI_RSP, 0x25):
                return f"response opcode {h[0] & 0x3F:#x}"
    except (ConnectionError, ConnectionResetError, BrokenPipeError):
        return "closed"
    except socket.timeout:
        return "silent"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=3260)
    ap.add_argument("--target", default="iqn.2026-11.dev.tessera:default")
    ap.add_argument("--initiator", default="iqn.2026-11.dev.tessera:hostile")
    args = ap.parse_args()
    h, p, t = args.host, args.port, args.target

    good = Connection(h, p)
    good.login(args.initiator + "-good", t)
    results = []

    def case(name, allowed, body):
        try:
            got = body()
        except Exception as e:  # noqa: BLE001 - a crash in the case is a result too
            got = f"exception: {e!r}"
        alive = False
        try:
            alive = good.nop_ping()
        except Exception:  # noqa: BLE001
            alive = False
        fresh = subprocess.run(["iscsi-inq", f"iscsi://{h}:{p}/{t}/0"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=20).returncode == 0
        ok = got in allowed and alive and fresh
        results.append(ok)
        print(f"{'PASS' if ok else 'FAIL'} {name}: target answered {got}; "
              f"good session {'alive' if alive else 'DEAD'}; new login {'ok' if fresh else 'FAILED'}")

    def garbage():
        c = Connection(h, p)
        c.send(os.urandom(4096))
        return outcome(c)

    def oversize_segment():
        c = Connection(h, p)
        c.login(args.initiator, t)
        raw = bytearray(bhs(OP_SCSI_CMD, 0xA1, False, b"", itt=7, rest=(512).to_bytes(4, "big")
                            + c.cmdsn.to_bytes(4, "big") + c.expstatsn.to_bytes(4, "big") + b"\x2a" + b"\0" * 15))
        raw[5:8] = (16 * 1024 * 1024 - 1).to_bytes(3, "big")   # far above any MaxRecvDataSegmentLength
        c.send(bytes(raw) + b"\0" * 65536)
        return outcome(c)

    def unknown_opcode():
        c = Connection(h, p)
        c.login(args.initiator, t)
        c.send(bhs(0x1F, 0x80, False, b"", itt=9))
        return outcome(c)

    def out_of_window_cmdsn():
        c = Connection(h, p)
        c.login(args.initiator, t)
        c.scsi(b"\x00", cmdsn=c.cmdsn + 100000)   # TEST UNIT READY far beyond MaxCmdSN
        got = outcome(c, wait=3.0)
        if got == "silent":  # RFC 7143 §3.2.2.1: ignored; the session must still work
            return "silent" if c.nop_ping() else "session broken"
        return got

    def data_out_unknown_task():
        c = Connection(h, p)
        c.login(args.initiator, t)
        rest = (0x1234).to_bytes(4, "big") + b"\0" * 4 + c.expstatsn.to_bytes(4, "big") + b"\0" * 8
        c.send(bhs(OP_DATA_OUT, 0x80, False, b"\0" * 512, itt=0xBEEF, rest=rest))
        return outcome(c)

    def huge_login_key():
        c = Connection(h, p)
        data = text([("InitiatorName", args.initiator), ("TargetName", t), ("X-Huge", "A" * 65536)])
        c.send(bhs(OP_LOGIN, 0x81, True, data, itt=1))
        return outcome(c)

    def solicited_write(operational):
        """A session with InitialR2T and no immediate data, a WRITE(10) of 2
        blocks, and the target's R2T for it: (connection, ITT, R2T header)."""
        c = Connection(h, p)
        c.login(args.initiator, t, operational={"InitialR2T": "Yes", "ImmediateData": "No", **operational})
        c.scsi(b"\x2a\x00\x00\x00\x00\x10\x00\x00\x02\x00", edtl=1024, read=False, write=True)
        itt = c.itt
        c.sock.settimeout(5.0)
        while True:
            r2t, _ = c.recv_pdu()
            if r2t[0] & 0x3F == OP_R2T:
                return c, itt, r2t

    def data_out(c, itt, r2t, data, offset, final=True, digest=b""):
        rest = r2t[20:24] + b"\0" * 4 + c.expstatsn.to_bytes(4, "big") + b"\0" * 4 + offset.to_bytes(4, "big") \
            + b"\0" * 4
        c.send(bhs(OP_DATA_OUT, 0x80 if final else 0, False, data, itt=itt, rest=rest) + digest)

    def bad_data_digest():
        # RFC 7143 §7.8: a Protocol Service CRC error on Data-Out ends the
        # command (ABORTED COMMAND) or, at ErrorRecoveryLevel 0, the connection.
        c, itt, r2t = solicited_write({"DataDigest": "CRC32C"})
        if not c.data_digest:
            return "DataDigest=CRC32C not negotiated"
        data_out(c, itt, r2t, b"\x5a" * 1024, 0, digest=b"\xde\xad\xbe\xef")
        return task_outcome(c, itt)

    def data_out_sequence_error():
        # Data-Out at buffer offset 512 when the R2T asked for 0...1023 (RFC
        # 7143 §11.7.5): a protocol error; the task must still end.
        c, itt, r2t = solicited_write({})
        data_out(c, itt, r2t, b"\x5a" * 512, 512)
        return task_outcome(c, itt)

    case("garbage bytes on a new connection", {"closed", "reject"}, garbage)
    case("DataSegmentLength above MaxRecvDataSegmentLength", {"closed", "reject"}, oversize_segment)
    case("unknown opcode", {"closed", "reject"}, unknown_opcode)
    case("CmdSN outside the window", {"closed", "reject", "silent"}, out_of_window_cmdsn)
    case("Data-Out for an unknown task", {"closed", "reject"}, data_out_unknown_task)
    case("login with a 64 KiB key", {"closed", "reject"}, huge_login_key)
    case("a Data-Out with a bad data digest: the write ends (response or close), never hangs", {"ended", "closed"},
         bad_data_digest)
    case("a Data-Out at the wrong buffer offset: the write ends (response or close), never hangs", {"ended", "closed"},
         data_out_sequence_error)
    good.close()
    failed = results.count(False)
    print(f"{len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
