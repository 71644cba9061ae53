import Synchronization

/// A clock that moves only when the test says so: timers (peer timeouts,
/// leases, heartbeats) fire in ``advance(by:)``, never on their own.
public final class ManualClock: Sendable {
    private struct Sleeper {
        var deadline: Duration
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var now: Duration = .zero
        var nextID = 0
        var sleepers: [Int: Sleeper] = [:]
        var cancelled: Set<Int> = []
    }

    private let state = Mutex(State())

    public init() {}

    /// Time since the clock was made.
    public var now: Duration { state.withLock { $0.now } }

    /// Sleepers not yet woken.
    public var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    /// Returns once the clock reaches `deadline`, or at once when the task is cancelled.
    public func sleep(until deadline: Duration) async {
        let id = state.withLock { s in
            defer { s.nextID += 1 }
            return s.nextID
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s in
                    if s.cancelled.remove(id) != nil || s.now >= deadline { return true }
                    s.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { s in
                guard let sleeper = s.sleepers.removeValue(forKey: id) else {
                    s.cancelled.insert(id)
                    return nil as Sleeper?
                }
                return sleeper
            }
            sleeper?.continuation.resume()
        }
    }

    /// Sleeps for `duration` of this clock's time.
    public func sleep(for duration: Duration) async {
        await sleep(until: now + duration)
    }

    /// Moves time forward and wakes every sleeper whose deadline has come, earliest first.
    public func advance(by duration: Duration) {
        let due: [Sleeper] = state.withLock { s in
            s.now += duration
            let due = s.sleepers.filter { $0.value.deadline <= s.now }
            for id in due.keys { s.sleepers.removeValue(forKey: id) }
            return due.values.sorted { $0.deadline < $1.deadline }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }
}

extension ManualClock {
    /// Runs `body`, moving this clock on by `step` whenever something sleeps
    /// on it (a lost message's timeout), until `body` ends; gives up moving
    /// the clock after about 20 s of real time and then just waits.
    public func driving<T: Sendable>(
        step: Duration, _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        let done = Mutex(false)
        let task = Task {
            defer { done.withLock { $0 = true } }
            return try await body()
        }
        for _ in 0..<20_000 {
            if done.withLock({ $0 }) { break }
            if sleeperCount > 0 { advance(by: step) }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return try await task.value
    }
}
