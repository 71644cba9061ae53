import ISCSIWire
import NIOCore
import Testing

@testable import ISCSISession

// Transcripts of what a host can make the session machine hold: write data
// bounded by the CDB, immediate commands bounded per session, NOP echo bounded.

private func bytes(_ count: Int) -> ByteBuffer {
    ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0) })
}

/// WRITE(10) of `blocks` blocks (the test oracle reads the transfer length at bytes 7-8).
private func write10(
    itt: UInt32, cmdSN: UInt32, edtl: UInt32, blocks: UInt16, immediateData: ByteBuffer = ByteBuffer(),
    final: Bool = true, immediate: Bool = false
) -> ISCSIPDU {
    var cdb = [UInt8](repeating: 0, count: 16)
    cdb[0] = 0x2A
    cdb[7] = UInt8(blocks >> 8)
    cdb[8] = UInt8(blocks & 0xFF)
    return .scsiCommand(
        SCSICommandPDU(
            immediate: immediate, final: final, read: false, write: true, attribute: 1, lun: 0, initiatorTaskTag: itt,
            expectedDataTransferLength: edtl, cmdSN: cmdSN, expStatSN: 0, cdb: cdb, dataSegment: immediateData))
}

private func read10(itt: UInt32, cmdSN: UInt32, immediate: Bool = false) -> ISCSIPDU {
    .scsiCommand(
        SCSICommandPDU(
            immediate: immediate, final: true, read: true, write: false, attribute: 1, lun: 0, initiatorTaskTag: itt,
            expectedDataTransferLength: 512, cmdSN: cmdSN, expStatSN: 0, cdb: [0x28] + Array(repeating: 0, count: 15),
            dataSegment: ByteBuffer()))
}

private func dataOut(itt: UInt32, ttt: UInt32, dataSN: UInt32 = 0, offset: UInt32, data: ByteBuffer, final: Bool = true)
    -> ISCSIPDU
{
    .dataOut(
        DataOutPDU(
            final: final, lun: 0, initiatorTaskTag: itt, targetTransferTag: ttt, expStatSN: 0, dataSN: dataSN,
            bufferOffset: offset, dataSegment: data))
}

/// The SCSI layer's answer for WRITE(10) on a 512-byte-block LUN: blocks × 512.
private let write10Length: SessionStateMachine.DataOutLengthOracle = { _, cdb in
    cdb[0] == 0x2A ? DataOutExpectation(length: (Int(cdb[7]) << 8 | Int(cdb[8])) * 512, maximum: 8 << 20) : nil
}

private func machine(_ parameters: SessionParameters = SessionParameters(nopInInterval: nil)) -> SessionStateMachine {
    SessionStateMachine(parameters: parameters, expCmdSN: 10, statSN: 100, dataOutLength: write10Length)
}

private extension SessionAction {
    var executed: SessionCommand? {
        if case .execute(let command) = self { return command }
        return nil
    }
    var r2t: R2TPDU? {
        if case .send(.r2t(let r2t)) = self { return r2t }
        return nil
    }
    var response: SCSIResponsePDU? {
        if case .send(.scsiResponse(let pdu)) = self { return pdu }
        return nil
    }
    var rejectReason: UInt8? {
        if case .send(.reject(let pdu)) = self { return pdu.reason }
        return nil
    }
    var nopIn: NOPInPDU? {
        if case .send(.nopIn(let pdu)) = self { return pdu }
        return nil
    }
}

