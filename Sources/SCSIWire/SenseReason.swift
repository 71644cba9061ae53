/// Sense keys (SPC-4 §4.5.6, table 27).
public struct SenseKey: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let noSense = SenseKey(rawValue: 0x0)
    public static let recoveredError = SenseKey(rawValue: 0x1)
    public static let notReady = SenseKey(rawValue: 0x2)
    public static let mediumError = SenseKey(rawValue: 0x3)
    public static let hardwareError = SenseKey(rawValue: 0x4)
    public static let illegalRequest = SenseKey(rawValue: 0x5)
    public static let unitAttention = SenseKey(rawValue: 0x6)
    public static let dataProtect = SenseKey(rawValue: 0x7)
    public static let copyAborted = SenseKey(rawValue: 0xA)
    public static let abortedCommand = SenseKey(rawValue: 0xB)
    public static let miscompare = SenseKey(rawValue: 0xE)
}

/// Why a command failed or what a unit attention reports. Every case maps
/// through ``SenseReason/code`` (the one sense table) to key/ASC/ASCQ.
public enum SenseReason: Hashable, Sendable, CaseIterable, Codable {
    /// NO SENSE, no additional sense information (REQUEST SENSE with nothing pending).
    case noSense
    /// INVALID COMMAND OPERATION CODE.
    case invalidCommandOperationCode
    /// INVALID FIELD IN CDB.
    case invalidFieldInCDB
    /// INVALID FIELD IN PARAMETER LIST.
    case invalidFieldInParameterList
    /// PARAMETER LIST LENGTH ERROR.
    case parameterListLengthError
    /// LOGICAL BLOCK ADDRESS OUT OF RANGE.
    case lbaOutOfRange
    /// LOGICAL UNIT NOT SUPPORTED (the addressed LUN does not exist).
    case logicalUnitNotSupported
    /// INVALID FIELD IN COMMAND INFORMATION UNIT (Data-Out does not fit the CDB; FCP-4 / libiscsi residual tests).
    case invalidFieldInInformationUnit
    /// SAVING PARAMETERS NOT SUPPORTED.
    case savingParametersNotSupported
    /// WRITE PROTECTED.
    case writeProtected
    /// SOFTWARE WRITE PROTECTED (control mode page SWP).
    case softwareWriteProtected
    /// SPACE ALLOCATION FAILED WRITE PROTECT (thin device out of space).
    case spaceAllocationFailedWriteProtect
    /// UNRECOVERED READ ERROR (medium error on read).
    case unrecoveredReadError
    /// WRITE ERROR (medium error on write).
    case writeError
    /// MISCOMPARE DURING VERIFY OPERATION.
    case miscompareDuringVerifyOperation
    /// POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (first contact after start).
    case powerOnResetOrBusDeviceResetOccurred
    /// BUS DEVICE RESET FUNCTION OCCURRED (logical unit / target reset).
    case busDeviceResetFunctionOccurred
    /// I_T NEXUS LOSS OCCURRED.
    case itNexusLossOccurred
    /// MODE PARAMETERS CHANGED (another nexus ran MODE SELECT).
    case modeParametersChanged
    /// RESERVATIONS PREEMPTED.
    case reservationsPreempted
    /// RESERVATIONS RELEASED.
    case reservationsReleased
    /// REGISTRATIONS PREEMPTED.
    case registrationsPreempted
    /// CAPACITY DATA HAS CHANGED.
    case capacityDataHasChanged
    /// REPORTED LUNS DATA HAS CHANGED.
    case reportedLunsDataHasChanged
    /// COMMANDS CLEARED BY ANOTHER INITIATOR (CLEAR TASK SET from another nexus, TAS = 0).
    case commandsClearedByAnotherInitiator
    /// ASYMMETRIC ACCESS STATE CHANGED.
    case asymmetricAccessStateChanged
    /// LOGICAL UNIT NOT READY, CAUSE NOT REPORTABLE.
    case notReadyCauseNotReportable
    /// LOGICAL UNIT NOT ACCESSIBLE, ASYMMETRIC ACCESS STATE TRANSITION.
    case asymmetricAccessStateTransition
    /// LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN STANDBY STATE.
    case targetPortInStandbyState
    /// LOGICAL UNIT NOT ACCESSIBLE, TARGET PORT IN UNAVAILABLE STATE.
    case targetPortInUnavailableState
    /// INTERNAL TARGET FAILURE.
    case internalTargetFailure
    /// OVERLAPPED COMMANDS ATTEMPTED (a task tag reused while its task lives).
    case overlappedCommandsAttempted
    /// INVALID RELEASE OF PERSISTENT RESERVATION.
    case invalidReleaseOfPersistentReservation
    /// INSUFFICIENT REGISTRATION RESOURCES (SPEC_I_PT list too long).
    case insufficientRegistrationResources
    /// TOO MANY TARGET DESCRIPTORS (EXTENDED COPY).
    case tooManyTargetDescriptors
    /// UNSUPPORTED TARGET DESCRIPTOR TYPE CODE (EXTENDED COPY).
    case unsupportedTargetDescriptorTypeCode
    /// TOO MANY SEGMENT DESCRIPTORS (EXTENDED COPY).
    case tooManySegmentDescriptors
    /// UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE (EXTENDED COPY).
    case unsupportedSegmentDescriptorTypeCode
    /// COPY ABORTED, no additional sense (a segment failed: range, medium).
    case copyAborted
    /// COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE (a CSCD names no LU of this target).
    case copyTargetDeviceNotReachable
    /// LOGICAL UNIT NOT READY, SANITIZE IN PROGRESS.
    case sanitizeInProgress
    /// SANITIZE COMMAND FAILED (medium error after a failed sanitize).
    case sanitizeCommandFailed

