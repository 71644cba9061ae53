/// PERSISTENT RESERVE IN service actions (SPC-4 §6.15.1, table 166).
public enum PersistentReserveInAction: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case readKeys = 0x00
    case readReservation = 0x01
    case reportCapabilities = 0x02
    case readFullStatus = 0x03

    public var description: String {
        switch self {
        case .readKeys: "READ KEYS"
        case .readReservation: "READ RESERVATION"
        case .reportCapabilities: "REPORT CAPABILITIES"
        case .readFullStatus: "READ FULL STATUS"
        }
    }
}

/// PERSISTENT RESERVE OUT service actions (SPC-4 §6.16.2, table 178).
public enum PersistentReserveOutAction: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    case register = 0x00
    case reserve = 0x01
    case release = 0x02
    case clear = 0x03
    case preempt = 0x04
    case preemptAndAbort = 0x05
    case registerAndIgnoreExistingKey = 0x06
    case registerAndMove = 0x07

    public var description: String {
        switch self {
        case .register: "REGISTER"
        case .reserve: "RESERVE"
        case .release: "RELEASE"
        case .clear: "CLEAR"
        case .preempt: "PREEMPT"
        case .preemptAndAbort: "PREEMPT AND ABORT"
        case .registerAndIgnoreExistingKey: "REGISTER AND IGNORE EXISTING KEY"
        case .registerAndMove: "REGISTER AND MOVE"
        }
    }
}

/// Persistent reservation types (SPC-4 §6.15.3.4, table 171).
public enum PersistentReservationType: UInt8, CaseIterable, Sendable, Codable {
    case writeExclusive = 0x1
    case exclusiveAccess = 0x3
    case writeExclusiveRegistrantsOnly = 0x5
    case exclusiveAccessRegistrantsOnly = 0x6
    case writeExclusiveAllRegistrants = 0x7
    case exclusiveAccessAllRegistrants = 0x8

    /// Every registrant is a reservation holder (SPC-4 §5.13.10).
    public var allRegistrants: Bool { self == .writeExclusiveAllRegistrants || self == .exclusiveAccessAllRegistrants }
    /// Registrants (not only the holder) get access.
    public var registrantsHaveAccess: Bool { rawValue >= 5 }
    /// Reads from non-holders conflict too.
    public var exclusiveAccess: Bool {
        self == .exclusiveAccess || self == .exclusiveAccessRegistrantsOnly || self == .exclusiveAccessAllRegistrants
    }
}

/// PERSISTENT RESERVE OUT CDB fields.
public struct PersistentReserveOut: Hashable, Sendable {
    public var serviceAction: PersistentReserveOutAction
    public var scope: UInt8
    public var type: UInt8
    public var parameterListLength: UInt32
}

/// An iSCSI TransportID (SPC-4 §7.6.4.6): an initiator device (format 00b)
/// or one initiator port (format 01b, name plus ISID).
public struct TransportID: Hashable, Sendable {
    /// The iSCSI name.
    public var name: String
    /// The ISID as the port name writes it (12 hex digits), nil for a device TransportID.
    public var isid: String?

    public init(name: String, isid: String? = nil) {
        self.name = name
        self.isid = isid
    }

    /// The initiator port name `name,i,0x<isid>` (RFC 7143 §4.2.7.1), or the name.
    public var portName: String { isid.map { "\(name),i,0x\($0)" } ?? name }

    /// Decodes the TransportIDs in `bytes`; anything but iSCSI (protocol 5h)
    /// with format 00b/01b → INVALID FIELD IN PARAMETER LIST at `base` + offset.
    public static func decodeList(_ bytes: [UInt8], base: Int) throws(SenseData) -> [TransportID] {
        var ids: [TransportID] = []
        var at = 0
        while at < bytes.count {
            guard at + 4 <= bytes.count else { throw SenseData(.parameterListLengthError) }
            let format = bytes[at] >> 6
            guard bytes[at] & 0x0F == 0x05, format <= 1 else { throw SenseData.invalidParameter(byte: base + at) }
            let length = Int(bytes.be16(at + 2))
            guard at + 4 + length <= bytes.count else { throw SenseData(.parameterListLengthError) }
            let raw = bytes[(at + 4)..<(at + 4 + length)].prefix { $0 != 0 }
            let text = String(decoding: raw, as: UTF8.self)
            if format == 1 {
                // "<name>,i,0x<ISID>" (SPC-4 table 401).
                let parts = text.split(separator: ",", maxSplits: 2, omittingEmptySubsequences: false)
                guard parts.count == 3, parts[1].lowercased() == "i", parts[2].lowercased().hasPrefix("0x") else {
                    throw SenseData.invalidParameter(byte: base + at + 4)
                }
                ids.append(TransportID(name: String(parts[0]), isid: String(parts[2].dropFirst(2)).lowercased()))
            } else {
                ids.append(TransportID(name: text))
            }
            at += 4 + length
        }
        return ids
    }

