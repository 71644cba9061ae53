import ISCSIWire
import NIOCore
import Testing

@testable import ISCSISession

private typealias S = LoginTestSupport

/// The ACL and CHAP a login reads from live rules that change while the node runs.
@Suite struct TargetAccessTests {
    /// The login configuration with `rules` attached to every target.
    static func configuration(_ rules: TargetAccessRules) -> LoginConfiguration {
        var configuration = S.configuration()
        for index in configuration.targets.indices { configuration.targets[index].accessRules = rules }
        return configuration
    }

    /// A libiscsi-style login (no security stage) as `initiator`; its status.
    static func login(_ configuration: LoginConfiguration, initiator: String = S.initiator) -> LoginStatus {
        var machine = LoginStateMachine(configuration: configuration, newTSIH: 9, random: .repeating([0xab]))
        let action = machine.receive(
            S.request(
                .loginOperationalNegotiation, .fullFeaturePhase, transit: true,
                [("InitiatorName", initiator), ("TargetName", S.targetName)] + LoginStateMachineTests.operationalOffer))
        return S.status(action.response)
    }

    @Test func aLoginReadsTheRulesInForceWhenItStarts() {
        let rules = TargetAccessRules()
        let configuration = Self.configuration(rules)
        // No entry for the target: the description's own (empty) ACL admits everyone.
        #expect(Self.login(configuration) == .success)
        // The ACL changes under the same configuration value: the next login is refused.
        #expect(rules.replace(with: [S.targetName: TargetAccess(allowedInitiators: ["iqn.2026-01.test:other"])]))
        #expect(Self.login(configuration) == .authorizationFailure)
        #expect(Self.login(configuration, initiator: "IQN.2026-01.TEST:OTHER") == .success)
        // This initiator's own CHAP: skipping the security stage is refused (RFC 7143 §6.3).
        rules.replace(with: [
            S.targetName: TargetAccess(initiatorCHAP: [S.initiator: CHAPCredentials(user: "u", secret: "secret-0123")])
        ])
        #expect(Self.login(configuration) == .authenticationFailure)
        #expect(Self.login(configuration, initiator: "iqn.2026-01.test:other") == .success)
        // Removed again: admitted again.
        rules.replace(with: [S.targetName: TargetAccess()])
        #expect(Self.login(configuration) == .success)
    }

    @Test func anInitiatorsOwnCHAPTakesThePlaceOfTheTargets() {
        let own = CHAPCredentials(
            user: "host2", secret: "host2-secret-0", mutualUser: "t", mutualSecret: "t-secret-0123")
        let shared = CHAPCredentials(user: "all", secret: "shared-secret-0")
        let access = TargetAccess(chap: shared, initiatorCHAP: ["iqn.2026-01.test:host2": own])
        #expect(access.chap(for: "iqn.2026-01.test:host2") == own)
        #expect(access.chap(for: "IQN.2026-01.test:HOST2") == own)
        #expect(access.chap(for: "iqn.2026-01.test:host3") == shared)
        #expect(TargetAccess(initiatorCHAP: ["iqn.2026-01.test:host2": own]).chap(for: "iqn.2026-01.test:x") == nil)
    }

    @Test func targetNamedTakesASnapshotAndSendTargetsFiltersLive() {
        let rules = TargetAccessRules([
            S.targetName.uppercased(): TargetAccess(allowedInitiators: [S.initiator])
        ])
        let configuration = Self.configuration(rules)
        let snapshot = configuration.target(named: S.targetName)
        #expect(snapshot?.accessRules == nil)
        #expect(snapshot?.allowedInitiators == [S.initiator])
        rules.replace(with: [S.targetName: TargetAccess(allowedInitiators: ["iqn.2026-01.test:other"])])
        // The snapshot keeps what it read; the live description sees the change.
        #expect(snapshot?.allows(initiator: S.initiator) == true)
        #expect(configuration.targets[0].allows(initiator: S.initiator) == false)
    }

    @Test func replaceSaysWhetherAnythingChanged() {
        let rules = TargetAccessRules()
        let access = [S.targetName: TargetAccess(allowedInitiators: [S.initiator])]
        #expect(rules.replace(with: access))
        #expect(!rules.replace(with: access))
        #expect(rules.access(target: S.targetName.uppercased()) == access[S.targetName])
        #expect(rules.access(target: "iqn.2026-01.tessera:none") == nil)
    }
}
