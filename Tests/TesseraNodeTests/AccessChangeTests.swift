import AdminAPI
import Foundation
import ISCSISession
import Logging
import MetadataStore
import SCSITarget
import Synchronization
import Testing

@testable import TesseraNode

@Suite struct AccessRulesFollowerTests {
    /// A read that started before the one last applied is dropped: a slow
    /// periodic read cannot put back what an admin change's read replaced.
    @Test(.timeLimit(.minutes(1)))
    func anOlderReadDoesNotReplaceANewerOne() async throws {
        let target = "iqn.2026-11.dev.tessera:a"
        @Sendable func snapshot(_ initiator: String) -> AccessRulesFollower.Snapshot {
            .init(access: [target: TargetAccess(allowedInitiators: [initiator])], masks: [:])
        }
        let (slow, release) = AsyncStream<AccessRulesFollower.Snapshot>.makeStream()
        let calls = Mutex(0)
        let rules = TargetAccessRules()
        var logger = Logger(label: "test.access")
        logger.logLevel = .critical
        let refresher = AccessRulesRefresher(
            load: {
                let call = calls.withLock { calls in
                    calls += 1
                    return calls
                }
                guard call == 1 else { return snapshot("iqn.2026-11.dev.tessera:new") }
                for await old in slow { return old }
                throw CancellationError()
            }, rules: rules, masks: LUNMasks(), devices: { [:] }, logger: logger)
        let first = Task { try await refresher.refresh() }
        while calls.withLock({ $0 }) < 1 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(try await refresher.refresh(), "the later read is applied")
        #expect(rules.access(target: target)?.allowedInitiators == ["iqn.2026-11.dev.tessera:new"])
        release.yield(snapshot("iqn.2026-11.dev.tessera:old"))
        #expect(try await first.value == false, "the earlier read, finishing last, is dropped")
        #expect(rules.access(target: target)?.allowedInitiators == ["iqn.2026-11.dev.tessera:new"])
        #expect(try await refresher.refresh(), "and the next read is applied again")
    }

    @Test func rowsBecomeEachTargetsRules() {
        let t = "iqn.2026-11.dev.tessera:a"
        let rules = AccessRulesFollower.rules(
            targets: [t, "iqn.2026-11.dev.tessera:b"],
            acls: [t: ["iqn.2026-11.x:one", "iqn.2026-11.x:two"]],
            chap: [
                t: [
                    CHAPRecord(targetIQN: t, direction: .initiator, username: "all", secret: "shared-secret-0"),
                    CHAPRecord(targetIQN: t, direction: .target, username: "tgt", secret: "mutual-secret-0"),
                    CHAPRecord(
                        targetIQN: t, initiatorIQN: "IQN.2026-11.x:Two", direction: .initiator, username: "two",
                        secret: "two-secret-0123"),
                    // A mutual half without its one-way record is ignored.
                    CHAPRecord(
                        targetIQN: t, initiatorIQN: "iqn.2026-11.x:three", direction: .target, username: "x",
                        secret: "lonely-secret-0"),
                ]
            ])
        #expect(
            rules[t]
                == TargetAccess(
                    allowedInitiators: ["iqn.2026-11.x:one", "iqn.2026-11.x:two"],
                    chap: CHAPCredentials(
                        user: "all", secret: "shared-secret-0", mutualUser: "tgt", mutualSecret: "mutual-secret-0"),
                    initiatorCHAP: ["iqn.2026-11.x:two": CHAPCredentials(user: "two", secret: "two-secret-0123")]))
        #expect(rules["iqn.2026-11.dev.tessera:b"] == TargetAccess())
    }

    @Test func loginConfigurationCarriesTheLiveRules() throws {
        let configuration = try NodeConfiguration.parse(
            """
            [[portal]]
            listen = "127.0.0.1:3300"

            [[target]]
            name = "iqn.2026-11.dev.tessera:a"
            acl = ["iqn.2026-11.x:one"]
            """, source: "test")
        let rules = TargetAccessRules()
        let login = NodeRuntime.loginConfiguration(configuration, accessRules: rules)
        #expect(login.targets.allSatisfy { $0.accessRules === rules })
        #expect(login.targets.first?.allows(initiator: "iqn.2026-11.x:two") == false)
        rules.replace(with: ["iqn.2026-11.dev.tessera:a": TargetAccess(allowedInitiators: ["iqn.2026-11.x:two"])])
        #expect(login.targets.first?.allows(initiator: "iqn.2026-11.x:two") == true)
        #expect(login.target(named: "iqn.2026-11.dev.tessera:a")?.allowedInitiators == ["iqn.2026-11.x:two"])
    }
}

