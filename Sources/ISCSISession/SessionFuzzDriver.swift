import ISCSIWire
import NIOCore
import SCSIWire

/// Plays the connection handler and the SCSI layer around the login and
/// session machines for ``SessionFuzzing``, checking their outputs.
struct SessionFuzzDriver {
    /// The input's first byte.
    struct Mode: OptionSet {
        let rawValue: UInt8
        /// Start in full feature phase (no login) with the parameters below.
        static let skipLogin = Mode(rawValue: 1 << 0)
        static let headerDigest = Mode(rawValue: 1 << 1)
        static let dataDigest = Mode(rawValue: 1 << 2)
        static let initialR2T = Mode(rawValue: 1 << 3)
        static let noImmediateData = Mode(rawValue: 1 << 4)
        /// A discovery session (no SCSI commands).
        static let discovery = Mode(rawValue: 1 << 5)
        /// Bits 6-7: how many commands the SCSI layer holds before completing the oldest.
        var completionLag: Int { Int(rawValue >> 6) }
    }

    /// What the fake SCSI layer has not answered yet.
    private enum Pending {
        case command(SessionCommand)
        case taskManagement(SessionTaskManagementRequest)
    }

    let mode: Mode
    private var output = TargetOutputCheck()
    private var login = LoginStateMachine(
        configuration: FuzzLoginConfiguration.configuration, newTSIH: 1, random: FuzzLoginConfiguration.random)
    private var session: SessionStateMachine?
    private var decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 8192)
    private var pending: [Pending] = []
    /// ExpectedDataTransferLength of each executing command, by tag: Data-In may not pass it.
    private var readLimit: [UInt32: Int] = [:]
    private var closed = false
    private var now: Duration = .zero

    /// The largest Data-In the fake SCSI layer returns for one command.
    static let maxDataIn = 1 << 18

    init(mode: Mode) {
        self.mode = mode
    }

    /// Feeds the whole stream; false on the first inconsistency.
    mutating func run(_ stream: inout ByteBuffer) -> Bool {
        if mode.contains(.skipLogin) {
            var parameters = NegotiatedParameters()
            parameters.headerDigest = mode.contains(.headerDigest)
            parameters.dataDigest = mode.contains(.dataDigest)
            parameters.initialR2T = mode.contains(.initialR2T)
            parameters.immediateData = !mode.contains(.noImmediateData)
            parameters.maxOutstandingR2T = 4
            let outcome = LoginOutcome(
                sessionType: mode.contains(.discovery) ? .discovery : .normal,
                initiatorName: "iqn.2026-01.dev.tessera:initiator",
                targetName: mode.contains(.discovery) ? nil : FuzzLoginConfiguration.openTarget, isid: 1, tsih: 1,
                cid: 0, expCmdSN: 1, statSN: 1, parameters: parameters)
            startSession(outcome, advertisedMaxCmdSN: nil)
        }
        while !closed {
            let inbound: ISCSIInbound?
            do {
                inbound = try decoder.decode(&stream)
            } catch {
                // A framing error ends the connection (RFC 7143 §7.8).
                break
            }
            guard let inbound else { break }
            guard receive(inbound) else { return false }
        }
        return finish()
    }

    private mutating func receive(_ inbound: ISCSIInbound) -> Bool {
        guard session != nil else { return receiveDuringLogin(inbound) }
        now += .seconds(1)
        var actions: [SessionAction] = []
        session!.tick(now: now, into: &actions)
        switch inbound {
        case .pdu(let pdu): session!.receive(pdu, now: now, into: &actions)
        case .reject(let reason, let header):
            session!.receiveRejected(reason: reason, basicHeaderSegment: header, now: now, into: &actions)
        }
        guard carryOut(actions) else { return false }
        while pending.count > mode.completionLag {
            guard completeOldest() else { return false }
        }
        return true
    }

    /// The end of the input: the SCSI layer answers everything, then time passes.
    private mutating func finish() -> Bool {
        guard session != nil else { return true }
        while !pending.isEmpty {
            guard completeOldest() else { return false }
        }
        for _ in 0..<3 {
            now += .seconds(10)
            var actions: [SessionAction] = []
            session!.tick(now: now, into: &actions)
            guard carryOut(actions) else { return false }
        }
        return true
    }

    // MARK: - Login

    private mutating func receiveDuringLogin(_ inbound: ISCSIInbound) -> Bool {
        // RFC 7143 §6.1: anything but a Login Request before full feature phase closes the connection.
        guard case .pdu(.loginRequest(let request)) = inbound else {
            closed = true
            return true
        }
        let action = login.receive(request)
        guard output.accept(action) else { return false }
        switch action {
        case .send:
            return true
        case .sendAndClose:
            closed = true
            return true
        case .complete(let response, let outcome):
            guard login.isFinished else { return false }
            guard outcome.isLeadingConnection else {
                // The server refuses a second connection (MaxConnections=1).
                closed = true
                return true
            }
            startSession(outcome, advertisedMaxCmdSN: response.maxCmdSN)
            return true
        }
    }

    private mutating func startSession(_ outcome: LoginOutcome, advertisedMaxCmdSN: UInt32?) {
        let negotiated = outcome.parameters
        let parameters = SessionParameters(
            negotiated: negotiated, queueDepth: 16, nopInInterval: .seconds(3), nopInTimeout: .seconds(5),
            maxImmediateCommands: 4, maxSolicitedWriteBytes: 1 << 20)
        session = SessionStateMachine(
            parameters: parameters, expCmdSN: outcome.expCmdSN, statSN: outcome.statSN,
            maxCmdSN: advertisedMaxCmdSN, cid: outcome.cid, allowsSCSI: outcome.sessionType == .normal,
            textNegotiator: TextNegotiator(configuration: FuzzLoginConfiguration.configuration, outcome: outcome),
            dataOutLength: Self.dataOutLength, now: now)
        decoder = ISCSIFrameDecoder(
            maxRecvDataSegmentLength: Int(negotiated.targetMaxRecvDataSegmentLength),
            headerDigest: negotiated.headerDigest, dataDigest: negotiated.dataDigest)
        output.enterFullFeaturePhase(
            headerDigest: negotiated.headerDigest, dataDigest: negotiated.dataDigest,
            initiatorMaxRecvDataSegmentLength: parameters.sanitizedInitiatorMaxRecvDataSegmentLength)
    }

    /// The SCSI layer's descriptor table for a 512-byte-block unit with a 1 MiB transfer limit.
    static let dataOutLength: SessionStateMachine.DataOutLengthOracle = { _, cdb in
        guard let (_, command) = try? CommandDescriptor.parse(cdb) else { return nil }
        switch command.dataTransfer(blockSize: 512) {
        case .dataOut(let length): return DataOutExpectation(length: Int(clamping: length), maximum: 1 << 20)
        case .none: return DataOutExpectation(length: 0)
        case .dataIn: return nil
        }
    }

    // MARK: - Session

    /// Carries out the session machine's actions, checking each.
    private mutating func carryOut(_ actions: [SessionAction]) -> Bool {
        for action in actions {
            // Nothing follows a close.
            guard !closed else { return false }
            switch action {
            case .send(let pdu):
                guard output.accept(pdu) else { return false }
                if case .dataIn(let data) = pdu {
                    guard let limit = readLimit[data.initiatorTaskTag],
                        Int(data.bufferOffset) + data.dataSegment.readableBytes <= limit
                    else { return false }
                }
            case .execute(let command):
                guard Self.wellFormed(command) else { return false }
                readLimit[command.initiatorTaskTag] = Int(command.expectedDataTransferLength)
                pending.append(.command(command))
            case .taskArrived:
                break
            case .taskManagement(let request):
                pending.append(.taskManagement(request))
            case .text:
                // Only without a TextNegotiator, and this driver gives one.
                return false
            case .close:
                closed = true
            }
        }
        return true
    }

    /// A command's write data covers 0..<dataOutLength once, within what was expected.
    static func wellFormed(_ command: SessionCommand) -> Bool {
        var covered = 0
        for segment in command.dataOut.sorted(by: { $0.offset < $1.offset }) {
            guard segment.offset == covered else { return false }
            covered += segment.bytes.readableBytes
        }
        return covered == command.dataOutLength && command.dataOutLength <= Int(command.expectedDataTransferLength)
    }

    /// The fake SCSI layer answers its oldest request: GOOD, with Data-In for a
    /// read (a little more than asked now and then, which the session must cut).
    private mutating func completeOldest() -> Bool {
        guard session != nil, !pending.isEmpty else { return true }
        var actions: [SessionAction] = []
        switch pending.removeFirst() {
        case .command(let command):
            var dataIn: ByteBuffer?
            if command.read {
                let extra = command.taskID % 3 == 0 ? 512 : 0
                let length = min(Int(command.expectedDataTransferLength) + extra, Self.maxDataIn)
                var buffer = ByteBuffer()
                buffer.writeRepeatingByte(UInt8(truncatingIfNeeded: command.taskID), count: length)
                dataIn = buffer
            }
            session!.commandCompleted(
                taskID: command.taskID, initiatorTaskTag: command.initiatorTaskTag,
                SessionCommandResult(status: 0, dataIn: dataIn), now: now, into: &actions)
        case .taskManagement(let request):
            session!.taskManagementCompleted(
                initiatorTaskTag: request.initiatorTaskTag, response: .functionComplete, into: &actions)
        }
        return carryOut(actions)
    }
}

extension SessionParameters {
    /// The initiator's MaxRecvDataSegmentLength as the session machine clamps it.
    var sanitizedInitiatorMaxRecvDataSegmentLength: Int { sanitized.initiatorMaxRecvDataSegmentLength }
}
