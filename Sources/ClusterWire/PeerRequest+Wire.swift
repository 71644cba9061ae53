import BlockStorage
import ClusterModel
import NIOCore

/// Request bodies: `UInt8 kind | kind fields`.
///
///     io fields    (read, unmap, replicateUnmap, allocation):
///                  UInt64 lun | UInt32 subUnitIndex | UInt64 epoch | UInt64 lba | UInt32 blockCount
///     write fields (write, replicate, compareAndWrite):
///                  io fields | UInt8 flags (bit 0 = FUA) | UInt32 dataLength | dataLength bytes
///     flush, activityLog: UInt64 lun
///     contextChange: UInt64 lun | UInt32 payloadLength | payloadLength bytes
///     ping: nothing
extension PeerRequest {
    var wireBodyLength: Int {
        switch self {
        case .read, .unmap, .replicateUnmap, .allocation: 1 + PeerIO.wireLength
        case .write(let write), .replicate(let write), .compareAndWrite(let write): 1 + write.wireLength
        case .flush, .activityLog: 1 + 8
        case .contextChange(_, let payload): 1 + 8 + 4 + payload.count
        case .ping: 1
        }
    }

    func encodeBody(into buffer: inout ByteBuffer) {
        buffer.writeInteger(kind.rawValue)
        switch self {
        case .read(let io), .unmap(let io), .replicateUnmap(let io), .allocation(let io):
            io.encode(into: &buffer)
        case .write(let write), .replicate(let write), .compareAndWrite(let write):
            write.encode(into: &buffer)
        case .flush(let lun), .activityLog(let lun):
            buffer.writeInteger(lun.rawValue)
        case .contextChange(let lun, let payload):
            buffer.writeInteger(lun.rawValue)
            buffer.writeInteger(UInt32(payload.count))
            buffer.writeBytes(payload)
        case .ping:
            break
        }
    }

    init(decodingBody body: inout ByteBuffer) throws(PeerWireError) {
        let rawKind = try body.readPeerField(UInt8.self, "request kind")
        guard let kind = PeerRequestKind(rawValue: rawKind) else {
            throw PeerWireError(.unknownKind, "request kind \(rawKind)")
        }
        switch kind {
        case .read: self = .read(try PeerIO(decoding: &body))
        case .write: self = .write(try PeerWrite(decoding: &body))
        case .replicate: self = .replicate(try PeerWrite(decoding: &body))
        case .unmap: self = .unmap(try PeerIO(decoding: &body))
        case .replicateUnmap: self = .replicateUnmap(try PeerIO(decoding: &body))
        case .compareAndWrite: self = .compareAndWrite(try PeerWrite(decoding: &body))
        case .allocation: self = .allocation(try PeerIO(decoding: &body))
        case .flush: self = .flush(LUNID(try body.readPeerField(UInt64.self, "flush lun")))
        case .activityLog: self = .activityLog(LUNID(try body.readPeerField(UInt64.self, "activity log lun")))
        case .ping: self = .ping
        case .contextChange:
            let lun = LUNID(try body.readPeerField(UInt64.self, "context lun"))
            let length = Int(try body.readPeerField(UInt32.self, "context payload length"))
            guard let payload = body.readBytes(length: length) else {
                throw PeerWireError(.malformed, "context payload of \(length) bytes")
            }
            self = .contextChange(lun, payload: payload)
        }
    }
}

extension PeerIO {
    static let wireLength = 8 + 4 + 8 + 8 + 4

    func encode(into buffer: inout ByteBuffer) {
        buffer.writeInteger(subUnit.lun.rawValue)
        buffer.writeInteger(subUnit.index)
        buffer.writeInteger(epoch.rawValue)
        buffer.writeInteger(lba)
        buffer.writeInteger(blockCount)
    }

    init(decoding body: inout ByteBuffer) throws(PeerWireError) {
        let lun = LUNID(try body.readPeerField(UInt64.self, "lun"))
        let index = try body.readPeerField(UInt32.self, "subUnitIndex")
        let epoch = Epoch(try body.readPeerField(UInt64.self, "epoch"))
        let lba = try body.readPeerField(UInt64.self, "lba")
        let blockCount = try body.readPeerField(UInt32.self, "blockCount")
        self.init(subUnit: SubUnitID(lun: lun, index: index), epoch: epoch, lba: lba, blockCount: blockCount)
    }
}

extension PeerWrite {
    /// Flags bit 0: force unit access. The other bits are reserved and must be
    /// zero (a later protocol version that defines them negotiates that in hello).
    static let fuaFlag: UInt8 = 0x01

    /// The bytes that go on the wire: `length` bytes from `offset`.
    var payloadLength: Int { length }

    var wireLength: Int { PeerIO.wireLength + 1 + 4 + payloadLength }

    func encode(into buffer: inout ByteBuffer) {
        io.encode(into: &buffer)
        buffer.writeInteger(fua ? Self.fuaFlag : 0)
        buffer.writePeerData(data, offset: offset, count: payloadLength)
    }

    init(decoding body: inout ByteBuffer) throws(PeerWireError) {
        let io = try PeerIO(decoding: &body)
        let flags = try body.readPeerField(UInt8.self, "write flags")
        guard flags & ~Self.fuaFlag == 0 else {
            throw PeerWireError(.malformed, "reserved write flags 0x\(String(flags, radix: 16))")
        }
        let data = try body.readPeerData("write dataLength")
        self.init(io: io, fua: flags & Self.fuaFlag != 0, data: data, offset: 0)
    }
}
