import BlockStorage
import Dispatch
import SCSIWire

/// Entry point for a fuzzer (a libFuzzer `LLVMFuzzerTestOneInput` shim in
/// Tools/fuzz calls it): a sequence of SCSI commands, each parsed and run to
/// completion on a fresh target with two memory-backed logical units (LUN 0
/// thin and writable, LUN 1 thick and write-protected) and two initiators, so
/// reservations, unit attentions and copies between units are reachable.
///
/// Each command in the input (``Command``) is a flags byte, the CDB's length
/// and bytes, a 16-bit little-endian Data-Out length and that much data. The
/// oracle: status is GOOD, CHECK CONDITION (with 18 bytes of current fixed
/// sense), CONDITION MET or RESERVATION CONFLICT; Data-In never exceeds its
/// buffer nor what the CDB asks for, and a command that moves no data in
/// returns none.
///
/// Never traps on its own; returns false on an inconsistency.
public enum SCSITargetFuzzing {
    public static func executeCommands(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var input = bytes[...]
        var commands: [Command] = []
        while let command = Command(taking: &input) { commands.append(command) }
        guard !commands.isEmpty else { return true }
        return runBlocking { [commands] in await run(commands) }
    }

    /// One command of the input.
    struct Command: Sendable {
        /// Bit 0: initiator B; bit 1: LUN 1; bit 2: LUN 7 (none); bits 3-5: a task
        /// management function run first (0 none, else ``taskManagement``).
        var flags: UInt8
        var cdb: [UInt8]
        var data: [UInt8]

        /// Takes one command off the front of `input`; nil when it is used up.
        init?(taking input: inout UnsafeRawBufferPointer.SubSequence) {
            guard input.count >= 2 else { return nil }
            flags = input.removeFirst()
            let cdbLength = Int(input.removeFirst()) % 33
            cdb = Array(input.prefix(cdbLength))
            input = input.dropFirst(cdbLength)
            let length = input.prefix(2).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
            input = input.dropFirst(2)
            data = Array(input.prefix(length))
            input = input.dropFirst(length)
        }

        var taskManagement: TaskManagementFunction? {
            switch (flags >> 3) & 7 {
            case 1: .abortTaskSet
            case 2: .clearTaskSet
            case 3: .logicalUnitReset
            case 4: .targetWarmReset
            case 5: .itNexusReset
            case 6: .clearACA
            case 7: .abortTask(taskTag: 1)
            default: nil
            }
        }
    }

    static let nexuses = [
        ITNexus(initiatorName: "iqn.2026-01.dev.tessera:a", isid: 1, targetName: "iqn.2026-01.dev.tessera:t", portalGroupTag: 1),
        ITNexus(initiatorName: "iqn.2026-01.dev.tessera:b", isid: 2, targetName: "iqn.2026-01.dev.tessera:t", portalGroupTag: 2),
    ]

    static func makeTarget() -> SCSITargetDevice {
        let geometry = BlockGeometry(blockSize: 512, blockCount: 128)
        let thin = LogicalUnit(
            configuration: LogicalUnitConfiguration(serial: "FUZZ0", identifier: 0x10, maximumTransferBytes: 64 << 10),
            device: MemoryBlockDevice(geometry: geometry))
        let thick = LogicalUnit(
            configuration: LogicalUnitConfiguration(
                serial: "FUZZ1", identifier: 0x11, writeProtected: true, thin: false, maximumTransferBytes: 64 << 10),
            device: MemoryBlockDevice(geometry: geometry))
        return SCSITargetDevice(logicalUnits: [0: thin, 1: thick])
    }

    static func run(_ commands: [Command]) async -> Bool {
        let target = makeTarget()
        for (index, command) in commands.enumerated() {
            let nexus = nexuses[Int(command.flags & 1)]
            let lun = LUNAddress.encode(command.flags & 4 != 0 ? 7 : UInt16((command.flags >> 1) & 1))
            if let function = command.taskManagement {
                _ = await target.taskManagement(function, lun: lun, nexus: nexus)
            }
            var cdb = command.cdb
            // SANITIZE without IMMED waits for the background overwrite in 20 ms steps: keep it immediate.
            if cdb.first == 0x48, cdb.count > 1 { cdb[1] |= 0x80 }
            let scsi = SCSICommand(
                lun: lun, cdb: cdb, nexus: nexus, taskTag: UInt32(index + 1),
                expectedDataTransferLength: UInt32(command.data.count),
                dataOut: command.data.isEmpty ? nil : IOBuffer(bytes: command.data), dataOutLength: command.data.count)
            let response = await target.execute(scsi)
            guard wellFormed(response, transfer: target.expectedDataTransfer(for: scsi)) else { return false }
        }
        return true
    }

    static func wellFormed(_ response: SCSIResponse, transfer: DataTransfer?) -> Bool {
        guard !response.aborted, response.dataInLength >= 0, response.dataInLength <= (response.dataIn?.count ?? 0)
        else { return false }
        switch response.status {
        case .checkCondition:
            guard response.sense.count == 18, response.sense[0] & 0x7F == 0x70 else { return false }
        case .good, .conditionMet, .reservationConflict:
            break
        default:
            return false
        }
        switch transfer {
        case .dataIn(let length)?: return UInt64(response.dataInLength) <= length
        case .dataOut?, .none?: return response.dataInLength == 0
        case nil: return true
        }
    }

    /// Runs `body` on the cooperative pool and waits for it: libFuzzer calls
    /// the entry on its own thread, outside any task.
    static func runBlocking(_ body: @escaping @Sendable () async -> Bool) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox()
        Task.detached {
            result.value = await body()
            done.signal()
        }
        done.wait()
        return result.value
    }

    /// The result handed from the task to the waiting thread (the semaphore orders the two).
    final class ResultBox: @unchecked Sendable {
        var value = false
    }
}
