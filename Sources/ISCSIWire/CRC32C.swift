import CCRC32C
import NIOCore

/// CRC32C digests for iSCSI (RFC 7143 §13.1, RFC 3720 Appendix B.4),
/// through the SSE4.2 or table implementation of `CCRC32C`.
enum CRC32C {
    /// CRC32C of `length` bytes of `buffer` from absolute index `index`,
    /// continuing from `crc` (0 to start).
    @inline(__always)
    static func checksum(_ buffer: ByteBuffer, at index: Int, length: Int, continuing crc: UInt32 = 0) -> UInt32 {
        guard length > 0 else { return crc }
        return buffer.withUnsafeReadableBytes { bytes -> UInt32 in
            guard let base = bytes.baseAddress else { return crc }
            return tessera_crc32c(crc, base + (index - buffer.readerIndex), length)
        }
    }

    /// CRC32C of `padding` zero bytes continuing from `crc`.
    @inline(__always)
    static func zeroPadding(_ padding: Int, continuing crc: UInt32) -> UInt32 {
        guard padding > 0 else { return crc }
        var zeros: UInt32 = 0
        return withUnsafeBytes(of: &zeros) { tessera_crc32c(crc, $0.baseAddress, padding) }
    }
}
