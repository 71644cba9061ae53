import Testing

@testable import TesseraNode

@Suite struct ClusterConfigurationTests {
    static let portal = """
        [[portal]]
        listen = "127.0.0.1:3300"

        """

    @Test func absentClusterIsAOneMemberClusterWithAPeerPortFromThePortal() throws {
        let configuration = try parse(Self.portal)
        #expect(configuration.cluster.nodeID == 1)
        #expect(configuration.cluster.join.isEmpty)
        #expect(configuration.cluster.lease == .seconds(2))
        #expect(configuration.cluster.peerAddress == "127.0.0.1:9041")
        #expect(configuration.admin == nil)
        #expect(try NodeConfiguration.builtInDefault().cluster.peerAddress == "127.0.0.1:9001")
    }

    @Test func fullClusterSection() throws {
        let configuration = try parse(
            Self.portal + """
                [cluster]
                node_id = 3
                peer = "127.0.0.1:29003"
                join = ["127.0.0.1:29001", "127.0.0.1:29002", "127.0.0.1:29001"]
                lease = "1500ms"
                store_dir = "/tmp/x/store"

                [admin]
                listen = "127.0.0.1:28003"
                """)
        #expect(configuration.cluster == ClusterSettings(
            nodeID: 3, peerHost: "127.0.0.1", peerPort: 29003, join: ["127.0.0.1:29001", "127.0.0.1:29002"],
            lease: .milliseconds(1500), storeDirectory: "/tmp/x/store"))
        #expect(configuration.admin == AdminSettings(host: "127.0.0.1", port: 28003))
    }

    @Test(arguments: [
        ("lease = 3", Duration.seconds(3)), ("lease = \"2s\"", .seconds(2)), ("lease = \"250ms\"", .milliseconds(250)),
        ("lease = \"1m\"", .seconds(60)),
    ])
    func leaseForms(line: String, expected: Duration) throws {
        #expect(try parse(Self.portal + "[cluster]\n" + line).cluster.lease == expected)
    }

    @Test(arguments: [
        ("", ClusterSettings.defaultResyncRate), ("resync_rate = 1048576", 1 << 20),
        ("resync_rate = \"64MiB\"", 64 << 20), ("resync_rate = \"1 GiB\"", 1 << 30),
    ] as [(String, UInt64)])
    func resyncRateForms(line: String, expected: UInt64) throws {
        #expect(try parse(Self.portal + "[cluster]\n" + line).cluster.resyncRate == expected)
    }

    @Test(arguments: [
        ("", ClusterSettings.defaultReplaceAfter), ("replace_after = \"90s\"", .seconds(90)),
        ("replace_after = \"30m\"", .seconds(1800)), ("replace_after = \"off\"", nil),
    ] as [(String, Duration?)])
    func replaceAfterForms(line: String, expected: Duration?) throws {
        #expect(try parse(Self.portal + "[cluster]\n" + line).cluster.replaceAfter == expected)
    }

    @Test func storeConnectionBoundsGrowWithTheLease() {
        #expect(ClusterNode.connectTimeout(lease: .seconds(2)) == .milliseconds(500), "the default lease keeps 500 ms")
        #expect(ClusterNode.connectTimeout(lease: .seconds(15)) == .milliseconds(1875))
        #expect(ClusterNode.probeTimeout(lease: .seconds(2)) == .milliseconds(300))
        #expect(ClusterNode.probeTimeout(lease: .seconds(15)) == .milliseconds(1500))
        #expect(ClusterNode.failoverWait(lease: .seconds(2)) == .seconds(5), "the default lease keeps 5 s")
        #expect(ClusterNode.failoverWait(lease: .seconds(15)) == .seconds(18), "longer than a failover takes")
        #expect(ClusterNode.raftLatencyMilliseconds(lease: .seconds(2)) == 20, "the default lease keeps 20 ms")
        #expect(ClusterNode.raftLatencyMilliseconds(lease: .seconds(15)) == 150)
        #expect(ClusterNode.raftLatencyMilliseconds(lease: .milliseconds(500)) == 20)
    }

    @Test func failbackIsOnUnlessTurnedOff() throws {
        #expect(try parse(Self.portal + "[cluster]\n").cluster.failback)
        #expect(try !parse(Self.portal + "[cluster]\nfailback = false").cluster.failback)
        #expect(try parse(Self.portal + "[cluster]\nfailback = true").cluster.failback)
    }

    /// Each bad value is reported with its key.
    @Test(arguments: [
        ("[cluster]\nresync_rate = 0", "cluster.resync_rate"),
        ("[cluster]\nresync_rate = \"fast\"", "cluster.resync_rate"),
        ("[cluster]\nreplace_after = \"500ms\"", "cluster.replace_after"),
        ("[cluster]\nreplace_after = 600", "cluster.replace_after"),
        ("[cluster]\nreplace_after = \"never\"", "cluster.replace_after"),
        ("[cluster]\nfailback = \"no\"", "cluster.failback"),
        ("[cluster]\nnode_id = 0", "cluster.node_id"),
        ("[cluster]\nnode_id = 2", "cluster.join"),
        ("[cluster]\npeer = \"127.0.0.1\"", "cluster.peer"),
        ("[cluster]\npeer = \"127.0.0.1:0\"", "cluster.peer"),
        ("[cluster]\njoin = [\"nohost\"]", "cluster.join[0]"),
        ("[cluster]\njoin = \"127.0.0.1:1\"", "cluster.join"),
        ("[cluster]\nlease = \"2 weeks\"", "cluster.lease"),
        ("[cluster]\nlease = \"10ms\"", "cluster.lease"),
        ("[cluster]\nlease = 0", "cluster.lease"),
        ("[cluster]\nleader = true", "cluster.leader"),
        ("[cluster]\npeer = \"127.0.0.1:3300\"", "cluster.peer"),
        ("[admin]\nport = 1", "admin.port"),
        ("[admin]\nlisten = \"127.0.0.1\"", "admin.listen"),
        ("[admin]\nlisten = \"127.0.0.1:3300\"", "admin.listen"),
    ])
    func invalidValues(text: String, key: String) {
        let keys = diagnostics(Self.portal + text).map(\.key)
        #expect(keys.contains(key), "\(keys)")
    }

    @Test func clusterExamplesInTargetsAreValid() throws {
        for file in ["cluster-node1.toml", "cluster-node2.toml", "cluster-node3.toml"] {
            let text = try String(contentsOf: targetsDirectory.appendingPathComponent(file), encoding: .utf8)
            let configuration = try NodeConfiguration.parse(text, source: file)
            #expect(configuration.admin != nil)
            #expect(configuration.cluster.join.count == 3)
        }
    }
}
