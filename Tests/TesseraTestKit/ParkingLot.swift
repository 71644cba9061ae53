import Synchronization

/// Where a held test double parks the operations it holds, until the test
/// lets them go: ``HeldBlockDevice``'s writes, ``HeldUnitAttentionContext``'s
/// unit attentions.
public final class ParkingLot: Sendable {
    private let parked = Mutex<[CheckedContinuation<Void, Never>]>([])

    public init() {}

    /// Operations parked now.
    public var count: Int { parked.withLock { $0.count } }

    /// Suspends the caller until ``release()``.
    public func park() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            parked.withLock { $0.append(continuation) }
        }
    }

    /// Lets every parked operation go on.
    public func release() {
        let waiting = parked.withLock { p in
            defer { p = [] }
            return p
        }
        for continuation in waiting { continuation.resume() }
    }
}
