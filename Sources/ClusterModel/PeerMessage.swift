import BlockStorage

/// A request from one node to another over the peer port: sub-unit I/O
/// forwarded to the primary, replication from the primary to a secondary,
/// and flushes. Addresses are in blocks relative to the sub-unit's start;
/// every sub-unit request carries the sender's epoch for that sub-unit.
public enum PeerRequest: Sendable {
    /// Read a piece (to the primary).
    case read(PeerIO)
    /// Write a piece (to the primary: it orders and replicates it).
    case write(PeerWrite)
    /// Apply a write the primary ordered (primary → secondary).
    case replicate(PeerWrite)
    /// Deallocate a piece (to the primary: it orders and replicates it).
    case unmap(PeerIO)
    /// Apply an unmap the primary ordered (primary → secondary).
    case replicateUnmap(PeerIO)
    /// COMPARE AND WRITE (to the primary): `data` holds the compare half then the write half.
    case compareAndWrite(PeerWrite)
    /// Allocation state of a piece (GET LBA STATUS, to the primary).
    case allocation(PeerIO)
    /// Make every completed write to this node's replicas of the LUN durable.
    case flush(LUNID)
    /// A change of the LUN's shared SCSI context committed through another
    /// node (reservations, mode pages, a reset, their unit attentions and
    /// aborts): apply it here, then answer (ARCHITECTURE.md "Shared context"
    /// rule 1). The payload is the SCSI layer's encoding of the change.
    case contextChange(LUNID, payload: [UInt8])
    /// The LUN blocks this node's activity log covers (asked by a new primary
    /// before it resyncs this node's replica): answered with extents, or a
    /// failure when the node keeps no log (then the resync copies everything).
    case activityLog(LUNID)
    /// Answer at once with `.done`: the sender measures the round trip
    /// (`tessera_peer_round_trip_seconds`), nothing else happens.
    case ping

    /// The request's kind, as on the wire.
    public var kind: PeerRequestKind {
        switch self {
        case .read: .read
        case .write: .write
        case .replicate: .replicate
        case .unmap: .unmap
        case .replicateUnmap: .replicateUnmap
        case .compareAndWrite: .compareAndWrite
        case .allocation: .allocation
        case .flush: .flush
        case .contextChange: .contextChange
        case .activityLog: .activityLog
        case .ping: .ping
        }
    }
}

/// The kinds of ``PeerRequest`` (wire codes).
public enum PeerRequestKind: UInt8, Sendable, CaseIterable {
    case read = 1
    case write = 2
    case replicate = 3
    case unmap = 4
    case replicateUnmap = 5
    case compareAndWrite = 6
    case allocation = 7
    case flush = 8
    // 9 was a bare logical unit reset announcement: a reset is now a context change.
    case contextChange = 10
    case activityLog = 11
    case ping = 12
}

/// A piece of sub-unit I/O without data.
public struct PeerIO: Hashable, Sendable {
    /// The sub-unit.
    public var subUnit: SubUnitID
    /// The sender's epoch for the sub-unit.
    public var epoch: Epoch
    /// First block, relative to the sub-unit.
    public var lba: UInt64
    /// Blocks.
    public var blockCount: UInt32

    public init(subUnit: SubUnitID, epoch: Epoch, lba: UInt64, blockCount: UInt32) {
        self.subUnit = subUnit
        self.epoch = epoch
        self.lba = lba
        self.blockCount = blockCount
    }
}

/// A piece of sub-unit I/O with its data (exactly the bytes the request
/// needs: `blockCount` blocks, twice that for COMPARE AND WRITE).
public struct PeerWrite: Sendable {
    public var io: PeerIO
    /// Force unit access: durable before the reply.
    public var fua: Bool
    /// The data.
    public var data: IOBuffer
    /// Where the request's bytes start in `data`.
    public var offset: Int
    /// How many bytes of `data` from `offset` belong to the request (a piece
    /// of a larger command buffer sends only its own bytes).
    public var length: Int

    /// `length` defaults to the rest of `data` after `offset`.
    public init(io: PeerIO, fua: Bool, data: IOBuffer, offset: Int = 0, length: Int? = nil) {
        self.io = io
        self.fua = fua
        self.data = data
        self.offset = offset
        self.length = length ?? (data.count - offset)
    }
}

/// The answer to a ``PeerRequest``.
public enum PeerReply: Sendable {
    /// Done (write, replicate, unmap, flush, a COMPARE AND WRITE that matched).
    case done
    /// The blocks read (a read).
    case data(IOBuffer)
    /// COMPARE AND WRITE found a difference at this byte offset of the compare half; nothing was written.
    case miscompare(offset: UInt32)
    /// Allocation state (an allocation request).
    case extents([BlockExtent])
    /// The request failed.
    case failure(PeerFailure)
}

/// Why a peer request failed. The codes are the wire's.
public struct PeerFailure: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// The sender's epoch is older than the replica's: reload the map and retry.
        public static let staleEpoch = Code(rawValue: 1)
        /// The receiver holds no replica of the sub-unit in the role the request needs.
        public static let notReplica = Code(rawValue: 2)
        /// The LUN or sub-unit is unknown to the receiver.
        public static let unknownSubUnit = Code(rawValue: 3)
        /// The medium failed.
        public static let ioError = Code(rawValue: 4)
        /// The range lies outside the sub-unit.
        public static let outOfRange = Code(rawValue: 5)
        /// No space to allocate blocks.
        public static let noSpace = Code(rawValue: 6)
        /// The peer did not answer in time, is unreachable, or a replica it needed was.
        public static let unavailable = Code(rawValue: 7)
        /// The request was malformed (a protocol violation).
        public static let badRequest = Code(rawValue: 8)
        /// The receiver's replica is read-only.
        public static let readOnly = Code(rawValue: 9)

        public var description: String {
            switch self {
            case .staleEpoch: "stale epoch"
            case .notReplica: "not a replica"
            case .unknownSubUnit: "unknown sub-unit"
            case .ioError: "I/O error"
            case .outOfRange: "out of range"
            case .noSpace: "no space"
            case .unavailable: "unavailable"
            case .badRequest: "bad request"
            case .readOnly: "read-only"
            default: "code \(rawValue)"
            }
        }
    }

    public var code: Code
    /// The receiver's current epoch for the sub-unit, when it knows one (stale epoch).
    public var epoch: Epoch?
    /// Free text for logs.
    public var detail: String

    public init(_ code: Code, epoch: Epoch? = nil, detail: String = "") {
        self.code = code
        self.epoch = epoch
        self.detail = detail
    }

    public var description: String {
        "PeerFailure(\(code)\(epoch.map { ", \($0)" } ?? "")\(detail.isEmpty ? "" : ": \(detail)"))"
    }
}

/// Sends peer requests to other nodes. The implementation bounds every wait:
/// a peer that does not answer within `timeout` yields
/// `.failure(.unavailable)`, never a hang. Failures are replies, not throws.
public protocol PeerTransport: Sendable {
    func send(_ request: PeerRequest, to node: NodeID, timeout: Duration) async -> PeerReply
}

/// Answers peer requests arriving from other nodes (the peer port's server
/// calls it; in tests, the in-process network does).
public protocol PeerRequestHandler: Sendable {
    func handle(_ request: PeerRequest, from node: NodeID) async -> PeerReply
}
