import ClusterModel
import Synchronization

/// A LUN's ``ActivityLog`` on this node, kept durable in its store: a write
/// waits in ``begin(_:)`` until the record holds its extents. Saves are one
/// at a time; every write that needs a newer record while one is being
/// saved is served by the next (a group commit), so a burst of writes to new
/// extents costs one or two saves, not one each.
final class ActivityLogWriter: Sendable {
    private struct State {
        var log: ActivityLog
        var durable: UInt64 = 0
        var saving = false
        var waiters: [(generation: UInt64, waiter: CheckedContinuation<Bool, Never>)] = []
    }

    private let state: Mutex<State>
    private let store: any ActivityLogStore

    /// The extents the store held at start (nil: none, or not to be trusted).
    let recovered: [UInt64]?

    init(store: any ActivityLogStore, capacity: Int, extentBlocks: UInt64) {
        self.store = store
        let recovered = store.load(extentBlocks: extentBlocks)
        self.recovered = recovered
        state = Mutex(State(log: ActivityLog(capacity: capacity, extentBlocks: extentBlocks, recovered: recovered ?? [])))
    }

    /// Admits a write to LUN blocks `blocks`: returns once the record on disk
    /// holds their extents; false when it cannot be written (the write must
    /// then fail: it would not be covered after a crash).
    func begin(_ blocks: Range<UInt64>) async -> Bool {
        let needed = state.withLock { $0.log.begin(blocks) }
        if state.withLock({ $0.durable >= needed }) { return true }
        return await withCheckedContinuation { waiter in
            let start = state.withLock { state -> Bool? in
                guard state.durable < needed else { return nil }
                state.waiters.append((needed, waiter))
                defer { state.saving = true }
                return !state.saving
            }
            switch start {
            case nil: waiter.resume(returning: true)
            case true?: Task { await self.saveLoop() }
            case false?: break
            }
        }
    }

    /// The write ``begin(_:)`` admitted has ended.
    func end(_ blocks: Range<UInt64>) { state.withLock { $0.log.end(blocks) } }

    /// The recovered extents may leave the log (every replica caught up).
    func unpin() { state.withLock { $0.log.unpin() } }

    /// Whether recovered extents are still kept.
    var isPinned: Bool { state.withLock { !$0.log.pinned.isEmpty } }

    /// The LUN blocks the log covers now (recovered extents included).
    var blockRanges: [Range<UInt64>] { state.withLock { $0.log.blockRanges } }

    private func saveLoop() async {
        while true {
            let (extents, generation, extentBlocks) = state.withLock { ($0.log.extents, $0.log.generation, $0.log.extentBlocks) }
            var saved = true
            do throws(ActivityLogStoreError) { try await store.save(extents, extentBlocks: extentBlocks) } catch { saved = false }
            let (ready, again) = state.withLock { state in
                if saved { state.durable = max(state.durable, generation) }
                let durable = state.durable
                let ready = state.waiters.filter { !saved || $0.generation <= durable }
                state.waiters.removeAll { !saved || $0.generation <= durable }
                let again = !state.waiters.isEmpty
                state.saving = again
                return (ready, again)
            }
            for entry in ready { entry.waiter.resume(returning: saved) }
            guard again else { return }
        }
    }
}
