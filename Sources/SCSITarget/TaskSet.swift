import Synchronization

/// Identifies a task while it lives: the nexus it came on and the transport's tag.
struct TaskKey: Hashable, Sendable {
    var nexus: ITNexus
    var taskTag: UInt32
}

/// In-flight tasks of a target device, for task management (SAM-5 §7): a
/// TMF marks tasks aborted and waits until each has ended.
final class TaskSet: Sendable {
    /// The task the running code executes for, so that a change it makes
    /// never aborts (or waits for) that task itself.
    @TaskLocal static var current: TaskKey?

    private struct Entry {
        /// Decoded LUN, nil for a LUN that does not exist.
        var lun: UInt16?
        var aborted = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    /// Tasks that arrived but wait for their Data-Out (not running yet), and
    /// those of them aborted meanwhile: they never run.
    private struct Waiting {
        var arrived: [TaskKey: UInt16?] = [:]
        var abortedBeforeStart: Set<TaskKey> = []
    }

    private let tasks = Mutex<[TaskKey: Entry]>([:])
    private let waiting = Mutex(Waiting())

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
        waiting.withLock { w in
            w.abortedBeforeStart.remove(key)
            w.arrived[key] = lun
        }
    }

    /// Registers a running task.
    func begin(_ key: TaskKey, lun: UInt16?) -> Start {
        let abortedBeforeStart = waiting.withLock { w -> Bool in
            w.arrived[key] = nil
            return w.abortedBeforeStart.remove(key) != nil
        }
        if abortedBeforeStart { return .abortedBeforeStart }
        return tasks.withLock { t in
            if t[key] != nil { return .overlapped }
            t[key] = Entry(lun: lun)
            return .started
        }
    }

    /// Forgets the waiting tasks of a nexus that went away.
    func forget(_ nexus: ITNexus) {
        waiting.withLock { w in
            w.arrived = w.arrived.filter { $0.key.nexus != nexus }
            w.abortedBeforeStart = w.abortedBeforeStart.filter { $0.nexus != nexus }
        }
    }

    /// Ends a task, wakes every TMF waiting for it; returns whether it was aborted.
    func end(_ key: TaskKey) -> Bool {
        let entry = tasks.withLock { $0.removeValue(forKey: key) }
        for w in entry?.waiters ?? [] { w.resume() }
        return entry?.aborted ?? false
    }

    /// Whether a task was aborted while running (checked before starting I/O).
    func isAborted(_ key: TaskKey) -> Bool {
        tasks.withLock { $0[key]?.aborted ?? false }
    }

    /// Marks every task matching `predicate` aborted; returns the keys of
    /// the running ones (a task still waiting for its data is aborted too, and
    /// never runs: there is nothing to wait for).
    func abort(where predicate: (TaskKey, UInt16?) -> Bool) -> [TaskKey] {
        abortReporting(where: predicate).running
    }

    /// ``abort(where:)``, also naming the waiting tasks it aborted.
    func abortReporting(where predicate: (TaskKey, UInt16?) -> Bool) -> (running: [TaskKey], waiting: [TaskKey]) {
        let waitingKeys = waiting.withLock { w -> [TaskKey] in
            var keys: [TaskKey] = []
            for (key, lun) in w.arrived where predicate(key, lun) {
                w.arrived[key] = nil
                w.abortedBeforeStart.insert(key)
                keys.append(key)
            }
            return keys
        }
        let running = tasks.withLock { t in
            var keys: [TaskKey] = []
            for (key, entry) in t where predicate(key, entry.lun) {
                t[key]?.aborted = true
                keys.append(key)
            }
            return keys
        }
        return (running, waitingKeys)
    }

    /// Number of live tasks (tests, metrics).
    var count: Int { tasks.withLock { $0.count } }

    /// Returns once every task in `keys` has ended.
    func waitForEnd(_ keys: [TaskKey]) async {
        for key in keys {
            await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                let live = tasks.withLock { t -> Bool in
                    guard t[key] != nil else { return false }
                    t[key]?.waiters.append(c)
                    return true
                }
                if !live { c.resume() }
            }
        }
    }
}
