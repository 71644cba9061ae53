import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Switches for the read fast paths, on unless the environment turns one
/// off (`TESSERA_LOOP_COMPLETIONS=0`, `TESSERA_CACHED_READS=0`,
/// `TESSERA_MAPPED_READS=0`): a benchmark
/// compares a build with itself, path on and off, in one run.
enum IOTuning {
    /// libaio completions reaped on the submitting event loop (``AIOLoopEngine``).
    static let loopCompletions = enabled("TESSERA_LOOP_COMPLETIONS")
    /// Buffered reads served from the page cache on the caller's thread (`RWF_NOWAIT`).
    static let cachedReads = enabled("TESSERA_CACHED_READS")
    /// Large buffered reads lent as the mapped page cache (``AIOFileBlockDevice/mappedRead(lba:blockCount:)``).
    static let mappedReads = enabled("TESSERA_MAPPED_READS")

    private static func enabled(_ name: String) -> Bool {
        guard let value = getenv(name) else { return true }
        return String(cString: value) != "0"
    }
}

/// Counts where a device's requests went: the loop's or the device's libaio
/// engine, and for buffered reads whether the page cache served them on the
/// caller's thread. Relaxed atomic counters; tests and diagnostics read them.
final class Routes: Sendable {
    /// libaio requests reaped by the submitting thread's loop.
    let loop = Atomic<Int>(0)
    /// libaio requests completed by the device's own thread.
    let engine = Atomic<Int>(0)
    /// Buffered reads served whole from the page cache on the caller's thread.
    let cached = Atomic<Int>(0)
    /// Buffered reads the page cache served in part (the pool read the rest).
    let partlyCached = Atomic<Int>(0)
    /// Buffered reads that went to the pool (wholly or in part).
    let pool = Atomic<Int>(0)
    /// Buffered reads lent as the mapped page cache.
    let lent = Atomic<Int>(0)

    static func count(_ counter: borrowing Atomic<Int>) {
        counter.wrappingAdd(1, ordering: .relaxed)
    }
}
