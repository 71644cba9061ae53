#!/usr/bin/env python3
"""A minimal iSCSI initiator (RFC 7143) for the test stages, standard library only.

One TCP connection per session, ErrorRecoveryLevel 0, no digests, synchronous:
a thread owns a session, and every wait is bounded (a `Timeout` past it).

    s = Session("127.0.0.1", 3261, "iqn.2026-11.dev.tessera:a", target, isid=bytes.fromhex("80000000a001"))
    r = s.command(scsi.read10(0, 8), read_length=4096)       # -> Result(status, data, sense...)
    t = s.start(scsi.write10(8, 8), data_out=b"x" * 4096, hold=True)   # Data-Out held back
    s.wait_r2t(t); s.release(t); r = s.wait(t)
    s.tmf(TMF_LOGICAL_UNIT_RESET)                               # -> response code (0 = complete)
    s.logout()

What it does on the wire:
- login: security phase (AuthMethod=None) then operational negotiation; the
  target's answers become `negotiated`, and Data-Out follows them: immediate
  data when ImmediateData=Yes (up to FirstBurstLength and the target's
  MaxRecvDataSegmentLength), unsolicited Data-Out when InitialR2T=No, the rest
  as each R2T asks, every PDU at most the target's MaxRecvDataSegmentLength;
- Data-In gathered by buffer offset, status from the S bit or the SCSI Response,
  sense data (fixed or descriptor format) decoded to key/ASC/ASCQ;
- NOP-In pings answered at once (counted in `pings_answered`); Async Messages
  and Rejects recorded (`async_events`, `rejects`); the CmdSN window honoured.
"""
import socket
import time

# RFC 7143 §11: opcodes (initiator, then target)
OP_NOP_OUT, OP_SCSI_CMD, OP_TMF_REQ, OP_LOGIN, OP_TEXT, OP_DATA_OUT, OP_LOGOUT = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
OP_NOP_IN, OP_SCSI_RSP, OP_TMF_RSP, OP_LOGIN_RSP, OP_TEXT_RSP, OP_DATA_IN, OP_LOGOUT_RSP = (
    0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26)
OP_R2T, OP_ASYNC, OP_REJECT = 0x31, 0x32, 0x3F
RESERVED_TAG = 0xFFFFFFFF

# RFC 7143 §11.5.1: task management function codes
TMF_ABORT_TASK, TMF_ABORT_TASK_SET, TMF_CLEAR_ACA, TMF_CLEAR_TASK_SET = 1, 2, 3, 4
TMF_LOGICAL_UNIT_RESET, TMF_TARGET_WARM_RESET, TMF_TARGET_COLD_RESET = 5, 6, 7
# RFC 7143 §11.6.1: task management response codes
TMF_RESPONSES = {0: "function complete", 1: "task does not exist", 2: "LUN does not exist",
                 3: "task still allegiant", 4: "task allegiance reassignment not supported",
                 5: "task management function not supported", 6: "function authorization failed",
                 255: "function rejected"}

# SAM-5 status codes
GOOD, CHECK_CONDITION, BUSY, RESERVATION_CONFLICT, TASK_SET_FULL, TASK_ABORTED = 0x00, 0x02, 0x08, 0x18, 0x28, 0x40
STATUS_NAMES = {GOOD: "GOOD", CHECK_CONDITION: "CHECK CONDITION", BUSY: "BUSY",
                RESERVATION_CONFLICT: "RESERVATION CONFLICT", TASK_SET_FULL: "TASK SET FULL",
                TASK_ABORTED: "TASK ABORTED"}
