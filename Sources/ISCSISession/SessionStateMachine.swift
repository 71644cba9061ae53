import ISCSIWire
import NIOCore
import SCSIWire

/// The full-feature phase of one iSCSI connection (RFC 7143 §4.2, ErrorRecoveryLevel 0),
/// as a value: PDUs from the decoder, SCSI completions and timer ticks go in;
/// ``SessionAction``s come out. No sockets, no clocks — time is an argument.
///
/// Covers the CmdSN window and ordered delivery, StatSN, immediate data,
/// unsolicited Data-Out, R2T sequencing, Data-In splitting, residuals, task
/// management, NOP ping and keepalive, logout, SNACK and Reject; and what a
/// host can make it hold: write data bounded by the CDB, immediate commands,
/// unsolicited data within the window's worth, solicited data within
/// ``SessionParameters/maxSolicitedWriteBytes``.
///
/// One instance per connection; the session has one connection (MaxConnections=1),
/// so the session's CmdSN window lives here too.
public struct SessionStateMachine: Sendable {
    /// Where the connection is.
    enum State: Sendable, Equatable {
        /// Full feature phase.
        case fullFeature
        /// A Logout Response was sent or a close was decided; everything else is ignored.
        case closing
    }

    /// One task the initiator started and has not seen the end of.
    struct Task: Sendable {
        /// Phases of a task.
        enum Phase: Sendable {
            /// Receiving write data; after a Data-Out error, waiting for the
            /// initiator's open sequences to end before the task's CHECK CONDITION.
            case receivingData(DataOutSequencer)
            /// Handed to the SCSI layer.
            case executing
        }

        var id: UInt64
        var pdu: SCSICommandPDU
        var phase: Phase
        /// R2Ts sent for the task (ExpDataSN of a write's response, RFC 7143 §11.4.8).
        var r2tCount: UInt32 = 0
        /// The bytes the CDB asks the initiator to send (SAM-5 SPDTL), when known:
        /// what write residuals are measured against (RFC 7143 §11.4.5.2).
        var cdbDataOutLength: Int?
        /// Solicited write data this task holds of ``SessionParameters/maxSolicitedWriteBytes``.
        var reservedWriteBytes = 0
    }

    /// A NOP-In ping the target sent and waits for.
    struct Ping: Sendable, Equatable {
        var targetTransferTag: UInt32
        var sentAt: Duration
    }

    private(set) var state: State = .fullFeature
    let parameters: SessionParameters
    private(set) var window: CommandWindow
    /// StatSN to put in the next status-carrying PDU (RFC 7143 §4.2.2.2).
    private(set) var statSN: UInt32
    /// Tasks by Initiator Task Tag.
    private(set) var tasks: [UInt32: Task] = [:]
    /// Non-immediate commands counted in the window (arrived, no response yet).
    private var windowedTasks = 0
    /// Non-immediate PDUs that arrived ahead of ExpCmdSN, by CmdSN.
    private var heldPDUs: [UInt32: ISCSIPDU] = [:]
    /// A TMF handed to the SCSI layer whose response is not sent yet.
    struct PendingTaskManagement: Sendable {
        var function: TaskManagementFunctionCode
        /// Sent with the I bit: counted in ``immediateCommands``.
        var immediate = false
        /// Executing tasks it affects whose completions have not come back; the
        /// TMF response follows theirs (RFC 7143 §4.2.3.3 via SAM-5 §7.2).
        var waitingFor: Set<UInt32>
        /// The SCSI layer's answer, once it came.
        var response: TaskManagementResponseCode?
    }

    /// TMF requests handed to the SCSI layer, by their tag.
    private var pendingTaskManagement: [UInt32: PendingTaskManagement] = [:]
    private var nextTaskID: UInt64 = 1
    private var targetTransferTags = TargetTransferTags()
    private var lastReceived: Duration
    private var ping: Ping?
    private let cid: UInt16
    /// False in a discovery session: only Text, NOP and Logout are allowed (RFC 7143 §4.3).
    private let allowsSCSI: Bool
    /// Answers Text Requests; without one they become `.text` actions.
    private var textNegotiator: TextNegotiator?
    /// The SCSI layer's descriptor table, asked for a CDB's data-out length.
    private let dataOutLength: DataOutLengthOracle?
    /// Immediate SCSI commands and TMFs the target holds (bounded by
    /// ``SessionParameters/maxImmediateCommands``).
    private(set) var immediateCommands = 0
    /// The unsolicited data the immediate writes among them may hold.
    private(set) var immediateUnsolicitedBytes = 0
    /// Write data reserved by the tasks soliciting it (R2Ts), until each ends.
    private(set) var solicitedWriteBytes = 0
    /// Writes waiting, in arrival order, for ``solicitedWriteBytes`` to leave them room.
    private var waitingForR2T: [UInt32] = []

    /// What the SCSI layer says of a CDB's write data for a LUN; nil when the
    /// CDB does not parse or the LUN does not exist. A pure function of its arguments.
    public typealias DataOutLengthOracle = @Sendable (_ lun: UInt64, _ cdb: [UInt8]) -> DataOutExpectation?

