import ISCSIWire
import NIOCore

/// The fuzz entries' oracle for what the target sends (``SessionFuzzing``,
/// ``LoginFuzzing``): every PDU must be one an initiator can decode back to
/// the same value under the connection's digests and within the initiator's
/// MaxRecvDataSegmentLength (RFC 7143 §13.12), and the CmdSN window it
/// advertises must never move backwards or go negative (RFC 7143 §4.2.2.1).
struct TargetOutputCheck {
    private var encoder: ISCSIFrameEncoder
    private var decoder: ISCSIFrameDecoder
    private var lastExpCmdSN: UInt32?

    /// Login phase: no digests, the 8192-byte default segment limit.
    init() {
        encoder = ISCSIFrameEncoder()
        decoder = ISCSIFrameDecoder(maxRecvDataSegmentLength: 8192)
    }

    /// Full feature phase: the negotiated digests and the initiator's segment limit.
    mutating func enterFullFeaturePhase(headerDigest: Bool, dataDigest: Bool, initiatorMaxRecvDataSegmentLength: Int) {
        encoder = ISCSIFrameEncoder(headerDigest: headerDigest, dataDigest: dataDigest)
        decoder = ISCSIFrameDecoder(
            maxRecvDataSegmentLength: initiatorMaxRecvDataSegmentLength, headerDigest: headerDigest,
            dataDigest: dataDigest)
    }

    /// Whether `pdu` is a well-formed target PDU that keeps the window rules.
    mutating func accept(_ pdu: ISCSIPDU) -> Bool {
        guard !pdu.opcode.isInitiatorOpcode else { return false }
        var frame = ByteBuffer()
        encoder.encode(pdu, into: &frame)
        guard case .pdu(let decoded)? = try? decoder.decode(&frame), decoded == pdu, frame.readableBytes == 0 else {
            return false
        }
        guard let (expCmdSN, maxCmdSN) = Self.window(of: pdu) else { return true }
        // RFC 7143 §4.2.2.1: MaxCmdSN - ExpCmdSN + 1 is never negative (serial arithmetic).
        guard Self.serialDistance(from: expCmdSN, to: maxCmdSN &+ 1) >= 0 else { return false }
        if let lastExpCmdSN, Self.serialDistance(from: lastExpCmdSN, to: expCmdSN) < 0 { return false }
        lastExpCmdSN = expCmdSN
        return true
    }

    /// A login action's response is well formed and its text parses (each key
    /// once); a failure ends the login without a transition, a completion is a
    /// success into full feature phase.
    mutating func accept(_ action: LoginAction) -> Bool {
        let response: LoginResponsePDU
        let shaped: Bool
        switch action {
        case .send(let r):
            (response, shaped) = (r, r.statusClass == 0)
        case .sendAndClose(let r):
            (response, shaped) = (r, r.statusClass != 0 && !r.transit)
        case .complete(let r, _):
            (response, shaped) = (r, r.statusClass == 0 && r.transit && r.nextStage == .fullFeaturePhase)
        }
        return shaped && accept(.loginResponse(response))
            && (try? TextParameters.parse(Array(response.dataSegment.readableBytesView))) != nil
    }

    /// `to - from` in serial-number arithmetic (RFC 1982, 32 bits).
    static func serialDistance(from: UInt32, to: UInt32) -> Int32 { Int32(bitPattern: to &- from) }

    /// ExpCmdSN and MaxCmdSN of a PDU that advertises the window (not the
    /// login's, which starts it, nor a Reject's of a PDU before full feature).
    private static func window(of pdu: ISCSIPDU) -> (UInt32, UInt32)? {
        switch pdu {
        case .nopIn(let p): (p.expCmdSN, p.maxCmdSN)
        case .scsiResponse(let p): (p.expCmdSN, p.maxCmdSN)
        case .taskManagementResponse(let p): (p.expCmdSN, p.maxCmdSN)
        case .textResponse(let p): (p.expCmdSN, p.maxCmdSN)
        case .dataIn(let p): (p.expCmdSN, p.maxCmdSN)
        case .logoutResponse(let p): (p.expCmdSN, p.maxCmdSN)
        case .r2t(let p): (p.expCmdSN, p.maxCmdSN)
        case .asyncMessage(let p): (p.expCmdSN, p.maxCmdSN)
        case .reject(let p): (p.expCmdSN, p.maxCmdSN)
        default: nil
        }
    }
}
