import ISCSISession

/// How an ``ISCSIServer`` listens and what it serves.
public struct ISCSIServerConfiguration: Sendable {
    /// One listening address: a network portal in a target portal group (RFC 7143 §4.4.1).
    public struct Portal: Sendable, Hashable {
        /// Address to bind (an IP literal or host name).
        public var host: String
        /// TCP port; 0 picks a free one (see ``ISCSIServer/boundPorts``).
        public var port: Int
        /// Target portal group tag of this portal.
        public var portalGroupTag: UInt16

        public init(host: String, port: Int = 3260, portalGroupTag: UInt16 = 1) {
            self.host = host
            self.port = port
            self.portalGroupTag = portalGroupTag
        }
    }

    /// Where to listen.
    public var portals: [Portal]
    /// Login rules: targets, ACLs, CHAP, offered parameters.
    public var login: LoginConfiguration
    /// The SCSI device behind each target name.
    public var targets: [String: any SCSITaskExecutor]
    /// Commands accepted at once per session (the CmdSN window, RFC 7143 §4.2.2.1).
    public var queueDepth: Int
    /// Idle time after which the target pings with NOP-In; nil disables it.
    public var nopInInterval: Duration?
    /// How long a NOP-In ping may stay unanswered before the connection closes.
    public var nopInTimeout: Duration

    public init(
        portals: [Portal], login: LoginConfiguration, targets: [String: any SCSITaskExecutor],
        queueDepth: Int = 128, nopInInterval: Duration? = .seconds(5), nopInTimeout: Duration = .seconds(30)
    ) {
        self.portals = portals
        self.login = login
        self.targets = targets
        self.queueDepth = queueDepth
        self.nopInInterval = nopInInterval
        self.nopInTimeout = nopInTimeout
    }
}
