import Testing

@testable import TesseraNode

/// The lease machine with a manual clock: instants are `t0 + n ms`.
@Suite struct LeaseMonitorTests {
    let t0 = ContinuousClock.now
    func at(_ ms: Int) -> ContinuousClock.Instant { t0 + .milliseconds(ms) }

    @Test func acquiringThenHeldThenLapsedThenRestored() {
        var lease = LeaseMonitor(lease: .seconds(2), startedAt: at(0))
        #expect(!lease.mayChangeContext(at: at(0)))
        #expect(lease.tick(at: at(1000)) == .none)
        #expect(lease.quorumReached(sentAt: at(1100), now: at(1102)) == .reportAcquired)
        #expect(lease.mayChangeContext(at: at(1200)))
        #expect(lease.label(at: at(1200)) == "held")
        // Renewed by a later heartbeat.
        #expect(lease.quorumReached(sentAt: at(2000), now: at(2001)) == .none)
        #expect(lease.tick(at: at(3999)) == .none)
        #expect(lease.mayChangeContext(at: at(4000)))
        // Lease time passes without contact: lapsed, reported once.
        #expect(!lease.mayChangeContext(at: at(4001)))
        #expect(lease.label(at: at(4001)) == "lapsed")
        #expect(lease.tick(at: at(4001)) == .reportLapsed(lastContact: at(2000)))
        #expect(lease.tick(at: at(9000)) == .none)
        #expect(!lease.mayChangeContext(at: at(9000)))
        #expect(lease.sinceLastContact(at: at(9000)) == .milliseconds(7000))
        // A heartbeat answered in time restores it.
        #expect(lease.quorumReached(sentAt: at(9500), now: at(9600)) == .reportRestored(downFor: .milliseconds(5600)))
        #expect(lease.mayChangeContext(at: at(9600)))
    }

    @Test func neverAcquiredLapsesAfterTheLeaseFromStart() {
        var lease = LeaseMonitor(lease: .seconds(2), startedAt: at(0))
        #expect(lease.label(at: at(100)) == "acquiring")
        #expect(lease.tick(at: at(2000)) == .none)
        #expect(lease.tick(at: at(2001)) == .reportLapsed(lastContact: nil))
        #expect(lease.sinceLastContact(at: at(2001)) == nil)
        #expect(!lease.mayChangeContext(at: at(2001)))
    }

    /// An answer that comes back after the lease it would grant has run out
    /// (a heartbeat stuck behind a stopped leader) grants nothing.
    @Test func aLateAnswerDoesNotRenew() {
        var lease = LeaseMonitor(lease: .seconds(2), startedAt: at(0))
        #expect(lease.quorumReached(sentAt: at(100), now: at(200)) == .reportAcquired)
        #expect(lease.tick(at: at(2200)) == .reportLapsed(lastContact: at(100)))
        #expect(lease.quorumReached(sentAt: at(2150), now: at(4200)) == .none)
        #expect(!lease.mayChangeContext(at: at(4200)))
        var fresh = LeaseMonitor(lease: .seconds(2), startedAt: at(0))
        #expect(fresh.quorumReached(sentAt: at(0), now: at(2500)) == .reportLapsed(lastContact: nil))
    }

    /// The lease is measured from when the heartbeat was sent, and an older
    /// answer never moves it backwards.
    @Test func leaseCountsFromTheSendInstant() {
        var lease = LeaseMonitor(lease: .seconds(2), startedAt: at(0))
        _ = lease.quorumReached(sentAt: at(1000), now: at(1900))
        _ = lease.quorumReached(sentAt: at(500), now: at(1950))
        #expect(lease.mayChangeContext(at: at(3000)))
        #expect(!lease.mayChangeContext(at: at(3001)))
    }

    @Test func storeLeaseKeeperStartsClosed() {
        let keeper = StoreLeaseKeeper(lease: .seconds(2), logger: .init(label: "test"))
        #expect(!keeper.mayChangeContext())
        #expect(keeper.state == "acquiring")
        keeper.quorumReached(sentAt: .now)
        #expect(keeper.mayChangeContext())
        #expect(keeper.state == "held")
    }
}