    /// Starts full feature phase after login.
    /// - Parameters:
    ///   - expCmdSN: ExpCmdSN after the final login response.
    ///   - statSN: the next StatSN to send.
    ///   - maxCmdSN: the MaxCmdSN the login response advertised, if larger than the queue depth gives.
    ///   - cid: this connection's CID (Logout checks it).
    ///   - allowsSCSI: false for a discovery session.
    ///   - textNegotiator: answers Text Requests (SendTargets and others); nil hands them out as `.text`.
    ///   - dataOutLength: a CDB's data-out length, so R2Ts and buffering stop at it; nil trusts EDTL.
    ///   - now: the current time.
    public init(
        parameters: SessionParameters, expCmdSN: UInt32, statSN: UInt32, maxCmdSN: UInt32? = nil, cid: UInt16 = 0,
        allowsSCSI: Bool = true, textNegotiator: TextNegotiator? = nil, dataOutLength: DataOutLengthOracle? = nil,
        now: Duration = .zero
    ) {
        self.dataOutLength = dataOutLength
        self.allowsSCSI = allowsSCSI
        self.textNegotiator = textNegotiator
        self.parameters = parameters.sanitized
        self.window = CommandWindow(expCmdSN: expCmdSN, queueDepth: self.parameters.queueDepth, advertisedMaxCmdSN: maxCmdSN)
        self.statSN = statSN
        self.cid = cid
        self.lastReceived = now
    }

    /// ExpCmdSN as the target would send it now.
    public var expCmdSN: UInt32 { window.expCmdSN }
    /// MaxCmdSN as the target would send it now.
    public var maxCmdSN: UInt32 { window.maxCmdSN }
    /// Tasks the initiator has started and not seen end.
    public var activeTaskCount: Int { tasks.count }

    // MARK: - Inputs

    /// A PDU from the decoder.
    public mutating func receive(_ pdu: ISCSIPDU, now: Duration, into actions: inout [SessionAction]) {
        guard state == .fullFeature else { return }
        lastReceived = now
        // Any PDU proves the initiator is alive; the ping is answered in spirit.
        ping = nil
        switch pdu {
        case .scsiCommand(let command):
            ordered(pdu, cmdSN: command.cmdSN, immediate: command.immediate, into: &actions)
        case .taskManagementRequest(let request):
            ordered(pdu, cmdSN: request.cmdSN, immediate: request.immediate, into: &actions)
        case .textRequest(let request):
            ordered(pdu, cmdSN: request.cmdSN, immediate: request.immediate, into: &actions)
        case .logoutRequest(let request):
            ordered(pdu, cmdSN: request.cmdSN, immediate: request.immediate, into: &actions)
        case .nopOut(let nop):
            // RFC 7143 §11.18: a NOP-Out answering a target ping (ITT 0xffffffff) is immediate.
            if nop.initiatorTaskTag == 0xFFFF_FFFF {
                nopOut(nop, into: &actions)
            } else {
                ordered(pdu, cmdSN: nop.cmdSN, immediate: nop.immediate, into: &actions)
            }
        case .dataOut(let data):
            dataOut(data, into: &actions)
        case .snackRequest:
            // RFC 7143 §11.16: SNACK is meaningful only at ErrorRecoveryLevel > 0.
            reject(pdu, reason: RejectReason.snackReject, into: &actions)
        case .loginRequest:
            // RFC 7143 §6.2: a Login Request in full feature phase is a protocol error.
            protocolError(pdu, "Login Request in full feature phase", into: &actions)
        default:
            // Target-to-initiator opcodes from an initiator.
            protocolError(pdu, "target opcode from the initiator", into: &actions)
        }
    }

    /// A PDU the decoder could not take but that the connection survives
    /// (unknown opcode, data digest error, invalid field): answer with Reject.
    public mutating func receiveRejected(reason: UInt8, basicHeaderSegment: ByteBuffer, now: Duration, into actions: inout [SessionAction]) {
        guard state == .fullFeature else { return }
        lastReceived = now
        ping = nil
        // RFC 7143 §7.8: a payload digest error is answered with Reject (Data-Digest-Error)
        // and the PDU is discarded.
        sendReject(reason: reason, header: basicHeaderSegment, into: &actions)
        if reason == RejectReason.dataDigestError,
            case .dataOut(let header)? = ISCSIPDU(basicHeaderSegment: basicHeaderSegment)
        {
            dataDigestError(header, into: &actions)
        }
    }

    /// The SCSI layer finished the command started by `.execute`.
    /// `taskID` and `initiatorTaskTag` come from the ``SessionCommand``.
    public mutating func commandCompleted(taskID: UInt64, initiatorTaskTag: UInt32, _ result: SessionCommandResult, now: Duration, into actions: inout [SessionAction]) {
        // A task aborted meanwhile is gone, or its tag already names a newer task.
        guard let task = tasks[initiatorTaskTag], task.id == taskID else { return }
        tasks[initiatorTaskTag] = nil
        release(task)
        guard state == .fullFeature else { return }
        // SAM-5 §7.2 (TAS=0): an aborted task ends without a response.
        if !result.aborted {
            var result = result
            if result.writeTransferLength == nil { result.writeTransferLength = task.cdbDataOutLength }
            respond(to: task.pdu, result: result, r2tCount: task.r2tCount, into: &actions)
        }
        if !pendingTaskManagement.isEmpty {
            for tag in Array(pendingTaskManagement.keys) where pendingTaskManagement[tag]!.waitingFor.contains(initiatorTaskTag) {
                pendingTaskManagement[tag]!.waitingFor.remove(initiatorTaskTag)
                finishTaskManagement(tag, into: &actions)
            }
        }
        solicitWaiting(into: &actions)
    }

