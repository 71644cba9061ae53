import NIOCore

/// Entry point for a fuzzer (a libFuzzer `LLVMFuzzerTestOneInput` shim in
/// Tools/fuzz calls it): cuts arbitrary bytes into dqlite frames and decodes
/// each as a response (what the client reads from a node) and as a request
/// (what the test servers read). A frame must re-encode to the bytes it was
/// read from; a decoded message must re-encode to a frame that decodes to a
/// message with the same encoding (compared as bytes, since a float value
/// may be a NaN). Never traps on its own; returns false on an inconsistency.
public enum DqliteWireFuzzing {
    public static func decodeFrames(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var buffer = ByteBuffer(bytes: bytes)
        while true {
            let before = buffer
            let frame: DqliteFrame
            do {
                guard let decoded = try DqliteFrame.decode(from: &buffer) else {
                    return buffer.readerIndex == before.readerIndex
                }
                frame = decoded
            } catch {
                return buffer.readerIndex == before.readerIndex
            }
            var again = ByteBuffer()
            frame.encode(into: &again)
            // The header's two unused bytes are not kept; everything else is.
            guard again.readableBytes == buffer.readerIndex - before.readerIndex,
                again.getSlice(at: 0, length: 6) == before.getSlice(at: before.readerIndex, length: 6),
                again.getSlice(at: 8, length: again.readableBytes - 8)
                    == before.getSlice(at: before.readerIndex + 8, length: again.readableBytes - 8)
            else { return false }
            if let response = try? DqliteResponse(frame: frame) {
                guard reencodes(response.frame(), as: { frame throws(DqliteWireError) in try DqliteResponse(frame: frame).frame() })
                else { return false }
            }
            if let request = try? DqliteRequest(frame: frame) {
                guard let encoded = try? request.frame(),
                    reencodes(encoded, as: { frame throws(DqliteWireError) in try DqliteRequest(frame: frame).frame() })
                else { return false }
            }
        }
    }

    /// `frame`, sent and decoded with `decode` (which re-encodes what it got), gives the same bytes.
    private static func reencodes(
        _ frame: DqliteFrame, as decode: (DqliteFrame) throws(DqliteWireError) -> DqliteFrame
    ) -> Bool {
        var sent = ByteBuffer()
        frame.encode(into: &sent)
        var received = sent
        guard let read = try? DqliteFrame.decode(from: &received), received.readableBytes == 0,
            let decoded = try? decode(read)
        else { return false }
        var resent = ByteBuffer()
        decoded.encode(into: &resent)
        return resent == sent
    }
}