    /// Sense key, additional sense code and qualifier: THE sense table (SPC-4 Annex D).
    public var code: (key: SenseKey, asc: UInt8, ascq: UInt8) {
        switch self {
        case .noSense: (.noSense, 0x00, 0x00)
        case .invalidCommandOperationCode: (.illegalRequest, 0x20, 0x00)
        case .invalidFieldInCDB: (.illegalRequest, 0x24, 0x00)
        case .invalidFieldInParameterList: (.illegalRequest, 0x26, 0x00)
        case .parameterListLengthError: (.illegalRequest, 0x1A, 0x00)
        case .lbaOutOfRange: (.illegalRequest, 0x21, 0x00)
        case .logicalUnitNotSupported: (.illegalRequest, 0x25, 0x00)
        case .invalidFieldInInformationUnit: (.illegalRequest, 0x0E, 0x03)
        case .savingParametersNotSupported: (.illegalRequest, 0x39, 0x00)
        case .writeProtected: (.dataProtect, 0x27, 0x00)
        case .softwareWriteProtected: (.dataProtect, 0x27, 0x02)
        case .spaceAllocationFailedWriteProtect: (.dataProtect, 0x27, 0x07)
        case .unrecoveredReadError: (.mediumError, 0x11, 0x00)
        case .writeError: (.mediumError, 0x0C, 0x00)
        case .miscompareDuringVerifyOperation: (.miscompare, 0x1D, 0x00)
        case .powerOnResetOrBusDeviceResetOccurred: (.unitAttention, 0x29, 0x00)
        case .busDeviceResetFunctionOccurred: (.unitAttention, 0x29, 0x03)
        case .itNexusLossOccurred: (.unitAttention, 0x29, 0x07)
        case .modeParametersChanged: (.unitAttention, 0x2A, 0x01)
        case .reservationsPreempted: (.unitAttention, 0x2A, 0x03)
        case .reservationsReleased: (.unitAttention, 0x2A, 0x04)
        case .registrationsPreempted: (.unitAttention, 0x2A, 0x05)
        case .capacityDataHasChanged: (.unitAttention, 0x2A, 0x09)
        case .reportedLunsDataHasChanged: (.unitAttention, 0x3F, 0x0E)
        case .commandsClearedByAnotherInitiator: (.unitAttention, 0x2F, 0x00)
        case .asymmetricAccessStateChanged: (.unitAttention, 0x2A, 0x06)
        case .notReadyCauseNotReportable: (.notReady, 0x04, 0x00)
        case .asymmetricAccessStateTransition: (.notReady, 0x04, 0x0A)
        case .targetPortInStandbyState: (.notReady, 0x04, 0x0B)
        case .targetPortInUnavailableState: (.notReady, 0x04, 0x0C)
        case .internalTargetFailure: (.hardwareError, 0x44, 0x00)
        case .overlappedCommandsAttempted: (.abortedCommand, 0x4E, 0x00)
        case .invalidReleaseOfPersistentReservation: (.illegalRequest, 0x26, 0x04)
        case .insufficientRegistrationResources: (.illegalRequest, 0x55, 0x04)
        case .tooManyTargetDescriptors: (.illegalRequest, 0x26, 0x06)
        case .unsupportedTargetDescriptorTypeCode: (.illegalRequest, 0x26, 0x07)
        case .tooManySegmentDescriptors: (.illegalRequest, 0x26, 0x08)
        case .unsupportedSegmentDescriptorTypeCode: (.illegalRequest, 0x26, 0x09)
        case .copyAborted: (.copyAborted, 0x00, 0x00)
        case .copyTargetDeviceNotReachable: (.copyAborted, 0x0D, 0x02)
        case .sanitizeInProgress: (.notReady, 0x04, 0x1B)
        case .sanitizeCommandFailed: (.mediumError, 0x31, 0x03)
        }
    }

    /// Whether this reason is a unit attention condition.
    public var isUnitAttention: Bool { code.key == .unitAttention }
}