UNIT_ATTENTION = 0x06
# SPC-4 Annex D: the additional sense codes these stages meet
ASC_NAMES = {(0x29, 0x00): "POWER ON, RESET, OR BUS DEVICE RESET OCCURRED", (0x29, 0x01): "POWER ON OCCURRED",
             (0x29, 0x02): "SCSI BUS RESET OCCURRED", (0x29, 0x03): "BUS DEVICE RESET FUNCTION OCCURRED",
             (0x29, 0x07): "I_T NEXUS LOSS OCCURRED", (0x2A, 0x01): "MODE PARAMETERS CHANGED",
             (0x2A, 0x03): "RESERVATIONS PREEMPTED", (0x2A, 0x04): "RESERVATIONS RELEASED",
             (0x2A, 0x05): "REGISTRATIONS PREEMPTED", (0x2A, 0x06): "ASYMMETRIC ACCESS STATE CHANGED",
             (0x2A, 0x09): "CAPACITY DATA HAS CHANGED", (0x2F, 0x00): "COMMANDS CLEARED BY ANOTHER INITIATOR",
             (0x04, 0x0A): "ASYMMETRIC ACCESS STATE TRANSITION", (0x04, 0x0C): "TARGET PORT IN UNAVAILABLE STATE",
             (0x24, 0x00): "INVALID FIELD IN CDB", (0x26, 0x00): "INVALID FIELD IN PARAMETER LIST",
             (0x20, 0x00): "INVALID COMMAND OPERATION CODE", (0x21, 0x00): "LBA OUT OF RANGE",
             (0x55, 0x04): "INSUFFICIENT REGISTRATION RESOURCES"}

# RFC 7143 §13: what the initiator offers unless told otherwise
DEFAULT_OFFER = {"HeaderDigest": "None", "DataDigest": "None", "MaxConnections": "1", "InitialR2T": "No",
                 "ImmediateData": "Yes", "MaxRecvDataSegmentLength": "65536", "MaxBurstLength": "262144",
                 "FirstBurstLength": "65536", "DefaultTime2Wait": "0", "DefaultTime2Retain": "0",
                 "MaxOutstandingR2T": "1", "DataPDUInOrder": "Yes", "DataSequenceInOrder": "Yes",
                 "ErrorRecoveryLevel": "0"}
# RFC 7143 §13: the values in force when a key was not negotiated
RFC_DEFAULTS = {"InitialR2T": "Yes", "ImmediateData": "Yes", "MaxRecvDataSegmentLength": "8192",
                "MaxBurstLength": "262144", "FirstBurstLength": "65536", "MaxOutstandingR2T": "1"}


class ISCSIError(Exception):
    """The target broke the protocol, refused the login, or closed the connection."""


class Timeout(ISCSIError):
    """A bounded wait ran out."""


def pad4(n):
    return (4 - n % 4) % 4


def sn_lt(a, b):
    """RFC 1982 serial number arithmetic on 32 bits (RFC 7143 §4.2.2.1)."""
    return a != b and ((b - a) & 0xFFFFFFFF) < 0x80000000


def encode_text(pairs):
    return b"".join(f"{k}={v}".encode() + b"\0" for k, v in pairs)


def decode_text(data):
    out = {}
    for item in data.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            out[k.decode("utf-8", "replace")] = v.decode("utf-8", "replace")
    return out


def decode_sense(sense):
    """(key, asc, ascq) of fixed (70h/71h) or descriptor (72h/73h) sense data; None if too short."""
    if len(sense) < 2:
        return None
    code = sense[0] & 0x7F
    if code in (0x72, 0x73) and len(sense) >= 4:
        return sense[1] & 0x0F, sense[2], sense[3]
    if code in (0x70, 0x71) and len(sense) >= 14:
        return sense[2] & 0x0F, sense[12], sense[13]
    return None


