import AdminAPI
import BlockStorage
import ClusterModel
import Dispatch
import Logging
import MetadataStore
import SCSITarget
import ISCSISession
import ISCSITargetServer
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// The node's composition root: `tesserad` calls ``run(configuration:logger:)``.
public enum TesseraNode {
    /// The version `tesserad --version` prints.
    public static let version = "0.1.0-dev"

    /// Runs a node until SIGINT or SIGTERM: opens every LUN's device, starts
    /// the iSCSI server on every portal (wiring in `NodeRuntime.swift`), waits,
    /// then stops the server and closes the devices.
    public static func run(configuration: NodeConfiguration, logger: Logger) async throws {
        // Writes to a peer that went away must fail with EPIPE, not kill the node.
        signal(SIGPIPE, SIG_IGN)
        let termination = TerminationSignals(logger: logger)
        for warning in configuration.warnings {
            logger.warning("configuration: \(warning)")
        }
        // A token file others can read stops the node before it joins anything.
        let adminToken = try configuration.admin.flatMap(Self.adminToken)
        // The store is the source of truth: join it, seed it from the TOML,
        // then serve what it holds (ClusterNode.swift).
        let cluster = try await ClusterNode.start(
            settings: configuration.cluster, dataDirectory: configuration.node.dataDirectory, logger: logger)
        cluster.startHeartbeat()
        var served = configuration
        let admin: AdminServer?
        let data: DataPlane
        // The admin endpoint answers while the cluster forms (health shows the
        // lease); it lists the served targets once they are loaded.
        let servedTargets = ServedTargets(configuration.targets)
        let adminState = NodeAdminState(cluster: cluster, served: servedTargets, logger: logger)
        do {
            admin = try await startAdmin(
                configuration: configuration, token: adminToken, state: adminState, logger: logger)
        } catch {
            await cluster.stop()
            throw error
        }
        do {
            let state = try await cluster.formAndLoad(configuration)
            served.targets = state.targets
            servedTargets.set(state.targets)
            data = try await DataPlane.start(configuration: served, served: state, cluster: cluster, logger: logger)
        } catch {
            await admin?.shutdown()
            await cluster.stop()
            throw error
        }
        let units = data.units
        // ALUA: one target port group per node portal group (PortGroupStates.swift).
        let (portGroups, leaseFollower) = await PortGroupStates.start(
            configuration: served, cluster: cluster, members: data.members)
        // Each LUN's SCSI context is the cluster's: in the store, behind the lease.
        let masks = LUNMasks()
        let devices = NodeRuntime.targetDevices(
            configuration: served, units: units, portGroups: portGroups, masks: masks
        ) {
            target, lun in data.sharedContext(target: target, lun: lun, cluster: cluster, logger: logger)
        }
        portGroups.notify(Array(devices.values))
        data.acceptContextChanges(devices)
        cluster.followContextVersions { versions in await data.catchUp(versions) }
        // Failover: dead members are fenced and failed over, returning ones resynced.
        let failover = FailoverController(
            cluster: cluster, data: data, portGroups: portGroups, replaceAfter: configuration.cluster.replaceAfter,
            failback: configuration.cluster.failback, logger: logger)
        failover.start(isAlone: { [data] in data.members.count <= 1 })
        servedTargets.reportReplication { failover.health }
        adminState.attach(portGroups: portGroups, failover: failover, data: data)
        // ACL, CHAP and LUN mask changes are in force without a restart (AccessRulesFollower.swift).
        let loaded = try? await AccessRulesFollower.load(cluster.client)
        let accessRules = TargetAccessRules(loaded?.access ?? [:])
        masks.replace(with: loaded?.masks ?? [:])
        // Targets and LUNs created, deleted or grown through any node are served without a restart (ServedCatalog.swift).
        let catalog = ServedCatalog(
            targets: served.targets, devices: devices, cluster: cluster, data: data, portGroups: portGroups, masks: masks,
            accessRules: accessRules, configuration: served, servedTargets: servedTargets, logger: logger)
        data.replicaNode.onLayoutBehind { _ in await catalog.refresh() }
        adminState.attach(catalog: catalog)
        adminState.attach(lunStatistics: { NodeAdminState.lunStatistics(catalog.devices) })
        let accessRefresher = AccessRulesRefresher(
            load: { [client = cluster.client] in try await AccessRulesFollower.load(client) }, rules: accessRules,
            masks: masks, devices: { catalog.devices }, logger: logger)
        adminState.attach(accessRefresher: accessRefresher)
        let accessFollower = Task { await AccessRulesFollower.follow(accessRefresher, logger: logger) }
        let server = ISCSIServer(
            configuration: NodeRuntime.serverConfiguration(
                served, devices: devices, clusterPortals: NodeRuntime.clusterPortals(data.members),
                accessRules: accessRules),
            logger: logger)
        do {
            try await server.start()
        } catch {
            accessFollower.cancel()
            await data.stop()
            await admin?.shutdown()
            await cluster.stop()
            throw NodeStartupError(message: "cannot listen on \(configuration.portals.map(\.address)): \(error)")
        }
        servedTargets.markServing()
        adminState.attach(server: server)
        catalog.attach(server: server)
        let catalogFollower = Task { await catalog.follow() }
        let sessionPublisher = Task {
            await SessionPublisher.follow(state: adminState, server: server, cluster: cluster, logger: logger)
        }
        let pinger = Task { await data.followPeerRoundTrips() }
        let resyncPublisher = Task { await ResyncPublisher.follow(state: adminState, cluster: cluster, logger: logger) }
        let janitor = Task { await StoreJanitor.run(client: cluster.client, logger: logger) }
        let membership = Task {
            await Self.followMembership(data: data, server: server, portGroups: portGroups) {
                // Removed from the cluster (tessera node remove): stop serving.
                guard let removed = try? await StoreRepository(cluster.client).removedMembers(), removed[cluster.id] != nil
                else { return }
                logger.warning("this node was removed from the cluster: shutting down")
                termination.stop(exitStatus: 0)
            }
        }
        logger.notice(
            "tesserad ready",
            metadata: [
                "version": "\(version)", "portals": "\(configuration.portals.map(\.address).joined(separator: ","))",
                "targets": "\(served.targets.map(\.name).joined(separator: ","))",
                "luns": "\(units.count)", "node-id": "\(cluster.id.rawValue)", "peer": "\(cluster.address)",
            ])
        let received = await termination.wait()
        logger.notice("shutting down", metadata: ["signal": "\(TerminationSignals.name(of: received))"])
        membership.cancel()
        catalogFollower.cancel()
        sessionPublisher.cancel()
        resyncPublisher.cancel()
        pinger.cancel()
        janitor.cancel()
        accessFollower.cancel()
        leaseFollower.cancel()
        failover.stop()
        await server.shutdown()
        await data.stop()
        await admin?.shutdown()
        await cluster.stop()
        termination.cancel()
        logger.notice("stopped")
    }
}

