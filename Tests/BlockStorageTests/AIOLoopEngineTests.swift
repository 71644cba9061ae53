import BlockStorage
import CAIO
import Foundation
import Synchronization
import Testing
import TesseraTestKit

@testable import AIOBlockStorage

#if canImport(Glibc)
    import Glibc
#endif

/// A ``CompletionPoller`` on a thread of its own: it polls the watched
/// descriptor, reads it (as a NIO pipe channel does) and calls back, unless
/// the test holds it (``hold``), so completions can be kept unreaped.
final class ThreadPoller: CompletionPoller, @unchecked Sendable {
    private let state = Mutex<(held: Bool, stopping: Bool, wakeups: Int)>((false, false, 0))
    /// Work queued with ``afterQueuedWork(_:)``, run on the poller's thread.
    private let queued = Mutex<[@Sendable () -> Void]>([])

    func afterQueuedWork(_ body: @escaping @Sendable () -> Void) {
        queued.withLock { $0.append(body) }
    }

    /// With `manual`, queued work waits for ``runQueued()`` (the end of a
    /// loop tick, on the test's command) instead of running on the thread.
    let manual: Bool
    init(manual: Bool = false) { self.manual = manual }

    /// Work queued so far.
    var queuedCount: Int { queued.withLock { $0.count } }

    /// Runs the queued work now, on the caller's thread.
    func runQueued() {
        let work = queued.withLock { q in
            defer { q.removeAll() }
            return q
        }
        for body in work { body() }
    }
    private let stopped = Mutex<Bool>(false)

    /// While held, readable events are not passed on (they stay pending).
    func hold(_ held: Bool) { state.withLock { $0.held = held } }
    /// Readable callbacks so far.
    var wakeups: Int { state.withLock { $0.wakeups } }
    /// Stops watching: the descriptor is closed and `onClosed` runs.
    func stop() { state.withLock { $0.stopping = true } }
    var hasStopped: Bool { stopped.withLock { $0 } }

    func watch(
        _ descriptor: Int32, onReadable: @escaping @Sendable () -> Void, onClosed: @escaping @Sendable () -> Void
    ) -> Bool {
        let thread = Thread { [self] in
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            while true {
                let (held, stopping) = state.withLock { ($0.held, $0.stopping) }
                if stopping { break }
                if !manual { runQueued() }
                if held || poll(&entry, 1, 5) <= 0 {
                    if held { usleep(1000) }
                    continue
                }
                var counter: UInt64 = 0
                _ = read(descriptor, &counter, 8)
                state.withLock { $0.wakeups += 1 }
                onReadable()
            }
            close(descriptor)
            onClosed()
            stopped.withLock { $0 = true }
        }
        thread.start()
        return true
    }
}

/// A poller that refuses every descriptor.
final class RefusingPoller: CompletionPoller {
    func watch(_: Int32, onReadable: @escaping @Sendable () -> Void, onClosed: @escaping @Sendable () -> Void) -> Bool {
        false
    }
    func afterQueuedWork(_ body: @escaping @Sendable () -> Void) { body() }
}