class Result:
    """The outcome of one SCSI command."""

    def __init__(self, status=None, data=b"", sense=b"", response=0, residual=0, flags=0, reason=None):
        self.status = status        # SAM-5 status byte; None when no status came (aborted, rejected)
        self.data = data            # Data-In
        self.sense = sense          # sense data (the SCSI Response data segment without its length)
        self.response = response    # iSCSI response byte (0 = command completed at target)
        self.residual = residual
        self.flags = flags
        self.reason = reason        # why no status: "rejected ...", "connection closed", ...

    @property
    def sense_code(self):
        return decode_sense(self.sense)

    @property
    def key(self):
        return (self.sense_code or (None,))[0]

    @property
    def asc_ascq(self):
        code = self.sense_code
        return (code[1], code[2]) if code else None

    @property
    def good(self):
        return self.status == GOOD

    @property
    def conflict(self):
        return self.status == RESERVATION_CONFLICT

    def unit_attention(self, asc=None, ascq=None):
        """Whether this is CHECK CONDITION, UNIT ATTENTION (of this ASC and ASCQ when given)."""
        code = self.sense_code
        if self.status != CHECK_CONDITION or not code or code[0] != UNIT_ATTENTION:
            return False
        return (asc is None or code[1] == asc) and (ascq is None or code[2] == ascq)

    def __str__(self):
        if self.status is None:
            return f"no status ({self.reason or 'none'})"
        text = STATUS_NAMES.get(self.status, f"status {self.status:#04x}")
        if self.response:
            text = f"iSCSI response {self.response:#04x}, " + text
        code = self.sense_code
        if self.status == CHECK_CONDITION and code:
            name = ASC_NAMES.get((code[1], code[2]), "")
            text += f" {code[0]:02X}/{code[1]:02X}/{code[2]:02X}" + (f" ({name})" if name else "")
        return text

    __repr__ = __str__


class Task:
    """A SCSI command in flight on a session."""

    def __init__(self, itt, cdb, data_out, read_length, hold):
        self.itt = itt
        self.cdb = cdb
        self.data_out = data_out
        self.read_length = read_length
        self.held = hold
        self.r2ts = []          # (ttt, offset, length) received
        self.answered = 0       # how many of r2ts were answered
        self.data = bytearray(read_length)
        self.data_seen = 0
        self.result = None      # a Result once the task has ended
        self.cmdsn = None       # the CmdSN it was sent with

    @property
    def done(self):
        return self.result is not None