    /// The SCSI layer finished a task management function started by `.taskManagement`.
    public mutating func taskManagementCompleted(initiatorTaskTag: UInt32, response: TaskManagementResponseCode, into actions: inout [SessionAction]) {
        guard state == .fullFeature, pendingTaskManagement[initiatorTaskTag] != nil else { return }
        pendingTaskManagement[initiatorTaskTag]!.response = response
        finishTaskManagement(initiatorTaskTag, into: &actions)
    }

    private mutating func finishTaskManagement(_ tag: UInt32, into actions: inout [SessionAction]) {
        guard let pending = pendingTaskManagement[tag], let response = pending.response, pending.waitingFor.isEmpty else { return }
        pendingTaskManagement[tag] = nil
        if pending.immediate { immediateCommands -= 1 }
        sendTaskManagementResponse(initiatorTaskTag: tag, response: response, into: &actions)
        if pending.function == .targetColdReset, response == .functionComplete {
            // RFC 7143 §11.5.1: after TARGET COLD RESET the target closes the connections.
            close(.targetColdReset, into: &actions)
        }
    }

    /// The answer to a `.text` action, to be sent with this connection's sequence numbers.
    public mutating func textResponse(_ response: TextResponsePDU, into actions: inout [SessionAction]) {
        guard state == .fullFeature else { return }
        var response = response
        response.statSN = takeStatSN()
        response.expCmdSN = window.expCmdSN
        response.maxCmdSN = window.maxCmdSN
        actions.append(.send(.textResponse(response)))
    }

    /// Time passes: sends a NOP-In ping after an idle interval and closes when
    /// a ping stays unanswered for the timeout.
    public mutating func tick(now: Duration, into actions: inout [SessionAction]) {
        guard state == .fullFeature, let interval = parameters.nopInInterval else { return }
        if let ping {
            let waited = now - ping.sentAt
            if waited >= parameters.nopInTimeout { close(.nopTimeout(unansweredFor: waited), into: &actions) }
            return
        }
        guard now - lastReceived >= interval else { return }
        let tag = targetTransferTags.take()
        ping = Ping(targetTransferTag: tag, sentAt: now)
        // RFC 7143 §11.19: a target ping has ITT 0xffffffff, a TTT other than
        // 0xffffffff, and carries StatSN without advancing it.
        let nopIn = NOPInPDU(
            lun: 0, initiatorTaskTag: 0xFFFF_FFFF, targetTransferTag: tag, statSN: statSN,
            expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN, dataSegment: ByteBuffer())
        actions.append(.send(.nopIn(nopIn)))
    }

    // MARK: - Ordering (RFC 7143 §4.2.2.1)

    private mutating func ordered(_ pdu: ISCSIPDU, cmdSN: UInt32, immediate: Bool, into actions: inout [SessionAction]) {
        if immediate {
            // RFC 7143 §4.2.2.1: immediate commands are delivered at once and
            // do not advance ExpCmdSN. Those the target holds on to (SCSI
            // commands, TMFs) are bounded: RFC 7143 §11.17.1 reason 0x06,
            // "Immediate command reject - too many immediate commands"; the
            // PDU (and any immediate data it carries) is dropped, the session goes on.
            if Self.holdsState(pdu), immediateCommands >= parameters.maxImmediateCommands {
                reject(pdu, reason: RejectReason.immediateCommandReject, into: &actions)
                return
            }
            // Unsolicited data is bounded by the window's worth, (MaxCmdSN − ExpCmdSN + 1) ×
            // FirstBurstLength: every windowed command (delivered or held) may use one
            // FirstBurstLength; an immediate one only what the window leaves unused.
            if case .scsiCommand(let command) = pdu, !unsolicitedFits(command) {
                reject(pdu, reason: RejectReason.immediateCommandReject, into: &actions)
                return
            }
            deliver(pdu, into: &actions)
            return
        }
        switch window.admit(cmdSN) {
        case .outside:
            // RFC 7143 §4.2.2.1: the target MUST silently ignore a non-immediate
            // command outside [ExpCmdSN, MaxCmdSN].
            return
        case .ahead:
            // RFC 7143 §4.2.2.1: "...or non-immediate duplicates within the range".
            if heldPDUs[cmdSN] == nil { heldPDUs[cmdSN] = pdu }
            return
        case .next:
            window.advance()
            deliver(pdu, into: &actions)
            // Commands that waited for this one follow in CmdSN order.
            while state == .fullFeature, !heldPDUs.isEmpty, let next = heldPDUs.removeValue(forKey: window.expCmdSN) {
                window.advance()
                deliver(next, into: &actions)
            }
        }
    }

    private mutating func deliver(_ pdu: ISCSIPDU, into actions: inout [SessionAction]) {
        switch pdu {
        case .scsiCommand where !allowsSCSI, .taskManagementRequest where !allowsSCSI:
            // RFC 7143 §4.3: a discovery session carries no SCSI commands or TMFs.
            reject(pdu, reason: RejectReason.protocolError, into: &actions)
        case .scsiCommand(let command): scsiCommand(command, into: &actions)
        case .taskManagementRequest(let request): taskManagement(request, into: &actions)
        case .textRequest(let request): text(request, into: &actions)
        case .logoutRequest(let request): logout(request, into: &actions)
        case .nopOut(let nop): nopOut(nop, into: &actions)
        default: break
        }
    }

