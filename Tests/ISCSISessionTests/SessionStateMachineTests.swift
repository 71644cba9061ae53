import ISCSIWire
import NIOCore
import Testing

@testable import ISCSISession

// Transcripts of the full-feature session machine: PDUs in, actions out.

private func bytes(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
    ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 &+ Int(seed)) })
}

private func read(itt: UInt32, cmdSN: UInt32, length: UInt32, immediate: Bool = false, lun: UInt64 = 0) -> ISCSIPDU {
    .scsiCommand(
        SCSICommandPDU(
            immediate: immediate, final: true, read: true, write: false, attribute: 1, lun: lun, initiatorTaskTag: itt,
            expectedDataTransferLength: length, cmdSN: cmdSN, expStatSN: 0, cdb: [0x28] + Array(repeating: 0, count: 15),
            dataSegment: ByteBuffer()))
}

private func write(itt: UInt32, cmdSN: UInt32, length: UInt32, immediateData: ByteBuffer = ByteBuffer(), final: Bool = true) -> ISCSIPDU {
    .scsiCommand(
        SCSICommandPDU(
            immediate: false, final: final, read: false, write: true, attribute: 1, lun: 0, initiatorTaskTag: itt,
            expectedDataTransferLength: length, cmdSN: cmdSN, expStatSN: 0, cdb: [0x2A] + Array(repeating: 0, count: 15),
            dataSegment: immediateData))
}

private func dataOut(itt: UInt32, ttt: UInt32, dataSN: UInt32, offset: UInt32, data: ByteBuffer, final: Bool) -> ISCSIPDU {
    .dataOut(
        DataOutPDU(
            final: final, lun: 0, initiatorTaskTag: itt, targetTransferTag: ttt, expStatSN: 0, dataSN: dataSN,
            bufferOffset: offset, dataSegment: data))
}

private extension Array where Element == SessionAction {
    /// The actions without the task-arrival notices (what goes on the wire and to the SCSI layer).
    var withoutArrivals: [SessionAction] { filter { $0.arrivedTag == nil } }
}

private extension SessionAction {
    var arrivedTag: UInt32? {
        if case .taskArrived(let tag, _) = self { return tag }
        return nil
    }
    var executed: SessionCommand? {
        if case .execute(let command) = self { return command }
        return nil
    }
    var sent: ISCSIPDU? {
        if case .send(let pdu) = self { return pdu }
        return nil
    }
    var closed: SessionCloseReason? {
        if case .close(let reason) = self { return reason }
        return nil
    }
    var r2t: R2TPDU? {
        if case .send(.r2t(let r2t)) = self { return r2t }
        return nil
    }
    var dataIn: DataInPDU? {
        if case .send(.dataIn(let pdu)) = self { return pdu }
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
}

private func machine(_ parameters: SessionParameters = SessionParameters(nopInInterval: nil), expCmdSN: UInt32 = 10) -> SessionStateMachine {
    SessionStateMachine(parameters: parameters, expCmdSN: expCmdSN, statSN: 100)
}

@Suite("CmdSN window (RFC 7143 §4.2.2.1)")
struct CommandWindowTests {
    @Test func inOrderCommandExecutesAndAdvancesExpCmdSN() {
        var m = machine()
        let actions = m.receive(read(itt: 1, cmdSN: 10, length: 512))
        #expect(actions.count == 1)
        #expect(actions[0].executed?.initiatorTaskTag == 1)
        #expect(m.expCmdSN == 11)
        #expect(m.maxCmdSN == 10 &+ 127)
    }

