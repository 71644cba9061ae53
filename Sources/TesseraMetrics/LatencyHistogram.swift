import Synchronization

/// A latency histogram over fixed buckets that any number of threads record
/// into without a lock: one relaxed atomic add to the bucket and one to the
/// sum, no allocation. Readers take a ``Snapshot``; a snapshot taken while
/// others record may miss the latest few observations (each counter is read
/// on its own), never counts one twice, and its count is the sum of its
/// buckets, so `+Inf` always equals `_count` in the exposition.
public final class LatencyHistogram: Sendable {
    /// The buckets' upper bounds in nanoseconds (inclusive, as Prometheus'
    /// `le`); a last bucket holds everything above the largest.
    public static let upperBoundsNanoseconds: [UInt64] = [
        50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000, 25_000_000, 50_000_000, 100_000_000, 250_000_000, 500_000_000,
        1_000_000_000, 5_000_000_000,
    ]
    /// Buckets including the one above the largest bound.
    public static let bucketCount = 16

    private let buckets: InlineArray<16, Atomic<UInt64>>
    private let sumNanoseconds = Atomic<UInt64>(0)

    public init() {
        buckets = InlineArray { _ in Atomic(0) }
    }

    /// Counts one observation of `nanoseconds`.
    @inline(__always)
    public func record(nanoseconds: UInt64) {
        buckets[Self.bucket(of: nanoseconds)].wrappingAdd(1, ordering: .relaxed)
        sumNanoseconds.wrappingAdd(nanoseconds, ordering: .relaxed)
    }

    /// Counts one observation: the time from `start` to now.
    @inline(__always)
    public func record(since start: ContinuousClock.Instant) {
        record(nanoseconds: Self.nanoseconds(ContinuousClock.now - start))
    }

    /// The index of the bucket `nanoseconds` falls in: a chain of compares
    /// against constants (the same bounds as ``upperBoundsNanoseconds``).
    @inline(__always)
    static func bucket(of nanoseconds: UInt64) -> Int {
        switch nanoseconds {
        case ...50_000: 0
        case ...100_000: 1
        case ...250_000: 2
        case ...500_000: 3
        case ...1_000_000: 4
        case ...2_500_000: 5
        case ...5_000_000: 6
        case ...10_000_000: 7
        case ...25_000_000: 8
        case ...50_000_000: 9
        case ...100_000_000: 10
        case ...250_000_000: 11
        case ...500_000_000: 12
        case ...1_000_000_000: 13
        case ...5_000_000_000: 14
        default: 15
        }
    }

    /// `duration` in whole nanoseconds; negative becomes zero.
    @inline(__always)
    public static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0, attoseconds >= 0 else { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }

    /// The counts as they are now.
    public func snapshot() -> Snapshot {
        var counts = [UInt64](repeating: 0, count: Self.bucketCount)
        for index in 0..<Self.bucketCount { counts[index] = buckets[index].load(ordering: .relaxed) }
        return Snapshot(bucketCounts: counts, sumNanoseconds: sumNanoseconds.load(ordering: .relaxed))
    }

    /// A histogram's counts at one moment.
    public struct Snapshot: Hashable, Sendable {
        /// Observations per bucket (not cumulative), one more than
        /// ``LatencyHistogram/upperBoundsNanoseconds``: the last is above the largest bound.
        public var bucketCounts: [UInt64]
        /// The sum of every observation, in nanoseconds.
        public var sumNanoseconds: UInt64

        public init(bucketCounts: [UInt64], sumNanoseconds: UInt64) {
            precondition(bucketCounts.count == LatencyHistogram.bucketCount, "one count per bucket")
            self.bucketCounts = bucketCounts
            self.sumNanoseconds = sumNanoseconds
        }

        /// No observation.
        public static let empty = Snapshot(
            bucketCounts: [UInt64](repeating: 0, count: LatencyHistogram.bucketCount), sumNanoseconds: 0)

        /// Every observation.
        public var count: UInt64 { bucketCounts.reduce(0, &+) }

        /// The observations at or below each bound, then all of them (Prometheus' `_bucket` series).
        public var cumulativeCounts: [UInt64] {
            var running: UInt64 = 0
            return bucketCounts.map { count in
                running &+= count
                return running
            }
        }
    }
}