    /// Encodes the TransportID (tests, initiators).
    public var bytes: [UInt8] {
        var name = Array(portName.utf8)
        name.append(0)
        while name.count % 4 != 0 { name.append(0) }
        var b: [UInt8] = [(isid == nil ? 0x00 : 0x40) | 0x05, 0, 0, 0]
        b.put16(UInt16(name.count), at: 2)
        return b + name
    }
}

/// PERSISTENT RESERVE OUT parameter list (SPC-4 §6.16.3, tables 180 and 182).
public struct PersistentReserveOutParameters: Hashable, Sendable {
    public var reservationKey: UInt64
    public var serviceActionReservationKey: UInt64
    /// Specify initiator ports.
    public var specIPT: Bool
    /// All target ports.
    public var allTgPt: Bool
    /// Activate persist through power loss.
    public var aptpl: Bool
    /// SPEC_I_PT / REGISTER AND MOVE TransportIDs.
    public var transportIDs: [TransportID]
    /// REGISTER AND MOVE: UNREG (unregister the sender after the move).
    public var unregister: Bool
    /// REGISTER AND MOVE: RELATIVE TARGET PORT IDENTIFIER of the destination nexus.
    public var relativeTargetPortIdentifier: UInt16

    /// Decodes the basic 24-byte list, the SPEC_I_PT form (24 + 4 + TransportIDs)
    /// or the REGISTER AND MOVE list; a length that does not match the form →
    /// PARAMETER LIST LENGTH ERROR (SPC-4 §6.16.3).
    public static func decode(_ bytes: [UInt8], serviceAction: PersistentReserveOutAction = .register)
        throws(SenseData) -> PersistentReserveOutParameters
    {
        guard bytes.count >= 24 else { throw SenseData(.parameterListLengthError) }
        var p = PersistentReserveOutParameters(
            reservationKey: bytes.be64(0), serviceActionReservationKey: bytes.be64(8))
        if serviceAction == .registerAndMove {
            // SPC-4 §6.16.4, table 182.
            p.unregister = bytes[17] & 0x02 != 0
            p.aptpl = bytes[17] & 0x01 != 0
            p.relativeTargetPortIdentifier = bytes.be16(18)
            let length = Int(bytes.be32(20))
            guard bytes.count == 24 + length else { throw SenseData(.parameterListLengthError) }
            p.transportIDs = try TransportID.decodeList(Array(bytes[24...]), base: 24)
            // Exactly one TransportID names the destination.
            guard p.transportIDs.count == 1 else { throw SenseData.invalidParameter(byte: 24) }
            return p
        }
        p.specIPT = bytes[20] & 0x08 != 0
        p.allTgPt = bytes[20] & 0x04 != 0
        p.aptpl = bytes[20] & 0x01 != 0
        if p.specIPT {
            guard bytes.count >= 28 else { throw SenseData(.parameterListLengthError) }
            let length = Int(bytes.be32(24))
            guard bytes.count == 28 + length else { throw SenseData(.parameterListLengthError) }
            p.transportIDs = try TransportID.decodeList(Array(bytes[28...]), base: 28)
        } else if bytes.count != 24 {
            throw SenseData(.parameterListLengthError)
        }
        return p
    }

    /// Encodes the basic or SPEC_I_PT list (tests, initiators).
    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: 24)
        b.put64(reservationKey, at: 0)
        b.put64(serviceActionReservationKey, at: 8)
        b[20] = (specIPT ? 0x08 : 0) | (allTgPt ? 0x04 : 0) | (aptpl ? 0x01 : 0)
        if specIPT {
            let ids = transportIDs.flatMap(\.bytes)
            var n = [UInt8](repeating: 0, count: 4)
            n.put32(UInt32(ids.count), at: 0)
            b += n + ids
        }
        return b
    }

    /// Encodes a REGISTER AND MOVE list (tests, initiators).
    public var registerAndMoveBytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: 24)
        b.put64(reservationKey, at: 0)
        b.put64(serviceActionReservationKey, at: 8)
        b[17] = (unregister ? 0x02 : 0) | (aptpl ? 0x01 : 0)
        b.put16(relativeTargetPortIdentifier, at: 18)
        let ids = transportIDs.flatMap(\.bytes)
        b.put32(UInt32(ids.count), at: 20)
        return b + ids
    }

    public init(
        reservationKey: UInt64, serviceActionReservationKey: UInt64, specIPT: Bool = false, allTgPt: Bool = false,
        aptpl: Bool = false, transportIDs: [TransportID] = [], unregister: Bool = false,
        relativeTargetPortIdentifier: UInt16 = 0
    ) {
        self.reservationKey = reservationKey
        self.serviceActionReservationKey = serviceActionReservationKey
        self.specIPT = specIPT
        self.allTgPt = allTgPt
        self.aptpl = aptpl
        self.transportIDs = transportIDs
        self.unregister = unregister
        self.relativeTargetPortIdentifier = relativeTargetPortIdentifier
    }
}

