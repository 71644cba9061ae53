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

    public var description: String {
        switch self {
        case .register: "REGISTER"
        case .reserve: "RESERVE"
        case .release: "RELEASE"
        case .clear: "CLEAR"
        case .preempt: "PREEMPT"
        case .preemptAndAbort: "PREEMPT AND ABORT"
        case .registerAndIgnoreExistingKey: "REGISTER AND IGNORE EXISTING KEY"
        }
    }
}

/// Persistent reservation types (SPC-4 §6.15.3.4, table 171).
public enum PersistentReservationType: UInt8, CaseIterable, Sendable {
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

/// PERSISTENT RESERVE OUT basic parameter list (SPC-4 §6.16.3, table 180).
public struct PersistentReserveOutParameters: Hashable, Sendable {
    public var reservationKey: UInt64
    public var serviceActionReservationKey: UInt64
    /// Specify initiator ports.
    public var specIPT: Bool
    /// All target ports.
    public var allTgPt: Bool
    /// Activate persist through power loss.
    public var aptpl: Bool

    /// Decodes the 24-byte list; any other length → PARAMETER LIST LENGTH ERROR
    /// (SPC-4 §6.16.3: SPEC_I_PT and REGISTER AND MOVE, the longer forms, are not supported).
    public static func decode(_ bytes: [UInt8]) throws(SenseData) -> PersistentReserveOutParameters {
        guard bytes.count == 24 else { throw SenseData(.parameterListLengthError) }
        return PersistentReserveOutParameters(
            reservationKey: bytes.be64(0), serviceActionReservationKey: bytes.be64(8),
            specIPT: bytes[20] & 0x08 != 0, allTgPt: bytes[20] & 0x04 != 0, aptpl: bytes[20] & 0x01 != 0)
    }

    /// Encodes the list (tests, initiators).
    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: 24)
        b.put64(reservationKey, at: 0)
        b.put64(serviceActionReservationKey, at: 8)
        b[20] = (specIPT ? 0x08 : 0) | (allTgPt ? 0x04 : 0) | (aptpl ? 0x01 : 0)
        return b
    }

    public init(
        reservationKey: UInt64, serviceActionReservationKey: UInt64, specIPT: Bool = false, allTgPt: Bool = false,
        aptpl: Bool = false
    ) {
        self.reservationKey = reservationKey
        self.serviceActionReservationKey = serviceActionReservationKey
        self.specIPT = specIPT
        self.allTgPt = allTgPt
        self.aptpl = aptpl
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

    /// REPORT CAPABILITIES (SPC-4 §6.15.4): CRH, TMV with every type, no SIP/ATP/PTPL.
    public static func reportCapabilities() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 8)
        b.put16(8, at: 0)
        b[2] = 0x10  // CRH: RESERVE(6)/RELEASE(6) handled as SPC-4 §5.13.3 says
        b[3] = 0x80  // TMV: the type mask is valid
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
        /// The initiator port name (`iqn…,i,0x<ISID>`).
        public var initiatorPortName: String
        public init(
            key: UInt64, holder: Bool, type: UInt8, relativeTargetPortIdentifier: UInt16, initiatorPortName: String
        ) {
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
            var transportID: [UInt8] = [0x40 | 0x05, 0, 0, 0]
            transportID.put16(UInt16(name.count), at: 2)
            transportID += name
            var d = [UInt8](repeating: 0, count: 24)
            d.put64(e.key, at: 0)
            d[12] = e.holder ? 0x01 : 0
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
