import AIOBlockStorage
import Foundation
import Testing

@testable import TesseraNode

/// The package's `Targets/` directory.
let targetsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
    "../../Targets"
).standardized

func parse(_ text: String) throws(NodeConfigurationError) -> NodeConfiguration {
    try NodeConfiguration.parse(text, source: "test")
}

/// The diagnostics a text produces (empty when it parses).
func diagnostics(_ text: String) -> [ConfigurationDiagnostic] {
    do {
        _ = try parse(text)
        return []
    } catch {
        return error.diagnostics
    }
}

@Suite struct ExampleConfigurationTests {
    static let files = ((try? FileManager.default.contentsOfDirectory(atPath: targetsDirectory.path)) ?? [])
        .filter { $0.hasSuffix(".toml") }.sorted()

    @Test func targetsHoldTheDocumentedExamples() {
        #expect(
            Set(Self.files).isSuperset(of: [
                "default.toml", "chap.toml", "two-portals.toml", "acl.toml", "memory-lun.toml", "readonly.toml",
            ]))
    }

    @Test(arguments: files)
    func everyExampleIsValid(file: String) throws {
        let text = try String(contentsOf: targetsDirectory.appendingPathComponent(file), encoding: .utf8)
        let configuration = try NodeConfiguration.parse(text, source: file)
        // A node joining a cluster may leave its targets to the store.
        #expect(!configuration.targets.isEmpty || !configuration.cluster.join.isEmpty)
        #expect(configuration.targets.allSatisfy { !$0.luns.isEmpty })
        #expect(configuration.warnings.isEmpty, "\(configuration.warnings)")
    }

    @Test func defaultTomlIsTheBuiltInDefault() throws {
        let text = try String(contentsOf: targetsDirectory.appendingPathComponent("default.toml"), encoding: .utf8)
        #expect(try NodeConfiguration.parse(text, source: "default.toml") == NodeConfiguration.builtInDefault())
    }

    @Test func theBuiltInDefaultIsWhatTheBriefSays() throws {
        let configuration = try NodeConfiguration.builtInDefault()
        #expect(configuration.portals == [PortalConfiguration(host: "127.0.0.1", port: 3260, groupTag: 1)])
        #expect(configuration.node.dataDirectory == "./tessera-data")
        #expect(configuration.discoveryCHAP == nil)
        let target = try #require(configuration.targets.first)
        #expect(configuration.targets.count == 1)
        #expect(target.name == "iqn.2026-11.dev.tessera:default")
        #expect(target.chap == nil && target.allowedInitiators.isEmpty && target.portalGroups == [1])
        #expect(
            target.luns == [LUNConfiguration(id: 0, size: 1 << 30, blockSize: 512, backing: .file(path: "lun0.img"))])
        #expect(
            configuration.logicalUnitPlans().map(\.device) == [
                .file(
                    AIOFileBlockDevice.Options(
                        path: "./tessera-data/lun0.img", geometry: .init(blockSize: 512, blockCount: 2_097_152)))
            ])
    }

    @Test func chapExampleIsMutualWithDiscoveryCHAP() throws {
        let text = try String(contentsOf: targetsDirectory.appendingPathComponent("chap.toml"), encoding: .utf8)
        let configuration = try NodeConfiguration.parse(text, source: "chap.toml")
        #expect(configuration.discoveryCHAP == CHAPConfiguration(user: "discovery", secret: "discovery-secret-1"))
        let chap = try #require(configuration.targets.first?.chap)
        #expect(chap.isMutual && chap.mutualUser == "tessera-target")
        #expect(!configuration.summary(source: "chap.toml").contains(chap.secret))
        #expect(!configuration.summary(source: "chap.toml").contains(chap.mutualSecret ?? "-"))
    }

    @Test func twoPortalsExampleExportsOnBothGroups() throws {
        let text = try String(contentsOf: targetsDirectory.appendingPathComponent("two-portals.toml"), encoding: .utf8)
        let configuration = try NodeConfiguration.parse(text, source: "two-portals.toml")
        #expect(configuration.portals.map(\.address) == ["127.0.0.1:3260", "127.0.0.2:3260"])
        #expect(configuration.targets.first?.portalGroups == [1, 2])
    }

    @Test func memoryExampleCarriesItsISCSISettingsAndIdentity() throws {
        let text = try String(contentsOf: targetsDirectory.appendingPathComponent("memory-lun.toml"), encoding: .utf8)
        let configuration = try NodeConfiguration.parse(text, source: "memory-lun.toml")
        #expect(
            configuration.iscsi
                == ISCSISettings(
                    queueDepth: 64, maxRecvDataSegmentLength: 65536, maxBurstLength: 262_144, firstBurstLength: 65536,
                    immediateData: true, initialR2T: true, nopInInterval: .seconds(5), nopInTimeout: .seconds(15)))
        let lun = try #require(configuration.targets.first?.luns.last)
        #expect(lun.backing == .memory && lun.blockSize == 4096 && lun.blockCount == 4096)
        #expect(lun.product == "RAM Disk 4Kn" && lun.serial == "MEM4K0001")
    }

    @Test func readonlyExampleIsReadOnlyBuffered() throws {
        let text = try String(contentsOf: targetsDirectory.appendingPathComponent("readonly.toml"), encoding: .utf8)
        let lun = try #require(try NodeConfiguration.parse(text, source: "readonly.toml").targets.first?.luns.first)
        #expect(lun.readOnly && lun.directIO == .off)
    }
}