    // MARK: - SCSI commands

    private mutating func scsiCommand(_ command: SCSICommandPDU, into actions: inout [SessionAction]) {
        // RFC 7143 §11.2.1.8: the Initiator Task Tag must not name a live task.
        if tasks[command.initiatorTaskTag] != nil || command.initiatorTaskTag == 0xFFFF_FFFF {
            reject(.scsiCommand(command), reason: RejectReason.taskInProgress, into: &actions)
            return
        }
        let immediateLength = command.dataSegment.readableBytes
        if immediateLength > 0 {
            // RFC 7143 §13.11: immediate data only when ImmediateData=Yes.
            guard parameters.immediateData, command.write else {
                protocolError(.scsiCommand(command), "immediate data not allowed", into: &actions)
                return
            }
            // RFC 7143 §13.14: immediate data is part of the first burst;
            // RFC 7143 §11.3.5: and never more than ExpectedDataTransferLength.
            guard immediateLength <= parameters.firstBurstLength, immediateLength <= Int(command.expectedDataTransferLength) else {
                protocolError(.scsiCommand(command), "immediate data exceeds FirstBurstLength or EDTL", into: &actions)
                return
            }
        }
        let id = nextTaskID
        nextTaskID &+= 1
        if command.immediate {
            immediateCommands += 1
            immediateUnsolicitedBytes += unsolicitedAllowance(command)
        } else {
            windowedTasks += 1
        }
        window.update(activeCommands: windowedTasks)
        // The CDB's own data-out length (SAM-5 SPDTL), from the SCSI layer's descriptor table.
        let expectation = command.write ? dataOutLength?(command.lun, command.cdb) : nil
        let cdbLength = expectation?.length
        if command.write, command.expectedDataTransferLength > 0 {
            var sequencer = DataOutSequencer(
                expectedLength: Int(command.expectedDataTransferLength), bufferLimit: expectation?.solicited,
                immediate: command.dataSegment, commandFinal: command.final, parameters: parameters)
            if sequencer.isComplete {
                tasks[command.initiatorTaskTag] = Task(
                    id: id, pdu: command, phase: .executing, cdbDataOutLength: cdbLength)
                execute(id: id, command: command, sequencer: sequencer, into: &actions)
            } else {
                var task = Task(id: id, pdu: command, phase: .executing, cdbDataOutLength: cdbLength)
                actions.append(.taskArrived(initiatorTaskTag: command.initiatorTaskTag, lun: command.lun))
                solicit(&task, &sequencer, into: &actions)
            }
        } else {
            tasks[command.initiatorTaskTag] = Task(id: id, pdu: command, phase: .executing, cdbDataOutLength: cdbLength)
            execute(id: id, command: command, sequencer: nil, into: &actions)
        }
    }

    private func execute(
        id: UInt64, command: SCSICommandPDU, sequencer: DataOutSequencer?, announced: Bool = false,
        into actions: inout [SessionAction]
    ) {
        var cdb = command.cdb
        if cdb.count < 16 { cdb += repeatElement(0, count: 16 - cdb.count) }
        actions.append(
            .execute(
                SessionCommand(
                    taskID: id, initiatorTaskTag: command.initiatorTaskTag, lun: command.lun, cdb: cdb,
                    attribute: command.attribute, expectedDataTransferLength: command.expectedDataTransferLength,
                    read: command.read, write: command.write, dataOut: sequencer?.segments ?? [],
                    dataOutLength: sequencer?.received ?? 0, announced: announced)))
    }

    private mutating func sendR2Ts(_ requests: ArraySlice<DataOutSequencer.OutstandingR2T>, for command: SCSICommandPDU, into actions: inout [SessionAction]) {
        for request in requests {
            // RFC 7143 §11.8: R2T carries StatSN without advancing it.
            let r2t = R2TPDU(
                lun: command.lun, initiatorTaskTag: command.initiatorTaskTag,
                targetTransferTag: request.targetTransferTag, statSN: statSN, expCmdSN: window.expCmdSN,
                maxCmdSN: window.maxCmdSN, r2tSN: request.r2tSN, bufferOffset: UInt32(request.bufferOffset),
                desiredDataTransferLength: UInt32(request.desiredDataTransferLength))
            actions.append(.send(.r2t(r2t)))
        }
    }

    private mutating func dataOut(_ data: DataOutPDU, into actions: inout [SessionAction]) {
        // Taken out of the table so the collected slices are uniquely referenced while they grow.
        guard var task = tasks.removeValue(forKey: data.initiatorTaskTag) else {
            // RFC 7143 §11.7.4: Data-Out for no live task (it may have been aborted): Reject.
            reject(.dataOut(data), reason: RejectReason.invalidPDUField, into: &actions)
            return
        }
        guard case .receivingData(var sequencer) = task.phase else {
            tasks[data.initiatorTaskTag] = task
            reject(.dataOut(data), reason: RejectReason.invalidPDUField, into: &actions)
            return
        }
        task.phase = .executing
        if sequencer.failure != nil {
            sequencer.drain(data)
        } else {
            do {
                try sequencer.receive(data)
            } catch {
                guard let condition = error.condition else {
                    // A Data-Out for no sequence of the task: RFC 7143 §7.13 protocol error.
                    // At ErrorRecoveryLevel 0 the connection ends, and with it the task.
                    task.phase = .receivingData(sequencer)
                    tasks[data.initiatorTaskTag] = task
                    let detail = "Data-Out for task 0x\(String(data.initiatorTaskTag, radix: 16)): \(error)"
                    protocolError(.dataOut(data), detail, into: &actions)
                    return
                }
                // RFC 7143 §11.4.7.2: the task ends with CHECK CONDITION once the
                // initiator's open sequences end; the connection goes on. No Reject:
                // the PDU itself was intact, and the status is the task's one ending.
                sequencer.fail(condition, after: data)
            }
        }
        continueWrite(&task, &sequencer, into: &actions)
    }

