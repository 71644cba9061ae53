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
    /// How long a connection with nothing running polls for the next command
    /// before its loop may sleep (``IdlePollPolicy``); zero disables it.
    /// `TESSERA_IDLE_POLL_US` in the environment overrides it (benchmarks).
    public var idlePoll: Duration
    /// What a host can make the portal hold.
    public var limits: ISCSIServerLimits

    public init(
        portals: [Portal], login: LoginConfiguration, targets: [String: any SCSITaskExecutor],
        queueDepth: Int = 128, nopInInterval: Duration? = .seconds(5), nopInTimeout: Duration = .seconds(30),
        idlePoll: Duration = .microseconds(50), limits: ISCSIServerLimits = ISCSIServerLimits()
    ) {
        self.limits = limits
        self.portals = portals
        self.login = login
        self.targets = targets
        self.queueDepth = queueDepth
        self.nopInInterval = nopInInterval
        self.nopInTimeout = nopInTimeout
        self.idlePoll = IdlePoll.budget(configured: idlePoll)
    }
}

/// Bounds on what hosts can make a portal hold (ARCHITECTURE "Trust
/// boundaries": every count a host controls is bounded before memory is
/// committed). Each is a `[limits]` key of the node configuration.
public struct ISCSIServerLimits: Sendable, Hashable {
    /// `login_timeout`: a connection that has not finished login (full feature
    /// phase, or a discovery session's login) this long after it was accepted is
    /// closed; the idle time before its first PDU counts. 15 s, as Linux LIO.
    public var loginTimeout: Duration
    /// `max_connections`: connections the node holds at once, logged in or not.
    public var maxConnections: Int
    /// `max_connections_per_initiator_address`: connections from one IP address.
    public var maxConnectionsPerInitiatorAddress: Int
    /// `max_immediate_commands`: immediate SCSI commands and TMFs per session
    /// (RFC 7143 §4.2.2.1: they bypass the CmdSN window). open-iscsi sends TMFs one
    /// at a time per session (the SCSI error handler serialises them) and its
    /// NOP-Outs are answered at once, so 64 is ample, and it bounds the
    /// immediate data held outside the window to 64 × FirstBurstLength.
    public var maxImmediateCommands: Int
    /// `write_buffer_high_water_mark`: bytes queued for a connection's socket
    /// above which the target stops reading its PDUs and starting its commands.
    public var writeBufferHighWaterMark: Int
    /// `write_buffer_low_water_mark`: bytes queued below which it reads again.
    public var writeBufferLowWaterMark: Int
    /// `max_read_bytes_in_flight`: per connection, the ExpectedDataTransferLength
    /// of the commands with Data-In (the R bit) running at once; one more waits,
    /// in order, until some finish (one alone always runs). With the water marks
    /// this bounds what a connection's reads hold, whatever the CmdSN window.
    public var maxReadBytesInFlight: Int
    /// `max_write_bytes_in_flight`: per session, the write data solicited with
    /// R2Ts at once (a WRITE reserves what it has left to solicit before its
    /// first R2T, and waits in order when that does not fit; one alone always
    /// runs): with `queue_depth` × FirstBurstLength of unsolicited data, what a
    /// session's writes can make the target hold.
    public var maxWriteBytesInFlight: Int

    /// The default `login_timeout`.
    public static let defaultLoginTimeout: Duration = .seconds(15)
    /// The default `max_connections`.
    public static let defaultMaxConnections = 1024
    /// The default `max_connections_per_initiator_address`.
    public static let defaultMaxConnectionsPerInitiatorAddress = 64
    /// The default `max_immediate_commands`.
    public static let defaultMaxImmediateCommands = 64
    /// The default `write_buffer_high_water_mark`: 4 MiB, four 1 MiB READs' Data-In.
    public static let defaultWriteBufferHighWaterMark = 4 << 20
    /// The default `write_buffer_low_water_mark`: 1 MiB.
    public static let defaultWriteBufferLowWaterMark = 1 << 20
    /// The default `max_read_bytes_in_flight`: 16 MiB, sixteen 1 MiB READs (far
    /// above a LAN's bandwidth-delay product, so it does not cost throughput).
    public static let defaultMaxReadBytesInFlight = 16 << 20
    /// The default `max_write_bytes_in_flight`: 16 MiB, as for reads.
    public static let defaultMaxWriteBytesInFlight = 16 << 20

    public init(
        loginTimeout: Duration = defaultLoginTimeout, maxConnections: Int = defaultMaxConnections,
        maxConnectionsPerInitiatorAddress: Int = defaultMaxConnectionsPerInitiatorAddress,
        maxImmediateCommands: Int = defaultMaxImmediateCommands,
        writeBufferHighWaterMark: Int = defaultWriteBufferHighWaterMark,
        writeBufferLowWaterMark: Int = defaultWriteBufferLowWaterMark,
        maxReadBytesInFlight: Int = defaultMaxReadBytesInFlight,
        maxWriteBytesInFlight: Int = defaultMaxWriteBytesInFlight
    ) {
        self.maxWriteBytesInFlight = maxWriteBytesInFlight
        self.maxReadBytesInFlight = maxReadBytesInFlight
        self.loginTimeout = loginTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerInitiatorAddress = maxConnectionsPerInitiatorAddress
        self.maxImmediateCommands = maxImmediateCommands
        self.writeBufferHighWaterMark = writeBufferHighWaterMark
        self.writeBufferLowWaterMark = writeBufferLowWaterMark
    }
}