    /// libiscsi iSCSIcmdsn.iSCSICmdSnTooHigh / TooLow: silently ignored.
    @Test(arguments: [
        (UInt32(10 + 128), "MaxCmdSN + 1"), (UInt32(9), "ExpCmdSN - 1"), (UInt32(10) &- 1000, "far below"),
        (UInt32(10) &+ 0x8000_0000, "half the space away"),
    ])
    func outOfWindowCommandIsIgnored(cmdSN: UInt32, _ label: String) {
        var m = machine()
        #expect(m.receive(read(itt: 1, cmdSN: cmdSN, length: 512)).isEmpty, "\(label)")
        #expect(m.expCmdSN == 10)
        // The window still works afterwards.
        #expect(m.receive(read(itt: 2, cmdSN: 10, length: 512)).first?.executed?.initiatorTaskTag == 2)
    }

    @Test func commandsAheadOfExpCmdSNWaitForTheGap() {
        var m = machine()
        #expect(m.receive(read(itt: 2, cmdSN: 11, length: 512)).isEmpty)
        #expect(m.receive(read(itt: 3, cmdSN: 12, length: 512)).isEmpty)
        let actions = m.receive(read(itt: 1, cmdSN: 10, length: 512))
        #expect(actions.compactMap(\.executed).map(\.initiatorTaskTag) == [1, 2, 3])
        #expect(m.expCmdSN == 13)
        // A duplicate of a delivered command is now below ExpCmdSN.
        #expect(m.receive(read(itt: 9, cmdSN: 11, length: 512)).isEmpty)
    }

    @Test func immediateCommandBypassesOrderingAndKeepsExpCmdSN() {
        var m = machine()
        let actions = m.receive(read(itt: 7, cmdSN: 10, length: 512, immediate: true))
        #expect(actions.first?.executed?.initiatorTaskTag == 7)
        #expect(m.expCmdSN == 10)
        let maxBefore = m.maxCmdSN
        _ = m.commandCompleted(actions[0].executed!, SessionCommandResult(status: 0))
        #expect(m.maxCmdSN == maxBefore)
    }

    @Test func windowClosesAtQueueDepthAndReopensOnCompletion() {
        var m = machine(SessionParameters(queueDepth: 2, nopInInterval: nil))
        #expect(m.maxCmdSN == 11)
        let first = m.receive(read(itt: 1, cmdSN: 10, length: 0))[0].executed!
        _ = m.receive(read(itt: 2, cmdSN: 11, length: 0))
        #expect(m.expCmdSN == 12)
        #expect(m.maxCmdSN == 11)  // closed: MaxCmdSN == ExpCmdSN - 1
        #expect(m.receive(read(itt: 3, cmdSN: 12, length: 0)).isEmpty)
        let completion = m.commandCompleted(first, SessionCommandResult(status: 0))
        #expect(m.maxCmdSN == 12)
        #expect(completion.first?.response?.maxCmdSN == 12)
        #expect(completion.first?.response?.expCmdSN == 12)
    }

    @Test func statSNAdvancesOncePerStatus() {
        var m = machine()
        let a = m.receive(read(itt: 1, cmdSN: 10, length: 0))[0].executed!
        let b = m.receive(read(itt: 2, cmdSN: 11, length: 0))[0].executed!
        // Completed out of order: StatSN follows the order of responses.
        #expect(m.commandCompleted(b, SessionCommandResult(status: 0)).first?.response?.statSN == 100)
        #expect(m.commandCompleted(a, SessionCommandResult(status: 0)).first?.response?.statSN == 101)
    }

    @Test func reusedTaskTagIsRejected() {
        var m = machine()
        _ = m.receive(read(itt: 1, cmdSN: 10, length: 0))
        let actions = m.receive(read(itt: 1, cmdSN: 11, length: 0))
        #expect(actions.first?.rejectReason == RejectReason.taskInProgress)
    }
}

@Suite("Writes: immediate data, unsolicited Data-Out, R2T (RFC 7143 §4.2.5)")
struct WriteTests {
    @Test func immediateDataCoveringTheWholeWriteExecutesAtOnce() {
        var m = machine()
        let actions = m.receive(write(itt: 1, cmdSN: 10, length: 4096, immediateData: bytes(4096)))
        let command = actions.first?.executed
        #expect(command?.dataOutLength == 4096)
        #expect(command?.dataOut == [DataOutSegment(offset: 0, bytes: bytes(4096))])
    }

