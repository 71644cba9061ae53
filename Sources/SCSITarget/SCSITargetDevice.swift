import BlockStorage
import SCSIWire
import Synchronization

/// One SCSI target device: its logical units by LUN, the task set, REPORT
/// LUNS and LUN addressing (SAM-5 §4.6-4.7). A transport hands over commands
/// and task management; nothing here knows iSCSI.
public final class SCSITargetDevice: Sendable {
    /// Logical units by LUN number, as they are now (LUNs come and go while
    /// the target serves: ``addLogicalUnit(_:number:)``, ``removeLogicalUnit(_:)``).
    public var logicalUnits: [UInt16: LogicalUnit] { units.withLock { $0 } }
    private let units: Mutex<[UInt16: LogicalUnit]>

    /// The logical unit with number `number`, if the target serves one.
    public func logicalUnit(_ number: UInt16) -> LogicalUnit? { units.withLock { $0[number] } }
    let tasks = TaskSet()
    /// EXTENDED COPY results held for RECEIVE COPY RESULTS.
    let copyResults = CopyResultsTable()
    /// The target port groups and their access states (nil: one group, always active/optimized).
    let portGroupSource: (any TargetPortGroupSource)?
    /// Which initiators see which LUNs (nil: every initiator sees every LUN).
    let masks: LUNMasks?

    /// `masks`, with the target's name, hides LUNs from the initiators they do not name.
    public init(
        logicalUnits: [UInt16: LogicalUnit], portGroups: (any TargetPortGroupSource)? = nil,
        masks: (table: LUNMasks, targetName: String)? = nil
    ) {
        self.units = Mutex(logicalUnits)
        self.portGroupSource = portGroups
        self.masks = masks?.table
        self.maskedTargetName = masks?.targetName.lowercased() ?? ""
        for (number, unit) in logicalUnits { connectTaskAborter(unit, number: number) }
    }

    /// Lets the unit's context abort this target's tasks of LUN `number`.
    private func connectTaskAborter(_ unit: LogicalUnit, number: UInt16) {
        let tasks = self.tasks
        let context = unit.context
        unit.context.setTaskAborter { [weak context] effect, sparing, wait in
            await Self.abortTasks(effect, lun: number, tasks: tasks, context: context, sparing: sparing, wait: wait)
        }
    }

    /// Serves `unit` as LUN `number` from now on, in place of any unit that
    /// had the number; every nexus gets REPORTED LUNS DATA HAS CHANGED
    /// (SPC-4 §6.37: the inventory changed).
    public func addLogicalUnit(_ unit: LogicalUnit, number: UInt16) async {
        connectTaskAborter(unit, number: number)
        units.withLock { $0[number] = unit }
        await reportedLUNsChanged()
    }

    /// Stops serving LUN `number`: its tasks are aborted and awaited, then
    /// the other units' nexuses get REPORTED LUNS DATA HAS CHANGED; a
    /// command to it from now on gets LOGICAL UNIT NOT SUPPORTED. Returns
    /// the unit (nil when there was none).
    @discardableResult
    public func removeLogicalUnit(_ number: UInt16) async -> LogicalUnit? {
        guard let unit = units.withLock({ $0.removeValue(forKey: number) }) else { return nil }
        let keys = tasks.abort { _, lun in lun == number }
        await tasks.waitForEnd(keys)
        await reportedLUNsChanged()
        return unit
    }

    /// Carries out a context change's task aborts on this node's tasks of one
    /// LU, except `current` (the task making the change, which must not wait
    /// for itself).
    private static func abortTasks(
        _ effect: ContextEffect, lun: UInt16, tasks: TaskSet, context: (any LogicalUnitContext)?,
        sparing current: TaskKey?, wait: Bool
    ) async {
        let keys: [TaskKey]
        switch effect {
        case .abortRegistrants(let ports):
            // SPC-4 §5.13.11.2.6: PREEMPT AND ABORT aborts the preempted nexuses' tasks on the unit.
            keys = tasks.abort { key, l in l == lun && key != current && ports.contains { $0.matches(key.nexus) } }
        case .abortAll(let clearedBy):
            let aborted = tasks.abortReporting { key, l in l == lun && key != current }
            keys = aborted.running
            // SAM-5 §7.5 (TAS = 0): the other nexuses whose tasks CLEAR TASK SET aborted are told so.
            if let clearedBy {
                for other in Set((aborted.running + aborted.waiting).map(\.nexus)) where !clearedBy.names(other) {
                    await context?.establishUnitAttention(.commandsClearedByAnotherInitiator, scope: .only(other))
                }
            }
        case .unitAttention, .registrantUnitAttention:
            return
        }
        if wait { await tasks.waitForEnd(keys) }
    }

