import CAIO
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One libaio request: its iocb (stable memory the kernel reads at submit
/// time) and the continuation its completion resumes.
final class AIORequest: @unchecked Sendable {
    let iocb: UnsafeMutablePointer<iocb>
    var continuation: UnsafeContinuation<Int, Never>?

    init() {
        iocb = .allocate(capacity: 1)
        iocb.initialize(to: CAIO.iocb())
    }

    deinit { iocb.deallocate() }
}

/// A libaio context with batched submission and a dedicated completion
/// thread (tgt's shape: every iocb signals an eventfd, the thread sleeps in
/// `read(eventfd)`, reaps with `io_getevents` and resumes continuations).
///
/// Submission never blocks on a full queue: requests beyond `depth` wait in a
/// software queue, and whichever thread finds no submitter running (a caller,
/// or the completion thread after reaping) drains it with one `io_submit` per
/// batch. A caller never sleeps (it may be an event loop): when the kernel
/// has no aio slots (EAGAIN), the rest goes to the completion thread, which
/// backs off there 1 ms at a time.
final class AIOEngine: @unchecked Sendable {
    private let context: io_context_t
    /// The eventfd every iocb signals on completion.
    let eventFD: Int32
    /// Most requests in the kernel at once (the io_setup size).
    let depth: Int
    private let state: Mutex<State>

    private struct State {
        var queue: [AIORequest] = []
        var inFlight = 0
        var submitting = false
        var stopping = false
        var stopped = false
        var stopWaiter: UnsafeContinuation<Void, Never>?
    }

    /// Why the engine could not start.
    struct SetupError: Error { var errno: Int32 }

    /// Creates the context, the eventfd and the completion thread; returns a negative errno on failure.
    static func make(depth: Int, name: String) -> Result<AIOEngine, SetupError> {
        var context: io_context_t?
        let rc = io_setup(Int32(depth), &context)
        guard rc == 0, let context else { return .failure(SetupError(errno: rc < 0 ? -rc : EINVAL)) }
        let eventFD = tessera_eventfd()
        guard eventFD >= 0 else {
            io_destroy(context)
            return .failure(SetupError(errno: -eventFD))
        }
        let engine = AIOEngine(context: context, eventFD: eventFD, depth: depth)
        guard startDetachedThread(name: name, { engine.completionLoop() }) else {
            io_destroy(context)
            Glibc.close(eventFD)
            return .failure(SetupError(errno: EAGAIN))
        }
        return .success(engine)
    }

    private init(context: io_context_t, eventFD: Int32, depth: Int) {
        self.context = context
        self.eventFD = eventFD
        self.depth = depth
        self.state = Mutex(State())
    }

    /// Submits a prepared request and waits for its result (`io_event.res`:
    /// bytes transferred, or a negative errno).
    func perform(_ request: AIORequest) async -> Int {
        await withUnsafeContinuation { continuation in
            request.continuation = continuation
            let action: EnqueueAction = state.withLock { s in
                if s.stopping { return .refuse }
                s.queue.append(request)
                if s.submitting { return .queued }
                s.submitting = true
                return .drain
            }
            switch action {
            case .refuse: continuation.resume(returning: -Int(EBADF))
            case .queued: break
            case .drain: drain(mayWait: false)
            }
        }
    }

    private enum EnqueueAction { case refuse, queued, drain }

    /// Submits queued requests in batches until the queue is empty or the
    /// kernel queue is full; the caller must have set `submitting`.
    /// `mayWait` is true only on the completion thread: a caller of
    /// ``perform(_:)`` may be an event loop, which must never sleep.
    private func drain(mayWait: Bool) {
        while true {
            let batch: [AIORequest] = state.withLock { s in
                let room = depth - s.inFlight
                let count = min(room, s.queue.count)
                guard count > 0 else {
                    s.submitting = false
                    return []
                }
                let taken = Array(s.queue.prefix(count))
                s.queue.removeFirst(count)
                s.inFlight += count
                return taken
            }
            if batch.isEmpty { return }
            guard submit(batch, mayWait: mayWait) else { return }
        }
    }

    /// Submits `batch`. Returns false when the kernel had no room and the
    /// rest was handed to the completion thread.
    private func submit(_ batch: [AIORequest], mayWait: Bool) -> Bool {
        var pointers: [UnsafeMutablePointer<iocb>?] = batch.map { request in
            tessera_set_eventfd(request.iocb, eventFD)
            request.iocb.pointee.data = Unmanaged.passRetained(request).toOpaque()
            return request.iocb
        }
        var next = 0
        var eagainRetries = 0
        while next < pointers.count {
            let rc = pointers.withUnsafeMutableBufferPointer { buffer in
                io_submit(context, buffer.count - next, buffer.baseAddress! + next)
            }
            if rc > 0 {
                next += Int(rc)
                eagainRetries = 0
            } else if rc == -EAGAIN && !mayWait {
                // Kernel-wide aio slots exhausted (fs.aio-max-nr): this
                // thread may be an event loop, so it does not wait; the
                // completion thread takes the rest and backs off there.
                handOver(Array(batch[next...]))
                return false
            } else if rc == -EAGAIN && eagainRetries < 100 {
                eagainRetries += 1
                usleep(1000)
            } else if rc == -EINTR {
                continue
            } else {
                // The first remaining iocb was refused; fail it and go on with the rest.
                let error = rc < 0 ? Int(rc) : -Int(EIO)
                fail(batch[next], result: error)
                next += 1
            }
        }
        return true
    }

    /// Puts requests io_submit refused back at the front of the queue and
    /// wakes the completion thread to submit them.
    private func handOver(_ requests: [AIORequest]) {
        for request in requests {
            Unmanaged<AIORequest>.fromOpaque(UnsafeRawPointer(request.iocb.pointee.data)).release()
        }
        state.withLock { s in
            s.queue.insert(contentsOf: requests, at: 0)
            s.inFlight -= requests.count
            s.submitting = false
        }
        var one: UInt64 = 1
        _ = write(eventFD, &one, MemoryLayout<UInt64>.size)
    }

    private func fail(_ request: AIORequest, result: Int) {
        Unmanaged<AIORequest>.fromOpaque(UnsafeRawPointer(request.iocb.pointee.data)).release()
        state.withLock { $0.inFlight -= 1 }
        let continuation = request.continuation
        request.continuation = nil
        continuation?.resume(returning: result)
    }

    private func completionLoop() {
        let events = UnsafeMutablePointer<io_event>.allocate(capacity: depth)
        defer { events.deallocate() }
        var counter: UInt64 = 0
        var zero = timespec(tv_sec: 0, tv_nsec: 0)
        while true {
            let readResult = read(eventFD, &counter, MemoryLayout<UInt64>.size)
            if readResult < 0 && errno == EINTR { continue }
            while true {
                let count = io_getevents(context, 0, depth, events, &zero)
                if count == -EINTR { continue }
                if count <= 0 { break }
                var finished: [(AIORequest, Int)] = []
                finished.reserveCapacity(Int(count))
                for index in 0..<Int(count) {
                    guard let data = events[index].data else { continue }
                    let request = Unmanaged<AIORequest>.fromOpaque(data).takeRetainedValue()
                    finished.append((request, Int(bitPattern: events[index].res)))
                }
                state.withLock { $0.inFlight -= finished.count }
                for (request, result) in finished {
                    let continuation = request.continuation
                    request.continuation = nil
                    continuation?.resume(returning: result)
                }
            }
            let next: LoopAction = state.withLock { s in
                if s.stopping && s.inFlight == 0 && s.queue.isEmpty {
                    s.stopped = true
                    return .stop(s.stopWaiter)
                }
                if !s.queue.isEmpty && !s.submitting {
                    s.submitting = true
                    return .drain
                }
                return .wait
            }
            switch next {
            case .wait: continue
            case .drain: drain(mayWait: true)
            case .stop(let waiter):
                waiter?.resume()
                return
            }
        }
    }

    private enum LoopAction { case wait, drain, stop(UnsafeContinuation<Void, Never>?) }

    /// Refuses new requests, lets queued and in-flight ones finish, stops the
    /// completion thread and destroys the context.
    func shutdown() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            let alreadyStopped = state.withLock { s in
                s.stopping = true
                if s.stopped { return true }
                s.stopWaiter = continuation
                return false
            }
            if alreadyStopped {
                continuation.resume()
            } else {
                var one: UInt64 = 1
                _ = write(eventFD, &one, MemoryLayout<UInt64>.size)
            }
        }
        io_destroy(context)
        Glibc.close(eventFD)
    }
}