    @Test func initialR2TWithoutImmediateDataSolicitsEverything() throws {
        let p = SessionParameters(initialR2T: true, immediateData: false, maxBurstLength: 4096, maxOutstandingR2T: 2, nopInInterval: nil)
        var m = machine(p)
        let first = m.receive(write(itt: 5, cmdSN: 10, length: 10000))
        let r2ts = first.compactMap(\.r2t)
        #expect(r2ts.map(\.bufferOffset) == [0, 4096])
        #expect(r2ts.map(\.desiredDataTransferLength) == [4096, 4096])
        #expect(r2ts.map(\.r2tSN) == [0, 1])
        #expect(r2ts.allSatisfy { $0.statSN == 100 })  // R2T does not advance StatSN
        // First R2T: two Data-Out PDUs of 2048.
        #expect(m.receive(dataOut(itt: 5, ttt: r2ts[0].targetTransferTag, dataSN: 0, offset: 0, data: bytes(2048), final: false)).isEmpty)
        let afterFirst = m.receive(dataOut(itt: 5, ttt: r2ts[0].targetTransferTag, dataSN: 1, offset: 2048, data: bytes(2048), final: true))
        let third = try #require(afterFirst.first?.r2t)
        #expect(third.bufferOffset == 8192)
        #expect(third.desiredDataTransferLength == 10000 - 8192)
        #expect(third.r2tSN == 2)
        #expect(m.receive(dataOut(itt: 5, ttt: r2ts[1].targetTransferTag, dataSN: 0, offset: 4096, data: bytes(4096), final: true)).isEmpty)
        let done = m.receive(dataOut(itt: 5, ttt: third.targetTransferTag, dataSN: 0, offset: 8192, data: bytes(1808), final: true))
        let command = try #require(done.first?.executed)
        #expect(command.dataOutLength == 10000)
        #expect(command.dataOut.map(\.offset) == [0, 2048, 4096, 8192])
        // ExpDataSN of the response counts the R2Ts.
        #expect(m.commandCompleted(command, SessionCommandResult(status: 0)).first?.response?.expDataSN == 3)
    }

    @Test func immediateDataThenR2TForTheRestWithInitialR2T() throws {
        let p = SessionParameters(initialR2T: true, immediateData: true, nopInInterval: nil)
        var m = machine(p)
        let actions = m.receive(write(itt: 1, cmdSN: 10, length: 8192, immediateData: bytes(1024)))
        #expect(actions.first?.arrivedTag == 1, "the task exists before its data is in")
        let r2t = try #require(actions.withoutArrivals.first?.r2t)
        #expect(r2t.bufferOffset == 1024)
        #expect(r2t.desiredDataTransferLength == 7168)
        let done = m.receive(dataOut(itt: 1, ttt: r2t.targetTransferTag, dataSN: 0, offset: 1024, data: bytes(7168), final: true))
        #expect(done.first?.executed?.dataOutLength == 8192)
    }

    @Test func unsolicitedDataOutUpToFirstBurstThenR2T() throws {
        let p = SessionParameters(initialR2T: false, immediateData: true, firstBurstLength: 4096, nopInInterval: nil)
        var m = machine(p)
        #expect(m.receive(write(itt: 1, cmdSN: 10, length: 16384, immediateData: bytes(1024), final: false)).withoutArrivals.isEmpty)
        let afterUnsolicited = m.receive(dataOut(itt: 1, ttt: 0xFFFF_FFFF, dataSN: 0, offset: 1024, data: bytes(3072), final: true))
        let r2t = try #require(afterUnsolicited.first?.r2t)
        #expect(r2t.bufferOffset == 4096)
        #expect(r2t.desiredDataTransferLength == 12288)
        let done = m.receive(dataOut(itt: 1, ttt: r2t.targetTransferTag, dataSN: 0, offset: 4096, data: bytes(12288), final: true))
        #expect(done.first?.executed?.dataOutLength == 16384)
    }