    /// A Data-Out whose data digest failed (the decoder discarded it and the
    /// Reject is sent): RFC 7143 §7.8 b, at ErrorRecoveryLevel 0 (no recovery R2T):
    /// the task ends with CHECK CONDITION "protocol service CRC error" once all its
    /// outstanding sequences have ended.
    private mutating func dataDigestError(_ header: DataOutPDU, into actions: inout [SessionAction]) {
        guard var task = tasks.removeValue(forKey: header.initiatorTaskTag) else { return }
        guard case .receivingData(var sequencer) = task.phase else {
            // All the data is in already: the PDU was beyond it; the Reject is its answer.
            tasks[header.initiatorTaskTag] = task
            return
        }
        task.phase = .executing
        sequencer.fail(.protocolServiceCRCError, after: header)
        continueWrite(&task, &sequencer, into: &actions)
    }

    /// After a Data-Out: execute a write whose data is complete, solicit more,
    /// or end a failed one once its sequences are over.
    private mutating func continueWrite(
        _ task: inout Task, _ sequencer: inout DataOutSequencer, into actions: inout [SessionAction]
    ) {
        let tag = task.pdu.initiatorTaskTag
        task.r2tCount = sequencer.r2tCount
        if let failure = sequencer.failure {
            guard sequencer.isDrained else {
                task.phase = .receivingData(sequencer)
                tasks[tag] = task
                return
            }
            // The task never reached the SCSI layer; it ends here.
            release(task)
            let result = SessionCommandResult(status: Self.checkCondition, sense: SenseData(failure).bytes)
            respond(to: task.pdu, result: result, r2tCount: task.r2tCount, into: &actions)
            solicitWaiting(into: &actions)
            return
        }
        if sequencer.isComplete {
            tasks[tag] = task
            execute(id: task.id, command: task.pdu, sequencer: sequencer, announced: true, into: &actions)
            return
        }
        solicit(&task, &sequencer, into: &actions)
    }

    /// Sends the R2Ts a write may have now and stores the task. Before its first
    /// R2T a task reserves all it still has to solicit from
    /// ``SessionParameters/maxSolicitedWriteBytes``; one that does not fit (and
    /// every later one: first come, first served) waits in `waitingForR2T` until
    /// earlier writes end. A whole reservation per task means every task that
    /// started soliciting can finish, so waiting never deadlocks; one alone
    /// always fits.
    private mutating func solicit(
        _ task: inout Task, _ sequencer: inout DataOutSequencer, into actions: inout [SessionAction]
    ) {
        let tag = task.pdu.initiatorTaskTag
        if task.reservedWriteBytes == 0, sequencer.unsolicitedEnded, sequencer.leftToSolicit > 0 {
            let need = sequencer.leftToSolicit
            let queued = waitingForR2T.first.map { $0 != tag } ?? false
            let fits = solicitedWriteBytes == 0 || solicitedWriteBytes + need <= parameters.maxSolicitedWriteBytes
            guard !queued, fits else {
                if !waitingForR2T.contains(tag) { waitingForR2T.append(tag) }
                task.phase = .receivingData(sequencer)
                tasks[tag] = task
                return
            }
            if waitingForR2T.first == tag { waitingForR2T.removeFirst() }
            task.reservedWriteBytes = need
            solicitedWriteBytes += need
        }
        let requests = sequencer.nextR2Ts(parameters: parameters, tags: &targetTransferTags)
        task.phase = .receivingData(sequencer)
        tasks[tag] = task
        sendR2Ts(requests, for: task.pdu, into: &actions)
    }

    /// Writes that waited for the solicited-data budget get their R2Ts, in order, as far as it goes.
    private mutating func solicitWaiting(into actions: inout [SessionAction]) {
        while state == .fullFeature, let tag = waitingForR2T.first {
            guard var task = tasks[tag], case .receivingData(var sequencer) = task.phase, sequencer.failure == nil
            else {
                waitingForR2T.removeFirst()
                continue
            }
            solicit(&task, &sequencer, into: &actions)
            if task.reservedWriteBytes == 0 { return }
        }
    }

    /// SAM-5 §5.3.1: CHECK CONDITION.
    static let checkCondition: UInt8 = 0x02

    // MARK: - Responses, Data-In, residuals

