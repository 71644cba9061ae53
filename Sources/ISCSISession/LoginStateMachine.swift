import ISCSIWire
import NIOCore

/// The target side of the iSCSI login phase on one connection (RFC 7143 §6):
/// security stage (AuthMethod None or CHAP), operational stage (key
/// negotiation), stage transitions, C-bit reassembly, version and ACL checks.
///
/// A value type with no I/O: every Login Request goes to `receive(_:)`, which
/// returns the one `LoginAction` to carry out. Peer errors become failure
/// responses (`sendAndClose`), never traps.
public struct LoginStateMachine: Sendable {
    /// Where authentication stands.
    enum Authentication: Sendable {
        /// AuthMethod not agreed yet.
        case pending
        /// CHAP in progress.
        case chap(CHAPAuthenticator)
        /// Authenticated (or AuthMethod=None agreed).
        case done
    }

    /// Fields fixed by the first Login Request (RFC 7143 §11.12: the same in every request of a login).
    struct Identity: Sendable {
        var isid: UInt64
        var tsih: UInt16
        var cid: UInt16
    }

    /// The lifecycle of the machine.
    enum Phase: Sendable, Equatable {
        /// Logging in, in this stage.
        case active(LoginStage)
        /// Login completed or failed; no more Login Requests are accepted.
        case finished
    }

    /// The iSCSI version this target speaks (RFC 7143 §11.12.4: 0x00).
    static let version: UInt8 = 0
    /// RFC 7143 §13.12: during login the default MaxRecvDataSegmentLength (8192) bounds each PDU.
    static let loginSegmentLimit = 8192

    let configuration: LoginConfiguration
    let newTSIH: UInt16
    let random: LoginRandomSource

    private var phase: Phase = .active(.securityNegotiation)
    private var pduCount = 0
    private var identity: Identity?
    private var statSN: UInt32 = 0
    private var pendingText: [UInt8] = []
    private var authentication: Authentication = .pending
    private var authenticatedUser: String?
    private var engine: NegotiationEngine

    // Declarations seen (RFC 7143 §13.4-§13.6, §13.21).
    private var initiatorName: String?
    private var initiatorAlias: String?
    private var sessionType: LoginSessionType?
    private var target: TargetDescription?
    private var requestedTargetName: String?

    private var sentTargetDeclarations = false
    private var declaredMaxRecvDataSegmentLength = false

    /// Creates the machine for one new connection.
    ///
    /// - Parameters:
    ///   - newTSIH: the non-zero TSIH to give a new session (RFC 7143 §11.13.4), returned in the
    ///     final response when the initiator sent TSIH 0.
    ///   - random: CHAP identifier and challenge bytes (`.openSSL` in production).
    public init(configuration: LoginConfiguration, newTSIH: UInt16, random: LoginRandomSource = .openSSL) {
        self.configuration = configuration
        self.newTSIH = newTSIH
        self.random = random
        self.engine = NegotiationEngine(configuration: configuration)
    }

    /// Whether login is over (completed or failed).
    public var isFinished: Bool { phase == .finished }