/// PERSISTENT RESERVE IN parameter data builders (SPC-4 §6.15).
public enum PersistentReserveInData {
    /// READ KEYS (SPC-4 §6.15.2).
    public static func readKeys(generation: UInt32, keys: [UInt64]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 8 + 8 * keys.count)
        b.put32(generation, at: 0)
        b.put32(UInt32(8 * keys.count), at: 4)
        for (i, k) in keys.enumerated() { b.put64(k, at: 8 + 8 * i) }
        return b
    }

    /// READ RESERVATION (SPC-4 §6.15.3).
    public static func readReservation(generation: UInt32, reservation: (key: UInt64, type: UInt8)?) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: reservation == nil ? 8 : 24)
        b.put32(generation, at: 0)
        if let r = reservation {
            b.put32(16, at: 4)
            b.put64(r.key, at: 8)
            b[21] = r.type & 0x0F  // SCOPE 0h (logical unit)
        }
        return b
    }

    /// REPORT CAPABILITIES (SPC-4 §6.15.4): CRH, SIP_C, ATP_C, PTPL_C, TMV
    /// with every type; PTPL_A says whether APTPL is active now.
    public static func reportCapabilities(persistThroughPowerLossActive: Bool = false) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 8)
        b.put16(8, at: 0)
        // CRH (RESERVE/RELEASE as SPC-4 §5.13.3 says), SIP_C, ATP_C, PTPL_C.
        b[2] = 0x10 | 0x08 | 0x04 | 0x01
        if persistThroughPowerLossActive { b[3] |= 0x01 }  // PTPL_A
        b[3] |= 0x80  // TMV: the type mask is valid
        b[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02  // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
        b[5] = 0x01  // EX_AC_AR
        return b
    }

    /// One READ FULL STATUS descriptor's input.
    public struct FullStatus: Sendable {
        public var key: UInt64
        public var holder: Bool
        public var type: UInt8
        public var relativeTargetPortIdentifier: UInt16
        /// The initiator port name (`iqn…,i,0x<ISID>`), or the initiator name for a device registration.
        public var initiatorPortName: String
        /// ALL_TG_PT: registered through every target port.
        public var allTargetPorts: Bool
        /// The registration names an initiator device (TransportID format 00b).
        public var deviceName: Bool
        public init(
            key: UInt64, holder: Bool, type: UInt8, relativeTargetPortIdentifier: UInt16, initiatorPortName: String,
            allTargetPorts: Bool = false, deviceName: Bool = false
        ) {
            self.allTargetPorts = allTargetPorts
            self.deviceName = deviceName
            self.key = key
            self.holder = holder
            self.type = type
            self.relativeTargetPortIdentifier = relativeTargetPortIdentifier
            self.initiatorPortName = initiatorPortName
        }
    }

    /// READ FULL STATUS (SPC-4 §6.15.5) with iSCSI TransportIDs (SPC-4 §7.6.4.6, format 01b).
    public static func readFullStatus(generation: UInt32, _ entries: [FullStatus]) -> [UInt8] {
        var body: [UInt8] = []
        for e in entries {
            var name = Array(e.initiatorPortName.utf8.prefix(219))
            name.append(0)
            while name.count % 4 != 0 { name.append(0) }
            var transportID: [UInt8] = [(e.deviceName ? 0x00 : 0x40) | 0x05, 0, 0, 0]
            transportID.put16(UInt16(name.count), at: 2)
            transportID += name
            var d = [UInt8](repeating: 0, count: 24)
            d.put64(e.key, at: 0)
            d[12] = (e.holder ? 0x01 : 0) | (e.allTargetPorts ? 0x02 : 0)
            d[13] = e.holder ? e.type & 0x0F : 0
            d.put16(e.relativeTargetPortIdentifier, at: 18)
            d.put32(UInt32(transportID.count), at: 20)
            body += d + transportID
        }
        var b = [UInt8](repeating: 0, count: 8)
        b.put32(generation, at: 0)
        b.put32(UInt32(body.count), at: 4)
        return b + body
    }
}
