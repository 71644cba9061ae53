#!/usr/bin/env python3
"""CDBs, PERSISTENT RESERVE parameter lists and their answers (SPC-4, SBC-3), standard library only.

Pure functions over bytes: they build what `iscsi_client.Session.command` sends
and decode what it gets back.
"""
import struct

# SPC-4 §6.15.1 / §6.16.1: service actions
PRIN_READ_KEYS, PRIN_READ_RESERVATION, PRIN_REPORT_CAPABILITIES, PRIN_READ_FULL_STATUS = 0, 1, 2, 3
PROUT_REGISTER, PROUT_RESERVE, PROUT_RELEASE, PROUT_CLEAR = 0, 1, 2, 3
PROUT_PREEMPT, PROUT_PREEMPT_AND_ABORT, PROUT_REGISTER_AND_IGNORE, PROUT_REGISTER_AND_MOVE = 4, 5, 6, 7

# SPC-4 §6.15.3.3, table 165: persistent reservation types
WRITE_EXCLUSIVE, EXCLUSIVE_ACCESS = 1, 3
WRITE_EXCLUSIVE_REGISTRANTS_ONLY, EXCLUSIVE_ACCESS_REGISTRANTS_ONLY = 5, 6
WRITE_EXCLUSIVE_ALL_REGISTRANTS, EXCLUSIVE_ACCESS_ALL_REGISTRANTS = 7, 8
PR_TYPE_NAMES = {1: "WRITE EXCLUSIVE", 3: "EXCLUSIVE ACCESS", 5: "WRITE EXCLUSIVE - REGISTRANTS ONLY",
                 6: "EXCLUSIVE ACCESS - REGISTRANTS ONLY", 7: "WRITE EXCLUSIVE - ALL REGISTRANTS",
                 8: "EXCLUSIVE ACCESS - ALL REGISTRANTS"}

ISCSI_PROTOCOL = 0x5  # SPC-4 §7.6.1, table 444: PROTOCOL IDENTIFIER of iSCSI


def tur():
    return bytes(6)


def report_luns(length=4096):
    """REPORT LUNS (SPC-4 §6.33), SELECT REPORT 0."""
    return bytes([0xA0, 0, 0, 0, 0, 0]) + length.to_bytes(4, "big") + bytes(2)


def parse_report_luns(data):
    """The LUN numbers (flat or peripheral addressing, SAM-5 §4.6) a REPORT LUNS answer lists."""
    count = int.from_bytes(data[0:4], "big") // 8
    return [int.from_bytes(data[8 + 8 * i:10 + 8 * i], "big") & 0x3FFF for i in range(count) if 16 + 8 * i <= len(data)]


def inquiry(page=None, length=255):
    return bytes([0x12, 1 if page is not None else 0, page or 0]) + length.to_bytes(2, "big") + b"\0"


def read_capacity16(length=32):
    return bytes([0x9E, 0x10]) + bytes(8) + length.to_bytes(4, "big") + bytes(2)


def read10(lba, blocks):
    return bytes([0x28, 0]) + lba.to_bytes(4, "big") + b"\0" + blocks.to_bytes(2, "big") + b"\0"


def write10(lba, blocks, fua=False):
    return bytes([0x2A, 0x08 if fua else 0]) + lba.to_bytes(4, "big") + b"\0" + blocks.to_bytes(2, "big") + b"\0"


def read16(lba, blocks):
    return bytes([0x88, 0]) + lba.to_bytes(8, "big") + blocks.to_bytes(4, "big") + bytes(2)


def reserve6():
    """SPC-2 RESERVE(6) of the whole logical unit."""
    return bytes([0x16, 0, 0, 0, 0, 0])


def release6():
    return bytes([0x17, 0, 0, 0, 0, 0])


def pr_in(service_action, length=8192):
    """PERSISTENT RESERVE IN (SPC-4 §6.15)."""
    return bytes([0x5E, service_action & 0x1F]) + bytes(5) + length.to_bytes(2, "big") + b"\0"


