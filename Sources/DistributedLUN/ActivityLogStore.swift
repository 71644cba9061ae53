import ClusterModel

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where a node keeps a LUN's ``ActivityLog`` across crashes.
public protocol ActivityLogStore: Sendable {
    /// The extents recorded before this start; nil when there is no record
    /// or it cannot be trusted (then every replica this node led gets a full copy).
    func load(extentBlocks: UInt64) -> [UInt64]?
    /// Replaces the record with `extents`, durably, before it returns.
    func save(_ extents: [UInt64], extentBlocks: UInt64) async throws(ActivityLogStoreError)
    /// Where the primary's dirty-region records of the same LUN live, next
    /// to the log (nil: in memory only, a full copy after a restart).
    var dirtyRecords: (any DirtyRecordStore)? { get }
}

extension ActivityLogStore {
    public var dirtyRecords: (any DirtyRecordStore)? { nil }
}

/// An activity log record could not be written.
public struct ActivityLogStoreError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// The record as a small file next to the replica file:
///
///     "TSAL" | version UInt32 = 1 | extentBlocks UInt64 | count UInt32 |
///     count × extent UInt64 | FNV-1a 64 of everything before (all little-endian)
///
/// rewritten in place and `fdatasync`ed at each save (a few hundred bytes;
/// the saves of one LUN are serialized by ``ActivityLogWriter``).
public final class ActivityLogFile: ActivityLogStore {
    public let path: String
    private static let magic: [UInt8] = Array("TSAL".utf8)
    private static let version: UInt32 = 1

    /// The dirty-region records, `<path>.dirty.<index>.<node>`.
    public let records: DirtyRecordFiles

    public init(path: String) {
        self.path = path
        self.records = DirtyRecordFiles(prefix: path)
    }

    public var dirtyRecords: (any DirtyRecordStore)? { records }

    public func load(extentBlocks: UInt64) -> [UInt64]? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 1 << 20)
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count > 0 else { return nil }
        return Self.decode(Array(bytes.prefix(count)), extentBlocks: extentBlocks)
    }

    public func save(_ extents: [UInt64], extentBlocks: UInt64) async throws(ActivityLogStoreError) {
        let bytes = Self.encode(extents, extentBlocks: extentBlocks)
        let fd = open(path, O_WRONLY | O_CREAT, 0o600)
        guard fd >= 0 else { throw ActivityLogStoreError("open \(path): errno \(errno)") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == bytes.count, ftruncate(fd, off_t(bytes.count)) == 0, fdatasync(fd) == 0 else {
            throw ActivityLogStoreError("write \(path): errno \(errno)")
        }
    }

    static func encode(_ extents: [UInt64], extentBlocks: UInt64) -> [UInt8] {
        var bytes = magic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(version)
        append(extentBlocks)
        append(UInt32(extents.count))
        for extent in extents { append(extent) }
        append(fnv1a(bytes))
        return bytes
    }

    static func decode(_ bytes: [UInt8], extentBlocks: UInt64) -> [UInt64]? {
        func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
            guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else { return nil }
            var value: T = 0
            for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (8 * i) }
            return value
        }
        guard bytes.count >= 20, Array(bytes.prefix(4)) == magic, read(UInt32.self, at: 4) == version,
            read(UInt64.self, at: 8) == extentBlocks, let count = read(UInt32.self, at: 16)
        else { return nil }
        let end = 20 + Int(count) * 8
        guard bytes.count == end + 8, read(UInt64.self, at: end) == fnv1a(Array(bytes.prefix(end))) else { return nil }
        return (0..<Int(count)).compactMap { read(UInt64.self, at: 20 + $0 * 8) }
    }

    /// FNV-1a, 64 bits: catches a torn or foreign file (not an adversary).
    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3 }
        return hash
    }
}