    /// A target with no logical units (the skeleton's initialiser; every LUN reports LOGICAL UNIT NOT SUPPORTED).
    public convenience init() {
        self.init(logicalUnits: [:])
    }

    /// The target's name as ``masks`` knows it (lower case).
    private let maskedTargetName: String

    /// The logical unit `number` as `nexus` sees it: nil when there is none
    /// or when its mask leaves this initiator out.
    func visibleUnit(_ number: UInt16, for nexus: ITNexus) -> LogicalUnit? {
        guard let unit = logicalUnit(number) else { return nil }
        if let masks, !masks.sees(nexus.initiatorName, loweredTarget: maskedTargetName, lun: number) { return nil }
        return unit
    }

    /// Runs one command to completion (never throws: failures become sense data).
    public func execute(_ command: SCSICommand) async -> SCSIResponse {
        let started = ContinuousClock.now
        let lunNumber = LUNAddress.decode(command.lun)
        let unit = lunNumber.flatMap { visibleUnit($0, for: command.nexus) }
        let key = TaskKey(nexus: command.nexus, taskTag: command.taskTag)
        switch tasks.begin(key, lun: unit == nil ? nil : lunNumber, announced: command.announced) {
        case .started: break
        case .overlapped:
            // SAM-5 §5.11: a tag reused while its task lives.
            return SCSIResponse(status: .checkCondition, sense: SenseData(.overlappedCommandsAttempted).bytes)
        case .abortedBeforeStart:
            // SAM-5 §7.2 with TAS = 0: aborted while its data was on the way; it never runs.
            return SCSIResponse(status: .taskAborted, aborted: true)
        }
        let parsed = Result { () throws(SenseData) in try CommandDescriptor.parse(command.cdb) }
        var response = await run(command, parsed, unit: unit)
        // SPC-4 §7.5.8: with D_SENSE set, CHECK CONDITION carries descriptor-format sense.
        if response.status == .checkCondition, let unit, unit.context.modePages().descriptorSense {
            response.sense = SenseData.descriptorFormat(fromFixed: response.sense)
        }
        if tasks.end(key) {
            // SAM-5 §7.2 with TAS = 0: an aborted task gets no response.
            response = SCSIResponse(status: .taskAborted, aborted: true)
        }
        unit?.statistics.record(command, response, since: started)
        return response
    }

    private func run(
        _ command: SCSICommand, _ parsedCDB: Result<(CommandDescriptor, CDBCommand), SenseData>, unit: LogicalUnit?
    ) async -> SCSIResponse {
        let parsed: (CommandDescriptor, CDBCommand)
        switch parsedCDB {
        case .success(let p): parsed = p
        case .failure(let error):
            guard let unit else { return Self.checkCondition(.logicalUnitNotSupported) }
            // SAM-5 §5.14: a pending unit attention is reported ahead of the CDB error.
            if let ua = unit.context.unitAttention(for: command.nexus, consume: true) {
                return Self.checkCondition(ua)
            }
            return SCSIResponse(status: .checkCondition, sense: error.bytes)
        }
        let operation = parsed.1
        guard let unit else { return notConnected(operation, nexus: command.nexus) }
        // SPC-4 §5.9 / SAM-5 §5.14: INQUIRY, REPORT LUNS and REQUEST SENSE do not report unit attentions.
        let reportsUnitAttention: Bool
        switch operation {
        case .inquiry, .reportLUNs, .requestSense: reportsUnitAttention = false
        default: reportsUnitAttention = true
        }
        // SPC-4 §5.16.2.4-5: the state of the port group the command came through decides
        // whether it is served, after a pending unit attention (SAM-5 §5.14). The state is
        // read before the attention queue: a source queues 06/2A/06 before it shows a new
        // state, so a command that sees the new state also meets the attention first.
        let access = accessState(of: command.nexus)
        let context = unit.context
        func admission(requireLoaded: Bool) -> CommandAdmission {
            context.admit(
                command.nexus, conflictClass: parsed.0.conflictClass, reportUnitAttention: reportsUnitAttention,
                requireLoaded: requireLoaded)
        }
        var admitted = admission(requireLoaded: true)
        if admitted == .notLoaded {
            // Until the LU's shared context is loaded, the unit is transitioning: only the
            // identification commands are served (path checkers keep seeing the LUN); the
            // rest get a retryable NOT READY, ASYMMETRIC ACCESS STATE TRANSITION (SPC-4 §5.16.2.5).
            let loaded = await context.ready()
            if !loaded, let refusal = AsymmetricAccessState.transitioning.refusal(for: parsed.0.accessClass) {
                return Self.checkCondition(refusal)
            }
            admitted = admission(requireLoaded: false)
        }
        switch admitted {
        case .proceed: break
        case .unitAttention(let ua): return Self.checkCondition(ua)
        case .reservationConflict: return SCSIResponse(status: .reservationConflict)
        case .notLoaded: return Self.checkCondition(.asymmetricAccessStateTransition)  // not without requireLoaded
        }
        if let refusal = access.refusal(for: parsed.0.accessClass) { return Self.checkCondition(refusal) }
        if access == .unavailable, let answer = await unavailableAnswer(operation, command, unit: unit) {
            return answer
        }
        // SBC-3 §4.11.2: while a SANITIZE runs, only INQUIRY, REPORT LUNS and REQUEST SENSE are served.
        switch operation {
        case .inquiry, .reportLUNs, .requestSense: break
        default:
            let state = unit.sanitizeState.withLock { $0 }
            if state.running { return Self.checkCondition(.sanitizeInProgress) }
            // A failed sanitize leaves the medium unusable until EXIT FAILURE MODE (or a new SANITIZE).
            if state.failed, operation.accessesMedium { return Self.checkCondition(.sanitizeCommandFailed) }
        }
        switch operation {
        case .reportLUNs(let select, let allocationLength):
            return reportLUNs(selectReport: select, allocationLength: allocationLength, nexus: command.nexus)
        case .extendedCopy(let length):
            return await extendedCopy(parameterListLength: Int(length), command, unit: unit)
        case .receiveCopyResults(let action, let listIdentifier, let allocationLength):
            return receiveCopyResults(action, listIdentifier: listIdentifier, allocationLength: allocationLength, command)
        case .reportTargetPortGroups(let r):
            return reportTargetPortGroups(r, nexus: command.nexus)
        default:
            break
        }
        if tasks.isAborted(TaskKey(nexus: command.nexus, taskTag: command.taskTag)) {
            return SCSIResponse(status: .taskAborted, aborted: true)
        }
        let response = await unit.execute(operation, command)
        if case .sanitize(let s) = operation, !s.immediate, response.status == .good {
            // IMMED = 0: status when the sanitize has finished; an aborted task stops waiting
            // (the sanitize itself goes on: SBC-3 §4.11.2).
            let key = TaskKey(nexus: command.nexus, taskTag: command.taskTag)
            while unit.sanitizeInProgress && !tasks.isAborted(key) {
                try? await Task.sleep(for: .milliseconds(20))
            }
            if unit.sanitizeState.withLock({ $0.failed }) { return Self.checkCondition(.sanitizeCommandFailed) }
        }
        return response
    }

