/// One SQL value as it travels in a dqlite tuple (parameters or row columns).
public enum DqliteValue: Hashable, Sendable {
    /// SQLITE_INTEGER (code 1), int64 word.
    case integer(Int64)
    /// SQLITE_FLOAT (code 2), IEEE 754 double word.
    case float(Double)
    /// SQLITE_TEXT (code 3), zero-terminated UTF-8 padded to a word.
    case text(String)
    /// SQLITE_BLOB (code 4), length word then bytes padded to a word.
    case blob([UInt8])
    /// SQLITE_NULL (code 5), a zeroed word.
    case null
    /// DQLITE_UNIXTIME (code 9), int64 seconds since the epoch.
    case unixTime(Int64)
    /// DQLITE_ISO8601 (code 10), text.
    case iso8601(String)
    /// DQLITE_BOOLEAN (code 11), uint64 0 or 1.
    case boolean(Bool)

    /// The tuple type code.
    var typeCode: UInt8 {
        switch self {
        case .integer: 1
        case .float: 2
        case .text: 3
        case .blob: 4
        case .null: 5
        case .unixTime: 9
        case .iso8601: 10
        case .boolean: 11
        }
    }

    /// The value as Int64 when it is an integer-like value.
    public var int64: Int64? {
        switch self {
        case .integer(let v), .unixTime(let v): v
        case .boolean(let b): b ? 1 : 0
        default: nil
        }
    }

    /// The value as a string when it is text.
    public var string: String? {
        switch self {
        case .text(let s), .iso8601(let s): s
        default: nil
        }
    }

    /// The value as bytes when it is a blob (or text, as UTF-8).
    public var bytes: [UInt8]? {
        switch self {
        case .blob(let b): b
        case .text(let s): Array(s.utf8)
        default: nil
        }
    }

    /// True for SQL NULL.
    public var isNull: Bool { self == .null }
}

extension DqliteValue: ExpressibleByIntegerLiteral, ExpressibleByStringLiteral, ExpressibleByNilLiteral {
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(nilLiteral: ()) { self = .null }
}

extension DqliteValue {
    /// An integer parameter from any fixed-width integer (UInt64 is bit-cast).
    public static func int<T: BinaryInteger>(_ value: T) -> DqliteValue {
        .integer(Int64(truncatingIfNeeded: value))
    }

    /// Text, or NULL when nil.
    public static func optionalText(_ value: String?) -> DqliteValue {
        value.map { .text($0) } ?? .null
    }
}
