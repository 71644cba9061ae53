import ClusterModel
import Foundation
import Logging
import MetadataStore
import Testing

@testable import TesseraNode

#if canImport(Glibc)
    import Glibc
#endif

/// A free 127.0.0.1 TCP port: bind port 0, read it back, close.
func freeLoopbackPort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return UInt16(bigEndian: address.sin_port)
}

@Suite struct StoreSeedTests {
    static let toml = """
        [[portal]]
        listen = "127.0.0.1:3300"
        group = 1

        [[portal]]
        listen = "127.0.0.1:3301"
        group = 2

        [[target]]
        name = "iqn.2026-11.dev.tessera:a"
        alias = "A"
        portal_groups = [2]
        acl = ["iqn.1994-05.com.redhat:one", "iqn.1994-05.com.redhat:two"]
        chap = { user = "alice", secret = "alice-secret-123", mutual_user = "tgt", mutual_secret = "target-secret-456" }

        [[target.lun]]
        id = 0
        size = "64MiB"
        path = "a0.img"
        physical_block_size = 4096
        direct_io = false
        thin = false

        [[target.lun]]
        id = 7
        size = "4MiB"
        block_size = 4096
        backing = "memory"
        read_only = true
        vendor = "ACME"
        product = "Disk"
        revision = "9"
        serial = "SER-7"

        [[target]]
        name = "iqn.2026-11.dev.tessera:b"
        """

    /// Seeding then reading back yields the configured targets: the store
    /// round trip loses nothing a node needs to serve them.
    @Test func seedRoundTripsThroughSnapshot() throws {
        let configuration = try parse(Self.toml)
        let seed = StoreSeed(configuration)
        #expect(seed.targets.count == 2)
        #expect(seed.luns.count == 2)
        #expect(seed.acls.count == 2)
        #expect(seed.chap.map(\.direction) == [.initiator, .target])
        var snapshot = StoreSnapshot()
        snapshot.targets = seed.targets
        snapshot.luns = seed.luns
        for entry in seed.acls { snapshot.acls[entry.targetIQN, default: []].append(entry.initiatorIQN) }
        for credentials in seed.chap { snapshot.chap[credentials.targetIQN, default: []].append(credentials) }
        let (targets, problems) = snapshot.targetConfigurations(portals: configuration.portals, local: configuration.targets)
        #expect(snapshot.targetConfigurations(portals: configuration.portals).targets[1].portalGroups == [1])
        #expect(problems.isEmpty)
        var expected = configuration.targets
        // The store keeps the derived serial; the node would derive the same one.
        expected[0].luns[0].serial = NodeRuntime.defaultSerial(targetName: expected[0].name, lunID: 0)
        // A lone node's LUNs that name no replica count get one, and the store says so.
        for i in expected[0].luns.indices { expected[0].luns[i].replicas = 1 }
        // The store's identity is the derived one (ARCHITECTURE.md rule 4), carried to the node.
        for i in expected[0].luns.indices {
            expected[0].luns[i].identifier = NodeRuntime.identity(targetName: expected[0].name, lunID: expected[0].luns[i].id)
        }
        #expect(targets == expected)
    }

    @Test func identityIsTheNodeRuntimeIdentity() throws {
        let seed = StoreSeed(try parse(Self.toml))
        let identity = NodeRuntime.identity(targetName: "iqn.2026-11.dev.tessera:a", lunID: 0)
        #expect(seed.luns[0].naaID == (0..<8).map { UInt8(truncatingIfNeeded: identity >> (56 - 8 * $0)) })
    }

    /// A target whose portal group this node lacks is exported on all its portals.
    @Test func unknownPortalGroupFallsBackToAllPortals() throws {
        var snapshot = StoreSnapshot()
        snapshot.targets = [TargetRecord(iqn: "iqn.2026-11.dev.tessera:x", portalGroupTag: 9)]
        let portals = [PortalConfiguration(port: 3300, groupTag: 1), PortalConfiguration(port: 3301, groupTag: 2)]
        #expect(snapshot.targetConfigurations(portals: portals).targets[0].portalGroups == [1, 2])
    }