    private mutating func respond(to command: SCSICommandPDU, result: SessionCommandResult, r2tCount: UInt32, into actions: inout [SessionAction]) {
        let expected = Int(command.expectedDataTransferLength)
        var data = result.dataIn ?? ByteBuffer()
        var overflow = false
        var underflow = false
        var residual = 0
        if command.read {
            // RFC 7143 §11.4.5.1: compare the data the command produced with
            // ExpectedDataTransferLength; send at most EDTL bytes.
            let produced = data.readableBytes
            if produced > expected {
                overflow = true
                residual = produced - expected
                data = data.getSlice(at: data.readerIndex, length: expected) ?? ByteBuffer()
            } else if produced < expected {
                underflow = true
                residual = expected - produced
            }
        } else if command.write, let wanted = result.writeTransferLength {
            // RFC 7143 §11.4.5.2: write residuals against what the command wanted.
            if wanted > expected {
                overflow = true
                residual = wanted - expected
            } else if wanted < expected {
                underflow = true
                residual = expected - wanted
            }
        } else if !command.write, data.readableBytes > 0 {
            // Data for a command without the R bit cannot be sent: all of it overflows.
            overflow = true
            residual = data.readableBytes
        }
        if !command.read { data = ByteBuffer() }
        let good = result.status == 0 && result.sense.isEmpty
        var dataSN: UInt32 = 0
        let length = data.readableBytes
        if length > 0 {
            // RFC 7143 §11.7.7: each Data-In PDU ≤ the initiator's MaxRecvDataSegmentLength;
            // RFC 7143 §13.13: each Data-In sequence ≤ MaxBurstLength (F bit ends it).
            let pduLimit = parameters.initiatorMaxRecvDataSegmentLength
            let burst = parameters.maxBurstLength
            var offset = 0
            var burstUsed = 0
            while offset < length {
                let chunk = min(pduLimit, length - offset, burst - burstUsed)
                let last = offset + chunk == length
                burstUsed += chunk
                let endOfBurst = last || burstUsed == burst
                if endOfBurst { burstUsed = 0 }
                var pdu = DataInPDU(
                    final: endOfBurst, lun: command.lun, initiatorTaskTag: command.initiatorTaskTag,
                    targetTransferTag: 0xFFFF_FFFF, expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN,
                    dataSN: dataSN, bufferOffset: UInt32(offset),
                    dataSegment: data.getSlice(at: data.readerIndex + offset, length: chunk) ?? ByteBuffer())
                if last, good {
                    // RFC 7143 §11.7.3: status in the last Data-In (S bit) when there is no sense.
                    pdu.statusPresent = true
                    pdu.status = result.status
                    pdu.statSN = takeStatSN()
                    pdu.residualOverflow = overflow
                    pdu.residualUnderflow = underflow
                    pdu.residualCount = UInt32(truncatingIfNeeded: residual)
                }
                actions.append(.send(.dataIn(pdu)))
                dataSN &+= 1
                offset += chunk
            }
            if good { return }
        }
        // RFC 7143 §11.4: SCSI Response with status, sense (SenseLength + data) and residuals.
        let response = SCSIResponsePDU(
            residualOverflow: overflow, residualUnderflow: underflow, response: 0, status: result.status,
            initiatorTaskTag: command.initiatorTaskTag, statSN: takeStatSN(), expCmdSN: window.expCmdSN,
            maxCmdSN: window.maxCmdSN, expDataSN: command.read ? dataSN : r2tCount,
            residualCount: UInt32(truncatingIfNeeded: residual),
            dataSegment: SCSIResponsePDU.senseSegment(result.sense))
        actions.append(.send(.scsiResponse(response)))
    }

    // MARK: - Task management (RFC 7143 §11.5)

    private mutating func taskManagement(_ request: TaskManagementRequestPDU, into actions: inout [SessionAction]) {
        // Writes it drops give back their share of the solicited-data budget.
        defer { solicitWaiting(into: &actions) }
        guard let function = TaskManagementFunctionCode(rawValue: request.function & 0x7F) else {
            sendTaskManagementResponse(initiatorTaskTag: request.initiatorTaskTag, response: .functionNotSupported, into: &actions)
            return
        }
        switch function {
        case .abortTask:
            guard let task = tasks[request.referencedTaskTag] else {
                sendTaskManagementResponse(
                    initiatorTaskTag: request.initiatorTaskTag, response: abortUnknownTask(request), into: &actions)
                return
            }
            if case .executing = task.phase {
                // The SCSI layer decides: it aborts the task (no response) or it
                // already finished (its response goes first, then "task does not exist").
                forward(request, function: function, waitingFor: [request.referencedTaskTag], into: &actions)
            } else {
                // Still collecting data: the SCSI layer never saw it.
                abort(tag: request.referencedTaskTag)
                sendTaskManagementResponse(initiatorTaskTag: request.initiatorTaskTag, response: .functionComplete, into: &actions)
            }
        case .abortTaskSet, .clearTaskSet, .logicalUnitReset:
            forward(request, function: function, waitingFor: affectedTasks { $0.pdu.lun == request.lun }, into: &actions)
        case .targetWarmReset, .targetColdReset:
            forward(request, function: function, waitingFor: affectedTasks { _ in true }, into: &actions)
        case .clearACA:
            forward(request, function: function, waitingFor: [], into: &actions)
        case .taskReassign:
            // RFC 7143 §11.5.1: task reassignment needs ErrorRecoveryLevel 2.
            sendTaskManagementResponse(
                initiatorTaskTag: request.initiatorTaskTag, response: .taskAllegianceReassignmentNotSupported, into: &actions)
        }
    }

    /// Drops the matching tasks that are still collecting data (the SCSI layer
    /// never saw them) and returns the tags of the executing ones.
    private mutating func affectedTasks(_ matches: (Task) -> Bool) -> Set<UInt32> {
        var executing: Set<UInt32> = []
        for (tag, task) in tasks where matches(task) {
            if case .executing = task.phase {
                executing.insert(tag)
            } else {
                abort(tag: tag)
            }
        }
        return executing
    }

