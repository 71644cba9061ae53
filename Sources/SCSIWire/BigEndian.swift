// Big-endian field access for CDBs and parameter data (SPC-4 §3.5.1: all
// multi-byte fields are big-endian). Callers check lengths first.

extension Array where Element == UInt8 {
    @inlinable func be16(_ i: Int) -> UInt16 { UInt16(self[i]) << 8 | UInt16(self[i + 1]) }
    @inlinable func be24(_ i: Int) -> UInt32 { UInt32(self[i]) << 16 | UInt32(self[i + 1]) << 8 | UInt32(self[i + 2]) }
    @inlinable func be32(_ i: Int) -> UInt32 {
        UInt32(self[i]) << 24 | UInt32(self[i + 1]) << 16 | UInt32(self[i + 2]) << 8 | UInt32(self[i + 3])
    }
    @inlinable func be64(_ i: Int) -> UInt64 { UInt64(be32(i)) << 32 | UInt64(be32(i + 4)) }

    @inlinable mutating func put16(_ v: UInt16, at i: Int) {
        self[i] = UInt8(truncatingIfNeeded: v >> 8)
        self[i + 1] = UInt8(truncatingIfNeeded: v)
    }
    @inlinable mutating func put32(_ v: UInt32, at i: Int) {
        for k in 0..<4 { self[i + k] = UInt8(truncatingIfNeeded: v >> (24 - 8 * k)) }
    }
    @inlinable mutating func put64(_ v: UInt64, at i: Int) {
        for k in 0..<8 { self[i + k] = UInt8(truncatingIfNeeded: v >> (56 - 8 * k)) }
    }
    /// Writes `text` space-padded/truncated to `width` bytes at `i` (SPC-4 §4.3.1 ASCII fields).
    @inlinable mutating func putASCII(_ text: String, at i: Int, width: Int) {
        var utf8 = text.utf8.makeIterator()
        for k in 0..<width {
            let c = utf8.next() ?? 0x20
            self[i + k] = (c >= 0x20 && c < 0x7F) ? c : 0x20
        }
    }
}
