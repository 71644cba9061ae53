import ClusterModel
import Foundation
import Logging
import Testing

@testable import TesseraNode

@Suite struct ClusterNodeTests {
    /// Node 1 whose store was wiped must not bootstrap a second cluster next
    /// to the one its seeds already form.
    @Test(.timeLimit(.minutes(1)))
    func wipedBootstrapNodeRefusesToSplitTheCluster() async throws {
        let root = NSTemporaryDirectory() + "tessera-split-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: root) }
        var logger = Logger(label: "test.cluster")
        logger.logLevel = .critical
        let first = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), lease: .seconds(2))
        let running = try await ClusterNode.start(settings: first, dataDirectory: root + "/a", logger: logger)
        var wiped = ClusterSettings(nodeID: 1, peerPort: freeLoopbackPort(), join: [first.peerAddress], lease: .seconds(2))
        // The first node made the cluster's secret in its data_dir; the wiped one holds a copy.
        wiped.secretFile = root + "/a/cluster.secret"
        do {
            _ = try await ClusterNode.start(settings: wiped, dataDirectory: root + "/b", logger: logger)
            Issue.record("a wiped node 1 bootstrapped next to the running cluster")
        } catch let error as NodeStartupError {
            #expect(error.description.contains("bootstrapping would split it"))
        }
        await running.stop()
        // With nobody answering at the seeds, node 1 bootstraps as usual.
        wiped.peerPort = freeLoopbackPort()
        let alone = try await ClusterNode.start(settings: wiped, dataDirectory: root + "/c", logger: logger)
        await alone.stop()
    }
}
