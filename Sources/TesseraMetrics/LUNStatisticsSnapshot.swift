/// The kinds of SCSI command a LUN's statistics count apart.
public enum SCSICommandKind: Int, CaseIterable, Hashable, Sendable {
    /// READ (6), (10), (12), (16).
    case read
    /// WRITE (6), (10), (12), (16), WRITE AND VERIFY (10), (12), (16), WRITE ATOMIC (16).
    case write
    /// UNMAP.
    case unmap
    /// SYNCHRONIZE CACHE (10), (16).
    case synchronizeCache
    /// COMPARE AND WRITE.
    case compareAndWrite
    /// WRITE SAME (10), (16).
    case writeSame
    /// Every other command (INQUIRY, TEST UNIT READY, reservations, ...).
    case other

    /// The `kind` label in the exposition.
    public var label: String {
        switch self {
        case .read: "read"
        case .write: "write"
        case .unmap: "unmap"
        case .synchronizeCache: "sync"
        case .compareAndWrite: "compare_and_write"
        case .writeSame: "write_same"
        case .other: "other"
        }
    }
}

/// One logical unit's I/O figures at one moment, since the unit was opened.
public struct LUNStatisticsSnapshot: Hashable, Sendable {
    /// Commands completed, by ``SCSICommandKind`` (indexed by its raw value).
    public var commands: [UInt64]
    /// Data-In bytes of the reads that ended GOOD.
    public var bytesRead: UInt64
    /// Data-Out bytes of the writes that ended GOOD.
    public var bytesWritten: UInt64
    /// Commands that ended with CHECK CONDITION.
    public var checkConditions: UInt64
    /// How long the reads took in the target (command received to status).
    public var readLatency: LatencyHistogram.Snapshot
    /// How long the writes took in the target (Data-Out received to status).
    public var writeLatency: LatencyHistogram.Snapshot

    public init(
        commands: [UInt64] = [UInt64](repeating: 0, count: SCSICommandKind.allCases.count), bytesRead: UInt64 = 0,
        bytesWritten: UInt64 = 0, checkConditions: UInt64 = 0, readLatency: LatencyHistogram.Snapshot = .empty,
        writeLatency: LatencyHistogram.Snapshot = .empty
    ) {
        precondition(commands.count == SCSICommandKind.allCases.count, "one count per command kind")
        self.commands = commands
        self.bytesRead = bytesRead
        self.bytesWritten = bytesWritten
        self.checkConditions = checkConditions
        self.readLatency = readLatency
        self.writeLatency = writeLatency
    }

    /// The commands of one kind.
    public subscript(kind: SCSICommandKind) -> UInt64 {
        get { commands[kind.rawValue] }
        set { commands[kind.rawValue] = newValue }
    }
}
