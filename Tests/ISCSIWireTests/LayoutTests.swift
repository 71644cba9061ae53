import NIOCore
import Testing

@testable import ISCSIWire

/// Byte-exact checks against layouts written out by hand from RFC 7143 §11.
@Suite struct LayoutTests {
    func encoded(_ pdu: ISCSIPDU, headerDigest: Bool = false, dataDigest: Bool = false) -> [UInt8] {
        var out = ByteBuffer()
        ISCSIFrameEncoder(headerDigest: headerDigest, dataDigest: dataDigest).encode(pdu, into: &out)
        return Array(out.readableBytesView)
    }

    /// RFC 3720 Appendix B.4: the "iSCSI - Read (10) Command PDU" vector.
    static let rfcReadCommand: [UInt8] = [
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ]

    @Test func scsiReadCommandMatchesRFC3720B4() throws {
        let pdu = ISCSIPDU.scsiCommand(
            SCSICommandPDU(
                final: true, read: true, initiatorTaskTag: 0x1400_0000, expectedDataTransferLength: 0x400,
                cmdSN: 0x14, expStatSN: 0x18, cdb: [0x28, 0, 0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0]))
        #expect(encoded(pdu) == Self.rfcReadCommand)
        // RFC 3720 B.4 gives the CRC of this PDU as 56 3a 96 d9 on the wire.
        #expect(encoded(pdu, headerDigest: true) == Self.rfcReadCommand + [0x56, 0x3a, 0x96, 0xd9])

        var stream = buffer(Self.rfcReadCommand + [0x56, 0x3a, 0x96, 0xd9])
        var decoder = ISCSIFrameDecoder(headerDigest: true)
        #expect(try decoder.decode(&stream) == .pdu(pdu))
    }

    @Test func loginResponseLayout() {
        let pdu = ISCSIPDU.loginResponse(
            LoginResponsePDU(
                transit: true, currentStage: .loginOperationalNegotiation, nextStage: .fullFeaturePhase,
                isid: 0x0002_3d00_0001, tsih: 1, initiatorTaskTag: 0x0a, statSN: 0x10, expCmdSN: 0x20,
                maxCmdSN: 0x40, statusClass: 0x02, statusDetail: 0x01, dataSegment: buffer(Array("A=B\0".utf8))))
        let expected: [UInt8] = [
            0x23, 0x87, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04,
            0x00, 0x02, 0x3d, 0x00, 0x00, 0x01, 0x00, 0x01,
            0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x20,
            0x00, 0x00, 0x00, 0x40, 0x02, 0x01, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x41, 0x3d, 0x42, 0x00,
        ]
        #expect(encoded(pdu) == expected)
    }

    @Test func loginRequestSetsImmediateBit() {
        let bytes = encoded(
            .loginRequest(
                LoginRequestPDU(
                    transit: true, currentStage: .securityNegotiation, nextStage: .loginOperationalNegotiation,
                    isid: 0x8000_0000_0001, cid: 0x0203)))
        #expect(Array(bytes[0..<2]) == [0x43, 0x81])
        #expect(Array(bytes[8..<16]) == [0x80, 0, 0, 0, 0, 0x01, 0, 0])
        #expect(Array(bytes[20..<22]) == [0x02, 0x03])
    }

    @Test func dataInWithStatusAndPadding() {
        let pdu = ISCSIPDU.dataIn(
            DataInPDU(
                final: true, residualUnderflow: true, statusPresent: true, status: 0,
                lun: 0x0001_0000_0000_0000, initiatorTaskTag: 0x1122_3344, targetTransferTag: 0xffff_ffff,
                statSN: 5, expCmdSN: 6, maxCmdSN: 7, dataSN: 8, bufferOffset: 0x200, residualCount: 0x10,
                dataSegment: buffer([1, 2, 3, 4, 5])))
        let expected: [UInt8] = [
            0x25, 0x83, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05,
            0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x11, 0x22, 0x33, 0x44, 0xff, 0xff, 0xff, 0xff,
            0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x06,
            0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08,
            0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x10,
            0x01, 0x02, 0x03, 0x04, 0x05, 0x00, 0x00, 0x00,
        ]
        #expect(encoded(pdu) == expected)
        // The data digest covers the data and its padding (RFC 7143 §11.2.3).
        let withDigest = encoded(pdu, dataDigest: true)
        let crc = [UInt8]([1, 2, 3, 4, 5, 0, 0, 0]).withUnsafeBytes { CRC32C.checksum($0) }
        #expect(
            Array(withDigest[56...]) == [
                UInt8(crc & 0xff), UInt8(crc >> 8 & 0xff), UInt8(crc >> 16 & 0xff), UInt8(crc >> 24),
            ])
    }

    @Test func r2tLayout() {
        let bytes = encoded(
            .r2t(
                R2TPDU(
                    lun: 0x0001_0000_0000_0000, initiatorTaskTag: 1, targetTransferTag: 2, statSN: 3, expCmdSN: 4,
                    maxCmdSN: 5, r2tSN: 6, bufferOffset: 7, desiredDataTransferLength: 8)))
        let expected: [UInt8] = [
            0x31, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02,
            0x00, 0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x04,
            0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x06,
            0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00, 0x08,
        ]
        #expect(bytes == expected)
    }

    @Test func rejectLayout() {
        let rejected = [UInt8](repeating: 0xaa, count: 48)
        let bytes = encoded(
            .reject(
                RejectPDU(
                    reason: RejectReason.invalidPDUField, statSN: 1, expCmdSN: 2, maxCmdSN: 3,
                    dataSegment: buffer(rejected))))
        #expect(Array(bytes[0..<8]) == [0x3f, 0x80, 0x09, 0x00, 0x00, 0x00, 0x00, 0x30])
        #expect(Array(bytes[16..<20]) == [0xff, 0xff, 0xff, 0xff])
        #expect(Array(bytes[24..<36]) == [0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3])
        #expect(Array(bytes[48...]) == rejected)
    }

    @Test func extendedCDBAndBidirectionalAHSLayout() {
        let cdb = (0..<20).map { UInt8($0 + 0x10) }
        let bytes = encoded(
            .scsiCommand(
                SCSICommandPDU(
                    final: true, read: true, write: true, initiatorTaskTag: 1, cdb: cdb,
                    bidirectionalReadExpectedDataTransferLength: 0x0000_1000)))
        #expect(bytes.count == 48 + 8 + 8)
        #expect(bytes[4] == 4)  // TotalAHSLength in words
        #expect(Array(bytes[32..<48]) == Array(cdb[0..<16]))
        // RFC 7143 §11.2.2.3: AHSLength = CDB length - 15, AHSType 1, reserved.
        #expect(Array(bytes[48..<56]) == [0x00, 0x05, 0x01, 0x00, 0x20, 0x21, 0x22, 0x23])
        // RFC 7143 §11.2.2.4: AHSLength 5, AHSType 2, reserved, length.
        #expect(Array(bytes[56..<64]) == [0x00, 0x05, 0x02, 0x00, 0x00, 0x00, 0x10, 0x00])
    }

    @Test func targetPDUsHaveReservedBitsAndTagsSet() {
        let nopIn = encoded(.nopIn(NOPInPDU()))
        #expect(nopIn[0] == 0x20 && nopIn[1] == 0x80)
        let async = encoded(.asyncMessage(AsyncMessagePDU()))
        #expect(async[1] == 0x80 && Array(async[16..<20]) == [0xff, 0xff, 0xff, 0xff])
        let scsiResponse = encoded(.scsiResponse(SCSIResponsePDU(residualUnderflow: true)))
        #expect(scsiResponse[1] == 0x82)
    }
}