@Suite(.timeLimit(.minutes(1))) struct AIOLoopEngineTests {
    private static func device(_ dir: ScratchDirectory, blocks: UInt64) throws -> AIOFileBlockDevice {
        try AIOFileBlockDevice(
            options: AIOFileBlockDevice.Options(
                path: dir.file(), geometry: BlockGeometry(blockSize: 4096, blockCount: blocks), directIO: .on,
                queueDepth: 16))
    }

    private static func block(_ lba: Int) -> [UInt8] {
        (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ lba &* 101 &+ 7) }
    }

    private static func readRequest(_ device: AIOFileBlockDevice, lba: Int, into buffer: IOBuffer) -> AIORequest {
        let request = AIORequest()
        tessera_prep_pread(request.iocb, device.fd, buffer.baseAddress, 4096, Int64(lba * 4096), nil)
        return request
    }

    @Test func everySubmittedReadCompletesOnceWithItsBytes() async throws {
        let dir = ScratchDirectory(.work)
        let blocks = 300
        let device = try Self.device(dir, blocks: UInt64(blocks))
        for lba in 0..<blocks {
            try await device.write(
                lba: UInt64(lba), blockCount: 1, from: IOBuffer(bytes: Self.block(lba)), offset: 0, fua: false)
        }
        let poller = ThreadPoller()
        let engine = try #require(AIOLoopEngine.make(depth: 64, poller: poller))
        // Waves no larger than the depth, so every request is taken.
        for wave in stride(from: 0, to: blocks, by: 64) {
            let results = await withTaskGroup(of: (Int, AIOLoopEngine.Outcome, Bool).self) { group in
                for lba in wave..<min(wave + 64, blocks) {
                    group.addTask {
                        let buffer = IOBuffer(count: 4096)
                        let outcome = await engine.perform(Self.readRequest(device, lba: lba, into: buffer))
                        return (lba, outcome, buffer.array() == Self.block(lba))
                    }
                }
                var all: [(Int, AIOLoopEngine.Outcome, Bool)] = []
                for await result in group { all.append(result) }
                return all
            }
            #expect(results.count == min(64, blocks - wave))
            for (lba, outcome, intact) in results {
                #expect(outcome == .completed(4096), "block \(lba)")
                #expect(intact, "block \(lba)")
            }
        }
        #expect(engine.completedCount == blocks)
        #expect(engine.inFlight == 0)
        // Nothing is left to reap: a second reap completes nothing twice.
        engine.reap()
        #expect(engine.completedCount == blocks)
        poller.stop()
        while !poller.hasStopped { usleep(1000) }
        await device.close()
    }

    @Test func aFullEngineTakesNothingUntilItsCompletionsAreReaped() async throws {
        let dir = ScratchDirectory(.work)
        let device = try Self.device(dir, blocks: 8)
        let poller = ThreadPoller()
        poller.hold(true)
        let engine = try #require(AIOLoopEngine.make(depth: 2, poller: poller))
        let buffers = (0..<3).map { _ in IOBuffer(count: 4096) }
        let first = Task { await engine.perform(Self.readRequest(device, lba: 0, into: buffers[0])) }
        let second = Task { await engine.perform(Self.readRequest(device, lba: 1, into: buffers[1])) }
        while engine.inFlight < 2 { await Task.yield() }
        // Both are in the kernel (or done there, not reaped): the third is refused at once, not queued.
        #expect(await engine.perform(Self.readRequest(device, lba: 2, into: buffers[2])) == .notTaken)
        poller.hold(false)
        #expect(await first.value == .completed(4096))
        #expect(await second.value == .completed(4096))
        #expect(engine.completedCount == 2)
        poller.stop()
        while !poller.hasStopped { usleep(1000) }
        await device.close()
    }

    /// The requests a tick queued go to the kernel together, once the tick
    /// has run: nothing before, one io_submit for all of them.
    @Test func requestsQueuedInOneTickAreSubmittedAsOneBatch() async throws {
        let dir = ScratchDirectory(.work)
        let device = try Self.device(dir, blocks: 8)
        for lba in 0..<8 {
            try await device.write(
                lba: UInt64(lba), blockCount: 1, from: IOBuffer(bytes: Self.block(lba)), offset: 0, fua: false)
        }
        let poller = ThreadPoller(manual: true)
        let engine = try #require(AIOLoopEngine.make(depth: 16, poller: poller))
        let reads = (0..<8).map { lba in
            Task { () -> Bool in
                let buffer = IOBuffer(count: 4096)
                let outcome = await engine.perform(Self.readRequest(device, lba: lba, into: buffer))
                return outcome == .completed(4096) && buffer.array() == Self.block(lba)
            }
        }
        while engine.inFlight < 8 { await Task.yield() }
        #expect(engine.batchCount == 0, "nothing is submitted before the tick ends")
        #expect(poller.queuedCount == 1, "one submission is queued for the whole tick")
        poller.runQueued()
        #expect(engine.batchCount == 1)
        for read in reads { #expect(await read.value) }
        #expect(engine.completedCount == 8)
        poller.stop()
        while !poller.hasStopped { usleep(1000) }
        await device.close()
    }

    @Test func aReadPastTheEndOfTheFileCompletesShort() async throws {
        let dir = ScratchDirectory(.work)
        let device = try Self.device(dir, blocks: 8)
        let poller = ThreadPoller()
        let engine = try #require(AIOLoopEngine.make(depth: 4, poller: poller))
        let buffer = IOBuffer(count: 4096)
        // Block 8 is the first byte past the file: the kernel reads nothing.
        #expect(await engine.perform(Self.readRequest(device, lba: 8, into: buffer)) == .completed(0))
        #expect(throws: BlockDeviceError.self) { try AIOFileBlockDevice.check(0, expected: 4096, operation: "read") }
        poller.stop()
        while !poller.hasStopped { usleep(1000) }
        await device.close()
    }

    /// The loop went away with reads in the kernel, never reaped there: the
    /// engine waits for them as it closes and completes them.
    @Test func readsInTheKernelWhenThePollerStopsStillComplete() async throws {
        let dir = ScratchDirectory(.work)
        let device = try Self.device(dir, blocks: 8)
        for lba in 0..<2 {
            try await device.write(
                lba: UInt64(lba), blockCount: 1, from: IOBuffer(bytes: Self.block(lba)), offset: 0, fua: false)
        }
        let poller = ThreadPoller()
        poller.hold(true)
        let engine = try #require(AIOLoopEngine.make(depth: 4, poller: poller))
        let reads = (0..<2).map { lba in
            Task { () -> Bool in
                let buffer = IOBuffer(count: 4096)
                let outcome = await engine.perform(Self.readRequest(device, lba: lba, into: buffer))
                return outcome == .completed(4096) && buffer.array() == Self.block(lba)
            }
        }
        // Submitted (the poller's thread ran the tick's submission), not reaped.
        while engine.batchCount == 0 { await Task.yield() }
        poller.stop()
        for read in reads { #expect(await read.value) }
        while !poller.hasStopped { usleep(1000) }
        #expect(engine.inFlight == 0)
        await device.close()
    }

    @Test func anEngineThatCannotBeWatchedIsNotMade() {
        #expect(AIOLoopEngine.make(depth: 4, poller: RefusingPoller()) == nil)
    }

    @Test func aStoppedPollerLeavesAnEngineThatTakesNothing() async throws {
        let dir = ScratchDirectory(.work)
        let device = try Self.device(dir, blocks: 8)
        let poller = ThreadPoller()
        let engine = try #require(AIOLoopEngine.make(depth: 4, poller: poller))
        poller.stop()
        while !poller.hasStopped { usleep(1000) }
        let buffer = IOBuffer(count: 4096)
        #expect(await engine.perform(Self.readRequest(device, lba: 0, into: buffer)) == .notTaken)
        await device.close()
    }
}
