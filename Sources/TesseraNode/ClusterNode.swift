import ClusterAuth
import ClusterModel
import Foundation
import Logging
import MetadataStore
import Synchronization

/// The node's membership of the replicated metadata store: runs the
/// in-process dqlite node (data under `data_dir/store`), joins the cluster,
/// migrates the schema, seeds it from the TOML, reads back what the node must
/// serve, and keeps the store lease with a periodic heartbeat.
public final class ClusterNode: Sendable {
    /// Per-request timeout of the daemon's store clients: a SIGSTOPped leader
    /// would otherwise hold every request for the library default of 5 s.
    static let requestTimeout: Duration = .seconds(1)
    /// How long start-up (join, migrate, seed, load) keeps trying.
    static let startupDeadline: Duration = .seconds(120)

    /// The node's id in the store.
    public let id: NodeID
    /// The node's store (peer) address.
    public let address: NodeAddress
    /// The client the node's runtime uses (PR saves, context changes).
    public let client: MetadataStoreClient
    /// The store lease; also the SCSI layer's ``ContextChangeGate``.
    public let lease: StoreLeaseKeeper
    /// The cluster secret this node proves on every store and peer
    /// connection, and asks of every connection to its own ports.
    public let secret: ClusterSecret
    private let node: DqliteNode
    private let tunnel: StoreTunnel
    private let heartbeatClient: MetadataStoreClient
    let logger: Logger
    private let heartbeatTask = Mutex<Task<Void, Never>?>(nil)
    private let leader = Mutex<NodeID?>(nil)
    /// Told the store's context versions at every heartbeat; answers whether
    /// this node serves them all (a renewal counts only then).
    private let contextFollower = Mutex<Handler<@Sendable ([LUNKey: UInt64]) async -> Bool>?>(nil)
    /// Told every member's lease renewals, read through the quorum at every
    /// heartbeat (failure detection).
    private let leaseObserver = Mutex<Handler<@Sendable (LeaseObservation) -> Void>?>(nil)
    /// Run when this node finds itself fenced, before it clears the fence:
    /// it must forget whatever it served under the epochs it was failed over from.
    private let rejoinHandler = Mutex<Handler<@Sendable () async -> Void>?>(nil)

    /// What one heartbeat read about every member, through the quorum.
    public struct LeaseObservation: Sendable {
        /// Every member's renewal count and fence.
        public var beats: [NodeID: MemberLiveness.Beat]
        /// When the reading came back (the renewals it shows were committed before).
        public var at: ContinuousClock.Instant
    }

