import Synchronization

/// Identifies a task while it lives: the nexus it came on and the transport's tag.
public struct TaskKey: Hashable, Sendable {
    public var nexus: ITNexus
    public var taskTag: UInt32

    public init(nexus: ITNexus, taskTag: UInt32) {
        self.nexus = nexus
        self.taskTag = taskTag
    }

    /// The tag and the port only: a nexus is four names, and hashing them
    /// on every begin, abort check and end of a command cost more than the
    /// rest of the task set's work. Two live tasks with one tag on one port
    /// (two sessions that happen to reuse a tag) only share a bucket;
    /// equality still compares the whole nexus.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(taskTag)
        hasher.combine(nexus.relativeTargetPortIdentifier)
    }
}

/// In-flight tasks of a target device, for task management (SAM-5 §7): a
/// TMF marks tasks aborted and waits until each has ended.
final class TaskSet: Sendable {

    private struct Entry {
        /// Decoded LUN, nil for a LUN that does not exist.
        var lun: UInt16?
        var aborted = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Running tasks, and the tasks that arrived but wait for their Data-Out
    /// (not running yet) with those of them aborted meanwhile (they never
    /// run). One lock for all three: a command takes it once to begin.
    private struct State {
        var running: [TaskKey: Entry] = [:]
        var arrived: [TaskKey: UInt16?] = [:]
        var abortedBeforeStart: Set<TaskKey> = []
    }

    private let state = Mutex(State())

    /// How ``begin(_:lun:)`` went.
    enum Start: Equatable {
        case started
        /// The tag is already in use on the nexus (overlapped command).
        case overlapped
        /// Task management aborted the task while it waited for its data.
        case abortedBeforeStart
    }

    /// A task arrived and waits for its data: task management can abort it
    /// from now on. It runs with ``begin(_:lun:)``.
    func arrive(_ key: TaskKey, lun: UInt16?) {
        state.withLock { s in
            s.abortedBeforeStart.remove(key)
            s.arrived[key] = lun
        }
    }

    /// Registers a running task. Only a task that was `announced` (it
    /// ``arrive(_:lun:)``d first) can have been aborted before it started; for
    /// any other, a record under its tag is a left-over of an earlier task the
    /// transport ended itself (a Data-Out error), and is dropped.
    func begin(_ key: TaskKey, lun: UInt16?, announced: Bool = false) -> Start {
        state.withLock { s in
            s.arrived[key] = nil
            if s.abortedBeforeStart.remove(key) != nil && announced { return .abortedBeforeStart }
            if s.running[key] != nil { return .overlapped }
            s.running[key] = Entry(lun: lun)
            return .started
        }
    }

    /// Forgets the waiting tasks of a nexus that went away.
    func forget(_ nexus: ITNexus) {
        state.withLock { s in
            s.arrived = s.arrived.filter { $0.key.nexus != nexus }
            s.abortedBeforeStart = s.abortedBeforeStart.filter { $0.nexus != nexus }
        }
    }

    /// Ends a task, wakes every TMF waiting for it; returns whether it was aborted.
    func end(_ key: TaskKey) -> Bool {
        let entry = state.withLock { $0.running.removeValue(forKey: key) }
        for w in entry?.waiters ?? [] { w.resume() }
        return entry?.aborted ?? false
    }

    /// Whether a task was aborted while running (checked before starting I/O).
    func isAborted(_ key: TaskKey) -> Bool {
        state.withLock { $0.running[key]?.aborted ?? false }
    }

    /// Marks every task matching `predicate` aborted; returns the keys of
    /// the running ones (a task still waiting for its data is aborted too, and
    /// never runs: there is nothing to wait for).
    func abort(where predicate: (TaskKey, UInt16?) -> Bool) -> [TaskKey] {
        abortReporting(where: predicate).running
    }

    /// ``abort(where:)``, also naming the waiting tasks it aborted.
    func abortReporting(where predicate: (TaskKey, UInt16?) -> Bool) -> (running: [TaskKey], waiting: [TaskKey]) {
        state.withLock { s in
            var waiting: [TaskKey] = []
            for (key, lun) in s.arrived where predicate(key, lun) {
                s.arrived[key] = nil
                s.abortedBeforeStart.insert(key)
                waiting.append(key)
            }
            var running: [TaskKey] = []
            for (key, entry) in s.running where predicate(key, entry.lun) {
                s.running[key]?.aborted = true
                running.append(key)
            }
            return (running, waiting)
        }
    }

    /// Number of live tasks (tests, metrics).
    var count: Int { state.withLock { $0.running.count } }
    /// Running tasks marked aborted that have not ended yet (tests wait on it).
    var abortedRunning: Int { state.withLock { $0.running.values.filter(\.aborted).count } }

    /// Returns once every task in `keys` has ended.
    func waitForEnd(_ keys: [TaskKey]) async {
        for key in keys {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let live = state.withLock { s -> Bool in
                    guard s.running[key] != nil else { return false }
                    s.running[key]?.waiters.append(c)
                    return true
                }
                if !live { c.resume() }
            }
        }
    }
}