    /// Handles one Login Request.
    public mutating func receive(_ request: LoginRequestPDU) -> LoginAction {
        guard case .active(let stage) = phase else {
            return fail(request, .initiatorError, "login request after the login phase ended")
        }
        pduCount += 1
        // A bounded number of login PDUs per connection (STYLE: negotiation is bounded).
        guard pduCount <= configuration.maxLoginPDUs else {
            return fail(request, .initiatorError, "too many login PDUs")
        }

        if let identity {
            // RFC 7143 §11.12.5-§11.12.7: ISID, TSIH and CID stay the same for the whole login.
            guard identity.isid == request.isid, identity.tsih == request.tsih, identity.cid == request.cid else {
                return fail(request, .initiatorError, "ISID/TSIH/CID changed during login")
            }
        } else {
            identity = Identity(isid: request.isid, tsih: request.tsih, cid: request.cid)
            // The first response's StatSN starts the connection's StatSN sequence; LIO takes ExpStatSN.
            statSN = request.expStatSN
            // RFC 7143 §11.12.4: Version-min above what the target supports → unsupported version.
            guard request.versionMin <= Self.version, request.versionMax >= request.versionMin else {
                return fail(request, .unsupportedVersion, "version \(request.versionMin)...\(request.versionMax)")
            }
        }

        // RFC 7143 §11.12.3: CSG must be the stage the target is in; stages never go back.
        switch (stage, request.currentStage) {
        case (.securityNegotiation, .securityNegotiation), (.loginOperationalNegotiation, .loginOperationalNegotiation):
            break
        case (.securityNegotiation, .loginOperationalNegotiation) where pduCount == 1 && pendingText.isEmpty:
            // RFC 7143 §6.3: the initiator may skip the security stage.
            phase = .active(.loginOperationalNegotiation)
        default:
            return fail(request, .initiatorError, "CSG \(request.currentStage) while in \(stage)")
        }
        let currentStage = request.currentStage

        if request.transit {
            // RFC 7143 §11.12.2: T and C are never both set.
            guard !request.continue else { return fail(request, .initiatorError, "T and C both set") }
            // RFC 7143 §6.3: NSG is a later stage than CSG.
            guard request.nextStage.rawValue > currentStage.rawValue else {
                return fail(request, .initiatorError, "NSG \(request.nextStage) not after CSG \(currentStage)")
            }
        }

        // Reassemble text continued with the C bit (RFC 7143 §11.12.2, §6.1).
        let incoming = request.dataSegment.readableBytes
        guard pendingText.count + incoming <= configuration.maxTextLength else {
            return fail(request, .initiatorError, "login text above \(configuration.maxTextLength) bytes")
        }
        pendingText.append(contentsOf: request.dataSegment.readableBytesView)
        if request.continue {
            // RFC 7143 §6.1: each partial request is answered with an empty response.
            return .send(response(to: request, stage: currentStage, transit: false, text: TextParameters()))
        }
        let bytes = pendingText
        pendingText = []

        let keys: TextParameters
        do {
            keys = try TextParameters.parse(bytes, maxTotalLength: configuration.maxTextLength)
        } catch {
            return fail(request, .initiatorError, "malformed login text: \(error)")
        }
        return process(request, keys: keys, stage: currentStage)
    }

    // MARK: - One complete text

    private mutating func process(_ request: LoginRequestPDU, keys: TextParameters, stage: LoginStage)
        -> LoginAction
    {
        if let failure = declare(request, keys: keys) { return failure }
        let leading = request.tsih == 0
        let discovery = sessionType == .discovery
        var reply = TextParameters()
        var securityKeys = TextParameters()

        if !sentTargetDeclarations, sessionType == .normal {
            // RFC 7143 §13.9: TargetPortalGroupTag in the first Login Response of a normal session.
            reply.append("TargetPortalGroupTag", String(configuration.portalGroupTag))
            if let alias = target?.alias { reply.append("TargetAlias", alias) }
        }
        sentTargetDeclarations = true

        for pair in keys.pairs {
            switch pair.key {
            case "InitiatorName", "InitiatorAlias", "TargetName", "SessionType":
                continue
            case "AuthMethod", "CHAP_A", "CHAP_I", "CHAP_C", "CHAP_N", "CHAP_R":
                // RFC 7143 §6.3: security keys belong to the security stage.
                guard stage == .securityNegotiation else {
                    return fail(request, .initiatorError, "\(pair.key) outside the security stage")
                }
                securityKeys.append(pair.key, pair.value)
            default:
                switch engine.negotiate(key: pair.key, value: pair.value, discovery: discovery, leading: leading) {
                case .answer(let value): reply.append(pair.key, value)
                case .noAnswer: break
                case .fail(let status, let reason): return fail(request, status, reason)
                }
            }
        }

        if stage == .securityNegotiation {
            switch security(request, keys: securityKeys, reply: &reply) {
            case .failed(let status, let reason): return fail(request, status, reason)
            case .continuing:
                return reply.encoded().count <= Self.loginSegmentLimit
                    ? .send(response(to: request, stage: stage, transit: false, text: reply))
                    : fail(request, .initiatorError, "login response too long")
            case .ready:
                break
            }
        } else {
            // RFC 7143 §6.3: skipping the security stage is allowed only when no authentication is required.
            if case .pending = authentication {
                guard credentialsRequired == nil else {
                    return fail(request, .authenticationFailure, "security stage skipped but CHAP required")
                }
                authentication = .done
            }
            // A key appears once in a text (RFC 7143 §6.2): when this reply already
            // answers the initiator's MaxRecvDataSegmentLength (Reject of a malformed
            // value), the target's own declaration waits for the next response.
            if !declaredMaxRecvDataSegmentLength, reply["MaxRecvDataSegmentLength"] == nil {
                // RFC 7143 §13.12: the target declares what it receives.
                reply.append("MaxRecvDataSegmentLength", String(configuration.maxRecvDataSegmentLength))
                declaredMaxRecvDataSegmentLength = true
            }
        }

        // RFC 7143 §13.12: during login each response is bounded by the 8192-byte default
        // MaxRecvDataSegmentLength; only a flood of unknown keys could exceed it.
        guard reply.encoded().count <= Self.loginSegmentLimit else {
            return fail(request, .initiatorError, "login response would exceed \(Self.loginSegmentLimit) bytes")
        }
        guard request.transit else {
            return .send(response(to: request, stage: stage, transit: false, text: reply))
        }
        guard request.nextStage == .fullFeaturePhase else {
            phase = .active(request.nextStage)
            return .send(response(to: request, stage: stage, transit: true, text: reply))
        }
        return complete(request, stage: stage, reply: reply)
    }

