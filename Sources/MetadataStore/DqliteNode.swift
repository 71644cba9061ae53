import CDqlite
import CDqliteShim
import ClusterAuth
import ClusterModel
import Foundation
import Logging

/// A failure from libdqlite's C API: which call, its return code and the
/// node's error message.
public struct DqliteNodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The C function that failed.
    public var operation: String
    /// Its return code.
    public var code: Int32
    /// `dqlite_node_errmsg`, when there was a node to ask.
    public var message: String

    public var description: String { "\(operation) failed (\(code)): \(message)" }
}

/// Configuration of the in-process dqlite node.
public struct DqliteNodeConfiguration: Sendable {
    /// Raft id; the node that bootstraps a new cluster must be `NodeID.bootstrap` (1).
    public var id: NodeID
    /// Address other members and clients use to reach this node ("host:port").
    public var address: NodeAddress
    /// Address to bind, when different from `address`.
    public var bindAddress: NodeAddress?
    /// Raft data directory (created if missing), under the node's data directory.
    public var dataDirectory: String
    /// Average one-way latency given to Raft; 20 ms gives ~0.5 s elections here.
    public var networkLatencyMilliseconds: UInt32
    /// Failure domain tag reported by DESCRIBE.
    public var failureDomain: UInt64?
    /// The cluster secret. With one, the node binds an abstract Unix socket
    /// only its own process can reach (a ``StoreTunnel`` on `address` leads
    /// there after the cluster handshake), and every Raft connection it opens
    /// proves the secret first. Without one it listens on `address` itself,
    /// open to anyone who reaches it (tests and the store benchmark).
    public var secret: ClusterSecret?

    public init(
        id: NodeID, address: NodeAddress, bindAddress: NodeAddress? = nil, dataDirectory: String,
        networkLatencyMilliseconds: UInt32 = 20, failureDomain: UInt64? = nil, secret: ClusterSecret? = nil
    ) {
        self.secret = secret
        self.id = id
        self.address = address
        self.bindAddress = bindAddress
        self.dataDirectory = dataDirectory
        self.networkLatencyMilliseconds = networkLatencyMilliseconds
        self.failureDomain = failureDomain
    }
}

/// Owns one `dqlite_node`: created, configured (bind address, network latency,
/// TCP_NODELAY connect function), started on dqlite's own thread, stopped.
/// C failures are logged and thrown, never fatal.
public final class DqliteNode: @unchecked Sendable {
    /// The configuration the node was created with.
    public let configuration: DqliteNodeConfiguration
    private let logger: Logger
    private let lock = NSLock()
    private var handle: OpaquePointer?
    private var running = false
    /// libdqlite's copy of the secret for its connect function; freed after the node.
    private var connectSecret: UnsafeMutableRawPointer?

    /// Creates and configures the node (does not start it). Ignores SIGPIPE for
    /// the process: a peer that dies otherwise kills the survivors.
    public init(_ configuration: DqliteNodeConfiguration, logger: Logger = Logger(label: "tessera.store.node")) throws {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "dqlite-node"] = "\(configuration.id.rawValue)"
        self.logger = logger
        tessera_ignore_sigpipe()

        do {
            try FileManager.default.createDirectory(atPath: configuration.dataDirectory, withIntermediateDirectories: true)
        } catch {
            logger.error("cannot create dqlite data directory", metadata: ["path": "\(configuration.dataDirectory)", "error": "\(error)"])
            throw DqliteNodeError(operation: "mkdir", code: -1, message: "\(error)")
        }

        var node: OpaquePointer?
        let rc = dqlite_node_create(
            configuration.id.rawValue, configuration.address.description, configuration.dataDirectory, &node)
        guard rc == 0, let node else {
            let message = node.flatMap { dqlite_node_errmsg($0).map { String(cString: $0) } } ?? "no node"
            if let node { dqlite_node_destroy(node) }
            let error = DqliteNodeError(operation: "dqlite_node_create", code: rc, message: message)
            logger.error("\(error)")
            throw error
        }
        handle = node
        do {
            let bind = configuration.secret == nil ? (configuration.bindAddress ?? configuration.address).description : "@"
            try check(dqlite_node_set_bind_address(node, bind), "dqlite_node_set_bind_address")
            try check(dqlite_node_set_network_latency_ms(node, configuration.networkLatencyMilliseconds), "dqlite_node_set_network_latency_ms")
            if let secret = configuration.secret {
                var rc: Int32 = 0
                connectSecret = secret.withBytes { tessera_dqlite_install_authenticated_connect(node, $0.baseAddress, UInt($0.count), &rc) }
                try check(connectSecret == nil ? (rc == 0 ? -1 : rc) : 0, "dqlite_node_set_connect_func")
            } else {
                try check(tessera_dqlite_install_nodelay_connect(node), "dqlite_node_set_connect_func")
            }
            if let domain = configuration.failureDomain {
                try check(dqlite_node_set_failure_domain(node, domain), "dqlite_node_set_failure_domain")
            }
        } catch {
            dqlite_node_destroy(node)
            handle = nil
            tessera_dqlite_free_connect_secret(connectSecret)
            connectSecret = nil
            throw error
        }
    }

    deinit {
        if let handle {
            if running { _ = dqlite_node_stop(handle) }
            dqlite_node_destroy(handle)
        }
        tessera_dqlite_free_connect_secret(connectSecret)
    }

    /// Where dqlite accepts connections: "host:port", or "@name" for the
    /// abstract socket it binds when the configuration has a secret.
    public var boundAddress: String {
        lock.withLock { handle.flatMap { dqlite_node_get_bind_address($0).map { String(cString: $0) } } ?? "" }
    }

    /// True between a successful `start()` and `stop()`.
    public var isRunning: Bool { lock.withLock { running } }

    /// Starts the node's thread; it then accepts client and peer connections.
    public func start() throws {
        try lock.withLock {
            guard let handle, !running else { return }
            try check(dqlite_node_start(handle), "dqlite_node_start")
            running = true
            logger.info("dqlite node started", metadata: ["address": "\(configuration.address)"])
        }
    }

    /// Stops the node: in-flight requests finish, connections close, the
    /// thread exits. Safe to call twice. (1.11 has no handover call: transfer
    /// leadership first with `MetadataStoreClient.transferLeadership`.)
    /// Stops the node on a thread of its own: `dqlite_node_stop` waits for
    /// libdqlite's loop to wind down (seconds for a leader), and a task that
    /// called it directly would hold one of the few cooperative threads.
    public func stop() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                self.stopBlocking()
                done.resume()
            }
        }
    }

    /// Stops the node on the calling thread; for callers outside Swift concurrency.
    public func stopBlocking() {
        lock.withLock {
            guard let handle, running else { return }
            let rc = dqlite_node_stop(handle)
            running = false
            if rc != 0 {
                logger.error("dqlite_node_stop failed", metadata: ["rc": "\(rc)", "message": "\(errorMessage(handle))"])
            } else {
                logger.info("dqlite node stopped")
            }
        }
    }

    private func errorMessage(_ node: OpaquePointer) -> String {
        dqlite_node_errmsg(node).map { String(cString: $0) } ?? ""
    }

    private func check(_ rc: Int32, _ operation: String) throws {
        guard rc != 0 else { return }
        let error = DqliteNodeError(operation: operation, code: rc, message: handle.map(errorMessage) ?? "")
        logger.error("\(error)")
        throw error
    }
}