    /// ABORT TASK for a tag with no live task (RFC 7143 §11.5.1).
    private mutating func abortUnknownTask(_ request: TaskManagementRequestPDU) -> TaskManagementResponseCode {
        // A command still held ahead of ExpCmdSN is "considered received": it
        // never runs, and its CmdSN is consumed by a placeholder that does nothing.
        if let held = heldPDUs[request.refCmdSN], case .scsiCommand(let command) = held,
            command.initiatorTaskTag == request.referencedTaskTag
        {
            heldPDUs[request.refCmdSN] = .nopOut(NOPOutPDU(immediate: true, initiatorTaskTag: 0xFFFF_FFFF))
            return .functionComplete
        }
        // Below ExpCmdSN the command arrived on this connection and has already
        // completed (its response is on the way): the task does not exist any more.
        return .taskDoesNotExist
    }

    private mutating func abort(tag: UInt32) {
        guard let task = tasks.removeValue(forKey: tag) else { return }
        release(task)
    }

    /// Gives back the window slot or immediate-command slot a task held.
    private mutating func release(_ task: Task) {
        solicitedWriteBytes -= task.reservedWriteBytes
        if task.pdu.immediate {
            immediateCommands -= 1
            immediateUnsolicitedBytes -= unsolicitedAllowance(task.pdu)
        } else {
            windowedTasks -= 1
        }
        window.update(activeCommands: windowedTasks)
    }

    /// The unsolicited data (immediate + Data-Out, RFC 7143 §13.10, §13.11, §13.14) a
    /// write may carry and the target keeps until it ends.
    private func unsolicitedAllowance(_ command: SCSICommandPDU) -> Int {
        guard command.write, command.expectedDataTransferLength > 0 else { return 0 }
        let edtl = Int(command.expectedDataTransferLength)
        return parameters.initialR2T
            ? min(command.dataSegment.readableBytes, edtl) : min(parameters.firstBurstLength, edtl)
    }

    /// Whether an immediate command's unsolicited data still fits in the window's
    /// worth, next to one FirstBurstLength per windowed command (delivered or held).
    private func unsolicitedFits(_ command: SCSICommandPDU) -> Bool {
        let allowance = unsolicitedAllowance(command)
        guard allowance > 0 else { return true }
        let windowed = (windowedTasks + heldPDUs.count) * parameters.firstBurstLength
        return windowed + immediateUnsolicitedBytes + allowance <= window.queueDepth * parameters.firstBurstLength
    }

    /// Immediate PDUs that outlive their arrival (a task, a pending TMF) and so count
    /// against ``SessionParameters/maxImmediateCommands``; NOP-Out, Text and
    /// Logout are answered at once.
    static func holdsState(_ pdu: ISCSIPDU) -> Bool {
        switch pdu {
        case .scsiCommand, .taskManagementRequest: true
        default: false
        }
    }

    private mutating func forward(
        _ request: TaskManagementRequestPDU, function: TaskManagementFunctionCode, waitingFor: Set<UInt32>,
        into actions: inout [SessionAction]
    ) {
        if pendingTaskManagement[request.initiatorTaskTag]?.immediate == true { immediateCommands -= 1 }
        if request.immediate { immediateCommands += 1 }
        pendingTaskManagement[request.initiatorTaskTag] = PendingTaskManagement(
            function: function, immediate: request.immediate, waitingFor: waitingFor)
        actions.append(
            .taskManagement(
                SessionTaskManagementRequest(
                    initiatorTaskTag: request.initiatorTaskTag, function: function, lun: request.lun,
                    referencedTaskTag: request.referencedTaskTag)))
    }

    private mutating func sendTaskManagementResponse(initiatorTaskTag: UInt32, response: TaskManagementResponseCode, into actions: inout [SessionAction]) {
        let pdu = TaskManagementResponsePDU(
            response: response.rawValue, initiatorTaskTag: initiatorTaskTag, statSN: takeStatSN(),
            expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN)
        actions.append(.send(.taskManagementResponse(pdu)))
    }

    // MARK: - Text (RFC 7143 §11.10)

    private mutating func text(_ request: TextRequestPDU, into actions: inout [SessionAction]) {
        guard textNegotiator != nil else {
            actions.append(.text(request))
            return
        }
        switch textNegotiator!.receive(request, statSN: statSN, expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN) {
        case .send(let response):
            statSN &+= 1
            actions.append(.send(.textResponse(response)))
        case .reject(let reason):
            reject(.textRequest(request), reason: reason, into: &actions)
        }
    }

    // MARK: - NOP, logout

    private mutating func nopOut(_ nop: NOPOutPDU, into actions: inout [SessionAction]) {
        // RFC 7143 §11.18: ITT 0xffffffff means no answer is wanted (a reply to
        // our ping, or a one-way ping).
        guard nop.initiatorTaskTag != 0xFFFF_FFFF else { return }
        // RFC 7143 §11.19: the answer echoes the ping data and the ITT, TTT 0xffffffff.
        // The decoder bounded the ping data by our MaxRecvDataSegmentLength; the echo
        // is also bounded by the initiator's (RFC 7143 §11.18.5, §13.12), cut when larger.
        var echo = nop.dataSegment
        if echo.readableBytes > parameters.initiatorMaxRecvDataSegmentLength {
            echo = echo.getSlice(at: echo.readerIndex, length: parameters.initiatorMaxRecvDataSegmentLength)!
        }
        let nopIn = NOPInPDU(
            lun: nop.lun, initiatorTaskTag: nop.initiatorTaskTag, targetTransferTag: 0xFFFF_FFFF,
            statSN: takeStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN, dataSegment: echo)
        actions.append(.send(.nopIn(nopIn)))
    }

