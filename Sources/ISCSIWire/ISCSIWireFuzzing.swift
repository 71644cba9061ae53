import NIOCore

/// Entry point for a fuzzer (a libFuzzer `LLVMFuzzerTestOneInput` shim in
/// Tools/ calls it): decodes arbitrary bytes under every digest setting and
/// checks that each decoded PDU re-encodes to a frame that decodes to the
/// same PDU. Never traps on its own; returns false on an inconsistency.
public enum ISCSIWireFuzzing {
    public static func decodeAndReencode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        for (headerDigest, dataDigest) in [(false, false), (true, false), (false, true), (true, true)] {
            var buffer = ByteBuffer(bytes: bytes)
            var decoder = ISCSIFrameDecoder(
                maxRecvDataSegmentLength: 1 << 16, headerDigest: headerDigest, dataDigest: dataDigest)
            let encoder = ISCSIFrameEncoder(headerDigest: headerDigest, dataDigest: dataDigest)
            while true {
                let before = buffer.readerIndex
                guard let inbound = try? decoder.decode(&buffer) else { break }
                guard buffer.readerIndex > before else { return false }
                guard case .pdu(let pdu) = inbound else { continue }
                var again = ByteBuffer()
                encoder.encode(pdu, into: &again)
                guard (try? decoder.decode(&again)) == .pdu(pdu), again.readableBytes == 0 else { return false }
            }
        }
        return true
    }
}
