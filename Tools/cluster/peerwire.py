#!/usr/bin/env python3
"""The node-to-node ("wire") protocol of tesserad, as a test client sees it.

Frames are big-endian:

    frame := UInt32 L (bytes after this field) | UInt8 type | UInt64 requestID | body    (L = 9 + len(body))

    type 1 hello     "TSRW" | UInt16 minVersion | UInt16 maxVersion | UInt64 nodeID   (requestID 0)
         2 helloAck  UInt16 version | UInt64 nodeID
         3 request   UInt8 kind | kind fields
         4 reply     UInt8 status | status fields
         5 error     UInt8 code | UInt16 n | n bytes UTF-8   (the sender closes after it)

    request kinds 1 read, 2 write, 3 replicate, 4 unmap, 5 replicateUnmap, 6 compareAndWrite,
                  7 allocation, 8 flush, 9 logicalUnitReset
      io fields    UInt64 lun | UInt32 subUnitIndex | UInt64 epoch | UInt64 lba | UInt32 blockCount
      write fields io fields | UInt8 flags (bit 0 FUA) | UInt32 dataLength | data
      flush, logicalUnitReset   UInt64 lun
    reply status  0 done | 1 data: UInt32 n, bytes | 2 miscompare: UInt32 offset
                  | 3 extents: UInt32 count, count x (UInt64 lba, UInt64 blockCount, UInt8 mapped)
                  | 4 failure: UInt8 code | UInt8 hasEpoch | UInt64 epoch | UInt16 n | UTF-8 detail

A LUN's 64-bit id (lun_id) is the same FNV-1a as NodeRuntime.identity in
Sources/TesseraNode/NodeRuntime.swift.

Only a test tool: it builds frames (valid or deliberately not) and parses
whatever comes back, with every wait bounded by the socket timeout.
"""
import os
import socket
import struct
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import cluster_secret  # noqa: E402

HELLO, HELLO_ACK, REQUEST, REPLY, ERROR = 1, 2, 3, 4, 5
TYPE_NAMES = {HELLO: "hello", HELLO_ACK: "helloAck", REQUEST: "request", REPLY: "reply", ERROR: "error"}

READ, WRITE, REPLICATE, UNMAP, REPLICATE_UNMAP, COMPARE_AND_WRITE, ALLOCATION, FLUSH, LOGICAL_UNIT_RESET = range(1, 10)

DONE, DATA, MISCOMPARE, EXTENTS, FAILURE = range(5)
STATUS_NAMES = {DONE: "done", DATA: "data", MISCOMPARE: "miscompare", EXTENTS: "extents", FAILURE: "failure"}

FAILURE_NAMES = {1: "stale epoch", 2: "not a replica", 3: "unknown sub-unit", 4: "I/O error",
                 5: "out of range", 6: "no space", 7: "unavailable", 8: "bad request", 9: "read-only"}
STALE_EPOCH = 1

MAGIC = b"TSRW"


def lun_id(target_name, lun):
    """FNV-1a 64 over the lowercased target name's UTF-8 and [0, lun >> 8, lun & 0xff]."""
    h = 0xCBF29CE484222325
    for byte in target_name.lower().encode("utf-8") + bytes([0, (lun >> 8) & 0xFF, lun & 0xFF]):
        h ^= byte
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


# --- frame builders --------------------------------------------------------

def frame(ftype, request_id, body=b"", length=None):
    """One frame; `length` overrides the length field (for hostile frames)."""
    n = 9 + len(body) if length is None else length
    return struct.pack(">IBQ", n, ftype, request_id) + body


def hello(node_id=99, min_version=1, max_version=1):
    return frame(HELLO, 0, MAGIC + struct.pack(">HHQ", min_version, max_version, node_id))


def io_fields(lun, sub_unit, epoch, lba, block_count):
    return struct.pack(">QIQQI", lun, sub_unit, epoch, lba, block_count)


def request(request_id, kind, fields=b""):
    return frame(REQUEST, request_id, bytes([kind]) + fields)


def read(request_id, lun, sub_unit, epoch, lba, block_count):
    return request(request_id, READ, io_fields(lun, sub_unit, epoch, lba, block_count))


def write(request_id, lun, sub_unit, epoch, lba, block_count, data, fua=False, kind=WRITE):
    return request(request_id, kind, io_fields(lun, sub_unit, epoch, lba, block_count)
                   + struct.pack(">BI", 1 if fua else 0, len(data)) + data)


def flush(request_id, lun):
    return request(request_id, FLUSH, struct.pack(">Q", lun))


# --- parsing ---------------------------------------------------------------

class Closed(Exception):
    """The peer closed the connection (cleanly or by reset)."""


