import NIOCore
import NIOEmbedded
import Testing

@testable import ISCSITargetServer

#if canImport(Glibc)
    import Glibc
#endif

/// Polling for the next command before the loop sleeps: the policy polls
/// while polls find commands, stops after misses and tries again later; the
/// poll itself sees input at once and gives up after its budget; a
/// connection's socket is found by its addresses.
@Suite struct IdlePollTests {
    @Test func aZeroBudgetNeverPolls() {
        var policy = IdlePollPolicy(budget: .zero)
        #expect((0..<100).allSatisfy { _ in !policy.shouldPoll() })
    }

    @Test func hitsKeepPollingAndMissesPauseIt() {
        var policy = IdlePollPolicy(budget: .microseconds(50))
        for _ in 0..<20 {
            let polls = policy.shouldPoll()
            #expect(polls)
            policy.record(hit: true)
        }
        #expect(policy.credit == IdlePollPolicy.maximumCredit)
        // A run of misses spends the credit, then polling pauses.
        var polled = 0
        for _ in 0..<(IdlePollPolicy.maximumCredit + 10) where policy.shouldPoll() {
            polled += 1
            policy.record(hit: false)
        }
        #expect(polled == IdlePollPolicy.maximumCredit)
        #expect(policy.pause == IdlePollPolicy.pauseLength - 10)
        // After the pause it tries again, and a hit there resumes polling.
        var tried = 0
        while !policy.shouldPoll() { tried += 1 }
        #expect(tried == IdlePollPolicy.pauseLength - 11)
        policy.record(hit: true)
        let resumed = policy.shouldPoll()
        #expect(resumed)
    }

    @Test func alternatingHitsAndMissesKeepPolling() {
        var policy = IdlePollPolicy(budget: .microseconds(50))
        for round in 0..<200 {
            let polls = policy.shouldPoll()
            #expect(polls, "round \(round)")
            policy.record(hit: round % 2 == 0)
        }
    }

    /// A connected loopback pair: (accepted, connecting) descriptors and their addresses.
    static func connectedPair() throws -> (server: Int32, client: Int32, serverAddress: SocketAddress, clientAddress: SocketAddress) {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        try withUnsafePointer(to: &address) {
            try $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                guard bind(listener, $0, length) == 0, listen(listener, 1) == 0 else { throw TestFailure("bind") }
            }
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) }
        }
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) }
        }
        let server = accept(listener, nil, nil)
        guard server >= 0 else { throw TestFailure("accept") }
        var clientSide = sockaddr_in()
        var clientLength = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &clientSide) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(client, $0, &clientLength) }
        }
        return (server, client, SocketAddress(address, host: "127.0.0.1"), SocketAddress(clientSide, host: "127.0.0.1"))
    }

    @Test func theSocketIsFoundByItsAddresses() throws {
        let pair = try Self.connectedPair()
        defer {
            close(pair.server)
            close(pair.client)
        }
        #expect(IdlePoll.descriptor(local: pair.serverAddress, remote: pair.clientAddress) == pair.server)
        #expect(IdlePoll.descriptor(local: pair.clientAddress, remote: pair.serverAddress) == pair.client)
        let elsewhere = try SocketAddress(ipAddress: "127.0.0.1", port: 9)
        #expect(IdlePoll.descriptor(local: pair.serverAddress, remote: elsewhere) == nil)
    }

    @Test func aPollSeesInputAndGivesUpAfterItsBudget() throws {
        let pair = try Self.connectedPair()
        defer {
            close(pair.server)
            close(pair.client)
        }
        let clock = ContinuousClock()
        let started = clock.now
        #expect(!IdlePoll.wait(fd: pair.server, budget: .milliseconds(20)))
        #expect(clock.now - started >= .milliseconds(20))
        var byte: UInt8 = 0x2A
        #expect(write(pair.client, &byte, 1) == 1)
        #expect(IdlePoll.wait(fd: pair.server, budget: .seconds(5)))
    }

    @Test func connectionsAreCountedPerLoop() {
        let counts = LoopConnectionCounts()
        let first = EmbeddedEventLoop()
        let second = EmbeddedEventLoop()
        counts.add(first)
        counts.add(first)
        counts.add(second)
        #expect(counts.count(first) == 2 && counts.count(second) == 1)
        counts.remove(first)
        counts.remove(second)
        #expect(counts.count(first) == 1 && counts.count(second) == 0)
    }
}
