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

    private let tasks = Mutex<[TaskKey: Entry]>([:])

    /// Registers a task; false when the tag is already in use on the nexus (overlapped command).
    func begin(_ key: TaskKey, lun: UInt16?) -> Bool {
        tasks.withLock { t in
            if t[key] != nil { return false }
            t[key] = Entry(lun: lun)
            return true
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

    /// Marks every task matching `predicate` aborted; returns their keys.
    func abort(where predicate: (TaskKey, UInt16?) -> Bool) -> [TaskKey] {
        tasks.withLock { t in
            var keys: [TaskKey] = []
            for (key, entry) in t where predicate(key, entry.lun) {
                t[key]?.aborted = true
                keys.append(key)
            }
            return keys
        }
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