    @Test func commandFinalBitMeansNoUnsolicitedDataFollows() throws {
        let p = SessionParameters(initialR2T: false, immediateData: true, firstBurstLength: 65536, nopInInterval: nil)
        var m = machine(p)
        let actions = m.receive(write(itt: 1, cmdSN: 10, length: 8192, immediateData: bytes(512), final: true)).withoutArrivals
        #expect(actions.first?.r2t?.bufferOffset == 512)
    }

    /// libiscsi iSCSIdatasn.iSCSIDataSnInvalid: the write must not succeed,
    /// and the connection must survive (libiscsi reconnects with other settings otherwise).
    @Test(arguments: [UInt32(1), 27, 0xFFFF_FFFF])
    func wrongDataSNRejectsAndEndsTheTask(dataSN: UInt32) throws {
        let p = SessionParameters(initialR2T: true, immediateData: false, nopInInterval: nil)
        var m = machine(p)
        let r2t = try #require(m.receive(write(itt: 1, cmdSN: 10, length: 1024)).withoutArrivals.first?.r2t)
        let actions = m.receive(dataOut(itt: 1, ttt: r2t.targetTransferTag, dataSN: dataSN, offset: 0, data: bytes(512), final: false))
        #expect(actions.count == 1)
        #expect(actions.first?.rejectReason == RejectReason.protocolError)
        #expect(m.activeTaskCount == 0)
        // The rest of the task's data is refused; the connection goes on.
        #expect(m.receive(dataOut(itt: 1, ttt: r2t.targetTransferTag, dataSN: 1, offset: 512, data: bytes(512), final: true)).first?.rejectReason == RejectReason.invalidPDUField)
        #expect(m.receive(read(itt: 2, cmdSN: 11, length: 0)).first?.executed != nil)
    }

    @Test func dataOutBeyondTheR2TWindowIsRejected() throws {
        let p = SessionParameters(initialR2T: true, immediateData: false, nopInInterval: nil)
        var m = machine(p)
        let r2t = try #require(m.receive(write(itt: 1, cmdSN: 10, length: 1024)).withoutArrivals.first?.r2t)
        let actions = m.receive(dataOut(itt: 1, ttt: r2t.targetTransferTag, dataSN: 0, offset: 0, data: bytes(2048), final: true))
        #expect(actions.first?.rejectReason == RejectReason.protocolError)
        #expect(!actions.contains { $0.executed != nil })
    }

    @Test func unsolicitedDataWithInitialR2TIsRejected() {
        let p = SessionParameters(initialR2T: true, immediateData: false, nopInInterval: nil)
        var m = machine(p)
        _ = m.receive(write(itt: 1, cmdSN: 10, length: 1024))
        let actions = m.receive(dataOut(itt: 1, ttt: 0xFFFF_FFFF, dataSN: 0, offset: 0, data: bytes(512), final: true))
        #expect(actions.first?.rejectReason == RejectReason.protocolError)
    }

    @Test func immediateDataWhenNotNegotiatedCloses() {
        var m = machine(SessionParameters(immediateData: false, nopInInterval: nil))
        let actions = m.receive(write(itt: 1, cmdSN: 10, length: 1024, immediateData: bytes(512)))
        #expect(actions.last?.closed != nil)
    }

