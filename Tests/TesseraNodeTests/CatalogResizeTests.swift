import AdminAPI
import ClusterModel
import Foundation
import Logging
import MetadataStore
import Testing

@testable import TesseraNode

#if canImport(Glibc)
    import Glibc
#endif

/// The store side of catalog changes on a real in-process store: a forced
/// shrink drops the sub-units past the new end in the grow's transaction
/// shape, a shrink without force and the LUNs that cannot change size are
/// refused with the reason, and a target's alias and portal group change.
@Suite struct CatalogResizeTests {
    static let target = "iqn.2026-12.dev.tessera:resize"

    /// Runs `change` the way the admin API does, in one transaction.
    static func apply(_ change: CatalogChange, _ cluster: ClusterNode) async throws -> CatalogOutcome {
        try await cluster.client.transaction { tx in
            try await NodeAdminState.apply(change, to: StoreRepository(tx), live: [cluster.id])
        }
    }

    static func refusal(_ change: CatalogChange, _ cluster: ClusterNode) async -> AdminFailure? {
        do {
            _ = try await apply(change, cluster)
            return nil
        } catch let failure as AdminFailure {
            return failure
        } catch {
            Issue.record("unexpected \(error)")
            return nil
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func forcedShrinkCutsTheMapAndTheRestIsRefused() async throws {
        let root = NSTemporaryDirectory() + "tessera-resize-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let settings = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .seconds(2))
        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let repository = StoreRepository(cluster.client)
        _ = try await Self.apply(.createTarget(.init(name: Self.target, alias: "first")), cluster)
        let mib: UInt64 = 1 << 20
        _ = try await Self.apply(
            .createLUN(.init(target: Self.target, lun: 0, sizeBytes: 64 * mib, replicas: 1, subUnitBytes: 8 * mib)),
            cluster)
        _ = try await Self.apply(
            .createLUN(
                .init(
                    target: Self.target, lun: 1, sizeBytes: 16 * mib, replicas: 1, subUnitBytes: 8 * mib,
                    backing: "memory")),
            cluster)
        _ = try await Self.apply(
            .createLUN(
                .init(
                    target: Self.target, lun: 2, sizeBytes: 16 * mib, replicas: 1, subUnitBytes: 8 * mib, readOnly: true)),
            cluster)
        let key = LUNKey(targetIQN: Self.target, lun: 0)
        let selector = LUNSelector(target: Self.target, lun: 0)

        // Without force: refused, and the hint says how to force it.
        let unforced = await Self.refusal(.resizeLUN(selector, sizeBytes: 20 * mib), cluster)
        #expect(unforced?.status == 409)
        #expect(unforced?.hint.contains("--force --yes") == true)
        #expect(try await repository.subUnitMap(key)?.subUnits.count == 8)

        // Forced: 20 MiB keeps sub-units 0, 1 and a cut 2 (4 MiB of it).
        _ = try await Self.apply(.resizeLUN(selector, sizeBytes: 20 * mib, force: true), cluster)
        let map = try #require(try await repository.subUnitMap(key))
        #expect(map.subUnits.count == 3)
        #expect(map.layout.blockCount == 20 * mib / 512)
        #expect(map.layout.blocks(in: 2) == 4 * mib / 512)
        let stored = try #require(try await repository.lun(key))
        #expect(stored.sizeBytes == 20 * mib)
        #expect(StoredLUNOptions.decode(stored.backing)?.shrunkFromBytes == 64 * mib)
        let (served, _) = try await cluster.client.transaction { tx in
            try await StoreSnapshot.load(from: StoreRepository(tx))
        }.targetConfigurations(portals: [PortalConfiguration()])
        #expect(served.first?.luns.first { $0.id == 0 }?.shrunkFromBytes == 64 * mib)

        // Growing again places new sub-units after the cut one; the note of the old size stays.
        _ = try await Self.apply(.resizeLUN(selector, sizeBytes: 32 * mib), cluster)
        #expect(try await repository.subUnitMap(key)?.subUnits.count == 4)

        // Refused: not a whole block, below the minimum (validated before), a memory LUN.
        #expect(
            await Self.refusal(.resizeLUN(selector, sizeBytes: 20 * mib + 100, force: true), cluster)?.status == 400)
        let memory = await Self.refusal(
            .resizeLUN(LUNSelector(target: Self.target, lun: 1), sizeBytes: 8 * mib, force: true), cluster)
        #expect(memory?.status == 409)
        #expect(memory?.error.contains("cannot shrink") == true)
        let readOnly = await Self.refusal(
            .resizeLUN(LUNSelector(target: Self.target, lun: 2), sizeBytes: 8 * mib, force: true), cluster)
        #expect(readOnly?.status == 409 && readOnly?.hint.contains("read-only") == true)
        #expect(try await repository.lun(LUNKey(targetIQN: Self.target, lun: 2))?.sizeBytes == 16 * mib)

        // The alias and the portal group tag change; a null alias removes it.
        _ = try await Self.apply(.updateTarget(.init(name: Self.target.uppercased(), alias: .some("second"))), cluster)
        #expect(try await repository.targets().first?.alias == "second")
        _ = try await Self.apply(.updateTarget(.init(name: Self.target, alias: .some(nil), portalGroupTag: 4)), cluster)
        let record = try #require(try await repository.targets().first)
        #expect(record.alias == nil && record.portalGroupTag == 4)
        #expect(
            await Self.refusal(.updateTarget(.init(name: "iqn.2026-12.dev.tessera:none", alias: "x")), cluster)?.status
                == 404)
        await cluster.stop()
    }
}

/// A node that was away during a forced shrink cuts its longer replica file
/// when it opens the LUN, but never a file longer than the LUN ever was.
@Suite struct ReplicaFileCutTests {
    @Test(arguments: [
        (UInt64(10 << 20), UInt64?(10 << 20), UInt64(4 << 20)),  // cut from the old size
        (UInt64(6 << 20), UInt64?(6 << 20), UInt64(4 << 20)),  // cut from between
        (UInt64(12 << 20), UInt64?(nil), UInt64(12 << 20)),  // longer than the LUN ever was: left alone
        (UInt64(3 << 20), UInt64?(nil), UInt64(3 << 20)),  // already short
    ])
    func aFileIsCutOnlyWithinTheOldSize(length: UInt64, cutFrom: UInt64?, after: UInt64) throws {
        let path = NSTemporaryDirectory() + "tessera-cut-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        #expect(truncate(path, off_t(length)) == 0)
        let result = DataPlane.cutReplicaFile(path, to: 4 << 20, ifAtMost: 10 << 20)
        #expect(try result.get() == cutFrom)
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.size] as? UInt64 == after)
        #expect(try DataPlane.cutReplicaFile(path + ".missing", to: 4 << 20, ifAtMost: 10 << 20).get() == nil)
    }
}
