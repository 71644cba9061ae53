/// Serial number arithmetic on 32-bit sequence numbers (RFC 1982), as
/// RFC 7143 §4.2.2 requires for CmdSN, StatSN and DataSN comparisons.
enum SerialNumber {
    /// `a < b` in serial arithmetic.
    @inline(__always)
    static func lessThan(_ a: UInt32, _ b: UInt32) -> Bool {
        a != b && Int32(bitPattern: b &- a) > 0
    }

    /// `a ≤ b` in serial arithmetic.
    @inline(__always)
    static func lessThanOrEqual(_ a: UInt32, _ b: UInt32) -> Bool {
        a == b || lessThan(a, b)
    }
}

/// The session's command window: ExpCmdSN, MaxCmdSN and the queue depth
/// behind them (RFC 7143 §4.2.2.1).
///
/// MaxCmdSN = ExpCmdSN − 1 + free slots, where a slot is held by every
/// non-immediate command from its arrival until its response. It never
/// decreases: an initiator ignores a smaller MaxCmdSN (RFC 7143 §4.2.2.1), so
/// the target must not shrink the window it has advertised.
struct CommandWindow: Sendable, Equatable {
    /// Where a non-immediate command's CmdSN falls.
    enum Admission: Equatable {
        /// CmdSN == ExpCmdSN: deliver now.
        case next
        /// ExpCmdSN < CmdSN ≤ MaxCmdSN: hold until the gap fills.
        case ahead
        /// Outside [ExpCmdSN, MaxCmdSN]: silently ignored.
        case outside
    }

    /// The next CmdSN the target expects.
    private(set) var expCmdSN: UInt32
    /// The highest CmdSN the target accepts.
    private(set) var maxCmdSN: UInt32
    /// Number of commands the target queues.
    let queueDepth: Int

    init(expCmdSN: UInt32, queueDepth: Int, advertisedMaxCmdSN: UInt32? = nil) {
        self.expCmdSN = expCmdSN
        self.queueDepth = max(queueDepth, 1)
        let full = expCmdSN &- 1 &+ UInt32(self.queueDepth)
        if let advertisedMaxCmdSN, SerialNumber.lessThan(full, advertisedMaxCmdSN) {
            self.maxCmdSN = advertisedMaxCmdSN
        } else {
            self.maxCmdSN = full
        }
    }

    /// Classifies a non-immediate command's CmdSN.
    func admit(_ cmdSN: UInt32) -> Admission {
        // RFC 7143 §4.2.2.1: a non-immediate command is accepted only when
        // ExpCmdSN ≤ CmdSN ≤ MaxCmdSN; others are silently ignored.
        guard SerialNumber.lessThanOrEqual(cmdSN, maxCmdSN) else { return .outside }
        if cmdSN == expCmdSN { return .next }
        return SerialNumber.lessThan(expCmdSN, cmdSN) ? .ahead : .outside
    }

    /// The command numbered ExpCmdSN was delivered.
    mutating func advance() {
        expCmdSN &+= 1
    }

    /// Opens the window as far as `activeCommands` slots in use allow; never closes it.
    mutating func update(activeCommands: Int) {
        let free = max(queueDepth - activeCommands, 0)
        let candidate = expCmdSN &- 1 &+ UInt32(free)
        if SerialNumber.lessThan(maxCmdSN, candidate) { maxCmdSN = candidate }
    }
}