/// Which CDB or parameter-list bit a sense reason points at (SPC-4 §4.5.2.4.2,
/// sense-key specific field pointer).
public struct FieldPointer: Hashable, Sendable {
    /// True for a CDB field (C/D = 1), false for a parameter-list field.
    public var inCDB: Bool
    /// Byte offset of the field.
    public var byte: UInt16
    /// Bit within the byte (0...7), when known.
    public var bit: UInt8?

    public init(inCDB: Bool = true, byte: Int, bit: UInt8? = nil) {
        self.inCDB = inCDB
        self.byte = UInt16(truncatingIfNeeded: byte)
        self.bit = bit.map { $0 & 7 }
    }
}

/// A command failure: a ``SenseReason`` plus optional INFORMATION and field
/// pointer. Thrown by the CDB parsers and the executor; turned into fixed
/// format sense bytes by ``bytes``.
public struct SenseData: Error, Hashable, Sendable {
    public var reason: SenseReason
    /// INFORMATION field (e.g. the offset of a miscompare); sets VALID.
    public var information: UInt32?
    /// Sense-key specific field pointer (INVALID FIELD IN CDB / PARAMETER LIST).
    public var fieldPointer: FieldPointer?

    public init(_ reason: SenseReason, information: UInt32? = nil, fieldPointer: FieldPointer? = nil) {
        self.reason = reason
        self.information = information
        self.fieldPointer = fieldPointer
    }

    /// INVALID FIELD IN CDB pointing at `byte` (and `bit`).
    public static func invalidField(byte: Int, bit: UInt8? = nil) -> SenseData {
        SenseData(.invalidFieldInCDB, fieldPointer: FieldPointer(byte: byte, bit: bit))
    }

    /// INVALID FIELD IN PARAMETER LIST pointing at `byte` (and `bit`).
    public static func invalidParameter(byte: Int, bit: UInt8? = nil) -> SenseData {
        SenseData(.invalidFieldInParameterList, fieldPointer: FieldPointer(inCDB: false, byte: byte, bit: bit))
    }

    /// Length of fixed-format sense data.
    public static let fixedLength = 18

    /// Fixed-format sense data (SPC-4 §4.5.3, response code 0x70).
    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: SenseData.fixedLength)
        let c = reason.code
        b[0] = 0x70
        if let information {
            b[0] |= 0x80  // VALID
            b[3] = UInt8(truncatingIfNeeded: information >> 24)
            b[4] = UInt8(truncatingIfNeeded: information >> 16)
            b[5] = UInt8(truncatingIfNeeded: information >> 8)
            b[6] = UInt8(truncatingIfNeeded: information)
        }
        b[2] = c.key.rawValue
        b[7] = UInt8(SenseData.fixedLength - 8)  // ADDITIONAL SENSE LENGTH
        b[12] = c.asc
        b[13] = c.ascq
        if let p = fieldPointer {
            // SPC-4 §4.5.2.4.2: SKSV, C/D, BPV, BIT POINTER, FIELD POINTER.
            b[15] = 0x80 | (p.inCDB ? 0x40 : 0) | (p.bit.map { 0x08 | $0 } ?? 0)
            b[16] = UInt8(truncatingIfNeeded: p.byte >> 8)
            b[17] = UInt8(truncatingIfNeeded: p.byte)
        }
        return b
    }
}

extension SenseData {
    /// Descriptor-format sense data (SPC-4 §4.5.2, response code 72h): the
    /// information descriptor (type 00h) and the sense-key specific descriptor
    /// (type 02h) when the fixed form would carry them.
    public var descriptorBytes: [UInt8] {
        let c = reason.code
        var b: [UInt8] = [0x72, c.key.rawValue, c.asc, c.ascq, 0, 0, 0, 0]
        if let information {
            b += [0x00, 0x0A, 0x80, 0, 0, 0, 0, 0]
            b += (0..<4).map { UInt8(truncatingIfNeeded: information >> (24 - 8 * $0)) }
        }
        if let p = fieldPointer {
            b += [0x02, 0x06, 0, 0, 0x80 | (p.inCDB ? 0x40 : 0) | (p.bit.map { 0x08 | $0 } ?? 0)]
            b += [UInt8(truncatingIfNeeded: p.byte >> 8), UInt8(truncatingIfNeeded: p.byte), 0]
        }
        b[7] = UInt8(b.count - 8)
        return b
    }

    /// Converts fixed-format sense bytes (as ``bytes`` builds them) to the
    /// descriptor format; anything else is returned unchanged.
    public static func descriptorFormat(fromFixed f: [UInt8]) -> [UInt8] {
        guard f.count >= 14, f[0] & 0x7F == 0x70 else { return f }
        var b: [UInt8] = [0x72, f[2] & 0x0F, f[12], f[13], 0, 0, 0, 0]
        if f[0] & 0x80 != 0 { b += [0x00, 0x0A, 0x80, 0, 0, 0, 0, 0] + Array(f[3...6]) }
        if f.count >= 18, f[15] & 0x80 != 0 { b += [0x02, 0x06, 0, 0] + Array(f[15...17]) + [0] }
        b[7] = UInt8(b.count - 8)
        return b
    }
}