    /// Starts the dqlite node and joins the cluster (idempotent on restart).
    public static func start(
        settings: ClusterSettings, dataDirectory: String, logger: Logger
    ) async throws -> ClusterNode {
        let id = NodeID(settings.nodeID)
        guard let address = NodeAddress(parsing: settings.peerAddress) else {
            throw NodeStartupError(message: "cluster.peer \(settings.peerAddress) is not host:port")
        }
        let base = dataDirectory.hasSuffix("/") ? String(dataDirectory.dropLast()) : dataDirectory
        let directory = settings.storeDirectory ?? "\(base)/store"
        try DataDirectory.prepare(dataDirectory, logger: logger)
        let secret = try ClusterSecretFile.resolve(settings, dataDirectory: dataDirectory, logger: logger)
        var storeLogger = logger
        storeLogger[metadataKey: "store"] = "\(address)"
        // Seeds first, then the node itself: after a restart the node knows
        // the cluster from its own Raft log even when the seeds are down.
        var seeds = settings.join.compactMap(NodeAddress.init(parsing:)).filter { $0 != address }
        if id == .bootstrap, !seeds.isEmpty, isEmptyDirectory(directory) {
            try await refuseSecondBootstrap(seeds: seeds, secret: secret, logger: logger)
        }
        seeds.append(address)
        let node: DqliteNode
        do {
            node = try DqliteNode(
                DqliteNodeConfiguration(
                    id: id, address: address, dataDirectory: directory,
                    networkLatencyMilliseconds: Self.raftLatencyMilliseconds(lease: settings.lease), secret: secret),
                logger: storeLogger)
            try node.start()
        } catch {
            throw NodeStartupError(message: "cannot start the store node on \(address) in \(directory): \(error)")
        }
        // dqlite listens on an abstract socket only this process reaches;
        // the store port is the tunnel, which asks for the cluster secret.
        let tunnel: StoreTunnel
        do {
            tunnel = try await StoreTunnel.start(listen: address, dqliteSocket: node.boundAddress, secret: secret, logger: storeLogger)
        } catch {
            await node.stop()
            throw NodeStartupError(message: "cannot listen on the store port \(address): \(error)")
        }
        let leaseDuration = settings.lease
        // The connection bound (TCP connect and the cluster handshake) grows
        // with the lease: a cluster given a long lease because its machines
        // are slow (an emulated guest) must not lose its store connections
        // to a 500 ms handshake bound after a leader dies, and with them
        // every member's lease at once.
        let connectTimeout = Self.connectTimeout(lease: leaseDuration)
        let client = MetadataStoreClient(
            .init(
                seeds: seeds, requestTimeout: requestTimeout, connectTimeout: connectTimeout,
                retryDeadline: max(leaseDuration, .seconds(1)), probeTimeout: Self.probeTimeout(lease: leaseDuration),
                secret: secret),
            logger: Logger(label: "tessera.store.client"))
        let heartbeatClient = MetadataStoreClient(
            .init(
                seeds: seeds, requestTimeout: requestTimeout, connectTimeout: connectTimeout,
                retryDeadline: max(leaseDuration / 2, .milliseconds(500)), probeTimeout: Self.probeTimeout(lease: leaseDuration),
                secret: secret),
            logger: Logger(label: "tessera.store.heartbeat"))
        let cluster = ClusterNode(
            id: id, address: address, secret: secret, node: node, tunnel: tunnel, client: client, heartbeatClient: heartbeatClient,
            lease: StoreLeaseKeeper(lease: leaseDuration, logger: logger), logger: logger)
        do {
            try await refuseRemovedMember(id, client: client, logger: logger)
            let role = try await cluster.duringStartup("join") { try await client.join(id: id, address: address) }
            logger.notice("store joined", metadata: ["id": "\(id.rawValue)", "peer": "\(address)", "role": "\(role)"])
            let applied = try await cluster.duringStartup("migrate") { try await Migrator.migrate(client) }
            if !applied.isEmpty { logger.info("store migrated", metadata: ["applied": "\(applied.joined(separator: ","))"]) }
        } catch {
            await cluster.stop()
            throw error
        }
        return cluster
    }

    /// A node removed from the cluster (tessera node remove) may not join
    /// again under its id: joining would put it back in the store's Raft
    /// configuration with replicas it no longer has. A store that cannot be
    /// read yet (a new cluster, no tombstone table) does not stop the start.
    static func refuseRemovedMember(_ id: NodeID, client: MetadataStoreClient, logger: Logger) async throws {
        guard let removed = try? await StoreRepository(client).removedMembers(), let at = removed[id] else { return }
        throw NodeStartupError(
            message: "node \(id.rawValue) was removed from the cluster (at \(at) s since 1970; tessera node remove); "
                + "to bring this machine back, wipe its data_dir and start it with a new cluster.node_id")
    }

    /// The bound on a store connection's TCP connect and cluster handshake:
    /// an eighth of the lease, at least 500 ms (500 ms at the default 2 s lease).
    static func connectTimeout(lease: Duration) -> Duration { max(.milliseconds(500), lease / 8) }

    /// How long a command's piece whose primary cannot be reached is held
    /// (re-sent with growing pauses) before it fails with the retryable
    /// 02/04/0A: the lease plus 3 s, at least 5 s (5 s at the default 2 s
    /// lease). A dead primary is failed over about one lease after its last
    /// renewal; a hold shorter than that lets a host use up its retries
    /// (Linux sd: 5) on the dead primary's pieces and fail the path on
    /// every survivor at once. It stays well under a host's command timeout
    /// (30 s in Linux) for leases up to about 20 s.
    static func failoverWait(lease: Duration) -> Duration { max(.seconds(5), lease + .seconds(3)) }

