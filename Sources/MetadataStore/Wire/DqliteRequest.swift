import NIOCore

/// A client request, one case per dqlite request type this client sends
/// (dqlite src/protocol.h request codes, src/request.h schemas). Encode and
/// decode sit side by side; decode exists for tests and fake servers.
public enum DqliteRequest: Hashable, Sendable {
    /// LEADER (0): which node is the leader. Body: unused uint64.
    case leader
    /// CLIENT (1): register a client id. Answered with WELCOME.
    case client(id: UInt64)
    /// OPEN (3): open database `name`. Answered with DB.
    case open(name: String, flags: UInt64, vfs: String)
    /// EXEC_SQL (8): run SQL (possibly several statements). Answered with RESULT.
    case execSQL(dbID: UInt64, sql: String, parameters: [DqliteValue])
    /// QUERY_SQL (9): run a query. Answered with one or more ROWS.
    case querySQL(dbID: UInt64, sql: String, parameters: [DqliteValue])
    /// INTERRUPT (10): stop a query that is yielding rows.
    case interrupt(dbID: UInt64)
    /// ADD (12): add a node as spare. Answered with EMPTY.
    case add(id: UInt64, address: String)
    /// ASSIGN (13): give a node a role (voter 0, standby 1, spare 2).
    case assign(id: UInt64, role: UInt64)
    /// REMOVE (14): remove a node from the configuration.
    case remove(id: UInt64)
    /// CLUSTER (16): list members; format 1 includes roles. Answered with SERVERS.
    case cluster(format: UInt64)
    /// TRANSFER (17): hand leadership to a voter. Answered with EMPTY.
    case transfer(id: UInt64)
    /// DESCRIBE (18): failure domain and weight of the node. Answered with METADATA.
    case describe(format: UInt64)

    /// The request type code.
    public var type: UInt8 {
        switch self {
        case .leader: 0
        case .client: 1
        case .open: 3
        case .execSQL: 8
        case .querySQL: 9
        case .interrupt: 10
        case .add: 12
        case .assign: 13
        case .remove: 14
        case .cluster: 16
        case .transfer: 17
        case .describe: 18
        }
    }

    /// True when the answer is a ROWS stream that may come in several parts.
    var expectsRows: Bool {
        if case .querySQL = self { return true }
        return false
    }

    /// The whole frame for this request.
    public func frame() throws(DqliteWireError) -> DqliteFrame {
        var body = ByteBuffer()
        switch self {
        case .leader: body.writeDqliteUInt64(0)
        case .client(let id): body.writeDqliteUInt64(id)
        case .open(let name, let flags, let vfs):
            body.writeDqliteText(name)
            body.writeDqliteUInt64(flags)
            body.writeDqliteText(vfs)
        case .execSQL(let dbID, let sql, let parameters), .querySQL(let dbID, let sql, let parameters):
            body.writeDqliteUInt64(dbID)
            body.writeDqliteText(sql)
            if !parameters.isEmpty { try body.writeDqliteParameters(parameters) }
        case .interrupt(let dbID): body.writeDqliteUInt64(dbID)
        case .add(let id, let address):
            body.writeDqliteUInt64(id)
            body.writeDqliteText(address)
        case .assign(let id, let role):
            body.writeDqliteUInt64(id)
            body.writeDqliteUInt64(role)
        case .remove(let id), .transfer(let id): body.writeDqliteUInt64(id)
        case .cluster(let format), .describe(let format): body.writeDqliteUInt64(format)
        }
        return DqliteFrame(type: type, body: body)
    }

    /// Encodes the frame into `out`.
    public func encode(into out: inout ByteBuffer) throws(DqliteWireError) {
        try frame().encode(into: &out)
    }

    /// Decodes a request frame.
    public init(frame: DqliteFrame) throws(DqliteWireError) {
        var body = frame.body
        switch frame.type {
        case 0:
            _ = try body.readDqliteUInt64()
            self = .leader
        case 1: self = .client(id: try body.readDqliteUInt64())
        case 3:
            let name = try body.readDqliteText()
            let flags = try body.readDqliteUInt64()
            self = .open(name: name, flags: flags, vfs: try body.readDqliteText())
        case 8, 9:
            let dbID = try body.readDqliteUInt64()
            let sql = try body.readDqliteText()
            let parameters = body.readableBytes > 0 ? try body.readDqliteParameters() : []
            self = frame.type == 8
                ? .execSQL(dbID: dbID, sql: sql, parameters: parameters)
                : .querySQL(dbID: dbID, sql: sql, parameters: parameters)
        case 10: self = .interrupt(dbID: try body.readDqliteUInt64())
        case 12:
            let id = try body.readDqliteUInt64()
            self = .add(id: id, address: try body.readDqliteText())
        case 13:
            let id = try body.readDqliteUInt64()
            // Schema 0 ASSIGN carried no role and meant voter.
            let role = body.readableBytes >= 8 ? try body.readDqliteUInt64() : 0
            self = .assign(id: id, role: role)
        case 14: self = .remove(id: try body.readDqliteUInt64())
        case 16: self = .cluster(format: try body.readDqliteUInt64())
        case 17: self = .transfer(id: try body.readDqliteUInt64())
        case 18: self = .describe(format: try body.readDqliteUInt64())
        default: throw DqliteWireError(.unknownMessageType(frame.type))
        }
    }
}