    @Test func dataOutForUnknownTaskIsRejected() {
        var m = machine()
        let actions = m.receive(dataOut(itt: 44, ttt: 3, dataSN: 0, offset: 0, data: bytes(512), final: true))
        #expect(actions.count == 1)
        #expect(actions.first?.rejectReason == RejectReason.invalidPDUField)
    }
}

@Suite("Reads: Data-In splitting and residuals (RFC 7143 §11.7, §11.4.5)")
struct ReadTests {
    @Test func dataInIsSplitAtMaxRecvDataSegmentLengthWithStatusInTheLast() throws {
        var m = machine(SessionParameters(maxBurstLength: 262144, initiatorMaxRecvDataSegmentLength: 8192, nopInInterval: nil))
        let command = try #require(m.receive(read(itt: 3, cmdSN: 10, length: 20000)).first?.executed)
        let actions = m.commandCompleted(command, SessionCommandResult(status: 0, dataIn: bytes(20000)))
        let pdus = actions.compactMap(\.dataIn)
        #expect(pdus.count == 3)
        #expect(pdus.map(\.bufferOffset) == [0, 8192, 16384])
        #expect(pdus.map(\.dataSN) == [0, 1, 2])
        #expect(pdus.map(\.dataSegment.readableBytes) == [8192, 8192, 3616])
        #expect(pdus.map(\.statusPresent) == [false, false, true])
        #expect(pdus.map(\.final) == [false, false, true])
        #expect(pdus[2].statSN == 100)
        #expect(!pdus[2].residualUnderflow && !pdus[2].residualOverflow)
        #expect(actions.count == 3)
    }

    @Test func dataInSequencesEndAtMaxBurstLength() throws {
        var m = machine(SessionParameters(maxBurstLength: 4096, initiatorMaxRecvDataSegmentLength: 3000, nopInInterval: nil))
        let command = try #require(m.receive(read(itt: 3, cmdSN: 10, length: 8192)).first?.executed)
        let pdus = m.commandCompleted(command, SessionCommandResult(status: 0, dataIn: bytes(8192))).compactMap(\.dataIn)
        #expect(pdus.map(\.dataSegment.readableBytes) == [3000, 1096, 3000, 1096])
        #expect(pdus.map(\.final) == [false, true, false, true])
    }

    /// libiscsi iSCSIResiduals.Read10Residuals.
    @Test(arguments: [
        (4096, 512, false, true, 3584),  // underflow: less data than expected
        (512, 4096, true, false, 3584),  // overflow: more data than expected, cut at EDTL
        (512, 512, false, false, 0),
    ])
    func readResiduals(expected: Int, produced: Int, overflow: Bool, underflow: Bool, residual: Int) throws {
        var m = machine()
        let command = try #require(m.receive(read(itt: 3, cmdSN: 10, length: UInt32(expected))).first?.executed)
        let pdus = m.commandCompleted(command, SessionCommandResult(status: 0, dataIn: bytes(produced))).compactMap(\.dataIn)
        let last = try #require(pdus.last)
        #expect(pdus.reduce(0) { $0 + $1.dataSegment.readableBytes } == min(expected, produced))
        #expect(last.residualOverflow == overflow)
        #expect(last.residualUnderflow == underflow)
        #expect(last.residualCount == UInt32(residual))
    }

    @Test func readWithEDTLZeroReportsOverflowWithoutData() throws {
        var m = machine()
        let command = try #require(m.receive(read(itt: 3, cmdSN: 10, length: 0)).first?.executed)
        let actions = m.commandCompleted(command, SessionCommandResult(status: 0, dataIn: bytes(512)))
        let response = try #require(actions.first?.response)
        #expect(actions.count == 1)
        #expect(response.residualOverflow)
        #expect(response.residualCount == 512)
    }

    @Test func checkConditionGoesInASCSIResponseWithSense() throws {
        var m = machine()
        let command = try #require(m.receive(read(itt: 3, cmdSN: 10, length: 512)).first?.executed)
        let sense: [UInt8] = [0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x21, 0, 0, 0, 0, 0]
        let actions = m.commandCompleted(command, SessionCommandResult(status: 2, sense: sense))
        let response = try #require(actions.first?.response)
        #expect(response.status == 2)
        #expect(response.senseData == sense)
        #expect(response.residualUnderflow)
        #expect(response.residualCount == 512)
    }

