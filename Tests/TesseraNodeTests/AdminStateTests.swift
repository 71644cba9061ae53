import AdminAPI
import Foundation
import Logging
import Testing

@testable import TesseraNode

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct AdminConfigurationTests {
    static let portal = """
        [[portal]]
        listen = "127.0.0.1:3300"

        """

    func parse(_ admin: String) throws(NodeConfigurationError) -> NodeConfiguration {
        try NodeConfiguration.parse(Self.portal + "[admin]\n" + admin, source: "test.toml")
    }

    func problems(_ admin: String) -> String {
        do {
            _ = try parse(admin)
            return ""
        } catch {
            return error.description
        }
    }

    @Test func tokenKeys() throws {
        #expect(try parse("listen = \"127.0.0.1:8081\"\ntoken = \"abc\"").admin?.token == "abc")
        #expect(try parse("listen = \"127.0.0.1:8081\"\ntoken_file = \"/etc/t\"").admin?.tokenFile == "/etc/t")
        #expect(try parse("listen = \"127.0.0.1:8081\"").admin?.hasToken == false)
        #expect(try parse("listen = \"[::1]:8081\"").admin?.isLoopback == true)
        #expect(try parse("listen = \"0.0.0.0:8081\"\ntoken_file = \"/etc/t\"").admin?.isLoopback == false)
    }

    @Test(arguments: [
        ("listen = \"0.0.0.0:8081\"", "not a loopback address and no token"),
        ("listen = \"10.1.2.3:8081\"", "chmod 600"),
        ("listen = \"[::]:8081\"", "listen on 127.0.0.1"),
        ("listen = \"127.0.0.1:8081\"\ntoken = \"\"", "admin.token"),
        ("listen = \"127.0.0.1:8081\"\ntoken = \"  \"", "must not be empty"),
        ("listen = \"127.0.0.1:8081\"\ntoken_file = \"\"", "admin.token_file"),
        ("listen = \"127.0.0.1:8081\"\ntoken = \"a\"\ntoken_file = \"/t\"", "not both"),
        ("listen = \"127.0.0.1:8081\"\ntoken = 5", "expected a string"),
        ("listen = \"127.0.0.1:8081\"\ntokens = \"a\"", "unknown key"),
    ])
    func refused(admin: String, message: String) {
        #expect(problems(admin).contains(message), "\(admin): \(problems(admin))")
    }

    @Test func theSummaryNeverShowsTheToken() throws {
        let configuration = try parse("listen = \"127.0.0.1:8081\"\ntoken = \"very-secret-token\"")
        #expect(!configuration.summary(source: "t").contains("very-secret-token"))
        #expect(!"\(configuration)".contains("very-secret-token"))
        #expect(configuration.summary(source: "t").contains("inline token"))
    }

    @Test func tokenFileMustBeTheOwnersAlone() throws {
        let path = NSTemporaryDirectory() + "tessera-token-" + UUID().uuidString
        defer { unlink(path) }
        try "the-token\n".write(toFile: path, atomically: false, encoding: .utf8)
        chmod(path, 0o644)
        #expect(throws: NodeStartupError.self) { try AdminTokenFile.load(path) }
        do {
            _ = try AdminTokenFile.load(path)
        } catch {
            #expect("\(error)".contains("chmod 600 \(path)"))
            #expect(!"\(error)".contains("the-token"))
        }
        chmod(path, 0o600)
        let token = try AdminTokenFile.load(path)
        #expect(token.accepts(authorization: "Bearer the-token"))
        chmod(path, 0o640)
        #expect(throws: NodeStartupError.self) { try AdminTokenFile.load(path) }
        #expect(throws: NodeStartupError.self) { try AdminTokenFile.load(path + ".missing") }
        chmod(path, 0o600)
        try "\n".write(toFile: path, atomically: false, encoding: .utf8)
        #expect(throws: NodeStartupError.self) { try AdminTokenFile.load(path) }
    }
}

/// The adapter over a real one-node store seeded from a TOML with CHAP.
@Suite struct NodeAdminStateTests {
    static let chapSecret = "alice-secret-123"
    static let mutualSecret = "target-secret-456"

    @Test(.timeLimit(.minutes(1)))
    func resourcesComeFromTheStoreAndHoldNoSecret() async throws {
        let root = NSTemporaryDirectory() + "tessera-admin-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let peer = freeLoopbackPort()
        let configuration = try NodeConfiguration.parse(
            """
            [node]
            data_dir = "\(root)"

            [[portal]]
            listen = "127.0.0.1:\(freeLoopbackPort())"
            group = 1

            [cluster]
            peer = "127.0.0.1:\(peer)"

            [[target]]
            name = "iqn.2026-11.dev.tessera:a"
            alias = "A"
            acl = ["iqn.1994-05.com.redhat:one"]
            chap = { user = "alice", secret = "\(Self.chapSecret)", mutual_user = "tgt", mutual_secret = "\(Self.mutualSecret)" }

            [[target.lun]]
            id = 0
            size = "16MiB"
            backing = "memory"
            sub_unit_size = "8MiB"
            """, source: "test")
        var logger = Logger(label: "test.admin")
        logger.logLevel = .critical
        let cluster = try await ClusterNode.start(
            settings: configuration.cluster, dataDirectory: root, logger: logger)
        cluster.startHeartbeat()
        do {
            try await Self.check(cluster, configuration)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    static func check(_ cluster: ClusterNode, _ configuration: NodeConfiguration) async throws {
        let served = try await cluster.formAndLoad(configuration)
        // /health answers 503 until the first heartbeat took the lease (slow under a loaded test run).
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        while !cluster.lease.mayChangeContext(), clock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        let state = NodeAdminState(cluster: cluster, served: ServedTargets(served.targets))
        let token = AdminToken("admin-token-789")

        let luns = try await state.luns()
        #expect(luns.count == 1)
        #expect(luns.first?.layout?.subUnitCount == 2)
        #expect(luns.first?.subUnits.allSatisfy { $0.primary == 1 && $0.replicas.map(\.state) == ["in_sync"] } == true)
        let targets = try await state.targets()
        #expect(
            targets == [
                TargetStatus(
                    name: "iqn.2026-11.dev.tessera:a", alias: "A", luns: [0], acl: ["iqn.1994-05.com.redhat:one"],
                    chap: .init(user: "alice", mutual: true), initiatorChap: [], lunMasks: [], portalGroupTag: 1)
            ])
        let cluster1 = try await state.cluster()
        #expect(cluster1.members.map(\.id) == [1])
        #expect(cluster1.members.first?.role == "leader")
        #expect(cluster1.storeLeader == 1)
        #expect(try await state.reservations(target: "iqn.2026-11.dev.tessera:a", lun: 0)?.generation == 0)
        #expect(try await state.reservations(target: "iqn.2026-11.dev.tessera:a", lun: 5) == nil)

        for uri in [
            "/health", "/metrics", "/v1/cluster", "/v1/luns", "/v1/luns/0", "/v1/luns/0/reservations", "/v1/targets",
        ] {
            let answer = await AdminRouter.respond(
                AdminRequest(method: "GET", uri: uri, authorization: "Bearer admin-token-789"), state: state,
                token: token)
            #expect(answer.status == 200, "\(uri): \(answer.body)")
            for secret in [Self.chapSecret, Self.mutualSecret, "admin-token-789"] {
                #expect(!answer.body.contains(secret), "\(uri) shows a secret")
            }
        }
    }
}