@Suite("WRITE data bounded by the CDB (SAM-5 §5.4.3, RFC 7143 §11.4.5.2)")
struct WriteBoundedByCDBTests {
    /// A host announcing 1 GiB for an 8-block WRITE gets R2Ts for 4096 bytes and an underflow residual.
    @Test func edtlFarAboveTheCDBSolicitsOnlyTheCDBsLength() throws {
        let p = SessionParameters(
            initialR2T: true, immediateData: false, maxBurstLength: 262_144, maxOutstandingR2T: 4, nopInInterval: nil)
        var m = machine(p)
        let edtl: UInt32 = 1 << 30
        let r2ts = m.receive(write10(itt: 1, cmdSN: 10, edtl: edtl, blocks: 8)).compactMap(\.r2t)
        #expect(r2ts.count == 1)
        #expect(r2ts.first?.bufferOffset == 0)
        #expect(r2ts.first?.desiredDataTransferLength == 4096)
        let done = m.receive(dataOut(itt: 1, ttt: r2ts[0].targetTransferTag, offset: 0, data: bytes(4096)))
        let command = try #require(done.first?.executed)
        #expect(command.dataOutLength == 4096)
        #expect(command.expectedDataTransferLength == edtl)
        let response = try #require(m.commandCompleted(command, SessionCommandResult(status: 0)).first?.response)
        #expect(response.residualUnderflow)
        #expect(!response.residualOverflow)
        #expect(response.residualCount == edtl - 4096)
        #expect(response.expDataSN == 1)
    }

    /// Unsolicited data the host may send up to EDTL (RFC 7143 §13.14) is accepted, but only the CDB's part is kept.
    @Test func unsolicitedDataBeyondTheCDBIsDropped() throws {
        let p = SessionParameters(initialR2T: false, immediateData: true, firstBurstLength: 16384, nopInInterval: nil)
        var m = machine(p)
        #expect(
            m.receive(write10(itt: 1, cmdSN: 10, edtl: 16384, blocks: 2, immediateData: bytes(4096), final: false))
                .compactMap(\.executed).isEmpty)
        let done = m.receive(dataOut(itt: 1, ttt: 0xFFFF_FFFF, offset: 4096, data: bytes(12288)))
        let command = try #require(done.compactMap(\.executed).first)
        #expect(done.compactMap(\.r2t).isEmpty, "nothing left to solicit")
        #expect(command.dataOutLength == 1024)
        #expect(command.dataOut.map(\.bytes.readableBytes).reduce(0, +) == 1024)
        let response = try #require(m.commandCompleted(command, SessionCommandResult(status: 0)).first?.response)
        #expect(response.residualUnderflow)
        #expect(response.residualCount == 16384 - 1024)
    }

    /// A CDB wanting more than EDTL: the target solicits EDTL and reports the overflow.
    @Test func edtlBelowTheCDBIsAnOverflow() throws {
        let p = SessionParameters(initialR2T: true, immediateData: false, nopInInterval: nil)
        var m = machine(p)
        let r2t = try #require(m.receive(write10(itt: 1, cmdSN: 10, edtl: 2048, blocks: 8)).compactMap(\.r2t).first)
        #expect(r2t.desiredDataTransferLength == 2048)
        let command = try #require(
            m.receive(dataOut(itt: 1, ttt: r2t.targetTransferTag, offset: 0, data: bytes(2048))).first?.executed)
        let response = try #require(m.commandCompleted(command, SessionCommandResult(status: 0)).first?.response)
        #expect(response.residualOverflow)
        #expect(response.residualCount == 4096 - 2048)
    }

    /// A zero-block WRITE with EDTL set: nothing solicited, it runs at once, all of EDTL is residual.
    @Test func zeroLengthCDBSolicitsNothing() throws {
        let p = SessionParameters(initialR2T: true, immediateData: false, nopInInterval: nil)
        var m = machine(p)
        let actions = m.receive(write10(itt: 1, cmdSN: 10, edtl: 65536, blocks: 0))
        #expect(actions.compactMap(\.r2t).isEmpty)
        let command = try #require(actions.first?.executed)
        #expect(command.dataOutLength == 0)
        let response = try #require(m.commandCompleted(command, SessionCommandResult(status: 0)).first?.response)
        #expect(response.residualUnderflow)
        #expect(response.residualCount == 65536)
    }

    /// A WRITE beyond the LUN's MAXIMUM TRANSFER LENGTH fails whatever its data: none is solicited.
    @Test func writeBeyondTheMaximumTransferSolicitsNothing() throws {
        let p = SessionParameters(initialR2T: true, immediateData: false, nopInInterval: nil)
        var m = machine(p)
        let edtl = UInt32(65535 * 512)
        let actions = m.receive(write10(itt: 1, cmdSN: 10, edtl: edtl, blocks: 65535))
        #expect(actions.compactMap(\.r2t).isEmpty)
        let command = try #require(actions.first?.executed)
        #expect(command.dataOutLength == 0)
        // The SCSI layer refuses it (INVALID FIELD IN CDB); EDTL is the CDB's length: no residual.
        let refused = SessionCommandResult(
            status: 0x02, sense: [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0])
        let response = try #require(m.commandCompleted(command, refused).first?.response)
        #expect(response.status == 0x02)
        #expect(response.residualOverflow == false)
        #expect(response.residualCount == 0)
    }

    /// Without an oracle (the SCSI layer does not know the CDB) EDTL is all there is: as before.
    @Test func unknownCDBFallsBackToEDTL() throws {
        let p = SessionParameters(initialR2T: true, immediateData: false, maxBurstLength: 8192, nopInInterval: nil)
        var m = SessionStateMachine(parameters: p, expCmdSN: 10, statSN: 100)
        let r2t = try #require(m.receive(write10(itt: 1, cmdSN: 10, edtl: 8192, blocks: 1)).compactMap(\.r2t).first)
        #expect(r2t.desiredDataTransferLength == 8192)
    }

    /// A command beyond MaxCmdSN carrying immediate data is dropped, not held (RFC 7143 §4.2.2.1).
    @Test func commandBeyondTheWindowHoldsNothing() {
        var m = machine(SessionParameters(immediateData: true, queueDepth: 4, nopInInterval: nil))
        let beyond = m.maxCmdSN &+ 1
        #expect(m.receive(write10(itt: 1, cmdSN: beyond, edtl: 4096, blocks: 8, immediateData: bytes(4096))).isEmpty)
        #expect(m.activeTaskCount == 0)
        // The window still starts at ExpCmdSN: the next in-order command runs.
        #expect(m.receive(read10(itt: 2, cmdSN: 10)).first?.executed != nil)
    }
}

