import BlockStorage
import CAIO
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A libaio context whose completions are reaped by an event loop: its
/// eventfd is watched by the loop's ``CompletionPoller``, so an I/O
/// submitted from the loop's thread completes on that thread, in the same
/// wake-up that handles the completion (tgt's shape, without its separate
/// thread). One per loop thread, shared by every device used from it
/// (``current``); a device falls back to its own ``AIOEngine`` where there is
/// none, or when this one cannot take a request now.
///
/// Requests are queued and submitted together once the loop's current
/// tick has run (``CompletionPoller/afterQueuedWork(_:)``): one `io_submit`,
/// and one device kick, for the I/O of every command a read burst started.
/// Submission never waits: a request that finds the context full, or the
/// kernel without aio slots, is not taken (``perform(_:)`` says so; nothing
/// of it was submitted).
///
/// `@unchecked Sendable`: the context and the events buffer are used under
/// `state` or on the poller's thread only.
final class AIOLoopEngine: @unchecked Sendable {
    private let context: io_context_t
    /// The eventfd every iocb submitted here signals.
    let eventFD: Int32
    /// Most requests in the kernel at once (the io_setup size).
    let depth: Int
    private let events: UnsafeMutablePointer<io_event>
    private let state = Mutex(State())

    private struct State {
        /// Requests in the kernel.
        var inFlight = 0
        /// Requests waiting for ``submitPending()``.
        var pending: [AIORequest] = []
        /// A ``submitPending()`` is queued on the poller's thread.
        var submitScheduled = false
        var closed = false
        /// Requests completed since the engine started (tests and diagnostics).
        var completed = 0
        /// `io_submit` batches since the engine started (tests and diagnostics).
        var batches = 0
    }

    /// What ``perform(_:)`` did with a request.
    enum Outcome: Equatable {
        /// It ran: `io_event.res` (bytes transferred, or a negative errno).
        case completed(Int)
        /// Not submitted (full, no kernel slots, closed): the caller submits it elsewhere.
        case notTaken
    }

    private let poller: any CompletionPoller

    private init(context: io_context_t, eventFD: Int32, depth: Int, poller: any CompletionPoller) {
        self.poller = poller
        self.context = context
        self.eventFD = eventFD
        self.depth = depth
        self.events = .allocate(capacity: depth)
    }

    /// An engine whose eventfd `poller` watches (a duplicate of it: the
    /// poller owns and closes that one); nil when the context, the eventfd or
    /// the watch cannot be set up.
    static func make(depth: Int, poller: any CompletionPoller) -> AIOLoopEngine? {
        var context: io_context_t?
        guard io_setup(Int32(depth), &context) == 0, let context else { return nil }
        let eventFD = tessera_eventfd()
        guard eventFD >= 0 else {
            io_destroy(context)
            return nil
        }
        let watched = dup(eventFD)
        guard watched >= 0 else {
            io_destroy(context)
            Glibc.close(eventFD)
            return nil
        }
        let engine = AIOLoopEngine(context: context, eventFD: eventFD, depth: depth, poller: poller)
        let watching = poller.watch(watched, onReadable: { engine.reap() }, onClosed: { engine.pollerClosed() })
        guard watching else {
            Glibc.close(watched)
            engine.pollerClosed()
            return nil
        }
        return engine
    }

    /// Submits a prepared request (its eventfd is set here) and waits for its
    /// completion, which the poller's thread reaps.
    func perform(_ request: AIORequest) async -> Outcome {
        let result = await withUnsafeContinuation { (continuation: UnsafeContinuation<Int, Never>) in
            request.continuation = continuation
            tessera_set_eventfd(request.iocb, eventFD)
            request.iocb.pointee.data = Unmanaged.passRetained(request).toOpaque()
            let schedule: Bool? = state.withLock { s in
                guard !s.closed, s.inFlight + s.pending.count < depth else { return nil }
                s.pending.append(request)
                if s.submitScheduled { return false }
                s.submitScheduled = true
                return true
            }
            guard let schedule else {
                Unmanaged<AIORequest>.fromOpaque(UnsafeRawPointer(request.iocb.pointee.data)).release()
                request.continuation = nil
                continuation.resume(returning: Self.notSubmitted)
                return
            }
            if schedule { poller.afterQueuedWork { self.submitPending() } }
        }
        return result == Self.notSubmitted ? .notTaken : .completed(result)
    }

    /// Submits every request queued since the last call with one
    /// `io_submit` (the block layer then kicks the device once for all of
    /// them). A request the kernel refuses for want of aio slots (EAGAIN) is
    /// given back, not submitted; any other refusal completes it with the error.
    func submitPending() {
        let batch: [AIORequest] = state.withLock { s in
            s.submitScheduled = false
            let taken = s.pending
            s.pending.removeAll(keepingCapacity: true)
            s.inFlight += taken.count
            if !taken.isEmpty { s.batches += 1 }
            return taken
        }
        guard !batch.isEmpty else { return }
        var pointers: [UnsafeMutablePointer<iocb>?] = batch.map(\.iocb)
        var next = 0
        while next < pointers.count {
            let rc = pointers.withUnsafeMutableBufferPointer { buffer in
                io_submit(context, buffer.count - next, buffer.baseAddress! + next)
            }
            if rc > 0 {
                next += Int(rc)
            } else if rc == -EINTR {
                continue
            } else if rc == -EAGAIN {
                // No aio slots now: a loop does not wait for them; the callers submit elsewhere.
                for request in batch[next...] { give(request, result: Self.notSubmitted) }
                return
            } else {
                // The first remaining iocb was refused; fail it and go on with the rest.
                give(batch[next], result: rc < 0 ? Int(rc) : -Int(EIO))
                next += 1
            }
        }
    }

