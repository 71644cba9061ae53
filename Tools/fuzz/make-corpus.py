#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus under Tools/fuzz/corpus/<target>/.

Each seed is a real conversation in the input format of its target: login
PDUs and SCSI command PDUs (iscsi-pdu), login and text negotiations
(login), CDB sequences with their Data-Out (scsi), dqlite requests
and responses (dqlite-wire) and peer-protocol frames (peer-wire).
The builders of Tools/lib and Tools/cluster give the CDBs and peer frames.
Run it again after changing a format; the seeds are committed.
"""
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "lib"), os.path.join(HERE, "..", "cluster")]
import peerwire  # noqa: E402
import scsi_cmds as cdb  # noqa: E402

OPEN = "iqn.2026-01.dev.tessera:fuzz"
CHAP = "iqn.2026-01.dev.tessera:chap"
ACL = "iqn.2026-01.dev.tessera:acl"
INITIATOR = "iqn.2026-01.dev.tessera:initiator"


def text(*pairs):
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)


# --- iSCSI PDUs (RFC 7143 §11) ----------------------------------------------

def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return (crc ^ 0xFFFFFFFF).to_bytes(4, "little")


def pdu(opcode, flags, fields, data=b"", immediate=False, digests=(False, False)):
    """A PDU: BHS bytes 0-3, DataSegmentLength, then `fields` for bytes 8-47."""
    bhs = bytes([opcode | (0x40 if immediate else 0), flags, 0, 0]) + len(data).to_bytes(4, "big")
    bhs += fields.ljust(40, b"\0")
    out = bhs + (crc32c(bhs) if digests[0] else b"")
    if data:
        padded = data + bytes(-len(data) % 4)
        out += padded + (crc32c(padded) if digests[1] else b"")
    return out


def login(csg, nsg, transit, pairs, cmdsn=1, isid=0x800000000001):
    flags = (0x80 if transit else 0) | (csg << 2) | nsg
    fields = isid.to_bytes(6, "big") + b"\0\0" + (7).to_bytes(4, "big") + b"\0\0\0\0"
    fields += cmdsn.to_bytes(4, "big") + bytes(4)
    b = bytearray(pdu(0x03, flags, fields, text(*pairs), immediate=True))
    b[2], b[3] = 0, 0  # version max, min
    return bytes(b)


def scsi(itt, cmdsn, c, edtl=0, read=False, write=False, data=b"", lun=0, immediate=False, d=(False, False)):
    flags = 0x80 | (0x40 if read else 0) | (0x20 if write else 0) | 1
    fields = struct.pack(">QIIII", lun << 48, itt, edtl, cmdsn, 1) + c.ljust(16, b"\0")
    return pdu(0x01, flags, fields, data, immediate, d)


def data_out(itt, ttt, offset, data, datasn=0, final=True, d=(False, False)):
    fields = struct.pack(">QIIIIII", 0, itt, ttt, 0, 1, 0, datasn) + offset.to_bytes(4, "big")
    return pdu(0x05, 0x80 if final else 0, fields, data, digests=d)


def nop_out(itt, cmdsn, data=b"", ttt=0xFFFFFFFF):
    return pdu(0x00, 0x80, struct.pack(">QIIII", 0, itt, ttt, cmdsn, 1), data, immediate=True)


def text_request(itt, cmdsn, pairs, ttt=0xFFFFFFFF):
    return pdu(0x04, 0x80, struct.pack(">QIIII", 0, itt, ttt, cmdsn, 1), text(*pairs), immediate=True)


def tmf(itt, cmdsn, function, ref=0xFFFFFFFF):
    return pdu(0x02, 0x80 | function, struct.pack(">QIIII", 0, itt, ref, cmdsn, 1), immediate=True)


def logout(itt, cmdsn, reason=0):
    return pdu(0x06, 0x80 | reason, struct.pack(">QIHHII", 0, itt, 0, 0, cmdsn, 1), immediate=True)


def snack(itt):
    return pdu(0x10, 0x80, struct.pack(">QII", 0, itt, 0xFFFFFFFF))


NORMAL = [("InitiatorName", INITIATOR), ("SessionType", "Normal"), ("TargetName", OPEN)]
OPERATIONAL = [("HeaderDigest", "None"), ("DataDigest", "None"), ("InitialR2T", "No"), ("ImmediateData", "Yes"),
               ("MaxRecvDataSegmentLength", "8192"), ("MaxBurstLength", "262144"), ("FirstBurstLength", "65536"),
               ("MaxOutstandingR2T", "1"), ("ErrorRecoveryLevel", "0"), ("DefaultTime2Wait", "2"),
               ("DefaultTime2Retain", "0"), ("DataPDUInOrder", "Yes"), ("DataSequenceInOrder", "Yes")]


def one_step_login():
    return login(1, 3, True, NORMAL + OPERATIONAL)


def two_step_login():
    return login(0, 1, True, NORMAL + [("AuthMethod", "None")]) + login(1, 3, True, OPERATIONAL)


def io_session(d=(False, False)):
    """TUR, INQUIRY, READ CAPACITY, a write (immediate data + Data-Out), a read, NOP, TMF, logout."""
    block = bytes(range(256)) * 2
    s = scsi(1, 1, cdb.tur(), d=d)
    s += scsi(2, 2, cdb.inquiry(length=96), 96, read=True, d=d)
    s += scsi(3, 3, cdb.read_capacity16(), 32, read=True, d=d)
    s += scsi(4, 4, cdb.write10(0, 2), 1024, write=True, data=block, d=d)
    s += data_out(4, 0xFFFFFFFF, 512, block, d=d)
    s += scsi(5, 5, cdb.read10(0, 2), 1024, read=True, d=d)
    s += scsi(6, 6, cdb.write10(8, 16), 8192, write=True, d=d)
    return s


def iscsi_pdu_seeds():
    block = bytes(512)
    yield "login-one-step", b"\0" + one_step_login()
    yield "login-two-step-io", b"\0" + two_step_login() + io_session() + logout(9, 7)
    yield "login-chap-offer", b"\0" + login(0, 1, True, [("InitiatorName", INITIATOR), ("SessionType", "Normal"),
                                                          ("TargetName", CHAP), ("AuthMethod", "CHAP,None")])
    yield "login-discovery-sendtargets", b"\0" + login(1, 3, True, [("InitiatorName", INITIATOR),
                                                                    ("SessionType", "Discovery")]) \
        + text_request(1, 1, [("SendTargets", "All")])
    yield "login-then-nop-text-logout", b"\0" + one_step_login() + nop_out(1, 1, b"ping") \
        + text_request(2, 1, [("SendTargets", OPEN)]) + logout(3, 1)
    yield "ffp-io", b"\x01" + io_session()
    yield "ffp-io-digests", b"\x07" + io_session(d=(True, True))
    yield "ffp-initial-r2t-lagged", b"\x48" + scsi(1, 1, cdb.write10(0, 4), 2048, write=True) \
        + data_out(1, 0, 0, block * 4) + tmf(2, 2, 1, ref=1) + tmf(3, 2, 5)
    yield "ffp-window-holes", b"\x81" + scsi(1, 3, cdb.tur()) + scsi(2, 2, cdb.tur()) + scsi(3, 1, cdb.tur()) \
        + scsi(4, 1, cdb.tur(), immediate=True) + snack(5) + nop_out(6, 4) + logout(7, 4)
    yield "ffp-discovery", b"\x21" + text_request(1, 1, [("SendTargets", "All")]) \
        + scsi(2, 1, cdb.tur()) + logout(3, 1)
    yield "ffp-login-in-ffp", b"\x01" + one_step_login()
    yield "ffp-cold-reset", b"\x41" + scsi(1, 1, cdb.read10(0, 1), 512, read=True) + tmf(2, 2, 7)


# --- login and text negotiation (LoginFuzzing's format) -----------------------

def req(flags, body):
    return bytes([flags]) + len(body).to_bytes(2, "little") + body


def lflags(transit, csg, nsg, cont=False):
    return (1 if transit else 0) | (2 if cont else 0) | (csg << 2) | (nsg << 4)


def login_seeds():
    op = text(*OPERATIONAL)
    yield "one-step", req(lflags(True, 1, 3), text(*NORMAL) + op)
    yield "two-step", req(lflags(True, 0, 1), text(*NORMAL, ("AuthMethod", "None"))) + req(lflags(True, 1, 3), op)
    chap = [("InitiatorName", INITIATOR), ("SessionType", "Normal"), ("TargetName", CHAP)]
    yield "chap-md5", (req(lflags(False, 0, 0), text(*chap, ("AuthMethod", "CHAP")))
                       + req(lflags(False, 0, 0), text(("CHAP_A", "5")))
                       + req(lflags(True, 0, 1), text(("CHAP_N", "user"), ("CHAP_R", "fuzz")))
                       + req(lflags(True, 1, 3), op)
                       + req(1, text(("SendTargets", "All"))))
    yield "chap-sha256-mutual", (req(lflags(False, 0, 0), text(*chap, ("AuthMethod", "CHAP,None")))
                                 + req(lflags(False, 0, 0), text(("CHAP_A", "7,5")))
                                 + req(lflags(True, 0, 1), text(("CHAP_N", "user"), ("CHAP_R", "fuzz"),
                                                                ("CHAP_I", "9"), ("CHAP_C", "0x" + "ab" * 16)))
                                 + req(lflags(True, 1, 3), op))
    yield "chap-wrong", (req(lflags(False, 0, 0), text(*chap, ("AuthMethod", "CHAP")))
                         + req(lflags(False, 0, 0), text(("CHAP_A", "5")))
                         + req(lflags(True, 0, 1), text(("CHAP_N", "user"), ("CHAP_R", "0x" + "00" * 16))))
    yield "acl-allowed", req(lflags(True, 1, 3), text(("InitiatorName", INITIATOR), ("TargetName", ACL)) + op)
    yield "acl-refused", req(lflags(True, 1, 3), text(("InitiatorName", "iqn.2026-01.other:x"), ("TargetName", ACL)))
    yield "discovery-sendtargets", (req(lflags(True, 1, 3), text(("InitiatorName", INITIATOR),
                                                                  ("SessionType", "Discovery")) + op)
                                    + req(1, text(("SendTargets", "All")))
                                    + req(1, text(("SendTargets", OPEN))))
    yield "continued-text", (req(lflags(False, 0, 0, cont=True), text(*NORMAL)[:20])
                             + req(lflags(True, 0, 1), text(*NORMAL)[20:] + text(("AuthMethod", "None")))
                             + req(lflags(True, 1, 3), op))
    yield "digests-and-odd-keys", req(lflags(True, 1, 3), text(*NORMAL, ("HeaderDigest", "CRC32C,None"),
                                                               ("DataDigest", "CRC32C"), ("MaxConnections", "4"),
                                                               ("IFMarker", "No"), ("X-com.example.key", "1"),
                                                               ("TaskReporting", "RFC3720"),
                                                               ("iSCSIProtocolLevel", "1"),
                                                               ("MaxBurstLength", "0x200"),
                                                               ("FirstBurstLength", "16777215")))
    yield "text-continuation", (req(lflags(True, 1, 3), text(*NORMAL) + op)
                                + req(2, text(("SendTargets", "All"))[:8])
                                + req(1 | 64, text(("SendTargets", "All"))[8:])
                                + req(1 | 64, b""))


# --- SCSI commands (SCSITargetFuzzing's format) --------------------------------

def cmd(c, data=b"", flags=0):
    return bytes([flags, len(c)]) + c + len(data).to_bytes(2, "little") + data


def scsi_seeds():
    tur_both = cmd(cdb.tur()) + cmd(cdb.tur(), flags=1) + cmd(cdb.tur(), flags=2)
    block = bytes(range(256)) * 2
    reg = cdb.pr_out_params(key=0, sark=0x1111)
    yield "inquiry-vpd", tur_both + b"".join(cmd(cdb.inquiry(p)) for p in (None, 0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2))
    yield "read-write", tur_both + cmd(cdb.write10(0, 1), block) + cmd(cdb.read10(0, 1)) \
        + cmd(cdb.read16(1, 2)) + cmd(cdb.read_capacity16()) + cmd(bytes([0x25]) + bytes(9))
    yield "write16-verify-sync", tur_both + cmd(bytes([0x8A, 0x08]) + (4).to_bytes(8, "big") + (1).to_bytes(4, "big")
                                                + bytes(2), block) \
        + cmd(bytes([0x2F, 0x02]) + (4).to_bytes(4, "big") + b"\0" + (1).to_bytes(2, "big") + b"\0", block) \
        + cmd(bytes([0x35]) + bytes(9)) + cmd(bytes([0x91]) + bytes(15))
    yield "write-same-unmap", tur_both + cmd(bytes([0x93, 0x08]) + (8).to_bytes(8, "big") + (16).to_bytes(4, "big")
                                             + bytes(2), bytes(512)) \
        + cmd(bytes([0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0]), struct.pack(">HH4xQI4x", 22, 16, 32, 8)) \
        + cmd(bytes([0x9E, 0x12]) + bytes(8) + (64).to_bytes(4, "big") + bytes(2))
    yield "compare-and-write", tur_both + cmd(cdb.write10(2, 1), block) \
        + cmd(bytes([0x89, 0]) + (2).to_bytes(8, "big") + bytes(3) + b"\x01" + bytes(2), block + block)
    yield "mode-pages", tur_both + cmd(bytes([0x1A, 0, 0x3F, 0, 255, 0])) \
        + cmd(bytes([0x5A, 0, 0x3F, 0, 0, 0, 0, 1, 0, 0])) \
        + cmd(bytes([0x15, 0x10, 0, 0, 24, 0]), bytes([23, 0, 0, 0]) + bytes([0x08, 18, 0x04]) + bytes(17))
    yield "report-luns-sense-rsoc", cmd(bytes([0xA0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])) \
        + cmd(bytes([0x03, 0, 0, 0, 252, 0])) + cmd(bytes([0xA3, 0x0C, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0])) \
        + cmd(bytes([0xA3, 0x0A, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]))
    yield "persistent-reservations", tur_both + cmd(cdb.pr_out(cdb.PROUT_REGISTER), reg) \
        + cmd(cdb.pr_out(cdb.PROUT_REGISTER), cdb.pr_out_params(0, 0x2222), flags=1) \
        + cmd(cdb.pr_out(cdb.PROUT_RESERVE, cdb.WRITE_EXCLUSIVE), cdb.pr_out_params(0x1111)) \
        + cmd(cdb.write10(0, 1), block, flags=1) \
        + b"".join(cmd(cdb.pr_in(sa)) for sa in range(4)) \
        + cmd(cdb.pr_out(cdb.PROUT_PREEMPT, cdb.EXCLUSIVE_ACCESS), cdb.pr_out_params(0x2222, 0x1111), flags=1) \
        + cmd(cdb.pr_out(cdb.PROUT_CLEAR), cdb.pr_out_params(0x2222), flags=1)
    yield "spc2-reserve", tur_both + cmd(cdb.reserve6()) + cmd(cdb.read10(0, 1), flags=1) + cmd(cdb.release6()) \
        + cmd(cdb.tur(), flags=1 | (3 << 3))
    yield "lun1-readonly-and-missing", tur_both + cmd(cdb.write10(0, 1), block, flags=2) \
        + cmd(cdb.inquiry(), flags=4) + cmd(cdb.read10(0, 1), flags=4) \
        + cmd(bytes([0x48, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]), flags=2)
    yield "get-lba-status-tpg-misc", tur_both + cmd(bytes([0x9E, 0x12]) + bytes(8) + (24).to_bytes(4, "big") + bytes(2)) \
        + cmd(bytes([0xA3, 0x0A, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0])) + cmd(bytes([0x1B, 0, 0, 0, 1, 0])) \
        + cmd(bytes([0x1E, 0, 0, 0, 1, 0])) + cmd(bytes([0x34, 0]) + bytes(8))
    yield "copy-results", tur_both + cmd(bytes([0x84, 0x03]) + bytes(8) + (64).to_bytes(4, "big") + bytes(2)) \
        + cmd(bytes([0x83, 0]) + bytes(8) + (0).to_bytes(4, "big") + bytes(2))


# --- dqlite (doc/protocol.md) ---------------------------------------------------

def dq_text(s):
    b = s.encode() + b"\0"
    return b + bytes(-len(b) % 8)


def dq(t, body):
    return struct.pack("<IBBH", len(body) // 8, t, 0, 0) + body


def u64(v):
    return struct.pack("<Q", v)


def dqlite_seeds():
    row_header = bytes([0x21, 0x43, 0x95, 0x0B]) + bytes(4)  # types 1,2 | 3,4 | 5,9 | 11,0
    rows = u64(7) + b"".join(dq_text(c) for c in "abcdefg") + row_header + bytes(4)[:0] \
        + struct.pack("<q", -5) + struct.pack("<d", 1.5) + dq_text("text") + u64(3) + b"xyz" + bytes(5) \
        + u64(0) + struct.pack("<q", 1700000000) + u64(1)
    # 7 columns need 4 header bytes padded to 8, then values for 7 columns
    yield "responses", dq(0, u64(1) + dq_text("no leader")) + dq(1, u64(1) + dq_text("127.0.0.1:9001")) \
        + dq(2, u64(15000)) + dq(3, u64(2) + u64(1) + dq_text("127.0.0.1:9001") + u64(0) + u64(2)
                                 + dq_text("127.0.0.1:9002") + u64(1)) \
        + dq(4, struct.pack("<II", 0, 0)) + dq(6, u64(3) + u64(1)) + dq(8, u64(0)) + dq(10, u64(0) + u64(1))
    yield "rows", dq(7, rows + u64(0xFFFFFFFFFFFFFFFF))
    yield "rows-part", dq(7, u64(1) + dq_text("id") + bytes([1]) + bytes(7) + u64(42) + u64(0xEEEEEEEEEEEEEEEE))
    params = bytes([3, 1, 3, 4]) + bytes(4) + u64(9) + dq_text("v") + u64(2) + b"ab" + bytes(6)
    yield "requests", dq(0, u64(0)) + dq(1, u64(5)) + dq(3, dq_text("tessera") + u64(0) + dq_text("")) \
        + dq(8, u64(0) + dq_text("INSERT INTO t VALUES (?, ?, ?)") + params) \
        + dq(9, u64(0) + dq_text("SELECT * FROM t")) + dq(12, u64(2) + dq_text("127.0.0.1:9002")) \
        + dq(13, u64(2) + u64(1)) + dq(14, u64(2)) + dq(16, u64(1)) + dq(17, u64(2)) + dq(18, u64(0))
    yield "partial-frame", dq(7, rows)[:37]


# --- peer protocol (Tools/cluster/peerwire.py) ----------------------------------

def peer_seeds():
    p = peerwire
    lun = p.lun_id(OPEN, 0)
    yield "hello-ack", p.hello() + p.frame(p.HELLO_ACK, 0, struct.pack(">HQ", 1, 2))
    yield "requests", p.hello() + p.read(1, lun, 0, 1, 0, 8) + p.write(2, lun, 0, 1, 8, 1, bytes(512), fua=True) \
        + p.write(3, lun, 1, 2, 0, 1, bytes(512), kind=p.REPLICATE) \
        + p.request(4, p.UNMAP, p.io_fields(lun, 0, 1, 0, 64)) \
        + p.request(5, p.REPLICATE_UNMAP, p.io_fields(lun, 0, 1, 0, 64)) \
        + p.write(6, lun, 0, 1, 0, 1, bytes(1024), kind=p.COMPARE_AND_WRITE) \
        + p.request(7, p.ALLOCATION, p.io_fields(lun, 0, 1, 0, 128)) + p.flush(8, lun) \
        + p.request(9, p.LOGICAL_UNIT_RESET, struct.pack(">Q", lun))
    yield "replies", p.frame(p.REPLY, 1, bytes([p.DONE])) + p.frame(p.REPLY, 2, bytes([p.DATA]) + struct.pack(">I", 4)
                                                                    + b"abcd") \
        + p.frame(p.REPLY, 3, bytes([p.MISCOMPARE]) + struct.pack(">I", 17)) \
        + p.frame(p.REPLY, 4, bytes([p.EXTENTS]) + struct.pack(">IQQBQQB", 2, 0, 8, 1, 8, 8, 0)) \
        + p.frame(p.REPLY, 5, bytes([p.FAILURE]) + struct.pack(">BBQH", 1, 1, 7, 5) + b"stale") \
        + p.frame(p.ERROR, 0, struct.pack(">BH", 1, 3) + b"bad")


TARGETS = {
    "iscsi-pdu": iscsi_pdu_seeds,
    "login": login_seeds,
    "scsi": scsi_seeds,
    "dqlite-wire": dqlite_seeds,
    "peer-wire": peer_seeds,
}


def main():
    for target, seeds in TARGETS.items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in seeds():
            with open(os.path.join(folder, f"seed-{name}"), "wb") as f:
                f.write(data)
    print("seeds written under", os.path.join(HERE, "corpus"))


if __name__ == "__main__":
    main()