    private mutating func logout(_ request: LogoutRequestPDU, into actions: inout [SessionAction]) {
        let reason = request.reasonCode & 0x7F
        let responseCode: UInt8
        var closes = true
        switch reason {
        case 0:
            // RFC 7143 §11.14.1: close the session.
            responseCode = 0
        case 1:
            // RFC 7143 §11.14.1: close the connection named by CID.
            if request.cid == cid {
                responseCode = 0
            } else {
                responseCode = 1  // CID not found
                closes = false
            }
        case 2:
            // RFC 7143 §11.15.1: connection recovery is not supported at ErrorRecoveryLevel 0.
            responseCode = 2
            closes = false
        default:
            reject(.logoutRequest(request), reason: RejectReason.invalidPDUField, into: &actions)
            return
        }
        let response = LogoutResponsePDU(
            response: responseCode, initiatorTaskTag: request.initiatorTaskTag, statSN: takeStatSN(),
            expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN, time2Wait: 0, time2Retain: 0)
        actions.append(.send(.logoutResponse(response)))
        if closes { close(.logout, into: &actions) }
    }

    // MARK: - Helpers

    private mutating func takeStatSN() -> UInt32 {
        let value = statSN
        statSN &+= 1
        return value
    }

    private mutating func reject(_ pdu: ISCSIPDU, reason: UInt8, into actions: inout [SessionAction]) {
        sendReject(reason: reason, header: Self.basicHeaderSegment(of: pdu), into: &actions)
    }

    private mutating func sendReject(reason: UInt8, header: ByteBuffer, into actions: inout [SessionAction]) {
        // RFC 7143 §11.17: the data segment is the rejected PDU's header; DataSN/R2TSN is 0 here.
        let pdu = RejectPDU(
            reason: reason, statSN: takeStatSN(), expCmdSN: window.expCmdSN, maxCmdSN: window.maxCmdSN,
            dataSN: 0, dataSegment: header)
        actions.append(.send(.reject(pdu)))
    }

    private mutating func protocolError(_ pdu: ISCSIPDU, _ detail: String, into actions: inout [SessionAction]) {
        reject(pdu, reason: RejectReason.protocolError, into: &actions)
        close(.protocolError(detail), into: &actions)
    }

    private mutating func close(_ reason: SessionCloseReason, into actions: inout [SessionAction]) {
        state = .closing
        heldPDUs.removeAll()
        actions.append(.close(reason))
    }

    /// The 48-byte BHS of `pdu`, for a Reject's data segment.
    static func basicHeaderSegment(of pdu: ISCSIPDU) -> ByteBuffer {
        let encoded = ISCSIFrameEncoder(headerDigest: false, dataDigest: false).encode(pdu, allocator: ByteBufferAllocator())
        return encoded.header.getSlice(at: encoded.header.readerIndex, length: min(48, encoded.header.readableBytes)) ?? ByteBuffer()
    }
}

extension SessionStateMachine {
    /// Convenience for tests and simple callers: one input, its actions.
    public mutating func receive(_ pdu: ISCSIPDU, now: Duration = .zero) -> [SessionAction] {
        var actions: [SessionAction] = []
        receive(pdu, now: now, into: &actions)
        return actions
    }

    /// Convenience: a completion, its actions.
    public mutating func commandCompleted(_ command: SessionCommand, _ result: SessionCommandResult, now: Duration = .zero) -> [SessionAction] {
        var actions: [SessionAction] = []
        commandCompleted(taskID: command.taskID, initiatorTaskTag: command.initiatorTaskTag, result, now: now, into: &actions)
        return actions
    }

    /// Convenience: a TMF completion, its actions.
    public mutating func taskManagementCompleted(initiatorTaskTag: UInt32, response: TaskManagementResponseCode) -> [SessionAction] {
        var actions: [SessionAction] = []
        taskManagementCompleted(initiatorTaskTag: initiatorTaskTag, response: response, into: &actions)
        return actions
    }

    /// Convenience: a tick, its actions.
    public mutating func tick(now: Duration) -> [SessionAction] {
        var actions: [SessionAction] = []
        tick(now: now, into: &actions)
        return actions
    }
}

/// What the SCSI layer says of a CDB's write data (its descriptor table).
public struct DataOutExpectation: Sendable, Equatable {
    /// The bytes the CDB asks the initiator to send (SAM-5 SPDTL): write
    /// residuals are measured against it (RFC 7143 §11.4.5.2).
    public var length: Int
    /// The bytes worth soliciting and keeping: `length`, or 0 when the command
    /// fails whatever its data (more than the LUN's MAXIMUM TRANSFER LENGTH,
    /// SBC-3 §6.6.4), so a host cannot make the target buffer what it will refuse.
    public var solicited: Int

    public init(length: Int, solicited: Int? = nil) {
        self.length = length
        self.solicited = solicited ?? length
    }

    /// `length`, solicited only when at most `maximum` (nil: no maximum).
    public init(length: Int, maximum: Int?) {
        self.init(length: length, solicited: maximum.map { length <= $0 ? length : 0 })
    }
}