def pr_out(service_action, pr_type=0, length=24, scope=0):
    """PERSISTENT RESERVE OUT (SPC-4 §6.16)."""
    return bytes([0x5F, service_action & 0x1F, (scope << 4) | (pr_type & 0x0F), 0, 0]) + length.to_bytes(4, "big") + b"\0"


def pr_out_params(key=0, sark=0, aptpl=False, all_tg_pt=False, spec_i_pt=False, transport_ids=()):
    """The PERSISTENT RESERVE OUT parameter list (SPC-4 §6.16.3): the basic 24 bytes,
    with SPEC_I_PT the TransportIDs after a 4-byte length."""
    flags = (0x08 if spec_i_pt else 0) | (0x04 if all_tg_pt else 0) | (0x01 if aptpl else 0)
    out = struct.pack(">QQ", key, sark) + bytes(4) + bytes([flags, 0, 0, 0])
    if spec_i_pt:
        ids = b"".join(transport_ids)
        out += len(ids).to_bytes(4, "big") + ids
    return out


def register_and_move_params(key, sark, relative_target_port, transport_id, unregister=False, aptpl=False):
    """The REGISTER AND MOVE parameter list (SPC-4 §6.16.4)."""
    flags = (0x02 if unregister else 0) | (0x01 if aptpl else 0)
    return (struct.pack(">QQ", key, sark) + bytes([0, flags]) + relative_target_port.to_bytes(2, "big")
            + len(transport_id).to_bytes(4, "big") + transport_id)


def transport_id(name, isid=None):
    """An iSCSI TransportID (SPC-4 §7.6.4.6): format 00b (initiator device: the name) or,
    with an ISID, format 01b (initiator port: `name,i,0x<ISID>`); NUL-terminated, padded to 4."""
    if isid is None:
        text, fmt = name.encode(), 0x00
    else:
        text, fmt = f"{name},i,0x{isid.hex()}".encode(), 0x40
    text += b"\0"
    text += b"\0" * ((4 - len(text) % 4) % 4)
    return bytes([fmt | ISCSI_PROTOCOL, 0]) + len(text).to_bytes(2, "big") + text


def parse_transport_id(data):
    """(format, name) of an iSCSI TransportID; name includes ",i,0x<ISID>" for format 01b."""
    if len(data) < 4:
        return None, ""
    n = int.from_bytes(data[2:4], "big")
    return (data[0] >> 6) & 3, data[4:4 + n].split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_read_keys(data):
    """(PRgeneration, [keys]) of READ KEYS parameter data (SPC-4 §6.15.2)."""
    if len(data) < 8:
        return None, []
    generation, length = struct.unpack(">II", data[:8])
    body = data[8:8 + length]
    return generation, [struct.unpack(">Q", body[i:i + 8])[0] for i in range(0, len(body) - 7, 8)]


def parse_read_reservation(data):
    """(PRgeneration, None or (key, scope, type)) of READ RESERVATION parameter data (SPC-4 §6.15.3)."""
    if len(data) < 8:
        return None, None
    generation, length = struct.unpack(">II", data[:8])
    if length < 16 or len(data) < 24:
        return generation, None
    return generation, (struct.unpack(">Q", data[8:16])[0], data[21] >> 4, data[21] & 0x0F)


def parse_full_status(data):
    """(PRgeneration, [descriptor dicts]) of READ FULL STATUS parameter data (SPC-4 §6.15.5)."""
    if len(data) < 8:
        return None, []
    generation, length = struct.unpack(">II", data[:8])
    body = data[8:8 + length]
    out, i = [], 0
    while i + 24 <= len(body):
        key = struct.unpack(">Q", body[i:i + 8])[0]
        flags, scope_type = body[i + 12], body[i + 13]
        rtpi = int.from_bytes(body[i + 18:i + 20], "big")
        n = int.from_bytes(body[i + 20:i + 24], "big")
        fmt, name = parse_transport_id(body[i + 24:i + 24 + n])
        out.append({"key": key, "all_tg_pt": bool(flags & 0x02), "holder": bool(flags & 0x01),
                    "scope": scope_type >> 4, "type": scope_type & 0x0F, "relative_target_port": rtpi,
                    "format": fmt, "transport_id": name})
        i += 24 + n
    return generation, out