    @Test func writeResidualsUseTheCommandsTransferLength() throws {
        var m = machine()
        let command = try #require(m.receive(write(itt: 1, cmdSN: 10, length: 1024, immediateData: bytes(1024))).first?.executed)
        let response = try #require(m.commandCompleted(command, SessionCommandResult(status: 0, writeTransferLength: 512)).first?.response)
        #expect(response.residualUnderflow)
        #expect(response.residualCount == 512)
    }
}

@Suite("Task management (RFC 7143 §11.5)")
struct TaskManagementTests {
    private func tmf(_ function: TaskManagementFunctionCode, itt: UInt32, ref: UInt32 = 0xFFFF_FFFF, refCmdSN: UInt32 = 0, cmdSN: UInt32) -> ISCSIPDU {
        .taskManagementRequest(
            TaskManagementRequestPDU(
                immediate: true, function: 0x80 | function.rawValue, lun: 0, initiatorTaskTag: itt, referencedTaskTag: ref,
                cmdSN: cmdSN, expStatSN: 0, refCmdSN: refCmdSN, expDataSN: 0))
    }

    @Test func abortTaskOfAnExecutingTaskGoesToTheSCSILayerAndSuppressesItsResponse() throws {
        var m = machine()
        let command = try #require(m.receive(read(itt: 1, cmdSN: 10, length: 512)).first?.executed)
        let actions = m.receive(tmf(.abortTask, itt: 2, ref: 1, refCmdSN: 10, cmdSN: 11))
        guard case .taskManagement(let request) = actions.first else {
            Issue.record("expected a TMF action")
            return
        }
        #expect(request.function == .abortTask)
        #expect(request.referencedTaskTag == 1)
        #expect(m.taskManagementCompleted(initiatorTaskTag: 2, response: .functionComplete).isEmpty)  // waits for the task
        let done = m.commandCompleted(command, SessionCommandResult(status: 0x40, aborted: true))
        #expect(done.count == 1)
        guard case .send(.taskManagementResponse(let response)) = done.first else {
            Issue.record("expected a TMF response")
            return
        }
        #expect(response.response == 0)
        #expect(response.initiatorTaskTag == 2)
    }

    /// libiscsi iSCSITMF.AbortTaskSimpleAsync: the command finished before the abort reached it.
    @Test func abortTaskOfACommandTheSCSILayerAlreadyFinished() throws {
        var m = machine()
        let command = try #require(m.receive(read(itt: 1, cmdSN: 10, length: 512)).first?.executed)
        _ = m.receive(tmf(.abortTask, itt: 2, ref: 1, refCmdSN: 10, cmdSN: 11))
        let tmfDone = m.taskManagementCompleted(initiatorTaskTag: 2, response: .taskDoesNotExist)
        #expect(tmfDone.isEmpty)
        let actions = m.commandCompleted(command, SessionCommandResult(status: 0, dataIn: bytes(512)))
        #expect(actions.count == 2)
        #expect(actions.first?.dataIn?.statusPresent == true)
        guard case .send(.taskManagementResponse(let response)) = actions.last else {
            Issue.record("expected the TMF response after the command's")
            return
        }
        #expect(response.response == 1)
    }

    @Test func abortTaskOfAWriteWaitingForDataIsLocal() throws {
        var m = machine(SessionParameters(initialR2T: true, immediateData: false, nopInInterval: nil))
        _ = m.receive(write(itt: 1, cmdSN: 10, length: 4096))
        let actions = m.receive(tmf(.abortTask, itt: 2, ref: 1, refCmdSN: 10, cmdSN: 11))
        guard case .send(.taskManagementResponse(let response)) = actions.first else {
            Issue.record("expected a TMF response")
            return
        }
        #expect(response.response == 0)
        #expect(m.activeTaskCount == 0)
    }

