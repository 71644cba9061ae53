import BlockStorage

// The surface the iSCSI server (and later the distributed node) uses to run
// SCSI. Nothing here knows iSCSI: a transport hands over a CDB, the I_T nexus
// it came on and its Data-Out bytes, and gets back status, sense and Data-In.

/// An I_T nexus (SAM-5 §4.6): one initiator port talking to one target port.
///
/// The four names live in one shared, immutable box: a nexus is copied into
/// every command, task key and unit-attention lookup, and one reference to
/// count costs less than four strings' (the names change only by assignment,
/// which makes a new box).
public struct ITNexus: Hashable, Sendable, CustomStringConvertible {
    private final class Names: Sendable {
        let initiatorName: String
        let initiatorPortName: String
        let targetName: String
        let targetPortName: String

        init(initiatorName: String, initiatorPortName: String, targetName: String, targetPortName: String) {
            self.initiatorName = initiatorName
            self.initiatorPortName = initiatorPortName
            self.targetName = targetName
            self.targetPortName = targetPortName
        }

        func with(
            initiatorName: String? = nil, initiatorPortName: String? = nil, targetName: String? = nil,
            targetPortName: String? = nil
        ) -> Names {
            Names(
                initiatorName: initiatorName ?? self.initiatorName,
                initiatorPortName: initiatorPortName ?? self.initiatorPortName,
                targetName: targetName ?? self.targetName, targetPortName: targetPortName ?? self.targetPortName)
        }
    }

    private var names: Names

    /// The initiator's iSCSI name (`iqn.…`), used by ACLs and PR TransportIDs.
    public var initiatorName: String {
        get { names.initiatorName }
        set { names = names.with(initiatorName: newValue) }
    }
    /// The initiator port name, `<name>,i,0x<ISID as 12 hex digits>` (RFC 7143 §4.2.7.1).
    public var initiatorPortName: String {
        get { names.initiatorPortName }
        set { names = names.with(initiatorPortName: newValue) }
    }
    /// The target's iSCSI name.
    public var targetName: String {
        get { names.targetName }
        set { names = names.with(targetName: newValue) }
    }
    /// The target port name, `<target>,t,0x<TPGT as 4 hex digits>`.
    public var targetPortName: String {
        get { names.targetPortName }
        set { names = names.with(targetPortName: newValue) }
    }
    /// Relative target port identifier (SPC-4 §7.8.6.6); one per portal group, from 1.
    public var relativeTargetPortIdentifier: UInt16
    /// ALUA target port group this port belongs to (SPC-4 §6.37).
    public var targetPortGroup: UInt16

    public init(
        initiatorName: String, isid: UInt64, targetName: String, portalGroupTag: UInt16,
        relativeTargetPortIdentifier: UInt16? = nil, targetPortGroup: UInt16? = nil
    ) {
        let isidHex = String(isid & 0xFFFF_FFFF_FFFF, radix: 16)
        let tpgtHex = String(portalGroupTag, radix: 16)
        self.names = Names(
            initiatorName: initiatorName,
            initiatorPortName: "\(initiatorName),i,0x\(String(repeating: "0", count: 12 - isidHex.count))\(isidHex)",
            targetName: targetName,
            targetPortName: "\(targetName),t,0x\(String(repeating: "0", count: 4 - tpgtHex.count))\(tpgtHex)")
        self.relativeTargetPortIdentifier = relativeTargetPortIdentifier ?? portalGroupTag
        self.targetPortGroup = targetPortGroup ?? portalGroupTag
    }

    public var description: String { "\(initiatorPortName) -> \(targetPortName)" }

    /// Every field; two copies of one nexus share their names and compare at once.
    public static func == (lhs: ITNexus, rhs: ITNexus) -> Bool {
        guard lhs.relativeTargetPortIdentifier == rhs.relativeTargetPortIdentifier,
            lhs.targetPortGroup == rhs.targetPortGroup
        else { return false }
        if lhs.names === rhs.names { return true }
        return lhs.initiatorName == rhs.initiatorName && lhs.initiatorPortName == rhs.initiatorPortName
            && lhs.targetName == rhs.targetName && lhs.targetPortName == rhs.targetPortName
    }

    /// The initiator port and the relative target port: together they name
    /// the I_T nexus, and hashing one name instead of four is measurably
    /// cheaper on paths that look a nexus up for every command (unit
    /// attention queues). Equality still compares every field.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(initiatorPortName)
        hasher.combine(relativeTargetPortIdentifier)
    }
}

