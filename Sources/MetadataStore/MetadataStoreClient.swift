import ClusterAuth
import ClusterModel
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import TesseraMetrics

/// Client of the replicated metadata store. Finds the dqlite leader from a list
/// of seeds (and the members it learns), keeps one connection to it, and
/// retries on "not leader", "leadership lost", SQLITE_BUSY and lost
/// connections with backoff until `retryDeadline`, after which it throws
/// `.unavailable`. Operations are serialised: one owns the leader connection
/// at a time.
///
/// Plain `exec` is retried too, so use it only for idempotent statements;
/// mutations go through `mutate(requestID:_:)`, which is applied at most once.
public final class MetadataStoreClient: SQLExecutor, @unchecked Sendable {
    /// Where to find the store and how patient to be.
    public struct Configuration: Sendable {
        /// Store addresses to ask for the leader (any member will do).
        public var seeds: [NodeAddress]
        /// The dqlite database name.
        public var database: String
        /// Per-request timeout; the connection is dropped when it fires.
        public var requestTimeout: Duration
        /// TCP connect timeout per address.
        public var connectTimeout: Duration
        /// Timeout of the LEADER probe: a stopped (SIGSTOP) node accepts TCP
        /// but never answers, and must not hold up discovery for long.
        public var probeTimeout: Duration
        /// How long one operation keeps retrying before `.unavailable`.
        public var retryDeadline: Duration
        /// The cluster secret every connection proves first (the store port
        /// of a node started with one, ``StoreTunnel``, takes nothing else).
        public var secret: ClusterSecret?

        public init(
            seeds: [NodeAddress], database: String = "tessera", requestTimeout: Duration = .seconds(5),
            connectTimeout: Duration = .milliseconds(500), retryDeadline: Duration = .seconds(10),
            probeTimeout: Duration = .milliseconds(300), secret: ClusterSecret? = nil
        ) {
            self.secret = secret
            self.probeTimeout = probeTimeout
            self.seeds = seeds
            self.database = database
            self.requestTimeout = requestTimeout
            self.connectTimeout = connectTimeout
            self.retryDeadline = retryDeadline
        }
    }

    /// The configuration in use.
    public let configuration: Configuration
    /// How long each ``transaction(_:)`` that committed took, from the call
    /// (waiting for the connection and any retries included) to the COMMIT's answer.
    public let transactionLatency = LatencyHistogram()
    private let group: EventLoopGroup
    private let logger: Logger
    private let mutex = AsyncMutex()
    // Everything below is touched only while holding `mutex`.
    private var connection: DqliteConnection?
    private var databaseID: UInt64 = 0
    private var knownAddresses: [NodeAddress]
    private var currentLeader: DqliteNodeInfo? {
        didSet { connectedLeaderID.withLockedValue { $0 = currentLeader.map { NodeID($0.id) } } }
    }
    private let connectedLeaderID = NIOLockedValueBox<NodeID?>(nil)

