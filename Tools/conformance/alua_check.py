#!/usr/bin/env python3
"""Implicit ALUA through every portal of one tesserad (SPC-4 §5.16, §6.37).

The installed libiscsi (1.19) has no REPORT TARGET PORT GROUPS tests; this runs
the checks its later Rtpg.Simple and Rtpg.AllocLength tests make, and a few of
our own, with pr_client.py's initiator:
  - standard INQUIRY: TPGS 01b (implicit only);
  - RTPG with a 4-byte allocation, then the full size: every group in a valid
    state, at least one active, every port of every group returned;
  - RTPG cut inside and at the end of each descriptor parses to the groups before;
  - the extended header: FORMAT TYPE 001b, IMPLICIT TRANSITION TIME, RETURN DATA LENGTH n-3;
  - the same RTPG data through every portal, and one group per portal whose
    relative target port and group id are the portal's tag (as VPD 0x83 says);
  - TEST UNIT READY GOOD; SET TARGET PORT GROUPS is INVALID COMMAND OPERATION CODE.
Usage: alua_check.py TARGET HOST:PORT:TAG [HOST:PORT:TAG ...]
Prints "PASS/FAIL what" lines; exits 1 on any failure.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_client  # noqa: E402


class Session(iscsi_client.Session):
    """The shared initiator, answering (status, data-in) and keeping the last sense data."""

    def command(self, cdb, data_out=b"", read_length=0, timeout=None):
        result = super().command(bytes(cdb), data_out, read_length, timeout)
        self.sense = result.sense
        return result.status, result.data

VALID_STATES = {0x0, 0x1, 0x2, 0x3, 0x4, 0xE, 0xF}
failures = 0


def check(what, ok, detail=""):
    global failures
    print(f"{'PASS' if ok else 'FAIL'} {what}" + (f" ({detail})" if detail else ""))
    failures += 0 if ok else 1


def rtpg_cdb(length, extended=False):
    return bytes([0xA3, (0x20 if extended else 0) | 0x0A, 0, 0, 0, 0]) + length.to_bytes(4, "big") + bytes(2)


def groups_of(data, first=4):
    """(groups, port counts) of RTPG data cut anywhere: a group whose 8-byte
    descriptor is cut is left out; its ports as far as they arrived."""
    groups, i = [], first
    while len(data) - i >= 8:
        count = data[i + 7]
        ports = []
        j = i + 8
        while len(ports) < count and j + 4 <= len(data):
            ports.append(int.from_bytes(data[j + 2:j + 4], "big"))
            j += 4
        groups.append({"state": data[i] & 0x0F, "pref": data[i] >> 7, "group": int.from_bytes(data[i + 2:i + 4], "big"),
                       "count": count, "ports": ports})
        i = j
    return groups


def session(host, port, target, n):
    s = Session(host, int(port), f"iqn.2026-11.dev.tessera:alua-check-{n}", target, bytes([0x80, 0, 0, 0, 0x41, n]))
    for _ in range(5):  # power-on / reset unit attentions
        if s.command(b"\x00" * 6)[0] == 0:
            break
    return s


def main():
    target, portals = sys.argv[1], [p.rsplit(":", 2) for p in sys.argv[2:]]
    answers = {}
    for n, (host, port, tag) in enumerate(portals, start=1):
        where = f"{host}:{port}"
        s = session(host, port, target, n)
        try:
            status, inq = s.command(bytes([0x12, 0, 0, 0, 96, 0]), read_length=96)
            check(f"{where}: standard INQUIRY TPGS 01b", status == 0 and (inq[5] >> 4) & 3 == 1, inq[5:6].hex())
            status, head = s.command(rtpg_cdb(4), read_length=4)
            check(f"{where}: RTPG with a 4-byte allocation length", status == 0 and len(head) == 4, f"status {status:#x}")
            full_size = int.from_bytes(head, "big") + 4
            status, full = s.command(rtpg_cdb(full_size), read_length=full_size)
            groups = groups_of(full)
            check(f"{where}: RTPG full size {full_size}", status == 0 and len(full) == full_size
                  and int.from_bytes(full[0:4], "big") + 4 == full_size, full.hex())
            check(f"{where}: every group in a valid state, all its ports returned, one active",
                  groups and all(g["state"] in VALID_STATES and len(g["ports"]) == g["count"] for g in groups)
                  and any(g["state"] in (0, 1) for g in groups), str(groups))
            size, cut_ok = 4, True
            for k, g in enumerate(groups):
                for extra, want in ((4, k), (8, k + 1)):
                    status, part = s.command(rtpg_cdb(size + extra), read_length=size + extra)
                    got = groups_of(part)
                    cut_ok &= status == 0 and len(got) == want and all(
                        got[i]["ports"] == groups[i]["ports"] for i in range(k))
                    if want == k + 1:  # the descriptor arrived, none of its ports
                        cut_ok &= len(got) == want and got[k]["count"] == g["count"] and got[k]["ports"] == []
                size += 8 + 4 * g["count"]
            check(f"{where}: RTPG cut inside and after each descriptor", cut_ok)
            status, ext = s.command(rtpg_cdb(1024, extended=True), read_length=1024)
            check(f"{where}: extended header (FORMAT TYPE 001b, IMPLICIT TRANSITION TIME, RETURN DATA LENGTH n-3)",
                  status == 0 and ext[4] == 0x10 and ext[5] > 0 and int.from_bytes(ext[0:4], "big") == len(ext) - 4
                  and groups_of(ext, first=8) == groups, ext[:8].hex())
            answers[where] = full
            mine = [g for g in groups if g["group"] == int(tag)]
            check(f"{where}: group {tag} is listed with relative target port {tag}",
                  len(mine) == 1 and mine[0]["ports"] == [int(tag)], str(mine))
            status, vpd = s.command(bytes([0x12, 1, 0x83, 0, 255, 0]), read_length=255)
            designators, i = {}, 4
            while i + 4 <= len(vpd):
                if (vpd[i + 1] >> 4) & 3 == 1:
                    designators[vpd[i + 1] & 0x0F] = int.from_bytes(vpd[i + 6:i + 8], "big")
                i += 4 + vpd[i + 3]
            check(f"{where}: VPD 0x83 relative target port and target port group {tag}",
                  designators.get(4) == int(tag) and designators.get(5) == int(tag), str(designators))
            status, _ = s.command(b"\x00" * 6)
            check(f"{where}: TEST UNIT READY GOOD (active/optimized)", status == 0, f"status {status:#x}")
            status, _ = s.command(bytes([0xA4, 0x0A, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0]), data_out=bytes(4))
            sense = s.sense[12:14].hex() if len(s.sense) >= 14 else s.sense.hex()
            check(f"{where}: SET TARGET PORT GROUPS is INVALID COMMAND OPERATION CODE",
                  status == 2 and len(s.sense) >= 14 and s.sense[2] & 0x0F == 5 and s.sense[12] == 0x20, sense)
        finally:
            s.sock.close()
    values = list(answers.values())
    check("RTPG identical through every portal", len(values) == len(portals) and all(v == values[0] for v in values))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