/// Task attribute from the transport (SAM-5 §8.9).
public enum TaskAttribute: UInt8, Sendable {
    case untagged = 0, simple = 1, ordered = 2, headOfQueue = 3, aca = 4
}

/// One SCSI command as a transport delivers it.
public struct SCSICommand: Sendable {
    /// The 8-byte LUN field as sent (SAM-5 §4.7); the target decodes it.
    public var lun: UInt64
    /// The CDB (16 bytes from the BHS, longer with an extended-CDB AHS).
    public var cdb: [UInt8]
    /// Which nexus sent it.
    public var nexus: ITNexus
    /// The transport's task tag, unique per nexus while the task lives (ABORT TASK names it).
    public var taskTag: UInt32
    public var attribute: TaskAttribute
    /// Bytes the initiator expects to move (iSCSI ExpectedDataTransferLength).
    public var expectedDataTransferLength: UInt32
    /// Write data received from the initiator, when the command is a write.
    public var dataOut: IOBuffer?
    /// How many bytes of `dataOut` are valid (≤ `dataOut.count`).
    public var dataOutLength: Int
    /// The transport announced the task when it arrived, before its data
    /// (``SCSITargetDevice/arrived(nexus:taskTag:lun:)``).
    public var announced = false
    /// Where a READ's data buffer comes from: the transport's, so the buffer
    /// the device fills is the one it sends. Nil: a buffer of the SCSI layer's own.
    public var dataInAllocator: (any IOBufferAllocator)?

    public init(
        lun: UInt64, cdb: [UInt8], nexus: ITNexus, taskTag: UInt32, attribute: TaskAttribute = .simple,
        expectedDataTransferLength: UInt32, dataOut: IOBuffer? = nil, dataOutLength: Int? = nil
    ) {
        self.lun = lun
        self.cdb = cdb
        self.nexus = nexus
        self.taskTag = taskTag
        self.attribute = attribute
        self.expectedDataTransferLength = expectedDataTransferLength
        self.dataOut = dataOut
        self.dataOutLength = dataOutLength ?? dataOut?.count ?? 0
    }
}

/// SCSI status codes (SAM-5 §5.3).
public struct SCSIStatus: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let good = SCSIStatus(rawValue: 0x00)
    public static let checkCondition = SCSIStatus(rawValue: 0x02)
    public static let conditionMet = SCSIStatus(rawValue: 0x04)
    public static let busy = SCSIStatus(rawValue: 0x08)
    public static let reservationConflict = SCSIStatus(rawValue: 0x18)
    public static let taskSetFull = SCSIStatus(rawValue: 0x28)
    public static let acaActive = SCSIStatus(rawValue: 0x30)
    public static let taskAborted = SCSIStatus(rawValue: 0x40)
}

/// The outcome of a command.
public struct SCSIResponse: Sendable {
    public var status: SCSIStatus
    /// Fixed-format sense data (SPC-4 §4.5.3) when `status == .checkCondition`.
    public var sense: [UInt8]
    /// Data for the initiator (already cut to the CDB's allocation length).
    public var dataIn: IOBuffer?
    /// Valid bytes in `dataIn`. The transport compares this with
    /// ExpectedDataTransferLength to report residual overflow/underflow.
    public var dataInLength: Int
    /// The task was aborted by task management: the transport sends no response (SAM-5 §7.x, TAS=0).
    public var aborted: Bool

    public init(
        status: SCSIStatus, sense: [UInt8] = [], dataIn: IOBuffer? = nil, dataInLength: Int? = nil,
        aborted: Bool = false
    ) {
        self.status = status
        self.sense = sense
        self.dataIn = dataIn
        self.dataInLength = dataInLength ?? dataIn?.count ?? 0
        self.aborted = aborted
    }
}

/// Task management functions (SAM-5 §7).
public enum TaskManagementFunction: Sendable, Hashable {
    case abortTask(taskTag: UInt32)
    case abortTaskSet
    case clearTaskSet
    case clearACA
    case logicalUnitReset
    case targetWarmReset
    case targetColdReset
    case itNexusReset
}

/// Task management outcomes (SAM-5 §7.1), mapped by the transport to its response codes.
public enum TaskManagementResult: Sendable, Hashable {
    case functionComplete
    case taskDoesNotExist
    case lunDoesNotExist
    case functionNotSupported
    case functionRejected
}
