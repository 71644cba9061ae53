/// READ DEFECT DATA parameter data (SBC-3 §5.12.2, §5.13.2): the medium has no defects.
public enum ReadDefectDataReply {
    /// A header with an empty list; PLISTV/GLISTV echo what was asked for
    /// (the lists are valid, and empty).
    public static func empty(_ r: ReadDefectData) -> [UInt8] {
        let flags = (r.requestPrimary ? 0x10 : 0) | (r.requestGrown ? 0x08 : 0) | r.format
        return r.twelve ? [0, flags, 0, 0, 0, 0, 0, 0] : [0, flags, 0, 0]
    }
}

/// GET LBA STATUS parameter data (SBC-3 §5.5.2).
public enum LBAStatusData {
    /// PROVISIONING STATUS values.
    public static let mapped: UInt8 = 0
    public static let deallocated: UInt8 = 1

    /// One 16-byte descriptor per (lba, count, status), as many as fit in `allocationLength`.
    public static func encode(_ extents: [(lba: UInt64, count: UInt32, status: UInt8)]) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 8)
        for e in extents {
            var d = [UInt8](repeating: 0, count: 16)
            d.put64(e.lba, at: 0)
            d.put32(e.count, at: 8)
            d[12] = e.status & 0x0F
            b += d
        }
        b.put32(UInt32(b.count - 4), at: 0)
        return b
    }
}

/// The SANITIZE OVERWRITE parameter list (SBC-3 §5.21.3, table 91).
public struct SanitizeOverwrite: Hashable, Sendable {
    /// INVERT: invert the pattern between passes.
    public var invert: Bool
    /// OVERWRITE COUNT (1-31).
    public var count: UInt8
    /// INITIALIZATION PATTERN.
    public var pattern: [UInt8]

    /// Decodes the list: PARAMETER LIST LENGTH must be 5 … block size + 4, OVERWRITE
    /// COUNT nonzero, INITIALIZATION PATTERN LENGTH 1 … block size and matching the list
    /// (SBC-3 §5.21.3: each violation → INVALID FIELD IN CDB / PARAMETER LIST).
    public static func decode(_ b: [UInt8], parameterListLength: Int, blockSize: Int) throws(SenseData)
        -> SanitizeOverwrite
    {
        guard parameterListLength > 4, parameterListLength <= blockSize + 4 else {
            throw SenseData.invalidField(byte: 7)
        }
        guard b.count >= parameterListLength else { throw SenseData(.parameterListLengthError) }
        let count = b[0] & 0x1F
        if count == 0 { throw SenseData.invalidParameter(byte: 0, bit: 4) }
        // TEST (bits 6:5) must be 00b.
        if b[0] & 0x60 != 0 { throw SenseData.invalidParameter(byte: 0, bit: 6) }
        let length = Int(b.be16(2))
        guard length > 0, length <= blockSize, 4 + length <= parameterListLength else {
            throw SenseData.invalidParameter(byte: 2)
        }
        return SanitizeOverwrite(invert: b[0] & 0x80 != 0, count: count, pattern: Array(b[4..<(4 + length)]))
    }
}