@Suite("Solicited write data bounded per session")
struct SolicitedWriteBudgetTests {
    /// 8 KiB allowed: A (8 KiB) gets R2Ts, B and C wait in order until A ends, then both
    /// fit; a write larger than the bound alone still runs.
    @Test func writesWaitForTheirShareInOrder() throws {
        let p = SessionParameters(
            initialR2T: true, immediateData: false, maxBurstLength: 4096, maxOutstandingR2T: 1, nopInInterval: nil,
            maxSolicitedWriteBytes: 8192)
        var m = machine(p)
        let a = try #require(m.receive(write10(itt: 1, cmdSN: 10, edtl: 8192, blocks: 16)).compactMap(\.r2t).first)
        #expect(m.receive(write10(itt: 2, cmdSN: 11, edtl: 4096, blocks: 8)).compactMap(\.r2t).isEmpty)
        #expect(m.receive(write10(itt: 3, cmdSN: 12, edtl: 512, blocks: 1)).compactMap(\.r2t).isEmpty)
        #expect(m.solicitedWriteBytes == 8192)
        let a2 = try #require(
            m.receive(dataOut(itt: 1, ttt: a.targetTransferTag, offset: 0, data: bytes(4096))).compactMap(\.r2t).first)
        #expect(a2.bufferOffset == 4096)
        let executed = m.receive(dataOut(itt: 1, ttt: a2.targetTransferTag, offset: 4096, data: bytes(4096)))
        let command = try #require(executed.compactMap(\.executed).first)
        #expect(executed.compactMap(\.r2t).isEmpty, "A holds its share until it ends")
        let after = m.commandCompleted(command, SessionCommandResult(status: 0))
        #expect(after.first?.response?.initiatorTaskTag == 1)
        #expect(after.compactMap(\.r2t).map(\.initiatorTaskTag) == [2, 3])
        #expect(m.solicitedWriteBytes == 4096 + 512)
    }

    @Test func aWriteAloneAboveTheBoundRuns() throws {
        let p = SessionParameters(
            initialR2T: true, immediateData: false, nopInInterval: nil, maxSolicitedWriteBytes: 4096)
        var m = machine(p)
        let r2t = try #require(m.receive(write10(itt: 1, cmdSN: 10, edtl: 65536, blocks: 128)).compactMap(\.r2t).first)
        #expect(r2t.desiredDataTransferLength == 65536)
    }

    /// An aborted waiting write leaves the queue; one aborted while soliciting gives its share back.
    @Test func abortedWritesGiveTheirShareBack() throws {
        let p = SessionParameters(
            initialR2T: true, immediateData: false, nopInInterval: nil, maxSolicitedWriteBytes: 8192)
        var m = machine(p)
        #expect(m.receive(write10(itt: 1, cmdSN: 10, edtl: 8192, blocks: 16)).compactMap(\.r2t).count == 1)
        #expect(m.receive(write10(itt: 2, cmdSN: 11, edtl: 8192, blocks: 16)).compactMap(\.r2t).isEmpty)
        let abort = ISCSIPDU.taskManagementRequest(
            TaskManagementRequestPDU(
                immediate: true, function: 0x80 | TaskManagementFunctionCode.abortTask.rawValue, lun: 0,
                initiatorTaskTag: 9, referencedTaskTag: 1, cmdSN: 12, expStatSN: 0))
        let actions = m.receive(abort)
        #expect(actions.compactMap(\.r2t).map(\.initiatorTaskTag) == [2], "task 2 gets the share task 1 held")
        #expect(m.solicitedWriteBytes == 8192)
    }
}

