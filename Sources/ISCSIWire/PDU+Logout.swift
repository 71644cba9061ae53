import NIOCore

/// Logout Request (RFC 7143 §11.14).
public struct LogoutRequestPDU: Sendable, Equatable {
    /// I bit.
    public var immediate: Bool
    /// Reason Code, 7 bits (§11.14.1): 0 close session, 1 close connection,
    /// 2 remove connection for recovery.
    public var reasonCode: UInt8
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// CID of the connection to close (§11.14.3).
    public var cid: UInt16
    /// CmdSN.
    public var cmdSN: UInt32
    /// ExpStatSN.
    public var expStatSN: UInt32

    public init(
        immediate: Bool = false, reasonCode: UInt8 = 0, initiatorTaskTag: UInt32 = 0, cid: UInt16 = 0,
        cmdSN: UInt32 = 0, expStatSN: UInt32 = 0
    ) {
        self.immediate = immediate
        self.reasonCode = reasonCode
        self.initiatorTaskTag = initiatorTaskTag
        self.cid = cid
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
    }
}

extension LogoutRequestPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .logoutRequest }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            immediate: h.immediate, reasonCode: h.u8(1) & 0x7f, initiatorTaskTag: h.initiatorTaskTag,
            cid: h.u16(20), cmdSN: h.u32(24), expStatSN: h.u32(28))
    }

    func encode(into h: inout BHSWriter) {
        h.setImmediate(immediate)
        h.set(0x80 | (reasonCode & 0x7f), 1)  // RFC 7143 §11.14: byte 1 bit 7 is 1.
        h.set(initiatorTaskTag, 16)
        h.set(cid, 20)
        h.set(cmdSN, 24)
        h.set(expStatSN, 28)
    }
}

/// Logout Response (RFC 7143 §11.15).
public struct LogoutResponsePDU: Sendable, Equatable {
    /// Response (§11.15.1): 0 closed successfully, 1 CID not found, ...
    public var response: UInt8
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// StatSN.
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// Time2Wait (§11.15.2).
    public var time2Wait: UInt16
    /// Time2Retain (§11.15.3).
    public var time2Retain: UInt16

    public init(
        response: UInt8 = 0, initiatorTaskTag: UInt32 = 0, statSN: UInt32 = 0, expCmdSN: UInt32 = 0,
        maxCmdSN: UInt32 = 0, time2Wait: UInt16 = 0, time2Retain: UInt16 = 0
    ) {
        self.response = response
        self.initiatorTaskTag = initiatorTaskTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.time2Wait = time2Wait
        self.time2Retain = time2Retain
    }
}

extension LogoutResponsePDU: PDUCodable {
    static var opcode: ISCSIOpcode { .logoutResponse }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        self.init(
            response: h.u8(2), initiatorTaskTag: h.initiatorTaskTag, statSN: h.u32(24),
            expCmdSN: h.u32(28), maxCmdSN: h.u32(32), time2Wait: h.u16(40), time2Retain: h.u16(42))
    }

    func encode(into h: inout BHSWriter) {
        h.setFinal(true)  // RFC 7143 §11.15: byte 1 bit 7 is 1.
        h.set(response, 2)
        h.set(initiatorTaskTag, 16)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
        h.set(time2Wait, 40)
        h.set(time2Retain, 42)
    }
}