    /// The network latency given to Raft, from which dqlite 1.11 sets the
    /// heartbeat (1.5 ×) and election (15 ×, randomised up to 30 ×)
    /// timeouts: a hundredth of the lease, at least 20 ms (20 ms at the
    /// default 2 s lease: elections in about 0.5 s). Machines slow enough to
    /// be given a long lease (an emulated guest: 15 s) missed the 300 ms
    /// election timeout under load, and leadership moved back and forth
    /// until a member's lease lapsed; an election stays within 0.3 of the
    /// lease either way.
    static func raftLatencyMilliseconds(lease: Duration) -> UInt32 {
        UInt32(clamping: max(20, lease.wholeMilliseconds / 100))
    }

    /// The bound on a LEADER probe of one seed: a tenth of the lease, at least 300 ms.
    static func probeTimeout(lease: Duration) -> Duration { max(.milliseconds(300), lease / 10) }

    /// Node 1 with an empty store bootstraps a new cluster. If the seeds
    /// already answer as a cluster (node 1's data was wiped), bootstrapping
    /// would split it in two: refuse, and tell the operator to use a new id.
    static func refuseSecondBootstrap(seeds: [NodeAddress], secret: ClusterSecret, logger: Logger) async throws {
        var quiet = Logger(label: "tessera.store.probe")
        quiet.logLevel = .critical
        let probe = MetadataStoreClient(
            .init(seeds: seeds, requestTimeout: .milliseconds(500), retryDeadline: .milliseconds(500), secret: secret),
            logger: quiet)
        defer { Task { await probe.close() } }
        guard let members = try? await probe.members(), !members.isEmpty else { return }
        throw NodeStartupError(
            message: "node_id 1 has an empty store but a cluster already answers at \(seeds.map(\.description).joined(separator: ", ")) "
                + "(members \(members.map { "\($0.id.rawValue)" }.joined(separator: ","))); bootstrapping would split it: "
                + "give this node a new node_id to join, or restore its store directory")
    }

