import ClusterAuth
import ClusterModel
import Foundation
import Logging
import Synchronization
@testable import MetadataStore

#if canImport(Glibc)
import Glibc
#endif

/// Ports handed out in this process, below Linux's ephemeral range
/// (32768–60999): a port read back from bind(0) is in that range, and a
/// client connection's source port could take it before the dqlite node
/// binds it, or two test clusters could be handed the same one.
private let nextPort = Mutex(20_000 + Int(getpid() % 100) * 100)

/// A free 127.0.0.1 TCP port, never handed out twice in this process.
func freeLoopbackPort() -> Int {
    while true {
        let port = nextPort.withLock { port in
            defer { port = port >= 32_000 ? 20_000 : port + 1 }
            return port
        }
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        close(fd)
        if bound == 0 { return port }
    }
}

/// N real dqlite nodes in this process on 127.0.0.1, each with a temp data dir.
/// Node 1 bootstraps; the others join through the client.
final class TestCluster: @unchecked Sendable {
    let root: String
    var nodes: [DqliteNode] = []
    /// With a secret: each node's store port (dqlite itself is on an abstract socket).
    var tunnels: [StoreTunnel] = []
    let secret: ClusterSecret?

    /// With `secret`, every node is reached through a ``StoreTunnel`` and
    /// proves the secret on its Raft connections, as a daemon's store is.
    init(size: Int, secret: ClusterSecret? = nil) async throws {
        root = NSTemporaryDirectory() + "tessera-store-" + UUID().uuidString
        self.secret = secret
        var logger = Logger(label: "test.store")
        logger.logLevel = .warning
        for index in 1...size {
            let config = DqliteNodeConfiguration(
                id: NodeID(UInt64(index)), address: NodeAddress(host: "127.0.0.1", port: freeLoopbackPort()),
                dataDirectory: root + "/node\(index)", secret: secret)
            let node = try DqliteNode(config, logger: logger)
            try node.start()
            nodes.append(node)
            if let secret {
                tunnels.append(
                    try await StoreTunnel.start(
                        listen: config.address, dqliteSocket: node.boundAddress, secret: secret, logger: logger))
            }
        }
        if size > 1 {
            let client = self.client()
            for node in nodes.dropFirst() {
                try await client.join(id: node.configuration.id, address: node.configuration.address)
            }
            await client.close()
        }
    }

    var addresses: [NodeAddress] { nodes.map(\.configuration.address) }

    /// A client of the cluster; by default it proves the cluster's secret (if any).
    func client(retryDeadline: Duration = .seconds(15), secret: ClusterSecret?? = nil) -> MetadataStoreClient {
        var logger = Logger(label: "test.store.client")
        logger.logLevel = .warning
        return MetadataStoreClient(
            .init(seeds: addresses, retryDeadline: retryDeadline, secret: secret ?? self.secret), logger: logger)
    }

    func node(_ id: NodeID) -> DqliteNode? { nodes.first { $0.configuration.id == id } }

    /// Stops the nodes and removes their directory on a thread of its own,
    /// so that a test's `defer` does not hold a cooperative thread while
    /// libdqlite winds down.
    func shutdown() {
        let stopping = nodes
        let root = root
        let tunnels = tunnels
        nodes.removeAll()
        self.tunnels.removeAll()
        Task { for tunnel in tunnels { await tunnel.stop() } }
        Thread.detachNewThread {
            for node in stopping { node.stopBlocking() }
            try? FileManager.default.removeItem(atPath: root)
        }
    }
}
