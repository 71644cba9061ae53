import NIOCore

/// One batch of a ROWS response. A result set may span several batches; every
/// batch repeats the column names (dqlite src/query.c).
public struct DqliteRowsPart: Hashable, Sendable {
    /// Column names of the result set.
    public var columns: [String]
    /// Rows in this batch, each with `columns.count` values.
    public var rows: [[DqliteValue]]
    /// True when the server ended the batch with DQLITE_RESPONSE_ROWS_PART
    /// (0xeeeeeeeeeeeeeeee): another batch follows.
    public var hasMore: Bool

    public init(columns: [String], rows: [[DqliteValue]], hasMore: Bool) {
        self.columns = columns
        self.rows = rows
        self.hasMore = hasMore
    }

    /// End marker: result set complete.
    static let doneMarker: UInt64 = 0xffff_ffff_ffff_ffff
    /// End marker: batch over, more batches follow.
    static let partMarker: UInt64 = 0xeeee_eeee_eeee_eeee
}

/// A server response, one case per dqlite response type (src/protocol.h).
public enum DqliteResponse: Hashable, Sendable {
    /// FAILURE (0): an SQLite/dqlite error code and message.
    case failure(code: UInt64, message: String)
    /// SERVER (1): a node id and address (LEADER's answer; id 0 = no leader known).
    case server(id: UInt64, address: String)
    /// WELCOME (2): CLIENT's answer.
    case welcome(heartbeatTimeout: UInt64)
    /// SERVERS (3): CLUSTER's answer in format 1 (id, address, role).
    case servers([DqliteNodeInfo])
    /// DB (4): OPEN's answer.
    case db(id: UInt32)
    /// RESULT (6): EXEC_SQL's answer.
    case result(lastInsertID: UInt64, rowsAffected: UInt64)
    /// ROWS (7): one batch of QUERY_SQL's answer.
    case rows(DqliteRowsPart)
    /// EMPTY (8): acknowledgement.
    case empty
    /// METADATA (10): DESCRIBE's answer.
    case metadata(failureDomain: UInt64, weight: UInt64)

    /// The response type code.
    public var type: UInt8 {
        switch self {
        case .failure: 0
        case .server: 1
        case .welcome: 2
        case .servers: 3
        case .db: 4
        case .result: 6
        case .rows: 7
        case .empty: 8
        case .metadata: 10
        }
    }

    /// The whole frame (used by tests and fake servers).
    public func frame() -> DqliteFrame {
        var body = ByteBuffer()
        switch self {
        case .failure(let code, let message):
            body.writeDqliteUInt64(code)
            body.writeDqliteText(message)
        case .server(let id, let address):
            body.writeDqliteUInt64(id)
            body.writeDqliteText(address)
        case .welcome(let timeout): body.writeDqliteUInt64(timeout)
        case .servers(let nodes):
            body.writeDqliteUInt64(UInt64(nodes.count))
            for node in nodes {
                body.writeDqliteUInt64(node.id)
                body.writeDqliteText(node.address)
                body.writeDqliteUInt64(node.role)
            }
        case .db(let id):
            body.writeInteger(id, endianness: .little)
            body.writeInteger(UInt32(0))
        case .result(let lastInsertID, let rowsAffected):
            body.writeDqliteUInt64(lastInsertID)
            body.writeDqliteUInt64(rowsAffected)
        case .rows(let part):
            body.writeDqliteUInt64(UInt64(part.columns.count))
            for column in part.columns { body.writeDqliteText(column) }
            for row in part.rows { body.writeDqliteRow(row) }
            body.writeDqliteUInt64(part.hasMore ? DqliteRowsPart.partMarker : DqliteRowsPart.doneMarker)
        case .empty: body.writeDqliteUInt64(0)
        case .metadata(let failureDomain, let weight):
            body.writeDqliteUInt64(failureDomain)
            body.writeDqliteUInt64(weight)
        }
        return DqliteFrame(type: type, body: body)
    }

    /// Decodes a response frame.
    public init(frame: DqliteFrame) throws(DqliteWireError) {
        var body = frame.body
        switch frame.type {
        case 0:
            let code = try body.readDqliteUInt64()
            self = .failure(code: code, message: try body.readDqliteText())
        case 1:
            let id = try body.readDqliteUInt64()
            self = .server(id: id, address: try body.readDqliteText())
        case 2: self = .welcome(heartbeatTimeout: try body.readDqliteUInt64())
        case 3:
            let count = try body.readDqliteUInt64()
            // Each entry takes at least 3 words, which bounds the count.
            guard count <= UInt64(body.readableBytes / 24) else { throw DqliteWireError(.truncated) }
            var nodes: [DqliteNodeInfo] = []
            for _ in 0..<count {
                let id = try body.readDqliteUInt64()
                let address = try body.readDqliteText()
                nodes.append(DqliteNodeInfo(id: id, address: address, role: try body.readDqliteUInt64()))
            }
            self = .servers(nodes)
        case 4: self = .db(id: try body.readDqliteUInt32())
        case 6:
            let lastInsertID = try body.readDqliteUInt64()
            self = .result(lastInsertID: lastInsertID, rowsAffected: try body.readDqliteUInt64())
        case 7: self = .rows(try Self.decodeRows(&body))
        case 8: self = .empty
        case 10:
            let failureDomain = try body.readDqliteUInt64()
            self = .metadata(failureDomain: failureDomain, weight: try body.readDqliteUInt64())
        default: throw DqliteWireError(.unknownMessageType(frame.type))
        }
    }

    private static func decodeRows(_ body: inout ByteBuffer) throws(DqliteWireError) -> DqliteRowsPart {
        let columnCount = try body.readDqliteUInt64()
        // Each column name takes at least one word.
        guard columnCount <= UInt64(body.readableBytes / 8) else { throw DqliteWireError(.truncated) }
        var columns: [String] = []
        for _ in 0..<columnCount { columns.append(try body.readDqliteText()) }
        var rows: [[DqliteValue]] = []
        while true {
            guard let word = body.getInteger(at: body.readerIndex, endianness: .little, as: UInt64.self) else {
                throw DqliteWireError(.truncated)
            }
            // Row headers hold 4-bit type codes <= 11, so these markers cannot be a row.
            if word == DqliteRowsPart.doneMarker || word == DqliteRowsPart.partMarker {
                body.moveReaderIndex(forwardBy: 8)
                return DqliteRowsPart(columns: columns, rows: rows, hasMore: word == DqliteRowsPart.partMarker)
            }
            guard !columns.isEmpty else { throw DqliteWireError(.truncated) }
            rows.append(try body.readDqliteRow(columns: columns.count))
        }
    }
}

/// One node in a SERVERS response.
public struct DqliteNodeInfo: Hashable, Sendable {
    /// Raft id.
    public var id: UInt64
    /// Address as registered.
    public var address: String
    /// Role code (0 voter, 1 standby, 2 spare).
    public var role: UInt64

    public init(id: UInt64, address: String, role: UInt64) {
        self.id = id
        self.address = address
        self.role = role
    }
}
