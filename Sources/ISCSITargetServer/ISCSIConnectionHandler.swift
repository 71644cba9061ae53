import BlockStorage
import EventLoopExecution
import ISCSISession
import ISCSIWire
import Logging
import NIOCore
import SCSITarget

/// Shared, read-only context every connection of a portal needs.
struct ConnectionEnvironment: Sendable {
    var login: @Sendable () -> LoginConfiguration
    /// The device of a target, by its lowercased name, as the server serves it now.
    var target: @Sendable (String) -> (any SCSITaskExecutor)?
    var portalGroupTag: UInt16
    var queueDepth: Int
    var nopInInterval: Duration?
    var nopInTimeout: Duration
    /// How long a connection with nothing running polls for the next command (zero: never).
    var idlePoll: Duration = .zero
    var registry: SessionRegistry
    var logger: Logger
    /// What a host can make the connection hold.
    var limits = ISCSIServerLimits()
}

/// One iSCSI connection: runs the login machine, then the full-feature session
/// machine, and carries out their actions in one place (``run(_:context:)``).
/// SCSI commands run as Swift tasks; their results come back on the event loop.
final class ISCSIConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ISCSIInbound
    typealias OutboundOut = ISCSIPDU

    private let environment: ConnectionEnvironment
    private let frameHandler: ISCSIFrameHandler
    private let connectionID: UInt64
    private let clockOrigin = ContinuousClock.now
    private var logger: Logger

    private var login: LoginStateMachine?
    private var session: SessionStateMachine?
    /// The TSIH of the session this connection created, taken when its leading
    /// login succeeded (a connection that never logs in takes none).
    private var reservedTSIH: UInt16?
    /// Counted in the registry's connection bounds (false when refused at accept).
    private var admitted = false
    /// Closes the connection if login has not finished by ``ISCSIServerLimits/loginTimeout``.
    private var loginTimer: Scheduled<Void>?
    /// Commands the session machine started while the channel was not writable:
    /// they run, in order, once it is (their Data-In would only queue up).
    private var deferredCommands: [SessionCommand] = []
    /// ExpectedDataTransferLength of the started commands with Data-In not finished yet.
    private var readBytesInFlight = 0
    private var sessionKey: SessionRegistry.Key?
    private var nexus: ITNexus?
    private var executor: (any SCSITaskExecutor)?
    private var keepalive: RepeatedTask?
    private var closing = false
    /// The session's initiator and target names once login completed (peer text: escape before logging).
    private var initiatorName: String?
    private var targetName: String?
    /// Reused between inputs so a PDU costs no array allocation.
    private var actions: [SessionAction] = []
    /// When to poll for the next command instead of letting the loop sleep.
    private var idlePoll: IdlePollPolicy
    /// The socket's descriptor, for that poll (found at full feature phase).
    private var socketDescriptor: Int32?
    /// Counted in ``LoopConnectionCounts`` (from channelActive to channelInactive).
    private var countedOnLoop = false
    /// Where READ data goes: the connection's send buffers, and lent file
    /// pages unless a data digest must read them.
    private var dataInAllocator = SendBufferAllocator(sendsLentMemory: false)

    init(environment: ConnectionEnvironment, frameHandler: ISCSIFrameHandler) {
        self.environment = environment
        self.frameHandler = frameHandler
        self.connectionID = environment.registry.makeConnectionID()
        self.logger = environment.logger
        self.logger[metadataKey: "connection"] = "\(connectionID)"
        self.idlePoll = IdlePollPolicy(budget: environment.idlePoll)
        actions.reserveCapacity(16)
    }

    private var now: Duration { ContinuousClock.now - clockOrigin }

    // MARK: - Channel events

    func channelActive(context: ChannelHandlerContext) {
        let address = context.channel.remoteAddress?.ipAddress ?? "-"
        if let refusal = environment.registry.admitConnection(
            connectionID, channel: context.channel, address: address, limits: environment.limits)
        {
            closing = true
            let (log, suppressed) = environment.registry.shouldLogRefusal()
            if log {
                logEnding(
                    "refused at accept: \(refusal)", context: context,
                    ["refused-since-last-line": "\(suppressed)"])
            }
            context.close(promise: nil)
            return
        }
        admitted = true
        LoopConnectionCounts.shared.add(context.eventLoop)
        countedOnLoop = true
        // Device completions for this connection's commands are reaped on its loop.
        EventLoopCompletionPoller.installIfNeeded(on: context.eventLoop)
        // The TSIH is the registry's to give when the leading login completes
        // (``loginCompleted``); the machine's placeholder is replaced there.
        login = LoginStateMachine(configuration: environment.login(), newTSIH: Self.placeholderTSIH)
        let timeout = environment.limits.loginTimeout
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        loginTimer = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            let (handler, context) = loopBound.value
            handler.loginTimedOut(after: timeout, context: context)
        }
        context.fireChannelActive()
    }

    /// Stands in for the TSIH in the login machine until the registry gives the real one.
    static let placeholderTSIH: UInt16 = 0xFFFF

    /// The login did not finish in time: the connection ends (the host may
    /// have sent nothing at all, or stalled mid-negotiation).
    private func loginTimedOut(after timeout: Duration, context: ChannelHandlerContext) {
        loginTimer = nil
        guard !closing, login != nil else { return }
        logEnding("login not completed within login_timeout", context: context, ["login-timeout": "\(timeout)"])
        closing = true
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        keepalive?.cancel()
        keepalive = nil
        loginTimer?.cancel()
        loginTimer = nil
        deferredCommands.removeAll()
        closing = true
        session = nil
        login = nil
        if let key = sessionKey, let nexus, let executor,
            environment.registry.remove(key, connectionID: connectionID)
        {
            environment.registry.startCleanup(key) { await executor.nexusLost(nexus) }
        }
        if let tsih = reservedTSIH { environment.registry.releaseTSIH(tsih) }
        reservedTSIH = nil
        if admitted { environment.registry.connectionClosed(connectionID) }
        if countedOnLoop { LoopConnectionCounts.shared.remove(context.eventLoop) }
        countedOnLoop = false
        socketDescriptor = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let inbound = unwrapInboundIn(data)
        if session != nil {
            let at = now
            lastArrival = at
            switch inbound {
            case .pdu(let pdu):
                session!.receive(pdu, now: at, into: &actions)
            case .reject(let reason, let header):
                session!.receiveRejected(reason: reason, basicHeaderSegment: header, now: at, into: &actions)
            }
            runActions(context: context)
        } else if login != nil {
            loginRead(inbound, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // One flush per read burst.
        context.flush()
        context.fireChannelReadComplete()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if let error = error as? ISCSIWireError {
            // The byte stream cannot be parsed any more (RFC 7143 §7.8 header digest, §13.12 length).
            logEnding("framing error: \(error)", context: context)
        } else if !closing {
            logger.debug("connection error, closing", metadata: ["error": "\(LogText.escaped("\(error)"))"])
        }
        closing = true
        context.close(promise: nil)
    }

    // MARK: - Login phase

    private func loginRead(_ inbound: ISCSIInbound, context: ChannelHandlerContext) {
        guard case .pdu(.loginRequest(let request)) = inbound else {
            // RFC 7143 §6.1: only Login Requests before full feature phase.
            let what: String
            switch inbound {
            case .pdu(let pdu): what = "\(pdu.opcode)"
            case .reject(let reason, _): what = "an undecodable PDU (reject reason 0x\(String(reason, radix: 16)))"
            }
            logEnding("\(what) before login completed", context: context)
            closing = true
            context.close(promise: nil)
            return
        }
        switch login!.receive(request) {
        case .send(let response):
            context.writeAndFlush(wrapOutboundOut(.loginResponse(response)), promise: nil)
        case .sendAndClose(let response):
            let status = String(UInt16(response.statusClass) << 8 | UInt16(response.statusDetail), radix: 16)
            logEnding(
                "login refused: \(login?.lastFailureReason ?? "-")", context: context,
                ["status": "0x\(String(repeating: "0", count: 4 - status.count))\(status)"])
            sendThenClose(.loginResponse(response), context: context)
        case .complete(let response, let outcome):
            loginCompleted(response, outcome, context: context)
        }
    }

    private func loginCompleted(_ final: LoginResponsePDU, _ completed: LoginOutcome, context: ChannelHandlerContext) {
        login = nil
        // The host's part of login is over; what remains waits on the target only.
        loginTimer?.cancel()
        loginTimer = nil
        var response = final
        var outcome = completed
        if completed.isLeadingConnection {
            // RFC 7143 §11.13.4: a new session's TSIH is given in the final Login Response only.
            guard let tsih = environment.registry.reserveTSIH() else {
                // RFC 7143 §11.13.5: 0x0302 "Out of resources".
                let failure = LoginResponsePDU.loginFailure(
                    replacing: final, status: LoginStatus(statusClass: 3, statusDetail: 0x02))
                logEnding("login refused: no TSIH free for a new session", context: context, ["status": "0x0302"])
                sendThenClose(.loginResponse(failure), context: context)
                return
            }
            reservedTSIH = tsih
            response.tsih = tsih
            outcome.tsih = tsih
        }
        startSession(response, outcome, context: context)
    }

    /// Login succeeded (the TSIH assigned): refuse a second connection, bind the
    /// normal session to its device and nexus, then enter full feature phase.
    private func startSession(_ response: LoginResponsePDU, _ outcome: LoginOutcome, context: ChannelHandlerContext) {
        initiatorName = outcome.initiatorName
        targetName = outcome.targetName
        if !outcome.isLeadingConnection {
            // RFC 7143 §6.3.1: a non-zero TSIH adds a connection to a session. One
            // connection per session here (MaxConnections=1): refuse (0x0206, too many connections).
            let failure = LoginResponsePDU.loginFailure(replacing: response, status: LoginStatus(statusClass: 2, statusDetail: 0x06))
            logEnding(
                "login refused: a second connection for session TSIH \(outcome.tsih) (MaxConnections=1)", context: context,
                ["status": "0x0206"])
            sendThenClose(.loginResponse(failure), context: context)
            return
        }
        if outcome.sessionType == .normal {
            guard let targetName = outcome.targetName, let executor = environment.target(targetName.lowercased()) else {
                // The login machine accepted a target this server has no device for.
                logEnding("login for a target without a device", context: context, level: .error)
                closing = true
                context.close(promise: nil)
                return
            }
            let nexus = ITNexus(
                initiatorName: outcome.initiatorName, isid: outcome.isid, targetName: targetName,
                portalGroupTag: environment.portalGroupTag)
            let key = SessionRegistry.Key(initiatorName: outcome.initiatorName, isid: outcome.isid, targetName: targetName)
            self.nexus = nexus
            self.executor = executor
            self.sessionKey = key
            let replaced = environment.registry.register(
                key,
                SessionRegistry.Entry(
                    tsih: outcome.tsih, connectionID: connectionID, channel: context.channel, nexus: nexus,
                    executor: executor))
            if let replaced {
                // RFC 7143 §6.3.5: session reinstatement closes the old session's connection.
                logger.notice(
                    "session reinstatement: closing the old session's connection",
                    metadata: connectionMetadata(context: context, ["replaced-connection": "\(replaced.connectionID)"]))
                replaced.channel.close(promise: nil)
                environment.registry.startCleanup(key) { await replaced.executor.nexusLost(replaced.nexus) }
            }
            // The old session's and the new one's nexus are the same I_T nexus (the same
            // names): the old one's cleanup (tasks aborted, SPC-2 reservation released) must
            // be over before the new session's first command, or it would abort that command
            // or release the new holder's reservation. The Login Response waits for it.
            let pending = environment.registry.pendingCleanup(key)
            let eventLoop = context.eventLoop
            let bound = NIOLoopBound((self, context), eventLoop: eventLoop)
            Task {
                await pending?.value
                await executor.nexusEstablished(nexus)
                eventLoop.execute {
                    let (handler, context) = bound.value
                    guard !handler.closing else { return }
                    handler.enterFullFeaturePhase(response, outcome, context: context)
                }
            }
            return
        }
        enterFullFeaturePhase(response, outcome, context: context)
    }

    /// Sends the final Login Response and starts the session (RFC 7143 §6.3).
    private func enterFullFeaturePhase(_ response: LoginResponsePDU, _ outcome: LoginOutcome, context: ChannelHandlerContext) {
        let parameters = outcome.parameters
        let configuration = environment.login()
        session = SessionStateMachine(
            parameters: SessionParameters(
                negotiated: parameters, queueDepth: environment.queueDepth,
                nopInInterval: environment.nopInInterval, nopInTimeout: environment.nopInTimeout,
                maxImmediateCommands: environment.limits.maxImmediateCommands,
                maxSolicitedWriteBytes: environment.limits.maxWriteBytesInFlight),
            expCmdSN: outcome.expCmdSN, statSN: outcome.statSN, maxCmdSN: response.maxCmdSN, cid: outcome.cid,
            allowsSCSI: outcome.sessionType == .normal,
            textNegotiator: TextNegotiator(configuration: configuration, outcome: outcome),
            dataOutLength: dataOutLengthOracle(), now: now)
        context.write(wrapOutboundOut(.loginResponse(response)), promise: nil)
        // RFC 7143 §13.1: digests start with the first PDU after the final login response.
        frameHandler.enableDigests(header: parameters.headerDigest, data: parameters.dataDigest)
        // A data digest is computed in user space over the Data-In: lent file
        // pages would be read there, where a file cut short underneath faults.
        dataInAllocator = SendBufferAllocator(sendsLentMemory: !parameters.dataDigest)
        frameHandler.maxRecvDataSegmentLength = Int(parameters.targetMaxRecvDataSegmentLength)
        if outcome.sessionType == .normal, idlePoll.budget > .zero, let local = context.channel.localAddress,
            let remote = context.channel.remoteAddress
        {
            socketDescriptor = IdlePoll.descriptor(local: local, remote: remote)
        }
        context.flush()
        startKeepalive(context: context)
    }

    private func startKeepalive(context: ChannelHandlerContext) {
        guard environment.nopInInterval != nil else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        keepalive = context.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { _ in
            let bound = loopBound.value
            bound.0.tick(context: bound.1)
        }
    }

    private func tick(context: ChannelHandlerContext) {
        guard !closing, session != nil else { return }
        session!.tick(now: now, into: &actions)
        runActions(context: context)
        context.flush()
    }

    // MARK: - Actions

    private func runActions(context: ChannelHandlerContext) {
        var index = 0
        while index < actions.count {
            let action = actions[index]
            index += 1
            if case .send(let pdu) = action, index < actions.count, case .close(let reason) = actions[index] {
                logClose(reason, context: context)
                if case .logoutResponse = pdu {
                    sendAfterNexusLoss(pdu, context: context)
                } else {
                    sendThenClose(pdu, context: context)
                }
                index += 1
                continue
            }
            run(action, context: context)
        }
        actions.removeAll(keepingCapacity: true)
    }

    /// A logout ends the I_T nexus: its tasks are aborted and its SPC-2
    /// reservation released before the Logout Response goes out, so a
    /// command another nexus sends after seeing the logout complete never
    /// meets the departed holder (RFC 7143 §11.14.1: the response reports the
    /// cleanup done; SPC-2 §5.5.1: I_T nexus loss releases the reservation).
    private func sendAfterNexusLoss(_ pdu: ISCSIPDU, context: ChannelHandlerContext) {
        guard let key = sessionKey, let nexus, let executor,
            environment.registry.remove(key, connectionID: connectionID)
        else {
            sendThenClose(pdu, context: context)
            return
        }
        closing = true
        let eventLoop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: eventLoop)
        let cleanup = environment.registry.startCleanup(key) { await executor.nexusLost(nexus) }
        Task {
            await cleanup.value
            eventLoop.execute {
                let (handler, context) = bound.value
                let channel = context.channel
                context.writeAndFlush(handler.wrapOutboundOut(pdu)).whenComplete { _ in channel.close(promise: nil) }
            }
        }
    }

    /// Writes `pdu` and closes the connection once it is on the wire (a refusal
    /// or a final response must reach the initiator before the socket closes).
    private func sendThenClose(_ pdu: ISCSIPDU, context: ChannelHandlerContext) {
        closing = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(pdu)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Carries out one session action.
    private func run(_ action: SessionAction, context: ChannelHandlerContext) {
        switch action {
        case .send(let pdu):
            context.write(wrapOutboundOut(pdu), promise: nil)
        case .execute(let command):
            execute(command, context: context)
        case .taskArrived(let tag, let lun):
            if let executor, let nexus { executor.taskArrived(nexus: nexus, taskTag: tag, lun: lun) }
        case .taskManagement(let request):
            taskManagement(request, context: context)
        case .text(let request):
            // The machine owns a TextNegotiator, so this does not happen; answer anyway.
            session?.textResponse(
                TextResponsePDU(final: true, lun: request.lun, initiatorTaskTag: request.initiatorTaskTag), into: &actions)
        case .close(let reason):
            logClose(reason, context: context)
            closing = true
            context.flush()
            context.close(promise: nil)
        }
    }

    // MARK: - Connection endings in the log

    /// Logs why the session machine closes the connection: at notice level when
    /// the target decides it, at info level for the initiator's logout.
    private func logClose(_ reason: SessionCloseReason, context: ChannelHandlerContext) {
        guard reason.isTargetDecision else {
            logger.info("initiator logged out", metadata: connectionMetadata(context: context))
            return
        }
        var figures: Logger.Metadata = [:]
        if case .nopTimeout = reason {
            figures["nop-in-interval"] = "\(environment.nopInInterval.map { "\($0)" } ?? "off")"
            figures["nop-in-timeout"] = "\(environment.nopInTimeout)"
        }
        logEnding("\(reason)", context: context, figures)
    }

    /// Logs a connection the target ends on its own: why, with the figures
    /// involved, the initiator and target names (escaped), the portal and the peer.
    private func logEnding(
        _ why: String, context: ChannelHandlerContext, level: Logger.Level = .notice, _ figures: Logger.Metadata = [:]
    ) {
        logger.log(
            level: level, "connection closed by the target: \(LogText.escaped(why))",
            metadata: connectionMetadata(context: context, figures))
    }

    /// Who and where, for a log line about this connection.
    private func connectionMetadata(context: ChannelHandlerContext, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var metadata = extra
        let initiator = initiatorName ?? login?.declaredInitiatorName
        metadata["initiator"] = "\(initiator.map { LogText.escaped($0) } ?? "-")"
        if let target = targetName ?? login?.declaredTargetName { metadata["target"] = "\(LogText.escaped(target))" }
        metadata["portal"] = "\(Self.addressText(context.channel.localAddress))"
        metadata["peer"] = "\(Self.addressText(context.channel.remoteAddress))"
        return metadata
    }

    private static func addressText(_ address: SocketAddress?) -> String {
        guard let address, let ip = address.ipAddress, let port = address.port else { return "-" }
        return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }

    /// The SCSI layer's data-out length of a CDB (its descriptor table), for the
    /// session machine to bound R2Ts and buffering by; nil in a discovery session.
    private func dataOutLengthOracle() -> SessionStateMachine.DataOutLengthOracle? {
        guard let executor, let nexus else { return nil }
        return { lun, cdb in
            let probe = SCSICommand(lun: lun, cdb: cdb, nexus: nexus, taskTag: 0, expectedDataTransferLength: 0)
            return executor.expectedWriteLength(for: probe).map {
                DataOutExpectation(length: $0, maximum: executor.maximumWriteLength(lun: lun))
            }
        }
    }

    // MARK: - Output backpressure

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The ReadGate in front stops and restarts reading; here the commands held back run.
        if context.channel.isWritable { runDeferredCommands(context: context) }
        context.fireChannelWritabilityChanged()
    }

    private func runDeferredCommands(context: ChannelHandlerContext) {
        while !closing, let next = deferredCommands.first, mayStart(next, context: context) {
            deferredCommands.removeFirst()
            start(next, context: context)
        }
    }

    /// Data-In a command may produce, counted against ``ISCSIServerLimits/maxReadBytesInFlight``.
    private static func readCost(_ command: SessionCommand) -> Int {
        command.read ? Int(command.expectedDataTransferLength) : 0
    }

    /// The socket's queue is under the high-water mark and the command's Data-In fits
    /// in the bound on reads in flight (a command alone always fits).
    private func mayStart(_ command: SessionCommand, context: ChannelHandlerContext) -> Bool {
        guard context.channel.isWritable else { return false }
        let cost = Self.readCost(command)
        guard cost > 0, readBytesInFlight > 0 else { return true }
        return readBytesInFlight + cost <= environment.limits.maxReadBytesInFlight
    }

    private func execute(_ command: SessionCommand, context: ChannelHandlerContext) {
        // A host that does not read its responses cannot make the target produce
        // more: while the socket's queue is above the high-water mark, or the
        // reads running would produce more than maxReadBytesInFlight, commands
        // wait (in order) here. Reading stops too while not writable, so at most
        // the CmdSN window plus the immediate-command bound can wait.
        guard deferredCommands.isEmpty, mayStart(command, context: context) else {
            deferredCommands.append(command)
            return
        }
        start(command, context: context)
    }

    /// Hands one command to the SCSI layer.
    private func start(_ command: SessionCommand, context: ChannelHandlerContext) {
        guard let executor, let nexus else {
            // No SCSI in a discovery session; the machine refuses commands there.
            return
        }
        var dataOut: IOBuffer?
        if command.dataOutLength > 0 {
            let buffer = IOBuffer(count: command.dataOutLength)
            for segment in command.dataOut {
                segment.bytes.withUnsafeReadableBytes { bytes in
                    guard segment.offset >= 0, segment.offset + bytes.count <= buffer.count else { return }
                    UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[segment.offset..<segment.offset + bytes.count])
                        .copyMemory(from: bytes)
                }
            }
            dataOut = buffer
        }
        var scsiCommand = SCSICommand(
            lun: command.lun, cdb: command.cdb, nexus: nexus, taskTag: command.initiatorTaskTag,
            attribute: TaskAttribute(rawValue: command.attribute) ?? .simple,
            expectedDataTransferLength: command.expectedDataTransferLength, dataOut: dataOut,
            dataOutLength: command.dataOutLength)
        scsiCommand.announced = command.announced
        if command.read { scsiCommand.dataInAllocator = dataInAllocator }
        let taskID = command.taskID
        let tag = command.initiatorTaskTag
        let readCost = Self.readCost(command)
        readBytesInFlight += readCost
        commandsRunning += 1
        // When its PDU arrived (a command held back by backpressure looks slower: it is not polled after).
        let started = lastArrival
        let eventLoop = context.eventLoop
        let allocator = context.channel.allocator
        let loopBound = NIOLoopBound((self, context), eventLoop: eventLoop)
        Task(executorPreference: taskExecutor(for: eventLoop)) {
            let response = await executor.execute(scsiCommand)
            // Write residuals come from the session machine (the CDB's length it learnt at arrival).
            let result = SCSIBridge.result(of: response, allocator: allocator)
            let complete: @Sendable () -> Void = {
                let bound = loopBound.value
                bound.0.commandsRunning -= 1
                bound.0.commandCompleted(taskID: taskID, initiatorTaskTag: tag, result, startedAt: started, context: bound.1)
                bound.0.readFinished(readCost, context: bound.1)
            }
            // With the loop as the task's executor this is the loop already; the
            // hop is for a device that resumed the task elsewhere.
            if eventLoop.inEventLoop { complete() } else { eventLoop.execute(complete) }
        }
    }

    /// The executor that runs this connection's command tasks on its event loop.
    private var loopExecutor: EventLoopTaskExecutor?

    private func taskExecutor(for eventLoop: any EventLoop) -> EventLoopTaskExecutor {
        if let loopExecutor { return loopExecutor }
        let created = EventLoopTaskExecutor(eventLoop: eventLoop)
        loopExecutor = created
        return created
    }

    /// Completions arriving in one event-loop tick share one flush (one writev).
    private var flushScheduled = false
    /// Commands handed to the SCSI layer and not completed yet.
    private var commandsRunning = 0
    /// When the last PDU was received (``now``), for the commands it starts.
    private var lastArrival = Duration.zero

    private func scheduleFlush(context: ChannelHandlerContext) {
        guard !flushScheduled else { return }
        flushScheduled = true
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let bound = loopBound.value
            bound.0.flushScheduled = false
            bound.1.flush()
        }
    }

    /// A started command ended: its Data-In is no longer being produced.
    private func readFinished(_ cost: Int, context: ChannelHandlerContext) {
        guard cost > 0 else { return }
        readBytesInFlight -= cost
        runDeferredCommands(context: context)
    }

    /// `startedAt`: when the command's PDU arrived (``now``).
    private func commandCompleted(
        taskID: UInt64, initiatorTaskTag: UInt32, _ result: SessionCommandResult, startedAt: Duration,
        context: ChannelHandlerContext
    ) {
        guard !closing, session != nil else { return }
        let at = now
        session!.commandCompleted(taskID: taskID, initiatorTaskTag: initiatorTaskTag, result, now: at, into: &actions)
        runActions(context: context)
        guard commandsRunning == 0, !flushScheduled else {
            scheduleFlush(context: context)
            return
        }
        // The last command running: no other completion can join this flush.
        context.flush()
        if at - startedAt < IdlePollPolicy.quickCommand { pollForNextCommand(context: context) }
    }

    /// With nothing left running, polls the socket for the host's next
    /// command for a little while before the loop may sleep (``IdlePoll``):
    /// only as the loop's only connection, with the socket found, and while
    /// such polls keep finding the next command.
    private func pollForNextCommand(context: ChannelHandlerContext) {
        guard let fd = socketDescriptor, !closing, deferredCommands.isEmpty,
            LoopConnectionCounts.shared.count(context.eventLoop) == 1, idlePoll.shouldPoll()
        else { return }
        let budget = idlePoll.budget
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        // As a task, so the rest of this tick's work runs first.
        context.eventLoop.execute {
            let handler = loopBound.value
            guard !handler.closing, handler.socketDescriptor == fd, handler.commandsRunning == 0 else { return }
            handler.idlePoll.record(hit: IdlePoll.wait(fd: fd, budget: budget))
        }
    }

    private func taskManagement(_ request: SessionTaskManagementRequest, context: ChannelHandlerContext) {
        guard let executor, let nexus, let function = SCSIBridge.function(request) else {
            session?.taskManagementCompleted(initiatorTaskTag: request.initiatorTaskTag, response: .functionNotSupported, into: &actions)
            return
        }
        let abortedHere = abortDeferredCommands(affectedBy: request)
        let eventLoop = context.eventLoop
        let loopBound = NIOLoopBound((self, context), eventLoop: eventLoop)
        let tag = request.initiatorTaskTag
        let lun = request.lun
        Task(executorPreference: taskExecutor(for: eventLoop)) {
            var result = await executor.taskManagement(function, lun: lun, nexus: nexus)
            // The SCSI layer never saw a task that waited here: it was aborted all the same.
            if abortedHere, request.function == .abortTask, result == .taskDoesNotExist { result = .functionComplete }
            let response = SCSIBridge.responseCode(result)
            eventLoop.execute {
                let bound = loopBound.value
                bound.0.taskManagementCompleted(initiatorTaskTag: tag, response: response, context: bound.1)
            }
        }
    }

    /// Commands held back by backpressure never reached the SCSI layer, so its task
    /// management cannot see them: those the function covers end here, aborted
    /// (SAM-5 §7, TAS=0: no response), as the SCSI layer would have ended them.
    /// Returns whether any did.
    private func abortDeferredCommands(affectedBy request: SessionTaskManagementRequest) -> Bool {
        let affected: (SessionCommand) -> Bool
        switch request.function {
        case .abortTask: affected = { $0.initiatorTaskTag == request.referencedTaskTag }
        case .abortTaskSet, .clearTaskSet, .logicalUnitReset: affected = { $0.lun == request.lun }
        case .targetWarmReset, .targetColdReset: affected = { _ in true }
        case .clearACA, .taskReassign: return false
        }
        let aborted = deferredCommands.filter(affected)
        guard !aborted.isEmpty else { return false }
        deferredCommands.removeAll(where: affected)
        for command in aborted {
            session?.commandCompleted(
                taskID: command.taskID, initiatorTaskTag: command.initiatorTaskTag,
                SessionCommandResult(status: 0, aborted: true), now: now, into: &actions)
        }
        return true
    }

    private func taskManagementCompleted(initiatorTaskTag: UInt32, response: TaskManagementResponseCode, context: ChannelHandlerContext) {
        guard !closing, session != nil else { return }
        session!.taskManagementCompleted(initiatorTaskTag: initiatorTaskTag, response: response, into: &actions)
        runActions(context: context)
        context.flush()
    }
}

