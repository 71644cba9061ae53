import ISCSIWire
import NIOCore

/// What the session does with one Text Request's result.
public enum TextAction: Sendable, Equatable {
    /// Send this Text Response.
    case send(TextResponsePDU)
    /// Answer with a Reject PDU of this reason (`RejectReason`) carrying the request's BHS;
    /// the connection goes on.
    case reject(reason: UInt8)
}

/// Answers Text Requests in full-feature phase and in discovery sessions
/// (RFC 7143 §11.10, §11.11, §6.1): SendTargets (filtered by ACL), other keys
/// answered from the key table, initiator text continued with the C bit
/// reassembled, long answers split with the C bit and a Target Transfer Tag
/// and continued on the initiator's next (empty) Text Request.
///
/// Pure: StatSN/ExpCmdSN/MaxCmdSN are passed in by the session, which owns them.
public struct TextNegotiator: Sendable {
    /// A long answer still being sent.
    struct PendingAnswer: Sendable {
        var initiatorTaskTag: UInt32
        var targetTransferTag: UInt32
        var remaining: [UInt8]
    }

    /// A request text the initiator continues with the C bit.
    struct PendingRequest: Sendable {
        var initiatorTaskTag: UInt32
        var targetTransferTag: UInt32
        var bytes: [UInt8]
    }

    /// RFC 7143 §11.10.4: 0xffffffff is the reserved "no transfer" tag.
    static let reservedTag: UInt32 = 0xffff_ffff

    let configuration: LoginConfiguration
    let sessionType: LoginSessionType
    let initiatorName: String
    let targetName: String?
    /// The largest data segment sent per Text Response.
    let segmentLimit: Int
    private var pendingAnswer: PendingAnswer?
    private var pendingRequest: PendingRequest?
    private var nextTag: UInt32 = 1

    /// Creates the negotiator for one session's connection.
    ///
    /// - Parameter initiatorMaxRecvDataSegmentLength: from `NegotiatedParameters`; bounds each response.
    public init(
        configuration: LoginConfiguration, sessionType: LoginSessionType, initiatorName: String,
        targetName: String?, initiatorMaxRecvDataSegmentLength: UInt32
    ) {
        self.configuration = configuration
        self.sessionType = sessionType
        self.initiatorName = initiatorName
        self.targetName = targetName
        self.segmentLimit = max(
            512, min(configuration.maxTextResponseSegment, Int(initiatorMaxRecvDataSegmentLength)))
    }

    /// Creates the negotiator from a login's outcome.
    public init(configuration: LoginConfiguration, outcome: LoginOutcome) {
        self.init(
            configuration: configuration, sessionType: outcome.sessionType, initiatorName: outcome.initiatorName,
            targetName: outcome.targetName,
            initiatorMaxRecvDataSegmentLength: outcome.parameters.initiatorMaxRecvDataSegmentLength)
    }

    /// Handles one Text Request. The response carries the given sequence numbers.
    public mutating func receive(
        _ request: TextRequestPDU, statSN: UInt32, expCmdSN: UInt32, maxCmdSN: UInt32
    ) -> TextAction {
        func respond(final: Bool, continue more: Bool, tag: UInt32, bytes: [UInt8]) -> TextAction {
            var buffer = ByteBuffer()
            buffer.writeBytes(bytes)
            return .send(
                TextResponsePDU(
                    final: final, continue: more, lun: request.lun, initiatorTaskTag: request.initiatorTaskTag,
                    targetTransferTag: tag, statSN: statSN, expCmdSN: expCmdSN, maxCmdSN: maxCmdSN,
                    dataSegment: buffer))
        }

        // RFC 7143 §11.10.2: C set requires F clear.
        if request.continue && request.final { return .reject(reason: 0x04) }

        if request.targetTransferTag != Self.reservedTag {
            // A continuation: of our long answer, or of the initiator's long request.
            if let pending = pendingAnswer, pending.targetTransferTag == request.targetTransferTag,
                pending.initiatorTaskTag == request.initiatorTaskTag
            {
                // RFC 7143 §11.10.4: the initiator's request continuing our answer carries no text.
                guard request.dataSegment.readableBytes == 0 else { return .reject(reason: 0x04) }
                return sendChunk(respond: respond)
            }
            if let pending = pendingRequest, pending.targetTransferTag == request.targetTransferTag,
                pending.initiatorTaskTag == request.initiatorTaskTag
            {
                return accumulate(request, tag: pending.targetTransferTag, respond: respond)
            }
            // RFC 7143 §11.10.4: a TTT the target never gave out.
            return .reject(reason: 0x09)
        }

        // RFC 7143 §11.10.4: a new request (TTT 0xffffffff) resets any pending exchange.
        pendingAnswer = nil
        pendingRequest = nil
        return accumulate(request, tag: allocateTag(), respond: respond)
    }