    public init(
        _ configuration: Configuration, group: EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "tessera.store.client")
    ) {
        self.configuration = configuration
        self.group = group
        self.logger = logger
        self.knownAddresses = configuration.seeds
    }

    /// A trivial statement through the leader: proves quorum contact (the
    /// daemon's lease, `StoreLeaseKeeper`, is built on such answers). Throws
    /// `.unavailable` without quorum.
    public func heartbeat() async throws {
        _ = try await query("SELECT 1")
    }

    /// The leader this client is connected to now (nil between connections):
    /// read without a round trip, so it may be a moment old.
    public var connectedLeader: NodeID? { connectedLeaderID.withLockedValue { $0 } }

    /// Drops the leader connection.
    public func close() async {
        await mutex.acquire()
        dropConnection()
        mutex.release()
    }

    // MARK: SQL

    @discardableResult
    public func exec(_ sql: String, _ parameters: [DqliteValue]) async throws -> ExecResult {
        try await withLeader { connection, db in try await Self.exec(connection, db, sql, parameters) }
    }

    public func query(_ sql: String, _ parameters: [DqliteValue]) async throws -> [SQLRow] {
        try await withLeader { connection, db in try await Self.query(connection, db, sql, parameters) }
    }

    /// Runs `body` inside BEGIN … COMMIT on the leader. On a retryable failure
    /// (leader change, lost connection, busy) the transaction is abandoned and
    /// the WHOLE closure runs again, so it must only touch the store through
    /// `transaction`. A COMMIT whose outcome is unknown is retried too: use
    /// `mutate(requestID:_:)` for anything that must not apply twice.
    public func transaction<T: Sendable>(_ body: @Sendable (SQLTransaction) async throws -> T) async throws -> T {
        let started = ContinuousClock.now
        let value = try await withLeader { connection, db in
            let transaction = SQLTransaction(connection: connection, databaseID: db)
            defer { transaction.finish() }
            do {
                try await transaction.exec("BEGIN")
                let value = try await body(transaction)
                try await transaction.exec("COMMIT")
                return value
            } catch {
                if DqliteFailureCode.decision(for: error) != .reconnectAndRetry, connection.isActive {
                    _ = try? await Self.exec(connection, db, "ROLLBACK", [])
                }
                throw error
            }
        }
        transactionLatency.record(since: started)
        return value
    }

    /// An idempotent mutation: in one transaction, skip if `requestID` is in
    /// `applied_requests`, else run `body` and record the id. Retrying with the
    /// same id after any failure is harmless.
    public func mutate<T: Sendable>(
        requestID: RequestID, _ body: @Sendable (SQLTransaction) async throws -> T
    ) async throws -> MutationOutcome<T> {
        try await transaction { transaction in
            let seen = try await transaction.query(
                "SELECT 1 FROM applied_requests WHERE id = ?", [.text(requestID.rawValue)])
            if !seen.isEmpty { return .alreadyApplied }
            let value = try await body(transaction)
            try await transaction.exec(
                "INSERT INTO applied_requests(id, applied_at) VALUES (?, strftime('%s','now'))",
                [.text(requestID.rawValue)])
            return .applied(value)
        }
    }

    // MARK: Membership

    /// The current leader, verified: a node's LEADER answer can be stale, so
    /// a statement (which dqlite serves only on the leader, after a Raft
    /// barrier) must succeed on it first.
    public func leader() async throws -> ClusterMember {
        try await withLeader { [self] connection, db in
            _ = try await Self.query(connection, db, "SELECT 1", [])
            guard let leader = currentLeader else { throw LeaderNotFound(detail: "unknown") }
            return ClusterMember(id: NodeID(leader.id), address: leader.address, role: .voter)
        }
    }

    /// CLUSTER: every member with its role.
    public func members() async throws -> [ClusterMember] {
        try await withLeader { connection, _ in try await Self.members(connection) }
    }

    /// ADD a node as spare (step one of joining).
    public func add(id: NodeID, address: NodeAddress) async throws {
        try await membership(.add(id: id.rawValue, address: address.description))
    }

    /// ASSIGN a role to a member.
    public func assign(id: NodeID, role: NodeRole) async throws {
        try await membership(.assign(id: id.rawValue, role: role.rawValue))
    }

    /// REMOVE a member.
    public func remove(id: NodeID) async throws {
        try await membership(.remove(id: id.rawValue))
    }

    /// TRANSFER leadership to `id` (nil: let Raft pick the best voter).
    public func transferLeadership(to id: NodeID?) async throws {
        try await membership(.transfer(id: id?.rawValue ?? 0))
        await mutex.acquire()
        dropConnection()
        mutex.release()
    }

    /// DESCRIBE the leader node: failure domain and weight.
    public func describeLeader() async throws -> (failureDomain: UInt64, weight: UInt64) {
        try await withLeader { connection, _ in
            let response = try await Self.checked(connection.request(.describe(format: 0)))
            guard case .metadata(let failureDomain, let weight) = response else {
                throw MetadataStoreError(.protocolViolation("DESCRIBE answered \(response.type)"))
            }
            return (failureDomain, weight)
        }
    }

    /// Makes node `id` at `address` a member: ADD (unless present), then ASSIGN
    /// voter while there are fewer than `maximumVoters` other voters, standby
    /// after. Idempotent; returns the role it ended with.
    @discardableResult
    public func join(id: NodeID, address: NodeAddress, maximumVoters: Int = 3) async throws -> NodeRole {
        var members = try await self.members()
        if !members.contains(where: { $0.id == id }) {
            do {
                try await add(id: id, address: address)
            } catch let error as MetadataStoreError where "\(error)".contains("already in use") {
                // An earlier attempt's ADD committed: carry on.
            }
            members = try await self.members()
        }
        let otherVoters = members.filter { $0.role == .voter && $0.id != id }.count
        let wanted: NodeRole = otherVoters < maximumVoters ? .voter : .standby
        if members.first(where: { $0.id == id })?.role != wanted {
            do {
                try await assign(id: id, role: wanted)
            } catch let error as MetadataStoreError where "\(error)".contains("server role is not valid") {
                // RAFT_BADROLE: the member already has that role (an earlier
                // attempt's ASSIGN, or a promotion that finished meanwhile).
                guard try await self.members().first(where: { $0.id == id })?.role == wanted else { throw error }
            }
        }
        logger.info("node joined the store", metadata: ["id": "\(id)", "role": "\(wanted)"])
        return wanted
    }

    /// Removes `id` cleanly: hands leadership away first if it is the leader.
    public func leave(id: NodeID) async throws {
        if try await leader().id == id {
            try await transferLeadership(to: nil)
        }
        try await remove(id: id)
    }

    private func membership(_ request: DqliteRequest) async throws {
        try await withLeader { connection, _ in
            let response = try await Self.checked(connection.request(request))
            guard case .empty = response else {
                throw MetadataStoreError(.protocolViolation("membership request answered \(response.type)"))
            }
        }
    }

    // MARK: Leader connection and retry

    private func withLeader<T: Sendable>(_ body: (DqliteConnection, UInt64) async throws -> T) async throws -> T {
        await mutex.acquire()
        defer { mutex.release() }
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.retryDeadline
        var backoff = Backoff()
        while true {
            do {
                let connection = try await leaderConnection()
                let value = try await body(connection, databaseID)
                return value
            } catch {
                let decision = DqliteFailureCode.decision(for: error)
                if decision == .fail { throw error }
                if decision == .reconnectAndRetry { dropConnection() }
                guard clock.now < deadline else {
                    logger.warning("store unavailable", metadata: ["error": "\(error)"])
                    throw MetadataStoreError(.unavailable(lastError: "\(error)"))
                }
                logger.debug("store retry", metadata: ["error": "\(error)", "decision": "\(decision)"])
                try await Task.sleep(for: backoff.next(unit: Double.random(in: 0...1)))
            }
        }
    }

    private func dropConnection() {
        connection?.close()
        connection = nil
        currentLeader = nil
    }

    private func connect(_ address: NodeAddress) async throws -> DqliteConnection {
        try await DqliteConnection.connect(
            to: address, group: group, connectTimeout: Self.timeAmount(configuration.connectTimeout),
            requestTimeout: Self.timeAmount(configuration.requestTimeout), secret: configuration.secret)
    }

    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Asks each known address for the leader; connects to it and OPENs the database.
    private func leaderConnection() async throws -> DqliteConnection {
        if let connection, connection.isActive { return connection }
        dropConnection()
        var failures: [String] = []
        var refusals: [String] = []
        defer {
            if !refusals.isEmpty { logger.warning("store members refused this node's cluster secret", metadata: ["refusals": "\(refusals)"]) }
        }
        for address in knownAddresses {
            let probe: DqliteConnection
            do { probe = try await connect(address) } catch DqliteConnectionError.refused(let detail) {
                refusals.append(detail)
                continue
            } catch {
                failures.append("\(address): \(error)")
                continue
            }
            let answer = try? await probe.request(.leader, timeout: Self.timeAmount(configuration.probeTimeout))
            guard case .server(let id, let leaderAddress)? = answer, id != 0, !leaderAddress.isEmpty,
                let parsed = NodeAddress(parsing: leaderAddress)
            else {
                probe.close()
                failures.append("\(address): no leader known")
                continue
            }
            let leader: DqliteConnection
            if parsed == address {
                leader = probe
            } else {
                probe.close()
                do { leader = try await connect(parsed) } catch {
                    failures.append("\(parsed): \(error)")
                    continue
                }
            }
            do {
                let opened = try await Self.checked(leader.request(.open(name: configuration.database, flags: 0, vfs: "volatile")))
                guard case .db(let db) = opened else {
                    throw MetadataStoreError(.protocolViolation("OPEN answered \(opened.type)"))
                }
                let members = try await Self.members(leader)
                for member in members {
                    if let address = NodeAddress(parsing: member.address), !knownAddresses.contains(address) {
                        knownAddresses.append(address)
                    }
                }
                connection = leader
                databaseID = UInt64(db)
                currentLeader = DqliteNodeInfo(id: id, address: leaderAddress, role: 0)
                logger.debug("connected to store leader", metadata: ["leader": "\(leaderAddress)", "id": "\(id)"])
                return leader
            } catch {
                leader.close()
                failures.append("\(parsed): \(error)")
            }
        }
        // Where a member answered with another secret, retrying cannot help.
        if !refusals.isEmpty { throw MetadataStoreError(.refused(refusals.joined(separator: "; "))) }
        throw LeaderNotFound(detail: failures.joined(separator: "; "))
    }

    // MARK: Request helpers (shared with SQLTransaction)

    static func checked(_ response: DqliteResponse) throws -> DqliteResponse {
        if case .failure(let code, let message) = response {
            throw MetadataStoreError(.sql(code: code, message: message))
        }
        return response
    }

    static func exec(_ connection: DqliteConnection, _ db: UInt64, _ sql: String, _ parameters: [DqliteValue]) async throws -> ExecResult {
        let response = try checked(await connection.request(.execSQL(dbID: db, sql: sql, parameters: parameters)))
        guard case .result(let lastInsertID, let rowsAffected) = response else {
            throw MetadataStoreError(.protocolViolation("EXEC_SQL answered \(response.type)"))
        }
        return ExecResult(lastInsertID: lastInsertID, rowsAffected: rowsAffected)
    }

    static func query(_ connection: DqliteConnection, _ db: UInt64, _ sql: String, _ parameters: [DqliteValue]) async throws -> [SQLRow] {
        let response = try checked(await connection.request(.querySQL(dbID: db, sql: sql, parameters: parameters)))
        guard case .rows(let part) = response else {
            throw MetadataStoreError(.protocolViolation("QUERY_SQL answered \(response.type)"))
        }
        return part.rows.map { SQLRow(columns: part.columns, values: $0) }
    }

    static func members(_ connection: DqliteConnection) async throws -> [ClusterMember] {
        let response = try checked(await connection.request(.cluster(format: 1)))
        guard case .servers(let nodes) = response else {
            throw MetadataStoreError(.protocolViolation("CLUSTER answered \(response.type)"))
        }
        return nodes.map {
            ClusterMember(id: NodeID($0.id), address: $0.address, role: NodeRole(rawValue: $0.role) ?? .spare)
        }
    }
}

/// An open transaction on the leader connection, valid only inside the
/// `transaction` closure that received it.
public final class SQLTransaction: SQLExecutor, @unchecked Sendable {
    private let connection: DqliteConnection
    private let databaseID: UInt64
    private let state = NIOLockedValueBox(false)

    init(connection: DqliteConnection, databaseID: UInt64) {
        self.connection = connection
        self.databaseID = databaseID
    }

    func finish() { state.withLockedValue { $0 = true } }

    private func checkOpen() throws {
        if state.withLockedValue({ $0 }) {
            throw MetadataStoreError(.protocolViolation("transaction used after it ended"))
        }
    }

    @discardableResult
    public func exec(_ sql: String, _ parameters: [DqliteValue]) async throws -> ExecResult {
        try checkOpen()
        return try await MetadataStoreClient.exec(connection, databaseID, sql, parameters)
    }

    public func query(_ sql: String, _ parameters: [DqliteValue]) async throws -> [SQLRow] {
        try checkOpen()
        return try await MetadataStoreClient.query(connection, databaseID, sql, parameters)
    }
}
