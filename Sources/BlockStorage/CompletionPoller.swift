#if canImport(Glibc)
    import Glibc
#endif

/// An event loop, as a block device sees it: a loop that can watch a file
/// descriptor, so a device whose completions are signalled on a descriptor
/// (libaio's eventfd) can reap them on the thread that submitted the I/O and
/// that sends the response (one wake-up per completion, no hop from a
/// completion thread).
///
/// A transport installs its loop's poller on the loop's own thread
/// (``CompletionPollers/install(_:)``); a device asks for the calling
/// thread's with ``CompletionPollers/current``, and falls back to its own completion thread where there is
/// none (a task on the global executor, a test).
public protocol CompletionPoller: AnyObject, Sendable {
    /// From now on, calls `onReadable` on this poller's thread whenever
    /// `descriptor` is readable. The poller takes ownership of `descriptor`
    /// (it closes it) and calls `onClosed`, on its thread, when it stops
    /// watching (its loop ends). False when it cannot watch it: the caller
    /// still owns `descriptor`.
    func watch(
        _ descriptor: Int32, onReadable: @escaping @Sendable () -> Void, onClosed: @escaping @Sendable () -> Void
    ) -> Bool

    /// Runs `body` on the poller's thread after the work already queued
    /// there (an event loop's tasks of the current tick), so work that many
    /// of those tasks produce can be done once for all of them (one
    /// `io_submit` for the I/O of every command a read burst started).
    func afterQueuedWork(_ body: @escaping @Sendable () -> Void)
}

/// The calling thread's ``CompletionPoller``: one slot per thread.
public enum CompletionPollers {
    /// The poller of the calling thread, nil when none was installed on it.
    public static var current: (any CompletionPoller)? {
        guard let raw = pthread_getspecific(key) else { return nil }
        return Unmanaged<Box>.fromOpaque(raw).takeUnretainedValue().poller
    }

    /// Makes `poller` the calling thread's (call it on the loop's thread).
    /// A thread keeps its first poller: a second install changes nothing.
    public static func install(_ poller: any CompletionPoller) {
        guard pthread_getspecific(key) == nil else { return }
        pthread_setspecific(key, Unmanaged.passRetained(Box(poller)).toOpaque())
    }

    private final class Box {
        let poller: any CompletionPoller
        init(_ poller: any CompletionPoller) { self.poller = poller }
    }

    // The slot's box is released when its thread exits.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { raw in
            guard let raw else { return }
            Unmanaged<AnyObject>.fromOpaque(raw).release()
        }
        precondition(rc == 0, "pthread_key_create: \(rc)")
        return key
    }()
}
