import NIOCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Polling for a host's next command before the event loop sleeps.
///
/// A host that issues one command at a time (queue depth 1: a database log,
/// `fsync`-bound writes) sends its next command a few tens of microseconds
/// after the response. If the loop thread sleeps in `epoll_wait` meanwhile,
/// the wake-up costs more than the wait: on a virtual machine the idle vCPU
/// halts and is woken by an interrupt, and the command path then runs with
/// cold caches. Measured on the project's 2-vCPU VM (page-cache 4 KiB reads
/// at QD1): polling the socket for up to 30-80 µs after each response
/// nearly doubled the IOPS and *lowered* the CPU time per read.
///
/// The policy is pure; the connection carries it out (``IdlePoll/wait(fd:budget:)``).
/// It polls only after a command that was quick here (under
/// ``quickCommand``: one that waited for a disk leaves the host's cycle to
/// the disk, and measured, polling after O_DIRECT writes at QD1 cost 17-19 %
/// more CPU per write for no more IOPS), and only while polls mostly find the
/// next command: every miss costs the whole budget, so after a run of misses
/// (a host with idle gaps) it stops for a while and then tries again.
struct IdlePollPolicy: Sendable, Hashable {
    /// How long one poll may last; zero turns polling off.
    var budget: Duration
    /// Grows with hits, shrinks with misses; polls while positive.
    private(set) var credit = 2
    /// Completions left before polling is tried again once credit ran out.
    private(set) var pause = 0

    /// A command that took at least this long in the target (it waited for
    /// a disk, or moved a lot of data) is not followed by a poll.
    static let quickCommand = Duration.microseconds(50)
    static let maximumCredit = 8
    static let missCost = 1
    /// Completions without polling after credit ran out.
    static let pauseLength = 64

    init(budget: Duration) { self.budget = budget }

    /// Whether to poll after this completion.
    mutating func shouldPoll() -> Bool {
        guard budget > .zero else { return false }
        if credit > 0 { return true }
        pause -= 1
        if pause > 0 { return false }
        credit = Self.missCost
        return true
    }

    /// What the poll found: the next command (`hit`) or nothing within the budget.
    mutating func record(hit: Bool) {
        if hit {
            credit = min(credit + 1, Self.maximumCredit)
        } else {
            credit -= Self.missCost
            if credit <= 0 { pause = Self.pauseLength }
        }
    }
}

enum IdlePoll {
    /// The poll budget: `TESSERA_IDLE_POLL_US` from the environment
    /// (microseconds, 0 = off) when set, so a benchmark can compare one binary
    /// with and without, else the configured one.
    static func budget(configured: Duration) -> Duration {
        guard let value = getenv("TESSERA_IDLE_POLL_US"), let us = Int(String(cString: value)), us >= 0 else {
            return configured
        }
        return .microseconds(min(us, 1000))
    }

    /// Polls `fd` for input (`poll(2)` with a zero timeout, again and again)
    /// until it has some or `budget` has passed; whether it has. Between
    /// polls it yields the CPU to any other runnable thread (on a machine
    /// whose cores the host also uses, that may be the host sending the
    /// command), which costs a system call when there is none.
    static func wait(fd: Int32, budget: Duration) -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + budget
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        repeat {
            if poll(&entry, 1, 0) != 0 { return true }
            sched_yield()
        } while clock.now < deadline
        return false
    }

    /// The descriptor of the connected TCP socket with these local and remote
    /// addresses, found among the process's open files (NIO does not hand a
    /// channel's descriptor out); nil when none matches.
    static func descriptor(local: SocketAddress, remote: SocketAddress) -> Int32? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let fd = Int32(name), matches(fd, getsockname, local), matches(fd, getpeername, remote) else { continue }
            return fd
        }
        return nil
    }

    private static func matches(
        _ fd: Int32, _ query: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32,
        _ address: SocketAddress
    ) -> Bool {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let found = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { query(fd, $0, &length) }
        }
        guard found == 0 else { return false }
        return address.withSockAddr { wanted, wantedLength in
            Int(length) == wantedLength && memcmp(wanted, &storage, wantedLength) == 0
        }
    }
}

/// How many iSCSI connections each event loop serves now. A poll holds its
/// loop, so a connection polls only while it is the loop's only one: with
/// more, the others' commands keep the loop busy anyway, and a poll would
/// keep them waiting.
final class LoopConnectionCounts: Sendable {
    static let shared = LoopConnectionCounts()
    private let counts = Mutex<[ObjectIdentifier: Int]>([:])

    func add(_ loop: any EventLoop) { counts.withLock { $0[ObjectIdentifier(loop), default: 0] += 1 } }

    func remove(_ loop: any EventLoop) {
        counts.withLock { counts in
            let key = ObjectIdentifier(loop)
            let left = (counts[key] ?? 1) - 1
            counts[key] = left > 0 ? left : nil
        }
    }

    func count(_ loop: any EventLoop) -> Int { counts.withLock { $0[ObjectIdentifier(loop)] ?? 0 } }
}
