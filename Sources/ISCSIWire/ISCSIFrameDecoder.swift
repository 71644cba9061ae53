import NIOCore

/// Splits a byte stream into iSCSI PDUs (RFC 7143 §11.2): BHS, AHS, optional
/// header digest, data segment padded to 4 bytes, optional data digest.
/// Pure: no channel, no allocation of data segments (they are slices of the
/// input buffer).
public struct ISCSIFrameDecoder: Sendable {
    /// The largest DataSegmentLength accepted (our MaxRecvDataSegmentLength,
    /// RFC 7143 §13.12; 8192 until login negotiates another value).
    public var maxRecvDataSegmentLength: Int
    /// HeaderDigest=CRC32C is in force (RFC 7143 §13.1).
    public var headerDigest: Bool
    /// DataDigest=CRC32C is in force (RFC 7143 §13.1).
    public var dataDigest: Bool

    /// Default MaxRecvDataSegmentLength (RFC 7143 §13.12), and the bound on
    /// every Login PDU's data segment, since the declared value takes effect
    /// only after login.
    public static let defaultMaxRecvDataSegmentLength = 8192

    public init(
        maxRecvDataSegmentLength: Int = ISCSIFrameDecoder.defaultMaxRecvDataSegmentLength,
        headerDigest: Bool = false, dataDigest: Bool = false
    ) {
        self.maxRecvDataSegmentLength = maxRecvDataSegmentLength
        self.headerDigest = headerDigest
        self.dataDigest = dataDigest
    }

    /// Decodes one PDU from the readable bytes of `buffer`, moving its reader
    /// index past it. Returns nil, with the reader index untouched, if the
    /// frame is not complete yet. Throws when the stream cannot go on.
    public mutating func decode(_ buffer: inout ByteBuffer) throws(ISCSIWireError) -> ISCSIInbound? {
        let bhsLength = PDULayout.basicHeaderSegmentLength
        guard buffer.readableBytes >= bhsLength else { return nil }
        let start = buffer.readerIndex
        let byte0 = buffer.getInteger(at: start, as: UInt8.self) ?? 0
        let opcode = byte0 & 0x3f
        // RFC 7143 §11.2.1.4: TotalAHSLength counts 4-byte words.
        let totalAHSLength = Int(buffer.getInteger(at: start + 4, as: UInt8.self) ?? 0) * 4
        // RFC 7143 §11.2.1.5: DataSegmentLength is 24 bits, excluding padding.
        let dataSegmentLength = Int((buffer.getInteger(at: start + 4, as: UInt32.self) ?? 0) & 0x00ff_ffff)

        // RFC 7143 §13.12: a PDU's data segment never exceeds the receiver's
        // MaxRecvDataSegmentLength; during login that is the 8192 default.
        let isLogin = opcode == ISCSIOpcode.loginRequest.rawValue || opcode == ISCSIOpcode.loginResponse.rawValue
        let limit = isLogin ? Self.defaultMaxRecvDataSegmentLength : maxRecvDataSegmentLength
        guard dataSegmentLength <= limit else {
            throw ISCSIWireError(
                code: .dataSegmentTooLong,
                detail: "opcode 0x\(String(opcode, radix: 16)) DataSegmentLength \(dataSegmentLength) > \(limit)")
        }

        let headerEnd = start + bhsLength + totalAHSLength
        let dataStart = headerEnd + (headerDigest ? PDULayout.digestLength : 0)
        let padding = PDULayout.padding(dataSegmentLength)
        let hasDataDigest = dataDigest && dataSegmentLength > 0
        let frameEnd = dataStart + dataSegmentLength + padding + (hasDataDigest ? PDULayout.digestLength : 0)
        guard buffer.writerIndex >= frameEnd else { return nil }

        // RFC 7143 §11.2.3 / §7.8: a header digest error means the stream
        // can no longer be parsed; the connection is dropped.
        if headerDigest {
            let expected = buffer.getInteger(at: headerEnd, endianness: .little, as: UInt32.self) ?? 0
            let actual = CRC32C.checksum(buffer, at: start, length: bhsLength + totalAHSLength)
            guard actual == expected else {
                throw ISCSIWireError(
                    code: .headerDigestMismatch,
                    detail: "opcode 0x\(String(opcode, radix: 16)) header digest 0x\(String(expected, radix: 16)), computed 0x\(String(actual, radix: 16))")
            }
        }

        // Slices share the input's storage; get* needs indices within the
        // readable bytes, so the reader index moves last.
        let bhs = buffer.getSlice(at: start, length: bhsLength) ?? ByteBuffer()
        let ahs = buffer.getSlice(at: start + bhsLength, length: totalAHSLength) ?? ByteBuffer()
        let data = buffer.getSlice(at: dataStart, length: dataSegmentLength) ?? ByteBuffer()

        // RFC 7143 §11.2.3 / §7.8: a data digest error discards the PDU and
        // answers it with Reject reason 0x02; the connection goes on.
        if hasDataDigest {
            let digestAt = dataStart + dataSegmentLength + padding
            let expected = buffer.getInteger(at: digestAt, endianness: .little, as: UInt32.self) ?? 0
            var actual = CRC32C.checksum(buffer, at: dataStart, length: dataSegmentLength)
            actual = CRC32C.checksum(buffer, at: dataStart + dataSegmentLength, length: padding, continuing: actual)
            guard actual == expected else {
                buffer.moveReaderIndex(to: frameEnd)
                return .reject(reason: RejectReason.dataDigestError, basicHeaderSegment: bhs)
            }
        }
        buffer.moveReaderIndex(to: frameEnd)

        let header = BHSReader(bytes: bhs, additionalHeaderSegments: ahs)
        do {
            if let pdu = try ISCSIPDU.decode(opcode: opcode, header: header, dataSegment: data) {
                return .pdu(pdu)
            }
        } catch {
            return .reject(reason: error.reason, basicHeaderSegment: bhs)
        }
        // RFC 7143 §11.2.1.2: undefined opcodes are a protocol error;
        // vendor-specific ones (0x1c...0x1e) are a command we do not support.
        let reason = (0x1c...0x1e).contains(opcode) ? RejectReason.commandNotSupported : RejectReason.protocolError
        return .reject(reason: reason, basicHeaderSegment: bhs)
    }
}