class Session:
    """One iSCSI session (one connection) to HOST:PORT, logged in to `target` as `initiator` with `isid`."""

    def __init__(self, host, port, initiator, target, isid=b"\x80\x00\x00\x00\x00\x01", offer=None,
                 timeout=10.0, lun=0, source=None):
        if len(isid) != 6:
            raise ValueError("an ISID is 6 bytes")
        self.host, self.port, self.initiator, self.target, self.isid = host, port, initiator, target, bytes(isid)
        self.timeout = timeout
        self.lun = lun
        self.cmdsn, self.expstatsn, self.maxcmdsn = 1, 0, 1
        self._itt = 0
        self.tsih = 0
        self.tasks = {}
        self.tmf_responses = {}
        self.nop_replies = {}
        self.logout_response = None
        self.pings_answered = 0
        self.async_events = []   # (AsyncEvent, AsyncVCode, Parameter1..3, sense bytes)
        self.rejects = []        # (reason, rejected BHS)
        self.target_keys = {}    # every key the target sent during login
        self.negotiated = dict(RFC_DEFAULTS)
        self.closed = False
        # source: the local address to connect from (another 127.x address is another host)
        self.sock = socket.create_connection((host, port), timeout=timeout,
                                             source_address=(source, 0) if source else None)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        offered = dict(DEFAULT_OFFER)
        offered.update(offer or {})
        self.offered = offered
        try:
            self._login(offered)
        except BaseException:
            self.close()
            raise

    # --- names ------------------------------------------------------------
    @property
    def port_name(self):
        """The initiator port name (SPC-4 §7.6.4.6, format 01b): `<name>,i,0x<ISID>`."""
        return f"{self.initiator},i,0x{self.isid.hex()}"

    @property
    def immediate_data(self):
        return self.negotiated.get("ImmediateData") == "Yes"

    @property
    def initial_r2t(self):
        return self.negotiated.get("InitialR2T") != "No"

    @property
    def first_burst(self):
        return int(self.negotiated["FirstBurstLength"])

    @property
    def max_burst(self):
        return int(self.negotiated["MaxBurstLength"])

    @property
    def target_mrdsl(self):
        """The target's MaxRecvDataSegmentLength: the bound on every Data-Out / immediate data segment."""
        return int(self.target_keys.get("MaxRecvDataSegmentLength", RFC_DEFAULTS["MaxRecvDataSegmentLength"]))

    # --- framing ----------------------------------------------------------
    def _next_itt(self):
        self._itt = (self._itt + 1) & 0xFFFFFFFF
        if self._itt == RESERVED_TAG:
            self._itt = 1
        return self._itt

    def _recv_exact(self, n, deadline):
        out = bytearray()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"{self.host}:{self.port}: nothing from the target in time")
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(out))
            except socket.timeout:
                raise Timeout(f"{self.host}:{self.port}: nothing from the target in time") from None
            except OSError as e:
                self.closed = True
                raise ISCSIError(f"{self.host}:{self.port}: {e}") from None
            if not chunk:
                self.closed = True
                raise ISCSIError(f"{self.host}:{self.port}: the target closed the connection")
            out += chunk
        return bytes(out)

    def _recv_pdu(self, deadline):
        h = self._recv_exact(48, deadline)
        ahs = h[4] * 4
        dlen = int.from_bytes(h[5:8], "big")
        # RFC 7143 §11.2.1.x: a data segment longer than the MaxRecvDataSegmentLength we declared
        # is the target's error; the header still says how much to read.
        rest = self._recv_exact(ahs + dlen + pad4(dlen), deadline) if ahs + dlen else b""
        return h, rest[ahs:ahs + dlen]

    def _send(self, bhs, data=b""):
        try:
            self.sock.sendall(bytes(bhs) + data + b"\0" * pad4(len(data)))
        except OSError as e:
            self.closed = True
            raise ISCSIError(f"{self.host}:{self.port}: send failed: {e}") from None

    def _bhs(self, opcode, flags, dlen, itt, immediate=False, lun=None):
        b = bytearray(48)
        b[0] = opcode | (0x40 if immediate else 0)
        b[1] = flags
        b[5:8] = dlen.to_bytes(3, "big")
        b[8:16] = self._lun_field(self.lun if lun is None else lun)
        b[16:20] = itt.to_bytes(4, "big")
        return b

    @staticmethod
    def _lun_field(lun):
        # SAM-5 §4.7.3: peripheral device addressing for LUNs below 256
        return bytes([0, lun & 0xFF]) + bytes(6) if lun < 256 else bytes([0x40 | (lun >> 8), lun & 0xFF]) + bytes(6)

    def _sns(self, b, statsn_advances=True):
        """Bytes 24..35 of a target PDU: StatSN, ExpCmdSN, MaxCmdSN."""
        statsn = int.from_bytes(b[24:28], "big")
        maxcmdsn = int.from_bytes(b[32:36], "big")
        if statsn_advances and not sn_lt(statsn + 1, self.expstatsn):
            self.expstatsn = (statsn + 1) & 0xFFFFFFFF
        if sn_lt(self.maxcmdsn, maxcmdsn):
            self.maxcmdsn = maxcmdsn

    # --- login ------------------------------------------------------------
    def _login(self, offered):
        deadline = time.monotonic() + self.timeout
        keys = [("InitiatorName", self.initiator), ("TargetName", self.target), ("SessionType", "Normal"),
                ("AuthMethod", "None")]
        csg, nsg, transit = 0, 1, True
        itt = self._next_itt()
        for _ in range(8):  # a bounded number of login PDUs
            b = self._bhs(OP_LOGIN, (0x80 if transit else 0) | (csg << 2) | (nsg if transit else 0),
                          0, itt, immediate=True, lun=0)
            data = encode_text(keys)
            b[5:8] = len(data).to_bytes(3, "big")
            b[8:14] = self.isid
            b[14:16] = self.tsih.to_bytes(2, "big")
            b[24:28] = self.cmdsn.to_bytes(4, "big")
            b[28:32] = self.expstatsn.to_bytes(4, "big")
            self._send(b, data)
            h, body = self._recv_pdu(deadline)
            if h[0] & 0x3F != OP_LOGIN_RSP:
                raise ISCSIError(f"login: got opcode {h[0] & 0x3F:#04x}")
            if h[36] != 0:
                raise ISCSIError(f"login refused: status class {h[36]:#04x} detail {h[37]:#04x}")
            self.expstatsn = (int.from_bytes(h[24:28], "big") + 1) & 0xFFFFFFFF
            self.maxcmdsn = int.from_bytes(h[32:36], "big")
            self.tsih = int.from_bytes(h[14:16], "big")
            answered = decode_text(body)
            self.target_keys.update(answered)
            for k, v in answered.items():
                if k in offered and v not in ("NotUnderstood", "Irrelevant", "Reject"):
                    self.negotiated[k] = v
            if h[1] & 0x40:  # C: the target continues its text; ask for the rest
                keys, transit = [], False
                continue
            if h[1] & 0x80 and (h[1] & 0x03) == 3:
                return
            if h[1] & 0x80:  # the target moved to the next stage
                csg, nsg, transit = h[1] & 0x03, 3, True
                keys = list(offered.items()) if csg == 1 else []
            else:
                keys, transit = [], True
        raise ISCSIError("login did not finish within 8 PDUs")

    # --- the receive side -------------------------------------------------
    def pump(self, deadline):
        """Reads and handles one PDU (raises Timeout at `deadline`)."""
        h, body = self._recv_pdu(deadline)
        op = h[0] & 0x3F
        itt = int.from_bytes(h[16:20], "big")
        if op == OP_DATA_IN:
            task = self.tasks.get(itt)
            offset = int.from_bytes(h[40:44], "big")
            if task is not None and not task.done:
                end = min(offset + len(body), task.read_length)
                if offset < end:
                    task.data[offset:end] = body[:end - offset]
                task.data_seen = max(task.data_seen, end)
            if h[1] & 0x01:  # S: status in this PDU
                self._sns(h)
                if task is not None and not task.done:
                    task.result = Result(h[3], bytes(task.data[:task.data_seen]), b"", 0,
                                         int.from_bytes(h[44:48], "big"), h[1])
            else:
                self._sns(h, statsn_advances=False)
        elif op == OP_SCSI_RSP:
            self._sns(h)
            task = self.tasks.get(itt)
            sense = b""
            if len(body) >= 2:
                n = int.from_bytes(body[:2], "big")
                sense = body[2:2 + n]
            if task is not None and not task.done:
                task.result = Result(h[3], bytes(task.data[:task.data_seen]), sense, h[2],
                                     int.from_bytes(h[44:48], "big"), h[1])
        elif op == OP_R2T:
            self._sns(h, statsn_advances=False)
            task = self.tasks.get(itt)
            if task is not None and not task.done:
                task.r2ts.append((int.from_bytes(h[20:24], "big"), int.from_bytes(h[40:44], "big"),
                                  int.from_bytes(h[44:48], "big")))
                if not task.held:
                    self._answer_r2ts(task)
        elif op == OP_NOP_IN:
            ttt = int.from_bytes(h[20:24], "big")
            self._sns(h, statsn_advances=itt != RESERVED_TAG)
            if itt != RESERVED_TAG:
                self.nop_replies[itt] = body
            if ttt != RESERVED_TAG:
                # RFC 7143 §11.18: a ping the target wants answered: echo its TTT, LUN and data
                b = self._bhs(OP_NOP_OUT, 0x80, len(body), RESERVED_TAG, immediate=True)
                b[8:16] = h[8:16]
                b[20:24] = h[20:24]
                b[24:28] = self.cmdsn.to_bytes(4, "big")
                b[28:32] = self.expstatsn.to_bytes(4, "big")
                self._send(b, body)
                self.pings_answered += 1
        elif op == OP_TMF_RSP:
            self._sns(h)
            self.tmf_responses[itt] = h[2]
        elif op == OP_LOGOUT_RSP:
            self._sns(h)
            self.logout_response = (h[2], int.from_bytes(h[40:42], "big"), int.from_bytes(h[42:44], "big"))
        elif op == OP_ASYNC:
            self._sns(h)
            sense = body[2:2 + int.from_bytes(body[:2], "big")] if len(body) >= 2 else b""
            self.async_events.append((h[36], h[37], int.from_bytes(h[38:40], "big"),
                                      int.from_bytes(h[40:42], "big"), int.from_bytes(h[42:44], "big"), sense))
        elif op == OP_REJECT:
            self._sns(h)
            self.rejects.append((h[2], body[:48]))
            if len(body) >= 20:
                task = self.tasks.get(int.from_bytes(body[16:20], "big"))
                if task is not None and not task.done and body[0] & 0x3F == OP_SCSI_CMD:
                    task.result = Result(None, reason=f"rejected, reason {h[2]:#04x}")
        else:
            self._sns(h, statsn_advances=False)
        return op

    def idle(self, seconds):
        """Services the connection (answers NOP-In pings) for `seconds`; returns the pings answered."""
        before = self.pings_answered
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                self.pump(deadline)
            except Timeout:
                break
        return self.pings_answered - before

    # --- commands ---------------------------------------------------------
    def _wait_window(self, deadline):
        # RFC 7143 §4.2.2.1: a non-immediate command needs CmdSN <= MaxCmdSN
        while sn_lt(self.maxcmdsn, self.cmdsn):
            self.pump(deadline)

    def start(self, cdb, data_out=b"", read_length=0, hold=False, timeout=None):
        """Sends a SCSI command; returns its Task. `hold`: no immediate or unsolicited data, and
        R2Ts wait for `release` (the task stays outstanding at the target)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._wait_window(deadline)
        itt = self._next_itt()
        task = Task(itt, cdb, bytes(data_out), read_length, hold)
        self.tasks[itt] = task
        edtl = len(data_out) if data_out else read_length
        immediate = b""
        unsolicited = 0
        if data_out and not hold:
            if self.immediate_data:
                immediate = task.data_out[:min(self.first_burst, self.target_mrdsl)]
            if not self.initial_r2t:
                unsolicited = min(len(data_out), self.first_burst) - len(immediate)
        # F: no unsolicited Data-Out follows this PDU (RFC 7143 §11.3.1)
        flags = (0x80 if unsolicited <= 0 else 0) | (0x40 if read_length else 0) | (0x20 if data_out else 0) | 1
        b = self._bhs(OP_SCSI_CMD, flags, len(immediate), itt)
        b[20:24] = edtl.to_bytes(4, "big")
        b[24:28] = self.cmdsn.to_bytes(4, "big")
        b[28:32] = self.expstatsn.to_bytes(4, "big")
        b[32:48] = cdb.ljust(16, b"\0")[:16]
        task.cmdsn = self.cmdsn
        self.cmdsn = (self.cmdsn + 1) & 0xFFFFFFFF
        self._send(b, immediate)
        if unsolicited > 0:
            self._send_data(task, RESERVED_TAG, len(immediate), unsolicited)
        return task

    def _send_data(self, task, ttt, offset, length):
        """One Data-Out sequence (RFC 7143 §11.7): DataSN from 0, segments <= the target's MRDSL, F on the last."""
        end = min(offset + length, len(task.data_out))
        datasn = 0
        while offset < end:
            n = min(self.target_mrdsl, end - offset)
            b = self._bhs(OP_DATA_OUT, 0x80 if offset + n >= end else 0, n, task.itt)
            b[20:24] = ttt.to_bytes(4, "big")
            b[28:32] = self.expstatsn.to_bytes(4, "big")
            b[36:40] = datasn.to_bytes(4, "big")
            b[40:44] = offset.to_bytes(4, "big")
            self._send(b, task.data_out[offset:offset + n])
            offset += n
            datasn += 1

    def _answer_r2ts(self, task):
        while task.answered < len(task.r2ts):
            ttt, offset, length = task.r2ts[task.answered]
            task.answered += 1
            self._send_data(task, ttt, offset, length)

    def wait_r2t(self, task, timeout=None):
        """Pumps until the target has asked for some of `task`'s data (or the task ended); True if an R2T came."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not task.r2ts and not task.done:
            self.pump(deadline)
        return bool(task.r2ts)

    def release(self, task):
        """Lets a held task's data go: answers the R2Ts received so far and every later one."""
        task.held = False
        if not task.done:
            self._answer_r2ts(task)

    def wait(self, task, timeout=None):
        """The task's Result (raises Timeout)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not task.done:
            self.pump(deadline)
        self.tasks.pop(task.itt, None)
        return task.result

    def command(self, cdb, data_out=b"", read_length=0, timeout=None):
        """Runs one command to its end; returns its Result."""
        t = timeout if timeout is not None else self.timeout
        return self.wait(self.start(cdb, data_out, read_length, timeout=t), timeout=t)

    # --- task management, NOP, logout ------------------------------------
    def tmf(self, function, referenced_itt=RESERVED_TAG, referenced_cmdsn=None, lun=None, timeout=None):
        """A task management request (immediate); returns the response code (0 = function complete)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        itt = self._next_itt()
        b = self._bhs(OP_TMF_REQ, 0x80 | function, 0, itt, immediate=True, lun=lun)
        b[20:24] = referenced_itt.to_bytes(4, "big")
        b[24:28] = self.cmdsn.to_bytes(4, "big")
        b[28:32] = self.expstatsn.to_bytes(4, "big")
        ref = referenced_cmdsn if referenced_cmdsn is not None else self.cmdsn
        b[32:36] = ref.to_bytes(4, "big")
        self._send(b)
        while itt not in self.tmf_responses:
            self.pump(deadline)
        return self.tmf_responses.pop(itt)

    def abort_task(self, task, timeout=None):
        """ABORT TASK of `task` (RefCmdSN: the CmdSN it was sent with, RFC 7143 §11.5.4)."""
        return self.tmf(TMF_ABORT_TASK, referenced_itt=task.itt, referenced_cmdsn=task.cmdsn, timeout=timeout)

    def nop(self, data=b"", timeout=None):
        """NOP-Out ping (immediate); returns the echoed data."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        itt = self._next_itt()
        b = self._bhs(OP_NOP_OUT, 0x80, len(data), itt, immediate=True)
        b[20:24] = RESERVED_TAG.to_bytes(4, "big")
        b[24:28] = self.cmdsn.to_bytes(4, "big")
        b[28:32] = self.expstatsn.to_bytes(4, "big")
        self._send(b, data)
        while itt not in self.nop_replies:
            self.pump(deadline)
        return self.nop_replies.pop(itt)

    def logout(self, reason=0, timeout=None):
        """Logout (close the session, RFC 7143 §11.14); returns the response code, then closes the socket."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            b = self._bhs(OP_LOGOUT, 0x80 | reason, 0, self._next_itt(), immediate=True, lun=0)
            b[24:28] = self.cmdsn.to_bytes(4, "big")
            b[28:32] = self.expstatsn.to_bytes(4, "big")
            self._send(b)
            while self.logout_response is None:
                self.pump(deadline)
            return self.logout_response[0]
        finally:
            self.close()

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
