#!/usr/bin/env python3
"""A minimal iSCSI initiator for PERSISTENT RESERVE IN/OUT (the APTPL check).

Usage:
  pr_client.py HOST:PORT TARGET register KEY [--aptpl] [--initiator IQN]
  pr_client.py HOST:PORT TARGET reserve KEY TYPE [--initiator IQN]
  pr_client.py HOST:PORT TARGET read-keys            -> "generation=G keys=K1,K2"
  pr_client.py HOST:PORT TARGET read-reservation     -> "generation=G key=K type=T" or "none"
Exits 0 on GOOD; prints "status=0xNN" and exits 1 otherwise.
"""
import argparse
import os
import socket
import struct
import sys

OP_SCSI_CMD, OP_LOGIN, OP_LOGIN_RSP, OP_SCSI_RSP, OP_DATA_IN = 0x01, 0x03, 0x23, 0x21, 0x25


def pad4(n):
    return (4 - n % 4) % 4


def text(pairs):
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)


class Session:
    def __init__(self, host, port, initiator, target, isid):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.cmdsn, self.expstatsn, self.itt = 1, 0, 1
        self.sense = b""  # sense data of the last SCSI Response, if any
        self.login(initiator, target, isid)

    def recv_exact(self, n):
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("target closed the connection")
            out += chunk
        return out

    def recv_pdu(self):
        h = self.recv_exact(48)
        dlen = int.from_bytes(h[5:8], "big")
        body = self.recv_exact(h[4] * 4 + dlen + pad4(dlen))
        return h, body[h[4] * 4:h[4] * 4 + dlen]

    def pdu(self, opcode, flags, data, rest, immediate=False, lun=0):
        b = bytearray(48)
        b[0] = opcode | (0x40 if immediate else 0)
        b[1] = flags
        b[5:8] = len(data).to_bytes(3, "big")
        b[8:16] = lun.to_bytes(8, "big")
        b[16:20] = self.itt.to_bytes(4, "big")
        b[20:20 + len(rest)] = rest
        return bytes(b) + data + b"\0" * pad4(len(data))

    def login(self, initiator, target, isid):
        keys = [("InitiatorName", initiator), ("TargetName", target), ("SessionType", "Normal"),
                ("AuthMethod", "None")]
        csg, nsg = 0, 1
        for _ in range(6):
            rest = b"\0" * 4 + self.cmdsn.to_bytes(4, "big") + self.expstatsn.to_bytes(4, "big")
            raw = bytearray(self.pdu(OP_LOGIN, 0x80 | (csg << 2) | nsg, text(keys), rest, immediate=True))
            raw[8:14] = isid
            self.sock.sendall(bytes(raw))
            h, _ = self.recv_pdu()
            if h[0] & 0x3F != OP_LOGIN_RSP or h[36] != 0:
                raise RuntimeError(f"login failed: class {h[36]:#x} detail {h[37]:#x}")
            self.expstatsn = int.from_bytes(h[24:28], "big") + 1
            if h[1] & 0x80 and h[1] & 0x03 == 3:
                return
            if h[1] & 0x80:
                csg, nsg = h[1] & 0x03, 3
                keys = [("HeaderDigest", "None"), ("DataDigest", "None"), ("ImmediateData", "Yes"),
                        ("InitialR2T", "No"), ("MaxRecvDataSegmentLength", "262144"),
                        ("FirstBurstLength", "65536"), ("MaxBurstLength", "262144"), ("ErrorRecoveryLevel", "0")]
            else:
                keys = []
        raise RuntimeError("login did not finish")

    def command(self, cdb, data_out=b"", read_length=0):
        """Runs one command; returns (status, data-in); its sense data, if any, is in self.sense."""
        self.itt += 1
        self.sense = b""
        flags = 0x80 | (0x40 if read_length else 0) | (0x20 if data_out else 0) | 1
        edtl = read_length or len(data_out)
        rest = edtl.to_bytes(4, "big") + self.cmdsn.to_bytes(4, "big") + self.expstatsn.to_bytes(4, "big") \
            + cdb.ljust(16, b"\0")
        self.sock.sendall(self.pdu(OP_SCSI_CMD, flags, data_out, rest))
        self.cmdsn += 1
        data = b""
        while True:
            h, body = self.recv_pdu()
            op = h[0] & 0x3F
            if op == OP_DATA_IN:
                data += body
                if h[1] & 0x01:  # S bit: status in the last Data-In
                    self.expstatsn = int.from_bytes(h[24:28], "big") + 1
                    return h[3], data
            elif op == OP_SCSI_RSP:
                self.expstatsn = int.from_bytes(h[24:28], "big") + 1
                # RFC 7143 §11.4.7: SenseLength (2 bytes), then the sense data.
                self.sense = body[2:2 + int.from_bytes(body[0:2], "big")] if len(body) >= 2 else b""
                return h[3], data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("portal")
    ap.add_argument("target")
    ap.add_argument("action", choices=["register", "reserve", "read-keys", "read-reservation"])
    ap.add_argument("args", nargs="*")
    ap.add_argument("--aptpl", action="store_true")
    ap.add_argument("--initiator", default="iqn.2026-11.dev.tessera:pr-client")
    ap.add_argument("--lun", type=int, default=0)
    a = ap.parse_args()
    host, port = a.portal.rsplit(":", 1)
    s = Session(host, int(port), a.initiator, a.target, b"\x80\x00\x00\x00\x00\x01")
    # Clear the power-on unit attention.
    for _ in range(3):
        if s.command(b"\x00" * 6)[0] == 0:
            break
    if a.action in ("register", "reserve"):
        key = int(a.args[0], 0)
        if a.action == "register":
            params = struct.pack(">QQ", 0, key) + bytes([0, 0, 0, 0, 0x01 if a.aptpl else 0, 0, 0, 0])
            cdb = bytes([0x5F, 0x06, 0, 0, 0, 0, 0, 0, 24, 0])  # REGISTER AND IGNORE EXISTING KEY
        else:
            params = struct.pack(">QQ", key, 0) + bytes(8)
            cdb = bytes([0x5F, 0x01, int(a.args[1], 0) & 0x0F, 0, 0, 0, 0, 0, 24, 0])
        status, _ = s.command(cdb, data_out=params)
        if status != 0:
            print(f"status={status:#04x}")
            return 1
        return 0
    sa = 0 if a.action == "read-keys" else 1
    status, data = s.command(bytes([0x5E, sa, 0, 0, 0, 0, 0, 0x10, 0x00, 0]), read_length=4096)
    if status != 0:
        print(f"status={status:#04x}")
        return 1
    generation, length = struct.unpack(">II", data[:8])
    if sa == 0:
        keys = [struct.unpack(">Q", data[8 + i:16 + i])[0] for i in range(0, length, 8)]
        print(f"generation={generation} keys={','.join(hex(k) for k in keys)}")
    elif length == 0:
        print("none")
    else:
        print(f"generation={generation} key={hex(struct.unpack('>Q', data[8:16])[0])} type={data[21] & 0x0F}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