def parse_reply(body):
    """A reply body -> dict with 'status' and the status's fields."""
    status = body[0]
    out = {"status": status, "status_name": STATUS_NAMES.get(status, f"status {status}")}
    rest = body[1:]
    if status == DATA:
        (n,) = struct.unpack_from(">I", rest)
        out["data"] = rest[4:4 + n]
    elif status == MISCOMPARE:
        (out["offset"],) = struct.unpack_from(">I", rest)
    elif status == EXTENTS:
        (count,) = struct.unpack_from(">I", rest)
        out["extents"] = [struct.unpack_from(">QQB", rest, 4 + 17 * i) for i in range(count)]
    elif status == FAILURE:
        code, has_epoch, epoch, n = struct.unpack_from(">BBQH", rest)
        out.update(code=code, code_name=FAILURE_NAMES.get(code, f"code {code}"),
                   epoch=epoch if has_epoch else None,
                   detail=rest[12:12 + n].decode("utf-8", "replace"))
    return out


def describe(ftype, request_id, body):
    """One line for a log."""
    name = TYPE_NAMES.get(ftype, f"type {ftype}")
    if ftype == HELLO_ACK and len(body) >= 10:
        version, node = struct.unpack_from(">HQ", body)
        return f"helloAck version {version} node {node}"
    if ftype == ERROR and len(body) >= 3:
        code, n = struct.unpack_from(">BH", body)
        return f"error code {code}: {body[3:3 + n].decode('utf-8', 'replace')!r}"
    if ftype == REPLY and body:
        try:
            r = parse_reply(body)
        except struct.error:
            return f"reply (truncated body {body.hex()})"
        if r["status"] == FAILURE:
            return (f"reply #{request_id} failure code {r['code']} ({r['code_name']}), "
                    f"epoch {r['epoch']}, {r['detail']!r}")
        if r["status"] == DATA:
            return f"reply #{request_id} data {len(r['data'])} bytes"
        return f"reply #{request_id} {r['status_name']}"
    return f"{name} #{request_id} ({len(body)} body bytes)"


class Connection:
    """A TCP connection to a node's wire port; every wait bounded by `timeout`."""

    MAX_ACCEPTED_FRAME = 64 << 20  # what this client is willing to read back

    def __init__(self, host, port, timeout=5.0, secret=None):
        """With `secret` (the cluster secret's key bytes), runs the cluster
        handshake first (purpose PEER) and raises Closed unless accepted."""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        if secret is not None:
            outcome = cluster_secret.handshake(self.sock, secret, b"PEER")
            if outcome != "accepted":
                self.close()
                raise Closed(f"cluster handshake: {outcome}")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, raw):
        try:
            self.sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise Closed(str(e))

    def shutdown_write(self):
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def _exact(self, n):
        out = bytearray()
        while len(out) < n:
            try:
                chunk = self.sock.recv(n - len(out))
            except ConnectionResetError as e:
                raise Closed(str(e))
            if not chunk:
                raise Closed("closed" if not out else f"closed inside a frame after {len(out)} bytes")
            out += chunk
        return bytes(out)

    def recv_frame(self):
        """(type, requestID, body); raises Closed, socket.timeout, or ValueError for a bad frame."""
        (n,) = struct.unpack(">I", self._exact(4))
        if n < 9 or n > self.MAX_ACCEPTED_FRAME:
            raise ValueError(f"peer sent a frame length of {n}")
        raw = self._exact(n)
        return raw[0], struct.unpack_from(">Q", raw, 1)[0], raw[9:]

    def hello(self, node_id=99):
        """Sends hello, returns (version, nodeID) from the helloAck; raises otherwise."""
        self.send(hello(node_id))
        ftype, _, body = self.recv_frame()
        if ftype != HELLO_ACK:
            raise ValueError(f"expected helloAck, got {describe(ftype, 0, body)}")
        return struct.unpack_from(">HQ", body)

    def call(self, raw):
        """Sends one request frame; returns the first frame back (type, requestID, body)."""
        self.send(raw)
        return self.recv_frame()

    def outcome(self):
        """What the peer does next, as text and a kind: 'frame' (type, id, body), 'closed', 'timeout'."""
        try:
            ftype, rid, body = self.recv_frame()
            return "frame", (ftype, rid, body), describe(ftype, rid, body)
        except Closed as e:
            return "closed", None, f"connection closed ({e})"
        except socket.timeout:
            return "timeout", None, "no answer and not closed within the timeout"
        except ValueError as e:
            return "badframe", None, str(e)


if __name__ == "__main__":
    # Self-check of the id function and a hello round trip against HOST:PORT when given.
    import sys
    print(f"{lun_id('iqn.2026-11.dev.tessera:cluster', 0):#018x}")
    if len(sys.argv) == 2:
        host, port = sys.argv[1].rsplit(":", 1)
        with Connection(host, int(port)) as c:
            print("helloAck version %d node %d" % c.hello())
