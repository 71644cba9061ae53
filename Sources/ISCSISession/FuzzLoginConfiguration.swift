/// The portal the fuzz entries log in to: one target without authentication
/// (any initiator), one behind CHAP, one with an ACL, and deterministic CHAP
/// challenges so a crash input replays the same way.
enum FuzzLoginConfiguration {
    static let openTarget = "iqn.2026-01.dev.tessera:fuzz"
    static let chapTarget = "iqn.2026-01.dev.tessera:chap"
    static let aclTarget = "iqn.2026-01.dev.tessera:acl"

    static let configuration: LoginConfiguration = {
        var configuration = LoginConfiguration(
            targets: [
                TargetDescription(name: openTarget, alias: "fuzz", sendTargetsAddresses: ["127.0.0.1:3260,1"]),
                TargetDescription(
                    name: chapTarget, sendTargetsAddresses: ["127.0.0.1:3260,1"],
                    chap: CHAPCredentials(user: "user", secret: "secretsecret", mutualUser: "target", mutualSecret: "targetsecret")),
                TargetDescription(
                    name: aclTarget, sendTargetsAddresses: ["127.0.0.1:3260,1"],
                    allowedInitiators: ["iqn.2026-01.dev.tessera:initiator"]),
            ],
            discoveryCHAP: nil)
        configuration.maxTextResponseSegment = 1024
        return configuration
    }()

    static let random = LoginRandomSource.repeating([0x5A, 0x13, 0xC4, 0x7E])
}