    private mutating func accumulate(
        _ request: TextRequestPDU, tag: UInt32,
        respond: (Bool, Bool, UInt32, [UInt8]) -> TextAction
    ) -> TextAction {
        var bytes = pendingRequest?.bytes ?? []
        guard bytes.count + request.dataSegment.readableBytes <= configuration.maxTextLength else {
            pendingRequest = nil
            return .reject(reason: 0x04)
        }
        bytes.append(contentsOf: request.dataSegment.readableBytesView)
        if request.continue {
            pendingRequest = PendingRequest(
                initiatorTaskTag: request.initiatorTaskTag, targetTransferTag: tag, bytes: bytes)
            // The initiator's text continues: an empty response with F clear and a TTT.
            return respond(false, false, tag, [])
        }
        pendingRequest = nil
        let keys: TextParameters
        do {
            keys = try TextParameters.parse(bytes, maxTotalLength: configuration.maxTextLength)
        } catch {
            return .reject(reason: 0x04)
        }
        let answer = answer(keys).encoded()
        pendingAnswer = PendingAnswer(
            initiatorTaskTag: request.initiatorTaskTag, targetTransferTag: tag, remaining: answer)
        return sendChunk(respond: respond)
    }

    /// Sends the next piece of the pending answer: C and a TTT while more remains, F at the end.
    private mutating func sendChunk(respond: (Bool, Bool, UInt32, [UInt8]) -> TextAction) -> TextAction {
        guard var pending = pendingAnswer else { return .reject(reason: 0x04) }
        let count = min(segmentLimit, pending.remaining.count)
        let chunk = Array(pending.remaining.prefix(count))
        pending.remaining.removeFirst(count)
        if pending.remaining.isEmpty {
            pendingAnswer = nil
            // RFC 7143 §11.11.4: the final response carries TTT 0xffffffff.
            return respond(true, false, Self.reservedTag, chunk)
        }
        pendingAnswer = pending
        return respond(false, true, pending.targetTransferTag, chunk)
    }

    private mutating func allocateTag() -> UInt32 {
        let tag = nextTag
        nextTag = nextTag &+ 1
        if nextTag == Self.reservedTag || nextTag == 0 { nextTag = 1 }
        return tag
    }

    /// Answers every key of one complete request text.
    func answer(_ keys: TextParameters) -> TextParameters {
        var reply = TextParameters()
        for pair in keys.pairs {
            if pair.key == "SendTargets" {
                let listing = DiscoverySendTargets.answer(
                    value: pair.value, configuration: configuration, sessionType: sessionType,
                    initiatorName: initiatorName, sessionTargetName: targetName)
                reply.pairs.append(contentsOf: listing.pairs)
                continue
            }
            guard let entry = NegotiationKeys.byName[pair.key] else {
                // RFC 7143 §6.2: "the answer for a key not understood MUST be
                // key=NotUnderstood". Key names match exactly, so `sENDtARGETS` or
                // `SendTargetsPlease` names no key; even one that breaks the §6.1
                // key-name rules gets this answer rather than a Reject PDU for the
                // whole request, so the other keys still get theirs.
                reply.append(pair.key, "NotUnderstood")
                continue
            }
            // Keys may not be renegotiated in full-feature phase here (login-only keys by
            // RFC 7143 §13; ALL-phase declaratives are not renegotiated by this target).
            reply.append(entry.name, "Reject")
        }
        return reply
    }
}
