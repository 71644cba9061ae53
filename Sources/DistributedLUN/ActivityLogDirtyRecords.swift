import ClusterModel
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

// A primary's dirty-region records, kept across its crashes next to the
// LUN's activity log: what each replica that is not in sync lacks, so that
// after a restart of the primary a returning replica gets only those
// regions (plus the extents the activity log names) instead of a full copy.
//
// The rule that keeps it safe: a record on disk is never smaller than what
// its replica lacks. A region turning dirty is saved before the write that
// dirtied it is acknowledged (and a write to a replica that is stale
// already waits for it before it touches the medium); regions copied are
// cleared on disk later, after the copy is on the replica. A record that
// cannot be written is removed instead, and no record means a full copy.

/// What a primary knows one replica of one sub-unit lacks, as kept on disk.
public struct DirtyRecord: Hashable, Sendable {
    /// The LUN.
    public var lun: LUNID
    /// The sub-unit.
    public var index: UInt32
    /// The replica's node.
    public var node: NodeID
    /// The record covers only what this node wrote since it took over from
    /// that replica as primary: its resync adds what the replica's own
    /// activity log names (or copies everything).
    public var needsPeerLog: Bool
    /// The regions the replica lacks.
    public var regions: DirtyRegions

    public init(lun: LUNID, index: UInt32, node: NodeID, needsPeerLog: Bool, regions: DirtyRegions) {
        self.lun = lun
        self.index = index
        self.node = node
        self.needsPeerLog = needsPeerLog
        self.regions = regions
    }
}

/// Where a node keeps its ``DirtyRecord``s of one LUN across crashes.
public protocol DirtyRecordStore: Sendable {
    /// Every record kept before this start that can be trusted (a torn or
    /// foreign one is dropped: its replica gets a full copy).
    func loadAll() -> [DirtyRecord]
    /// Replaces the record of its (sub-unit, node), durably, before it returns.
    func save(_ record: DirtyRecord) throws(ActivityLogStoreError)
    /// Removes the record of (sub-unit, node), durably; no record is no error.
    func remove(index: UInt32, node: NodeID) throws(ActivityLogStoreError)
}

/// The records as one small file per (sub-unit, node) next to the
/// activity log, `<log>.dirty.<index>.<node>`:
///
///     "TSDR" | version UInt32 = 1 | lun UInt64 | index UInt32 | node UInt64 |
///     flags UInt32 (1: needs the peer's log) | blockCount UInt64 |
///     regionBlocks UInt64 | count UInt32 | count × UInt64 bitmap words |
///     FNV-1a 64 of everything before (all little-endian)
///
/// rewritten in place and `fdatasync`ed at each save: a torn write fails
/// the checksum and the record is dropped (a full copy), a new file whose
/// directory entry a crash loses is no record either (a full copy). A
/// removal syncs the directory, so a record never comes back from before it.
public final class DirtyRecordFiles: DirtyRecordStore {
    /// The activity log's path the files are named after.
    public let prefix: String
    private let directory: String
    private let base: String
    private static let magic: [UInt8] = Array("TSDR".utf8)
    private static let version: UInt32 = 1

    public init(prefix: String) {
        self.prefix = prefix
        if let slash = prefix.lastIndex(of: "/") {
            let dir = String(prefix[..<slash])
            directory = dir.isEmpty ? "/" : dir
            base = String(prefix[prefix.index(after: slash)...])
        } else {
            directory = "."
            base = prefix
        }
    }

    func path(index: UInt32, node: NodeID) -> String { "\(prefix).dirty.\(index).\(node.rawValue)" }

    public func loadAll() -> [DirtyRecord] {
        guard let dir = opendir(directory) else { return [] }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: &entry.pointee.d_name) {
                String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
            }
            if name.hasPrefix(base + ".dirty.") { names.append(name) }
        }
        closedir(dir)
        var records: [DirtyRecord] = []
        for name in names {
            let path = directory + "/" + name
            let parts = name.dropFirst(base.count + ".dirty.".count).split(separator: ".")
            guard parts.count == 2, let index = UInt32(parts[0]), let node = UInt64(parts[1]),
                let record = Self.read(path), record.index == index, record.node == NodeID(node)
            else {
                unlink(path)
                continue
            }
            records.append(record)
        }
        return records
    }

    public func save(_ record: DirtyRecord) throws(ActivityLogStoreError) {
        let path = path(index: record.index, node: record.node)
        let bytes = Self.encode(record)
        let fd = open(path, O_WRONLY | O_CREAT, 0o600)
        guard fd >= 0 else { throw ActivityLogStoreError("open \(path): errno \(errno)") }
        defer { close(fd) }
        let written = bytes.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        guard written == bytes.count, ftruncate(fd, off_t(bytes.count)) == 0, fdatasync(fd) == 0 else {
            throw ActivityLogStoreError("write \(path): errno \(errno)")
        }
    }

    public func remove(index: UInt32, node: NodeID) throws(ActivityLogStoreError) {
        let path = path(index: index, node: node)
        if unlink(path) != 0 {
            guard errno == ENOENT else { throw ActivityLogStoreError("unlink \(path): errno \(errno)") }
            return
        }
        let fd = open(directory, O_RDONLY)
        guard fd >= 0 else { throw ActivityLogStoreError("open \(directory): errno \(errno)") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw ActivityLogStoreError("fsync \(directory): errno \(errno)") }
    }

    /// Removes every record of the LUN (it was deleted, with its replica
    /// file and activity log).
    public func removeAll() {
        for record in loadAll() { try? remove(index: record.index, node: record.node) }
    }

    private static func read(_ path: String) -> DirtyRecord? {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_size > 0, info.st_size <= 64 << 20 else { return nil }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        let count = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard count == bytes.count else { return nil }
        return decode(bytes)
    }

    static func encode(_ record: DirtyRecord) -> [UInt8] {
        var bytes = magic
        func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
        append(version)
        append(record.lun.rawValue)
        append(record.index)
        append(record.node.rawValue)
        append(UInt32(record.needsPeerLog ? 1 : 0))
        append(record.regions.blockCount)
        append(record.regions.regionBlocks)
        let words = record.regions.storage
        append(UInt32(words.count))
        for word in words { append(word) }
        append(ActivityLogFile.fnv1a(bytes))
        return bytes
    }

    static func decode(_ bytes: [UInt8]) -> DirtyRecord? {
        func read<T: FixedWidthInteger>(_: T.Type, at offset: Int) -> T? {
            guard offset >= 0, offset + MemoryLayout<T>.size <= bytes.count else { return nil }
            var value: T = 0
            for i in 0..<MemoryLayout<T>.size { value |= T(bytes[offset + i]) << (8 * i) }
            return value
        }
        guard bytes.count >= 60, Array(bytes.prefix(4)) == magic, read(UInt32.self, at: 4) == version,
            let lun = read(UInt64.self, at: 8), let index = read(UInt32.self, at: 16),
            let node = read(UInt64.self, at: 20), let flags = read(UInt32.self, at: 28), flags & ~1 == 0,
            let blockCount = read(UInt64.self, at: 32), let regionBlocks = read(UInt64.self, at: 40),
            let count = read(UInt32.self, at: 48)
        else { return nil }
        let end = 52 + Int(count) * 8
        guard bytes.count == end + 8, read(UInt64.self, at: end) == ActivityLogFile.fnv1a(Array(bytes.prefix(end))),
            let regions = DirtyRegions(
                blockCount: blockCount, regionBlocks: regionBlocks,
                storage: (0..<Int(count)).compactMap { read(UInt64.self, at: 52 + $0 * 8) })
        else { return nil }
        return DirtyRecord(
            lun: LUNID(lun), index: index, node: NodeID(node), needsPeerLog: flags & 1 != 0, regions: regions)
    }
}

