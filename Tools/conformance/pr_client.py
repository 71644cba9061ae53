#!/usr/bin/env python3
"""PERSISTENT RESERVE IN/OUT from the command line (the APTPL checks), over Tools/lib/iscsi_client.py.

Usage:
  pr_client.py HOST:PORT TARGET register KEY [--aptpl] [--initiator IQN]
  pr_client.py HOST:PORT TARGET reserve KEY TYPE [--initiator IQN]
  pr_client.py HOST:PORT TARGET read-keys            -> "generation=G keys=K1,K2"
  pr_client.py HOST:PORT TARGET read-reservation     -> "generation=G key=K type=T" or "none"
Exits 0 on GOOD; prints "status=0xNN" and exits 1 otherwise.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_client  # noqa: E402
import scsi_cmds as scsi  # noqa: E402


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
    s = iscsi_client.Session(host, int(port), a.initiator, a.target, b"\x80\x00\x00\x00\x00\x01", lun=a.lun)
    try:
        for _ in range(3):  # the power-on unit attention
            if s.command(scsi.tur()).good:
                break
        if a.action in ("register", "reserve"):
            key = int(a.args[0], 0)
            if a.action == "register":
                cdb, params = scsi.pr_out(scsi.PROUT_REGISTER_AND_IGNORE), scsi.pr_out_params(0, key, aptpl=a.aptpl)
            else:
                cdb, params = scsi.pr_out(scsi.PROUT_RESERVE, int(a.args[1], 0)), scsi.pr_out_params(key)
            r = s.command(cdb, data_out=params)
            if not r.good:
                print(f"status={r.status if r.status is not None else 0xff:#04x}")
                return 1
            return 0
        sa = scsi.PRIN_READ_KEYS if a.action == "read-keys" else scsi.PRIN_READ_RESERVATION
        r = s.command(scsi.pr_in(sa, 4096), read_length=4096)
        if not r.good:
            print(f"status={r.status if r.status is not None else 0xff:#04x}")
            return 1
        if sa == scsi.PRIN_READ_KEYS:
            generation, keys = scsi.parse_read_keys(r.data)
            print(f"generation={generation} keys={','.join(hex(k) for k in keys)}")
        else:
            generation, held = scsi.parse_read_reservation(r.data)
            print("none" if held is None else f"generation={generation} key={hex(held[0])} type={held[2]}")
        return 0
    finally:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
