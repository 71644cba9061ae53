import NIOCore

/// One encoded PDU in up to three buffers, written in this order: `header`
/// (BHS, AHS, header digest), `data` (the PDU's data segment itself, not
/// copied), `trailer` (padding and data digest). `header` and `trailer`
/// share one allocation.
public struct ISCSIEncodedFrame: Sendable {
    /// BHS + AHS + optional header digest.
    public var header: ByteBuffer
    /// The data segment, nil if empty.
    public var data: ByteBuffer?
    /// Padding to 4 bytes + optional data digest, nil if neither.
    public var trailer: ByteBuffer?
}

/// Turns PDUs into bytes (RFC 7143 §11.2). Pure; digests switch on with
/// the two flags once login completes.
public struct ISCSIFrameEncoder: Sendable {
    /// Append a CRC32C header digest (RFC 7143 §13.1).
    public var headerDigest: Bool
    /// Append a CRC32C data digest to non-empty data segments (RFC 7143 §13.1).
    public var dataDigest: Bool

    public init(headerDigest: Bool = false, dataDigest: Bool = false) {
        self.headerDigest = headerDigest
        self.dataDigest = dataDigest
    }

    /// Encodes `pdu` without copying its data segment.
    public func encodeFrame(_ pdu: ISCSIPDU, allocator: ByteBufferAllocator) -> ISCSIEncodedFrame {
        let data = pdu.dataSegment
        let dataLength = data.readableBytes
        // RFC 7143 §11.2.1.5: DataSegmentLength is 24 bits. Callers split
        // data by MaxRecvDataSegmentLength, so a longer one is our bug.
        precondition(dataLength <= PDULayout.maxDataSegmentLength, "data segment longer than 2^24-1")
        let padding = PDULayout.padding(dataLength)
        let hasDataDigest = dataDigest && dataLength > 0
        let trailerLength = padding + (hasDataDigest ? PDULayout.digestLength : 0)

        var writer = BHSWriter(
            buffer: allocator.buffer(
                capacity: PDULayout.basicHeaderSegmentLength + PDULayout.digestLength + trailerLength),
            opcode: pdu.opcode)
        pdu.encodeHeader(into: &writer)
        writer.set(
            UInt32(dataLength) | (UInt32(writer.buffer.getInteger(at: writer.base + 4, as: UInt8.self) ?? 0) << 24), 4)
        let base = writer.base
        // Moved out of the writer, so the digest and padding writes below do
        // not find the storage shared and copy it.
        var buffer = (consume writer).buffer
        if headerDigest {
            let crc = CRC32C.checksum(buffer, at: base, length: buffer.writerIndex - base)
            buffer.writeInteger(crc, endianness: .little)
        }
        let headerEnd = buffer.writerIndex
        if trailerLength > 0 {
            buffer.writeRepeatingByte(0, count: padding)
            if hasDataDigest {
                var crc = CRC32C.checksum(data, at: data.readerIndex, length: dataLength)
                crc = CRC32C.zeroPadding(padding, continuing: crc)
                buffer.writeInteger(crc, endianness: .little)
            }
        }
        let header = buffer.getSlice(at: base, length: headerEnd - base) ?? ByteBuffer()
        let trailer = trailerLength > 0 ? buffer.getSlice(at: headerEnd, length: trailerLength) : nil
        return ISCSIEncodedFrame(header: header, data: dataLength > 0 ? data : nil, trailer: trailer)
    }

    /// Encodes `pdu` as a header buffer and a data buffer (data segment,
    /// padding, digest). The data segment is not copied unless it needs
    /// padding or a digest appended; `encodeFrame` never copies.
    public func encode(_ pdu: ISCSIPDU, allocator: ByteBufferAllocator) -> (header: ByteBuffer, data: ByteBuffer?) {
        let frame = encodeFrame(pdu, allocator: allocator)
        guard var data = frame.data else { return (frame.header, nil) }
        if var trailer = frame.trailer {
            data.writeBuffer(&trailer)
        }
        return (frame.header, data)
    }

    /// Appends the whole encoded frame of `pdu` to `buffer` (tests, small PDUs).
    public func encode(_ pdu: ISCSIPDU, into buffer: inout ByteBuffer) {
        let frame = encodeFrame(pdu, allocator: ByteBufferAllocator())
        var header = frame.header
        buffer.writeBuffer(&header)
        if var data = frame.data { buffer.writeBuffer(&data) }
        if var trailer = frame.trailer { buffer.writeBuffer(&trailer) }
    }
}
