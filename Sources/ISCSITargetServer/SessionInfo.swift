import Foundation

/// One live normal session as an administrator sees it (`tessera session
/// list`): who logged in, through which portal, since when. The TSIH names
/// it on this node (RFC 7143 §11.12.6: unique among the node's sessions).
public struct ISCSISessionInfo: Hashable, Sendable {
    /// Target Session Identifying Handle.
    public var tsih: UInt16
    /// The initiator's iSCSI name.
    public var initiatorName: String
    /// The initiator's ISID (48 bits).
    public var isid: UInt64
    /// The target's iSCSI name.
    public var targetName: String
    /// The target portal group tag of the portal the session came in on.
    public var portalGroupTag: UInt16
    /// The portal's local address, `host:port`.
    public var portal: String
    /// The initiator's address, `host:port`.
    public var initiatorAddress: String
    /// When the session finished its login.
    public var loggedInAt: Date

    public init(
        tsih: UInt16, initiatorName: String, isid: UInt64, targetName: String, portalGroupTag: UInt16,
        portal: String, initiatorAddress: String, loggedInAt: Date
    ) {
        self.tsih = tsih
        self.initiatorName = initiatorName
        self.isid = isid
        self.targetName = targetName
        self.portalGroupTag = portalGroupTag
        self.portal = portal
        self.initiatorAddress = initiatorAddress
        self.loggedInAt = loggedInAt
    }
}