    /// libiscsi iSCSITMF.AbortTaskSimpleAsync: a completed command's abort answers "task does not exist".
    @Test(arguments: [(UInt32(10), UInt8(1)), (UInt32(50), UInt8(1))])
    func abortTaskOfAnUnknownTask(refCmdSN: UInt32, expected: UInt8) {
        var m = machine()
        _ = m.receive(read(itt: 1, cmdSN: 10, length: 0))  // ExpCmdSN 11
        let actions = m.receive(tmf(.abortTask, itt: 2, ref: 77, refCmdSN: refCmdSN, cmdSN: 11))
        guard case .send(.taskManagementResponse(let response)) = actions.first else {
            Issue.record("expected a TMF response")
            return
        }
        #expect(response.response == expected)
    }

    @Test func abortTaskOfACommandHeldForOrderingConsumesItsCmdSN() {
        var m = machine()
        #expect(m.receive(read(itt: 5, cmdSN: 11, length: 0)).isEmpty)  // held: CmdSN 10 missing
        let abort = m.receive(tmf(.abortTask, itt: 6, ref: 5, refCmdSN: 11, cmdSN: 12))
        guard case .send(.taskManagementResponse(let response)) = abort.first else {
            Issue.record("expected a TMF response")
            return
        }
        #expect(response.response == 0)
        let actions = m.receive(read(itt: 4, cmdSN: 10, length: 0))
        #expect(actions.compactMap(\.executed).map(\.initiatorTaskTag) == [4])
        #expect(m.expCmdSN == 12)
    }

    @Test func logicalUnitResetAbortsTheLUNsTasks() throws {
        var m = machine()
        let a = try #require(m.receive(read(itt: 1, cmdSN: 10, length: 512)).first?.executed)
        let actions = m.receive(tmf(.logicalUnitReset, itt: 2, cmdSN: 11))
        guard case .taskManagement(let request) = actions.first else {
            Issue.record("expected a TMF action")
            return
        }
        #expect(request.function == .logicalUnitReset)
        #expect(m.commandCompleted(a, SessionCommandResult(status: 0x40, aborted: true)).isEmpty)
        guard case .send(.taskManagementResponse(let response)) = m.taskManagementCompleted(initiatorTaskTag: 2, response: .functionComplete).first else {
            Issue.record("expected a TMF response")
            return
        }
        #expect(response.response == 0)
    }

    @Test func targetColdResetClosesAfterTheResponse() {
        var m = machine()
        _ = m.receive(tmf(.targetColdReset, itt: 2, cmdSN: 10))
        let actions = m.taskManagementCompleted(initiatorTaskTag: 2, response: .functionComplete)
        #expect(actions.count == 2)
        #expect(actions.last?.closed == .targetColdReset)
    }

    @Test func taskReassignIsNotSupportedAtERL0() {
        var m = machine()
        let actions = m.receive(tmf(.taskReassign, itt: 2, cmdSN: 10))
        guard case .send(.taskManagementResponse(let response)) = actions.first else {
            Issue.record("expected a TMF response")
            return
        }
        #expect(response.response == TaskManagementResponseCode.taskAllegianceReassignmentNotSupported.rawValue)
    }
}

@Suite("NOP, logout, SNACK, reject")
struct NopLogoutTests {
    @Test func nopOutPingIsEchoed() throws {
        var m = machine()
        let ping = ISCSIPDU.nopOut(
            NOPOutPDU(immediate: true, lun: 0, initiatorTaskTag: 9, targetTransferTag: 0xFFFF_FFFF, cmdSN: 10, expStatSN: 100, dataSegment: bytes(16)))
        let actions = m.receive(ping)
        guard case .send(.nopIn(let nopIn)) = actions.first else {
            Issue.record("expected NOP-In")
            return
        }
        #expect(nopIn.initiatorTaskTag == 9)
        #expect(nopIn.targetTransferTag == 0xFFFF_FFFF)
        #expect(nopIn.dataSegment == bytes(16))
        #expect(nopIn.statSN == 100)
        #expect(m.expCmdSN == 10)
    }