/// Changes through the router against a real one-node store.
@Suite struct AccessChangeStoreTests {
    static let target = "iqn.2026-11.dev.tessera:a"
    static let host2 = "iqn.2026-11.dev.tessera:host2"
    static let secret = "host2-secret-0123"
    static let mutualSecret = "host2-mutual-4567"
    static let tomlSecret = "alice-secret-123"

    @Test(.timeLimit(.minutes(1)))
    func changesLandInTheStoreOnceAndReachTheLoginRules() async throws {
        let root = NSTemporaryDirectory() + "tessera-access-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        let configuration = try NodeConfiguration.parse(
            """
            [node]
            data_dir = "\(root)"

            [[portal]]
            listen = "127.0.0.1:\(freeLoopbackPort())"

            [cluster]
            peer = "127.0.0.1:\(freeLoopbackPort())"

            [[target]]
            name = "\(Self.target)"
            acl = ["iqn.1994-05.com.redhat:one"]
            chap = { user = "alice", secret = "\(Self.tomlSecret)" }

            [[target.lun]]
            id = 0
            size = "16MiB"
            backing = "memory"
            sub_unit_size = "8MiB"
            """, source: "test")
        var logger = Logger(label: "test.access")
        logger.logLevel = .critical
        let cluster = try await ClusterNode.start(settings: configuration.cluster, dataDirectory: root, logger: logger)
        cluster.startHeartbeat()
        do {
            try await Self.check(cluster, configuration)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    static func send(
        _ state: NodeAdminState, _ method: String, _ path: String, json: String = "", key: String? = nil
    ) async -> AdminResponse {
        await AdminRouter.respond(
            AdminRequest(
                method: method, uri: "/v1/targets/\(target)/\(path)", idempotencyKey: key, body: Array(json.utf8)),
            state: state, token: nil)
    }

    static func decode(_ response: AdminResponse) throws -> TargetStatus {
        try AdminJSON.decoder.decode(TargetStatus.self, from: Data(response.body.utf8))
    }

    static func check(_ cluster: ClusterNode, _ configuration: NodeConfiguration) async throws {
        let served = try await cluster.formAndLoad(configuration)
        let state = NodeAdminState(cluster: cluster, served: ServedTargets(served.targets))
        // What this node's logins consult; the admin API reads it again after each change.
        let inForce = TargetAccessRules()
        var quiet = Logger(label: "test.access")
        quiet.logLevel = .critical
        state.attach(
            accessRefresher: AccessRulesRefresher(
                load: { try await AccessRulesFollower.load(cluster.client) }, rules: inForce, masks: LUNMasks(),
                devices: { [:] }, logger: quiet))
        var answers: [AdminResponse] = []

        let added = await send(state, "POST", "acls", json: #"{"initiator": "\#(host2)"}"#, key: "r1")
        answers.append(added)
        #expect(added.status == 200, "\(added.body)")
        #expect(try decode(added).acl == ["iqn.1994-05.com.redhat:one", host2])
        let chap = await send(
            state, "PUT", "chap/\(host2)",
            json:
                #"{"user": "host2", "secret": "\#(secret)", "mutual_user": "tgt2", "mutual_secret": "\#(mutualSecret)"}"#
        )
        answers.append(chap)
        #expect(chap.status == 200, "\(chap.body)")
        let status = try decode(chap)
        #expect(status.initiatorChap == [.init(initiator: host2, user: "host2", mutual: true)])
        // The TOML's target-wide CHAP is still the target's.
        #expect(status.chap == .init(user: "alice", mutual: false))
        // In force on this node by the time it answered, with no follower running.
        #expect(inForce.access(target: target)?.chap(for: host2)?.secret == secret)
        #expect(inForce.access(target: target)?.allows(initiator: host2) == true)

        // What the logins will read: the follower's load of the store.
        let rules = try await AccessRulesFollower.load(cluster.client)
        let access = try #require(rules.access[target])
        #expect(access.allows(initiator: host2))
        #expect(
            access.chap(for: host2)
                == CHAPCredentials(user: "host2", secret: secret, mutualUser: "tgt2", mutualSecret: mutualSecret))
        #expect(access.chap(for: "iqn.1994-05.com.redhat:one")?.user == "alice")

        // Removed, then the first request replayed (its answer lost): it changes nothing.
        answers.append(await send(state, "DELETE", "acls/\(host2)", key: "r2"))
        let replay = await send(state, "POST", "acls", json: #"{"initiator": "\#(host2)"}"#, key: "r1")
        answers.append(replay)
        #expect(replay.status == 200)
        #expect(try decode(replay).acl == ["iqn.1994-05.com.redhat:one"])
        #expect(try await AccessRulesFollower.load(cluster.client).access[target]?.allows(initiator: host2) == false)
        #expect(inForce.access(target: target)?.allows(initiator: host2) == false, "the removal is in force here")

        // Refusals roll back and say why.
        let last = await send(state, "DELETE", "acls/iqn.1994-05.com.redhat:one")
        #expect(last.status == 409, "\(last.body)")
        let absent = await send(state, "DELETE", "acls/\(host2)")
        #expect(absent.status == 404)
        let unknown = await AdminRouter.respond(
            AdminRequest(
                method: "POST", uri: "/v1/targets/iqn.2026-11.dev.tessera:nope/acls",
                body: Array(#"{"initiator": "\#(host2)"}"#.utf8)), state: state, token: nil)
        #expect(unknown.status == 404)
        #expect(
            try await StoreRepository(cluster.client).allowedInitiators(target: target) == [
                "iqn.1994-05.com.redhat:one"
            ])

        // One-way again: the mutual half goes; then the initiator's CHAP goes.
        let oneWay = await send(state, "PUT", "chap/\(host2)", json: #"{"user": "host2", "secret": "\#(secret)"}"#)
        #expect(try decode(oneWay).initiatorChap == [.init(initiator: host2, user: "host2", mutual: false)])
        let removed = await send(state, "DELETE", "chap/\(host2)")
        #expect(try decode(removed).initiatorChap == [])
        #expect(await send(state, "DELETE", "chap/\(host2)").status == 404)
        answers += [oneWay, removed, last, absent, unknown]

        // LUN masks: in the store and in what the follower loads; the last
        // initiator of a mask cannot leave alone; an unknown LUN is a 404.
        let mapped = await send(state, "PUT", "luns/0/initiators/\(host2)")
        #expect(mapped.status == 200, "\(mapped.body)")
        #expect(try decode(mapped).lunMasks == [.init(lun: 0, initiators: [host2])])
        #expect(try await AccessRulesFollower.load(cluster.client).masks[target]?[0] == [host2])
        #expect(await send(state, "DELETE", "luns/0/initiators/\(host2)").status == 409)
        #expect(await send(state, "PUT", "luns/9/initiators/\(host2)").status == 404)
        let cleared = await send(state, "DELETE", "luns/0/initiators")
        #expect(try decode(cleared).lunMasks == [])
        #expect(try await AccessRulesFollower.load(cluster.client).masks[target] == nil)
        #expect(await send(state, "DELETE", "luns/0/initiators").status == 404)

        for answer in answers {
            for hidden in [secret, mutualSecret, tomlSecret] {
                #expect(!answer.body.contains(hidden), "an answer shows a secret: \(answer.body)")
            }
        }
    }
}
