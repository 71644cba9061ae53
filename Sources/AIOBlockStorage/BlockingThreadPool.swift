import CAIO

#if canImport(Glibc)
    import Glibc
#endif

/// Starts a detached POSIX thread running `body`; returns false when the
/// thread could not be created.
func startDetachedThread(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
    final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }
    let box = Unmanaged.passRetained(Box(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    let rc = pthread_create(
        &thread, nil,
        { argument in
            guard let argument else { return nil }
            let box = Unmanaged<Box>.fromOpaque(argument).takeRetainedValue()
            // Linux limits thread names to 15 bytes.
            box.name.prefix(15).withCString { tessera_set_thread_name($0) }
            box.body()
            return nil
        }, box)
    guard rc == 0 else {
        Unmanaged<Box>.fromOpaque(box).release()
        return false
    }
    pthread_detach(thread)
    return true
}

/// A small fixed pool of threads for blocking system calls (buffered
/// pread/pwrite, fdatasync, fallocate) so they never run on the caller's
/// (cooperative) thread.
final class BlockingThreadPool: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `mutex`.
    private var jobs: [@Sendable () -> Void] = []
    private var jobsHead = 0
    private var stopping = false
    private var liveThreads = 0

    /// Starts `threadCount` threads (at least one).
    init?(threadCount: Int, name: String) {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
        for index in 0..<max(threadCount, 1) {
            pthread_mutex_lock(mutex)
            liveThreads += 1
            pthread_mutex_unlock(mutex)
            let started = startDetachedThread(name: "\(name)-\(index)") { [self] in self.worker() }
            if !started {
                pthread_mutex_lock(mutex)
                liveThreads -= 1
                pthread_mutex_unlock(mutex)
                if index == 0 {
                    destroyPrimitives()
                    return nil
                }
                break
            }
        }
    }

    deinit { destroyPrimitives() }

    private func destroyPrimitives() {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` on a pool thread and returns its result; nil when the pool is stopped.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T? {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<T?, Never>) in
            let accepted = enqueue { continuation.resume(returning: body()) }
            if !accepted { continuation.resume(returning: nil) }
        }
    }

    private func enqueue(_ job: @escaping @Sendable () -> Void) -> Bool {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !stopping else { return false }
        jobs.append(job)
        pthread_cond_signal(condition)
        return true
    }

    /// Lets the threads finish the queued jobs and exit. The pool object
    /// stays alive until the last thread has left (threads retain it).
    func shutdown() {
        pthread_mutex_lock(mutex)
        stopping = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }

    private func worker() {
        while true {
            pthread_mutex_lock(mutex)
            while jobsHead == jobs.count && !stopping {
                pthread_cond_wait(condition, mutex)
            }
            if jobsHead == jobs.count {
                liveThreads -= 1
                pthread_mutex_unlock(mutex)
                return
            }
            let job = jobs[jobsHead]
            jobsHead += 1
            if jobsHead == jobs.count {
                jobs.removeAll(keepingCapacity: true)
                jobsHead = 0
            }
            pthread_mutex_unlock(mutex)
            job()
        }
    }
}