extension TesseraNode {
    /// Keeps SendTargets listing every member's portals: re-reads the store's
    /// members every two seconds and updates the list when a node joined or left.
    /// `missing` runs when the store's members no longer list this node.
    static func followMembership(
        data: DataPlane, server: ISCSIServer, portGroups: PortGroupStates, missing: @Sendable () async -> Void
    ) async {
        var portals = NodeRuntime.clusterPortals(data.members)
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            let members = await data.refreshMembers()
            if !members.contains(where: { $0.nodeID == data.replicaNode.id }) { await missing() }
            let now = NodeRuntime.clusterPortals(members)
            await portGroups.refresh(members: data.members)
            if now != portals, !now.isEmpty {
                server.setSendTargetsAddresses(now)
                portals = now
            }
        }
    }

    /// The `[admin]` token: `token_file`'s (read and checked now), else the inline `token`, else none.
    static func adminToken(_ settings: AdminSettings) throws -> AdminToken? {
        if let file = settings.tokenFile { return try AdminTokenFile.load(file) }
        return settings.token.flatMap(AdminToken.init)
    }

    /// Starts the `[admin]` endpoint, if configured, with its token.
    static func startAdmin(
        configuration: NodeConfiguration, token: AdminToken?, state: NodeAdminState, logger: Logger
    ) async throws -> AdminServer? {
        guard let settings = configuration.admin else { return nil }
        let server = AdminServer(
            host: settings.host, port: Int(settings.port), logger: logger, token: token, state: state)
        do {
            try await server.start()
        } catch {
            throw NodeStartupError(message: "cannot listen on admin.listen \(settings.address): \(error)")
        }
        return server
    }
}