/// Conversions between the SCSI layer's types and the session machine's.
enum SCSIBridge {
    /// Turns the SCSI layer's answer into the session machine's input. Data in a
    /// ``SendBufferAllocator`` buffer (every READ's) is sent as it is; other
    /// data (INQUIRY, MODE SENSE, …) is copied once.
    static func result(of response: SCSIResponse, allocator: ByteBufferAllocator) -> SessionCommandResult {
        var dataIn: ByteBuffer?
        if let buffer = response.dataIn, response.dataInLength > 0 {
            dataIn = SendBufferAllocator.payload(
                buffer, length: min(response.dataInLength, buffer.count), allocator: allocator)
        }
        return SessionCommandResult(
            status: response.status.rawValue, sense: response.sense, dataIn: dataIn, aborted: response.aborted)
    }

    /// RFC 7143 §11.5.1 function codes → SAM-5 task management functions.
    static func function(_ request: SessionTaskManagementRequest) -> TaskManagementFunction? {
        switch request.function {
        case .abortTask: .abortTask(taskTag: request.referencedTaskTag)
        case .abortTaskSet: .abortTaskSet
        case .clearACA: .clearACA
        case .clearTaskSet: .clearTaskSet
        case .logicalUnitReset: .logicalUnitReset
        case .targetWarmReset: .targetWarmReset
        case .targetColdReset: .targetColdReset
        case .taskReassign: nil
        }
    }

    /// SAM-5 task management outcomes → RFC 7143 §11.6.1 response codes.
    static func responseCode(_ result: TaskManagementResult) -> TaskManagementResponseCode {
        switch result {
        case .functionComplete: .functionComplete
        case .taskDoesNotExist: .taskDoesNotExist
        case .lunDoesNotExist: .lunDoesNotExist
        case .functionNotSupported: .functionNotSupported
        case .functionRejected: .functionRejected
        }
    }
}