    static func isEmptyDirectory(_ path: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).isEmpty
    }

    private init(
        id: NodeID, address: NodeAddress, secret: ClusterSecret, node: DqliteNode, tunnel: StoreTunnel,
        client: MetadataStoreClient, heartbeatClient: MetadataStoreClient, lease: StoreLeaseKeeper, logger: Logger
    ) {
        self.id = id
        self.address = address
        self.secret = secret
        self.tunnel = tunnel
        self.node = node
        self.client = client
        self.heartbeatClient = heartbeatClient
        self.lease = lease
        self.logger = logger
    }

    /// Retries `body` while the store is unavailable (no quorum yet: the other
    /// members are still starting), up to ``startupDeadline``.
    func duringStartup<T: Sendable>(_ what: String, _ body: () async throws -> T) async throws -> T {
        let clock = ContinuousClock()
        let deadline = clock.now + Self.startupDeadline
        var logged = false
        while true {
            do {
                return try await body()
            } catch let error as MetadataStoreError {
                guard case .unavailable = error.code, clock.now < deadline else {
                    throw NodeStartupError(message: "store \(what): \(error)")
                }
                if !logged {
                    logger.notice("store \(what): waiting for a quorum", metadata: ["error": "\(error)"])
                    logged = true
                }
                try await Task.sleep(for: .milliseconds(200))
            }
        }
    }

    /// Seeds the store and returns the targets to serve (``formAndLoad(_:)``'s targets).
    public func seedAndLoad(_ configuration: NodeConfiguration) async throws -> [TargetConfiguration] {
        try await formAndLoad(configuration).targets
    }

    /// What a node serves, read back from the store once the cluster formed.
    public struct Served: Sendable {
        /// Targets and their LUNs.
        public var targets: [TargetConfiguration]
        /// Every LUN's sub-unit map.
        public var maps: [LUNKey: SubUnitMap]
        /// The registered members.
        public var members: [MemberRecord]
    }

    /// Seeds the store from the configuration and registers this node in
    /// `members` (one transaction), waits for the members the configuration
    /// names, places LUNs that have no sub-unit map yet, and returns what to
    /// serve, read back from the store.
    public func formAndLoad(_ configuration: NodeConfiguration) async throws -> Served {
        let seed = StoreSeed(configuration)
        let member = MemberRecord(
            nodeID: id, storeAddress: address.description, peerAddress: configuration.cluster.wireAddress,
            iscsiPortal: configuration.portals.first?.address,
            // RFC 7143 §13.3 / Appendix C: TargetAddress=domainname[:port][,portal-group-tag]
            portals: configuration.portals.map { "\($0.address),\($0.groupTag)" })
        let report = try await duringStartup("seed") { [id] in
            try await client.transaction { tx in
                let repository = StoreRepository(tx)
                let report = try await seed.apply(to: repository, node: id, at: Date())
                try await repository.upsertMember(member)
                return report
            }
        }
        for message in report.applied { logger.notice("configuration seeded: \(message)") }
        for message in report.skipped { logger.notice("configuration not applied: \(message)") }
        for message in report.kept { logger.error("configuration: \(message)") }
        let members = try await awaitFormation(expected: configuration.cluster.expectedMembers)
        let snapshot = try await duringStartup("load") {
            try await client.transaction { tx in try await StoreSnapshot.load(from: StoreRepository(tx)) }
        }
        let maps = try await ensureSubUnitMaps(snapshot.luns, members: members)
        let (targets, problems) = snapshot.targetConfigurations(portals: configuration.portals, local: configuration.targets)
        for problem in problems { logger.error("store: skipping LUN: \(problem)") }
        logger.info(
            "store seeded",
            metadata: [
                "seeded-targets": "\(seed.targets.count)", "store-targets": "\(targets.count)",
                "store-luns": "\(targets.reduce(0) { $0 + $1.luns.count })", "members": "\(members.count)",
            ])
        return Served(targets: targets, maps: maps, members: members)
    }

    /// Makes every lease renewal wait until `follower` has caught up with the
    /// context versions the renewal's transaction read (it returns false when
    /// it could not): a node never holds its lease on a context older than
    /// the store's for longer than a lease (ARCHITECTURE.md rules 1 and 2).
    public func followContextVersions(_ follower: @escaping @Sendable ([LUNKey: UInt64]) async -> Bool) {
        contextFollower.withLock { $0 = Handler(follower) }
    }

    /// Hands every heartbeat's reading of the members' renewals to `observer`,
    /// which must not block: the heartbeat keeps this node's own lease.
    public func observeLeases(_ observer: @escaping @Sendable (LeaseObservation) -> Void) {
        leaseObserver.withLock { $0 = Handler(observer) }
    }

    /// Runs `handler` when this node finds itself fenced, before rejoining.
    public func onRejoin(_ handler: @escaping @Sendable () async -> Void) { rejoinHandler.withLock { $0 = Handler(handler) } }

    /// Starts the heartbeat: every lease/4 a write through the quorum (a read
    /// the leader may answer alone would prove nothing), then a read of the
    /// members' renewals and of every LUN's context version; the lease keeper
    /// turns outcomes into held/lapsed.
    public func startHeartbeat() {
        let interval = max(lease.duration / 4, .milliseconds(50))
        let task = Task { [self] in
            let clock = ContinuousClock()
            while !Task.isCancelled {
                let sentAt = clock.now
                do {
                    // The renewal is one statement: a write transaction held
                    // over several round trips would lock the other members'
                    // renewals out (SQLITE_BUSY) while it is open. The reads
                    // come after it, so they see every change committed before
                    // this beat was sent (dqlite reads on the leader after a
                    // barrier), which is what the lease promises.
                    let id = self.id
                    let repository = StoreRepository(heartbeatClient)
                    let renewed = try await repository.renewLease(id)
                    self.leader.withLock { $0 = heartbeatClient.connectedLeader }
                    let observation = LeaseObservation(beats: try await repository.leaseBeats(), at: clock.now)
                    let versions = try await repository.contextVersions()
                    var observed = observation
                    observed.at = clock.now
                    leaseObserver.withLock { $0 }?.call(observed)
                    if !renewed {
                        // Fenced: the others failed this node over. Its lease
                        // stays lapsed until it has reloaded what it serves.
                        lease.tick()
                        logger.warning("this node was failed over by the others (fenced); rejoining")
                        await rejoinHandler.withLock { $0 }?.call()
                        try await StoreRepository(heartbeatClient).unfence(id)
                        logger.notice("rejoined the cluster after a failover")
                        continue
                    }
                    let follower = contextFollower.withLock { $0 }?.call
                    if await follower?(versions) ?? true {
                        lease.quorumReached(sentAt: sentAt)
                    } else {
                        lease.tick()
                    }
                } catch {
                    self.leader.withLock { $0 = nil }
                    lease.tick()
                }
                let next = sentAt + interval
                if clock.now < next { try? await Task.sleep(until: next, clock: clock) }
            }
        }
        let ticker = Task { [lease] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(100))
                lease.tick()
            }
        }
        heartbeatTask.withLock {
            $0?.cancel()
            $0 = Task {
                await withTaskCancellationHandler {
                    await task.value
                    await ticker.value
                } onCancel: {
                    task.cancel()
                    ticker.cancel()
                }
            }
        }
    }

    /// The leader the last heartbeat found (nil when it failed).
    public var lastKnownLeader: NodeID? { leader.withLock { $0 } }

    /// Stops the heartbeat, closes the clients and stops the dqlite node.
    public func stop() async {
        let task = heartbeatTask.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
        await task?.value
        await heartbeatClient.close()
        await client.close()
        await node.stop()
        await tunnel.stop()
    }
}