@Suite struct ConfigurationErrorTests {
    static let minimalTarget = """
        [[target]]
        name = "iqn.2026-11.dev.tessera:t"
        [[target.lun]]
        id = 0
        size = "1MiB"
        backing = "memory"
        """

    /// Each bad configuration, the key the first diagnostic names, and its line.
    static let cases: [(toml: String, key: String, line: Int?, source: UInt)] = [
        ("[node\nx = 1", "(syntax)", 1, #line),
        ("[nod]\ndata_dir = \"x\"", "nod", 1, #line),
        ("[node]\nlog_level = \"loud\"", "node.log_level", 2, #line),
        ("[node]\ndata_dir = 3", "node.data_dir", 2, #line),
        ("[[portal]]\nlisten = \"127.0.0.1:99999\"", "portal[0].listen", 2, #line),
        ("[[portal]]\nlisten = \"::1\"", "portal[0].listen", 2, #line),
        ("[[portal]]\nlisten = \"127.0.0.1\"\n[[portal]]\nlisten = \"127.0.0.1:3260\"", "portal[1].listen", 4, #line),
        ("[[portal]]\ngroup = 0", "portal[0].group", 2, #line),
        ("[iscsi]\nmax_recv_data_segment_length = 511", "iscsi.max_recv_data_segment_length", 2, #line),
        ("[iscsi]\nmax_burst_length = 16777216", "iscsi.max_burst_length", 2, #line),
        ("[iscsi]\nfirst_burst_length = 65536\nmax_burst_length = 4096", "iscsi.first_burst_length", 2, #line),
        ("[iscsi]\nimmediate_data = \"yes\"", "iscsi.immediate_data", 2, #line),
        ("[iscsi]\nqueue_depth = 0", "iscsi.queue_depth", 2, #line),
        ("[iscsi]\nidle_poll = 1001", "iscsi.idle_poll", 2, #line),
        ("[iscsi]\nidle_poll = -1", "iscsi.idle_poll", 2, #line),
        ("[[target]]\nname = \"iqn.2026-11.Dev.tessera:x\"", "target[0].name", 2, #line),
        ("[[target]]\nalias = \"no name\"", "target[0].name", 1, #line),
        (
            "[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"\n[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"",
            "target[1].name", 4, #line
        ),
        (
            "[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"\nportal_groups = [2]", "target[0].portal_groups[0]", 3,
            #line
        ),
        ("[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"\nacl = [\"iqn.bad\"]", "target[0].acl[0]", 3, #line),
        (
            "[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"\n[target.chap]\nuser = \"u\"", "target[0].chap.secret", 3,
            #line
        ),
        (
            "[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"\n[target.chap]\nuser = \"u\"\nsecret = \"same-secret-123\"\nmutual_user = \"t\"\nmutual_secret = \"same-secret-123\"",
            "target[0].chap.mutual_secret", 7, #line
        ),
        (
            "[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"\n[target.chap]\nuser = \"u\"\nsecret = \"long-enough-secret\"\nmutual_user = \"t\"",
            "target[0].chap.mutual_secret", 3, #line
        ),
        ("[discovery_chap]\nuser = \"\"\nsecret = \"long-enough-secret\"", "discovery_chap.user", 2, #line),
        (
            minimalTarget.replacingOccurrences(of: "size = \"1MiB\"", with: "size = \"1MB\""), "target[0].lun[0].size",
            5, #line
        ),
        (
            minimalTarget.replacingOccurrences(of: "size = \"1MiB\"", with: "size = 1000"), "target[0].lun[0].size", 5,
            #line
        ),
        (
            minimalTarget.replacingOccurrences(of: "size = \"1MiB\"", with: "size = -512"), "target[0].lun[0].size", 5,
            #line
        ),
        (
            minimalTarget.replacingOccurrences(of: "size = \"1MiB\"", with: "size = \"1MiB\"\nblock_size = 1024"),
            "target[0].lun[0].block_size", 6, #line
        ),
        (minimalTarget.replacingOccurrences(of: "id = 0", with: "id = 16384"), "target[0].lun[0].id", 4, #line),
        (minimalTarget.replacingOccurrences(of: "id = 0\n", with: ""), "target[0].lun[0].id", 3, #line),
        (minimalTarget + "\n[[target.lun]]\nid = 0\nsize = 512\nbacking = \"memory\"", "target[0].lun[1].id", 8, #line),
        (
            minimalTarget.replacingOccurrences(of: "backing = \"memory\"", with: "backing = \"disk\""),
            "target[0].lun[0].backing", 6, #line
        ),
        (
            minimalTarget.replacingOccurrences(of: "backing = \"memory\"", with: "backing = \"file\""),
            "target[0].lun[0].path", 3, #line
        ),
        (minimalTarget + "\npath = \"x.img\"", "target[0].lun[0].path", 7, #line),
        (minimalTarget + "\nvendor = \"TOO-LONG-VENDOR\"", "target[0].lun[0].vendor", 7, #line),
        (minimalTarget + "\nproduct = \"Seventeen chars!!\"", "target[0].lun[0].product", 7, #line),
        (minimalTarget + "\nrevision = \"12345\"", "target[0].lun[0].revision", 7, #line),
        (minimalTarget + "\nserial = \"tab\\there\"", "target[0].lun[0].serial", 7, #line),
        (minimalTarget + "\ndirect_io = \"sometimes\"", "target[0].lun[0].direct_io", 7, #line),
        (minimalTarget + "\nthinn = true", "target[0].lun[0].thinn", 7, #line),
        (
            "[[target]]\nname = \"iqn.2026-11.dev.tessera:a\"\n[[target.lun]]\nid = 0\nsize = 512\npath = \"same.img\"\n"
                + "[[target]]\nname = \"iqn.2026-11.dev.tessera:b\"\n[[target.lun]]\nid = 0\nsize = 512\npath = \"same.img\"",
            "target[1].lun[0].path", 12, #line
        ),
    ]

    @Test func badConfigurationsNameTheKeyAndLine() {
        for (toml, key, line, source) in Self.cases {
            let found = diagnostics(toml)
            #expect(found.first?.key == key, "case at line \(source): \(found)")
            #expect(found.first?.line == line, "case at line \(source): \(found)")
        }
    }

    @Test func everyProblemIsReportedNotOnlyTheFirst() {
        let found = diagnostics("[node]\nlog_level = \"loud\"\n[iscsi]\nqueue_depth = 0\nbogus = 1")
        #expect(found.map(\.key) == ["node.log_level", "iscsi.queue_depth", "iscsi.bogus"])
        #expect(found.map(\.line) == [2, 4, 5])
    }

    @Test func aShortCHAPSecretIsAnErrorUnlessTheNetworkIsProtected() throws {
        let chap = "\n[target.chap]\nuser = \"u\"\nsecret = \"short\""
        let found = diagnostics(Self.minimalTarget + chap)
        #expect(found.map(\.key) == ["target[0].chap.secret"])
        #expect(found.first?.message.contains("protected_network") == true)
        let configuration = try parse("[iscsi]\nprotected_network = true\n" + Self.minimalTarget + chap)
        #expect(configuration.warnings.map(\.key) == ["target[0].chap.secret"])
        #expect(configuration.warnings.first?.line == 11)
        #expect(configuration.targets.first?.chap == CHAPConfiguration(user: "u", secret: "short"))
    }

    @Test func noTargetsIsAWarning() throws {
        let configuration = try parse("[node]\nlog_level = \"debug\"")
        #expect(configuration.targets.isEmpty)
        #expect(configuration.warnings.map(\.key) == ["target"])
        #expect(configuration.portals == [PortalConfiguration()])
        #expect(configuration.node.logLevel == .debug)
    }

    @Test func idlePollIsInMicrosecondsAndZeroTurnsItOff() throws {
        #expect(try parse(Self.minimalTarget).iscsi.idlePoll == .microseconds(50))
        #expect(try parse("[iscsi]\nidle_poll = 0\n" + Self.minimalTarget).iscsi.idlePoll == .zero)
        #expect(try parse("[iscsi]\nidle_poll = 120\n" + Self.minimalTarget).iscsi.idlePoll == .microseconds(120))
    }

    @Test func directIOTakesAutoTrueOrFalse() throws {
        for (value, expected) in [("\"auto\"", AIOFileBlockDevice.DirectIO.auto), ("true", .on), ("false", .off)] {
            let text = Self.minimalTarget.replacingOccurrences(
                of: "backing = \"memory\"", with: "path = \"a.img\"\ndirect_io = \(value)")
            #expect(try parse(text).targets.first?.luns.first?.directIO == expected)
        }
    }

    @Test func errorDescriptionNamesSourceKeyAndLine() {
        do {
            _ = try NodeConfiguration.parse("[node]\nlog_level = \"loud\"", source: "/etc/tessera.toml")
            Issue.record("expected an error")
        } catch {
            #expect(error.description.contains("/etc/tessera.toml"))
            #expect(error.description.contains("line 2: node.log_level"))
        }
    }
}

@Suite struct ConfigurationValueTests {
    @Test(arguments: [
        "iqn.2026-11.dev.tessera:default", "iqn.1993-08.org.debian:01:abcdef",
        "iqn.2007-10.com.github:sahlberg:libiscsi:iscsi-test",
        "iqn.2001-04.com.example", "eui.02004567A425678D", "naa.52004567BA64678D",
        "naa.62004567BA64678D0123456789ABCDEF",
    ])
    func validISCSINames(name: String) {
        #expect(ISCSIName.problem(with: name) == nil)
    }

    @Test(arguments: [
        "", "iqn.", "iqn.2026.dev.tessera", "iqn.2026-13.dev.tessera", "iqn.2026-11", "iqn.2026-11.Dev.tessera",
        "iqn.2026-11.dev..tessera", "iqn.2026-11.dev.tessera:", "iqn.2026-11.dev.tessera:with space", "eui.0200",
        "eui.02004567A425678G",
        "naa.1234", "target0", "IQN.2026-11.dev.tessera",
        "iqn.2026-11.dev.tessera:" + String(repeating: "x", count: 200),
    ])
    func invalidISCSINames(name: String) {
        #expect(ISCSIName.problem(with: name) != nil)
    }

    @Test func byteSizes() {
        let cases: [(String, UInt64?)] = [
            ("1GiB", 1 << 30), ("512MiB", 512 << 20), ("1 TiB", 1 << 40), ("4096", 4096), ("4KiB", 4096),
            ("2G", 2 << 30),
            ("1_024B", 1024), ("1MB", nil), ("0", nil), ("-1GiB", nil), ("GiB", nil), ("99999999999TiB", nil),
        ]
        for (text, expected) in cases {
            let parsed = try? ByteSize.parse(text).get()
            #expect(parsed == expected, "\(text)")
        }
    }

    @Test func listenAddresses() {
        let cases: [(String, ListenAddress?)] = [
            ("127.0.0.1:3260", ListenAddress(host: "127.0.0.1", port: 3260)),
            ("0.0.0.0", ListenAddress(host: "0.0.0.0", port: 3260)),
            ("[::1]:3261", ListenAddress(host: "::1", port: 3261)), ("[::1]", ListenAddress(host: "::1", port: 3260)),
            ("localhost:1", ListenAddress(host: "localhost", port: 1)), ("::1", nil), (":3260", nil), ("h:0", nil),
            ("h:x", nil),
            ("[::1", nil), ("[::1]3260", nil),
        ]
        for (text, expected) in cases {
            let parsed = try? ListenAddress.parse(text).get()
            #expect(parsed == expected, "\(text)")
        }
    }

    @Test func lineIndexFollowsArraysOfTables() {
        let index = TOMLLineIndex(
            """
            [node]
            data_dir = "x"
            [[target]]
            name = "a"
            [[target.lun]]
            id = 0
            [[target]]
            name = "b"
            [target.chap]
            user = "u"
            [[target.lun]]
            id = 1
            "quoted key" = 2
            """)
        #expect(index.line(of: "node.data_dir") == 2)
        #expect(index.line(of: "target[0].name") == 4)
        #expect(index.line(of: "target[0].lun[0].id") == 6)
        #expect(index.line(of: "target[1].name") == 8)
        #expect(index.line(of: "target[1].chap.user") == 10)
        #expect(index.line(of: "target[1].lun[0].id") == 12)
        #expect(index.line(of: "target[1].lun[0].quoted key") == 13)
        #expect(index.line(of: "target[1].lun[0].size") == 11)
        #expect(index.line(of: "portal[0].listen") == nil)
    }
}

@Suite struct PhysicalBlockSizeConfigurationTests {
    static func lun(_ extra: String) -> String {
        "[[target]]\nname = \"iqn.2026-11.dev.tessera:p\"\n[[target.lun]]\nid = 0\nsize = \"1MiB\"\nbacking = \"memory\"\n\(extra)"
    }

    @Test(arguments: [("", UInt32?.none), ("physical_block_size = 4096", UInt32?.some(4096)),
                      ("physical_block_size = 512", UInt32?.some(512))])
    func acceptedValues(extra: String, expected: UInt32?) throws {
        let configuration = try parse(Self.lun(extra))
        #expect(configuration.targets[0].luns[0].physicalBlockSize == expected)
        #expect(NodeRuntime.logicalUnitConfiguration(targetName: "t", lun: configuration.targets[0].luns[0])
            .physicalBlockSize == expected)
    }

    @Test(arguments: ["physical_block_size = 1536", "physical_block_size = 8192",
                      "block_size = 4096\nphysical_block_size = 512"])
    func refusedValues(extra: String) {
        #expect(diagnostics(Self.lun(extra)).contains { $0.key.hasSuffix("physical_block_size") })
    }
}
