import Synchronization
import TesseraMetrics

/// One logical unit's I/O counters: commands by kind, bytes, CHECK
/// CONDITIONs and read and write latency. ``SCSITargetDevice/execute(_:)``
/// records every command it ran on the unit in one call; recording is a few
/// relaxed atomic adds, with no lock and no allocation, so any number of
/// connections' commands count at once. The admin API reads a
/// ``LUNStatisticsSnapshot``.
public final class LUNStatistics: Sendable {
    private let commands: InlineArray<7, Atomic<UInt64>>
    private let bytesRead = Atomic<UInt64>(0)
    private let bytesWritten = Atomic<UInt64>(0)
    private let checkConditions = Atomic<UInt64>(0)
    /// Reads, from the command reaching the target to its status.
    public let readLatency = LatencyHistogram()
    /// Writes, from the command (with its Data-Out) reaching the target to its status.
    public let writeLatency = LatencyHistogram()

    public init() {
        precondition(SCSICommandKind.allCases.count == 7, "one counter per command kind")
        commands = InlineArray { _ in Atomic(0) }
    }

    /// Counts one command that ran on the unit: its kind from the CDB's
    /// operation code, its data bytes when it ended GOOD, a CHECK CONDITION,
    /// and for a read or write the time since `start`.
    @inline(__always)
    func record(_ command: SCSICommand, _ response: SCSIResponse, since start: ContinuousClock.Instant) {
        let kind = Self.kind(ofOperationCode: command.cdb.first ?? 0)
        commands[kind.rawValue].wrappingAdd(1, ordering: .relaxed)
        if response.status == .checkCondition { checkConditions.wrappingAdd(1, ordering: .relaxed) }
        switch kind {
        case .read:
            if response.status == .good {
                bytesRead.wrappingAdd(UInt64(response.dataInLength), ordering: .relaxed)
            }
            readLatency.record(since: start)
        case .write:
            if response.status == .good {
                bytesWritten.wrappingAdd(UInt64(command.dataOutLength), ordering: .relaxed)
            }
            writeLatency.record(since: start)
        default:
            break
        }
    }

    /// The kind an operation code counts as (SBC-3 §5 and SPC-4 §6 codes).
    @inline(__always)
    static func kind(ofOperationCode code: UInt8) -> SCSICommandKind {
        switch code {
        case 0x08, 0x28, 0xA8, 0x88: .read
        case 0x0A, 0x2A, 0xAA, 0x8A, 0x2E, 0xAE, 0x8E, 0x9C: .write
        case 0x42: .unmap
        case 0x35, 0x91: .synchronizeCache
        case 0x89: .compareAndWrite
        case 0x41, 0x93: .writeSame
        default: .other
        }
    }

    /// The counters as they are now.
    public func snapshot() -> LUNStatisticsSnapshot {
        LUNStatisticsSnapshot(
            commands: SCSICommandKind.allCases.map { commands[$0.rawValue].load(ordering: .relaxed) },
            bytesRead: bytesRead.load(ordering: .relaxed), bytesWritten: bytesWritten.load(ordering: .relaxed),
            checkConditions: checkConditions.load(ordering: .relaxed), readLatency: readLatency.snapshot(),
            writeLatency: writeLatency.snapshot())
    }
}
