import NIOCore

/// Entry point for a fuzzer (a libFuzzer `LLVMFuzzerTestOneInput` shim in
/// Tools/ can call it): decodes arbitrary bytes frame by frame and checks
/// that every decoded frame re-encodes to exactly the bytes it came from
/// (the codec accepts one encoding per value). Never traps on its own;
/// returns false on an inconsistency.
public enum PeerWireFuzzing {
    public static func decodeAndReencode(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var buffer = ByteBuffer(bytes: bytes)
        let decoder = PeerFrameDecoder()
        while true {
            let before = buffer.readerIndex
            let original = buffer
            let inbound: PeerInbound?
            do {
                inbound = try decoder.decode(&buffer)
            } catch {
                return buffer.readerIndex == before
            }
            guard let inbound else { return buffer.readerIndex == before }
            guard buffer.readerIndex > before else { return false }
            guard case .frame(let frame) = inbound else { continue }
            guard (try? frame.checkEncodable()) != nil else { return false }
            var again = ByteBuffer()
            frame.encode(into: &again)
            guard again.readableBytes == frame.encodedLength,
                again == original.getSlice(at: before, length: buffer.readerIndex - before)
            else { return false }
        }
    }
}