    /// Records InitiatorName, InitiatorAlias, SessionType, TargetName; checks target and ACL once known.
    private mutating func declare(_ request: LoginRequestPDU, keys: TextParameters) -> LoginAction? {
        func same(_ old: String?, _ new: String?) -> Bool { old == nil || new == nil || old == new }
        // Repeated declarations (libiscsi re-sends them in the operational stage) must not change.
        guard same(initiatorName, keys["InitiatorName"]), same(initiatorAlias, keys["InitiatorAlias"]),
            same(requestedTargetName, keys["TargetName"])
        else {
            return fail(request, .initiatorError, "declaration changed during login")
        }
        if let name = keys["InitiatorName"] {
            guard !name.isEmpty else { return fail(request, .initiatorError, "empty InitiatorName") }
            initiatorName = name
        }
        if let alias = keys["InitiatorAlias"] { initiatorAlias = alias }
        if let name = keys["TargetName"] { requestedTargetName = name }
        if let type = keys["SessionType"] {
            let parsed: LoginSessionType
            switch type {
            case "Normal": parsed = .normal
            case "Discovery": parsed = .discovery
            default: return fail(request, .sessionTypeNotSupported, "SessionType=\(type)")
            }
            if let sessionType, sessionType != parsed {
                return fail(request, .initiatorError, "SessionType changed during login")
            }
            sessionType = parsed
        }
        guard initiatorName != nil else {
            // RFC 7143 §13.5: InitiatorName MUST be in the first Login Request.
            return fail(request, .missingParameter, "InitiatorName missing")
        }
        if sessionType == nil { sessionType = .normal }  // RFC 7143 §13.21: default Normal.
        if sessionType == .normal, target == nil {
            // RFC 7143 §13.4: TargetName MUST be in the first Login Request of a normal session.
            guard let name = requestedTargetName else {
                return fail(request, .missingParameter, "TargetName missing")
            }
            guard let found = configuration.target(named: name) else {
                return fail(request, .notFound, "no target \(name)")
            }
            guard let initiatorName, found.allows(initiator: initiatorName) else {
                // As LIO: an initiator outside the ACL gets "authorization failure".
                return fail(request, .authorizationFailure, "initiator not in ACL of \(name)")
            }
            target = found
        }
        return nil
    }

    /// The CHAP credentials this login must prove, if any.
    private var credentialsRequired: CHAPCredentials? {
        sessionType == .discovery ? configuration.discoveryCHAP : target?.chap(for: initiatorName ?? "")
    }

    /// Where one request leaves the security stage.
    private enum SecurityResult {
        /// More security exchange is needed (or the initiator did not ask to transit).
        case continuing
        /// Authenticated and the initiator asked to transit: go to NSG.
        case ready
        /// Authentication failed or a security rule was broken.
        case failed(LoginStatus, String)
    }

    /// Runs the security stage for one request's AuthMethod/CHAP keys (RFC 7143 §6.3, §12).
    private mutating func security(_ request: LoginRequestPDU, keys: TextParameters, reply: inout TextParameters)
        -> SecurityResult
    {
        let required = credentialsRequired
        if case .pending = authentication {
            if let offered = keys["AuthMethod"] {
                let methods = offered.split(separator: ",").map(String.init)
                if let credentials = required {
                    // RFC 7143 §12.1: the target picks from the initiator's list; CHAP is needed here.
                    guard methods.contains("CHAP") else {
                        return .failed(.authenticationFailure, "CHAP required, offered \(offered)")
                    }
                    reply.append("AuthMethod", "CHAP")
                    authentication = .chap(
                        CHAPAuthenticator(credentials: credentials, algorithms: configuration.chapAlgorithms))
                    if keys["CHAP_A"] == nil { return .continuing }
                } else {
                    guard methods.contains("None") else {
                        return .failed(.authenticationFailure, "no acceptable AuthMethod in \(offered)")
                    }
                    reply.append("AuthMethod", "None")
                    authentication = .done
                }
            } else if required != nil {
                return request.transit
                    ? .failed(.authenticationFailure, "transit without authentication") : .continuing
            } else if request.transit {
                authentication = .done  // RFC 7143 §12: AuthMethod defaults to None.
            }
        }
        switch authentication {
        case .pending:
            return .continuing
        case .chap(var chap):
            let step = chap.receive(keys, random: random)
            switch step {
            case .reply(let more):
                authentication = .chap(chap)
                reply.pairs.append(contentsOf: more.pairs)
                return .continuing
            case .authenticated(let more):
                authentication = .done
                authenticatedUser = keys["CHAP_N"]
                reply.pairs.append(contentsOf: more.pairs)
                return request.transit ? .ready : .continuing
            case .failed(let reason):
                return .failed(.authenticationFailure, reason)
            }
        case .done:
            return request.transit ? .ready : .continuing
        }
    }

