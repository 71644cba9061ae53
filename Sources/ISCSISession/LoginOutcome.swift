import ISCSIWire
import NIOCore

/// The kind of session a login opens (RFC 7143 §13.21 SessionType).
public enum LoginSessionType: Sendable, Equatable {
    /// A normal session to one target.
    case normal
    /// A discovery session (SendTargets only).
    case discovery
}

/// What a completed login established; the server turns it into a session.
public struct LoginOutcome: Sendable, Equatable {
    /// Normal or discovery.
    public var sessionType: LoginSessionType
    /// InitiatorName as declared.
    public var initiatorName: String
    /// InitiatorAlias, if declared.
    public var initiatorAlias: String?
    /// The target logged in to (nil in a discovery session), as configured.
    public var targetName: String?
    /// ISID (48 bits).
    public var isid: UInt64
    /// The TSIH: the one assigned when `isLeadingConnection`, else the one the initiator asked for.
    public var tsih: UInt16
    /// False when the request carried a non-zero TSIH: the initiator adds a connection to an
    /// existing session, which the server must check (and refuse with
    /// `LoginResponsePDU.loginFailure(replacing:status:)` when that session does not exist).
    public var isLeadingConnection: Bool
    /// CID.
    public var cid: UInt16
    /// The CmdSN expected next (the login request's CmdSN; login requests are immediate).
    public var expCmdSN: UInt32
    /// The next StatSN to use on this connection.
    public var statSN: UInt32
    /// The CHAP name the initiator authenticated with, if CHAP was used.
    public var authenticatedUser: String?
    /// The negotiated operational parameters.
    public var parameters: NegotiatedParameters

    /// Creates an outcome.
    public init(
        sessionType: LoginSessionType, initiatorName: String, initiatorAlias: String? = nil,
        targetName: String? = nil, isid: UInt64, tsih: UInt16, isLeadingConnection: Bool = true, cid: UInt16,
        expCmdSN: UInt32, statSN: UInt32, authenticatedUser: String? = nil,
        parameters: NegotiatedParameters = NegotiatedParameters()
    ) {
        self.sessionType = sessionType
        self.initiatorName = initiatorName
        self.initiatorAlias = initiatorAlias
        self.targetName = targetName
        self.isid = isid
        self.tsih = tsih
        self.isLeadingConnection = isLeadingConnection
        self.cid = cid
        self.expCmdSN = expCmdSN
        self.statSN = statSN
        self.authenticatedUser = authenticatedUser
        self.parameters = parameters
    }
}

/// What the connection handler does with one Login Request's result.
public enum LoginAction: Sendable, Equatable {
    /// Send this response and wait for the next Login Request.
    case send(LoginResponsePDU)
    /// Send this (failure) response, then close the connection (RFC 7143 §6.10:
    /// a login failure ends the connection).
    case sendAndClose(LoginResponsePDU)
    /// Send this final response; the connection enters full-feature phase with
    /// `LoginOutcome` (switch on digests and MaxRecvDataSegmentLength after the send).
    case complete(LoginResponsePDU, LoginOutcome)
}

extension LoginResponsePDU {
    /// A failure response in place of `response` (same ISID, ITT, StatSN, CmdSN
    /// fields), e.g. when the server refuses a completed login because the TSIH
    /// names no session (0x020a) or the session has too many connections (0x0206).
    public static func loginFailure(replacing response: LoginResponsePDU, status: LoginStatus) -> LoginResponsePDU {
        var failed = response
        failed.transit = false
        failed.continue = false
        failed.nextStage = failed.currentStage
        failed.statusClass = status.statusClass
        failed.statusDetail = status.statusDetail
        failed.dataSegment = ByteBuffer()
        return failed
    }
}
