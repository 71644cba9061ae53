import Testing

@testable import TesseraNode

@Suite struct NodeRuntimeTests {
    @Test func lunIdentityDependsOnlyOnTargetNameAndLUN() {
        let a = NodeRuntime.identity(targetName: "iqn.2026-11.dev.tessera:default", lunID: 0)
        #expect(a == NodeRuntime.identity(targetName: "IQN.2026-11.dev.tessera:DEFAULT", lunID: 0))
        #expect(a != NodeRuntime.identity(targetName: "iqn.2026-11.dev.tessera:default", lunID: 1))
        #expect(a != NodeRuntime.identity(targetName: "iqn.2026-11.dev.tessera:other", lunID: 0))
        let serial = NodeRuntime.defaultSerial(targetName: "iqn.2026-11.dev.tessera:default", lunID: 0)
        #expect(serial.count == 19 && serial.hasPrefix("TSR"))
    }

    @Test func defaultConfigurationBecomesOneTargetOnOnePortal() throws {
        let configuration = try NodeConfiguration.parse(NodeConfiguration.defaultTOML, source: "default")
        let login = NodeRuntime.loginConfiguration(configuration)
        #expect(login.targets.map(\.name) == ["iqn.2026-11.dev.tessera:default"])
        #expect(login.targets[0].sendTargetsAddresses == ["127.0.0.1:3260,1"])
        #expect(login.targets[0].chap == nil)
        #expect(login.targets[0].allowedInitiators.isEmpty)
        #expect(login.commandWindow == 128)
    }

    @Test func targetsAreAdvertisedOnlyOnTheirPortalGroups() throws {
        let toml = """
            [[portal]]
            listen = "127.0.0.1:3260"
            group = 1
            [[portal]]
            listen = "127.0.0.2:3260"
            group = 2
            [[target]]
            name = "iqn.2026-11.dev.tessera:a"
            portal_groups = [2]
            acl = ["iqn.2026-11.dev.tessera:host"]
            [target.chap]
            user = "u"
            secret = "secret-of-12-bytes"
            [[target.lun]]
            id = 0
            size = "1MiB"
            backing = "memory"
            """
        let configuration = try NodeConfiguration.parse(toml, source: "test")
        let login = NodeRuntime.loginConfiguration(configuration)
        #expect(login.targets[0].sendTargetsAddresses == ["127.0.0.2:3260,2"])
        #expect(login.targets[0].portalGroupTag == 2)
        #expect(login.targets[0].allowedInitiators == ["iqn.2026-11.dev.tessera:host"])
        #expect(login.targets[0].chap?.user == "u")
        let server = NodeRuntime.serverConfiguration(configuration, devices: [:])
        #expect(server.portals.map(\.portalGroupTag) == [1, 2])
    }
}
