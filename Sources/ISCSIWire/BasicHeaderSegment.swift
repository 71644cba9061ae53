import NIOCore

/// Sizes of the iSCSI PDU parts (RFC 7143 §11.2).
enum PDULayout {
    /// The Basic Header Segment is 48 bytes (RFC 7143 §11.2.1).
    static let basicHeaderSegmentLength = 48
    /// A header or data digest is 4 bytes (RFC 7143 §11.2.3).
    static let digestLength = 4
    /// TotalAHSLength is one byte counting 4-byte words (RFC 7143 §11.2.1.4).
    static let maxTotalAHSLength = 255 * 4
    /// DataSegmentLength is a 24-bit field (RFC 7143 §11.2.1.5).
    static let maxDataSegmentLength = (1 << 24) - 1
    /// The data segment is padded to a 4-byte boundary (RFC 7143 §11.2.4).
    @inline(__always)
    static func padding(_ length: Int) -> Int { (4 - (length & 3)) & 3 }
}

/// A field of a received PDU that makes it unusable; the PDU is answered with
/// a Reject carrying `reason` and the connection goes on.
struct PDUFieldError: Error, Hashable {
    /// The Reject reason (RFC 7143 §11.17.1).
    var reason: UInt8 = RejectReason.invalidPDUField
    /// What was wrong, for logs.
    var detail: String
}

/// Reads the fields of one received Basic Header Segment and its AHS
/// (RFC 7143 §11.2.1); the storage is shared with the receive buffer.
struct BHSReader {
    /// Buffer whose readable bytes start with the 48-byte BHS.
    let bytes: ByteBuffer
    /// The Additional Header Segments (RFC 7143 §11.2.2), empty if none.
    let additionalHeaderSegments: ByteBuffer

    @inline(__always) func u8(_ offset: Int) -> UInt8 {
        bytes.getInteger(at: bytes.readerIndex &+ offset, as: UInt8.self) ?? 0
    }
    @inline(__always) func u16(_ offset: Int) -> UInt16 {
        bytes.getInteger(at: bytes.readerIndex &+ offset, as: UInt16.self) ?? 0
    }
    @inline(__always) func u32(_ offset: Int) -> UInt32 {
        bytes.getInteger(at: bytes.readerIndex &+ offset, as: UInt32.self) ?? 0
    }
    @inline(__always) func u64(_ offset: Int) -> UInt64 {
        bytes.getInteger(at: bytes.readerIndex &+ offset, as: UInt64.self) ?? 0
    }
    @inline(__always) func bit(_ offset: Int, _ mask: UInt8) -> Bool { u8(offset) & mask != 0 }

    /// The I bit of byte 0 (RFC 7143 §11.2.1.1).
    var immediate: Bool { bit(0, 0x40) }
    /// The F bit of byte 1 (RFC 7143 §11.2.1.3).
    var final: Bool { bit(1, 0x80) }
    /// Bytes 8...15: LUN or opcode-specific (RFC 7143 §11.2.1.6).
    var lun: UInt64 { u64(8) }
    /// Bytes 16...19 (RFC 7143 §11.2.1.7).
    var initiatorTaskTag: UInt32 { u32(16) }
    /// ISID (bytes 8...13) of login PDUs (RFC 7143 §11.12.5).
    var isid: UInt64 { u64(8) >> 16 }
    /// TSIH (bytes 14...15) of login PDUs (RFC 7143 §11.12.6).
    var tsih: UInt16 { u16(14) }
}

/// Writes the fields of one outgoing Basic Header Segment in place
/// (RFC 7143 §11.2.1), then any AHS after it.
struct BHSWriter {
    /// The header buffer: BHS at `base`, then AHS.
    var buffer: ByteBuffer
    /// Index of BHS byte 0 in `buffer`.
    let base: Int

    /// Appends 48 zero bytes to `buffer` and sets the opcode. `buffer` is
    /// consumed: a caller's copy still referencing the storage would make the
    /// first write copy it (a second allocation and copy per PDU).
    init(buffer: consuming ByteBuffer, opcode: ISCSIOpcode) {
        self.base = buffer.writerIndex
        self.buffer = consume buffer
        self.buffer.writeRepeatingByte(0, count: PDULayout.basicHeaderSegmentLength)
        self.buffer.setInteger(opcode.rawValue, at: base)
    }

    @inline(__always) mutating func set(_ value: UInt8, _ offset: Int) {
        buffer.setInteger(value, at: base &+ offset)
    }
    @inline(__always) mutating func set(_ value: UInt16, _ offset: Int) {
        buffer.setInteger(value, at: base &+ offset)
    }
    @inline(__always) mutating func set(_ value: UInt32, _ offset: Int) {
        buffer.setInteger(value, at: base &+ offset)
    }
    @inline(__always) mutating func set(_ value: UInt64, _ offset: Int) {
        buffer.setInteger(value, at: base &+ offset)
    }
    /// Sets (or clears) `mask` in byte `offset`.
    @inline(__always) mutating func set(_ mask: UInt8, at offset: Int, if condition: Bool) {
        if condition {
            let old = buffer.getInteger(at: base &+ offset, as: UInt8.self) ?? 0
            buffer.setInteger(old | mask, at: base &+ offset)
        }
    }
    /// The I bit (RFC 7143 §11.2.1.1).
    mutating func setImmediate(_ immediate: Bool) { set(0x40, at: 0, if: immediate) }
    /// The F bit (RFC 7143 §11.2.1.3).
    mutating func setFinal(_ final: Bool) { set(0x80, at: 1, if: final) }
    /// ISID and TSIH of login PDUs (RFC 7143 §11.12.5, §11.12.6).
    mutating func setISID(_ isid: UInt64, tsih: UInt16) {
        set((isid << 16) | UInt64(tsih), 8)
    }

    /// Appends one AHS (RFC 7143 §11.2.2): AHSLength counts `specificAndData`
    /// after the AHS-Specific byte, plus that byte; padded to 4 bytes.
    /// Updates TotalAHSLength (byte 4).
    mutating func appendAHS(type: UInt8, specific: UInt8 = 0, data: some Collection<UInt8>) {
        let ahsLength = data.count + 1
        buffer.writeInteger(UInt16(truncatingIfNeeded: ahsLength))
        buffer.writeInteger(type)
        buffer.writeInteger(specific)
        buffer.writeBytes(data)
        buffer.writeRepeatingByte(0, count: PDULayout.padding(ahsLength + 3))
        let total = (buffer.writerIndex - base - PDULayout.basicHeaderSegmentLength) / 4
        // RFC 7143 §11.2.1.4: TotalAHSLength is one byte of 4-byte words.
        precondition(total <= 255, "AHS longer than TotalAHSLength can express")
        set(UInt8(total), 4)
    }
}
