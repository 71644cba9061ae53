import BlockStorage
import ClusterModel
import NIOCore

@testable import ClusterWire

/// Bytes from a hex string; spaces are ignored.
func hexBytes(_ text: String) -> [UInt8] {
    let digits = Array(text.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

func hex(_ bytes: some Sequence<UInt8>) -> String {
    let digits = Array("0123456789abcdef")
    return String(bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 0x0f)]] })
}

func encoded(_ frame: PeerFrame) -> ByteBuffer {
    var buffer = ByteBuffer()
    frame.encode(into: &buffer)
    return buffer
}

func encodedBytes(_ frame: PeerFrame) -> [UInt8] {
    Array(encoded(frame).readableBytesView)
}

func ioBuffer(_ bytes: [UInt8]) -> IOBuffer { IOBuffer(bytes: bytes) }

/// A field-by-field description of a frame that does not use the codec, so
/// a round trip can be compared without trusting the encoder.
func describe(_ frame: PeerFrame) -> String {
    switch frame {
    case .hello(let hello): "hello(\(hello.minVersion)...\(hello.maxVersion), \(hello.nodeID))"
    case .helloAck(let ack): "helloAck(\(ack.version), \(ack.nodeID))"
    case .request(let id, let request): "request(\(id), \(describe(request)))"
    case .reply(let id, let reply): "reply(\(id), \(describe(reply)))"
    case .error(let error): "error(\(error.requestID), \(error.code.rawValue), \(error.message))"
    }
}

func describe(_ request: PeerRequest) -> String {
    func io(_ io: PeerIO) -> String { "\(io.subUnit) \(io.epoch) lba \(io.lba) count \(io.blockCount)" }
    func write(_ write: PeerWrite) -> String {
        "\(io(write.io)) fua \(write.fua) data \(hex(write.data.array(write.offset..<write.data.count)))"
    }
    return switch request {
    case .read(let x): "read \(io(x))"
    case .write(let x): "write \(write(x))"
    case .replicate(let x): "replicate \(write(x))"
    case .unmap(let x): "unmap \(io(x))"
    case .replicateUnmap(let x): "replicateUnmap \(io(x))"
    case .compareAndWrite(let x): "compareAndWrite \(write(x))"
    case .allocation(let x): "allocation \(io(x))"
    case .flush(let lun): "flush \(lun)"
    case .contextChange(let lun, let payload): "contextChange \(lun) \(payload)"
    case .activityLog(let lun): "activityLog \(lun)"
    case .ping: "ping"
    }
}

func describe(_ reply: PeerReply) -> String {
    switch reply {
    case .done: "done"
    case .data(let data): "data \(hex(data.array()))"
    case .miscompare(let offset): "miscompare \(offset)"
    case .extents(let extents): "extents \(extents.map { "\($0.lba)+\($0.blockCount)/\($0.mapped)" })"
    case .failure(let failure):
        "failure \(failure.code.rawValue) \(failure.epoch.map { "\($0)" } ?? "-") \(failure.detail)"
    }
}

extension PeerInbound {
    var frame: PeerFrame? {
        if case .frame(let frame) = self { return frame }
        return nil
    }
}

/// A small deterministic generator (SplitMix64) for fuzz-style tests.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
