/// `GET /v1/sessions`: one live iSCSI session, on whichever node holds it.
/// A node lists its own sessions as they are now and the others' as they
/// last published them in the store (rewritten when their set changes).
public struct SessionStatus: Codable, Hashable, Sendable {
    /// The node holding the session.
    public var node: UInt64
    /// Its TSIH: with ``node``, what names it (`DELETE /v1/sessions/{node}/{tsih}`).
    public var tsih: UInt16
    /// The initiator's iSCSI name.
    public var initiator: String
    /// The initiator's ISID, `0x` and 12 hex digits.
    public var isid: String
    /// The target's iSCSI name.
    public var target: String
    /// The target portal group tag of the portal it came in on.
    public var portalGroup: UInt16
    /// That portal's address, `host:port`.
    public var portal: String
    /// The initiator's address, `host:port`.
    public var initiatorAddress: String
    /// When it logged in, seconds since 1970.
    public var loggedInAt: UInt64
    /// How current this entry is: `live` (the answering node's own),
    /// `published` (another node's, as it last published it), or
    /// `node_down` (its node's lease is not renewing: the host is likely
    /// failing over to another path, and the session is gone).
    public var source: String

    public init(
        node: UInt64, tsih: UInt16, initiator: String, isid: String, target: String, portalGroup: UInt16,
        portal: String, initiatorAddress: String, loggedInAt: UInt64, source: String
    ) {
        self.node = node
        self.tsih = tsih
        self.initiator = initiator
        self.isid = isid
        self.target = target
        self.portalGroup = portalGroup
        self.portal = portal
        self.initiatorAddress = initiatorAddress
        self.loggedInAt = loggedInAt
        self.source = source
    }

    /// An ISID as the API writes it.
    public static func isidText(_ isid: UInt64) -> String {
        let hex = String(isid & 0xFFFF_FFFF_FFFF, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
    }

    /// The nexus, as PR answers and the kernel name it: `initiator,i,0xISID`.
    public var initiatorPort: String { "\(initiator),i,\(isid)" }
}

/// The answer to `DELETE /v1/sessions/{node}/{tsih}`.
public struct SessionClose: Codable, Hashable, Sendable {
    /// The session as it was.
    public var session: SessionStatus
    /// `closed` (the answering node held it and closed its connection) or
    /// `requested` (the node holding it was asked through the store, and
    /// closes it within about a second).
    public var outcome: String

    public init(session: SessionStatus, outcome: String) {
        self.session = session
        self.outcome = outcome
    }
}
