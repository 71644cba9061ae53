import ISCSIWire

/// What the full-feature session machine needs to know about the connection:
/// the operational parameters negotiated at login plus the target's own
/// limits (queue depth, NOP-In keepalive).
public struct SessionParameters: Sendable, Equatable {
    /// InitialR2T (RFC 7143 §13.10): when true the initiator sends no unsolicited Data-Out.
    public var initialR2T: Bool
    /// ImmediateData (RFC 7143 §13.11): whether a SCSI Command PDU may carry write data.
    public var immediateData: Bool
    /// FirstBurstLength (RFC 7143 §13.14): most unsolicited bytes (immediate + Data-Out) per command.
    public var firstBurstLength: Int
    /// MaxBurstLength (RFC 7143 §13.13): most bytes per R2T and per Data-In sequence.
    public var maxBurstLength: Int
    /// MaxOutstandingR2T (RFC 7143 §13.17): R2Ts in flight per task.
    public var maxOutstandingR2T: Int
    /// The initiator's MaxRecvDataSegmentLength: the most we may send in one PDU (RFC 7143 §13.12).
    public var initiatorMaxRecvDataSegmentLength: Int
    /// Our MaxRecvDataSegmentLength: the most we accept in one PDU.
    public var targetMaxRecvDataSegmentLength: Int
    /// DataPDUInOrder (RFC 7143 §13.18).
    public var dataPDUInOrder: Bool
    /// DataSequenceInOrder (RFC 7143 §13.19).
    public var dataSequenceInOrder: Bool
    /// ErrorRecoveryLevel (RFC 7143 §13.20); only 0 is implemented.
    public var errorRecoveryLevel: Int
    /// DefaultTime2Wait (RFC 7143 §13.15), reported in the Logout Response.
    public var defaultTime2Wait: Int
    /// DefaultTime2Retain (RFC 7143 §13.16), reported in the Logout Response.
    public var defaultTime2Retain: Int
    /// Commands the target accepts at once; sets the CmdSN window (RFC 7143 §4.2.2.1).
    public var queueDepth: Int
    /// Idle time after which the target sends a NOP-In ping; nil disables keepalive.
    public var nopInInterval: Duration?
    /// How long a NOP-In ping may stay unanswered before the connection is closed.
    public var nopInTimeout: Duration
    /// Immediate commands (I bit: SCSI commands and task management) the target
    /// holds at once; one more is refused with Reject reason 0x06, "too many
    /// immediate commands" (RFC 7143 §11.17.1). They bypass the CmdSN window
    /// (RFC 7143 §4.2.2.1), so without this bound a host could start any number.
    public var maxImmediateCommands: Int
    /// Write data the target solicits with R2Ts at once, over all the session's
    /// tasks, until they end: a task reserves what it has left to solicit before
    /// its first R2T and waits, in order, when that does not fit (one alone
    /// always does). Without it a window of large WRITEs is solicited at once.
    public var maxSolicitedWriteBytes: Int

    public init(
        initialR2T: Bool = false, immediateData: Bool = true, firstBurstLength: Int = 65536,
        maxBurstLength: Int = 262144, maxOutstandingR2T: Int = 1,
        initiatorMaxRecvDataSegmentLength: Int = 8192, targetMaxRecvDataSegmentLength: Int = 262144,
        dataPDUInOrder: Bool = true, dataSequenceInOrder: Bool = true, errorRecoveryLevel: Int = 0,
        defaultTime2Wait: Int = 2, defaultTime2Retain: Int = 0, queueDepth: Int = 128,
        nopInInterval: Duration? = .seconds(5), nopInTimeout: Duration = .seconds(30), maxImmediateCommands: Int = 64,
        maxSolicitedWriteBytes: Int = 16 << 20
    ) {
        self.maxSolicitedWriteBytes = maxSolicitedWriteBytes
        self.initialR2T = initialR2T
        self.immediateData = immediateData
        self.firstBurstLength = firstBurstLength
        self.maxBurstLength = maxBurstLength
        self.maxOutstandingR2T = maxOutstandingR2T
        self.initiatorMaxRecvDataSegmentLength = initiatorMaxRecvDataSegmentLength
        self.targetMaxRecvDataSegmentLength = targetMaxRecvDataSegmentLength
        self.dataPDUInOrder = dataPDUInOrder
        self.dataSequenceInOrder = dataSequenceInOrder
        self.errorRecoveryLevel = errorRecoveryLevel
        self.defaultTime2Wait = defaultTime2Wait
        self.defaultTime2Retain = defaultTime2Retain
        self.queueDepth = queueDepth
        self.nopInInterval = nopInInterval
        self.nopInTimeout = nopInTimeout
        self.maxImmediateCommands = maxImmediateCommands
    }

    /// Clamps every value into the range the machine can work with, so a
    /// strange negotiation result cannot make it divide by zero or loop.
    var sanitized: SessionParameters {
        var p = self
        // RFC 7143 §13.12: MaxRecvDataSegmentLength is 512...2^24-1.
        p.initiatorMaxRecvDataSegmentLength = min(max(p.initiatorMaxRecvDataSegmentLength, 512), 16_777_215)
        p.targetMaxRecvDataSegmentLength = min(max(p.targetMaxRecvDataSegmentLength, 512), 16_777_215)
        // RFC 7143 §13.13/§13.14: burst lengths are 512...2^24-1, FirstBurstLength ≤ MaxBurstLength.
        p.maxBurstLength = min(max(p.maxBurstLength, 512), 16_777_215)
        p.firstBurstLength = min(max(p.firstBurstLength, 512), p.maxBurstLength)
        // RFC 7143 §13.17: MaxOutstandingR2T is 1...65535.
        p.maxOutstandingR2T = min(max(p.maxOutstandingR2T, 1), 65535)
        p.queueDepth = min(max(p.queueDepth, 1), 1 << 20)
        p.maxImmediateCommands = min(max(p.maxImmediateCommands, 1), 1 << 16)
        p.maxSolicitedWriteBytes = max(p.maxSolicitedWriteBytes, 1)
        return p
    }
}