/// The targets a node serves, as the health report reads them: the TOML's
/// until the store's are loaded.
final class ServedTargets: Sendable {
    private let state: Mutex<(targets: [TargetConfiguration], serving: Bool)>
    private let replicationSource = Mutex<Handler<@Sendable () -> ReplicationHealth>?>(nil)
    init(_ targets: [TargetConfiguration]) { state = Mutex((targets, false)) }
    var targets: [TargetConfiguration] { state.withLock { $0.targets } }
    var serving: Bool { state.withLock { $0.serving } }
    func set(_ targets: [TargetConfiguration]) { state.withLock { $0.targets = targets } }
    /// The portals are up.
    func markServing() { state.withLock { $0.serving = true } }
    /// Where the health report reads the replicas from, once the data plane runs.
    func reportReplication(_ source: @escaping @Sendable () -> ReplicationHealth) {
        replicationSource.withLock { $0 = Handler(source) }
    }
    /// The replicas, once known.
    var replication: ReplicationHealth? { replicationSource.withLock { $0 }?.call() }
}

/// SIGINT and SIGTERM as an awaitable event (DispatchSource signal sources;
/// the default actions are ignored so the process survives to shut down).
/// A second signal during shutdown exits at once.
public final class TerminationSignals: @unchecked Sendable {  // sources: set once in init, cancel() is thread-safe
    private let sources: [any DispatchSourceSignal]
    private let shared = Shared()
    private let queue = DispatchQueue(label: "tessera.signals")

    private struct State {
        var received: Int32?
        var waiter: UnsafeContinuation<Int32, Never>?
    }

    /// The state the signal handlers and ``wait()`` share.
    private final class Shared: Sendable {
        let state = Mutex(State())
    }

    /// Installs the handlers for SIGINT and SIGTERM.
    public init(logger: Logger) {
        let shared = self.shared
        var sources: [any DispatchSourceSignal] = []
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                let waiter: UnsafeContinuation<Int32, Never>?? = shared.state.withLock { s in
                    if s.received != nil { return .none }
                    s.received = number
                    let waiter = s.waiter
                    s.waiter = nil
                    return .some(waiter)
                }
                guard let waiter else {
                    logger.warning(
                        "second signal during shutdown; exiting now", metadata: ["signal": "\(Self.name(of: number))"])
                    _exit(128 + number)
                }
                waiter?.resume(returning: number)
            }
            source.resume()
            sources.append(source)
        }
        self.sources = sources
    }

    /// Waits for the first SIGINT or SIGTERM and returns its number.
    public func wait() async -> Int32 {
        await withUnsafeContinuation { continuation in
            let now: Int32? = shared.state.withLock { s in
                if let received = s.received { return received }
                s.waiter = continuation
                return nil
            }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// Ends ``wait()`` as a signal would, for a reason of the node's own
    /// (it was removed from the cluster). Returns 0 from ``wait()``.
    public func stop(exitStatus: Int32) {
        let waiter: UnsafeContinuation<Int32, Never>? = shared.state.withLock { s in
            guard s.received == nil else { return nil }
            s.received = exitStatus
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: exitStatus)
    }

    /// Removes the handlers (default actions stay ignored).
    public func cancel() {
        for source in sources { source.cancel() }
    }

    static func name(of signal: Int32) -> String {
        switch signal {
        case SIGINT: "SIGINT"
        case SIGTERM: "SIGTERM"
        case 0: "removed from the cluster"
        default: "signal \(signal)"
        }
    }
}
