import BlockStorage
import Foundation
import SCSITarget

@testable import ISCSITargetServer

/// A tiny in-memory SCSI disk for server tests: INQUIRY, TEST UNIT READY,
/// READ CAPACITY(10), READ(10), WRITE(10), REPORT LUNS. Records what it saw.
final class FakeSCSIDevice: SCSITaskExecutor, @unchecked Sendable {
    let blockSize = 512
    let blockCount = 2048
    private let lock = NSLock()
    private var storage: [UInt8]
    private var _commands: [SCSICommand] = []
    private var _taskManagement: [TaskManagementFunction] = []
    private var _established: [ITNexus] = []
    private var _lost: [ITNexus] = []
    private var _events: [String] = []
    /// How long a nexus loss takes to clean up (a slow SCSI layer).
    let nexusLossTime: Duration

    init(nexusLossTime: Duration = .zero) {
        self.nexusLossTime = nexusLossTime
        storage = Array(repeating: 0, count: 512 * 2048)
    }

    var commands: [SCSICommand] { lock.withLock { _commands } }
    var taskManagementCalls: [TaskManagementFunction] { lock.withLock { _taskManagement } }
    var established: [ITNexus] { lock.withLock { _established } }
    var lost: [ITNexus] { lock.withLock { _lost } }
    /// "lost", "lost done", "established" and "command <opcode>" in the order they happened.
    var events: [String] { lock.withLock { _events } }

    func execute(_ command: SCSICommand) async -> SCSIResponse {
        lock.withLock {
            _commands.append(command)
            _events.append("command \(command.cdb[0])")
        }
        let cdb = command.cdb
        func be32(_ i: Int) -> Int { Int(cdb[i]) << 24 | Int(cdb[i + 1]) << 16 | Int(cdb[i + 2]) << 8 | Int(cdb[i + 3]) }
        func be16(_ i: Int) -> Int { Int(cdb[i]) << 8 | Int(cdb[i + 1]) }
        func data(_ bytes: [UInt8], allocation: Int) -> SCSIResponse {
            SCSIResponse(status: .good, dataIn: IOBuffer(bytes: bytes.prefix(allocation)))
        }
        switch cdb[0] {
        case 0x00:
            return SCSIResponse(status: .good)
        case 0x12:
            var inquiry = [UInt8](repeating: 0x20, count: 36)
            inquiry[0] = 0
            inquiry[1] = 0
            inquiry[2] = 6
            inquiry[3] = 2
            inquiry[4] = 31
            inquiry[5] = 0
            inquiry[6] = 0
            inquiry[7] = 0x02
            for (i, c) in "TESSERA FAKEDISK".utf8.enumerated() { inquiry[8 + i] = c }
            return data(inquiry, allocation: be16(3))
        case 0x25:
            let last = UInt32(blockCount - 1)
            let bs = UInt32(blockSize)
            return data(
                [UInt8(last >> 24), UInt8(last >> 16 & 0xFF), UInt8(last >> 8 & 0xFF), UInt8(last & 0xFF),
                 UInt8(bs >> 24), UInt8(bs >> 16 & 0xFF), UInt8(bs >> 8 & 0xFF), UInt8(bs & 0xFF)], allocation: 8)
        case 0xA0:
            return data([0, 0, 0, 8, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 8), allocation: be32(6))
        case 0x28:
            let lba = be32(2)
            let count = be16(7)
            guard lba + count <= blockCount else { return Self.checkCondition(asc: 0x21) }
            let bytes = lock.withLock { Array(storage[lba * blockSize..<(lba + count) * blockSize]) }
            return SCSIResponse(status: .good, dataIn: IOBuffer(bytes: bytes))
        case 0x2A:
            let lba = be32(2)
            let count = be16(7)
            guard lba + count <= blockCount else { return Self.checkCondition(asc: 0x21) }
            let length = count * blockSize
            guard let buffer = command.dataOut, command.dataOutLength >= length else { return Self.checkCondition(asc: 0x24) }
            let bytes = buffer.array(0..<length)
            lock.withLock { storage.replaceSubrange(lba * blockSize..<lba * blockSize + length, with: bytes) }
            return SCSIResponse(status: .good)
        default:
            return Self.checkCondition(asc: 0x20)
        }
    }

    static func checkCondition(asc: UInt8) -> SCSIResponse {
        SCSIResponse(status: .checkCondition, sense: [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, asc, 0, 0, 0, 0, 0])
    }

    func taskManagement(_ function: TaskManagementFunction, lun: UInt64, nexus: ITNexus) async -> TaskManagementResult {
        lock.withLock { _taskManagement.append(function) }
        return .functionComplete
    }

    func nexusEstablished(_ nexus: ITNexus) async {
        lock.withLock {
            _established.append(nexus)
            _events.append("established")
        }
    }
    func nexusLost(_ nexus: ITNexus) async {
        lock.withLock {
            _lost.append(nexus)
            _events.append("lost")
        }
        if nexusLossTime > .zero { try? await Task.sleep(for: nexusLossTime) }
        lock.withLock { _events.append("lost done") }
    }
}
