import NIOCore

@testable import ISCSIWire

/// A buffer of `count` bytes 0, 1, 2, ... (mod 251).
func pattern(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeBytes((0..<count).map { UInt8(truncatingIfNeeded: $0 % 251) &+ seed })
    return buffer
}

/// A buffer holding `bytes`.
func buffer(_ bytes: [UInt8]) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeBytes(bytes)
    return buffer
}

/// Every PDU type, with fields set to distinct non-zero values, data
/// segments of lengths that need 0...3 bytes of padding, extended CDBs and
/// the bidirectional AHS. Keyed by `#line` so a failure names its row.
let pduTable: [(line: Int, pdu: ISCSIPDU)] = [
    (
        #line,
        .nopOut(
            NOPOutPDU(
                immediate: true, lun: 0x0001_0000_0000_0000, initiatorTaskTag: 0x1122_3344,
                targetTransferTag: 0xffff_ffff, cmdSN: 7, expStatSN: 9, dataSegment: pattern(5)))
    ),
    (#line, .nopOut(NOPOutPDU(initiatorTaskTag: 0xffff_ffff, targetTransferTag: 0x55, cmdSN: 8, expStatSN: 10))),
    (
        #line,
        .scsiCommand(
            SCSICommandPDU(
                immediate: false, final: true, read: true, write: false, attribute: 1, lun: 0x0002_0000_0000_0000,
                initiatorTaskTag: 0x10, expectedDataTransferLength: 4096, cmdSN: 0x1000, expStatSN: 0x2000,
                cdb: [0x28, 0, 0, 0, 0x10, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0]))
    ),
    (
        #line,
        .scsiCommand(
            SCSICommandPDU(
                immediate: true, final: false, read: false, write: true, attribute: 2, lun: 0,
                initiatorTaskTag: 0x11, expectedDataTransferLength: 65536, cmdSN: 0xffff_ffff, expStatSN: 1,
                cdb: [0x2a] + [UInt8](repeating: 0x5a, count: 15), dataSegment: pattern(8192)))
    ),
    (
        #line,
        .scsiCommand(
            SCSICommandPDU(
                final: true, read: true, write: true, attribute: 0, initiatorTaskTag: 0x12,
                expectedDataTransferLength: 512, cmdSN: 3, expStatSN: 4,
                cdb: (0..<32).map { UInt8($0) }, bidirectionalReadExpectedDataTransferLength: 0x0102_0304,
                dataSegment: pattern(3)))
    ),
    (
        #line,
        .scsiCommand(
            SCSICommandPDU(
                initiatorTaskTag: 0x13, cdb: (0..<17).map { UInt8($0 + 1) }))
    ),
    (
        #line,
        .scsiCommand(
            SCSICommandPDU(
                initiatorTaskTag: 0x14, bidirectionalReadExpectedDataTransferLength: 0))
    ),
    (
        #line,
        .taskManagementRequest(
            TaskManagementRequestPDU(
                immediate: true, function: 1, lun: 0x0003_0000_0000_0000, initiatorTaskTag: 0x20,
                referencedTaskTag: 0x10, cmdSN: 11, expStatSN: 12, refCmdSN: 10, expDataSN: 2))
    ),
    (#line, .taskManagementRequest(TaskManagementRequestPDU(function: 0x7f, initiatorTaskTag: 0x21))),
    (
        #line,
        .loginRequest(
            LoginRequestPDU(
                transit: true, continue: false, currentStage: .securityNegotiation,
                nextStage: .loginOperationalNegotiation, versionMax: 0, versionMin: 0,
                isid: 0x8000_0123_4567, tsih: 0, initiatorTaskTag: 1, cid: 0x0102, cmdSN: 1, expStatSN: 0,
                dataSegment: buffer(Array("InitiatorName=iqn.2026-01.org.example:host\0AuthMethod=None\0".utf8))))
    ),
    (
        #line,
        .loginRequest(
            LoginRequestPDU(
                transit: false, continue: true, currentStage: .loginOperationalNegotiation,
                nextStage: .fullFeaturePhase, versionMax: 2, versionMin: 1, isid: 0xffff_ffff_ffff, tsih: 0xabcd,
                initiatorTaskTag: 2, cid: 7, cmdSN: 2, expStatSN: 5, dataSegment: pattern(8192)))
    ),
    (
        #line,
        .textRequest(
            TextRequestPDU(
                immediate: true, final: true, continue: false, lun: 0, initiatorTaskTag: 0x30,
                targetTransferTag: 0xffff_ffff, cmdSN: 20, expStatSN: 21,
                dataSegment: buffer(Array("SendTargets=All\0".utf8))))
    ),
    (
        #line,
        .textRequest(
            TextRequestPDU(
                immediate: false, final: false, continue: true, lun: 5, initiatorTaskTag: 0x31,
                targetTransferTag: 0x99, cmdSN: 22, expStatSN: 23, dataSegment: pattern(1)))
    ),
    (
        #line,
        .dataOut(
            DataOutPDU(
                final: true, lun: 0x0001_0000_0000_0000, initiatorTaskTag: 0x40, targetTransferTag: 0x41,
                expStatSN: 30, dataSN: 2, bufferOffset: 16384, dataSegment: pattern(4096)))
    ),
    (
        #line,
        .dataOut(
            DataOutPDU(
                final: false, initiatorTaskTag: 0x42, targetTransferTag: 0xffff_ffff, expStatSN: 31,
                dataSN: 0, bufferOffset: 0, dataSegment: pattern(2)))
    ),
    (
        #line,
        .logoutRequest(
            LogoutRequestPDU(
                immediate: true, reasonCode: 0, initiatorTaskTag: 0x50, cid: 1, cmdSN: 40, expStatSN: 41))
    ),
    (#line, .logoutRequest(LogoutRequestPDU(reasonCode: 2, initiatorTaskTag: 0x51, cid: 0xffff, cmdSN: 42))),
    (
        #line,
        .snackRequest(
            SNACKRequestPDU(
                type: 1, lun: 0, initiatorTaskTag: 0xffff_ffff, targetTransferTag: 0, expStatSN: 50,
                begRun: 3, runLength: 0))
    ),
    (
        #line,
        .snackRequest(
            SNACKRequestPDU(
                type: 0xf, lun: 0x0004_0000_0000_0000, initiatorTaskTag: 0x60, targetTransferTag: 0x61,
                expStatSN: 51, begRun: 7, runLength: 9))
    ),
    (
        #line,
        .nopIn(
            NOPInPDU(
                lun: 0, initiatorTaskTag: 0x1122_3344, targetTransferTag: 0xffff_ffff, statSN: 100,
                expCmdSN: 8, maxCmdSN: 40, dataSegment: pattern(5)))
    ),
    (
        #line,
        .nopIn(
            NOPInPDU(
                lun: 0x0001_0000_0000_0000, initiatorTaskTag: 0xffff_ffff, targetTransferTag: 0x77, statSN: 101,
                expCmdSN: 9, maxCmdSN: 41))
    ),
    (
        #line,
        .scsiResponse(
            SCSIResponsePDU(
                bidirectionalReadResidualOverflow: false, bidirectionalReadResidualUnderflow: false,
                residualOverflow: false, residualUnderflow: false, response: 0, status: 0,
                initiatorTaskTag: 0x10, snackTag: 0, statSN: 102, expCmdSN: 0x1001, maxCmdSN: 0x1020,
                expDataSN: 1, bidirectionalReadResidualCount: 0, residualCount: 0))
    ),
    (
        #line,
        .scsiResponse(
            SCSIResponsePDU(
                bidirectionalReadResidualOverflow: true, bidirectionalReadResidualUnderflow: false,
                residualOverflow: false, residualUnderflow: true, response: 1, status: 0x02,
                initiatorTaskTag: 0x11, snackTag: 0x5, statSN: 103, expCmdSN: 2, maxCmdSN: 33,
                expDataSN: 4, bidirectionalReadResidualCount: 12, residualCount: 512,
                dataSegment: SCSIResponsePDU.senseSegment([
                    0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0,
                ])))
    ),
    (
        #line,
        .scsiResponse(
            SCSIResponsePDU(
                bidirectionalReadResidualUnderflow: true, residualOverflow: true, initiatorTaskTag: 0x12,
                statSN: 104))
    ),
    (
        #line,
        .taskManagementResponse(
            TaskManagementResponsePDU(
                response: 1, initiatorTaskTag: 0x20, statSN: 105, expCmdSN: 12, maxCmdSN: 44))
    ),
    (
        #line,
        .loginResponse(
            LoginResponsePDU(
                transit: true, continue: false, currentStage: .loginOperationalNegotiation,
                nextStage: .fullFeaturePhase, versionMax: 0, versionActive: 0, isid: 0x8000_0123_4567,
                tsih: 0x0001, initiatorTaskTag: 1, statSN: 0, expCmdSN: 2, maxCmdSN: 33, statusClass: 0,
                statusDetail: 0, dataSegment: buffer(Array("HeaderDigest=None\0DataDigest=None\0".utf8))))
    ),
    (
        #line,
        .loginResponse(
            LoginResponsePDU(
                transit: false, continue: true, currentStage: .securityNegotiation, nextStage: .securityNegotiation,
                versionMax: 1, versionActive: 0, isid: 1, tsih: 0, initiatorTaskTag: 3, statSN: 7, expCmdSN: 1,
                maxCmdSN: 1, statusClass: 2, statusDetail: 1))
    ),
    (
        #line,
        .textResponse(
            TextResponsePDU(
                final: true, continue: false, lun: 0, initiatorTaskTag: 0x30, targetTransferTag: 0xffff_ffff,
                statSN: 106, expCmdSN: 21, maxCmdSN: 52,
                dataSegment: buffer(
                    Array("TargetName=iqn.2026-01.org.tessera:lun0\0TargetAddress=127.0.0.1:3260,1\0".utf8))))
    ),
    (
        #line,
        .textResponse(
            TextResponsePDU(
                final: false, continue: true, initiatorTaskTag: 0x31, targetTransferTag: 0x1234, statSN: 107,
                dataSegment: pattern(7)))
    ),
    (
        #line,
        .dataIn(
            DataInPDU(
                final: true, acknowledge: false, residualOverflow: false, residualUnderflow: true,
                statusPresent: true, status: 0, lun: 0x0001_0000_0000_0000, initiatorTaskTag: 0x10,
                targetTransferTag: 0xffff_ffff, statSN: 108, expCmdSN: 0x1001, maxCmdSN: 0x1020, dataSN: 0,
                bufferOffset: 0, residualCount: 100, dataSegment: pattern(4096, seed: 3)))
    ),
    (
        #line,
        .dataIn(
            DataInPDU(
                final: false, acknowledge: true, residualOverflow: true, statusPresent: false,
                initiatorTaskTag: 0x13, targetTransferTag: 0x14, dataSN: 5, bufferOffset: 8192,
                dataSegment: pattern(6)))
    ),
    (
        #line,
        .logoutResponse(
            LogoutResponsePDU(
                response: 0, initiatorTaskTag: 0x50, statSN: 109, expCmdSN: 41, maxCmdSN: 72, time2Wait: 2,
                time2Retain: 20))
    ),
    (
        #line,
        .r2t(
            R2TPDU(
                lun: 0x0001_0000_0000_0000, initiatorTaskTag: 0x11, targetTransferTag: 0x0000_0001, statSN: 110,
                expCmdSN: 2, maxCmdSN: 33, r2tSN: 0, bufferOffset: 8192, desiredDataTransferLength: 57344))
    ),
    (
        #line,
        .asyncMessage(
            AsyncMessagePDU(
                lun: 0, statSN: 111, expCmdSN: 2, maxCmdSN: 33, asyncEvent: 1, asyncVCode: 0, parameter1: 0,
                parameter2: 2, parameter3: 20))
    ),
    (
        #line,
        .asyncMessage(
            AsyncMessagePDU(
                lun: 0x0001_0000_0000_0000, statSN: 112, asyncEvent: 0, asyncVCode: 0xee,
                dataSegment: SCSIResponsePDU.senseSegment([
                    0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0,
                ])))
    ),
    (
        #line,
        .reject(
            RejectPDU(
                reason: RejectReason.dataDigestError, statSN: 113, expCmdSN: 2, maxCmdSN: 33, dataSN: 0,
                dataSegment: pattern(48)))
    ),
]