    /// A command to a LUN that does not exist (SPC-4 §6.6.2, §6.39, SAM-5 §5.9).
    private func notConnected(_ operation: CDBCommand, nexus: ITNexus) -> SCSIResponse {
        switch operation {
        case .inquiry(let q) where !q.evpd:
            return .data(InquiryData.notConnected(), allocationLength: Int(q.allocationLength))
        case .reportLUNs(let select, let allocationLength):
            return reportLUNs(selectReport: select, allocationLength: allocationLength, nexus: nexus)
        case .requestSense(_, let allocationLength):
            return .data(SenseData(.logicalUnitNotSupported).bytes, allocationLength: Int(allocationLength))
        default:
            return Self.checkCondition(.logicalUnitNotSupported)
        }
    }

    /// REPORT LUNS parameter data (SPC-4 §6.33): the LUNs `nexus` sees.
    private func reportLUNs(selectReport: UInt8, allocationLength: UInt32, nexus: ITNexus) -> SCSIResponse {
        let luns = logicalUnits.keys.filter { visibleUnit($0, for: nexus) != nil }.sorted()
        var data = [UInt8](repeating: 0, count: 8 + 8 * luns.count)
        let listLength = UInt32(8 * luns.count)
        for k in 0..<4 { data[k] = UInt8(truncatingIfNeeded: listLength >> (24 - 8 * k)) }
        for (i, lun) in luns.enumerated() {
            let field = LUNAddress.encode(lun)
            for k in 0..<8 { data[8 + 8 * i + k] = UInt8(truncatingIfNeeded: field >> (56 - 8 * k)) }
        }
        return .data(data, allocationLength: Int(allocationLength))
    }

    static func checkCondition(_ reason: SenseReason) -> SCSIResponse {
        SCSIResponse(status: .checkCondition, sense: SenseData(reason).bytes)
    }

    /// The data transfer `command`'s CDB asks for (SPDTL), so a transport can
    /// size R2Ts and compute residuals; nil when the CDB does not parse or the
    /// LUN does not exist.
    public func expectedDataTransfer(for command: SCSICommand) -> DataTransfer? {
        guard let lun = LUNAddress.decode(command.lun), let unit = visibleUnit(lun, for: command.nexus),
            let parsed = try? CommandDescriptor.parse(command.cdb)
        else { return nil }
        return parsed.1.dataTransfer(blockSize: unit.geometry.blockSize)
    }

    // MARK: - Task management