    @Test func keepalivePingsWhenIdleAndClosesOnTimeout() throws {
        var m = SessionStateMachine(
            parameters: SessionParameters(nopInInterval: .seconds(5), nopInTimeout: .seconds(10)), expCmdSN: 1, statSN: 1)
        #expect(m.tick(now: .seconds(4)).isEmpty)
        let sent = m.tick(now: .seconds(5))
        guard case .send(.nopIn(let ping)) = sent.first else {
            Issue.record("expected a NOP-In ping")
            return
        }
        #expect(ping.initiatorTaskTag == 0xFFFF_FFFF)
        #expect(ping.targetTransferTag != 0xFFFF_FFFF)
        #expect(m.tick(now: .seconds(14)).isEmpty)
        #expect(m.tick(now: .seconds(15)).first?.closed == .nopTimeout)
    }

    @Test func answeredKeepaliveKeepsTheConnection() {
        var m = SessionStateMachine(
            parameters: SessionParameters(nopInInterval: .seconds(5), nopInTimeout: .seconds(10)), expCmdSN: 1, statSN: 1)
        guard case .send(.nopIn(let ping)) = m.tick(now: .seconds(5)).first else {
            Issue.record("expected a NOP-In ping")
            return
        }
        let answer = ISCSIPDU.nopOut(
            NOPOutPDU(immediate: true, lun: 0, initiatorTaskTag: 0xFFFF_FFFF, targetTransferTag: ping.targetTransferTag, cmdSN: 1, expStatSN: 1))
        #expect(m.receive(answer, now: .seconds(6)).isEmpty)
        #expect(m.tick(now: .seconds(16)).first?.closed == nil)
    }

    @Test(arguments: [(UInt8(0), UInt8(0), true), (UInt8(1), UInt8(0), true), (UInt8(2), UInt8(2), false)])
    func logout(reason: UInt8, response: UInt8, closes: Bool) {
        var m = machine()
        let actions = m.receive(
            .logoutRequest(LogoutRequestPDU(immediate: true, reasonCode: 0x80 | reason, initiatorTaskTag: 4, cid: 0, cmdSN: 10, expStatSN: 100)))
        guard case .send(.logoutResponse(let pdu)) = actions.first else {
            Issue.record("expected a Logout Response")
            return
        }
        #expect(pdu.response == response)
        #expect(pdu.statSN == 100)
        #expect((actions.last?.closed == .logout) == closes)
    }

    @Test func snackIsRejectedAtERL0() {
        var m = machine()
        let actions = m.receive(.snackRequest(SNACKRequestPDU(type: 0, lun: 0, initiatorTaskTag: 1, targetTransferTag: 0, expStatSN: 0, begRun: 0, runLength: 0)))
        #expect(actions.first?.rejectReason == RejectReason.snackReject)
        #expect(actions.count == 1)
    }

    @Test func textRequestGoesToTheNegotiatorAndComesBackNumbered() {
        var m = machine()
        let request = TextRequestPDU(immediate: false, final: true, lun: 0, initiatorTaskTag: 5, targetTransferTag: 0xFFFF_FFFF, cmdSN: 10, expStatSN: 100)
        let actions = m.receive(.textRequest(request))
        guard case .text(let forwarded) = actions.first else {
            Issue.record("expected a text action")
            return
        }
        #expect(forwarded.initiatorTaskTag == 5)
        var out: [SessionAction] = []
        m.textResponse(TextResponsePDU(final: true, initiatorTaskTag: 5), into: &out)
        guard case .send(.textResponse(let response)) = out.first else {
            Issue.record("expected a Text Response")
            return
        }
        #expect(response.statSN == 100)
        #expect(response.expCmdSN == 11)
    }

    @Test func discoverySessionRejectsSCSICommands() {
        var m = SessionStateMachine(parameters: SessionParameters(nopInInterval: nil), expCmdSN: 1, statSN: 1, allowsSCSI: false)
        let actions = m.receive(read(itt: 1, cmdSN: 1, length: 0))
        #expect(actions.first?.rejectReason == RejectReason.protocolError)
    }
}
