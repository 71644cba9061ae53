import NIOCore

/// Login Request (RFC 7143 §11.12).
public struct LoginRequestPDU: Sendable, Equatable {
    /// T bit: the initiator is ready to move to `nextStage` (§11.12.1).
    public var transit: Bool
    /// C bit: the text is continued in the next PDU (§11.12.2).
    public var `continue`: Bool
    /// CSG (§11.12.3).
    public var currentStage: LoginStage
    /// NSG, meaningful when `transit` is set (§11.12.3).
    public var nextStage: LoginStage
    /// Version-max (§11.12.4).
    public var versionMax: UInt8
    /// Version-min (§11.12.4).
    public var versionMin: UInt8
    /// ISID, 48 bits (§11.12.5).
    public var isid: UInt64
    /// TSIH (§11.12.6).
    public var tsih: UInt16
    /// Initiator Task Tag.
    public var initiatorTaskTag: UInt32
    /// CID (§11.12.7).
    public var cid: UInt16
    /// CmdSN (§11.12.8).
    public var cmdSN: UInt32
    /// ExpStatSN (§11.12.9).
    public var expStatSN: UInt32
    /// Login parameters as text key=value pairs (§11.12.10).
    public var dataSegment: ByteBuffer

    public init(
        transit: Bool = false, continue: Bool = false,
        currentStage: LoginStage = .securityNegotiation, nextStage: LoginStage = .securityNegotiation,
        versionMax: UInt8 = 0, versionMin: UInt8 = 0, isid: UInt64 = 0, tsih: UInt16 = 0,
        initiatorTaskTag: UInt32 = 0, cid: UInt16 = 0, cmdSN: UInt32 = 0, expStatSN: UInt32 = 0,
        dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.transit = transit
        self.continue = `continue`
        self.currentStage = currentStage
        self.nextStage = nextStage
        self.versionMax = versionMax
        self.versionMin = versionMin
        self.isid = isid
        self.tsih = tsih
        self.initiatorTaskTag = initiatorTaskTag
        self.cid = cid
        self.cmdSN = cmdSN
        self.expStatSN = expStatSN
        self.dataSegment = dataSegment
    }
}

extension LoginRequestPDU: PDUCodable {
    static var opcode: ISCSIOpcode { .loginRequest }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        let flags = h.u8(1)
        let (csg, nsg) = try LoginStage.decode(flags: flags)
        self.init(
            transit: flags & 0x80 != 0, continue: flags & 0x40 != 0,
            currentStage: csg, nextStage: nsg,
            versionMax: h.u8(2), versionMin: h.u8(3), isid: h.isid, tsih: h.tsih,
            initiatorTaskTag: h.initiatorTaskTag, cid: h.u16(20), cmdSN: h.u32(24), expStatSN: h.u32(28),
            dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        // RFC 7143 §11.12: the I bit is always 1 in a Login Request.
        h.setImmediate(true)
        h.set(LoginStage.flags(transit: transit, continue: self.continue, currentStage, nextStage), 1)
        h.set(versionMax, 2)
        h.set(versionMin, 3)
        h.setISID(isid, tsih: tsih)
        h.set(initiatorTaskTag, 16)
        h.set(cid, 20)
        h.set(cmdSN, 24)
        h.set(expStatSN, 28)
    }
}

/// Login Response (RFC 7143 §11.13).
public struct LoginResponsePDU: Sendable, Equatable {
    /// T bit (§11.13.1).
    public var transit: Bool
    /// C bit (§11.13.1).
    public var `continue`: Bool
    /// CSG (§11.13.1).
    public var currentStage: LoginStage
    /// NSG (§11.13.1).
    public var nextStage: LoginStage
    /// Version-max (§11.13.2).
    public var versionMax: UInt8
    /// Version-active (§11.13.3).
    public var versionActive: UInt8
    /// ISID, 48 bits, echoed from the request.
    public var isid: UInt64
    /// TSIH (§11.13.4).
    public var tsih: UInt16
    /// Initiator Task Tag, echoed.
    public var initiatorTaskTag: UInt32
    /// StatSN (§11.13.5).
    public var statSN: UInt32
    /// ExpCmdSN.
    public var expCmdSN: UInt32
    /// MaxCmdSN.
    public var maxCmdSN: UInt32
    /// Status-Class (§11.13.5).
    public var statusClass: UInt8
    /// Status-Detail (§11.13.5).
    public var statusDetail: UInt8
    /// Text key=value pairs.
    public var dataSegment: ByteBuffer

