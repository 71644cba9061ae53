import ClusterAuth
import ClusterModel
import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import MetadataStore

/// The store behind its tunnel: members prove the cluster secret on every
/// connection (clients through the Swift handshake, Raft through libdqlite's
/// connect function), and nothing without it reaches dqlite.
@Suite(.serialized) struct AuthenticatedStoreTests {
    static let secret = ClusterSecret(text: "store-test-secret-0123456789abcdef")!
    static let other = ClusterSecret(text: "some-other-cluster-secret-000000")!

    @Test func threeMembersWithTheSecretFormAClusterAndReplicate() async throws {
        let cluster = try await TestCluster(size: 3, secret: Self.secret)
        defer { cluster.shutdown() }
        let client = cluster.client()
        defer { Task { await client.close() } }
        #expect(try await client.members().count == 3)
        _ = try await client.exec("CREATE TABLE t (v TEXT)", [])
        _ = try await client.exec("INSERT INTO t VALUES (?)", [.text("through the tunnel")])
        // Node 3 alone as the seed: it forwards to the leader; the rows are the cluster's.
        let third = MetadataStoreClient(.init(seeds: [cluster.addresses[2]], secret: Self.secret))
        defer { Task { await third.close() } }
        let rows = try await third.query("SELECT v FROM t", [])
        #expect(rows.count == 1)
    }

    @Test func aClientWithoutTheSecretOrWithAnotherIsRefused() async throws {
        let cluster = try await TestCluster(size: 1, secret: Self.secret)
        defer { cluster.shutdown() }
        let address = cluster.addresses[0]
        // A stock dqlite client (no handshake) gets the connection closed, never an answer.
        let plain = try await DqliteConnection.connect(to: address, group: MultiThreadedEventLoopGroup.singleton)
        await #expect(throws: (any Error).self) { _ = try await plain.request(.leader, timeout: .seconds(5)) }
        plain.close()
        // Another cluster's secret: the connect itself fails and says why.
        do {
            _ = try await DqliteConnection.connect(
                to: address, group: MultiThreadedEventLoopGroup.singleton, secret: Self.other)
            Issue.record("a connection with another secret was accepted")
        } catch {
            #expect("\(error)".contains("secret"))
        }
        // Neither can read or write through the client either.
        let rogue = cluster.client(retryDeadline: .seconds(30), secret: .some(Self.other))
        defer { Task { await rogue.close() } }
        // Refused at once, not retried until the deadline: another secret will not start to match.
        let started = ContinuousClock.now
        do {
            _ = try await rogue.query("SELECT 1", [])
            Issue.record("a client with another secret read the store")
        } catch let error as MetadataStoreError {
            guard case .refused = error.code else {
                Issue.record("not a refusal: \(error)")
                return
            }
            #expect(ContinuousClock.now - started < .seconds(10))
        }
        let open = cluster.client(retryDeadline: .seconds(1), secret: .some(nil))
        defer { Task { await open.close() } }
        await #expect(throws: (any Error).self) { _ = try await open.exec("CREATE TABLE x (v)", []) }
        // The member itself still answers.
        let member = cluster.client()
        defer { Task { await member.close() } }
        #expect(try await member.query("SELECT 1", []).count == 1)
    }

    @Test func aNodeWithAnotherSecretCannotJoin() async throws {
        let cluster = try await TestCluster(size: 1, secret: Self.secret)
        defer { cluster.shutdown() }
        let rogue = try await TestCluster(size: 1, secret: Self.other)
        defer { rogue.shutdown() }
        // The rogue node asks the cluster to add it, with its own secret.
        let asking = MetadataStoreClient(.init(seeds: cluster.addresses, retryDeadline: .seconds(1), secret: Self.other))
        defer { Task { await asking.close() } }
        await #expect(throws: (any Error).self) {
            try await asking.add(id: NodeID(7), address: rogue.addresses[0])
        }
        let member = cluster.client()
        defer { Task { await member.close() } }
        #expect(try await member.members().map(\.id) == [NodeID(1)])
    }
}
