import Synchronization

/// A FIFO mutual-exclusion lock for async code: waiters suspend instead of
/// blocking a thread.
public final class AsyncLock: Sendable {
    private struct State {
        var locked = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    public init() {}

    public func lock() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { s -> Bool in
                if !s.locked {
                    s.locked = true
                    return true
                }
                s.waiters.append(c)
                return false
            }
            if acquired { c.resume() }
        }
    }

    /// Hands the lock to the oldest waiter, or frees it.
    public func unlock() {
        let next = state.withLock { s -> CheckedContinuation<Void, Never>? in
            if s.waiters.isEmpty {
                s.locked = false
                return nil
            }
            return s.waiters.removeFirst()
        }
        next?.resume()
    }
}

/// A FIFO shared/exclusive lock for async code. Ordinary medium commands
/// take it shared; COMPARE AND WRITE, ORWRITE, WRITE ATOMIC and SANITIZE take
/// it exclusive, which makes them atomic with respect to every other command
/// on the logical unit (SBC-3 §5.2, SBC-4 §4.29).
final class AsyncSharedLock: Sendable {
    private struct Waiter {
        var exclusive: Bool
        var continuation: CheckedContinuation<Void, Never>
    }

    private struct State {
        var readers = 0
        var writer = false
        var waiters: [Waiter] = []
    }

    private let state = Mutex(State())

    func lock(exclusive: Bool) async {
        // Uncontended (every command but the atomic ones): taken without suspending.
        if state.withLock({ Self.tryAcquire(&$0, exclusive: exclusive) }) { return }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let acquired = state.withLock { s -> Bool in
                if Self.tryAcquire(&s, exclusive: exclusive) { return true }
                s.waiters.append(Waiter(exclusive: exclusive, continuation: c))
                return false
            }
            if acquired { c.resume() }
        }
    }

    private static func tryAcquire(_ s: inout State, exclusive: Bool) -> Bool {
        // FIFO: nobody overtakes a queued waiter (an exclusive one would starve).
        guard s.waiters.isEmpty && !s.writer && (!exclusive || s.readers == 0) else { return false }
        if exclusive { s.writer = true } else { s.readers += 1 }
        return true
    }

    func unlock(exclusive: Bool) {
        let wake = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            if exclusive { s.writer = false } else { s.readers -= 1 }
            var wake: [CheckedContinuation<Void, Never>] = []
            while let next = s.waiters.first {
                if next.exclusive {
                    guard s.readers == 0 && !s.writer else { break }
                    s.writer = true
                } else {
                    guard !s.writer else { break }
                    s.readers += 1
                }
                wake.append(next.continuation)
                s.waiters.removeFirst()
                if next.exclusive { break }
            }
            return wake
        }
        for c in wake { c.resume() }
    }
}
