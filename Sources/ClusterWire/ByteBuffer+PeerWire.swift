import BlockStorage
import NIOCore

/// Field readers for the peer codec: each names the field it reads, so a
/// truncated frame reports which field was missing.
extension ByteBuffer {
    mutating func readPeerField<T: FixedWidthInteger>(_: T.Type, _ field: StaticString) throws(PeerWireError) -> T {
        guard let value = readInteger(as: T.self) else {
            throw PeerWireError(.malformed, "truncated \(field)")
        }
        return value
    }

    /// A boolean byte: 0 or 1, anything else is malformed (one encoding per value).
    mutating func readPeerBool(_ field: StaticString) throws(PeerWireError) -> Bool {
        switch try readPeerField(UInt8.self, field) {
        case 0: return false
        case 1: return true
        case let other: throw PeerWireError(.malformed, "\(field) is \(other), not 0 or 1")
        }
    }

    /// A UInt16-length-prefixed UTF-8 string of at most ``PeerFrame/maxTextLength`` bytes.
    mutating func readPeerText(_ field: StaticString) throws(PeerWireError) -> String {
        let length = Int(try readPeerField(UInt16.self, field))
        guard length <= PeerFrame.maxTextLength else {
            throw PeerWireError(.oversized, "\(field) length \(length) > \(PeerFrame.maxTextLength)")
        }
        guard readableBytes >= length else {
            throw PeerWireError(.malformed, "truncated \(field): \(length) bytes declared, \(readableBytes) left")
        }
        let text = withUnsafeReadableBytes { String(validating: $0[..<length], as: UTF8.self) }
        guard let text else { throw PeerWireError(.malformed, "\(field) is not UTF-8") }
        moveReaderIndex(forwardBy: length)
        return text
    }

    /// Writes `text` as a UInt16 length and its UTF-8 bytes, cut at a scalar
    /// boundary to ``PeerFrame/maxTextLength`` bytes (the text is for logs).
    mutating func writePeerText(_ text: String) {
        let length = PeerFrame.encodedTextLength(text)
        writeInteger(UInt16(length))
        writeBytes(text.utf8.prefix(length))
    }

    /// A UInt32-length-prefixed payload, copied once into a fresh aligned
    /// buffer (the copy O_DIRECT needs anyway).
    mutating func readPeerData(_ field: StaticString) throws(PeerWireError) -> IOBuffer {
        let length = Int(try readPeerField(UInt32.self, field))
        guard readableBytes >= length else {
            throw PeerWireError(.malformed, "\(field) length \(length) > \(readableBytes) bytes left in the frame")
        }
        let data = IOBuffer(count: length)
        withUnsafeReadableBytes { source in
            data.bytes.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[..<length]))
        }
        moveReaderIndex(forwardBy: length)
        return data
    }

    /// Writes a UInt32 length and `count` bytes of `data` from `offset` (one copy).
    mutating func writePeerData(_ data: IOBuffer, offset: Int, count: Int) {
        precondition(offset >= 0 && count >= 0 && offset <= data.count - count, "payload outside its IOBuffer")
        writeInteger(UInt32(count))
        writeBytes(UnsafeRawBufferPointer(rebasing: data.bytes[offset..<(offset + count)]))
    }
}
