import BlockStorage
import ClusterModel
import NIOCore

/// Reply bodies: `UInt8 status | status fields`.
///
///     0 done
///     1 data        UInt32 n | n bytes
///     2 miscompare  UInt32 offset
///     3 extents     UInt32 count | count × (UInt64 lba | UInt64 blockCount | UInt8 mapped)
///     4 failure     UInt8 code | UInt8 hasEpoch | UInt64 epoch | UInt16 n | n bytes UTF-8 detail
enum PeerReplyStatus: UInt8, CaseIterable {
    case done = 0
    case data = 1
    case miscompare = 2
    case extents = 3
    case failure = 4
}

extension PeerReply {
    static let extentWireLength = 8 + 8 + 1

    var status: PeerReplyStatus {
        switch self {
        case .done: .done
        case .data: .data
        case .miscompare: .miscompare
        case .extents: .extents
        case .failure: .failure
        }
    }

    var wireBodyLength: Int {
        switch self {
        case .done: 1
        case .data(let data): 1 + 4 + data.count
        case .miscompare: 1 + 4
        case .extents(let extents): 1 + 4 + extents.count * Self.extentWireLength
        case .failure(let failure): 1 + 1 + 1 + 8 + 2 + PeerFrame.encodedTextLength(failure.detail)
        }
    }

    func encodeBody(into buffer: inout ByteBuffer) {
        buffer.writeInteger(status.rawValue)
        switch self {
        case .done:
            break
        case .data(let data):
            buffer.writePeerData(data, offset: 0, count: data.count)
        case .miscompare(let offset):
            buffer.writeInteger(offset)
        case .extents(let extents):
            buffer.writeInteger(UInt32(extents.count))
            for extent in extents {
                buffer.writeInteger(extent.lba)
                buffer.writeInteger(extent.blockCount)
                buffer.writeInteger(extent.mapped ? 1 : 0 as UInt8)
            }
        case .failure(let failure):
            buffer.writeInteger(failure.code.rawValue)
            buffer.writeInteger(failure.epoch == nil ? 0 : 1 as UInt8)
            buffer.writeInteger(failure.epoch?.rawValue ?? 0)
            buffer.writePeerText(failure.detail)
        }
    }

    init(decodingBody body: inout ByteBuffer) throws(PeerWireError) {
        let rawStatus = try body.readPeerField(UInt8.self, "reply status")
        guard let status = PeerReplyStatus(rawValue: rawStatus) else {
            throw PeerWireError(.malformed, "reply status \(rawStatus)")
        }
        switch status {
        case .done:
            self = .done
        case .data:
            self = .data(try body.readPeerData("reply data length"))
        case .miscompare:
            self = .miscompare(offset: try body.readPeerField(UInt32.self, "miscompare offset"))
        case .extents:
            let count = Int(try body.readPeerField(UInt32.self, "extent count"))
            guard count <= PeerFrame.maxExtents else {
                throw PeerWireError(.oversized, "\(count) extents > \(PeerFrame.maxExtents)")
            }
            // Checked before the array is reserved: the count cannot commit
            // more memory than the frame's bytes justify.
            guard count * Self.extentWireLength <= body.readableBytes else {
                throw PeerWireError(.malformed, "\(count) extents do not fit in \(body.readableBytes) bytes")
            }
            var extents: [BlockExtent] = []
            extents.reserveCapacity(count)
            for _ in 0..<count {
                let lba = try body.readPeerField(UInt64.self, "extent lba")
                let blockCount = try body.readPeerField(UInt64.self, "extent blockCount")
                let mapped = try body.readPeerBool("extent mapped")
                extents.append(BlockExtent(lba: lba, blockCount: blockCount, mapped: mapped))
            }
            self = .extents(extents)
        case .failure:
            let code = PeerFailure.Code(rawValue: try body.readPeerField(UInt8.self, "failure code"))
            let hasEpoch = try body.readPeerBool("failure hasEpoch")
            let rawEpoch = try body.readPeerField(UInt64.self, "failure epoch")
            // One encoding per value: without an epoch the field is zero.
            guard hasEpoch || rawEpoch == 0 else {
                throw PeerWireError(.malformed, "failure epoch \(rawEpoch) with hasEpoch 0")
            }
            let detail = try body.readPeerText("failure detail")
            self = .failure(PeerFailure(code, epoch: hasEpoch ? Epoch(rawEpoch) : nil, detail: detail))
        }
    }
}
