/// One UNMAP block descriptor (SBC-3 §5.28.2).
public struct UnmapBlockDescriptor: Hashable, Sendable {
    public var lba: UInt64
    public var blockCount: UInt32
}

/// UNMAP parameter list decoding (SBC-3 §5.28.2).
public enum UnmapParameterList {
    /// Decodes `bytes` (already cut to PARAMETER LIST LENGTH). A truncated last
    /// descriptor is ignored; more than `maximumDescriptors` → INVALID FIELD IN
    /// PARAMETER LIST; fewer than 8 bytes → PARAMETER LIST LENGTH ERROR.
    public static func decode(_ bytes: [UInt8], maximumDescriptors: Int) throws(SenseData) -> [UnmapBlockDescriptor] {
        guard bytes.count >= 8 else { throw SenseData(.parameterListLengthError) }
        let descriptorBytes = min(Int(bytes.be16(2)), bytes.count - 8)
        let count = descriptorBytes / 16
        if count > maximumDescriptors { throw SenseData.invalidParameter(byte: 2) }
        return (0..<count).map { i in
            UnmapBlockDescriptor(lba: bytes.be64(8 + 16 * i), blockCount: bytes.be32(16 + 16 * i))
        }
    }
}