/// A LUN's dirty-region records on this node, kept in their store behind
/// the ones in memory: ``persist(_:)`` returns once the store holds the
/// records as they are now (a write that dirtied a region waits for it),
/// ``touch(_:)`` only asks for a save (cleared regions, removed records).
/// Saves are one at a time, each writing the records as they are when it
/// runs, so one save serves every request made before it began.
final class DirtyRecordWriter: Sendable {
    typealias Key = LUNReplicas.DirtyKey

    private struct State {
        var pending: Set<Key> = []
        var generation: UInt64 = 0
        var durable: UInt64 = 0
        var saving = false
        var waiters: [(generation: UInt64, waiter: CheckedContinuation<Bool, Never>)] = []
    }

    let store: any DirtyRecordStore
    private let state = Mutex(State())
    private let current = Mutex(Handler<@Sendable (Key) -> DirtyRecord?>({ _ in nil }))

    init(store: any DirtyRecordStore) { self.store = store }

    /// Where a save reads a record as it is now (nil: there is none, remove it).
    func read(from snapshot: @escaping @Sendable (Key) -> DirtyRecord?) { current.withLock { $0 = Handler(snapshot) } }

    /// The records of `keys` changed in a way a crash may forget (regions
    /// cleared, a record dropped or started): save them soon.
    func touch(_ keys: some Sequence<Key>) {
        let start = state.withLock { s -> Bool in
            s.pending.formUnion(keys)
            s.generation += 1
            defer { s.saving = true }
            return !s.saving
        }
        if start { Task { await self.saveLoop() } }
    }

    /// Returns once the store holds the records of `keys` as they are now;
    /// false when one could be neither written nor removed.
    func persist(_ keys: some Sequence<Key>) async -> Bool {
        let needed = state.withLock { s -> UInt64 in
            s.pending.formUnion(keys)
            s.generation += 1
            return s.generation
        }
        return await withCheckedContinuation { waiter in
            let start = state.withLock { s -> Bool? in
                guard s.durable < needed else { return nil }
                s.waiters.append((needed, waiter))
                defer { s.saving = true }
                return !s.saving
            }
            switch start {
            case nil: waiter.resume(returning: true)
            case true?: Task { await self.saveLoop() }
            case false?: break
            }
        }
    }

    private func saveLoop() async {
        while true {
            let (keys, generation) = state.withLock { s in
                defer { s.pending = [] }
                return (s.pending, s.generation)
            }
            let snapshot = current.withLock { $0 }
            var failed: [Key] = []
            for key in keys {
                do throws(ActivityLogStoreError) {
                    if let record = snapshot.call(key) {
                        try store.save(record)
                    } else {
                        try store.remove(index: key.index, node: key.node)
                    }
                } catch {
                    // No record is a full copy: never less than the replica lacks.
                    do throws(ActivityLogStoreError) { try store.remove(index: key.index, node: key.node) } catch {
                        failed.append(key)
                    }
                }
            }
            let (ready, again) = state.withLock { s in
                let saved = failed.isEmpty
                if saved { s.durable = max(s.durable, generation) } else { s.pending.formUnion(failed) }
                let done = s.durable
                let ready = s.waiters.filter { $0.generation <= (saved ? done : generation) }
                s.waiters.removeAll { $0.generation <= (saved ? done : generation) }
                let again = !s.waiters.isEmpty || (saved && !s.pending.isEmpty)
                s.saving = again
                return (ready.map { ($0.waiter, saved) }, again)
            }
            for (waiter, saved) in ready { waiter.resume(returning: saved) }
            guard again else { return }
        }
    }
}
