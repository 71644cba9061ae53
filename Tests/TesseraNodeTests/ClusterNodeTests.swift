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
        await #expect(throws: NodeStartupError.self) {
            _ = try await ClusterNode.start(settings: wiped, dataDirectory: root + "/b", logger: logger)
        }
        await running.stop()
        // With nobody answering at the seeds, node 1 bootstraps as usual.
        wiped.peerPort = freeLoopbackPort()
        let alone = try await ClusterNode.start(settings: wiped, dataDirectory: root + "/c", logger: logger)
        await alone.stop()
    }
}