    /// Runs a task management function; returns once every affected task has ended.
    public func taskManagement(_ function: TaskManagementFunction, lun: UInt64, nexus: ITNexus) async
        -> TaskManagementResult
    {
        let lunNumber = LUNAddress.decode(lun)
        let unit = lunNumber.flatMap { visibleUnit($0, for: nexus) }
        switch function {
        case .abortTask(let tag):
            // SAM-5 §7.2: aborts the task with this tag from this nexus.
            guard unit != nil else { return .lunDoesNotExist }
            let aborted = tasks.abortReporting { key, _ in key.nexus == nexus && key.taskTag == tag }
            guard !aborted.running.isEmpty || !aborted.waiting.isEmpty else { return .taskDoesNotExist }
            await tasks.waitForEnd(aborted.running)
            return .functionComplete
        case .abortTaskSet:
            // SAM-5 §7.3: every task from this nexus to this logical unit.
            guard let lunNumber, unit != nil else { return .lunDoesNotExist }
            let keys = tasks.abort { key, l in key.nexus == nexus && l == lunNumber }
            await tasks.waitForEnd(keys)
            return .functionComplete
        case .clearTaskSet:
            // SAM-5 §7.5: every task on the logical unit (one shared task set, on every node).
            guard let lunNumber, let unit else { return .lunDoesNotExist }
            let effects: [ContextEffect] = [.abortAll(clearedBy: NexusName(nexus))]
            do {
                try await unit.changeContext(by: nil) { _ in ((), effects) }
            } catch {
                // No store now: the task set is cleared on this node at least.
                await Self.abortTasks(
                    effects[0], lun: lunNumber, tasks: tasks, context: unit.context, sparing: nil, wait: true)
            }
            return .functionComplete
        case .clearACA:
            // NACA is not supported (usage masks reject it), so there is never an ACA.
            return .functionRejected
        case .logicalUnitReset:
            guard let lunNumber, let unit else { return .lunDoesNotExist }
            await reset(units: [(lunNumber, unit)])
            return .functionComplete
        case .targetWarmReset, .targetColdReset:
            await reset(units: logicalUnits.map { ($0.key, $0.value) })
            return .functionComplete
        case .itNexusReset:
            await nexusLost(nexus)
            return .functionComplete
        }
    }

    /// SAM-5 §6.3.3: abort every task, clear reset state, set BUS DEVICE RESET
    /// FUNCTION OCCURRED for every nexus — on every node serving the units.
    private func reset(units: [(UInt16, LogicalUnit)]) async {
        let numbers = Set(units.map(\.0))
        let keys = tasks.abort { _, l in l.map(numbers.contains) ?? false }
        await tasks.waitForEnd(keys)
        for (_, unit) in units { _ = await unit.reset() }
    }

    /// A change of a unit's shared context committed through another node
    /// (the peer port): applied here; returns once its aborted tasks ended.
    public func receiveContextChange(_ change: ContextChange, lun: UInt16) async {
        await logicalUnit(lun)?.context.receive(change)
    }

    /// A command arrived that waits for its Data-Out (see ``TaskSet/arrive(_:lun:)``).
    public func arrived(nexus: ITNexus, taskTag: UInt32, lun: UInt64) {
        let number = LUNAddress.decode(lun)
        tasks.arrive(TaskKey(nexus: nexus, taskTag: taskTag), lun: number.flatMap { logicalUnit($0) == nil ? nil : $0 })
    }

    /// The LUNs some initiators see changed (``LUNMasks``): every nexus gets
    /// REPORTED LUNS DATA HAS CHANGED (06/3F/0E, SPC-4 §6.33) through every
    /// unit, so a host rescans whichever LUN it uses next. Hosts whose view
    /// did not change rescan too and find the same list.
    public func reportedLUNsChanged() async {
        for unit in logicalUnits.values {
            await unit.context.establishUnitAttention(.reportedLunsDataHasChanged, scope: .allNexuses)
        }
    }

    /// A new I_T nexus logged in.
    public func nexusEstablished(_ nexus: ITNexus) async {
        for unit in logicalUnits.values { await unit.context.nexusEstablished(nexus) }
    }

    /// An I_T nexus went away (session closed or reinstated): its tasks are
    /// aborted and awaited, and each logical unit records the loss (SAM-5 §6.3.4).
    public func nexusLost(_ nexus: ITNexus) async {
        let keys = tasks.abort { key, _ in key.nexus == nexus }
        await tasks.waitForEnd(keys)
        tasks.forget(nexus)
        for unit in logicalUnits.values {
            await unit.context.nexusLost(nexus)
            await unit.releaseSPC2Reservation(heldBy: nexus)
        }
    }
}

extension SCSICommand {
    /// The key of the task this command runs as.
    var taskKey: TaskKey { TaskKey(nexus: nexus, taskTag: taskTag) }
}