@Suite("Immediate commands bounded per session (RFC 7143 §11.17.1 reason 0x06)")
struct ImmediateCommandBoundTests {
    @Test func oneOverTheBoundIsRejectedAndTheSessionGoesOn() throws {
        var m = machine(SessionParameters(nopInInterval: nil, maxImmediateCommands: 2))
        let first = try #require(m.receive(read10(itt: 1, cmdSN: 10, immediate: true)).first?.executed)
        #expect(m.receive(read10(itt: 2, cmdSN: 10, immediate: true)).first?.executed != nil)
        let third = m.receive(read10(itt: 3, cmdSN: 10, immediate: true))
        #expect(third.count == 1)
        #expect(third.first?.rejectReason == RejectReason.immediateCommandReject)
        #expect(m.immediateCommands == 2)
        // Non-immediate commands use the window, not this bound.
        #expect(m.receive(read10(itt: 4, cmdSN: 10)).first?.executed != nil)
        // A completion frees a slot.
        _ = m.commandCompleted(first, SessionCommandResult(status: 0, dataIn: bytes(512)))
        #expect(m.receive(read10(itt: 5, cmdSN: 11, immediate: true)).first?.executed != nil)
    }

    /// A rejected immediate write's data is not kept: no task, no R2T.
    @Test func rejectedImmediateWriteKeepsNoData() {
        let p = SessionParameters(initialR2T: true, immediateData: true, nopInInterval: nil, maxImmediateCommands: 1)
        var m = machine(p)
        #expect(
            m.receive(write10(itt: 1, cmdSN: 10, edtl: 8192, blocks: 16, immediateData: bytes(1024), immediate: true))
                .compactMap(\.r2t).count == 1)
        let rejected = m.receive(
            write10(itt: 2, cmdSN: 10, edtl: 8192, blocks: 16, immediateData: bytes(1024), immediate: true))
        #expect(rejected.map(\.rejectReason) == [RejectReason.immediateCommandReject])
        #expect(m.activeTaskCount == 1)
    }

    /// Unsolicited data stays within the window's worth, (MaxCmdSN − ExpCmdSN + 1) × FirstBurstLength:
    /// an immediate write gets only what the windowed commands leave.
    @Test func immediateWritesShareTheWindowsUnsolicitedBudget() throws {
        let p = SessionParameters(
            initialR2T: false, immediateData: true, firstBurstLength: 4096, queueDepth: 2, nopInInterval: nil)
        var m = machine(p)
        // A windowed write waiting for its unsolicited Data-Out: one FirstBurstLength.
        #expect(
            m.receive(write10(itt: 1, cmdSN: 10, edtl: 8192, blocks: 16, final: false)).compactMap(\.rejectReason)
                .isEmpty)
        // An immediate write takes the other one.
        let second = m.receive(
            write10(itt: 2, cmdSN: 11, edtl: 4096, blocks: 8, immediateData: bytes(4096), immediate: true))
        let executed = try #require(second.compactMap(\.executed).first)
        // A third would go past 2 × 4096: refused, and nothing of it is kept.
        let third = m.receive(
            write10(itt: 3, cmdSN: 11, edtl: 4096, blocks: 8, immediateData: bytes(4096), immediate: true))
        #expect(third.map(\.rejectReason) == [RejectReason.immediateCommandReject])
        #expect(m.immediateUnsolicitedBytes == 4096)
        // An immediate command without write data is not concerned.
        #expect(m.receive(read10(itt: 4, cmdSN: 11, immediate: true)).first?.executed != nil)
        // Once the immediate write ends, its share is free again.
        _ = m.commandCompleted(executed, SessionCommandResult(status: 0))
        #expect(m.immediateUnsolicitedBytes == 0)
        let again = m.receive(
            write10(itt: 5, cmdSN: 11, edtl: 4096, blocks: 8, immediateData: bytes(4096), immediate: true))
        #expect(again.compactMap(\.executed).count == 1)
    }

    /// Immediate TMFs count too, and are given back when their response goes.
    @Test func immediateTaskManagementCounts() {
        var m = machine(SessionParameters(nopInInterval: nil, maxImmediateCommands: 1))
        let tmf = ISCSIPDU.taskManagementRequest(
            TaskManagementRequestPDU(
                immediate: true, function: 0x80 | TaskManagementFunctionCode.logicalUnitReset.rawValue, lun: 0,
                initiatorTaskTag: 7, referencedTaskTag: 0xFFFF_FFFF, cmdSN: 10, expStatSN: 0, refCmdSN: 0, expDataSN: 0)
        )
        #expect(m.receive(tmf).count == 1)
        #expect(m.immediateCommands == 1)
        #expect(
            m.receive(read10(itt: 1, cmdSN: 10, immediate: true)).first?.rejectReason
                == RejectReason.immediateCommandReject)
        _ = m.taskManagementCompleted(initiatorTaskTag: 7, response: .functionComplete)
        #expect(m.immediateCommands == 0)
        #expect(m.receive(read10(itt: 1, cmdSN: 10, immediate: true)).first?.executed != nil)
    }

    /// NOP-Outs are answered at once: they hold nothing and are never refused by the bound.
    @Test func nopOutIsNotCounted() {
        var m = machine(SessionParameters(nopInInterval: nil, maxImmediateCommands: 1))
        _ = m.receive(read10(itt: 1, cmdSN: 10, immediate: true))
        let nop = ISCSIPDU.nopOut(
            NOPOutPDU(
                immediate: true, lun: 0, initiatorTaskTag: 9, targetTransferTag: 0xFFFF_FFFF, cmdSN: 10, expStatSN: 0))
        #expect(m.receive(nop).first?.nopIn?.initiatorTaskTag == 9)
    }
}

@Suite("NOP-Out echo bounded (RFC 7143 §11.18.5, §13.12)")
struct NOPEchoBoundTests {
    @Test func echoIsCutAtTheInitiatorsMaxRecvDataSegmentLength() throws {
        var m = machine(
            SessionParameters(
                initiatorMaxRecvDataSegmentLength: 512, targetMaxRecvDataSegmentLength: 65536, nopInInterval: nil))
        let nop = ISCSIPDU.nopOut(
            NOPOutPDU(
                immediate: true, lun: 0, initiatorTaskTag: 9, targetTransferTag: 0xFFFF_FFFF, cmdSN: 10, expStatSN: 0,
                dataSegment: bytes(4096)))
        let echo = try #require(m.receive(nop).first?.nopIn)
        #expect(echo.dataSegment == bytes(512))
    }
}
