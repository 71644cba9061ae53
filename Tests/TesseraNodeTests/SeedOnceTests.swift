import ClusterModel
import Foundation
import Logging
import MetadataStore
import Testing

@testable import TesseraNode

/// A TOML seeds the store once per cluster: what an administrator deleted
/// or changed through the cluster is not brought back by the next start of
/// a node (any node) with the same file; an edited file applies again.
@Suite struct SeedOnceTests {
    static let node1 = NodeID(1)
    static let node2 = NodeID(2)
    static let seededAt = Date(timeIntervalSince1970: 1_796_000_000)

    static func record(_ item: StoreSeed.Item, digest: String? = nil) -> SeededItemRecord {
        SeededItemRecord(item: item.name, digest: digest ?? item.digest, nodeID: node1, seededAt: 1_796_000_000)
    }

    @Test func anItemIsNewChangedOrUnchanged() throws {
        let seed = StoreSeed(try parse(StoreSeedTests.toml))
        let target = StoreSeed.item(seed.targets[0])
        #expect(target.name == "target iqn.2026-11.dev.tessera:a")
        #expect(StoreSeed.decide(target, recorded: nil) == .new)
        #expect(StoreSeed.decide(target, recorded: Self.record(target)) == .unchanged(Self.record(target)))
        let stale = Self.record(target, digest: "0000000000000000")
        #expect(StoreSeed.decide(target, recorded: stale) == .changed(stale))
        #expect(StoreSeed.item(seed.luns[0]).name == "lun iqn.2026-11.dev.tessera:a/0")
        #expect(seed.accessItem(seed.targets[0]).name == "access iqn.2026-11.dev.tessera:a")
    }

    /// The digest follows what the TOML says of an item, and only that.
    @Test func theDigestFollowsTheItem() throws {
        let base = StoreSeed(try parse(StoreSeedTests.toml))
        #expect(StoreSeed(try parse(StoreSeedTests.toml)) == base)
        let renamed = StoreSeed(
            try parse(StoreSeedTests.toml.replacingOccurrences(of: "alias = \"A\"", with: "alias = \"B\"")))
        #expect(StoreSeed.item(renamed.targets[0]).digest != StoreSeed.item(base.targets[0]).digest)
        #expect(renamed.accessItem(renamed.targets[0]) == base.accessItem(base.targets[0]))
        let narrowed = StoreSeed(
            try parse(StoreSeedTests.toml.replacingOccurrences(of: ", \"iqn.1994-05.com.redhat:two\"", with: "")))
        #expect(narrowed.accessItem(narrowed.targets[0]).digest != base.accessItem(base.targets[0]).digest)
        let rekeyed = StoreSeed(
            try parse(StoreSeedTests.toml.replacingOccurrences(of: "alice-secret-123", with: "alice-secret-999")))
        #expect(rekeyed.accessItem(rekeyed.targets[0]).digest != base.accessItem(base.targets[0]).digest)
        #expect(StoreSeed.item(rekeyed.targets[0]) == StoreSeed.item(base.targets[0]))
        #expect(StoreSeed.digest(["a", "bc"]) != StoreSeed.digest(["ab", "c"]))
    }

    /// Against a real store: node 1 seeds; an administrator deletes LUN 7,
    /// revokes an initiator, renames target a and deletes target b; node 2
    /// starts with the same TOML and brings none of it back, saying why;
    /// then an edited ACL in the TOML applies again.
    @Test(.timeLimit(.minutes(1)))
    func whatTheAdministratorChangedStays() async throws {
        let root = NSTemporaryDirectory() + "tessera-seed-once-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let settings = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .seconds(2))
        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let seed = StoreSeed(try parse(StoreSeedTests.toml))
        func apply(_ seed: StoreSeed, as node: NodeID) async throws -> StoreSeed.Report {
            try await cluster.client.transaction { tx in
                try await seed.apply(to: StoreRepository(tx), node: node, at: Self.seededAt)
            }
        }
        let first = try await apply(seed, as: Self.node1)
        #expect(first.applied.count == 6, "two targets, two access items, two LUNs: \(first.applied)")
        #expect(first.skipped.isEmpty)
        let repository = StoreRepository(cluster.client)
        let a = "iqn.2026-11.dev.tessera:a"
        #expect(try await repository.seededItems()["lun \(a)/7"]?.nodeID == Self.node1)

        // The administrator's changes, as the admin API makes them.
        try await repository.deleteLUN(LUNKey(targetIQN: a, lun: 7))
        try await repository.revokeInitiator("iqn.1994-05.com.redhat:two", target: a)
        try await repository.upsertTarget(TargetRecord(iqn: a, alias: "renamed", portalGroupTag: 2))
        try await repository.deleteTarget("iqn.2026-11.dev.tessera:b")

        let second = try await apply(seed, as: Self.node2)
        #expect(second.applied.isEmpty, "\(second.applied)")
        #expect(try await repository.lun(LUNKey(targetIQN: a, lun: 7)) == nil, "a deleted LUN is not created again")
        #expect(try await repository.allowedInitiators(target: a) == ["iqn.1994-05.com.redhat:one"])
        #expect(try await repository.targets().map(\.alias) == ["renamed"], "target b stays deleted, a keeps its alias")
        let skipped = second.skipped.joined(separator: "\n")
        #expect(skipped.contains("lun \(a)/7: seeded by node 1 at 2026-"))
        #expect(skipped.contains("deleted through the cluster since; not created again"))
        #expect(skipped.contains("target iqn.2026-11.dev.tessera:b"))
        #expect(second.skipped.count == 5, "\(second.skipped)")
        #expect(try await repository.seededItems()["lun \(a)/0"]?.nodeID == Self.node1, "a skip records nothing")

        // The TOML's ACL edited: applied again, exactly as the file says.
        let edited = StoreSeed(
            try parse(
                StoreSeedTests.toml.replacingOccurrences(
                    of: "\"iqn.1994-05.com.redhat:two\"", with: "\"iqn.1994-05.com.redhat:three\"")))
        let third = try await apply(edited, as: Self.node2)
        #expect(third.applied == ["access \(a): ACL and CHAP set to this node's configuration"])
        #expect(
            try await repository.allowedInitiators(target: a).sorted() == [
                "iqn.1994-05.com.redhat:one", "iqn.1994-05.com.redhat:three",
            ])
        #expect(try await repository.seededItems()["access \(a)"]?.nodeID == Self.node2)
        await cluster.stop()
    }
}