    public init(
        transit: Bool = false, continue: Bool = false,
        currentStage: LoginStage = .securityNegotiation, nextStage: LoginStage = .securityNegotiation,
        versionMax: UInt8 = 0, versionActive: UInt8 = 0, isid: UInt64 = 0, tsih: UInt16 = 0,
        initiatorTaskTag: UInt32 = 0, statSN: UInt32 = 0, expCmdSN: UInt32 = 0, maxCmdSN: UInt32 = 0,
        statusClass: UInt8 = 0, statusDetail: UInt8 = 0, dataSegment: ByteBuffer = ByteBuffer()
    ) {
        self.transit = transit
        self.continue = `continue`
        self.currentStage = currentStage
        self.nextStage = nextStage
        self.versionMax = versionMax
        self.versionActive = versionActive
        self.isid = isid
        self.tsih = tsih
        self.initiatorTaskTag = initiatorTaskTag
        self.statSN = statSN
        self.expCmdSN = expCmdSN
        self.maxCmdSN = maxCmdSN
        self.statusClass = statusClass
        self.statusDetail = statusDetail
        self.dataSegment = dataSegment
    }
}

extension LoginResponsePDU: PDUCodable {
    static var opcode: ISCSIOpcode { .loginResponse }

    init(decoding h: BHSReader, dataSegment: ByteBuffer) throws(PDUFieldError) {
        let flags = h.u8(1)
        let (csg, nsg) = try LoginStage.decode(flags: flags)
        self.init(
            transit: flags & 0x80 != 0, continue: flags & 0x40 != 0,
            currentStage: csg, nextStage: nsg,
            versionMax: h.u8(2), versionActive: h.u8(3), isid: h.isid, tsih: h.tsih,
            initiatorTaskTag: h.initiatorTaskTag, statSN: h.u32(24), expCmdSN: h.u32(28),
            maxCmdSN: h.u32(32), statusClass: h.u8(36), statusDetail: h.u8(37),
            dataSegment: dataSegment)
    }

    func encode(into h: inout BHSWriter) {
        h.set(LoginStage.flags(transit: transit, continue: self.continue, currentStage, nextStage), 1)
        h.set(versionMax, 2)
        h.set(versionActive, 3)
        h.setISID(isid, tsih: tsih)
        h.set(initiatorTaskTag, 16)
        h.set(statSN, 24)
        h.set(expCmdSN, 28)
        h.set(maxCmdSN, 32)
        h.set(statusClass, 36)
        h.set(statusDetail, 37)
    }
}

extension LoginStage {
    /// CSG is bits 2-3 and NSG bits 0-1 of byte 1 (RFC 7143 §11.12.3);
    /// the value 2 is reserved, so it is an invalid PDU field.
    static func decode(flags: UInt8) throws(PDUFieldError) -> (LoginStage, LoginStage) {
        guard let csg = LoginStage(rawValue: (flags >> 2) & 3),
            let nsg = LoginStage(rawValue: flags & 3)
        else {
            throw PDUFieldError(detail: "reserved login stage in flags 0x\(String(flags, radix: 16))")
        }
        return (csg, nsg)
    }

    static func flags(transit: Bool, continue: Bool, _ csg: LoginStage, _ nsg: LoginStage) -> UInt8 {
        (transit ? 0x80 : 0) | (`continue` ? 0x40 : 0) | (csg.rawValue << 2) | nsg.rawValue
    }
}
