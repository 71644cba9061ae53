import NIOCore

/// Runs Swift tasks on a NIO event loop (SE-0417 task executor preference).
///
/// A SCSI command's task (or a peer request's) starts with its connection's
/// event loop as the preferred executor, so the command runs, its device I/O
/// is submitted, and its completion is handled on the connection's own
/// thread: one wake-up per I/O (the device's completion) instead of hops
/// through the global cooperative pool and back. Default actors the command
/// calls into (the LUN context) run on the same executor.
public final class EventLoopTaskExecutor: TaskExecutor, @unchecked Sendable {  // immutable; EventLoop is thread-safe
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