    @Test(arguments: ["not json", #"{"backing":"tape","vendor":"a","product":"b","revision":"c","directIO":"auto","readOnly":false,"thin":true}"#])
    func unreadableStoredLUNsAreSkippedAndReported(backing: String) {
        var snapshot = StoreSnapshot()
        snapshot.targets = [TargetRecord(iqn: "iqn.2026-11.dev.tessera:x")]
        snapshot.luns = [
            LUNRecord(
                key: LUNKey(targetIQN: "iqn.2026-11.dev.tessera:x", lun: 0), sizeBytes: 4096, blockSize: 512, naaID: [],
                serial: "s", backing: backing)
        ]
        let (targets, problems) = snapshot.targetConfigurations(portals: [PortalConfiguration()])
        #expect(targets[0].luns.isEmpty)
        #expect(problems.count == 1)
    }

    /// Against a real in-process store: seeding twice (two starts) leaves one
    /// copy of everything, keeps context_version, and a node whose TOML has
    /// no targets serves what the store has.
    @Test(.timeLimit(.minutes(1)))
    func seedingIsIdempotentOnARealStore() async throws {
        let root = NSTemporaryDirectory() + "tessera-seed-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let port = freeLoopbackPort()
        let settings = ClusterSettings(nodeID: 1, peerPort: port, lease: .seconds(2))
        let configuration = try parse(Self.toml)

        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let first = try await cluster.seedAndLoad(configuration)
        let key = LUNKey(targetIQN: "iqn.2026-11.dev.tessera:a", lun: 0)
        let bumped = try await StoreRepository(cluster.client).bumpContextVersion(key)
        let second = try await cluster.seedAndLoad(configuration)
        #expect(first == second)
        let repository = StoreRepository(cluster.client)
        #expect(try await repository.targets().count == 2)
        #expect(try await repository.luns().count == 2)
        #expect(try await repository.allowedInitiators(target: "iqn.2026-11.dev.tessera:a").count == 2)
        #expect(try await repository.chap(target: "iqn.2026-11.dev.tessera:a").count == 2)
        #expect(try await repository.contextVersion(key) == bumped)
        #expect(try await repository.members().map(\.nodeID) == [NodeID(1)])
        // Access rules of a target the TOML names follow the TOML: a revoked
        // initiator and dropped CHAP do not linger in the store.
        let tightened = try parse(
            Self.toml.replacingOccurrences(of: ", \"iqn.1994-05.com.redhat:two\"", with: "")
                .replacingOccurrences(
                    of: "chap = { user = \"alice\", secret = \"alice-secret-123\", mutual_user = \"tgt\", mutual_secret = \"target-secret-456\" }\n",
                    with: ""))
        #expect(tightened.targets[0].allowedInitiators == ["iqn.1994-05.com.redhat:one"] && tightened.targets[0].chap == nil)
        let narrowed = try await cluster.seedAndLoad(tightened)
        #expect(narrowed[0].allowedInitiators == ["iqn.1994-05.com.redhat:one"])
        #expect(narrowed[0].chap == nil)
        #expect(try await repository.chap(target: "iqn.2026-11.dev.tessera:a").isEmpty)
        _ = try await cluster.seedAndLoad(configuration)
        let bare = try parse("[[portal]]\nlisten = \"127.0.0.1:3300\"\n")
        #expect(try await cluster.seedAndLoad(bare).map(\.name) == first.map(\.name))
        await cluster.stop()

        // Restart on the same data: the state is there and seeding again is harmless.
        let again = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        let reloaded = try await again.seedAndLoad(bare)
        #expect(reloaded.map(\.name) == first.map(\.name))
        #expect(reloaded.map(\.luns) == first.map(\.luns))
        #expect(reloaded.map(\.chap) == first.map(\.chap))
        await again.stop()
    }

    @Test(.timeLimit(.minutes(1)))
    func heartbeatAcquiresTheLease() async throws {
        let root = NSTemporaryDirectory() + "tessera-lease-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .warning
        let settings = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .milliseconds(500))
        let cluster = try await ClusterNode.start(settings: settings, dataDirectory: root, logger: logger)
        cluster.startHeartbeat()
        var held = false
        for _ in 0..<50 where !held {
            try await Task.sleep(for: .milliseconds(50))
            held = cluster.lease.mayChangeContext()
        }
        #expect(held)
        #expect(cluster.lastKnownLeader == NodeID(1))
        await cluster.stop()
    }
}

/// A LUN is created once: a TOML that disagrees later is reported, never applied.
@Suite("Seeding an existing LUN")
struct StoreSeedDifferencesTests {
    @Test("size, block_size, replicas and sub_unit_size that differ are each named with the store's value")
    func differencesNamed() throws {
        let key = LUNKey(targetIQN: "iqn.2026-11.dev.tessera:x", lun: 0)
        var lun = LUNConfiguration(id: 0, size: 64 << 20, backing: .file(path: "x.img"))
        lun.subUnitSize = 8 << 20
        let stored = LUNRecord(
            key: key, sizeBytes: 64 << 20, blockSize: 512, naaID: [], serial: "S",
            backing: StoredLUNOptions(lun, replicas: 2).encoded())
        #expect(StoreSeed.differences(configured: stored, stored: stored).isEmpty)
        lun.subUnitSize = 16 << 20
        let configured = LUNRecord(
            key: key, sizeBytes: 128 << 20, blockSize: 4096, naaID: [], serial: "S",
            backing: StoredLUNOptions(lun, replicas: 3).encoded())
        let messages = StoreSeed.differences(configured: configured, stored: stored)
        #expect(messages.count == 4)
        #expect(messages[0].contains("size = 134217728") && messages[0].contains("has 67108864"))
        #expect(messages[1].contains("block_size = 4096") && messages[1].contains("has 512"))
        #expect(messages[2].contains("replicas = 3") && messages[2].contains("has 2"))
        #expect(messages[3].contains("sub_unit_size = 16777216") && messages[3].contains("has 8388608"))
    }

    @Test("direct_io, read_only and thin that differ are named: the store's are what every node opens")
    func servingSettingsNamed() throws {
        let key = LUNKey(targetIQN: "iqn.2026-11.dev.tessera:x", lun: 0)
        var lun = LUNConfiguration(id: 0, size: 64 << 20, backing: .file(path: "x.img"))
        lun.directIO = .on
        let stored = LUNRecord(
            key: key, sizeBytes: 64 << 20, blockSize: 512, naaID: [], serial: "S",
            backing: StoredLUNOptions(lun, replicas: 1).encoded())
        lun.directIO = .off
        lun.readOnly = true
        lun.thin = false
        let configured = LUNRecord(
            key: key, sizeBytes: 64 << 20, blockSize: 512, naaID: [], serial: "S",
            backing: StoredLUNOptions(lun, replicas: 1).encoded())
        let messages = StoreSeed.differences(configured: configured, stored: stored)
        #expect(messages.count == 3)
        #expect(messages.first { $0.contains("direct_io = off") }?.contains("has on") == true)
        #expect(messages.first { $0.contains("read_only = true") }?.contains("has false") == true)
        #expect(messages.first { $0.contains("thin = false") }?.contains("has true") == true)
        #expect(messages.allSatisfy { $0.contains("keeping the store's (recreate the LUN") })
    }
}