    /// Completes a request that was not submitted.
    private func give(_ request: AIORequest, result: Int) {
        Unmanaged<AIORequest>.fromOpaque(UnsafeRawPointer(request.iocb.pointee.data)).release()
        state.withLock { $0.inFlight -= 1 }
        let continuation = request.continuation
        request.continuation = nil
        continuation?.resume(returning: result)
    }

    /// Resumes every request that has completed; runs on the poller's thread
    /// when the eventfd was readable.
    func reap() {
        while true {
            let count = tessera_reap(context, events, depth)
            if count == -EINTR { continue }
            guard count > 0 else { return }
            complete(events, count: Int(count))
            if Int(count) < depth { return }
        }
    }

    /// Resumes the requests of `count` reaped events.
    private func complete(_ events: UnsafeMutablePointer<io_event>, count finished: Int) {
        state.withLock { s in
            s.inFlight -= finished
            s.completed += finished
        }
        for index in 0..<finished {
            guard let data = events[index].data else { continue }
            let request = Unmanaged<AIORequest>.fromOpaque(data).takeRetainedValue()
            let continuation = request.continuation
            request.continuation = nil
            continuation?.resume(returning: Int(bitPattern: events[index].res))
        }
    }

    /// The result that stands for "io_submit had no room" (no `io_event.res` is this).
    private static let notSubmitted = Int.min

    /// Requests submitted or queued here and not reaped yet.
    var inFlight: Int { state.withLock { $0.inFlight + $0.pending.count } }
    /// Requests reaped since the engine started.
    var completedCount: Int { state.withLock { $0.completed } }
    /// Batches submitted since the engine started.
    var batchCount: Int { state.withLock { $0.batches } }

    /// The poller stopped watching (its loop ended, or the watch could not
    /// be registered after all): nothing is taken any more; what was queued
    /// goes back to its callers, and what the kernel holds is waited for here
    /// (at most ``closingWait``) and completed, so no caller waits forever for
    /// a completion nobody would reap. Then the context goes.
    private func pollerClosed() {
        let unsubmitted: [AIORequest] = state.withLock { s in
            s.closed = true
            let unsubmitted = s.pending
            s.pending = []
            return unsubmitted
        }
        // Queued, never submitted: their callers submit them elsewhere.
        for request in unsubmitted {
            Unmanaged<AIORequest>.fromOpaque(UnsafeRawPointer(request.iocb.pointee.data)).release()
            let continuation = request.continuation
            request.continuation = nil
            continuation?.resume(returning: Self.notSubmitted)
        }
        AIOLoopEngine.forget(self)
        let clock = ContinuousClock()
        let deadline = clock.now + Self.closingWait
        while inFlight > 0, clock.now < deadline {
            var wait = timespec(tv_sec: 0, tv_nsec: 10_000_000)
            let count = io_getevents(context, 1, depth, events, &wait)
            if count > 0 { complete(events, count: Int(count)) }
        }
        // A request the kernel still holds after that keeps the context (its
        // ring must outlive it); its caller waits on, as on a hung disk.
        guard inFlight == 0 else { return }
        io_destroy(context)
        Glibc.close(eventFD)
        events.deallocate()
    }

    /// How long a closing engine waits for the kernel's requests.
    static let closingWait = Duration.seconds(5)

    // MARK: The calling thread's engine

    /// Requests one loop's engine holds in the kernel at once.
    static let loopDepth = 256

    /// The engine of the calling thread's ``CompletionPoller``, made on first
    /// use; nil on a thread without a poller (or where the engine could not be set up).
    static var current: AIOLoopEngine? {
        if let raw = pthread_getspecific(slot) {
            return Unmanaged<Slot>.fromOpaque(raw).takeUnretainedValue().engine
        }
        guard let poller = CompletionPollers.current else { return nil }
        let engine = make(depth: loopDepth, poller: poller)
        // A thread where setup failed keeps nil and uses the devices' engines.
        pthread_setspecific(slot, Unmanaged.passRetained(Slot(engine)).toOpaque())
        return engine
    }

    /// Empties the calling thread's slot if it holds `engine`.
    private static func forget(_ engine: AIOLoopEngine) {
        guard let raw = pthread_getspecific(slot),
            Unmanaged<Slot>.fromOpaque(raw).takeUnretainedValue().engine === engine
        else { return }
        // The thread keeps an empty slot: its I/O goes to the devices'
        // engines from now on, rather than setting up an engine per request
        // on a loop that cannot watch one.
        pthread_setspecific(slot, Unmanaged.passRetained(Slot(nil)).toOpaque())
        Unmanaged<Slot>.fromOpaque(raw).release()
    }

    private final class Slot {
        let engine: AIOLoopEngine?
        init(_ engine: AIOLoopEngine?) { self.engine = engine }
    }

    private static let slot: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { raw in
            guard let raw else { return }
            Unmanaged<AnyObject>.fromOpaque(raw).release()
        }
        precondition(rc == 0, "pthread_key_create: \(rc)")
        return key
    }()
}
