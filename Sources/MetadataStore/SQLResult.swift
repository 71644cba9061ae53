/// RESULT of a statement that does not yield rows.
public struct ExecResult: Hashable, Sendable {
    /// sqlite3_last_insert_rowid after the statement.
    public var lastInsertID: UInt64
    /// sqlite3_changes after the statement.
    public var rowsAffected: UInt64
}

/// One result row with typed accessors by column name.
public struct SQLRow: Hashable, Sendable {
    /// Column names, shared by every row of the result.
    public let columns: [String]
    /// Values in column order.
    public let values: [DqliteValue]

    public init(columns: [String], values: [DqliteValue]) {
        self.columns = columns
        self.values = values
    }

    /// The value of `column`, or nil when there is no such column.
    public subscript(_ column: String) -> DqliteValue? {
        columns.firstIndex(of: column).map { values[$0] }
    }

    /// Integer column (throws if missing or not an integer).
    public func int64(_ column: String) throws(MetadataStoreError) -> Int64 {
        guard let v = self[column]?.int64 else { throw MetadataStoreError(.decoding("\(column) is not an integer")) }
        return v
    }

    /// Integer column bit-cast to UInt64 (ids, sizes, keys stored as INTEGER).
    public func uint64(_ column: String) throws(MetadataStoreError) -> UInt64 {
        UInt64(bitPattern: try int64(column))
    }

    /// Integer column as Int.
    public func int(_ column: String) throws(MetadataStoreError) -> Int {
        Int(truncatingIfNeeded: try int64(column))
    }

    /// Boolean stored as INTEGER 0/1.
    public func bool(_ column: String) throws(MetadataStoreError) -> Bool { try int64(column) != 0 }

    /// Text column (throws if missing or not text).
    public func string(_ column: String) throws(MetadataStoreError) -> String {
        guard let v = self[column]?.string else { throw MetadataStoreError(.decoding("\(column) is not text")) }
        return v
    }

    /// Text column that may be NULL.
    public func optionalString(_ column: String) throws(MetadataStoreError) -> String? {
        guard let v = self[column] else { throw MetadataStoreError(.decoding("no column \(column)")) }
        return v.isNull ? nil : v.string
    }

    /// Integer column that may be NULL.
    public func optionalInt64(_ column: String) throws(MetadataStoreError) -> Int64? {
        guard let v = self[column] else { throw MetadataStoreError(.decoding("no column \(column)")) }
        return v.isNull ? nil : v.int64
    }

    /// Blob column (text is accepted as its UTF-8 bytes; NULL as empty).
    public func bytes(_ column: String) throws(MetadataStoreError) -> [UInt8] {
        guard let v = self[column] else { throw MetadataStoreError(.decoding("no column \(column)")) }
        if v.isNull { return [] }
        guard let b = v.bytes else { throw MetadataStoreError(.decoding("\(column) is not a blob")) }
        return b
    }
}

/// Something that runs SQL: the client itself (each call its own implicit
/// transaction, retried) or an open transaction (`SQLTransaction`).
public protocol SQLExecutor: Sendable {
    /// Runs statements that yield no rows.
    @discardableResult
    func exec(_ sql: String, _ parameters: [DqliteValue]) async throws -> ExecResult
    /// Runs a query and returns every row.
    func query(_ sql: String, _ parameters: [DqliteValue]) async throws -> [SQLRow]
}

extension SQLExecutor {
    /// `exec` without parameters.
    @discardableResult
    public func exec(_ sql: String) async throws -> ExecResult { try await exec(sql, []) }
    /// `query` without parameters.
    public func query(_ sql: String) async throws -> [SQLRow] { try await query(sql, []) }
}

/// An identifier carried by a mutation so that a retry after an unknown
/// outcome (leader died mid-commit) applies it at most once: the id is
/// inserted into `applied_requests` in the same transaction.
public struct RequestID: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// Unique text, e.g. "node3-8f2c…".
    public var rawValue: String
    public init(rawValue: String) { self.rawValue = rawValue }
    public init(_ rawValue: String) { self.rawValue = rawValue }

    /// 128 random bits in hex.
    public static func random() -> RequestID {
        var generator = SystemRandomNumberGenerator()
        let a = generator.next() as UInt64
        let b = generator.next() as UInt64
        return RequestID(String(a, radix: 16) + "-" + String(b, radix: 16))
    }

    public var description: String { rawValue }
}

/// What an idempotent mutation did.
public enum MutationOutcome<Value: Sendable>: Sendable {
    /// The body ran and committed now.
    case applied(Value)
    /// An earlier attempt with the same request id had already committed; the
    /// body was not run again.
    case alreadyApplied

    /// True in both cases: the mutation is in the store.
    public var isCommitted: Bool { true }

    /// The body's value when it ran now.
    public var value: Value? {
        if case .applied(let v) = self { return v }
        return nil
    }
}
