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

extension CRC32C {
    /// `tessera_crc32c` over raw bytes (the dispatching entry point).
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        tessera_crc32c(crc, bytes.baseAddress, bytes.count)
    }
    /// The portable slicing-by-8 implementation, for tests.
    static func portable(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        tessera_crc32c_portable(crc, bytes.baseAddress, bytes.count)
    }
    /// The SSE4.2 implementation (portable when unavailable), for tests.
    static func hardware(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = 0) -> UInt32 {
        tessera_crc32c_hardware(crc, bytes.baseAddress, bytes.count)
    }
    /// Whether the SSE4.2 path is in use.
    static var hardwareAvailable: Bool { tessera_crc32c_hardware_available() != 0 }
}