/// The lease shell: a ``LeaseMonitor`` behind a lock, read with the real
/// clock, logging the machine's actions. It is the ``ContextChangeGate`` the
/// SCSI layer asks before acknowledging a context change.
public final class StoreLeaseKeeper: ContextChangeGate {
    private let monitor: Mutex<LeaseMonitor>
    private let logger: Logger
    /// The lease time.
    public let duration: Duration

    init(lease: Duration, logger: Logger) {
        self.duration = lease
        self.monitor = Mutex(LeaseMonitor(lease: lease, startedAt: .now))
        self.logger = logger
    }

    public func mayChangeContext() -> Bool {
        let now = ContinuousClock.now
        return monitor.withLock { $0.mayChangeContext(at: now) }
    }

    /// "held", "acquiring" or "lapsed".
    public var state: String {
        let now = ContinuousClock.now
        return monitor.withLock { $0.label(at: now) }
    }

    /// Milliseconds since the last quorum contact, if any.
    public var millisecondsSinceContact: Int64? {
        let now = ContinuousClock.now
        guard let since = monitor.withLock({ $0.sinceLastContact(at: now) }) else { return nil }
        return since.wholeMilliseconds
    }

    func quorumReached(sentAt: ContinuousClock.Instant) {
        let now = ContinuousClock.now
        run(monitor.withLock { $0.quorumReached(sentAt: sentAt, now: now) })
    }

    func tick() {
        let now = ContinuousClock.now
        run(monitor.withLock { $0.tick(at: now) })
    }

    private func run(_ action: LeaseMonitor.Action) {
        switch action {
        case .none:
            break
        case .reportAcquired:
            logger.notice("store lease acquired: quorum reachable", metadata: ["lease": "\(duration)"])
        case .reportLapsed(let lastContact):
            let ago = lastContact.map { "\(ContinuousClock.now - $0)" } ?? "never"
            logger.warning(
                "store lease LAPSED: quorum unreachable for longer than the lease; refusing context changes",
                metadata: ["lease": "\(duration)", "last-contact": "\(ago)"])
        case .reportRestored(let downFor):
            logger.notice("store lease restored: quorum reachable again", metadata: ["lapsed-for": "\(downFor)"])
        }
    }
}