    // MARK: - Responses

    private mutating func complete(_ request: LoginRequestPDU, stage: LoginStage, reply: TextParameters)
        -> LoginAction
    {
        let parameters = parametersInForce()
        // RFC 7143 §13.14: FirstBurstLength MUST NOT exceed MaxBurstLength.
        guard parameters.firstBurstLength <= parameters.maxBurstLength else {
            return fail(request, .initiatorError, "FirstBurstLength above MaxBurstLength")
        }
        guard let initiatorName, let sessionType else {
            return fail(request, .missingParameter, "InitiatorName missing")
        }
        let leading = request.tsih == 0
        var final = response(to: request, stage: stage, transit: true, text: reply)
        // RFC 7143 §11.13.4: a new session's TSIH is returned only in the final response.
        final.tsih = leading ? newTSIH : request.tsih
        phase = .finished
        let outcome = LoginOutcome(
            sessionType: sessionType, initiatorName: initiatorName, initiatorAlias: initiatorAlias,
            targetName: target?.name, isid: request.isid, tsih: final.tsih, isLeadingConnection: leading,
            cid: request.cid, expCmdSN: request.cmdSN, statSN: statSN, authenticatedUser: authenticatedUser,
            parameters: parameters)
        return .complete(final, outcome)
    }

    private func parametersInForce() -> NegotiatedParameters {
        var parameters = engine.parameters()
        if !declaredMaxRecvDataSegmentLength {
            // Not declared (security stage went straight to full feature): the RFC default holds.
            parameters.targetMaxRecvDataSegmentLength = 8192
        }
        return parameters
    }

    /// Builds a success response; consumes one StatSN.
    private mutating func response(
        to request: LoginRequestPDU, stage: LoginStage, transit: Bool, text: TextParameters
    ) -> LoginResponsePDU {
        let bytes = text.encoded()
        var buffer = ByteBuffer()
        buffer.writeBytes(bytes)
        let pdu = LoginResponsePDU(
            transit: transit, continue: false, currentStage: stage,
            nextStage: transit ? request.nextStage : stage,
            versionMax: Self.version, versionActive: Self.version, isid: request.isid,
            tsih: request.tsih, initiatorTaskTag: request.initiatorTaskTag, statSN: statSN,
            expCmdSN: request.cmdSN, maxCmdSN: request.cmdSN &+ configuration.commandWindow &- 1,
            statusClass: 0, statusDetail: 0, dataSegment: buffer)
        statSN &+= 1
        return pdu
    }

    /// Ends the login with a failure response (RFC 7143 §11.13.5) and closes.
    private mutating func fail(_ request: LoginRequestPDU, _ status: LoginStatus, _ reason: String) -> LoginAction {
        phase = .finished
        lastFailureReason = reason
        let pdu = LoginResponsePDU(
            transit: false, continue: false, currentStage: request.currentStage, nextStage: request.currentStage,
            versionMax: Self.version, versionActive: Self.version, isid: request.isid, tsih: request.tsih,
            initiatorTaskTag: request.initiatorTaskTag, statSN: statSN, expCmdSN: request.cmdSN,
            maxCmdSN: request.cmdSN &+ configuration.commandWindow &- 1,
            statusClass: status.statusClass, statusDetail: status.statusDetail, dataSegment: ByteBuffer())
        statSN &+= 1
        return .sendAndClose(pdu)
    }

    /// Why the last failure happened (for the server's log; never sent to the peer).
    /// It may quote the initiator's text: escape it before logging.
    public private(set) var lastFailureReason: String?

    /// The InitiatorName the initiator declared, once it did (peer text, for the log).
    public var declaredInitiatorName: String? { initiatorName }

    /// The TargetName the initiator asked for, once it did (peer text, for the log).
    public var declaredTargetName: String? { requestedTargetName }
}
